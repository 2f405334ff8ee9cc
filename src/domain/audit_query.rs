//! A filter over audit events (who, where, what, when), shared by the admin API, the
//! control socket and a person's own recent decisions on the self-service page. Pure.

use super::{AuditEvent, AuditKind, Timestamp};
use serde::{Deserialize, Serialize};

/// Events examined at most by one query, whatever it finds: a query never walks a whole
/// large audit log.
pub const AUDIT_SCAN_LIMIT: usize = 200_000;
/// Events one query returns at most.
pub const AUDIT_MAX_RESULTS: usize = 10_000;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Events about this user (decisions, admin changes, doors, print, mail, PINs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Events at this device (a lockout key naming it counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The event kind as written in the record's `event` field (`decision`, `admin`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// At or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// Before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// The newest this many matching events (capped at `AUDIT_MAX_RESULTS`).
    pub limit: usize,
}

impl AuditQuery {
    /// The number of events to return.
    pub fn cap(&self) -> usize {
        self.limit.min(AUDIT_MAX_RESULTS)
    }

    pub fn in_time(&self, at: Timestamp) -> bool {
        self.since.is_none_or(|s| at >= s) && self.until.is_none_or(|u| at < u)
    }

    pub fn matches(&self, event: &AuditEvent) -> bool {
        self.in_time(event.at)
            && self.kind.as_deref().is_none_or(|k| event.kind.name() == k)
            && self
                .user
                .as_deref()
                .is_none_or(|u| event.kind.user() == Some(u))
            && self
                .device
                .as_deref()
                .is_none_or(|d| event.kind.is_at_device(d))
    }
}

impl AuditKind {
    /// The `event` field of the record.
    pub fn name(&self) -> &'static str {
        match self {
            AuditKind::Decision { .. } => "decision",
            AuditKind::Lockout { .. } => "lockout",
            AuditKind::Admin { .. } => "admin",
            AuditKind::Refused { .. } => "refused",
            AuditKind::Daemon { .. } => "daemon",
            AuditKind::Duress { .. } => "duress",
            AuditKind::Door { .. } => "door",
            AuditKind::Print { .. } => "print",
            AuditKind::Card { .. } => "card",
            AuditKind::Keypad { .. } => "keypad",
            AuditKind::Sync { .. } => "sync",
            AuditKind::Mail { .. } => "mail",
            AuditKind::Pin { .. } => "pin",
            AuditKind::Alarm { .. } => "alarm",
        }
    }

    /// The user the event is about, when it names one.
    pub fn user(&self) -> Option<&str> {
        match self {
            AuditKind::Decision { user, .. }
            | AuditKind::Admin { user, .. }
            | AuditKind::Door { user, .. }
            | AuditKind::Mail { user, .. } => user.as_deref(),
            AuditKind::Duress { user, .. } | AuditKind::Print { user, .. } => Some(user),
            AuditKind::Pin { user, .. } => (!user.is_empty()).then_some(user.as_str()),
            _ => None,
        }
    }

    /// Whether the event happened at `device` (a lockout of `device:<id>` counts).
    pub fn is_at_device(&self, device: &str) -> bool {
        match self {
            AuditKind::Decision { device: d, .. }
            | AuditKind::Duress { device: d, .. }
            | AuditKind::Print { device: d, .. }
            | AuditKind::Card { device: d, .. }
            | AuditKind::Keypad { device: d, .. }
            | AuditKind::Door { door: d, .. } => d.0 == device,
            AuditKind::Lockout { key, .. } => key
                .strip_prefix("device:")
                .is_some_and(|rest| rest == device),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DaemonAction, DecisionOutcome, DeviceId, Origin};

    fn decision(at: i64, device: &str, user: Option<&str>) -> AuditEvent {
        AuditEvent {
            at: Timestamp::from_millis(at),
            kind: AuditKind::Decision {
                device: DeviceId(device.into()),
                origin: Origin::Tcp {
                    peer: "127.0.0.1".parse().unwrap(),
                },
                credential: "pin".into(),
                user: user.map(str::to_string),
                outcome: DecisionOutcome::Grant,
                reason: None,
                repeated: None,
            },
        }
    }

    #[test]
    fn filters_by_user_device_kind_and_time() {
        let e = decision(1_000, "door", Some("alice"));
        let q = |f: fn(&mut AuditQuery)| {
            let mut q = AuditQuery {
                limit: 10,
                ..Default::default()
            };
            f(&mut q);
            q.matches(&e)
        };
        assert!(q(|_| {}));
        assert!(q(|q| q.user = Some("alice".into())));
        assert!(!q(|q| q.user = Some("bob".into())));
        assert!(q(|q| q.device = Some("door".into())));
        assert!(!q(|q| q.device = Some("printer".into())));
        assert!(q(|q| q.kind = Some("decision".into())));
        assert!(!q(|q| q.kind = Some("admin".into())));
        assert!(q(|q| q.since = Some(Timestamp::from_millis(1_000))));
        assert!(!q(|q| q.since = Some(Timestamp::from_millis(1_001))));
        assert!(!q(|q| q.until = Some(Timestamp::from_millis(1_000))));
        assert!(q(|q| q.until = Some(Timestamp::from_millis(1_001))));
        let anonymous = decision(1_000, "door", None);
        let by_user = AuditQuery {
            user: Some("alice".into()),
            limit: 1,
            ..Default::default()
        };
        assert!(!by_user.matches(&anonymous));
        let daemon = AuditEvent {
            at: Timestamp::from_millis(5),
            kind: AuditKind::Daemon {
                action: DaemonAction::Started,
            },
        };
        assert_eq!(daemon.kind.name(), "daemon");
        let lock = AuditKind::Lockout {
            key: "device:door".into(),
            failures: 5,
            until: None,
        };
        assert!(lock.is_at_device("door") && !lock.is_at_device("do"));
    }
}
