//! What a sync run reports: the options an operator gives it, the `Summary` that
//! `pinwarden sync` prints and `status` shows, and the audit events it leaves. User ids and
//! counts only; never a PIN.

use super::weak::{self, Weak};
use crate::domain::{AuditKind, PinAction, SyncOutcome};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct RunOptions {
    /// Ignore the cursor: a complete listing, every PIN re-hashed.
    pub full: bool,
    /// Bypass the mass-deletion guard for this run only.
    pub force: bool,
}

/// What one run did; user ids but never a PIN.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    pub source: String,
    /// `applied`, or `unchanged` when the source had nothing new.
    pub outcome: SyncOutcome,
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    pub rehashed: usize,
    /// Users whose PIN another user holds too: PIN-only login is off for them.
    pub collisions: Vec<String>,
    pub skipped: Vec<String>,
    pub users: u64,
    pub complete: bool,
    /// Directory PINs of this run that break the PIN policy (kept under `warn`, left out
    /// under `refuse`).
    #[serde(default)]
    pub weak_pins: usize,
    /// Their users' ids, at most [`weak::LIST_CAP`] of them.
    #[serde(default)]
    pub weak_pin_users: Vec<String>,
    pub millis: u64,
}

pub(super) fn audit(s: &Summary, error: Option<String>) -> AuditKind {
    AuditKind::Sync {
        source: s.source.clone(),
        outcome: s.outcome,
        added: s.added,
        changed: s.changed,
        removed: s.removed,
        rehashed: s.rehashed,
        collisions: s.collisions.len(),
        skipped: s.skipped.len(),
        error,
    }
}

/// One `Pin { weak_upstream }` event per weak PIN applied, at most [`weak::LIST_CAP`] a run:
/// the rule broken and what was done, never the PIN.
pub(super) fn weak_audit(source: &str, found: &[Weak], refused: bool) -> Vec<AuditKind> {
    let done = if refused {
        "left out, the user has no PIN"
    } else {
        "kept"
    };
    found
        .iter()
        .take(weak::LIST_CAP)
        .map(|w| AuditKind::Pin {
            action: PinAction::WeakUpstream,
            user: w.user.clone(),
            detail: Some(format!("directory `{source}`: PIN is {}; {done}", w.rule)),
        })
        .collect()
}
