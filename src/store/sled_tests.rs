use super::*;
use crate::domain::{AuditKind, PinRecord, PinSource};

fn params<'a>(fp: &'a str, hp: &'a str) -> OpenParams<'a> {
    OpenParams {
        pepper_fingerprint: fp,
        hash_params: hp,
        cache_capacity_mib: 8,
    }
}

/// Opens, retrying while the file is in use: sled's flusher thread releases the file lock
/// shortly after the previous handle is dropped (a new process never sees this), and on a
/// loaded machine "shortly" can be seconds, so the retries run against a generous deadline.
pub(super) fn reopen(
    dir: &Path,
    fp: &str,
    hp: &str,
) -> std::result::Result<Opened<SledStore>, OpenError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match SledStore::open(dir, params(fp, hp)) {
            Err(OpenError::InUse(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            other => return other,
        }
    }
}

fn open(dir: &Path) -> SledStore {
    reopen(dir, "fp1", "m=64,t=1,p=1").unwrap().store
}

fn user(id: &str, tag: Option<u8>) -> User {
    let mut u = User::new_local(id);
    u.pin = tag.map(|t| PinRecord {
        tag: Tag([t; 32]),
        set_at: Timestamp::from_millis(0),
        expires_at: None,
        source: PinSource::Admin,
        temporary: false,
    });
    u
}

#[test]
fn meta_is_checked_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let first = SledStore::open(dir.path(), params("fp1", "m=64,t=1,p=1")).unwrap();
    assert!(first.created);
    let salt = first.salt;
    drop(first);
    let again = reopen(dir.path(), "fp1", "m=64,t=1,p=1").unwrap();
    assert!(!again.created);
    assert_eq!(again.salt, salt, "the site salt is kept");
    drop(again);
    // Each refused open held the file too: reopen waits for its lock like any other.
    let e = reopen(dir.path(), "fp2", "m=64,t=1,p=1").err().unwrap();
    assert!(matches!(e, OpenError::PepperMismatch { .. }), "{e}");
    assert!(e.to_string().contains("different pepper"));
    let e = reopen(dir.path(), "fp1", "m=19456,t=2,p=1").err().unwrap();
    assert!(e.to_string().contains("m=64,t=1,p=1"), "{e}");
}

#[test]
fn a_second_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _held = open(dir.path());
    let e = SledStore::open(dir.path(), params("fp1", "m=64,t=1,p=1"))
        .err()
        .unwrap();
    assert!(matches!(e, OpenError::InUse(_)), "{e}");
}

#[test]
fn a_corrupt_store_is_moved_aside_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(
        path.join("conf"),
        b"\xff\xfe garbage that is not a sled config",
    )
    .unwrap();
    std::fs::write(path.join("db"), vec![0xA5; 4096]).unwrap();
    let opened = SledStore::open(&path, params("fp1", "m=64,t=1,p=1")).unwrap();
    let aside = opened.moved_aside.expect("moved aside");
    assert!(Path::new(&aside).exists());
    assert!(opened.created);
}

#[test]
fn tag_index_and_count_follow_users() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.insert_user(&user("alice", Some(1))).unwrap();
    s.insert_user(&user("bob", None)).unwrap();
    assert!(matches!(
        s.insert_user(&user("alice", None)),
        Err(StoreError::UserExists(_))
    ));
    assert!(matches!(
        s.insert_user(&user("carol", Some(1))),
        Err(StoreError::TagTaken)
    ));
    assert_eq!(s.user_count().unwrap(), 2);
    assert_eq!(
        s.tag_owner(&Tag([1; 32])).unwrap().as_deref(),
        Some("alice")
    );

    s.update_user(&user("alice", Some(2))).unwrap();
    assert_eq!(
        s.tag_owner(&Tag([1; 32])).unwrap(),
        None,
        "old tag released"
    );
    assert_eq!(
        s.tag_owner(&Tag([2; 32])).unwrap().as_deref(),
        Some("alice")
    );
    assert!(matches!(
        s.update_user(&user("bob", Some(2))),
        Err(StoreError::TagTaken)
    ));
    assert!(matches!(
        s.update_user(&user("zed", None)),
        Err(StoreError::NoSuchUser(_))
    ));

    assert!(s.remove_user("alice").unwrap().is_some());
    assert_eq!(s.tag_owner(&Tag([2; 32])).unwrap(), None);
    assert_eq!(s.user_count().unwrap(), 1);
    assert!(s.remove_user("alice").unwrap().is_none());
}

#[test]
fn upsert_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    s.insert_user(&user("alice", Some(1))).unwrap();
    let batch = [user("bob", Some(2)), user("carol", Some(1))];
    assert!(matches!(s.upsert_users(&batch), Err(StoreError::TagTaken)));
    assert!(s.user("bob").unwrap().is_none(), "nothing applied");
    assert_eq!(s.user_count().unwrap(), 1);
    let outcome = s
        .upsert_users(&[user("alice", Some(3)), user("bob", Some(2))])
        .unwrap();
    assert_eq!(
        outcome,
        ImportOutcome {
            added: 1,
            updated: 1
        }
    );
    assert_eq!(s.user_count().unwrap(), 2);
}

#[test]
fn lockouts_and_audit_persist_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path());
        let bump = |old: Option<LockoutState>| {
            let mut st = old.unwrap_or_default();
            st.failures += 1;
            Some(st)
        };
        s.update_lockout("device:p", &bump).unwrap();
        s.update_lockout("device:p", &bump).unwrap();
        for i in 0..5 {
            let kind = AuditKind::Daemon {
                action: format!("e{i}"),
            };
            s.append_audit(&AuditEvent {
                at: Timestamp::from_millis(1000 * i),
                kind,
            })
            .unwrap();
        }
        s.flush().unwrap();
    }
    let s = open(dir.path());
    assert_eq!(s.lockout("device:p").unwrap().unwrap().failures, 2);
    assert_eq!(s.lockouts().unwrap().len(), 1);
    s.update_lockout("device:p", &|_| None).unwrap();
    assert_eq!(s.lockout("device:p").unwrap(), None);
    let tail = s.audit_tail(2).unwrap();
    assert_eq!(
        tail.iter().map(|e| e.at.millis()).collect::<Vec<_>>(),
        [3000, 4000]
    );
    assert_eq!(
        s.prune_audit(Timestamp::from_millis(2000), 1_000_000)
            .unwrap(),
        2
    );
    assert_eq!(
        s.prune_audit(Timestamp::from_millis(0), 2).unwrap(),
        1,
        "trimmed to max"
    );
    assert_eq!(s.audit_tail(10).unwrap().len(), 2);
}

#[test]
fn card_index_is_unique_and_follows_users() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let mut alice = user("alice", Some(1));
    alice.cards = vec!["482115".into()];
    s.insert_user(&alice).unwrap();
    let mut bob = user("bob", Some(2));
    bob.cards = vec!["482115".into()];
    assert!(matches!(s.insert_user(&bob), Err(StoreError::CardTaken(c)) if c == "482115"));
    assert!(s.user("bob").unwrap().is_none(), "nothing written");
    assert_eq!(s.card_owner("482115").unwrap().as_deref(), Some("alice"));
    alice.cards = vec!["99".into()];
    s.update_user(&alice).unwrap();
    assert_eq!(
        s.card_owner("482115").unwrap(),
        None,
        "the old card is released"
    );
    s.insert_user(&bob).unwrap();
    s.remove_user("alice").unwrap();
    assert_eq!(s.card_owner("99").unwrap(), None);
    assert_eq!(s.card_owner("482115").unwrap().as_deref(), Some("bob"));
}

#[test]
fn the_outbox_is_bounded_ordered_and_durable() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = |n: usize| AuditKind::Daemon {
        action: format!("e{n}"),
    };
    {
        let s = open(dir.path());
        s.record(daemon(0));
        assert_eq!(s.outbox_peek(10).unwrap().pending, 0, "off until enabled");
        s.set_outbox_limit(100);
        for n in 1..=150 {
            s.record(daemon(n));
        }
        let batch = s.outbox_peek(10).unwrap();
        assert_eq!((batch.pending, batch.dropped), (100, 50));
        let first = &batch.events[0];
        assert_eq!(first.1.kind, daemon(51), "the oldest are dropped");
        assert!(batch.events.windows(2).all(|w| w[0].0 < w[1].0));
        s.outbox_ack(batch.events[9].0, batch.dropped).unwrap();
        s.flush().unwrap();
    }
    let s = open(dir.path());
    let batch = s.outbox_peek(1000).unwrap();
    assert_eq!((batch.pending, batch.dropped), (90, 0));
    assert_eq!(batch.events[0].1.kind, daemon(61));
    assert_eq!(batch.events.len(), 90);
}
