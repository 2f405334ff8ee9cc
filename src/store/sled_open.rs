//! Opening the sled store (a child of `sled.rs`): the open guard (one process per store),
//! incomplete snapshot files cleared, open failures sorted into "the disk" (ENOSPC, EIO,
//! EROFS, EACCES: touch nothing) and "corruption" (stop and point at `store check` /
//! `store repair`) — a store is never moved aside or rebuilt here — then the meta checks
//! (schema version, pepper fingerprint, argon2 parameters, site salt) and the roll-forward
//! of an interrupted sync.

use super::{journal, SledStore};
use crate::store::{OpenError, OpenParams, Opened, SCHEMA_VERSION};
use sled::Db;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

impl SledStore {
    /// Opens (or creates) the store at `dir`. Leftover `snap.*.generating` files (a crash
    /// while sled wrote a snapshot) are deleted first. A store held by another process, a
    /// disk error, corruption, or a store created with another pepper or argon2 parameters
    /// refuses to open; nothing is moved or rebuilt.
    pub fn open(
        dir: &Path,
        params: OpenParams<'_>,
    ) -> std::result::Result<Opened<Self>, OpenError> {
        Self::open_with(dir, params, true)
    }

    /// `open`, leaving the sync journal as it is: a batch being staged stays staged and a
    /// committed one is not completed here. For a reopen right after a good flush (to give
    /// back sled's memory) in the middle of a batch, which then goes on.
    pub(crate) fn open_mid_batch(
        dir: &Path,
        params: OpenParams<'_>,
    ) -> std::result::Result<Opened<Self>, OpenError> {
        Self::open_with(dir, params, false)
    }

    fn open_with(
        dir: &Path,
        params: OpenParams<'_>,
        recover: bool,
    ) -> std::result::Result<Opened<Self>, OpenError> {
        let path = dir.display().to_string();
        clear_incomplete_snapshots(dir);
        let db = match try_open(dir, params.cache_capacity_mib) {
            Ok(db) => db,
            Err(Failure::InUse) => return Err(OpenError::InUse(path)),
            Err(Failure::Disk(errno, message)) => {
                return Err(OpenError::Disk {
                    path,
                    errno,
                    message,
                })
            }
            Err(Failure::Corrupt(message)) => return Err(OpenError::Corrupt { path, message }),
        };
        let io = |e: sled::Error| open_error(&path, e);
        let tree = |name: &str| db.open_tree(name).map_err(io);
        let store = SledStore {
            users: tree("users")?,
            tags: tree("pin_tags")?,
            cards: tree("card_ids")?,
            lockouts: tree("lockouts")?,
            audit: tree("audit")?,
            meta: tree("meta")?,
            shared: tree("pin_tags_shared")?,
            upstream: tree("upstream_keys")?,
            sync: tree("sync_state")?,
            journal: tree("sync_journal")?,
            forgot: tree("forgot")?,
            recovery: tree("recovery")?,
            links: tree("web_links")?,
            link_users: tree("web_link_users")?,
            audit_len: AtomicU64::new(0),
            outbox: tree("outbox")?,
            outbox_len: AtomicU64::new(0),
            outbox_max: AtomicU64::new(0),
            mail: tree("mail")?,
            reminders: tree("reminders")?,
            retired: tree("retired_tags")?,
            db: db.clone(),
        };
        store
            .audit_len
            .store(store.audit.len() as u64, Ordering::Relaxed);
        store
            .outbox_len
            .store(store.outbox.len() as u64, Ordering::Relaxed);
        let (salt, created) = store.check_meta(&path, &params)?;
        if recover {
            journal::recover(&store).map_err(|e| OpenError::Io {
                path: path.clone(),
                message: format!("completing an interrupted directory sync: {e}"),
            })?;
        }
        Ok(Opened {
            store,
            salt,
            created,
        })
    }

    fn check_meta(
        &self,
        path: &str,
        params: &OpenParams<'_>,
    ) -> std::result::Result<([u8; 16], bool), OpenError> {
        let io = |e: sled::Error| open_error(path, e);
        let get = |k: &str| self.meta.get(k).map_err(io);
        let Some(version) = get("schema_version")? else {
            let salt: [u8; 16] = rand::random();
            self.meta.insert("salt", &salt).map_err(io)?;
            self.meta
                .insert("pepper_fingerprint", params.pepper_fingerprint)
                .map_err(io)?;
            self.meta
                .insert("hash_params", params.hash_params)
                .map_err(io)?;
            self.meta
                .insert("schema_version", &SCHEMA_VERSION.to_be_bytes())
                .map_err(io)?;
            self.db.flush().map_err(io)?;
            return Ok((salt, true));
        };
        let found = <[u8; 4]>::try_from(version.as_ref())
            .map(u32::from_be_bytes)
            .unwrap_or(u32::MAX);
        if found > SCHEMA_VERSION {
            return Err(OpenError::SchemaTooNew {
                path: path.into(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if get("pepper_fingerprint")?.as_deref() != Some(params.pepper_fingerprint.as_bytes()) {
            return Err(OpenError::PepperMismatch { path: path.into() });
        }
        let stored = get("hash_params")?
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default();
        if stored != params.hash_params {
            return Err(OpenError::ParamsMismatch {
                path: path.into(),
                stored,
                configured: params.hash_params.into(),
            });
        }
        let salt = get("salt")?
            .and_then(|v| <[u8; 16]>::try_from(v.as_ref()).ok())
            .ok_or_else(|| OpenError::Corrupt {
                path: path.into(),
                message: "meta.salt is missing or damaged".into(),
            })?;
        Ok((salt, false))
    }
}

pub(super) enum Failure {
    InUse,
    /// The disk said no: the errno's name, and sled's message.
    Disk(&'static str, String),
    Corrupt(String),
}

/// Errno values that mean "the disk or its permissions", not "the data": an open or write
/// failing with one of them must leave the store exactly as it is.
pub(crate) fn disk_errno(e: &std::io::Error) -> Option<&'static str> {
    match e.raw_os_error()? {
        libc::ENOSPC => Some("ENOSPC (no space left on device)"),
        libc::EDQUOT => Some("EDQUOT (disk quota exceeded)"),
        libc::EIO => Some("EIO (input/output error)"),
        libc::EROFS => Some("EROFS (read-only file system)"),
        libc::EACCES => Some("EACCES (permission denied)"),
        libc::EPERM => Some("EPERM (operation not permitted)"),
        _ => None,
    }
}

/// A sled error after the database opened (meta checks, journal): disk or corruption.
fn open_error(path: &str, e: sled::Error) -> OpenError {
    match classify(e) {
        Failure::InUse => OpenError::InUse(path.into()),
        Failure::Disk(errno, message) => OpenError::Disk {
            path: path.into(),
            errno,
            message,
        },
        Failure::Corrupt(message) => OpenError::Corrupt {
            path: path.into(),
            message,
        },
    }
}

fn classify(e: sled::Error) -> Failure {
    match e {
        sled::Error::Io(e)
            if e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock") =>
        {
            Failure::InUse
        }
        sled::Error::Io(e) => match disk_errno(&e) {
            Some(errno) => Failure::Disk(errno, e.to_string()),
            None => Failure::Disk("I/O error", e.to_string()),
        },
        e => Failure::Corrupt(e.to_string()),
    }
}

/// Deletes `snap.*.generating` files: sled writes a snapshot under that name and renames it
/// when complete, so one left over is an interrupted write (a crash or a full disk), never
/// the only copy of anything. Each is logged.
fn clear_incomplete_snapshots(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => tracing::warn!(file = %entry.path().display(),
                    "deleted an incomplete store snapshot left by an interrupted write"),
                Err(e) => tracing::error!(file = %entry.path().display(), error = %e,
                    "cannot delete an incomplete store snapshot"),
            }
        }
    }
}

pub(super) fn try_open(dir: &Path, cache_mib: u64) -> std::result::Result<Db, Failure> {
    let config = sled::Config::new()
        .path(dir)
        .cache_capacity(cache_mib * 1024 * 1024);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || config.open())) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(classify(e)),
        Err(_) => Err(Failure::Corrupt(
            "sled panicked while opening the store".into(),
        )),
    }
}
