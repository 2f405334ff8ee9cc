//! `pinwarden store check` and `pinwarden store repair`: offline, on a stopped daemon's
//! store, through `daemon::store_check` / `daemon::store_repair` (the CLI never names the
//! store's engine). Prints what was found, kept and lost; check exits non-zero unless clean.

use crate::config::Config;
use crate::store::{OpenError, TreeReport};
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Read every record and report counts and problems; exit 0 only when clean.
    Check {
        #[arg(long)]
        json: bool,
    },
    /// Back the store up beside it, then rebuild it from every record that can still be
    /// read (meta kept: pepper fingerprint, argon2 parameters, site salt).
    Repair {
        #[arg(long)]
        json: bool,
    },
}

pub fn run(config: &Config, cmd: StoreCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StoreCommand::Check { json } => {
            let report = crate::daemon::store_check(config).map_err(explain)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("store {}", report.path);
                print_trees(&report.trees, "records");
                for p in &report.problems {
                    println!("  problem: {p}");
                }
                if report.clean() {
                    println!("clean");
                } else {
                    println!("PROBLEMS FOUND: `pinwarden store repair` backs the store up, then keeps every readable record");
                }
            }
            Ok(if report.clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        StoreCommand::Repair { json } => {
            let report = crate::daemon::store_repair(config).map_err(explain)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("backup of the store as it was: {}", report.backup);
                for step in &report.steps {
                    println!("  {step}");
                }
                print_trees(&report.trees, "read");
                let kept: u64 = report.trees.iter().map(|t| t.records - t.bad).sum();
                let lost: u64 = report.trees.iter().map(|t| t.bad).sum();
                println!("repaired: {kept} record(s) kept, {lost} lost; start the daemon");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_trees(trees: &[TreeReport], counted: &str) {
    for t in trees {
        let bad = match t.bad {
            0 => String::new(),
            n => format!(", {n} bad"),
        };
        println!("  {:<16} {} {counted}{bad}", t.name, t.records);
        for p in &t.problems {
            println!("      {p}");
        }
    }
}

fn explain(e: OpenError) -> anyhow::Error {
    match e {
        OpenError::InUse(path) => anyhow::anyhow!(
            "the store {path} is held by the running daemon: stop it first \
             (systemctl stop pinwarden), then run this again"
        ),
        other => other.into(),
    }
}
