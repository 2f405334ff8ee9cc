//! Print release: after a grant at a printer device, move the person's jobs from a shared
//! hold queue (Find-Me) to the device's CUPS queue, then release their held jobs there,
//! unless the printer reports trouble. The rules (whose job is whose, what counts as
//! printer trouble, when to stop trying a dead CUPS) are pure functions here; `cups.rs`
//! speaks IPP. Knows nothing of terminals or the store: the daemon audits the outcome.

pub(crate) mod cups;
mod ipp_frame;

use crate::backoff::Backoff;
use crate::domain::DeviceId;
use crate::worker::{Reporter, State};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use zeroize::Zeroizing;

pub use cups::JobAnswer;

/// How pinwarden authenticates to CUPS (as configured; secrets are only paths).
#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CupsAuthConfig {
    /// No credential: only for a CUPS whose policy does not reserve Release-Job.
    None { username: String },
    /// HTTP Basic for an account in CUPS's SystemGroup; the password is read from a file.
    Basic {
        username: String,
        password_file: PathBuf,
    },
    /// CUPS's root certificate (`<StateDir>/certs/0`): pinwarden running as root on the
    /// CUPS host. CUPS accepts it only on its domain socket.
    LocalCertificate { cert_file: PathBuf },
    /// The account pinwarden runs as, proven by the kernel (SO_PEERCRED) on CUPS's domain
    /// socket: for a daemon that is not root, in CUPS's SystemGroup.
    PeerCredentials,
}

/// Where the CUPS scheduler listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CupsServer {
    /// Its domain socket (`/run/cups/cups.sock`): a CUPS on this host, as `lp` reaches it.
    Socket(PathBuf),
    /// `host:port` over TCP: a CUPS on another host.
    Tcp(String),
}

impl std::fmt::Display for CupsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CupsServer::Socket(path) => write!(f, "{}", path.display()),
            CupsServer::Tcp(addr) => f.write_str(addr),
        }
    }
}

impl serde::Serialize for CupsServer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct CupsConfig {
    /// The CUPS scheduler: its domain socket or `host:port`.
    pub server: CupsServer,
    pub auth: CupsAuthConfig,
    /// Per IPP request.
    #[serde(serialize_with = "crate::duration::serialize")]
    pub timeout: Duration,
    /// A whole release (move, list, release every job) is abandoned after this.
    #[serde(serialize_with = "crate::duration::serialize")]
    pub release_timeout: Duration,
    /// After a failure CUPS is not asked again for a back-off starting at 1 s and doubling
    /// up to this; terminals meanwhile get `print-server-unavailable` at once.
    #[serde(serialize_with = "crate::duration::serialize")]
    pub max_backoff: Duration,
}

/// The queues of one printer device.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PrintQueue {
    pub device: DeviceId,
    /// The CUPS queue of the printer the terminal stands at.
    pub queue: String,
    /// A shared hold queue whose jobs follow the person to this printer (Find-Me).
    pub hold_queue: Option<String>,
}

/// The credential the client sends (resolved at start).
pub(crate) enum CupsAuth {
    None {
        username: String,
    },
    Basic {
        username: String,
        password: Zeroizing<String>,
    },
    LocalCertificate {
        cert_file: PathBuf,
    },
    PeerCredentials {
        username: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    #[error("{0}")]
    Config(String),
    #[error("CUPS refused pinwarden: {0}")]
    Auth(String),
    #[error("CUPS did not answer within {0:?}")]
    Timeout(Duration),
    #[error("CUPS unreachable: {0}")]
    Unreachable(String),
    #[error("unexpected answer from CUPS: {0}")]
    Protocol(String),
    #[error("not asking CUPS for another {0:?} after: {1}")]
    BackingOff(Duration, String),
}

/// One job as Get-Jobs lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: i32,
    /// IPP job-state (4 = pending-held).
    pub state: i32,
    pub owner: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrinterStatus {
    /// IPP printer-state: 3 idle, 4 processing, 5 stopped.
    pub state: i32,
    pub reasons: Vec<String>,
}

const JOB_PENDING_HELD: i32 = 4;
const PRINTER_STOPPED: i32 = 5;

/// Whether a job's `job-originating-user-name` is `user`, compared as CUPS compares
/// user names: case-insensitively, with any `@domain` (Kerberos realm) stripped.
pub fn same_user(job_owner: &str, user: &str) -> bool {
    let bare = |s: &str| s.split('@').next().unwrap_or("").trim().to_string();
    let (a, b) = (bare(job_owner), bare(user));
    !a.is_empty() && a.eq_ignore_ascii_case(&b)
}

/// The held jobs of `user` among `jobs` (others' jobs are never selected).
pub fn jobs_to_release(jobs: &[Job], user: &str) -> Vec<i32> {
    jobs.iter()
        .filter(|j| j.state == JOB_PENDING_HELD && same_user(&j.owner, user))
        .map(|j| j.id)
        .collect()
}

/// Why the printer cannot print now, if it reports an error state: stopped (disabled or
/// paused), or a reason such as `media-jam`, `offline-report`, `door-open`, or any
/// `…-error`. Warnings and reports of other conditions do not hold jobs back.
pub fn printer_trouble(status: &PrinterStatus) -> Option<String> {
    const BLOCKING: [&str; 10] = [
        "media-jam",
        "offline",
        "paused",
        "shutdown",
        "door-open",
        "cover-open",
        "media-empty",
        "media-needed",
        "toner-empty",
        "marker-supply-empty",
    ];
    let blocking: Vec<&str> = status
        .reasons
        .iter()
        .map(String::as_str)
        .filter(|r| {
            let base = r
                .strip_suffix("-error")
                .or_else(|| r.strip_suffix("-report"))
                .unwrap_or(r);
            r.ends_with("-error") || (BLOCKING.contains(&base) && !r.ends_with("-warning"))
        })
        .collect();
    match (status.state == PRINTER_STOPPED, blocking.is_empty()) {
        (false, true) => None,
        (true, true) => Some("stopped".into()),
        (_, false) => Some(blocking.join(",")),
    }
}

/// What one release achieved.
#[derive(Debug, Default)]
pub struct Released {
    pub released: u32,
    pub moved: u32,
    /// Some of the person's jobs stayed held, and why.
    pub trouble: Option<Trouble>,
}

#[derive(Debug)]
pub enum Trouble {
    /// The printer reports an error state (the reasons, e.g. `stopped`, `media-jam`).
    Printer(String),
    /// CUPS could not be asked or refused (the error).
    Server(PrintError),
}

/// Refuses to contact a CUPS that just failed until a back-off has passed, so a dead or
/// black-holed server costs terminals no time.
struct Breaker {
    backoff: Backoff,
    open_until: Option<(Instant, String)>,
}

impl Breaker {
    fn check(&self, now: Instant) -> Result<(), PrintError> {
        match &self.open_until {
            Some((until, why)) if now < *until => {
                Err(PrintError::BackingOff(*until - now, why.clone()))
            }
            _ => Ok(()),
        }
    }
    /// Opens the breaker; returns for how long.
    fn failed(&mut self, now: Instant, why: &PrintError) -> Duration {
        let delay = self.backoff.next_delay();
        self.open_until = Some((now + delay, why.to_string()));
        delay
    }
    fn succeeded(&mut self) {
        self.backoff.reset();
        self.open_until = None;
    }
}

pub struct PrintRelease {
    client: cups::Client,
    queues: BTreeMap<DeviceId, PrintQueue>,
    release_timeout: Duration,
    breaker: Mutex<Breaker>,
    /// The breaker's state in `status`, with the workers.
    status: Option<Reporter>,
}

/// The name of the account this process runs as (what CUPS sees through SO_PEERCRED).
fn own_account() -> Result<String, PrintError> {
    // SAFETY: getpwuid returns a pointer into static storage or null; we copy the name out
    // at once, before any other call that could reuse that storage.
    let name = unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if pw.is_null() || (*pw).pw_name.is_null() {
            None
        } else {
            Some(
                std::ffi::CStr::from_ptr((*pw).pw_name)
                    .to_string_lossy()
                    .into_owned(),
            )
        }
    };
    name.ok_or_else(|| {
        PrintError::Config(
            "cups.auth = \"peer-credentials\": this process's user id has no account name".into(),
        )
    })
}

impl PrintRelease {
    /// Resolves the credential (reads the password file); fails when it cannot.
    pub fn new(config: &CupsConfig, queues: &[PrintQueue]) -> Result<Self, PrintError> {
        let auth = match &config.auth {
            CupsAuthConfig::None { username } => CupsAuth::None {
                username: username.clone(),
            },
            CupsAuthConfig::Basic {
                username,
                password_file,
            } => {
                let password = crate::secret::read_line("cups.password_file", password_file)
                    .map_err(|e| PrintError::Config(e.to_string()))?;
                CupsAuth::Basic {
                    username: username.clone(),
                    password,
                }
            }
            CupsAuthConfig::LocalCertificate { cert_file } => CupsAuth::LocalCertificate {
                cert_file: cert_file.clone(),
            },
            CupsAuthConfig::PeerCredentials => CupsAuth::PeerCredentials {
                username: own_account()?,
            },
        };
        Ok(PrintRelease {
            client: cups::Client::new(config.server.clone(), auth, config.timeout),
            queues: queues
                .iter()
                .map(|q| (q.device.clone(), q.clone()))
                .collect(),
            release_timeout: config.release_timeout,
            breaker: Mutex::new(Breaker {
                backoff: Backoff::new(Duration::from_secs(1), config.max_backoff),
                open_until: None,
            }),
            status: None,
        })
    }

    /// Shows the breaker in `status`: working during a release, backing off while open.
    pub fn with_status(mut self, status: Reporter) -> Self {
        self.status = Some(status);
        self
    }

    fn show(&self, f: impl FnOnce(&Reporter)) {
        if let Some(status) = &self.status {
            f(status);
        }
    }

    /// Releases `user`'s held jobs at `device`; `None` when the device has no print queue.
    pub async fn release(&self, device: &DeviceId, user: &str) -> Option<Released> {
        let queue = self.queues.get(device)?;
        let now = Instant::now();
        if let Err(e) = self.lock_breaker().check(now) {
            return Some(Released {
                trouble: Some(Trouble::Server(e)),
                ..Released::default()
            });
        }
        self.show(|s| s.set_state(State::Working));
        let mut done = Released::default();
        let run = self.run(queue, user, &mut done);
        let result = match tokio::time::timeout(self.release_timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(PrintError::Timeout(self.release_timeout)),
        };
        match result {
            Ok(trouble) => {
                self.lock_breaker().succeeded();
                self.show(|s| {
                    s.healthy();
                    s.set_state(State::Idle);
                });
                done.trouble = trouble.map(Trouble::Printer);
            }
            Err(e) => {
                let delay = self.lock_breaker().failed(Instant::now(), &e);
                self.show(|s| {
                    s.failure(&e.to_string());
                    s.backing_off(delay);
                });
                done.trouble = Some(Trouble::Server(e));
            }
        }
        Some(done)
    }

    fn lock_breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks the printer, moves Find-Me jobs, releases; `Ok(Some(reason))` when the
    /// printer's state keeps the jobs held.
    async fn run(
        &self,
        queue: &PrintQueue,
        user: &str,
        done: &mut Released,
    ) -> Result<Option<String>, PrintError> {
        let status = self.client.printer_status(&queue.queue).await?;
        if let Some(reason) = printer_trouble(&status) {
            return Ok(Some(reason));
        }
        if let Some(hold) = &queue.hold_queue {
            let jobs = self.client.held_jobs(hold).await?;
            for id in jobs_to_release(&jobs, user) {
                if self.client.move_job(hold, id, &queue.queue).await? == JobAnswer::Done {
                    done.moved += 1;
                }
            }
        }
        let jobs = self.client.held_jobs(&queue.queue).await?;
        for id in jobs_to_release(&jobs, user) {
            match self.client.release(&queue.queue, id).await? {
                // A job no longer held has already been released (from elsewhere).
                JobAnswer::Done | JobAnswer::NotPossible => done.released += 1,
                JobAnswer::NotFound => {}
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
