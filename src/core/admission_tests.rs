use super::*;
use crate::domain::LockoutState;
use crate::domain::Timestamp;
use crate::store::MemoryStore;
use tokio::time::Instant;

const KEY: &str = "device:lobby";

fn keys() -> Vec<LockoutKey> {
    vec![
        LockoutKey::parse(KEY).unwrap(),
        LockoutKey::Source("10.0.0.7".parse().unwrap()),
    ]
}

/// A store where `KEY` has `failures` recent failures (none forgiven yet), locked or not.
fn store_with(failures: u32, locked_for: Option<Duration>) -> MemoryStore {
    let store = MemoryStore::new();
    let now = Timestamp::now();
    let state = LockoutState {
        failures,
        locked_until: locked_for.map(|d| now.plus(d)),
        last_failure: Some(now),
    };
    store.update_lockout(KEY, &|_| Some(state)).unwrap();
    store
}

fn admitted(a: &Admission<'_>) -> bool {
    matches!(a, Admission::Admitted(_))
}

#[tokio::test(start_paused = true)]
async fn a_locked_key_is_refused_at_once() {
    let gate = Gate::default();
    let store = store_with(6, Some(Duration::from_secs(30)));
    let start = Instant::now();
    let got = gate.admit(keys(), &store, &LockoutPolicy::default()).await;
    assert!(matches!(got, Ok(Admission::Locked)));
    assert_eq!(start.elapsed(), Duration::ZERO, "no wait for a locked key");
}

#[tokio::test(start_paused = true)]
async fn attempts_in_flight_are_bounded_by_the_budget_left() {
    let gate = Gate::default();
    let policy = LockoutPolicy::default();
    let store = store_with(2, None);
    let mut held = Vec::new();
    for _ in 0..policy.free_failures - 2 {
        let a = gate.admit(keys(), &store, &policy).await.unwrap();
        assert!(admitted(&a), "within the budget left: at once");
        held.push(a);
    }
    let start = Instant::now();
    let over = gate.admit(keys(), &store, &policy).await.unwrap();
    assert!(matches!(over, Admission::TimedOut));
    assert_eq!(
        start.elapsed(),
        ADMISSION_WAIT,
        "BUSY after the admission wait"
    );
    drop(held);
    assert!(admitted(
        &gate.admit(keys(), &store, &policy).await.unwrap()
    ));
}

#[tokio::test(start_paused = true)]
async fn over_budget_attempts_go_one_at_a_time() {
    let gate = Gate::default();
    let policy = LockoutPolicy::default();
    let store = store_with(policy.free_failures, None);
    let first = gate.admit(keys(), &store, &policy).await.unwrap();
    assert!(admitted(&first), "one at a time, but one");
    let start = Instant::now();
    let release = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(first);
    };
    let (_, second) = tokio::join!(release, gate.admit(keys(), &store, &policy));
    assert!(
        admitted(&second.unwrap()),
        "admitted when the first one ends"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_lock_set_while_waiting_refuses_the_waiter() {
    let gate = Gate::default();
    let policy = LockoutPolicy::default();
    let store = store_with(policy.free_failures, None);
    let first = gate.admit(keys(), &store, &policy).await.unwrap();
    let fail = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let until = Timestamp::now().plus(Duration::from_secs(30));
        let lock = |old: Option<LockoutState>| {
            let mut s = old.unwrap_or_default();
            s.locked_until = Some(until);
            Some(s)
        };
        store.update_lockout(KEY, &lock).unwrap();
        drop(first);
    };
    let (_, second) = tokio::join!(fail, gate.admit(keys(), &store, &policy));
    assert!(matches!(second, Ok(Admission::Locked)));
}

#[tokio::test(start_paused = true)]
async fn unreadable_counters_are_an_error() {
    let gate = Gate::default();
    let store = MemoryStore::new();
    store.fail_lockout_reads(true);
    let got = gate.admit(keys(), &store, &LockoutPolicy::default()).await;
    assert!(matches!(got, Err(StoreError::Unavailable(_))));
}
