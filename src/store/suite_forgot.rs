//! The forgotten-PIN part of the shared store suite (a child of `suite.rs`): the request
//! queue, the recovery cap times and a settle that writes the reset with its mail or
//! nothing, on the user as it is when settled. Test functions over `&dyn Store` only; no store's internals.

use super::user;
use crate::domain::{
    DeviceId, Lane, MailKind, PinRecord, PinSource, QueuedMail, Tag, Timestamp, User,
};
use crate::store::{ForgotReset, ForgotRow, ForgotSettle, Settled, Store};

fn ms(n: i64) -> Timestamp {
    Timestamp::from_millis(n)
}

fn row(id: &str, at: i64) -> ForgotRow {
    ForgotRow {
        seq: 0,
        id: id.into(),
        device: DeviceId("lobby".into()),
        at: ms(at),
    }
}

fn reset_mail(user: &str) -> QueuedMail {
    QueuedMail {
        seq: 0,
        lane: Lane::Reset,
        kind: MailKind::ForgottenPin,
        user: user.into(),
        to: format!("{user}@example.org"),
        pin_set_at: None,
        created_at: ms(5),
        not_before: ms(5),
        attempts: 0,
        last_error: None,
        sealed: vec![9],
    }
}

pub(in crate::store) fn forgot_rows_settle_with_their_reset_and_caps(s: &dyn Store) {
    let first = s.forgot_push(&row("alice", 1)).unwrap();
    let second = s.forgot_push(&row("nobody", 2)).unwrap();
    assert!(first > 0 && second > first, "{first} {second}");
    let queued = s.forgot_peek(10).unwrap();
    let ids: Vec<&str> = queued.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["alice", "nobody"], "oldest first");
    assert_eq!(queued[0].seq, first);

    // A dropped row: counted, nothing else written.
    let keys = ["device:lobby".to_string()];
    let drop = ForgotSettle {
        seq: second,
        counted: &keys,
        at: ms(10),
        keep_after: ms(0),
        reset: None,
    };
    assert_eq!(s.forgot_settle(&drop).unwrap(), Settled::Dropped);
    assert_eq!(
        s.forgot_settle(&drop).unwrap(),
        Settled::Gone,
        "settled once"
    );
    assert_eq!(s.recovery_times("device:lobby").unwrap(), [ms(10)]);

    let pending = pending(7, 20);
    let mail = reset_mail("alice");
    let counted = ["device:lobby".to_string()];
    let seen = user("alice", Some(1)).pin;
    let reset = ForgotSettle {
        seq: first,
        counted: &counted,
        at: ms(20),
        keep_after: ms(15),
        reset: Some(ForgotReset {
            id: "alice",
            seen: seen.as_ref(),
            pending: &pending,
            mail: &mail,
            person_key: "person:alice",
        }),
    };
    // Written since the reset was read: a change of name is kept, only the pending PIN set.
    let mut alice = user("alice", Some(1));
    alice.name = "Alice Liddell".into();
    s.insert_user(&alice).unwrap();
    assert_eq!(s.forgot_settle(&reset).unwrap(), Settled::Reset);
    assert!(s.forgot_peek(10).unwrap().is_empty());
    let now = s.user("alice").unwrap().unwrap();
    assert_eq!(now.pending_pin.as_ref(), Some(&pending));
    assert_eq!((now.name.as_str(), now.pin), ("Alice Liddell", seen));
    assert_eq!(
        s.tag_owner(&Tag([7; 32])).unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(
        s.tag_owner(&Tag([1; 32])).unwrap().as_deref(),
        Some("alice")
    );
    let queued = s.mail_all().unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].kind, MailKind::ForgottenPin);
    assert_eq!(
        s.recovery_times("device:lobby").unwrap(),
        [ms(20)],
        "times before keep_after are dropped"
    );
    assert_eq!(s.recovery_times("person:alice").unwrap(), [ms(20)]);
}

fn pending(t: u8, set_at: i64) -> PinRecord {
    PinRecord {
        tag: Tag([t; 32]),
        set_at: ms(set_at),
        expires_at: None,
        source: PinSource::Generated,
        temporary: false,
        uses_left: None,
        windows: Vec::new(),
    }
}

/// A reset built from an older read of the user is settled as dropped when the user has
/// gone, was disabled, or its PIN was changed or used meanwhile: nothing is written but the
/// row's leaving and its device count.
pub(in crate::store) fn a_reset_of_a_user_changed_meanwhile_is_dropped(s: &dyn Store) {
    let mut bob = user("bob", Some(1));
    bob.pin.as_mut().unwrap().uses_left = Some(3);
    let seen = bob.pin.clone();
    let pending = pending(7, 20);
    let mail = reset_mail("bob");
    let counted = ["device:lobby".to_string()];
    let settle = |seq| ForgotSettle {
        seq,
        counted: &counted,
        at: ms(20),
        keep_after: ms(0),
        reset: Some(ForgotReset {
            id: "bob",
            seen: seen.as_ref(),
            pending: &pending,
            mail: &mail,
            person_key: "person:bob",
        }),
    };
    let try_with = |current: Option<&User>| {
        let _ = s.remove_user("bob").unwrap();
        if let Some(u) = current {
            s.insert_user(u).unwrap();
        }
        let seq = s.forgot_push(&row("bob", 1)).unwrap();
        assert_eq!(s.forgot_settle(&settle(seq)).unwrap(), Settled::Dropped);
        assert_eq!(s.user("bob").unwrap().as_ref(), current, "untouched");
    };
    try_with(None);
    try_with(Some(&User {
        enabled: false,
        ..bob.clone()
    }));
    try_with(Some(&user("bob", Some(2))));
    let mut used = bob.clone();
    used.pin.as_mut().unwrap().uses_left = Some(2);
    try_with(Some(&used));
    try_with(Some(&User {
        pin: None,
        ..bob.clone()
    }));
    assert!(s.forgot_peek(10).unwrap().is_empty(), "every row settled");
    assert_eq!(s.recovery_times("device:lobby").unwrap().len(), 5);
    assert_eq!(s.recovery_times("person:bob").unwrap(), []);
    assert!(s.mail_all().unwrap().is_empty());
    assert_eq!(s.tag_owner(&Tag([7; 32])).unwrap(), None);
}

fn link(user: &str, key: u8) -> crate::domain::WebLink {
    crate::domain::WebLink {
        key: [key; 32],
        user: user.into(),
        purpose: crate::domain::LinkPurpose::SignIn,
        created_at: ms(1),
        expires_at: ms(1_000),
        pin_set_at: None,
        browser: [7; 32],
        code: [8; 32],
        code_failures: 0,
        spent: false,
        sealed_pin: None,
    }
}

/// One live link per user, written with its mail; a newer link removes the older; a swap
/// only replaces the link it read.
pub(in crate::store) fn a_newer_link_replaces_the_older_and_a_swap_needs_the_one_read(
    s: &dyn Store,
) {
    let first = link("alice", 1);
    s.link_put(&first, &[reset_mail("alice")]).unwrap();
    assert_eq!(s.link_get(&[1; 32]).unwrap(), Some(first.clone()));
    assert_eq!(
        s.mail_all().unwrap().len(),
        1,
        "the mail is queued with the link"
    );
    s.link_put(&link("bob", 3), &[]).unwrap();
    let second = link("alice", 2);
    s.link_put(&second, &[]).unwrap();
    assert_eq!(
        s.link_get(&[1; 32]).unwrap(),
        None,
        "the older link is gone"
    );
    assert_eq!(s.link_get(&[3; 32]).unwrap(), Some(link("bob", 3)));
    let spent = crate::domain::WebLink {
        spent: true,
        ..second.clone()
    };
    assert!(s.link_swap(&second, &spent).unwrap());
    assert!(
        !s.link_swap(&second, &spent).unwrap(),
        "a second spend loses"
    );
    assert!(
        !s.link_swap(&first, &first).unwrap(),
        "a replaced link cannot come back"
    );
    assert_eq!(s.link_get(&[2; 32]).unwrap(), Some(spent));
    let reveal = crate::domain::WebLink {
        purpose: crate::domain::LinkPurpose::Reveal,
        ..link("alice", 4)
    };
    s.link_put(&reveal, &[]).unwrap();
    assert!(
        s.link_get(&[2; 32]).unwrap().is_some(),
        "one live link per purpose"
    );
    assert_eq!(s.link_get(&[4; 32]).unwrap(), Some(reveal));
}

/// A link expired, or spent, for a day is forgotten with its owner entry; a live one, one
/// dead for less, and a newer link of the same person stay.
pub(in crate::store) fn spent_and_expired_links_are_pruned_a_day_after_they_died(s: &dyn Store) {
    let day = crate::domain::DEAD_LINK_KEPT.as_millis() as i64;
    let expired = link("alice", 1); // made at 1, expires at 1 000
    let spent = crate::domain::WebLink {
        spent: true,
        created_at: ms(500),
        expires_at: ms(10 * day),
        ..link("bob", 2)
    };
    let live = crate::domain::WebLink {
        expires_at: ms(10 * day),
        ..link("carol", 3)
    };
    for l in [&expired, &spent, &live] {
        s.link_put(l, &[]).unwrap();
    }
    assert_eq!(
        s.link_prune(ms(day)).unwrap(),
        0,
        "dead for less than a day"
    );
    assert_eq!(s.link_prune(ms(day + 500)).unwrap(), 1, "the spent one");
    assert_eq!(s.link_get(&[2; 32]).unwrap(), None);
    assert!(s.link_get(&[1; 32]).unwrap().is_some());
    assert_eq!(s.link_prune(ms(day + 1_000)).unwrap(), 1, "the expired one");
    assert_eq!(s.link_get(&[1; 32]).unwrap(), None);
    assert_eq!(s.link_get(&[3; 32]).unwrap(), Some(live.clone()));
    assert_eq!(s.link_prune(ms(9 * day)).unwrap(), 0);
    // The owner entry went with its link: a new link for alice replaces nothing, and the
    // pruned one is not brought back.
    let again = crate::domain::WebLink {
        expires_at: ms(10 * day),
        ..link("alice", 4)
    };
    s.link_put(&again, &[]).unwrap();
    assert_eq!(s.link_get(&[4; 32]).unwrap(), Some(again));
    assert_eq!(
        s.link_prune(ms(11 * day)).unwrap(),
        2,
        "carol's and alice's new one"
    );
    assert_eq!(s.link_get(&[3; 32]).unwrap(), None);
}
