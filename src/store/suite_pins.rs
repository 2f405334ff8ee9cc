//! The grant-time PIN use part of the shared store suite (a child of `suite.rs`): limited
//! uses counted down and refused at zero, unlimited and duress PINs left unwritten, a
//! pending PIN promoted with the old tag retired, and racing uses. Test functions over
//! `&dyn Store` only.

use super::{owner, user};
use crate::domain::{PinRecord, PinSource, Tag, Timestamp};
use crate::store::{PinUse, Store};

fn now() -> Timestamp {
    Timestamp::from_millis(1_800_000_000_000)
}

fn limited(t: u8, uses: Option<u32>) -> PinRecord {
    PinRecord {
        tag: Tag([t; 32]),
        set_at: Timestamp::from_millis(5),
        expires_at: None,
        source: PinSource::Admin,
        temporary: false,
        uses_left: uses,
        windows: Vec::new(),
    }
}

pub(in crate::store) fn a_limited_pin_is_counted_down_and_refused_at_zero(s: &dyn Store) {
    let mut alice = user("alice", None);
    alice.pin = Some(limited(1, Some(2)));
    alice.duress = Some(limited(9, None));
    s.insert_user(&alice).unwrap();
    s.insert_user(&user("bob", Some(2))).unwrap();
    let use_pin = |id: &str, t: u8| s.use_pin(id, &Tag([t; 32]), now()).unwrap();
    assert_eq!(use_pin("alice", 1), PinUse::Used { left: 1 });
    assert_eq!(use_pin("alice", 1), PinUse::Used { left: 0 });
    assert_eq!(use_pin("alice", 1), PinUse::Exhausted);
    let left = |id: &str| s.user(id).unwrap().unwrap().pin.unwrap().uses_left;
    assert_eq!(left("alice"), Some(0), "refused: nothing taken below zero");
    assert_eq!(owner(s, 1).as_deref(), Some("alice"), "still in the index");
    assert_eq!(use_pin("alice", 9), PinUse::Unlimited, "the duress PIN");
    assert_eq!(use_pin("bob", 2), PinUse::Unlimited);
    assert_eq!(left("bob"), None);
    assert_eq!(use_pin("bob", 1), PinUse::Gone, "another user's tag");
    assert_eq!(use_pin("carol", 1), PinUse::Gone, "no such user");
}

pub(in crate::store) fn a_pending_pin_replaces_the_pin_at_its_first_use(s: &dyn Store) {
    let mut alice = user("alice", Some(1));
    alice.pending_pin = Some(limited(2, None));
    s.insert_user(&alice).unwrap();
    assert_eq!(owner(s, 1).as_deref(), Some("alice"));
    assert_eq!(owner(s, 2).as_deref(), Some("alice"), "pending is indexed");
    assert_eq!(
        s.use_pin("alice", &Tag([1; 32]), now()).unwrap(),
        PinUse::Unlimited,
        "the old PIN keeps working, unchanged"
    );
    assert!(s.user("alice").unwrap().unwrap().pending_pin.is_some());
    assert_eq!(
        s.use_pin("alice", &Tag([2; 32]), now()).unwrap(),
        PinUse::Promoted { left: None }
    );
    let promoted = s.user("alice").unwrap().unwrap();
    assert_eq!(
        promoted.pin,
        Some(limited(2, None)),
        "the pending record, as sent"
    );
    assert_eq!(promoted.pending_pin, None);
    assert_eq!(owner(s, 1), None, "the old tag left the index");
    assert_eq!(s.tag_retired_at(&Tag([1; 32])).unwrap(), Some(now()));
    assert_eq!(owner(s, 2).as_deref(), Some("alice"));
    assert_eq!(
        s.use_pin("alice", &Tag([1; 32]), now()).unwrap(),
        PinUse::Gone,
        "the old PIN is gone"
    );

    // A limited pending PIN is counted as it is promoted.
    let mut bob = user("bob", None);
    bob.pending_pin = Some(limited(3, Some(2)));
    s.insert_user(&bob).unwrap();
    assert_eq!(
        s.use_pin("bob", &Tag([3; 32]), now()).unwrap(),
        PinUse::Promoted { left: Some(1) }
    );
    let bob = s.user("bob").unwrap().unwrap();
    assert_eq!(bob.pin.and_then(|p| p.uses_left), Some(1));
}

pub(in crate::store) fn racing_uses_take_the_last_one_once(s: &dyn Store) {
    let mut alice = user("alice", None);
    alice.pin = Some(limited(1, Some(5)));
    s.insert_user(&alice).unwrap();
    let results: Vec<PinUse> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| s.use_pin("alice", &Tag([1; 32]), now()).unwrap()))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let used = results
        .iter()
        .filter(|r| matches!(r, PinUse::Used { .. }))
        .count();
    assert_eq!(used, 5, "{results:?}");
    let mut lefts: Vec<u32> = results
        .iter()
        .filter_map(|r| match r {
            PinUse::Used { left } => Some(*left),
            _ => None,
        })
        .collect();
    lefts.sort();
    assert_eq!(lefts, [0, 1, 2, 3, 4], "each use taken once");
    assert_eq!(
        results.iter().filter(|r| **r == PinUse::Exhausted).count(),
        3
    );
}
