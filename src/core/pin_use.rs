//! What a grant by a limited-use or a pending (forgotten-PIN) PIN costs: after `decide`
//! grants and before any action or reply, the use is counted in the store in one
//! transaction (`Store::use_pin`), audited, and flushed before the OK. A use lost to a
//! parallel grant, or a PIN changed meanwhile, turns the grant into a denial. Unlimited
//! PINs and the duress PIN never come here: they cost no store write.

use super::{Core, Evaluated};
use crate::domain::{AuditKind, AuthRequest, Credential, Decision, DenyReason, PinAction};
use crate::domain::{Tag, Timestamp, User};
use crate::store::{PinUse, StoreError};
use std::sync::Arc;

/// Whether a grant by `tag` must be counted: it is `user`'s limited-use PIN or pending PIN.
pub(super) fn counted(user: &User, tag: &Tag) -> bool {
    let limited = user
        .pin
        .as_ref()
        .is_some_and(|p| p.tag == *tag && p.uses_left.is_some());
    limited || user.pending_pin.as_ref().is_some_and(|p| p.tag == *tag)
}

impl Core {
    /// Counts the use of a granted limited-use or pending PIN; anything else passes through.
    pub(super) async fn count_use(
        &self,
        request: &AuthRequest,
        evaluated: Evaluated,
        now: Timestamp,
    ) -> Result<Evaluated, StoreError> {
        let (Decision::Grant { user, .. }, Some(tag)) = (&evaluated.decision, evaluated.counted)
        else {
            return Ok(evaluated);
        };
        let used = self.store.use_pin(user, &tag, now)?;
        let (action, detail) = match used {
            PinUse::Unlimited => return Ok(evaluated),
            PinUse::Exhausted => return Ok(denied(evaluated, DenyReason::UsesExhausted)),
            PinUse::Gone => {
                // Changed or removed since it was read: what `decide` would now say.
                let reason = match request.credential {
                    Credential::Pin(_) => DenyReason::UnknownPin,
                    _ => DenyReason::WrongPin,
                };
                return Ok(denied(evaluated, reason));
            }
            PinUse::Used { left } => (PinAction::Used, uses_left(left)),
            PinUse::Promoted { left } => {
                let replaced = "the PIN sent after a forgotten-PIN request replaced the old one";
                let detail = match left {
                    Some(left) => format!("{replaced}; {}", uses_left(left)),
                    None => replaced.to_owned(),
                };
                (PinAction::FirstUse, detail)
            }
        };
        self.record(AuditKind::Pin {
            action,
            user: user.clone(),
            detail: Some(detail),
        });
        // A counted use survives a power cut: on disk before the OK.
        self.flush("a PIN use").await;
        Ok(evaluated)
    }

    /// Makes every store write so far durable; a failure is logged (the write itself was
    /// made and sled persists it later), never turned into a different answer.
    pub(super) async fn flush(&self, what: &'static str) {
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || store.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "could not flush {what}"),
            Err(e) => tracing::error!(error = %e, "flush task failed"),
        }
    }
}

fn denied(evaluated: Evaluated, reason: DenyReason) -> Evaluated {
    Evaluated {
        decision: Decision::Deny { reason },
        ..evaluated
    }
}

fn uses_left(left: u32) -> String {
    match left {
        0 => "last use: no use left".into(),
        1 => "1 use left".into(),
        n => format!("{n} uses left"),
    }
}
