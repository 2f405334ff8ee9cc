//! The behaviour every `Store` must have, as test functions over `&dyn Store`.
//! `store_suite!(run)` turns each into a `#[test]` for one store, where `run` hands a fresh,
//! empty store to a test; `sled_tests.rs` and `memory_tests.rs` use it. Tests of what only
//! one store has (sled's reopen, journal, open guard) stay next to that store. The PIN
//! lifecycle's tests (mail outbox, reminders, sweeper, retired tags) are in
//! `suite_lifecycle.rs`.

use super::{ImportOutcome, Store, StoreError, SyncApplied, SyncState, SyncWrite};
use crate::core::lockout::user_key;
use crate::domain::{
    AuditEvent, AuditKind, LockoutState, PinRecord, PinSource, Tag, Timestamp, UpstreamRef, User,
    UserOrigin,
};

#[path = "suite_lifecycle.rs"]
mod lifecycle;
pub(super) use self::lifecycle::*;
#[path = "suite_pins.rs"]
mod pins;
pub(super) use self::pins::*;
#[path = "suite_forgot.rs"]
mod forgot;
pub(super) use self::forgot::*;

macro_rules! store_suite {
    ($run:path) => {
        store_suite!(@tests $run;
            tag_index_and_count_follow_users,
            users_page_in_id_order_and_each_user_visits_every_one,
            upsert_is_all_or_nothing,
            card_index_is_unique_and_follows_users,
            lockouts_update_list_and_go_with_their_user,
            audit_is_in_time_order_and_pruned_by_age_then_count,
            the_outbox_is_bounded_and_ordered,
            a_shared_pin_leaves_the_pin_only_index_until_the_collision_is_gone,
            pins_and_cards_may_swap_within_one_batch,
            a_batch_touching_a_user_it_does_not_own_applies_nothing,
            removing_a_user_by_hand_drops_its_source_key_and_shared_pin,
            a_synced_removal_drops_the_lockout_and_the_state_is_per_source,
            mail_is_queued_with_the_user_change_and_not_without,
            mail_lanes_are_separate_oldest_first_with_their_depth,
            a_reminder_is_queued_once_per_pin_version_and_threshold,
            the_sweeper_clears_expired_pins_with_duress_and_their_tags,
            tags_leaving_the_index_are_retired_then_pruned,
            a_limited_pin_is_counted_down_and_refused_at_zero,
            a_pending_pin_replaces_the_pin_at_its_first_use,
            racing_uses_take_the_last_one_once,
            forgot_rows_settle_with_their_reset_and_caps,
            a_reset_of_a_user_changed_meanwhile_is_dropped,
            an_expired_pending_pin_is_swept_alone,
            a_newer_link_replaces_the_older_and_a_swap_needs_the_one_read,
            spent_and_expired_links_are_pruned_a_day_after_they_died,
        );
    };
    (@tests $run:path; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $run(crate::store::suite::$name);
            }
        )*
    };
}

fn pin(t: u8, source: PinSource) -> PinRecord {
    PinRecord {
        tag: Tag([t; 32]),
        set_at: Timestamp::from_millis(0),
        expires_at: None,
        source,
        temporary: false,
        uses_left: None,
        windows: Vec::new(),
    }
}

fn user(id: &str, tag: Option<u8>) -> User {
    let mut u = User::new_local(id);
    u.pin = tag.map(|t| pin(t, PinSource::Admin));
    u
}

fn upstream(source: &str, id: &str, tag: Option<u8>) -> User {
    let mut u = User::new_local(id);
    u.origin = UserOrigin::Upstream;
    u.upstream = Some(UpstreamRef {
        source: source.into(),
        key: format!("k-{id}"),
        version: None,
    });
    u.pin = tag.map(|t| pin(t, PinSource::Upstream));
    u
}

fn apply(
    s: &dyn Store,
    source: &str,
    upserts: &[User],
    removals: &[&str],
) -> super::Result<SyncApplied> {
    let removals: Vec<String> = removals.iter().map(|s| s.to_string()).collect();
    let state = SyncState {
        cursor: Some(b"c1".to_vec()),
        ..Default::default()
    };
    s.apply_sync(&SyncWrite {
        source,
        upserts,
        removals: &removals,
        state: &state,
    })
}

fn owner(s: &dyn Store, t: u8) -> Option<String> {
    s.tag_owner(&Tag([t; 32])).unwrap()
}

/// A distinguishable audit event: the `n`th.
fn daemon(n: usize) -> AuditKind {
    AuditKind::Lockout {
        key: format!("e{n}"),
        failures: 0,
        until: None,
    }
}

pub(super) fn tag_index_and_count_follow_users(s: &dyn Store) {
    s.insert_user(&user("alice", Some(1))).unwrap();
    s.insert_user(&user("bob", None)).unwrap();
    let e = s.insert_user(&user("alice", None));
    assert!(matches!(e, Err(StoreError::UserExists(_))), "{e:?}");
    let e = s.insert_user(&user("carol", Some(1)));
    assert!(matches!(e, Err(StoreError::TagTaken)), "{e:?}");
    assert_eq!(s.user_count().unwrap(), 2);
    assert_eq!(owner(s, 1).as_deref(), Some("alice"));
    let ids: Vec<String> = s.users().unwrap().into_iter().map(|u| u.id).collect();
    assert_eq!(ids, ["alice", "bob"]);

    s.update_user(&user("alice", Some(2))).unwrap();
    assert_eq!(owner(s, 1), None, "old tag released");
    assert_eq!(owner(s, 2).as_deref(), Some("alice"));
    let e = s.update_user(&user("bob", Some(2)));
    assert!(matches!(e, Err(StoreError::TagTaken)), "{e:?}");
    let e = s.update_user(&user("zed", None));
    assert!(matches!(e, Err(StoreError::NoSuchUser(_))), "{e:?}");

    assert!(s.remove_user("alice").unwrap().is_some());
    assert_eq!(owner(s, 2), None);
    assert_eq!(s.user_count().unwrap(), 1);
    assert!(s.remove_user("alice").unwrap().is_none());
}

pub(super) fn upsert_is_all_or_nothing(s: &dyn Store) {
    s.insert_user(&user("alice", Some(1))).unwrap();
    let batch = [user("bob", Some(2)), user("carol", Some(1))];
    assert!(matches!(s.upsert_users(&batch), Err(StoreError::TagTaken)));
    assert!(s.user("bob").unwrap().is_none(), "nothing applied");
    assert_eq!(owner(s, 2), None, "nor indexed");
    assert_eq!(s.user_count().unwrap(), 1);
    let batch = [user("alice", Some(3)), user("bob", Some(2))];
    let outcome = s.upsert_users(&batch).unwrap();
    let want = ImportOutcome {
        added: 1,
        updated: 1,
    };
    assert_eq!(outcome, want);
    assert_eq!(s.user_count().unwrap(), 2);
}

pub(super) fn card_index_is_unique_and_follows_users(s: &dyn Store) {
    let mut alice = user("alice", Some(1));
    alice.cards = vec!["482115".into()];
    s.insert_user(&alice).unwrap();
    let mut bob = user("bob", Some(2));
    bob.cards = vec!["482115".into()];
    assert!(matches!(s.insert_user(&bob), Err(StoreError::CardTaken(c)) if c == "482115"));
    assert!(s.user("bob").unwrap().is_none(), "nothing written");
    assert_eq!(owner(s, 2), None, "not even bob's PIN");
    assert_eq!(s.card_owner("482115").unwrap().as_deref(), Some("alice"));
    alice.cards = vec!["99".into()];
    s.update_user(&alice).unwrap();
    let released = s.card_owner("482115").unwrap();
    assert_eq!(released, None, "the old card is released");
    s.insert_user(&bob).unwrap();
    s.remove_user("alice").unwrap();
    assert_eq!(s.card_owner("99").unwrap(), None);
    assert_eq!(s.card_owner("482115").unwrap().as_deref(), Some("bob"));
}

pub(super) fn lockouts_update_list_and_go_with_their_user(s: &dyn Store) {
    let bump = |old: Option<LockoutState>| {
        let mut st = old.unwrap_or_default();
        st.failures += 1;
        Some(st)
    };
    assert_eq!(
        s.update_lockout("device:p", &bump)
            .unwrap()
            .unwrap()
            .failures,
        1
    );
    assert_eq!(
        s.update_lockout("device:p", &bump)
            .unwrap()
            .unwrap()
            .failures,
        2
    );
    assert_eq!(s.lockout("device:p").unwrap().unwrap().failures, 2);
    s.insert_user(&user("alice", Some(1))).unwrap();
    s.update_lockout(&user_key("alice"), &bump).unwrap();
    let keys: Vec<String> = s.lockouts().unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["device:p", "user:alice"]);
    assert_eq!(s.update_lockout("device:p", &|_| None).unwrap(), None);
    assert_eq!(s.lockout("device:p").unwrap(), None);
    s.remove_user("alice").unwrap();
    assert_eq!(
        s.lockout(&user_key("alice")).unwrap(),
        None,
        "gone with the user"
    );
    assert!(s.lockouts().unwrap().is_empty());
}

pub(super) fn audit_is_in_time_order_and_pruned_by_age_then_count(s: &dyn Store) {
    // Appended out of time order; two share a millisecond and keep their arrival order.
    for (n, ms) in [
        (0, 1000),
        (1, 4000),
        (2, 0),
        (3, 3000),
        (4, 3000),
        (5, 2000),
    ] {
        let event = AuditEvent {
            at: Timestamp::from_millis(ms),
            kind: daemon(n),
        };
        s.append_audit(&event).unwrap();
    }
    let order = |events: Vec<AuditEvent>| -> Vec<AuditKind> {
        events.into_iter().map(|e| e.kind).collect()
    };
    let tail = order(s.audit_tail(3).unwrap());
    assert_eq!(
        tail,
        [daemon(3), daemon(4), daemon(1)],
        "the newest, oldest first"
    );
    let query = |q: crate::domain::AuditQuery| order(s.audit_query(&q).unwrap());
    let two = crate::domain::AuditQuery {
        limit: 2,
        ..Default::default()
    };
    assert_eq!(query(two.clone()), [daemon(4), daemon(1)], "the newest");
    let none = crate::domain::AuditQuery {
        limit: 0,
        ..Default::default()
    };
    assert!(query(none).is_empty(), "a cap of 0 returns nothing");
    let range = crate::domain::AuditQuery {
        since: Some(Timestamp::from_millis(1000)),
        until: Some(Timestamp::from_millis(3000)),
        ..two.clone()
    };
    assert_eq!(query(range), [daemon(0), daemon(5)], "since ≤ at < until");
    let kind = crate::domain::AuditQuery {
        kind: Some("decision".into()),
        ..two
    };
    assert!(query(kind).is_empty());
    let pruned = s.prune_audit(Timestamp::from_millis(2000), 1_000_000);
    assert_eq!(pruned.unwrap(), 2, "older than the cut-off");
    let pruned = s.prune_audit(Timestamp::from_millis(0), 2);
    assert_eq!(pruned.unwrap(), 2, "trimmed to the maximum, oldest first");
    assert_eq!(order(s.audit_tail(10).unwrap()), [daemon(4), daemon(1)]);
}

pub(super) fn the_outbox_is_bounded_and_ordered(s: &dyn Store) {
    s.record(daemon(0));
    assert_eq!(s.outbox_peek(10).unwrap().pending, 0, "off until enabled");
    s.set_outbox_limit(100);
    for n in 1..=150 {
        s.record(daemon(n));
    }
    let batch = s.outbox_peek(10).unwrap();
    assert_eq!((batch.pending, batch.dropped), (100, 50));
    assert_eq!(batch.events[0].1.kind, daemon(51), "the oldest are dropped");
    assert!(batch.events.windows(2).all(|w| w[0].0 < w[1].0));
    s.outbox_ack(batch.events[9].0, batch.dropped).unwrap();
    let batch = s.outbox_peek(1000).unwrap();
    assert_eq!((batch.pending, batch.dropped), (90, 0));
    assert_eq!(batch.events.len(), 90);
    assert_eq!(batch.events[0].1.kind, daemon(61));
    assert_eq!(
        s.audit_tail(1000).unwrap().len(),
        151,
        "the audit log keeps all"
    );
}

pub(super) fn a_shared_pin_leaves_the_pin_only_index_until_the_collision_is_gone(s: &dyn Store) {
    let mut local = User::new_local("lou");
    local.pin = upstream("x", "lou", Some(7)).pin;
    s.insert_user(&local).unwrap();
    let a = upstream("hr", "ann", Some(1));
    let b = upstream("hr", "bob", Some(1));
    let c = upstream("hr", "cat", Some(7));
    let applied = apply(s, "hr", &[a.clone(), b, c], &[]).unwrap();
    assert_eq!(applied.added, 3);
    assert_eq!(applied.collisions, ["ann", "bob", "cat"]);
    assert_eq!(
        owner(s, 1),
        None,
        "nobody logs in PIN-only with a shared PIN"
    );
    assert_eq!(
        owner(s, 7),
        None,
        "the local holder loses PIN-only login too"
    );
    assert_eq!(s.pin_collisions().unwrap().len(), 2);
    let ann = s.user("ann").unwrap().unwrap();
    assert_eq!(ann.pin, a.pin, "the PIN stays for ID+PIN");
    let admin_takes = s.update_user(&User {
        pin: a.pin.clone(),
        ..local.clone()
    });
    let refused = matches!(admin_takes, Err(StoreError::TagTaken));
    assert!(refused, "{admin_takes:?}");

    let b2 = upstream("hr", "bob", Some(2));
    let applied = apply(s, "hr", &[b2], &["cat"]).unwrap();
    assert_eq!((applied.changed, applied.removed), (1, 1));
    assert!(applied.collisions.is_empty());
    assert_eq!(owner(s, 1).as_deref(), Some("ann"), "ann is alone again");
    assert_eq!(owner(s, 2).as_deref(), Some("bob"));
    assert_eq!(owner(s, 7).as_deref(), Some("lou"));
    assert!(s.pin_collisions().unwrap().is_empty());
    assert_eq!(s.user_count().unwrap(), 3);
    let keys = s.upstream_keys("hr").unwrap();
    let want = [("k-ann", "ann"), ("k-bob", "bob")].map(|(k, id)| (k.into(), id.into()));
    assert_eq!(keys, want);
    // A page at a time, and only this source's.
    let page = s.upstream_keys_after("hr", None, 1).unwrap();
    assert_eq!(page, want[..1]);
    let page = s.upstream_keys_after("hr", Some("k-ann"), 5).unwrap();
    assert_eq!(page, want[1..]);
    assert!(s
        .upstream_keys_after("hr", Some("k-bob"), 5)
        .unwrap()
        .is_empty());
    assert!(s.upstream_keys_after("h", None, 5).unwrap().is_empty());
    let cursor = s.sync_state("hr").unwrap().unwrap().cursor;
    assert_eq!(cursor.as_deref(), Some(&b"c1"[..]));
}

pub(super) fn pins_and_cards_may_swap_within_one_batch(s: &dyn Store) {
    let mut a = upstream("hr", "ann", Some(1));
    let mut b = upstream("hr", "bob", Some(2));
    a.cards = vec!["11".into()];
    b.cards = vec!["22".into()];
    apply(s, "hr", &[a.clone(), b.clone()], &[]).unwrap();
    std::mem::swap(&mut a.pin, &mut b.pin);
    std::mem::swap(&mut a.cards, &mut b.cards);
    let applied = apply(s, "hr", &[a, b], &[]).unwrap();
    assert!(applied.collisions.is_empty());
    assert_eq!(owner(s, 1).as_deref(), Some("bob"));
    assert_eq!(owner(s, 2).as_deref(), Some("ann"));
    assert_eq!(s.card_owner("11").unwrap().as_deref(), Some("bob"));
    assert_eq!(s.card_owner("22").unwrap().as_deref(), Some("ann"));
}

pub(super) fn a_batch_touching_a_user_it_does_not_own_applies_nothing(s: &dyn Store) {
    s.insert_user(&User::new_local("lou")).unwrap();
    apply(s, "other", &[upstream("other", "oz", Some(9))], &[]).unwrap();
    let new = upstream("hr", "ann", Some(1));
    for removals in [&["lou"][..], &["oz"][..]] {
        let e = apply(s, "hr", std::slice::from_ref(&new), removals).unwrap_err();
        assert!(matches!(e, StoreError::NotOwned(_)), "{e}");
    }
    let e = apply(s, "hr", &[new, upstream("hr", "lou", None)], &[]).unwrap_err();
    assert!(matches!(e, StoreError::NotOwned(_)), "{e}");
    let ann = s.user("ann").unwrap();
    assert!(ann.is_none(), "nothing of the batch applied");
    assert_eq!(owner(s, 1), None);
    assert!(s.sync_state("hr").unwrap().is_none(), "nor its cursor");
    assert_eq!(s.user_count().unwrap(), 2);
}

pub(super) fn removing_a_user_by_hand_drops_its_source_key_and_shared_pin(s: &dyn Store) {
    let a = upstream("hr", "ann", Some(1));
    let b = upstream("hr", "bob", Some(1));
    apply(s, "hr", &[a, b], &[]).unwrap();
    s.remove_user("bob").unwrap();
    assert_eq!(owner(s, 1).as_deref(), Some("ann"));
    assert_eq!(s.upstream_keys("hr").unwrap().len(), 1);
}

pub(super) fn a_synced_removal_drops_the_lockout_and_the_state_is_per_source(s: &dyn Store) {
    apply(s, "hr", &[upstream("hr", "ann", Some(1))], &[]).unwrap();
    s.update_lockout(&user_key("ann"), &|_| Some(LockoutState::default()))
        .unwrap();
    let applied = apply(s, "hr", &[], &["ann"]).unwrap();
    assert_eq!(applied.removed, 1);
    assert_eq!(s.lockout(&user_key("ann")).unwrap(), None);
    assert_eq!(owner(s, 1), None);
    assert!(s.upstream_keys("hr").unwrap().is_empty());

    let failed = SyncState {
        last_error: Some("unreachable".into()),
        ..Default::default()
    };
    s.put_sync_state("scim", &failed).unwrap();
    assert_eq!(s.sync_state("scim").unwrap(), Some(failed));
    let hr = s.sync_state("hr").unwrap().unwrap();
    assert_eq!(
        hr.cursor.as_deref(),
        Some(&b"c1"[..]),
        "another source's is kept"
    );
    assert_eq!(s.sync_state("ldap").unwrap(), None);
}

pub(super) fn users_page_in_id_order_and_each_user_visits_every_one(s: &dyn Store) {
    // More than one page, inserted out of order; ids that sort after a prefix of another.
    let n = super::USER_PAGE * 2 + 7;
    let mut ids: Vec<String> = (0..n).map(|i| format!("u{}", (i * 7919) % n)).collect();
    ids.push("u1x".into());
    for id in &ids {
        s.insert_user(&user(id, None)).unwrap();
    }
    ids.sort();
    let first: Vec<String> = s
        .users_after(None, 3)
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(first, ids[..3]);
    let next: Vec<String> = s
        .users_after(Some(&ids[2]), 2)
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(next, ids[3..5], "a page starts strictly after `after`");
    assert!(s.users_after(Some("zzz"), 5).unwrap().is_empty());

    let mut seen = Vec::new();
    super::each_user(s, |u| {
        seen.push(u.id);
        Ok::<_, StoreError>(())
    })
    .unwrap();
    assert_eq!(seen, ids, "every user once, in id order, across pages");
    // An error from the visitor stops the walk and comes back.
    let mut visited = 0;
    let e = super::each_user(s, |_| {
        visited += 1;
        if visited == 5 {
            return Err(StoreError::NoSuchUser("stop".into()));
        }
        Ok(())
    });
    assert!(matches!(e, Err(StoreError::NoSuchUser(_))), "{e:?}");
    assert_eq!(visited, 5);
}
