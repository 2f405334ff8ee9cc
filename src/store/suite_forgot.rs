//! The forgotten-PIN part of the shared store suite (a child of `suite.rs`): the request
//! queue, the recovery cap times and a settle that writes the reset with its mail or
//! nothing. Test functions over `&dyn Store` only; no store's internals.

use super::user;
use crate::domain::{DeviceId, Lane, MailKind, PinRecord, PinSource, QueuedMail, Tag, Timestamp};
use crate::store::{ForgotRow, ForgotSettle, Store, StoreError};

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
    assert!(s.forgot_settle(&drop).unwrap());
    assert!(!s.forgot_settle(&drop).unwrap(), "settled once");
    assert_eq!(s.recovery_times("device:lobby").unwrap(), [ms(10)]);

    // A reset for a user who is gone writes nothing and keeps the row.
    let mut alice = user("alice", Some(1));
    alice.pending_pin = Some(PinRecord {
        tag: Tag([7; 32]),
        set_at: ms(20),
        expires_at: None,
        source: PinSource::Generated,
        temporary: false,
        uses_left: None,
        windows: Vec::new(),
    });
    let mail = reset_mail("alice");
    let counted = ["device:lobby".to_string(), "person:alice".to_string()];
    let reset = ForgotSettle {
        seq: first,
        counted: &counted,
        at: ms(20),
        keep_after: ms(15),
        reset: Some((&alice, &mail)),
    };
    let e = s.forgot_settle(&reset);
    assert!(matches!(e, Err(StoreError::NoSuchUser(_))), "{e:?}");
    assert_eq!(s.forgot_peek(10).unwrap().len(), 1, "the row stays");
    assert!(s.mail_all().unwrap().is_empty());
    assert_eq!(s.recovery_times("person:alice").unwrap(), []);

    s.insert_user(&user("alice", Some(1))).unwrap();
    assert!(s.forgot_settle(&reset).unwrap());
    assert!(s.forgot_peek(10).unwrap().is_empty());
    assert_eq!(
        s.user("alice").unwrap().unwrap().pending_pin,
        alice.pending_pin
    );
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
