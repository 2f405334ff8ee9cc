use super::*;
use crate::domain::AuditKind;
use crate::store::{OpenError, OpenParams, Opened};
use std::path::Path;

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

/// Opens the store at `dir` with the tests' pepper and parameters (also for the journal's
/// tests, which reopen a store the same process just dropped).
pub(super) fn open(dir: &Path) -> SledStore {
    reopen(dir, "fp1", "m=64,t=1,p=1").unwrap().store
}

fn run(test: fn(&dyn Store)) {
    let dir = tempfile::tempdir().unwrap();
    test(&open(dir.path()));
}

store_suite!(run);

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
fn a_corrupt_store_is_refused_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    std::fs::create_dir_all(&path).unwrap();
    let conf = b"\xff\xfe garbage that is not a sled config";
    std::fs::write(path.join("conf"), conf).unwrap();
    std::fs::write(path.join("db"), vec![0xA5; 4096]).unwrap();
    let e = SledStore::open(&path, params("fp1", "m=64,t=1,p=1"))
        .err()
        .unwrap();
    assert!(matches!(e, OpenError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("pinwarden store repair"), "{e}");
    assert_eq!(std::fs::read(path.join("conf")).unwrap(), conf);
    assert_eq!(std::fs::read(path.join("db")).unwrap(), vec![0xA5; 4096]);
    let siblings = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(siblings, 1, "nothing moved aside");
}

#[test]
fn an_incomplete_snapshot_is_deleted_and_the_store_opens() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(dir.path());
        s.insert_user(&crate::domain::User::new_local("alice"))
            .unwrap();
        s.flush().unwrap();
    }
    let leftover = dir.path().join("snap.00000000000ABCDE.generating");
    std::fs::write(&leftover, b"").unwrap();
    let s = open(dir.path());
    assert!(!leftover.exists());
    assert!(s.user("alice").unwrap().is_some());
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
            let kind = AuditKind::Lockout {
                key: format!("e{i}"),
                failures: 0,
                until: None,
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
    let tail = s.audit_tail(2).unwrap();
    assert_eq!(
        tail.iter().map(|e| e.at.millis()).collect::<Vec<_>>(),
        [3000, 4000]
    );
    assert_eq!(
        s.prune_audit(Timestamp::from_millis(0), 2).unwrap(),
        3,
        "the count of entries is known after a reopen"
    );
}

#[test]
fn the_outbox_and_its_drop_count_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = |n: usize| AuditKind::Lockout {
        key: format!("e{n}"),
        failures: 0,
        until: None,
    };
    {
        let s = open(dir.path());
        s.set_outbox_limit(100);
        for n in 1..=150 {
            s.record(daemon(n));
        }
        let batch = s.outbox_peek(10).unwrap();
        s.outbox_ack(batch.events[9].0, 20).unwrap();
        s.flush().unwrap();
    }
    let s = open(dir.path());
    let batch = s.outbox_peek(1000).unwrap();
    assert_eq!((batch.pending, batch.dropped), (90, 30));
    assert_eq!(batch.events[0].1.kind, daemon(61));
    assert_eq!(batch.events.len(), 90);
}

#[test]
fn mail_reminders_and_retired_tags_are_durable() {
    use crate::domain::{Lane, MailKind, PinRecord, PinSource, QueuedMail};
    let dir = tempfile::tempdir().unwrap();
    let at = Timestamp::from_millis;
    let mail = QueuedMail {
        seq: 0,
        lane: Lane::Bulk,
        kind: MailKind::ExpiryReminder,
        user: "alice".into(),
        to: "alice@example.org".into(),
        pin_set_at: Some(at(1000)),
        created_at: at(5),
        not_before: at(5),
        attempts: 0,
        last_error: None,
        sealed: vec![9; 40],
    };
    let pin = |t: u8| PinRecord {
        tag: Tag([t; 32]),
        set_at: at(1000),
        expires_at: Some(at(100_000)),
        source: PinSource::Generated,
        temporary: false,
        uses_left: None,
        windows: Vec::new(),
    };
    let (queued, retired) = {
        let s = open(dir.path());
        let mut alice = User::new_local("alice");
        alice.pin = Some(pin(1));
        s.insert_user(&alice).unwrap();
        alice.pin = Some(pin(2));
        s.update_user_mailing(&alice, std::slice::from_ref(&mail))
            .unwrap();
        assert!(s
            .queue_reminder("alice", at(1000), 60, at(0), &mail)
            .unwrap());
        s.flush().unwrap();
        (
            s.mail_all().unwrap(),
            s.tag_retired_at(&Tag([1; 32])).unwrap(),
        )
    };
    let s = open(dir.path());
    assert_eq!(s.mail_all().unwrap(), queued);
    assert!(retired.is_some());
    assert_eq!(s.tag_retired_at(&Tag([1; 32])).unwrap(), retired);
    let again = s.queue_reminder("alice", at(1000), 60, at(0), &mail);
    assert!(!again.unwrap(), "exactly once across a restart");
    assert!(s
        .queue_reminder("alice", at(1000), 30, at(0), &mail)
        .unwrap());
    let seqs: Vec<u64> = s.mail_all().unwrap().iter().map(|m| m.seq).collect();
    assert_eq!(seqs.len(), 3);
    assert!(
        seqs[2] > seqs[1],
        "seq keeps increasing after a reopen: {seqs:?}"
    );
}

#[test]
fn check_finds_bad_records_and_repair_keeps_the_rest_after_a_backup() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    let salt = {
        let opened = reopen(&dir, "fp1", "m=64,t=1,p=1").unwrap();
        let s = opened.store;
        let mut alice = crate::domain::User::new_local("alice");
        alice.cards = vec!["1234".into()];
        s.insert_user(&alice).unwrap();
        s.insert_user(&crate::domain::User::new_local("bob"))
            .unwrap();
        s.users.insert("mallory", &b"{not json"[..]).unwrap();
        s.cards.insert("9999", &b"nobody"[..]).unwrap();
        s.flush().unwrap();
        opened.salt
    };
    let report = when_free(|| SledStore::check(&dir));
    assert!(!report.clean());
    let tree = |name: &str| report.trees.iter().find(|t| t.name == name).unwrap();
    assert_eq!((tree("users").records, tree("users").bad), (3, 1));
    assert_eq!((tree("card_ids").records, tree("card_ids").bad), (2, 1));
    assert!(
        tree("card_ids").problems[0].contains("nobody"),
        "{report:?}"
    );

    let repaired = when_free(|| SledStore::repair(&dir));
    assert!(Path::new(&repaired.backup).join("db").exists());
    let report = when_free(|| SledStore::check(&dir));
    assert!(report.clean(), "{report:?}");
    let opened = reopen(&dir, "fp1", "m=64,t=1,p=1").unwrap();
    assert_eq!(opened.salt, salt, "meta kept: PINs still verify");
    assert!(!opened.created);
    let s = opened.store;
    assert_eq!(s.user_count().unwrap(), 2);
    assert_eq!(s.card_owner("1234").unwrap().as_deref(), Some("alice"));
    assert!(s.user("mallory").unwrap().is_none());
}

/// Runs `f` until the store this process just dropped is no longer in use (see `reopen`).
fn when_free<T>(f: impl Fn() -> std::result::Result<T, OpenError>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match f() {
            Err(OpenError::InUse(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            other => return other.unwrap(),
        }
    }
}
