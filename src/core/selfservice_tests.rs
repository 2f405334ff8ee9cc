//! `Core::change_pin` and `Core::forgot_pin` in process: a `MemoryStore`, a recording
//! `PinService`, actions that must never run, cheap argon2 parameters.

use super::*;
use crate::core::decide::{AccessRules, DeviceRules};
use crate::core::lockout::LockoutPolicy;
use crate::core::schedule::TimeZone;
use crate::core::{ActionFuture, Actions};
use crate::crypto::{HashParams, HashPool, Hasher, Pepper};
use crate::domain::{PinRecord, PinSource, User};
use crate::store::{MemoryStore, Store};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Another user's PIN, as the service sees it.
const TAKEN: &str = "246810";

struct NoActions;

impl Actions for NoActions {
    fn after_grant<'a>(&'a self, _: &'a DeviceId, _: &'a str) -> ActionFuture<'a> {
        panic!("a PIN change must not run the device's actions")
    }
}

#[derive(Default)]
struct Service {
    calls: Mutex<Vec<String>>,
}

impl PinService for Service {
    fn change<'a>(&'a self, id: &'a str, new: Pin) -> ServiceFuture<'a, Result<(), ChangeError>> {
        self.calls.lock().unwrap().push(format!("change {id}"));
        let answer = match new.expose() {
            "111111" => Err(ChangeError::Refused("too weak".into())),
            TAKEN => Err(ChangeError::Taken("not available".into())),
            _ => Ok(()),
        };
        Box::pin(async move { answer })
    }
    fn forgot<'a>(
        &'a self,
        id: &'a str,
        device: &'a DeviceId,
    ) -> ServiceFuture<'a, Result<ForgotOutcome, String>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("forgot {id} {device}"));
        Box::pin(async { Ok(ForgotOutcome::Accepted) })
    }
}

fn core(change: bool) -> (Core, Arc<MemoryStore>, Arc<Service>) {
    let hasher = Hasher::new(Pepper::from_bytes([7; 32]), [1; 16], HashParams::TEST);
    let hasher = Arc::new(hasher.unwrap());
    let store = Arc::new(MemoryStore::new());
    let mut alice = User::new_local("alice");
    alice.groups = vec!["staff".into()];
    let record = |p: &str| PinRecord {
        tag: hasher.tag(&Pin::new(p)),
        set_at: Timestamp::from_millis(0),
        expires_at: None,
        source: PinSource::Admin,
        temporary: false,
        uses_left: None,
        windows: Vec::new(),
    };
    alice.pin = Some(record("482913"));
    alice.duress = Some(record("999111"));
    store.insert_user(&alice).unwrap();
    let device = DeviceRules {
        allow_groups: vec!["staff".into()],
        schedule: None,
        fail_open: false,
        deny_when_stale: false,
    };
    let access = AccessRules {
        group_schedules: BTreeMap::new(),
        tz: TimeZone::utc(),
    };
    let service = Arc::new(Service::default());
    let core = Core::new(
        Arc::clone(&store) as Arc<dyn Store>,
        Arc::new(HashPool::new(hasher, 2, 8)),
        BTreeMap::from([(DeviceId("lobby".into()), device)]),
        access,
        LockoutPolicy {
            source_failures: LockoutPolicy::default().free_failures,
            ..LockoutPolicy::default()
        },
        Arc::new(NoActions),
    )
    .with_self_service(SelfService {
        service: Arc::clone(&service) as Arc<dyn PinService>,
        change,
        forgot: true,
    });
    (core, store, service)
}

fn change(old: &str, new: &str) -> ChangeRequest {
    ChangeRequest {
        device: DeviceId("lobby".into()),
        origin: Origin::Tcp {
            peer: "10.0.0.7".parse().unwrap(),
        },
        id: "alice".into(),
        old: Pin::new(old),
        new: Pin::new(new),
        received_at: Timestamp::now(),
    }
}

#[tokio::test]
async fn the_old_pin_is_verified_and_counted_before_the_service_is_asked() {
    let (core, store, service) = core(true);
    assert_eq!(
        core.change_pin(change("000000", "731955")).await,
        ChangeOutcome::Denied
    );
    assert!(service.calls.lock().unwrap().is_empty());
    let device = store.lockout("device:lobby").unwrap().expect("counted");
    assert_eq!(device.failures, 1);
    assert!(
        store.lockout("user:alice").unwrap().is_some(),
        "counted against alice"
    );

    assert_eq!(
        core.change_pin(change("482913", "111111")).await,
        ChangeOutcome::Refused("too weak".into())
    );
    assert_eq!(
        core.change_pin(change("482913", "731955")).await,
        ChangeOutcome::Changed
    );
    assert_eq!(
        *service.calls.lock().unwrap(),
        ["change alice", "change alice"]
    );
    assert!(
        store.lockout("user:alice").unwrap().is_none(),
        "a verified old PIN resets it"
    );

    // The duress PIN raises the alarm and changes nothing.
    assert_eq!(
        core.change_pin(change("999111", "731955")).await,
        ChangeOutcome::Denied
    );
    assert_eq!(service.calls.lock().unwrap().len(), 2);
    let audit = serde_json::to_string(&store.audit_tail(50).unwrap()).unwrap();
    assert!(audit.contains(r#""event":"duress""#), "{audit}");
    assert!(audit.contains(CHANGE_CREDENTIAL), "{audit}");
    for secret in ["482913", "731955", "111111", "999111"] {
        assert!(!audit.contains(secret), "a PIN in the audit");
    }
}

#[tokio::test]
async fn change_is_off_unless_allowed_and_forgot_always_queues() {
    let (core, _store, service) = core(false);
    assert_eq!(
        core.change_pin(change("482913", "731955")).await,
        ChangeOutcome::NotAllowed
    );
    for id in ["alice", "nobody"] {
        let request = ForgotRequest {
            device: DeviceId("lobby".into()),
            origin: Origin::Keypad {
                port: "/dev/ttyS0".into(),
            },
            id: id.into(),
            received_at: Timestamp::now(),
        };
        assert_eq!(core.forgot_pin(request).await, ForgotOutcome::Accepted);
    }
    assert_eq!(
        *service.calls.lock().unwrap(),
        ["forgot alice lobby", "forgot nobody lobby"]
    );
}

#[tokio::test]
async fn a_taken_new_pin_is_refused_and_counted_like_a_wrong_one() {
    let (core, store, service) = core(true);
    let failures = |key: &str| store.lockout(key).unwrap().map_or(0, |s| s.failures);
    for n in 1..=3 {
        assert_eq!(
            core.change_pin(change("482913", TAKEN)).await,
            ChangeOutcome::Refused("not available".into())
        );
        // The verified old PIN does not wipe the user's count: probing adds up.
        assert_eq!(failures("user:alice"), n, "counted against alice");
        assert_eq!(failures("device:lobby"), n, "counted against the device");
        assert_eq!(failures("source:10.0.0.7"), n, "counted against the source");
    }
    assert_eq!(service.calls.lock().unwrap().len(), 3);
    // A policy refusal is not a probe and counts nothing more; a done change clears the user.
    assert_eq!(
        core.change_pin(change("482913", "111111")).await,
        ChangeOutcome::Refused("too weak".into())
    );
    assert_eq!(failures("user:alice"), 3);
    assert_eq!(
        core.change_pin(change("482913", "731955")).await,
        ChangeOutcome::Changed
    );
    assert_eq!(failures("user:alice"), 0);
    let audit = serde_json::to_string(&store.audit_tail(50).unwrap()).unwrap();
    assert!(!audit.contains(TAKEN), "a PIN in the audit");
}
