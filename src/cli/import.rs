//! `pinwarden import FILE`: parse and check the file locally (every problem at once, no PIN
//! in any message), wipe its bytes, send the rows to the daemon (which checks them again
//! and applies all or none) and print the counts.

use super::admin::{call_hashing, into_data};
use crate::config::Config;
use crate::frontend::control::proto::{Request, WirePin, WireRow};
use crate::lifecycle::import::{parse_users, MAX_IMPORT_BYTES};
use anyhow::{bail, Context};
use std::path::Path;

pub async fn run(config: &Config, file: &Path, dry_run: bool, json: bool) -> anyhow::Result<()> {
    let rows = read_rows(file)?;
    let response = call_hashing(config, &Request::Import { rows, dry_run }).await;
    let data = into_data(response?)
        .with_context(|| format!("{}: nothing was imported", file.display()))?;
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

/// The file's rows, or every problem in it printed and one error; its bytes are wiped.
fn read_rows(file: &Path) -> anyhow::Result<Vec<WireRow>> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    if size > MAX_IMPORT_BYTES as u64 {
        bail!(
            "{} is larger than {} MiB; split it",
            file.display(),
            MAX_IMPORT_BYTES >> 20
        );
    }
    let mut bytes =
        std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let tsv = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    let parsed = parse_users(&bytes, if tsv { b'\t' } else { b',' });
    zeroize::Zeroize::zeroize(&mut bytes);
    let rows = match parsed {
        Ok(rows) => rows,
        Err(problems) => {
            for p in &problems {
                eprintln!("{}: {p}", file.display());
            }
            bail!(
                "{} problem(s) in {}; nothing was imported",
                problems.len(),
                file.display()
            );
        }
    };
    Ok(rows
        .into_iter()
        .map(|r| WireRow {
            line: r.line,
            id: r.id,
            name: r.name,
            email: r.email,
            groups: r.groups,
            pin: r.pin.map(WirePin),
            cards: r.cards,
        })
        .collect())
}
