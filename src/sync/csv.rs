//! The CSV/TSV file source: the whole file is the directory (import rules: a header row,
//! every row valid or nothing applied). Polled by the engine's interval: the cursor is a
//! keyed digest of the content, so an unchanged file costs one read and no hashing.
//! Polling rather than inotify: it works for files replaced by rename, on network mounts
//! and in containers, and the interval bounds how late a change is seen anyway.

use super::source::{Batch, Deletions, FetchFuture, Source, SourceError, UpstreamUser};
use crate::lifecycle::import::{parse_users, ImportRow, MAX_IMPORT_BYTES};
use blake2::digest::{FixedOutput, KeyInit, Update};
use blake2::Blake2bMac512;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use zeroize::Zeroize;

/// Problems quoted in one error; the rest are counted.
const SHOWN_PROBLEMS: usize = 10;

#[derive(Clone, Debug, Serialize)]
pub struct CsvSettings {
    pub path: PathBuf,
    /// `,` or a tab (`.tsv` files default to tab).
    pub delimiter: char,
}

type Digest = [u8; 32];

/// What this process last handed out: for a file digest, the digest of each row. Only in
/// memory, keyed; lets a changed file re-hash only the PINs of changed rows.
#[derive(Default)]
struct Memory {
    seen: Vec<(Vec<u8>, HashMap<String, Digest>)>,
}

pub struct CsvSource {
    settings: CsvSettings,
    key: [u8; 32],
    memory: Mutex<Memory>,
}

impl CsvSource {
    /// `key`: secret for the content digests (derived from the pepper).
    pub fn new(settings: CsvSettings, key: [u8; 32]) -> Self {
        CsvSource {
            settings,
            key,
            memory: Mutex::new(Memory::default()),
        }
    }

    fn mac(&self, parts: &[&[u8]]) -> Digest {
        let mut mac = <Blake2bMac512 as KeyInit>::new_from_slice(&self.key)
            .expect("a 32-byte key is valid for BLAKE2b");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(&mac.finalize_fixed()[..32]);
        out
    }

    fn row_digest(&self, row: &ImportRow) -> Digest {
        let groups = row.groups.join("\n");
        let cards = row.cards.join("\n");
        let pin = row.pin.as_ref().map(|p| p.expose()).unwrap_or("");
        self.mac(&[
            row.id.as_bytes(),
            row.name.as_bytes(),
            row.email.as_deref().unwrap_or("\0").as_bytes(),
            groups.as_bytes(),
            if row.pin.is_some() { b"1" } else { b"0" },
            pin.as_bytes(),
            cards.as_bytes(),
        ])
    }

    fn fetch_now(&self, cursor: Option<&[u8]>) -> Result<Batch, SourceError> {
        let mut bytes = read_stable(&self.settings.path)?;
        let digest = self.mac(&[&bytes]).to_vec();
        if cursor == Some(digest.as_slice()) {
            bytes.zeroize();
            return Ok(Batch {
                changed: Vec::new(),
                deletions: Deletions::Keys(Vec::new()),
                cursor: None,
            });
        }
        let parsed = parse_users(&bytes, self.settings.delimiter as u8);
        bytes.zeroize();
        let rows = parsed.map_err(|problems| {
            let shown: Vec<String> = problems
                .iter()
                .take(SHOWN_PROBLEMS)
                .map(ToString::to_string)
                .collect();
            let more = problems.len().saturating_sub(SHOWN_PROBLEMS);
            let tail = if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            };
            SourceError::Malformed(format!(
                "{}: {} problem(s), nothing applied: {}{tail}",
                self.settings.path.display(),
                problems.len(),
                shown.join("; ")
            ))
        })?;
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        let base = cursor.and_then(|c| memory.seen.iter().find(|(d, _)| d == c));
        let mut digests = HashMap::with_capacity(rows.len());
        let mut changed = Vec::new();
        let mut present = Vec::new();
        for row in rows {
            let d = self.row_digest(&row);
            digests.insert(row.id.clone(), d);
            if base.is_some_and(|(_, b)| b.get(&row.id) == Some(&d)) {
                present.push(row.id);
            } else {
                changed.push(upstream_user(row));
            }
        }
        // Keep the base (in case this batch is not applied) and the new one.
        let base = base.cloned();
        memory.seen = base.into_iter().collect();
        memory.seen.push((digest.clone(), digests));
        Ok(Batch {
            changed,
            deletions: Deletions::AllExcept { present },
            cursor: Some(digest),
        })
    }
}

fn upstream_user(row: ImportRow) -> UpstreamUser {
    UpstreamUser {
        key: row.id.clone(),
        id: row.id,
        name: row.name,
        email: row.email,
        groups: row.groups,
        pin: row.pin,
        cards: row.cards,
        enabled: true,
        valid_from: None,
        valid_until: None,
        // A file has no per-row versions (rows changed since the last file are tracked
        // in memory instead).
        version: None,
    }
}

/// Reads the file, refusing one that changes while it is read (being written).
fn read_stable(path: &std::path::Path) -> Result<Vec<u8>, SourceError> {
    let shown = path.display();
    let stamp = |m: std::fs::Metadata| (m.len(), m.modified().ok());
    let meta = |p| std::fs::metadata(p).map(stamp);
    let unreadable =
        |e: std::io::Error| SourceError::Unavailable(format!("cannot read {shown}: {e}"));
    let before = meta(path).map_err(unreadable)?;
    if before.0 > MAX_IMPORT_BYTES as u64 {
        return Err(SourceError::Malformed(format!(
            "{shown} is larger than {} MiB",
            MAX_IMPORT_BYTES >> 20
        )));
    }
    let mut bytes = std::fs::read(path).map_err(unreadable)?;
    let after = meta(path).map_err(unreadable)?;
    if before != after || bytes.len() as u64 != after.0 {
        bytes.zeroize();
        return Err(SourceError::Unavailable(format!(
            "{shown} changed while it was read (being written?); trying again later"
        )));
    }
    Ok(bytes)
}

impl Source for CsvSource {
    fn fetch<'a>(&'a self, cursor: Option<&'a [u8]>) -> FetchFuture<'a> {
        Box::pin(async move { tokio::task::block_in_place(|| self.fetch_now(cursor)) })
    }
}

#[cfg(test)]
#[path = "csv_tests.rs"]
mod tests;
