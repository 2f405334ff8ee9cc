//! The CSV/TSV file source: the whole file is the directory (import rules: a header row,
//! every row valid or nothing applied). Polled by the engine's interval: the cursor is a
//! keyed digest of the content, so an unchanged file costs one read and no hashing. The
//! file is read in pieces for the digest and record by record for the rows, never whole.
//! Polling rather than inotify: it works for files replaced by rename, on network mounts
//! and in containers, and the interval bounds how late a change is seen anyway.

use super::listing::{Chunks, Gone, KeySet, Listing};
use super::source::{Batch, Deletions, FetchFuture, ListFuture, Source, SourceError, UpstreamUser};
use crate::lifecycle::import::{ImportProblem, ImportRow, Parsed, RowStream};
use blake2::digest::{FixedOutput, KeyInit, Update};
use blake2::Blake2bMac512;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;

/// Problems quoted in one error; the rest are counted.
const SHOWN_PROBLEMS: usize = 10;

#[derive(Clone, Debug, Serialize)]
pub struct CsvSettings {
    pub path: PathBuf,
    /// `,` or a tab (`.tsv` files default to tab).
    pub delimiter: char,
}

type Digest = [u8; 32];

/// What this process last handed out: for a file digest, a 64-bit keyed digest of each row
/// under a 64-bit keyed digest of its id. Only in memory; lets a changed file re-hash only
/// the PINs of changed rows. 16 bytes a row (a million-row file: ~20 MiB with the map's
/// slack, not the ~90 MiB of ids and full digests); a changed row is taken for unchanged
/// only if both its id's and its content's keyed 64-bit digests collide, ~2^-64 a row.
#[derive(Default)]
struct Memory {
    seen: Vec<Seen>,
}

/// One listing the engine may still build on: the file digest (the cursor) and each row's
/// digest by id digest.
type Seen = (Vec<u8>, HashMap<u64, u64>);

impl Memory {
    /// Keeps the cursor's listing (in case this batch is not applied) and the new one.
    fn remember(&mut self, cursor: Option<&[u8]>, digest: Vec<u8>, digests: HashMap<u64, u64>) {
        let base = cursor.and_then(|c| self.seen.iter().find(|(d, _)| d == c).cloned());
        self.seen = base.into_iter().collect();
        self.seen.push((digest, digests));
    }
}

fn mac(key: &[u8; 32], parts: &[&[u8]]) -> Digest {
    let mut mac = <Blake2bMac512 as KeyInit>::new_from_slice(key)
        .expect("a 32-byte key is valid for BLAKE2b");
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&mac.finalize_fixed()[..32]);
    out
}

/// The short keyed digest a row's id is known by in `Memory`.
fn id_digest(key: &[u8; 32], id: &str) -> u64 {
    short(&mac(key, &[b"id", id.as_bytes()]))
}

/// The first 8 bytes of a keyed digest.
fn short(d: &Digest) -> u64 {
    u64::from_be_bytes(d[..8].try_into().expect("a digest has 32 bytes"))
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
        mac(&self.key, parts)
    }

    /// Records `row`'s digest in `digests` under its id's digest; that id digest, and
    /// whether the cursor's listing (`base`) had the row unchanged.
    fn sort_row(
        &self,
        base: Option<&Seen>,
        digests: &mut HashMap<u64, u64>,
        row: &ImportRow,
    ) -> (u64, bool) {
        let d = short(&self.row_digest(row));
        let id = id_digest(&self.key, &row.id);
        digests.insert(id, d);
        (id, base.is_some_and(|(_, b)| b.get(&id) == Some(&d)))
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

    /// The keyed digest of the file's `len` bytes, read in pieces (the same value as
    /// `mac(&[whole file])`).
    fn file_digest(&self, len: u64) -> Result<Digest, SourceError> {
        use std::io::Read;
        let shown = self.settings.path.display();
        let unreadable =
            |e: std::io::Error| SourceError::Unavailable(format!("cannot read {shown}: {e}"));
        let mut file = std::fs::File::open(&self.settings.path).map_err(unreadable)?;
        let mut mac = <Blake2bMac512 as KeyInit>::new_from_slice(&self.key)
            .expect("a 32-byte key is valid for BLAKE2b");
        mac.update(&len.to_be_bytes());
        let mut buf = zeroize::Zeroizing::new(vec![0u8; 64 * 1024]);
        let mut read = 0u64;
        loop {
            let n = file.read(&mut buf).map_err(unreadable)?;
            if n == 0 {
                break;
            }
            mac.update(&buf[..n]);
            read += n as u64;
        }
        if read != len {
            return Err(changed(&self.settings.path));
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(&mac.finalize_fixed()[..32]);
        Ok(out)
    }

    /// The file's rows, read record by record (never whole), or its problems as one error.
    fn read_rows(&self) -> Result<Vec<ImportRow>, SourceError> {
        let mut rows = Vec::new();
        self.scan(|row| rows.push(row))?;
        Ok(rows)
    }

    /// Visits the file's rows record by record (never whole); its problems as one error.
    /// A file with a problem is visited up to the first one only.
    fn scan(&self, mut visit: impl FnMut(ImportRow)) -> Result<(), SourceError> {
        let shown = self.settings.path.display();
        let file = std::fs::File::open(&self.settings.path)
            .map_err(|e| SourceError::Unavailable(format!("cannot read {shown}: {e}")))?;
        let malformed = |problems: &[ImportProblem], total: usize| {
            let shown_problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
            let more = total.saturating_sub(problems.len());
            let tail = if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            };
            SourceError::Malformed(format!(
                "{shown}: {total} problem(s), nothing applied: {}{tail}",
                shown_problems.join("; ")
            ))
        };
        let stream = RowStream::new(file, self.settings.delimiter as u8)
            .map_err(|p| malformed(std::slice::from_ref(&p), 1))?;
        let mut problems = Vec::new();
        let mut total = 0;
        for item in stream {
            match item {
                Parsed::Row(row) if total == 0 => visit(row),
                Parsed::Row(_) => {}
                Parsed::Problems(p) => {
                    total += p.len();
                    let room = SHOWN_PROBLEMS.saturating_sub(problems.len());
                    problems.extend(p.into_iter().take(room));
                }
            }
        }
        if total > 0 {
            return Err(malformed(&problems, total));
        }
        Ok(())
    }

    /// The listing of the file: a first read checks every row and sorts the changed ones
    /// from the unchanged (keeping their ids only); the engine's chunks read it again.
    fn list_now(&self, cursor: Option<&[u8]>) -> Result<Listing, SourceError> {
        let before = stamp(&self.settings.path)?;
        let digest = self.file_digest(before.0)?.to_vec();
        if cursor == Some(digest.as_slice()) {
            return Ok(Listing::whole(Batch {
                changed: Vec::new(),
                deletions: Deletions::Keys(Vec::new()),
                cursor: None,
            }));
        }
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        let base = cursor.and_then(|c| memory.seen.iter().find(|(d, _)| d == c));
        let mut digests = HashMap::new();
        let mut keys = KeySet::default();
        let mut present = KeySet::default();
        let mut wanted = HashSet::new();
        let mut pins = 0;
        self.scan(|row| {
            let (id, unchanged) = self.sort_row(base, &mut digests, &row);
            if unchanged {
                present.insert(&row.id);
            } else {
                pins += usize::from(row.pin.is_some());
                wanted.insert(id);
                keys.insert(&row.id);
            }
        })?;
        if stamp(&self.settings.path)? != before {
            return Err(changed(&self.settings.path));
        }
        memory.remember(cursor, digest.clone(), digests);
        Ok(Listing {
            keys,
            deletions: Gone::AllExcept { present },
            cursor: Some(digest),
            skipped: Vec::new(),
            pins,
            chunks: Box::new(FileChunks {
                settings: self.settings.clone(),
                key: self.key,
                wanted,
                before,
                rows: None,
            }),
        })
    }

    fn fetch_now(&self, cursor: Option<&[u8]>) -> Result<Batch, SourceError> {
        let before = stamp(&self.settings.path)?;
        let digest = self.file_digest(before.0)?.to_vec();
        if cursor == Some(digest.as_slice()) {
            return Ok(Batch {
                changed: Vec::new(),
                deletions: Deletions::Keys(Vec::new()),
                cursor: None,
            });
        }
        let rows = self.read_rows()?;
        if stamp(&self.settings.path)? != before {
            return Err(changed(&self.settings.path));
        }
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        let base = cursor.and_then(|c| memory.seen.iter().find(|(d, _)| d == c));
        let mut digests = HashMap::with_capacity(rows.len());
        let mut changed = Vec::new();
        let mut present = Vec::new();
        for row in rows {
            if self.sort_row(base, &mut digests, &row).1 {
                present.push(row.id);
            } else {
                changed.push(upstream_user(row));
            }
        }
        memory.remember(cursor, digest.clone(), digests);
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

/// The file's size and modification time: a file whose stamp moves while it is read is
/// being written, and is read again later.
fn stamp(path: &std::path::Path) -> Result<Stamp, SourceError> {
    let m = std::fs::metadata(path)
        .map_err(|e| SourceError::Unavailable(format!("cannot read {}: {e}", path.display())))?;
    Ok((m.len(), m.modified().ok()))
}

fn changed(path: &std::path::Path) -> SourceError {
    SourceError::Unavailable(format!(
        "{} changed while it was read (being written?); trying again later",
        path.display()
    ))
}

impl Source for CsvSource {
    fn fetch<'a>(&'a self, cursor: Option<&'a [u8]>) -> FetchFuture<'a> {
        Box::pin(async move { tokio::task::block_in_place(|| self.fetch_now(cursor)) })
    }

    fn list<'a>(&'a self, cursor: Option<&'a [u8]>) -> ListFuture<'a> {
        Box::pin(async move { tokio::task::block_in_place(|| self.list_now(cursor)) })
    }
}

type Stamp = (u64, Option<std::time::SystemTime>);

/// The changed rows of a listed file, read again a chunk at a time. The file was checked
/// whole by the listing: a problem now, or a stamp that moved by the end, means it changed
/// meanwhile, and the run is dropped.
struct FileChunks {
    settings: CsvSettings,
    key: [u8; 32],
    /// The id digests of the rows to hand out.
    wanted: HashSet<u64>,
    before: Stamp,
    rows: Option<RowStream<std::fs::File>>,
}

impl Chunks for FileChunks {
    fn next_chunk(&mut self, max: usize) -> Result<Vec<UpstreamUser>, SourceError> {
        let path = &self.settings.path;
        let rows = match &mut self.rows {
            Some(rows) => rows,
            None => {
                let file = std::fs::File::open(path).map_err(|e| {
                    SourceError::Unavailable(format!("cannot read {}: {e}", path.display()))
                })?;
                let rows = RowStream::new(file, self.settings.delimiter as u8)
                    .map_err(|_| changed(path))?;
                self.rows.insert(rows)
            }
        };
        let mut out = Vec::new();
        while out.len() < max.max(1) {
            match rows.next() {
                Some(Parsed::Row(row)) => {
                    if self.wanted.contains(&id_digest(&self.key, &row.id)) {
                        out.push(upstream_user(row));
                    }
                }
                Some(Parsed::Problems(_)) => return Err(changed(path)),
                None => {
                    if stamp(path)? != self.before {
                        return Err(changed(path));
                    }
                    break;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "csv_tests.rs"]
mod tests;
