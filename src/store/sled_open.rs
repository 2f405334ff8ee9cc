//! Opening the sled store (a child of `sled.rs`): the open guard (one process per store),
//! a corrupt store moved aside and rebuilt, the meta checks (schema version, pepper
//! fingerprint, argon2 parameters, site salt) and the roll-forward of an interrupted sync.

use super::{journal, SledStore};
use crate::domain::Timestamp;
use crate::store::{OpenError, OpenParams, Opened, SCHEMA_VERSION};
use sled::Db;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

impl SledStore {
    /// Opens (or creates) the store at `dir`. A store that panics or reports corruption on
    /// open is moved aside, loudly, and a fresh one created; one held by another process,
    /// or created with another pepper or argon2 parameters, refuses to open.
    pub fn open(
        dir: &Path,
        params: OpenParams<'_>,
    ) -> std::result::Result<Opened<Self>, OpenError> {
        let path = dir.display().to_string();
        let mut moved_aside = None;
        let db = match try_open(dir, params.cache_capacity_mib) {
            Ok(db) => db,
            Err(Failure::InUse) => return Err(OpenError::InUse(path)),
            Err(Failure::Corrupt(message)) => {
                let aside = format!("{path}.corrupt-{}", Timestamp::now().millis());
                std::fs::rename(dir, &aside).map_err(|e| OpenError::Io {
                    path: path.clone(),
                    message: format!("{message}; moving it aside failed: {e}"),
                })?;
                tracing::error!(store = %path, moved_to = %aside, reason = %message,
                    "the store was corrupt: moved aside and starting with an empty one; \
                     local users must be restored (import) and upstream users re-synced");
                moved_aside = Some(aside);
                try_open(dir, params.cache_capacity_mib).map_err(|f| OpenError::Io {
                    path: path.clone(),
                    message: f.to_string(),
                })?
            }
            Err(Failure::Other(message)) => return Err(OpenError::Io { path, message }),
        };
        let io = |e: sled::Error| OpenError::Io {
            path: path.clone(),
            message: e.to_string(),
        };
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
        journal::recover(&store).map_err(|e| OpenError::Io {
            path: path.clone(),
            message: format!("completing an interrupted directory sync: {e}"),
        })?;
        Ok(Opened {
            store,
            salt,
            created,
            moved_aside,
        })
    }

    fn check_meta(
        &self,
        path: &str,
        params: &OpenParams<'_>,
    ) -> std::result::Result<([u8; 16], bool), OpenError> {
        let io = |e: sled::Error| OpenError::Io {
            path: path.into(),
            message: e.to_string(),
        };
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
            .ok_or_else(|| OpenError::Io {
                path: path.into(),
                message: "meta.salt is missing or damaged".into(),
            })?;
        Ok((salt, false))
    }
}

enum Failure {
    InUse,
    Corrupt(String),
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::InUse => f.write_str("in use by another process"),
            Failure::Corrupt(m) | Failure::Other(m) => f.write_str(m),
        }
    }
}

fn try_open(dir: &Path, cache_mib: u64) -> std::result::Result<Db, Failure> {
    let config = sled::Config::new()
        .path(dir)
        .cache_capacity(cache_mib * 1024 * 1024);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || config.open())) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(sled::Error::Io(e)))
            if e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("lock") =>
        {
            Err(Failure::InUse)
        }
        Ok(Err(sled::Error::Io(e))) => Err(Failure::Other(e.to_string())),
        Ok(Err(e @ sled::Error::Corruption { .. })) => Err(Failure::Corrupt(e.to_string())),
        Ok(Err(e)) => Err(Failure::Corrupt(e.to_string())),
        Err(_) => Err(Failure::Corrupt(
            "sled panicked while opening the store".into(),
        )),
    }
}
