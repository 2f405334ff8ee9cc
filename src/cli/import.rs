//! `pinwarden import FILE`: stream the file to the daemon in chunks of rows (read record by
//! record, never whole; the problems the local parser finds travel with them, so the daemon
//! reports every structural and policy problem at once), send it again when the daemon has
//! checked it and asks to apply, show progress, and print the counts.

use super::admin::into_data;
use crate::config::Config;
use crate::frontend::control::client::{self, Feed};
use crate::frontend::control::import_feed;
use crate::frontend::control::proto::Request;
use anyhow::Context;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Without a terminal, a progress line at most this often.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(3);

pub async fn run(
    config: &Config,
    file: &Path,
    dry_run: bool,
    check_unique: bool,
    json: bool,
) -> anyhow::Result<()> {
    std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let tsv = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    let delimiter = if tsv { b'\t' } else { b',' };
    let path = file.to_path_buf();
    let mut feed = || Some(send_file(path.clone(), delimiter));
    let request = Request::Import {
        dry_run,
        check_unique,
    };
    let mut shown = Progress::new();
    let response = client::call_feeding(&config.control_socket, &request, &mut feed, |d, t| {
        shown.show(d, t)
    })
    .await;
    shown.finish();
    let response = response?;
    // A stopped apply says itself what was applied; any other refusal applied nothing.
    let partial = (response.error.as_deref()).is_some_and(|e| e.starts_with("import stopped"));
    let data = into_data(response).with_context(|| match partial {
        true => format!("{}", file.display()),
        false => format!("{}: nothing was imported", file.display()),
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&data)?);
        return Ok(());
    }
    let verb = if dry_run { "would import" } else { "imported" };
    eprintln!(
        "{verb} {} row(s): {} added, {} updated, {} PIN(s) set",
        data["rows"], data["added"], data["updated"], data["pins_set"]
    );
    Ok(())
}

/// Reads the file on a blocking thread into feed lines (`control::import_feed`). Stops
/// when the call no longer wants lines.
fn send_file(path: PathBuf, delimiter: u8) -> Feed {
    let (tx, rx) = mpsc::channel(2);
    std::thread::spawn(move || {
        let send = |line| tx.blocking_send(line).is_ok();
        import_feed::feed_rows(std::fs::File::open(&path), delimiter, &send);
    });
    rx
}

/// Progress as the daemon reports it: `(checked, 0)` while it checks, `(applied, total)`
/// while it applies. A bar on a terminal; otherwise a plain line every few seconds.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last: Option<Instant>,
    applying: bool,
}

impl Progress {
    fn new() -> Self {
        let bar = std::io::stderr()
            .is_terminal()
            .then(|| indicatif::ProgressBar::new_spinner().with_message("checking rows"));
        Progress {
            bar,
            last: None,
            applying: false,
        }
    }

    fn show(&mut self, done: usize, total: usize) {
        if total > 0 && !self.applying {
            self.applying = true;
            self.last = None;
            if let Some(bar) = &self.bar {
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "importing {bar:40} {pos}/{len} rows ({eta})",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
            }
        }
        if let Some(bar) = &self.bar {
            if total > 0 {
                bar.set_length(total as u64);
            }
            bar.set_position(done as u64);
            return;
        }
        if self
            .last
            .is_some_and(|at| at.elapsed() < PLAIN_PROGRESS_EVERY)
        {
            return;
        }
        self.last = Some(Instant::now());
        if total > 0 {
            eprintln!("imported {done}/{total} rows");
        } else {
            eprintln!("checked {done} rows");
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
