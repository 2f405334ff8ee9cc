//! `Core::handle` with limited-use and pending PINs (a child of `handle_tests.rs`, on its
//! fixture): counted in the store before the OK, exhausted and raced uses denied with their
//! own reason, a pending PIN promoted at its first use, unlimited PINs never written.

use super::*;
use crate::domain::PinAction;

const NEW_PIN: &str = "730194";

/// Edits alice in the store.
fn edit_alice(f: &Fixture, edit: impl FnOnce(&mut User)) {
    let mut alice = f.store.user("alice").unwrap().unwrap();
    edit(&mut alice);
    f.store.update_user(&alice).unwrap();
}

fn limit_alice(f: &Fixture, uses: u32) {
    edit_alice(f, |u| u.pin.as_mut().unwrap().uses_left = Some(uses));
}

/// The `Pin` audit events: (action, detail).
fn pin_events(store: &MemoryStore) -> Vec<(PinAction, String)> {
    let events = store.audit_tail(1000).unwrap().into_iter();
    events
        .filter_map(|e| match e.kind {
            AuditKind::Pin { action, detail, .. } => Some((action, detail.unwrap_or_default())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_limited_pin_is_counted_flushed_before_the_ok_then_exhausted() {
    let f = fixture(MemoryStore::recording());
    limit_alice(&f, 2);
    let ask = || f.core.handle(request("lobby", pin(ALICE_PIN)));
    assert_eq!(ask().await, granted("alice"));
    let calls = f.store.calls();
    let at = |call: &str| calls.iter().rposition(|c| c == call);
    let (used, flush, ok) = (at("use_pin"), at("flush"), at("append_audit Decision"));
    assert!(
        used < flush && flush < ok && used.is_some(),
        "counted, flushed, then the grant: {calls:?}"
    );
    assert_eq!(ask().await, granted("alice"));
    assert_eq!(ask().await, Outcome::Denied, "no use left");
    let audited = decisions(&f.store);
    assert_eq!(
        reason_of(audited.last().unwrap()),
        Some(DenyReason::UsesExhausted)
    );
    assert_eq!(
        pin_events(&f.store),
        [
            (PinAction::Used, "1 use left".to_string()),
            (PinAction::Used, "last use: no use left".to_string()),
        ]
    );
    let alice = f.store.user("alice").unwrap().unwrap();
    assert_eq!(alice.pin.unwrap().uses_left, Some(0));
    assert_eq!(f.actions.grants.lock().unwrap().len(), 2);
    let by_id = f
        .core
        .handle(request("lobby", id_pin("alice", ALICE_PIN)))
        .await;
    assert_eq!(by_id, Outcome::Denied, "by id too");
    assert_eq!(
        f.core.handle(request("lobby", pin(ALICE_DURESS))).await,
        granted("alice"),
        "the duress PIN is not limited by the PIN's uses"
    );
}

#[tokio::test]
async fn an_unlimited_pin_costs_no_store_write_beyond_the_grant() {
    let f = fixture(MemoryStore::recording());
    assert_eq!(
        f.core.handle(request("lobby", pin(ALICE_PIN))).await,
        granted("alice")
    );
    let calls = f.store.calls();
    assert!(
        !calls.iter().any(|c| c == "use_pin" || c == "flush"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_use_taken_between_the_decision_and_the_count_is_refused() {
    let f = fixture(MemoryStore::new());
    limit_alice(&f, 1);
    let device = f.core.devices.get(&DeviceId("lobby".into())).unwrap();
    let tag = Some(f.hasher.tag(&Pin::new(ALICE_PIN)));
    let (a, b) = (
        request("lobby", pin(ALICE_PIN)),
        request("lobby", pin(ALICE_PIN)),
    );
    let now = Timestamp::now();
    // Both read the last use before either counts it.
    let first = f.core.evaluate(&a, device, tag, now).unwrap();
    let second = f.core.evaluate(&b, device, tag, now).unwrap();
    assert!(matches!(second.decision, Decision::Grant { .. }));
    let first = f.core.count_use(&a, first, now).await.unwrap();
    let second = f.core.count_use(&b, second, now).await.unwrap();
    assert!(matches!(first.decision, Decision::Grant { .. }));
    assert_eq!(
        second.decision,
        Decision::Deny {
            reason: DenyReason::UsesExhausted
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_terminals_get_exactly_one_ok_for_the_last_use() {
    for _ in 0..5 {
        let f = Arc::new(fixture(MemoryStore::new()));
        limit_alice(&f, 1);
        let one = |device: &'static str| {
            let f = Arc::clone(&f);
            tokio::spawn(async move { f.core.handle(request(device, pin(ALICE_PIN))).await })
        };
        let (a, b) = (one("lobby"), one("exit"));
        let outcomes = [a.await.unwrap(), b.await.unwrap()];
        let oks = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Granted { .. }))
            .count();
        assert_eq!(oks, 1, "{outcomes:?}");
        let reasons: Vec<_> = decisions(&f.store).iter().map(reason_of).collect();
        assert!(
            reasons.contains(&Some(DenyReason::UsesExhausted)),
            "{reasons:?}"
        );
    }
}

#[tokio::test]
async fn a_pending_pin_replaces_the_old_one_at_its_first_use() {
    let f = fixture(MemoryStore::recording());
    let pending = record(&f.hasher, NEW_PIN);
    edit_alice(&f, |u| u.pending_pin = Some(pending));
    let ask = |c: Credential| f.core.handle(request("lobby", c));
    assert_eq!(ask(pin(ALICE_PIN)).await, granted("alice"), "old PIN");
    assert_eq!(
        ask(id_pin("alice", ALICE_PIN)).await,
        granted("alice"),
        "still the old PIN, by id"
    );
    assert!(!f.store.calls().iter().any(|c| c == "use_pin"));
    assert!(pin_events(&f.store).is_empty());

    assert_eq!(ask(pin(NEW_PIN)).await, granted("alice"), "the new PIN");
    let events = pin_events(&f.store);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, PinAction::FirstUse);
    let alice = f.store.user("alice").unwrap().unwrap();
    assert_eq!(alice.pending_pin, None);
    assert_eq!(alice.pin.unwrap().tag, f.hasher.tag(&Pin::new(NEW_PIN)));

    assert_eq!(ask(pin(ALICE_PIN)).await, Outcome::Denied);
    assert_eq!(ask(id_pin("alice", ALICE_PIN)).await, Outcome::Denied);
    let reasons: Vec<_> = decisions(&f.store).iter().map(reason_of).collect();
    assert_eq!(
        reasons[reasons.len() - 2..],
        [Some(DenyReason::UnknownPin), Some(DenyReason::WrongPin)]
    );
    assert_eq!(
        ask(id_pin("alice", NEW_PIN)).await,
        granted("alice"),
        "the new PIN is now simply the PIN"
    );
    assert_eq!(pin_events(&f.store).len(), 1, "promoted once");
    assert_eq!(
        ask(pin(ALICE_DURESS)).await,
        granted("alice"),
        "duress kept"
    );
}
