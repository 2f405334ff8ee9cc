//! `pinwarden lockout list|clear`: the lockout counters as the daemon reports them, and
//! clearing one so a device, source or user may try again at once (audited by the daemon).

use super::admin::call;
use crate::config::Config;
use crate::domain::Timestamp;
use crate::frontend::control::proto::Request;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum LockoutCommand {
    /// Every counter: key, failures, locked until.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Clear one counter (`device:ID`, `source:ADDRESS`, `user:ID`, as `list` shows it).
    Clear { key: String },
}

pub async fn run(config: &Config, cmd: LockoutCommand) -> anyhow::Result<()> {
    match cmd {
        LockoutCommand::List { json } => {
            let data = call(config, &Request::LockoutList).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&data)?);
                return Ok(());
            }
            let rows = data.as_array().cloned().unwrap_or_default();
            println!("{:<40} {:>8}  LOCKED UNTIL", "KEY", "FAILURES");
            for r in &rows {
                println!(
                    "{:<40} {:>8}  {}",
                    r["key"].as_str().unwrap_or(""),
                    r["failures"],
                    r["locked_until"]
                        .as_i64()
                        .map_or("-".to_string(), |ms| Timestamp::from_millis(ms).to_string())
                );
            }
        }
        LockoutCommand::Clear { key } => {
            let data = call(config, &Request::LockoutClear { key }).await?;
            println!(
                "cleared {} ({} failures)",
                data["key"].as_str().unwrap_or(""),
                data["failures"]
            );
        }
    }
    Ok(())
}
