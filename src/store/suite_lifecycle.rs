//! The PIN lifecycle part of the shared store suite (a child of `suite.rs`): the mail
//! outbox written with user changes, lanes, reminders queued exactly once, the sweeper and
//! retired tags. Test functions over `&dyn Store` only; no store's internals.

use super::{apply, owner, upstream, user};
use crate::domain::{Lane, MailKind, PinRecord, PinSource, QueuedMail, Tag, Timestamp, User};
use crate::store::{Store, StoreError};

fn ms(n: i64) -> Timestamp {
    Timestamp::from_millis(n)
}

fn mail(lane: Lane, user: &str, created: i64) -> QueuedMail {
    QueuedMail {
        seq: 0,
        lane,
        kind: MailKind::NewPin,
        user: user.into(),
        to: format!("{user}@example.org"),
        pin_set_at: None,
        created_at: ms(created),
        not_before: ms(created),
        attempts: 0,
        last_error: None,
        sealed: vec![1, 2, 3],
    }
}

fn expiring(t: u8, set_at: i64, expires: Option<i64>) -> PinRecord {
    PinRecord {
        tag: Tag([t; 32]),
        set_at: ms(set_at),
        expires_at: expires.map(ms),
        source: PinSource::Generated,
        temporary: expires.is_some(),
        uses_left: None,
        windows: Vec::new(),
    }
}

fn with_pin(id: &str, pin: PinRecord) -> User {
    User {
        pin: Some(pin),
        ..User::new_local(id)
    }
}

fn retired(s: &dyn Store, t: u8) -> Option<Timestamp> {
    s.tag_retired_at(&Tag([t; 32])).unwrap()
}

fn seqs(s: &dyn Store) -> Vec<u64> {
    s.mail_all().unwrap().iter().map(|m| m.seq).collect()
}

pub(in crate::store) fn mail_is_queued_with_the_user_change_and_not_without(s: &dyn Store) {
    let m = mail(Lane::NewPin, "alice", 1);
    s.insert_user_mailing(&user("alice", Some(1)), std::slice::from_ref(&m))
        .unwrap();
    let queued = s.mail_all().unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(
        QueuedMail {
            seq: 0,
            ..queued[0].clone()
        },
        m,
        "stored as given"
    );

    let e = s.insert_user_mailing(&user("carol", Some(1)), std::slice::from_ref(&m));
    assert!(matches!(e, Err(StoreError::TagTaken)), "{e:?}");
    let e = s.update_user_mailing(&user("zed", None), std::slice::from_ref(&m));
    assert!(matches!(e, Err(StoreError::NoSuchUser(_))), "{e:?}");
    let batch = [user("bob", Some(2)), user("carol", Some(1))];
    let e = s.upsert_users_mailing(&batch, std::slice::from_ref(&m));
    assert!(matches!(e, Err(StoreError::TagTaken)), "{e:?}");
    assert_eq!(
        s.mail_all().unwrap().len(),
        1,
        "a refused write queues nothing"
    );

    let two = [m.clone(), mail(Lane::NewPin, "alice", 2)];
    s.update_user_mailing(&user("alice", Some(3)), &two)
        .unwrap();
    s.upsert_users_mailing(&[user("bob", Some(2))], std::slice::from_ref(&m))
        .unwrap();
    let seqs = seqs(s);
    assert!(seqs[0] > 0, "0 is never handed out");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seq increases: {seqs:?}"
    );
    let order: Vec<i64> = s
        .mail_all()
        .unwrap()
        .iter()
        .map(|m| m.created_at.millis())
        .collect();
    assert_eq!(order, [1, 1, 2, 1], "in the order queued");
    s.insert_user(&user("dan", None)).unwrap();
    assert_eq!(s.mail_all().unwrap().len(), 4, "no mail: none queued");
}

pub(in crate::store) fn mail_lanes_are_separate_oldest_first_with_their_depth(s: &dyn Store) {
    let rows = [
        mail(Lane::Bulk, "a", 30),
        mail(Lane::Reset, "b", 20),
        mail(Lane::Bulk, "c", 10),
        mail(Lane::NewPin, "d", 5),
    ];
    s.insert_user_mailing(&user("a", None), &rows).unwrap();
    let bulk = s.mail_peek(Lane::Bulk, 10).unwrap();
    let users: Vec<&str> = bulk.iter().map(|m| m.user.as_str()).collect();
    assert_eq!(users, ["a", "c"], "queued first, sent first");
    assert!(bulk[0].seq < bulk[1].seq);
    assert_eq!(s.mail_peek(Lane::Bulk, 1).unwrap(), bulk[..1]);
    let after = |seq, limit| s.mail_peek_after(Lane::Bulk, seq, limit).unwrap();
    assert_eq!(after(bulk[0].seq, 10), bulk[1..], "paged past a seq");
    assert_eq!(after(0, 10), bulk);
    assert!(after(bulk[1].seq, 10).is_empty() && after(u64::MAX, 10).is_empty());
    assert_eq!(s.mail_peek(Lane::Reset, 10).unwrap().len(), 1);
    let lanes: Vec<Lane> = s.mail_all().unwrap().iter().map(|m| m.lane).collect();
    assert_eq!(lanes, [Lane::Reset, Lane::NewPin, Lane::Bulk, Lane::Bulk]);
    let depth: Vec<(Lane, u64, Option<Timestamp>)> = s
        .mail_depth()
        .unwrap()
        .into_iter()
        .map(|(lane, d)| (lane, d.depth, d.oldest))
        .collect();
    let want = [
        (Lane::Reset, 1, Some(ms(20))),
        (Lane::NewPin, 1, Some(ms(5))),
        (Lane::Bulk, 2, Some(ms(10))),
    ];
    assert_eq!(depth, want, "the oldest by created_at");

    let mut retry = bulk[0].clone();
    retry.attempts = 2;
    retry.not_before = ms(99);
    retry.last_error = Some("450 mailbox busy".into());
    assert!(s.mail_update(&retry).unwrap());
    assert_eq!(s.mail_peek(Lane::Bulk, 1).unwrap(), [retry.clone()]);
    let reset = s.mail_peek(Lane::Reset, 1).unwrap().remove(0);
    assert!(
        !s.mail_remove(Lane::Bulk, reset.seq).unwrap(),
        "lane and seq"
    );
    assert!(s.mail_remove(Lane::Reset, reset.seq).unwrap());
    assert!(
        !s.mail_remove(Lane::Reset, reset.seq).unwrap(),
        "already gone"
    );
    assert!(!s.mail_update(&reset).unwrap(), "not brought back");
    assert!(s.mail_peek(Lane::Reset, 10).unwrap().is_empty());
    let (lane, d) = s.mail_depth().unwrap().remove(0);
    assert_eq!((lane, d.depth, d.oldest), (Lane::Reset, 0, None));
    assert_eq!(s.mail_all().unwrap().len(), 3);
}

pub(in crate::store) fn a_reminder_is_queued_once_per_pin_version_and_threshold(s: &dyn Store) {
    s.insert_user(&with_pin("alice", expiring(1, 1000, Some(100_000))))
        .unwrap();
    let m = mail(Lane::Bulk, "alice", 50_000);
    let remind = |set_at, threshold, now| {
        s.queue_reminder("alice", ms(set_at), threshold, ms(now), &m)
            .unwrap()
    };
    assert!(remind(1000, 86_400, 50_000));
    assert!(!remind(1000, 86_400, 60_000), "exactly once");
    assert!(remind(1000, 3600, 60_000), "another threshold");
    assert!(!remind(999, 60, 60_000), "another PIN version");
    assert!(!remind(1000, 60, 100_000), "expired at now");
    assert!(!s.queue_reminder("zed", ms(1000), 60, ms(0), &m).unwrap());
    assert_eq!(s.mail_all().unwrap().len(), 2, "one mail per reminder");

    s.update_user(&with_pin("alice", expiring(2, 2000, Some(200_000))))
        .unwrap();
    assert!(!remind(1000, 60, 60_000), "the PIN was replaced");
    assert_eq!(
        s.prune_lifecycle(ms(0)).unwrap(),
        2,
        "the old version's records"
    );
    assert_eq!(s.prune_lifecycle(ms(0)).unwrap(), 0);
    assert!(remind(2000, 86_400, 60_000));
    assert_eq!(s.prune_lifecycle(ms(0)).unwrap(), 0, "current records stay");
    assert!(!remind(2000, 86_400, 60_000));
    // A moved validity: the thresholds count again from the new expiry.
    s.insert_user(&with_pin("alicia", expiring(3, 3000, Some(300_000))))
        .unwrap();
    assert!(s.queue_reminder("alicia", ms(3000), 60, ms(0), &m).unwrap());
    assert_eq!(s.forget_reminders("alice").unwrap(), 1, "only alice's");
    assert!(remind(2000, 86_400, 60_000), "sent again once");
    assert!(!remind(2000, 86_400, 60_000));
    assert!(!s.queue_reminder("alicia", ms(3000), 60, ms(0), &m).unwrap());
    s.remove_user("alicia").unwrap();
    s.prune_lifecycle(ms(0)).unwrap();
    s.remove_user("alice").unwrap();
    assert_eq!(s.prune_lifecycle(ms(0)).unwrap(), 1, "the user is gone");
}

pub(in crate::store) fn the_sweeper_clears_expired_pins_with_duress_and_their_tags(s: &dyn Store) {
    let mut ann = with_pin("ann", expiring(1, 0, Some(1000)));
    ann.duress = Some(expiring(2, 0, None));
    s.insert_user(&ann).unwrap();
    s.insert_user(&with_pin("bob", expiring(3, 0, Some(5000))))
        .unwrap();
    s.insert_user(&with_pin("cat", expiring(4, 0, None)))
        .unwrap();
    s.insert_user(&user("dan", None)).unwrap();
    let mut x = upstream("hr", "x", None);
    x.pin = Some(PinRecord {
        source: PinSource::Upstream,
        ..expiring(5, 0, Some(900))
    });
    let y = upstream("hr", "y", Some(5));
    apply(s, "hr", &[x.clone(), y], &[]).unwrap();
    assert_eq!(owner(s, 5), None, "shared");

    let mut swept = s.sweep_expired(ms(1000)).unwrap();
    swept.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(swept, [ann, x], "as they were");
    let after = s.user("ann").unwrap().unwrap();
    assert_eq!((after.pin, after.duress), (None, None));
    assert_eq!((owner(s, 1), owner(s, 2)), (None, None));
    assert_eq!(
        (retired(s, 1), retired(s, 2)),
        (Some(ms(1000)), Some(ms(1000)))
    );
    assert_eq!(
        owner(s, 5).as_deref(),
        Some("y"),
        "alone with the PIN again"
    );
    assert_eq!(retired(s, 5), None, "still held");
    assert!(s.pin_collisions().unwrap().is_empty());
    assert_eq!(owner(s, 3).as_deref(), Some("bob"), "not yet expired");
    assert_eq!(owner(s, 4).as_deref(), Some("cat"), "never expires");
    assert!(s.sweep_expired(ms(1000)).unwrap().is_empty(), "done once");
    let swept = s.sweep_expired(ms(5000)).unwrap();
    assert_eq!(swept.len(), 1);
    assert_eq!(owner(s, 3), None);
    assert_eq!(s.user_count().unwrap(), 6, "users stay");
}

/// A pending (forgotten-PIN) PIN past its expiry is cleared on its own: its tag leaves the
/// index and retires; the PIN stays and the user is not returned (no PIN expired).
pub(in crate::store) fn an_expired_pending_pin_is_swept_alone(s: &dyn Store) {
    let mut ann = with_pin("ann", expiring(1, 0, None));
    ann.pending_pin = Some(expiring(2, 0, Some(900)));
    s.insert_user(&ann).unwrap();
    let mut bob = with_pin("bob", expiring(3, 0, Some(900)));
    bob.pending_pin = Some(expiring(4, 0, Some(900)));
    s.insert_user(&bob).unwrap();
    let mut cat = with_pin("cat", expiring(5, 0, None));
    cat.pending_pin = Some(expiring(6, 0, Some(5000)));
    s.insert_user(&cat).unwrap();

    let swept = s.sweep_expired(ms(1000)).unwrap();
    assert_eq!(swept, [bob], "only the user whose PIN went");
    let after = s.user("ann").unwrap().unwrap();
    assert_eq!((after.pin, after.pending_pin), (ann.pin, None));
    let after = s.user("bob").unwrap().unwrap();
    assert_eq!((after.pin, after.pending_pin), (None, None));
    assert_eq!((owner(s, 1).as_deref(), owner(s, 2)), (Some("ann"), None));
    assert_eq!(
        (retired(s, 2), retired(s, 4)),
        (Some(ms(1000)), Some(ms(1000)))
    );
    assert_eq!(owner(s, 6).as_deref(), Some("cat"), "not yet expired");
    assert!(s.sweep_expired(ms(1000)).unwrap().is_empty(), "done once");
}

pub(in crate::store) fn tags_leaving_the_index_are_retired_then_pruned(s: &dyn Store) {
    let start = Timestamp::now();
    s.insert_user(&user("alice", Some(1))).unwrap();
    assert_eq!(retired(s, 1), None);
    s.update_user(&user("alice", Some(2))).unwrap();
    assert!(retired(s, 1).is_some_and(|at| at >= start), "replaced");
    let renamed = User {
        name: "Alice".into(),
        ..user("alice", Some(2))
    };
    s.update_user(&renamed).unwrap();
    assert_eq!(retired(s, 2), None, "kept, not retired");
    s.remove_user("alice").unwrap();
    assert!(retired(s, 2).is_some(), "removed with its user");
    s.insert_user(&user("bob", Some(1))).unwrap();
    assert_eq!(retired(s, 1), None, "in use again");
    s.upsert_users(&[user("bob", Some(9))]).unwrap();
    assert!(retired(s, 1).is_some(), "replaced by an import");

    apply(s, "hr", &[upstream("hr", "ann", Some(7))], &[]).unwrap();
    let mut ann = upstream("hr", "ann", Some(7));
    ann.name = "Ann".into();
    apply(s, "hr", &[ann], &[]).unwrap();
    assert_eq!(retired(s, 7), None, "a synced user keeping its PIN");
    apply(s, "hr", &[upstream("hr", "ann", Some(8))], &[]).unwrap();
    assert!(retired(s, 7).is_some(), "replaced by a sync");
    apply(s, "hr", &[], &["ann"]).unwrap();
    assert!(retired(s, 8).is_some(), "removed by a sync");

    assert_eq!(
        s.prune_lifecycle(start).unwrap(),
        0,
        "none older than the start"
    );
    let later = Timestamp::now().plus(std::time::Duration::from_secs(1));
    assert_eq!(s.prune_lifecycle(later).unwrap(), 4, "tags 1, 2, 7 and 8");
    for t in [1, 2, 7, 8] {
        assert_eq!(retired(s, t), None);
    }
    assert_eq!(owner(s, 9).as_deref(), Some("bob"));
}
