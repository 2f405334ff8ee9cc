//! The core's audit records: a decision written once per attempt, refusals that cost no
//! argon2 aggregated through `flood.rs`, duress raised, and the path every frontend and
//! action reports through.

use super::Core;
use crate::domain::{AuditKind, AuthRequest, DenyReason, Timestamp};

impl Core {
    pub(super) fn raise_duress(&self, request: &AuthRequest, user: &str) {
        tracing::warn!(device = %request.device, "duress PIN used");
        self.record(AuditKind::Duress {
            device: request.device.clone(),
            user: user.into(),
        });
    }

    pub(super) fn audit(
        &self,
        request: &AuthRequest,
        user: Option<String>,
        outcome: crate::domain::DecisionOutcome,
        reason: Option<DenyReason>,
    ) {
        let kind = AuditKind::Decision {
            device: request.device.clone(),
            origin: request.origin.clone(),
            credential: request.credential.kind().into(),
            user,
            outcome,
            reason,
            repeated: None,
        };
        // Refusals that cost no argon2 come as fast as they are sent: once per window and
        // key, then counted (`flood.rs`). Evaluated attempts are written one by one.
        let flooding = outcome == crate::domain::DecisionOutcome::Busy
            || matches!(
                reason,
                Some(
                    DenyReason::LockedOut
                        | DenyReason::CredentialNotAdmitted
                        | DenyReason::UnknownDevice
                )
            );
        if !flooding {
            return self.record(kind);
        }
        let key = format!(
            "{}|{}|{outcome}|{}",
            request.device,
            serde_json::to_string(&request.origin).unwrap_or_default(),
            reason.map(DenyReason::as_str).unwrap_or("-")
        );
        for kind in self.flood.admit(key, kind, Timestamp::now().millis()) {
            self.record(kind);
        }
    }

    /// Writes the counts of refusal floods whose window has closed (the audit pruning
    /// worker calls this every minute, so a flood that stopped still gets its count).
    pub fn close_floods(&self) {
        for kind in self.flood.drain(Timestamp::now().millis()) {
            self.record(kind);
        }
    }

    /// Appends an audit event (frontends and actions report through this).
    pub fn record(&self, kind: AuditKind) {
        self.store.record(kind);
    }
}
