//! `pinwarden store check` and `store repair` over a stopped store (a child of `sled.rs`):
//! check reads every tree and reports counts and problems (undecodable records, index
//! entries naming missing users, missing meta); repair copies the whole store directory to
//! a timestamped backup beside it first, then builds a new store from every record that can
//! still be read, keeping meta (pepper fingerprint, argon2 parameters, site salt), and says
//! what was kept and what was lost. Never run by the daemon.

use super::open::{try_open, Failure};
use crate::domain::{AuditEvent, LockoutState, QueuedMail, Timestamp, User};
use crate::store::{ForgotRow, OpenError, SyncState};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Problems listed per tree at most (all are counted).
const LISTED: usize = 20;

/// One tree's records and problems.
#[derive(Debug, Default, Serialize)]
pub struct TreeReport {
    pub name: String,
    pub records: u64,
    /// Records a repair would drop.
    pub bad: u64,
    pub problems: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct CheckReport {
    pub path: String,
    pub trees: Vec<TreeReport>,
    /// Problems of the store as a whole (meta, leftover files).
    pub problems: Vec<String>,
}

impl CheckReport {
    pub fn clean(&self) -> bool {
        self.problems.is_empty() && self.trees.iter().all(|t| t.problems.is_empty())
    }
}

#[derive(Debug, Default, Serialize)]
pub struct RepairReport {
    pub backup: String,
    /// What the new store holds and what was left out, per tree.
    pub trees: Vec<TreeReport>,
    /// Steps taken to make the old store readable at all.
    pub steps: Vec<String>,
}

/// How a tree's values are checked; index trees name a user id.
#[derive(Clone, Copy)]
enum Kind {
    Users,
    Index,
    Json(fn(&[u8]) -> bool),
    Raw,
}

fn json<T: serde::de::DeserializeOwned>(v: &[u8]) -> bool {
    serde_json::from_slice::<T>(v).is_ok()
}

const TREES: &[(&str, Kind)] = &[
    ("users", Kind::Users),
    ("pin_tags", Kind::Index),
    ("card_ids", Kind::Index),
    ("upstream_keys", Kind::Index),
    ("pin_tags_shared", Kind::Json(json::<Vec<String>>)),
    ("lockouts", Kind::Json(json::<LockoutState>)),
    ("audit", Kind::Json(json::<AuditEvent>)),
    ("outbox", Kind::Json(json::<AuditEvent>)),
    ("mail", Kind::Json(json::<QueuedMail>)),
    ("sync_state", Kind::Json(json::<SyncState>)),
    ("forgot", Kind::Json(json::<ForgotRow>)),
    ("recovery", Kind::Json(json::<Vec<Timestamp>>)),
    ("web_links", Kind::Json(json::<crate::domain::WebLink>)),
    ("web_link_users", Kind::Raw),
    ("reminders", Kind::Raw),
    ("retired_tags", Kind::Raw),
    ("sync_journal", Kind::Raw),
    ("meta", Kind::Raw),
];

const META_KEYS: &[&str] = &[
    "schema_version",
    "salt",
    "pepper_fingerprint",
    "hash_params",
];

fn open_error(dir: &Path, f: Failure) -> OpenError {
    let path = dir.display().to_string();
    match f {
        Failure::InUse => OpenError::InUse(path),
        Failure::Disk(errno, message) => OpenError::Disk {
            path,
            errno,
            message,
        },
        Failure::Corrupt(message) => OpenError::Corrupt { path, message },
    }
}

/// Reads every record of the store at `dir` (which must not be in use).
pub fn check(dir: &Path) -> Result<CheckReport, OpenError> {
    exists(dir)?;
    let db = match try_open(dir, 8) {
        Ok(db) => db,
        Err(Failure::Corrupt(message)) => {
            return Ok(CheckReport {
                path: dir.display().to_string(),
                trees: Vec::new(),
                problems: vec![format!(
                    "the store does not open ({message}); `pinwarden store repair` backs it up \
                     and retries without its settings file and snapshots"
                )],
            })
        }
        Err(f) => return Err(open_error(dir, f)),
    };
    let mut report = scan(&db, None);
    report.path = dir.display().to_string();
    Ok(report)
}

/// Reads every tree of `db`; with `into`, copies each good record there.
fn scan(db: &sled::Db, into: Option<&sled::Db>) -> CheckReport {
    let mut report = CheckReport::default();
    let mut users = BTreeSet::new();
    for (name, kind) in TREES {
        let mut tree_report = TreeReport {
            name: (*name).into(),
            ..TreeReport::default()
        };
        match db.open_tree(name) {
            Ok(tree) => {
                let target = into.map(|n| n.open_tree(name));
                let target = match target.transpose() {
                    Ok(t) => t,
                    Err(e) => {
                        report
                            .problems
                            .push(format!("cannot create tree {name}: {e}"));
                        None
                    }
                };
                scan_tree(&tree, *kind, &mut users, target.as_ref(), &mut tree_report);
            }
            Err(e) => tree_report
                .problems
                .push(format!("cannot open the tree: {e}")),
        }
        report.trees.push(tree_report);
    }
    check_meta(db, &users, &mut report);
    if let Some(new) = into {
        let count = (users.len() as u64).to_be_bytes();
        if let Err(e) = new
            .open_tree("meta")
            .and_then(|m| m.insert("user_count", &count))
        {
            report
                .problems
                .push(format!("cannot write meta.user_count: {e}"));
        }
    }
    report
}

fn scan_tree(
    tree: &sled::Tree,
    kind: Kind,
    users: &mut BTreeSet<Vec<u8>>,
    into: Option<&sled::Tree>,
    report: &mut TreeReport,
) {
    let problem = |report: &mut TreeReport, what: String| {
        report.bad += 1;
        if report.problems.len() < LISTED {
            report.problems.push(what);
        }
    };
    for item in tree.iter() {
        let (key, value) = match item {
            Ok(kv) => kv,
            Err(e) => {
                problem(
                    report,
                    format!("reading stopped after {} records: {e}", report.records),
                );
                break;
            }
        };
        report.records += 1;
        let shown = String::from_utf8_lossy(&key)
            .chars()
            .take(60)
            .collect::<String>();
        let good = match kind {
            Kind::Users => match serde_json::from_slice::<User>(&value) {
                Ok(u) if u.id.as_bytes() == key.as_ref() => true,
                Ok(u) => {
                    problem(
                        report,
                        format!("user `{shown}` holds the record of `{}`", u.id),
                    );
                    false
                }
                Err(e) => {
                    problem(report, format!("user `{shown}`: undecodable record ({e})"));
                    false
                }
            },
            Kind::Index if !users.contains(value.as_ref()) => {
                let id = String::from_utf8_lossy(&value);
                problem(
                    report,
                    format!("an entry points at the missing user `{id}`"),
                );
                false
            }
            Kind::Json(valid) if !valid(&value) => {
                problem(report, format!("record `{shown}`: undecodable"));
                false
            }
            _ => true,
        };
        if good {
            if matches!(kind, Kind::Users) {
                users.insert(key.to_vec());
            }
            if let Some(into) = into {
                if let Err(e) = into.insert(&key, value) {
                    problem(report, format!("cannot copy `{shown}`: {e}"));
                }
            }
        }
    }
}

fn check_meta(db: &sled::Db, users: &BTreeSet<Vec<u8>>, report: &mut CheckReport) {
    let Ok(meta) = db.open_tree("meta") else {
        return;
    };
    for key in META_KEYS {
        if !matches!(meta.get(key), Ok(Some(_))) {
            report.problems.push(format!("meta.{key} is missing"));
        }
    }
    let counted = meta
        .get("user_count")
        .ok()
        .flatten()
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map(u64::from_be_bytes);
    if counted.is_some_and(|n| n != users.len() as u64) {
        report.problems.push(format!(
            "meta.user_count says {} but {} users are readable",
            counted.unwrap_or(0),
            users.len()
        ));
    }
}

/// Backs the store at `dir` up beside it, then rebuilds it from every readable record.
pub fn repair(dir: &Path) -> Result<RepairReport, OpenError> {
    let path = dir.display().to_string();
    let io = |what: &str, e: std::io::Error| OpenError::Io {
        path: path.clone(),
        message: format!("{what}: {e}"),
    };
    exists(dir)?;
    let mut steps = Vec::new();
    let old = match try_open(dir, 8) {
        Err(Failure::InUse) => return Err(OpenError::InUse(path)),
        other => other,
    };
    let stamp = Timestamp::now().to_string().replace(':', "");
    let backup = PathBuf::from(format!("{path}.backup-{stamp}"));
    drop(old);
    copy_dir(dir, &backup)
        .map_err(|e| io("backing the store up failed (nothing was changed)", e))?;
    let old = match try_open(dir, 8) {
        Ok(db) => db,
        Err(Failure::Corrupt(message)) => {
            steps.push(format!(
                "the store did not open ({message}): its settings file and any incomplete \
                 snapshot were removed so that sled reads the data files alone"
            ));
            remove_damaged_settings(dir);
            try_open(dir, 8).map_err(|f| open_error(dir, f))?
        }
        Err(f) => return Err(open_error(dir, f)),
    };
    let fresh = PathBuf::from(format!("{path}.repairing"));
    let _ = std::fs::remove_dir_all(&fresh);
    let new = try_open(&fresh, 8).map_err(|f| open_error(&fresh, f))?;
    let scanned = scan(&old, Some(&new));
    steps.extend(scanned.problems);
    new.flush().map_err(|e| OpenError::Io {
        path: fresh.display().to_string(),
        message: e.to_string(),
    })?;
    drop((old, new));
    std::fs::remove_dir_all(dir).map_err(|e| io("removing the damaged store", e))?;
    std::fs::rename(&fresh, dir).map_err(|e| io("moving the rebuilt store into place", e))?;
    Ok(RepairReport {
        backup: backup.display().to_string(),
        trees: scanned.trees,
        steps,
    })
}

/// A store to check must be there: sled would create an empty one.
fn exists(dir: &Path) -> Result<(), OpenError> {
    if dir.join("db").exists() {
        return Ok(());
    }
    Err(OpenError::Io {
        path: dir.display().to_string(),
        message: "there is no store here (no `db` file): check state_dir in the configuration"
            .into(),
    })
}

fn remove_damaged_settings(dir: &Path) {
    let _ = std::fs::remove_file(dir.join("conf"));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with("snap.") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
