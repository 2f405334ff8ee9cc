//! The admin control socket: a Unix socket (mode 0660) speaking one JSON request per
//! connection, answered by progress frames and one final response. The daemon supplies the
//! `Handler`; this module only moves frames and never touches the store.

pub mod access;
pub mod client;
pub mod import_feed;
pub mod proto;

use crate::worker::{Context, Next, Settings, Worker};
use proto::{Frame, Request, Response};
use std::future::Future;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::pin::Pin as StdPin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Largest request line accepted (an import's rows follow it, line by line).
pub const MAX_REQUEST: u64 = 1 << 20;
/// Largest line accepted after the request: a chunk of an import's rows.
pub const MAX_FEED_LINE: u64 = 16 << 20;
/// Lines read ahead of the handler; past them the client waits (its socket fills).
const FEED_AHEAD: usize = 2;
/// Control sessions served at once; more wait for a place.
const MAX_SESSIONS: usize = 4;

pub type Progress = mpsc::UnboundedSender<(usize, usize)>;
pub type Reply<'a> = StdPin<Box<dyn Future<Output = Response> + Send + 'a>>;

/// Who is on the other end of a control connection, from the kernel (SO_PEERCRED).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
}

/// Who made a request: a control-socket peer (its kernel credentials) or an admin API
/// token (`[[http.token]]`, by name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Peer(Caller),
    Token(String),
}

impl Principal {
    /// As audit records name the actor: `uid:N` or `token:NAME`.
    pub fn by(&self) -> String {
        match self {
            Principal::Peer(c) => format!("uid:{}", c.uid),
            Principal::Token(name) => format!("token:{name}"),
        }
    }

    /// For messages and audit details: `uid N pid P` or `token NAME`.
    pub fn describe(&self) -> String {
        match self {
            Principal::Peer(c) => format!(
                "uid {}{}",
                c.uid,
                c.pid.map(|p| format!(" pid {p}")).unwrap_or_default()
            ),
            Principal::Token(name) => format!("token {name}"),
        }
    }
}

/// One control request's context: who asked, where progress goes, and a token cancelled
/// when the client goes away (long work stops between steps).
pub struct Session {
    pub caller: Principal,
    /// What the caller may ask for (`[control]`, or the API token's scope); the handler
    /// refuses and audits the rest.
    pub role: access::Role,
    pub progress: Progress,
    pub gone: CancellationToken,
    pub input: Input,
}

/// The lines a client sends after its request (an import's rows), and the way to ask for
/// them again. Lines are wiped when dropped: they may carry PINs.
pub struct Input {
    lines: mpsc::Receiver<zeroize::Zeroizing<Vec<u8>>>,
    again: mpsc::UnboundedSender<()>,
}

impl Input {
    /// Lines from `lines`; `again` is told when the handler asks for them again. The admin
    /// API feeds an uploaded file through here as the socket feeds a client's lines.
    pub fn new(
        lines: mpsc::Receiver<zeroize::Zeroizing<Vec<u8>>>,
        again: mpsc::UnboundedSender<()>,
    ) -> Self {
        Input { lines, again }
    }

    /// The next line, or None once the client has gone (or sent an over-long line).
    pub async fn next(&mut self) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        self.lines.recv().await
    }

    /// Asks the client to send its lines again (`Frame::SendAgain`).
    pub fn send_again(&self) {
        let _ = self.again.send(());
    }
}

/// Answers control requests. Implemented by the daemon, which knows every service.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, request: Request, session: Session) -> Reply<'_>;

    /// Records a caller refused before any request (a wrong admin API token from `peer`);
    /// the frontend throttles these. Nothing by default.
    fn refused(&self, _frontend: &str, _peer: std::net::SocketAddr, _reason: String) {}
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another pinwarden is already answering on {0}")]
    InUse(String),
    #[error("cannot create the control socket {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The control socket's mode: its owner and group may connect; who may do what is then
/// decided by the caller's credentials (`access`).
pub const SOCKET_MODE: u32 = 0o660;

/// Binds the socket, replacing a stale file left by a crash but never a live daemon's. The
/// socket is bound in a private (0700) directory beside its path, given its mode there and
/// only then renamed into place, so it is never reachable with a looser mode, whatever the
/// umask.
pub async fn bind(path: &Path) -> Result<UnixListener, BindError> {
    let shown = path.display().to_string();
    let io = |source| BindError::Io {
        path: shown.clone(),
        source,
    };
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(BindError::InUse(shown));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(io)?;
    let private = dir.join(format!(".control-bind.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(io)?;
    let staged = private.join("control.sock");
    let bound = UnixListener::bind(&staged).and_then(|listener| {
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(SOCKET_MODE))?;
        std::fs::rename(&staged, path)?;
        Ok(listener)
    });
    let _ = std::fs::remove_dir_all(&private);
    bound.map_err(io)
}

/// After a failed accept the control socket is tried again after this back-off.
pub const ACCEPT_RETRY: Settings =
    Settings::new(Duration::from_millis(100), Duration::from_secs(5));

/// The control socket as a supervised worker: waiting for a connection is its idle wait
/// (ended by shutdown), starting a session its unit of work; at most `MAX_SESSIONS` are
/// served at once, and at shutdown open sessions finish their request.
pub struct Server {
    listener: UnixListener,
    handler: Arc<dyn Handler>,
    access: Arc<access::Access>,
    sessions: TaskTracker,
    places: Arc<tokio::sync::Semaphore>,
    accepted: Option<std::io::Result<UnixStream>>,
}

impl Server {
    pub fn new(listener: UnixListener, handler: Arc<dyn Handler>, access: access::Access) -> Self {
        Server {
            listener,
            handler,
            access: Arc::new(access),
            sessions: TaskTracker::new(),
            places: Arc::new(tokio::sync::Semaphore::new(MAX_SESSIONS)),
            accepted: None,
        }
    }

    pub fn name(&self) -> String {
        "control socket".into()
    }
}

impl Worker for Server {
    async fn work(&mut self, _cx: &Context) -> Result<Next, String> {
        match self.accepted.take() {
            Some(Ok(stream)) => {
                let handler = Arc::clone(&self.handler);
                let access = Arc::clone(&self.access);
                let places = Arc::clone(&self.places);
                self.sessions.spawn(async move {
                    let Ok(_place) = places.acquire_owned().await else {
                        return;
                    };
                    session(stream, handler, &access).await
                });
            }
            Some(Err(e)) => return Err(format!("accept failed: {e}")),
            None => {}
        }
        Ok(Next::Idle)
    }

    async fn wait_for_work(&mut self) {
        self.accepted = Some(self.listener.accept().await.map(|(stream, _)| stream));
    }

    async fn stop(&mut self) {
        self.sessions.close();
        self.sessions.wait().await;
    }
}

async fn session(stream: UnixStream, handler: Arc<dyn Handler>, access: &access::Access) {
    let caller = match stream.peer_cred() {
        Ok(c) => Caller {
            uid: c.uid(),
            gid: c.gid(),
            pid: c.pid(),
        },
        Err(e) => {
            tracing::warn!(error = %e, "control connection without peer credentials: refused");
            return;
        }
    };
    let role = access.role_of(&caller);
    let (reader, mut writer) = stream.into_split();
    let mut line = zeroize::Zeroizing::new(Vec::new());
    let mut limited = BufReader::new(reader).take(MAX_REQUEST + 1);
    let read = tokio::time::timeout(
        Duration::from_secs(60),
        limited.read_until(b'\n', &mut line),
    )
    .await;
    let request = match read {
        Ok(Ok(n)) if n as u64 > MAX_REQUEST => Err("request too large".to_string()),
        Ok(Ok(0)) | Err(_) => return,
        Ok(Ok(_)) => serde_json::from_slice::<Request>(&line)
            .map_err(|e| format!("malformed control request: {}", e.classify_name())),
        Ok(Err(e)) => Err(e.to_string()),
    };
    drop(line);
    let gone = CancellationToken::new();
    let (lines_tx, lines) = mpsc::channel(FEED_AHEAD);
    let feeder = tokio::spawn(feed(limited.into_inner(), lines_tx, gone.clone()));
    let response = match request {
        Err(message) => Response::error(message),
        Ok(request) => {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let (again, mut again_rx) = mpsc::unbounded_channel();
            let _cancel_on_exit = gone.clone().drop_guard();
            let mut reply = handler.handle(
                request,
                Session {
                    caller: Principal::Peer(caller),
                    role,
                    progress: tx,
                    gone: gone.clone(),
                    input: Input { lines, again },
                },
            );
            loop {
                let frame = tokio::select! {
                    response = &mut reply => break response,
                    Some((done, total)) = rx.recv() => Frame::Progress { done, total },
                    Some(()) = again_rx.recv() => Frame::SendAgain,
                };
                // A client that cannot be written to has gone: long work stops.
                if write_frame(&mut writer, &frame).await.is_err() {
                    gone.cancel();
                }
            }
        }
    };
    let _ = write_frame(&mut writer, &Frame::Done(response)).await;
    feeder.abort();
}

/// Reads the lines after the request into `lines` until the client closes its end (or
/// sends a line over `MAX_FEED_LINE`), then cancels `gone`: a client that went away stops
/// the work it asked for. Lines nobody wants are read and dropped.
async fn feed(
    mut reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    lines: mpsc::Sender<zeroize::Zeroizing<Vec<u8>>>,
    gone: CancellationToken,
) {
    loop {
        let mut line = zeroize::Zeroizing::new(Vec::new());
        let read = (&mut reader)
            .take(MAX_FEED_LINE + 1)
            .read_until(b'\n', &mut line)
            .await;
        match read {
            Ok(n) if n > 0 && n as u64 <= MAX_FEED_LINE => {
                let _ = lines.send(line).await;
            }
            _ => break,
        }
    }
    gone.cancel();
}

async fn write_frame(
    writer: &mut tokio::net::unix::OwnedWriteHalf,
    frame: &Frame,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(frame).expect("frames serialise");
    bytes.push(b'\n');
    writer.write_all(&bytes).await
}

pub trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    /// The error category only: a serde message could quote a field value (a PIN).
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "not valid JSON",
            serde_json::error::Category::Data => "unknown command or wrong fields",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}
