//! The daemon in-process (mini-redis `tests/server.rs` style): started on port 0 under a
//! shutdown token the test owns, served, stopped by cancelling the token, and started again
//! on the same store — which only opens if the first run drained and let it go.

mod common;

use pinwarden::config::Config;
use pinwarden::daemon;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

async fn ping(addr: std::net::SocketAddr) -> String {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    write.write_all(b"PING\r\n").await.unwrap();
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await.unwrap();
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_serves_and_drains_under_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pinwarden.toml");
    let text = common::config_text(dir.path(), "", common::DEFAULT_TCP);
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap();
    let socket = config.control_socket.clone();

    for run in 0..2 {
        let token = CancellationToken::new();
        let running = daemon::start(config.clone(), token.clone())
            .await
            .unwrap_or_else(|e| panic!("run {run}: {e:#}"));
        assert_eq!(running.tcp.len(), 1);
        assert_ne!(running.tcp[0].port(), 0, "port 0 resolved");
        assert!(socket.exists(), "control socket bound");
        assert_eq!(ping(running.tcp[0]).await, "PONG\r\n");
        let drained = tokio::spawn(running.drained());
        token.cancel();
        tokio::time::timeout(Duration::from_secs(10), drained)
            .await
            .expect("drained within the deadline")
            .unwrap();
        assert!(!socket.exists(), "control socket removed after the drain");
    }
}
