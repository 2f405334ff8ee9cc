//! The admin CLI's side of the control socket: send one request (and, for an import, its
//! lines, again when asked), follow progress, return the final response. The connection
//! is never half-closed before the answer: the daemon takes end-of-file as "the client has
//! gone" and stops the work.

use super::proto::{Frame, Request, Response};
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

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
    progress: impl FnMut(usize, usize),
) -> Result<Response, ClientError> {
    call_feeding(socket, request, &mut || None, progress).await
}

/// Lines sent after a request, produced while they are sent; the channel closes after the
/// pass's last line.
pub type Feed = mpsc::Receiver<zeroize::Zeroizing<Vec<u8>>>;

/// `call`, sending the lines of `feed()` after the request, and those of a new `feed()`
/// each time the daemon answers `send_again`. Frames are read while lines are written, so
/// progress shows and a daemon's refusal ends the call without sending the rest.
pub async fn call_feeding(
    socket: &Path,
    request: &Request,
    feed: &mut dyn FnMut() -> Option<Feed>,
    mut progress: impl FnMut(usize, usize),
) -> Result<Response, ClientError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|source| ClientError::Connect {
            path: socket.display().to_string(),
            source,
        })?;
    let (reader, mut writer) = stream.into_split();
    let mut bytes = zeroize::Zeroizing::new(serde_json::to_vec(request)?);
    bytes.push(b'\n');
    writer.write_all(&bytes).await?;
    drop(bytes);
    // Lines are written by their own task, so frames are always read: a daemon blocked
    // writing progress to us would otherwise stop reading our lines (a deadlock). The
    // task keeps the write half open until the answer (never a half-close).
    let (passes, mut next_pass) = mpsc::unbounded_channel::<Feed>();
    if let Some(first) = feed() {
        let _ = passes.send(first);
    }
    let sender = tokio::spawn(async move {
        while let Some(mut pass) = next_pass.recv().await {
            while let Some(line) = pass.recv().await {
                if writer.write_all(&line).await.is_err() {
                    return;
                }
            }
        }
    });
    let _stop_sending = AbortOnDrop(sender);
    let mut lines = BufReader::new(reader).lines();
    while let Some(line) = lines.next_line().await? {
        match serde_json::from_str::<Frame>(&line)? {
            Frame::Progress { done, total } => progress(done, total),
            Frame::SendAgain => {
                if let Some(pass) = feed() {
                    let _ = passes.send(pass);
                }
            }
            Frame::Done(response) => return Ok(response),
        }
    }
    Err(ClientError::NoAnswer)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
