//! The command line: `run`, `check-config`, and admin commands that talk to the running
//! daemon over the control socket. PINs are read from stdin or a no-echo prompt, never argv.

mod admin;
mod check;
mod guest;
mod import;
mod lockout;
mod mail;
mod store;
mod user;

use crate::config::{Config, DEFAULT_PATH};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "pinwarden",
    version,
    about = "PIN authentication for printers and doors"
)]
pub struct Cli {
    /// Configuration file.
    #[arg(short, long, global = true, env = "PINWARDEN_CONFIG", default_value = DEFAULT_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon (systemd: Type=notify).
    Run,
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig {
        /// Also talk to the [smtp] relay: connect, TLS, login, MAIL FROM and RCPT TO the
        /// sender's own address, then RSET (nothing is sent); says where it failed.
        #[arg(long)]
        smtp: bool,
        /// Treat warnings (settings that do not work together) as errors: exit non-zero.
        #[arg(long)]
        strict: bool,
    },
    /// Show the running daemon's state.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Sponsored guests: short-lived local users in a sponsor's likeness.
    #[command(subcommand)]
    Guest(guest::GuestCommand),
    /// Import users from a CSV (or .tsv) file: all rows or none.
    Import {
        file: PathBuf,
        /// Check every row and report, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: also hash every PIN to prove it unique (slow: argon2 per PIN).
        #[arg(long, requires = "dry_run")]
        check_unique: bool,
        #[arg(long)]
        json: bool,
    },
    /// Sync the directories now and print what changed (added, changed, removed,
    /// re-hashed, collisions, time).
    Sync {
        /// Only this `[[directory]]` (by name).
        #[arg(long)]
        source: Option<String>,
        /// Ignore the saved cursor: fetch everything and re-hash every PIN.
        #[arg(long)]
        full: bool,
        /// Apply even if the run would remove more than max_delete_share of the users.
        #[arg(long)]
        force: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show the newest audit events, optionally filtered (all filters must match).
    Audit {
        #[arg(long, default_value_t = 50)]
        last: usize,
        /// Only events about this user.
        #[arg(long)]
        user: Option<String>,
        /// Only events at this device.
        #[arg(long)]
        device: Option<String>,
        /// Only events of this kind (decision, admin, door, print, mail, …).
        #[arg(long)]
        kind: Option<String>,
        /// At or after this time (2026-12-31 or 2026-12-31T08:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Before this time.
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The mail outbox and templates.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Check or repair a stopped daemon's store (refused while the daemon holds it).
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Lockout counters: list them, clear one (audited).
    #[command(subcommand)]
    Lockout(lockout::LockoutCommand),
}

#[derive(Subcommand)]
pub enum MailCommand {
    /// Every queued message's state (lane, kind, recipient, attempts, last error); never
    /// its body.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Render a template for a user with a placeholder PIN (never a real one).
    Preview {
        /// new_pin, reset_pin, expiry_reminder, guest_invitation or forgotten_pin.
        template: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct PinArgs {
    /// Read the PIN from standard input (a no-echo prompt on a terminal).
    #[arg(long, conflicts_with = "generate")]
    pub pin_stdin: bool,
    /// Generate a policy-compliant PIN and print it once.
    #[arg(long)]
    pub generate: bool,
    /// PIN validity: never, 1h..48h or 1d..180d (default: policy.default_expiry).
    #[arg(long)]
    pub expires: Option<String>,
    /// A limited-use PIN: it works N times, then is refused (audited `uses_exhausted`).
    #[arg(long, value_name = "N")]
    pub uses: Option<u32>,
    /// When the PIN works, in the site time zone: `Mon-Fri 08:00-18:00` (repeat for
    /// several; the `[[schedule]]` window syntax).
    #[arg(long = "window", value_name = "WINDOW")]
    pub windows: Vec<String>,
    /// Print the daemon's answer as JSON (with a generated PIN in it) and nothing else.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a local user.
    Add {
        id: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long)]
        email: Option<String>,
        /// A group (repeat for several).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// A card number (repeat for several); stored normalised.
        #[arg(long = "card")]
        cards: Vec<String>,
        /// Access starts (YYYY-MM-DD or RFC 3339, UTC).
        #[arg(long)]
        valid_from: Option<String>,
        /// Access ends (YYYY-MM-DD or RFC 3339, UTC).
        #[arg(long)]
        valid_until: Option<String>,
        #[command(flatten)]
        pin: PinArgs,
    },
    /// Set or reset a user's PIN.
    SetPin {
        id: String,
        #[command(flatten)]
        pin: PinArgs,
    },
    /// Move when a user's PIN stops working, without changing the PIN.
    SetValidity {
        id: String,
        /// never, a duration from now (1h..48h, 1d..180d) or a date / RFC 3339 time.
        #[arg(long)]
        expires: String,
        #[arg(long)]
        json: bool,
    },
    /// Set a duress PIN (from stdin): it opens normally and raises a silent duress event.
    SetDuress {
        id: String,
        #[arg(long, required = true)]
        pin_stdin: bool,
    },
    /// Remove a user's duress PIN.
    ClearDuress {
        id: String,
    },
    Remove {
        id: String,
    },
    Disable {
        id: String,
    },
    /// Enable a user (also clears a lock after too many failed attempts; so does
    /// `lockout clear user:ID`).
    Enable {
        id: String,
    },
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pinwarden: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Whatever a command creates (the daemon's files, a store backup) is private.
    crate::daemon::private_umask();
    let config = Config::load(&cli.config)?;
    crate::heap::limit_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::CheckConfig { smtp, strict } => {
            runtime.block_on(check::run(&config, &cli.config, smtp, strict))
        }
        Command::Store(cmd) => store::run(&config, cmd),
        Command::Run => {
            init_logging(&config);
            runtime.block_on(async {
                let shutdown = CancellationToken::new();
                tokio::spawn(on_signal(shutdown.clone()));
                let mut running = crate::daemon::start(config, shutdown).await?;
                running.reload_on_hangup(cli.config.clone());
                running.drained().await;
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        other => {
            quiet_on_closed_stdout();
            runtime.block_on(admin::run(&config, other))
        }
    }
}

/// An admin command piped into `head` ends quietly when the pipe closes, as other command
/// line tools do, instead of panicking on the write (Rust ignores SIGPIPE by default; the
/// daemon keeps ignoring it, its sockets report EPIPE as an error).
fn quiet_on_closed_stdout() {
    // SAFETY: restoring the default disposition of a signal, before any thread of ours
    // writes to a pipe.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if config.log.json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    shutdown.cancel();
}
