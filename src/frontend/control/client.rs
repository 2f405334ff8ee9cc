//! The admin CLI's side of the control socket: send one request, follow progress, return
//! the final response.

use super::proto::{Frame, Request, Response};
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach pinwarden at {path}: {source} (is the daemon running? `systemctl status pinwarden`; do you have access to the socket's group?)")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("the control connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the daemon closed the connection without an answer (see its log)")]
    NoAnswer,
    #[error("unreadable answer from the daemon: {0}")]
    Decode(#[from] serde_json::Error),
}

pub async fn call(
    socket: &Path,
    request: &Request,
    mut progress: impl FnMut(usize, usize),
) -> Result<Response, ClientError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|source| ClientError::Connect {
            path: socket.display().to_string(),
            source,
        })?;
    let (reader, mut writer) = stream.into_split();
    let mut bytes = serde_json::to_vec(request)?;
    bytes.push(b'\n');
    writer.write_all(&bytes).await?;
    zeroize::Zeroize::zeroize(&mut bytes);
    let mut lines = BufReader::new(reader).lines();
    while let Some(line) = lines.next_line().await? {
        match serde_json::from_str::<Frame>(&line)? {
            Frame::Progress { done, total } => progress(done, total),
            Frame::Done(response) => return Ok(response),
        }
    }
    Err(ClientError::NoAnswer)
}
