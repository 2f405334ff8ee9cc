//! `Core::handle` in process: a `MemoryStore`, fake actions, cheap argon2 parameters.
//! Argon2 runs on real pool threads, so these tests use the real clock; the admission
//! gate's waits are tested with paused time in `admission_tests.rs`.

use super::*;
use crate::crypto::{HashParams, Hasher, Pepper};
use crate::domain::{
    LockoutState, Origin, Pin, PinRecord, PinSource, Tag, UpstreamRef, User, UserOrigin,
};
use crate::store::MemoryStore;
use decide::FAIL_OPEN_USER;
use lockout::LockoutKey;
use schedule::TimeZone;
use std::sync::Mutex;
use std::time::Duration;

const ALICE_PIN: &str = "482913";
const ALICE_DURESS: &str = "999111";
const BOB_PIN: &str = "555123";
const ALICE_CARD: &str = "4711";
const PEER: &str = "10.0.0.7";

/// Grants it saw, and what it reports back (three jobs released).
#[derive(Default)]
struct FakeActions {
    grants: Mutex<Vec<(DeviceId, String)>>,
}

impl Actions for FakeActions {
    fn after_grant<'a>(&'a self, device: &'a DeviceId, user: &'a str) -> ActionFuture<'a> {
        let mut grants = self.grants.lock().unwrap();
        grants.push((device.clone(), user.to_owned()));
        Box::pin(async {
            ActionReport {
                released: 3,
                ..ActionReport::default()
            }
        })
    }
}

struct Fixture {
    core: Core,
    store: Arc<MemoryStore>,
    pool: Arc<HashPool>,
    hasher: Arc<Hasher>,
    actions: Arc<FakeActions>,
    stale: Arc<Staleness>,
}

fn device(fail_open: bool, deny_when_stale: bool) -> DeviceRules {
    DeviceRules {
        allow_groups: vec!["staff".into()],
        schedule: None,
        fail_open,
        deny_when_stale,
    }
}

fn record(hasher: &Hasher, pin: &str) -> PinRecord {
    PinRecord {
        tag: hasher.tag(&Pin::new(pin)),
        set_at: Timestamp::from_millis(0),
        expires_at: None,
        source: PinSource::Admin,
        temporary: false,
        uses_left: None,
        windows: Vec::new(),
    }
}

/// `lobby` (a printer: fails closed, denies a stale directory's users) and `exit` (a door
/// that fails open and decides from a stale cache); alice (local, with a duress PIN and a
/// card) and bob (of the directory `hr`), both in `staff`.
fn fixture(store: MemoryStore) -> Fixture {
    let hasher = Hasher::new(Pepper::from_bytes([7; 32]), [1; 16], HashParams::TEST);
    let hasher = Arc::new(hasher.unwrap());
    let store = Arc::new(store);
    let mut alice = User::new_local("alice");
    alice.groups = vec!["staff".into()];
    alice.pin = Some(record(&hasher, ALICE_PIN));
    alice.duress = Some(record(&hasher, ALICE_DURESS));
    alice.cards = vec![ALICE_CARD.into()];
    let mut bob = User::new_local("bob");
    bob.groups = vec!["staff".into()];
    bob.pin = Some(record(&hasher, BOB_PIN));
    bob.origin = UserOrigin::Upstream;
    bob.upstream = Some(UpstreamRef {
        source: "hr".into(),
        key: "k-bob".into(),
        version: None,
    });
    store.upsert_users(&[alice, bob]).unwrap();
    let pool = Arc::new(HashPool::new(Arc::clone(&hasher), 2, 8));
    let devices = BTreeMap::from([
        (DeviceId("lobby".into()), device(false, true)),
        (DeviceId("exit".into()), device(true, false)),
    ]);
    let access = AccessRules {
        group_schedules: BTreeMap::new(),
        tz: TimeZone::utc(),
    };
    let actions = Arc::new(FakeActions::default());
    let stale = Arc::new(Staleness::default());
    let core = Core::new(
        Arc::clone(&store) as Arc<dyn Store>,
        Arc::clone(&pool),
        devices,
        access,
        // A source locks with the device here, so these tests see the device budget (the
        // source limit has its own test below).
        LockoutPolicy {
            source_failures: LockoutPolicy::default().free_failures,
            ..LockoutPolicy::default()
        },
        Arc::clone(&actions) as Arc<dyn Actions>,
    )
    .with_staleness(Arc::clone(&stale));
    Fixture {
        core,
        store,
        pool,
        hasher,
        actions,
        stale,
    }
}

fn request(device: &str, credential: Credential) -> AuthRequest {
    AuthRequest {
        device: DeviceId(device.into()),
        credential,
        origin: Origin::Tcp {
            peer: PEER.parse().unwrap(),
        },
        received_at: Timestamp::now(),
    }
}

fn pin(p: &str) -> Credential {
    Credential::Pin(Pin::new(p))
}

fn id_pin(id: &str, p: &str) -> Credential {
    Credential::IdPin {
        id: id.into(),
        pin: Pin::new(p),
    }
}

fn card() -> Credential {
    Credential::Card {
        card: ALICE_CARD.into(),
    }
}

fn granted(user: &str) -> Outcome {
    Outcome::Granted {
        user: user.into(),
        released: 3,
        action_failed: false,
        notice: None,
    }
}

/// Sets a lockout counter.
fn lock(store: &MemoryStore, key: LockoutKey, failures: u32, locked: bool) {
    let now = Timestamp::now();
    let state = LockoutState {
        failures,
        locked_until: locked.then(|| now.plus(Duration::from_secs(60))),
        last_failure: Some(now),
    };
    store
        .update_lockout(&key.to_string(), &|_| Some(state))
        .unwrap();
}

/// The events of kind `Decision` and `Duress`, oldest first.
fn decisions(store: &MemoryStore) -> Vec<AuditKind> {
    let events = store.audit_tail(1000).unwrap().into_iter().map(|e| e.kind);
    events
        .filter(|k| matches!(k, AuditKind::Decision { .. } | AuditKind::Duress { .. }))
        .collect()
}

fn reason_of(kind: &AuditKind) -> Option<DenyReason> {
    match kind {
        AuditKind::Decision { reason, .. } => *reason,
        _ => None,
    }
}

type Prepare = fn(&Fixture);

struct Case {
    name: &'static str,
    device: &'static str,
    credential: fn() -> Credential,
    prepare: Prepare,
    outcome: Outcome,
    /// The reason audited (None for a grant).
    reason: Option<DenyReason>,
    /// Tags computed: the argon2 cost of the attempt.
    hashes: u64,
}

#[tokio::test]
async fn handle_table() {
    let nothing: Prepare = |_| {};
    let denied = Outcome::Denied;
    #[rustfmt::skip]
    let table = [
        Case { name: "pin-only grant", device: "lobby", credential: || pin(ALICE_PIN), prepare: nothing, outcome: granted("alice"), reason: None, hashes: 1 },
        Case { name: "id+pin grant", device: "lobby", credential: || id_pin("alice", ALICE_PIN), prepare: nothing, outcome: granted("alice"), reason: None, hashes: 1 },
        Case { name: "a card alone costs no argon2", device: "lobby", credential: card, prepare: nothing, outcome: granted("alice"), reason: None, hashes: 0 },
        Case { name: "unknown pin", device: "lobby", credential: || pin("000000"), prepare: nothing, outcome: denied.clone(), reason: Some(DenyReason::UnknownPin), hashes: 1 },
        Case { name: "wrong pin for id", device: "lobby", credential: || id_pin("alice", BOB_PIN), prepare: nothing, outcome: denied.clone(), reason: Some(DenyReason::WrongPin), hashes: 1 },
        Case { name: "unknown device", device: "attic", credential: || pin(ALICE_PIN), prepare: nothing, outcome: denied.clone(), reason: Some(DenyReason::UnknownDevice), hashes: 0 },
        Case { name: "locked device: no argon2", device: "lobby", credential: || pin(ALICE_PIN), prepare: |f| lock(&f.store, LockoutKey::Device("lobby".into()), 6, true), outcome: Outcome::LockedOut, reason: Some(DenyReason::LockedOut), hashes: 0 },
        Case { name: "locked source: no argon2", device: "exit", credential: || pin(ALICE_PIN), prepare: |f| lock(&f.store, LockoutKey::Source(PEER.parse().unwrap()), 6, true), outcome: Outcome::LockedOut, reason: Some(DenyReason::LockedOut), hashes: 0 },
        Case { name: "used budget, not locked", device: "lobby", credential: || pin(ALICE_PIN), prepare: |f| lock(&f.store, LockoutKey::Device("lobby".into()), 5, false), outcome: granted("alice"), reason: None, hashes: 1 },
        Case { name: "locked user", device: "lobby", credential: || id_pin("alice", ALICE_PIN), prepare: |f| lock(&f.store, LockoutKey::User("alice".into()), 10, true), outcome: denied.clone(), reason: Some(DenyReason::UserLockedOut), hashes: 1 },
        Case { name: "user lock run out", device: "lobby", credential: || id_pin("alice", ALICE_PIN), prepare: |f| lock(&f.store, LockoutKey::User("alice".into()), 10, false), outcome: granted("alice"), reason: None, hashes: 1 },
        Case { name: "stale directory, denying device", device: "lobby", credential: || pin(BOB_PIN), prepare: |f| f.stale.set(["hr".to_string()]), outcome: denied.clone(), reason: Some(DenyReason::DirectoryStale), hashes: 1 },
        Case { name: "stale directory, other device", device: "exit", credential: || pin(BOB_PIN), prepare: |f| f.stale.set(["hr".to_string()]), outcome: granted("bob"), reason: None, hashes: 1 },
        Case { name: "another directory stale", device: "lobby", credential: || pin(BOB_PIN), prepare: |f| f.stale.set(["ldap".to_string()]), outcome: granted("bob"), reason: None, hashes: 1 },
        Case { name: "unreadable users: fail closed", device: "lobby", credential: || pin(ALICE_PIN), prepare: |f| f.store.fail_user_reads(true), outcome: denied.clone(), reason: Some(DenyReason::StoreUnavailable), hashes: 1 },
        Case { name: "unreadable users: fail-open door", device: "exit", credential: || pin("000000"), prepare: |f| f.store.fail_user_reads(true), outcome: granted(FAIL_OPEN_USER), reason: None, hashes: 1 },
        Case { name: "unreadable counters: closed even if fail-open", device: "exit", credential: || pin(ALICE_PIN), prepare: |f| f.store.fail_lockout_reads(true), outcome: denied.clone(), reason: Some(DenyReason::StoreUnavailable), hashes: 0 },
    ];
    for case in table {
        let f = fixture(MemoryStore::new());
        (case.prepare)(&f);
        let got = f
            .core
            .handle(request(case.device, (case.credential)()))
            .await;
        let name = case.name;
        assert_eq!(got, case.outcome, "{name}");
        assert_eq!(f.pool.stats().computed, case.hashes, "{name}: argon2 runs");
        let audited = decisions(&f.store);
        assert_eq!(
            audited.len(),
            1,
            "{name}: one decision audited: {audited:?}"
        );
        assert_eq!(reason_of(&audited[0]), case.reason, "{name}");
        let grants = f.actions.grants.lock().unwrap().len();
        let want = usize::from(matches!(case.outcome, Outcome::Granted { .. }));
        assert_eq!(grants, want, "{name}: actions run for a grant only");
    }
}

#[tokio::test]
async fn lockout_counters_are_flushed_before_the_deny_is_audited_and_returned() {
    let f = fixture(MemoryStore::recording());
    let got = f
        .core
        .handle(request("lobby", id_pin("alice", "000000")))
        .await;
    assert_eq!(got, Outcome::Denied);
    let calls = f.store.calls();
    let at = |call: &str| calls.iter().rposition(|c| c == call);
    let counted = [
        "update_lockout device:lobby",
        "update_lockout source:10.0.0.7",
        "update_lockout user:alice",
    ]
    .map(|c| at(c).unwrap_or_else(|| panic!("{c} missing: {calls:?}")));
    let flush = at("flush").expect("flushed");
    let audit = at("append_audit Decision").expect("audited");
    assert!(
        counted.iter().all(|c| *c < flush),
        "counted, then flushed: {calls:?}"
    );
    assert!(
        flush < audit,
        "flushed before the DENY is audited and returned: {calls:?}"
    );
    assert_eq!(
        calls.last().map(String::as_str),
        Some("append_audit Decision")
    );
    let user = f
        .store
        .lockout(&lockout::user_key("alice"))
        .unwrap()
        .unwrap();
    assert_eq!(
        user.failures, 1,
        "a wrong PIN for a named user counts against the user"
    );
}

#[tokio::test]
async fn a_grant_counts_nothing_and_clears_the_users_failures() {
    let f = fixture(MemoryStore::recording());
    lock(&f.store, LockoutKey::User("alice".into()), 3, false);
    let got = f
        .core
        .handle(request("lobby", id_pin("alice", ALICE_PIN)))
        .await;
    assert_eq!(got, granted("alice"));
    assert_eq!(f.store.lockout(&lockout::user_key("alice")).unwrap(), None);
    assert_eq!(
        f.store.lockout("device:lobby").unwrap(),
        None,
        "nothing counted"
    );
    assert!(!f.store.calls().contains(&"flush".to_string()));
    let stats = f.core.stats();
    assert_eq!((stats.granted, stats.denied), (1, 0));
}

#[tokio::test]
async fn the_budget_runs_out_then_a_locked_device_costs_no_argon2() {
    let f = fixture(MemoryStore::new());
    let free = LockoutPolicy::default().free_failures;
    for n in 1..=free + 1 {
        let got = f.core.handle(request("lobby", pin("000000"))).await;
        assert_eq!(got, Outcome::Denied, "failure {n}");
    }
    let locks = f.store.audit_tail(1000).unwrap().into_iter();
    let locked: Vec<String> = locks
        .filter_map(|e| match e.kind {
            AuditKind::Lockout { key, .. } => Some(key),
            _ => None,
        })
        .collect();
    assert_eq!(
        locked,
        ["device:lobby", "source:10.0.0.7"],
        "the lock is audited"
    );
    let hashed = f.pool.stats().computed;
    assert_eq!(hashed, u64::from(free) + 1);
    let got = f.core.handle(request("lobby", pin(ALICE_PIN))).await;
    assert_eq!(got, Outcome::LockedOut, "even the right PIN");
    assert_eq!(f.pool.stats().computed, hashed, "no argon2 while locked");
    assert_eq!(f.core.stats().locked_out, 1);
}

#[tokio::test]
async fn duress_grants_and_raises_the_alarm_silently() {
    let f = fixture(MemoryStore::new());
    let got = f.core.handle(request("exit", pin(ALICE_DURESS))).await;
    assert_eq!(got, granted("alice"), "the wire looks like any grant");
    let audited = decisions(&f.store);
    let alarm = AuditKind::Duress {
        device: DeviceId("exit".into()),
        user: "alice".into(),
    };
    assert!(audited.contains(&alarm), "{audited:?}");

    // A refused duress PIN (the own PIN has expired) still raises the alarm.
    let mut alice = f.store.user("alice").unwrap().unwrap();
    alice.pin.as_mut().unwrap().expires_at = Some(Timestamp::from_millis(1));
    f.store.update_user(&alice).unwrap();
    let got = f.core.handle(request("exit", pin(ALICE_DURESS))).await;
    assert_eq!(got, Outcome::Denied);
    let audited = decisions(&f.store);
    assert_eq!(
        audited.iter().filter(|k| **k == alarm).count(),
        2,
        "{audited:?}"
    );
    assert_eq!(
        reason_of(audited.last().unwrap()),
        Some(DenyReason::PinExpired)
    );
    let tag: Tag = f.hasher.tag(&Pin::new(ALICE_DURESS));
    assert_eq!(f.store.tag_owner(&tag).unwrap().as_deref(), Some("alice"));
}

#[path = "handle_pin_tests.rs"]
mod pin_use;

#[tokio::test]
async fn one_source_out_of_budget_leaves_the_device_to_the_others() {
    let f = fixture(MemoryStore::new());
    let store = Arc::clone(&f.store);
    let pool = Arc::clone(&f.pool);
    let devices = BTreeMap::from([(DeviceId("lobby".into()), device(false, true))]);
    let access = AccessRules {
        group_schedules: BTreeMap::new(),
        tz: TimeZone::utc(),
    };
    let core = Core::new(
        Arc::clone(&store) as Arc<dyn Store>,
        pool,
        devices,
        access,
        LockoutPolicy::default(),
        Arc::new(FakeActions::default()) as Arc<dyn Actions>,
    );
    let from = |peer: &str, credential| AuthRequest {
        origin: Origin::Tcp {
            peer: peer.parse().unwrap(),
        },
        ..request("lobby", credential)
    };
    let sources = LockoutPolicy::default().source_failures;
    for _ in 0..=sources {
        let got = core.handle(from("10.0.0.66", pin("000000"))).await;
        assert_eq!(got, Outcome::Denied);
    }
    let got = core.handle(from("10.0.0.66", pin(ALICE_PIN))).await;
    assert_eq!(got, Outcome::LockedOut, "the attacker's terminal is held");
    let got = core.handle(from("10.0.0.8", pin(ALICE_PIN))).await;
    assert_eq!(
        got,
        granted("alice"),
        "another terminal of the device is not"
    );
    let device = store.lockout("device:lobby").unwrap().unwrap();
    assert_eq!((device.failures, device.locked_until), (sources + 1, None));
}

#[tokio::test]
async fn a_mode_the_device_does_not_take_is_refused_without_argon2_or_counting() {
    let f = fixture(MemoryStore::new());
    let devices = BTreeMap::from([(DeviceId("lobby".into()), device(false, true))]);
    let access = AccessRules {
        group_schedules: BTreeMap::new(),
        tz: TimeZone::utc(),
    };
    let core = Core::new(
        Arc::clone(&f.store) as Arc<dyn Store>,
        Arc::clone(&f.pool),
        devices,
        access,
        LockoutPolicy::default(),
        Arc::new(FakeActions::default()) as Arc<dyn Actions>,
    )
    .with_credentials(BTreeMap::from([(
        DeviceId("lobby".into()),
        vec![odds::Mode::IdPin],
    )]));
    let got = core.handle(request("lobby", pin(ALICE_PIN))).await;
    assert_eq!(got, Outcome::Denied);
    assert_eq!(f.pool.stats().computed, 0, "no argon2");
    assert_eq!(
        f.store.lockout("device:lobby").unwrap(),
        None,
        "not a guess"
    );
    let audited = decisions(&f.store);
    assert!(
        matches!(
            audited.as_slice(),
            [AuditKind::Decision {
                reason: Some(DenyReason::CredentialNotAdmitted),
                ..
            }]
        ),
        "{audited:?}"
    );
    let got = core
        .handle(request("lobby", id_pin("alice", ALICE_PIN)))
        .await;
    assert_eq!(got, granted("alice"));
}
