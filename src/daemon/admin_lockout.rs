//! `lockout list` and `lockout clear KEY`: the lockout counters as operators see them, and
//! clearing one (a device, source or user lock), audited with the caller (uid or API token). Reads and
//! removes counters through the store; must not change how counters are kept (`core`).

use super::Admin;
use crate::core::lockout::LockoutKey;
use crate::domain::{AdminAction, AuditKind};
use crate::frontend::control::Principal;
use crate::lifecycle::users::AdminError;
use serde_json::{json, Value};

impl Admin {
    /// Every counter: key, failures, locked until (when still locked), last failure.
    pub(super) fn lockout_list(&self) -> Result<Value, AdminError> {
        let now = crate::core::clock::now();
        let rows: Vec<Value> = self
            .store
            .lockouts()?
            .into_iter()
            .map(|(key, s)| {
                json!({
                    "key": key,
                    "failures": s.failures,
                    "locked_until": s.locked_until.filter(|u| *u > now),
                    "last_failure": s.last_failure,
                })
            })
            .collect();
        Ok(json!(rows))
    }

    /// Removes the counter `key`: the device, source or user may try again at once.
    pub(super) fn lockout_clear(&self, key: &str, caller: &Principal) -> Result<Value, AdminError> {
        let Some(parsed) = LockoutKey::parse(key) else {
            return Err(AdminError::Invalid(format!(
                "\"{key}\" is not a lockout key: use device:ID, source:ADDRESS or user:ID as \
                 `pinwarden lockout list` shows them"
            )));
        };
        let key = parsed.to_string();
        let Some(before) = self.store.lockout(&key)? else {
            return Err(AdminError::Invalid(format!(
                "no lockout counter for {key}: see `pinwarden lockout list`"
            )));
        };
        self.store.update_lockout(&key, &|_| None)?;
        tracing::info!(key, by = caller.by(), "lockout cleared by an operator");
        self.store.record(AuditKind::Admin {
            by: Some(caller.by()),
            action: AdminAction::LockoutClear,
            user: match &parsed {
                LockoutKey::User(id) => Some(id.clone()),
                _ => None,
            },
            detail: Some(format!(
                "{key} cleared ({} failures) by {}",
                before.failures,
                caller.describe()
            )),
        });
        Ok(json!({ "key": key, "failures": before.failures }))
    }
}
