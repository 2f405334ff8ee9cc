use super::*;
use crate::domain::{AuditKind, User};

fn guarded(state: &std::path::Path) -> GuardedStore {
    let settings = GuardSettings {
        store_dir: state.join("store"),
        state_dir: state.to_path_buf(),
        reserve_mib: 1,
        pepper_fingerprint: "fp1".into(),
        hash_params: "m=64,t=1,p=1".into(),
        cache_capacity_mib: 8,
    };
    let params = OpenParams {
        pepper_fingerprint: &settings.pepper_fingerprint,
        hash_params: &settings.hash_params,
        cache_capacity_mib: 8,
    };
    let opened = SledStore::open(&settings.store_dir, params).unwrap();
    GuardedStore::new(opened.store, settings)
}

#[test]
fn a_healthy_store_keeps_its_reserve_and_probes_clean() {
    let dir = tempfile::tempdir().unwrap();
    let s = guarded(dir.path());
    assert!(dir.path().join(RESERVE_FILE).exists());
    s.probe().unwrap();
    let health = s.write_health();
    assert!(health.writable, "{health:?}");
    assert_eq!(health.reserve, Some(true));
    s.insert_user(&User::new_local("alice")).unwrap();
    s.flush().unwrap();
    assert!(s.user("alice").unwrap().is_some());
}

/// The reserve cannot be made (its path is a directory): the store starts not writable,
/// refuses writes other than lockout counters, drops audit events, and becomes writable
/// once the probe can make the reserve.
#[test]
fn not_writable_refuses_writes_keeps_lockouts_and_recovers_on_probe() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join(RESERVE_FILE);
    std::fs::create_dir(&blocker).unwrap();
    let s = guarded(dir.path());
    let health = s.write_health();
    assert!(!health.writable);
    assert!(health.reason.unwrap().contains("space reserve"));

    let refused = s.insert_user(&User::new_local("bob")).unwrap_err();
    assert!(refused.to_string().contains("not writable"), "{refused}");
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
    s.flush().unwrap();
    s.record(AuditKind::Daemon {
        action: crate::domain::DaemonAction::Started,
    });
    assert_eq!(s.write_health().audit_dropped, 1);
    assert!(s.probe().is_err(), "still no reserve");

    std::fs::remove_dir(&blocker).unwrap();
    s.probe().unwrap();
    assert!(s.write_health().writable);
    assert!(blocker.is_file());
    s.insert_user(&User::new_local("bob")).unwrap();
    assert_eq!(s.lockout("device:p").unwrap().unwrap().failures, 1);
}

/// Releasing memory closes and reopens the store: everything written before is there,
/// lockout counters included, the store stays writable, and a reader holding the old
/// handle is waited for rather than cut off.
#[test]
fn releasing_memory_reopens_the_store_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(guarded(dir.path()));
    for i in 0..50 {
        s.insert_user(&User::new_local(format!("u{i:03}"))).unwrap();
    }
    s.update_lockout("device:door", &|_| {
        Some(LockoutState {
            failures: 3,
            ..Default::default()
        })
    })
    .unwrap();
    let before = s.generation.load(SeqCst);
    // A reader in the middle of a call holds the old handle for a moment.
    let (held, _) = s.current().unwrap();
    let releasing = {
        let s = std::sync::Arc::clone(&s);
        std::thread::spawn(move || s.release_memory())
    };
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        held.user("u000").unwrap().is_some(),
        "the old handle still reads"
    );
    drop(held);
    releasing.join().unwrap().unwrap();
    assert_eq!(s.generation.load(SeqCst), before + 1, "reopened once");
    assert_eq!(s.users().unwrap().len(), 50);
    assert_eq!(s.lockout("device:door").unwrap().unwrap().failures, 3);
    assert!(s.write_health().writable);
    s.insert_user(&User::new_local("after")).unwrap();
    s.flush().unwrap();
}

/// A user of directory "hr" holding card `card`.
fn listed(id: &str, card: u32) -> User {
    let mut u = User::new_local(id);
    u.origin = crate::domain::UserOrigin::Upstream;
    u.upstream = Some(crate::domain::UpstreamRef {
        source: "hr".into(),
        key: id.into(),
        version: None,
    });
    u.cards = vec![format!("{card}")];
    u
}

fn batch_state(cursor: &str) -> crate::store::SyncState {
    crate::store::SyncState {
        cursor: Some(cursor.as_bytes().to_vec()),
        ..Default::default()
    }
}

/// Stages `users` as the engine does (in parts) and commits them with `cursor`.
fn stage_and_commit(
    s: &GuardedStore,
    users: &[User],
    cursor: &str,
) -> Result<crate::store::SyncApplied> {
    s.discard_sync("hr")?;
    for part in users.chunks(400) {
        s.stage_sync("hr", part)?;
    }
    s.commit_sync(&crate::store::SyncWrite {
        source: "hr",
        upserts: &[],
        removals: &[],
        state: &batch_state(cursor),
    })
}

/// Walks of every user (a sweep, `each_user`) leave sled's pages in memory too: they are
/// counted without reopening on the caller's thread, and the health probe reopens once
/// the count is due.
#[test]
fn users_walked_are_given_back_by_the_next_probe() {
    let dir = tempfile::tempdir().unwrap();
    let s = guarded(dir.path());
    s.bulk_every.store(100, SeqCst);
    for i in 0..150 {
        s.insert_user(&User::new_local(format!("u{i:03}"))).unwrap();
    }
    let before = s.generation.load(SeqCst);
    s.probe().unwrap();
    assert_eq!(s.generation.load(SeqCst), before, "nothing walked yet");
    let mut seen = 0;
    crate::store::each_user(&s, |_| {
        seen += 1;
        Ok::<(), StoreError>(())
    })
    .unwrap();
    assert_eq!(seen, 150);
    assert_eq!(
        s.generation.load(SeqCst),
        before,
        "the walk itself does not reopen"
    );
    s.probe().unwrap();
    assert_eq!(s.generation.load(SeqCst), before + 1, "the probe reopened");
    s.probe().unwrap();
    assert_eq!(s.generation.load(SeqCst), before + 1, "once");
    s.sweep_expired(Timestamp::now()).unwrap();
    s.probe().unwrap();
    assert_eq!(
        s.generation.load(SeqCst),
        before + 2,
        "a sweep counts every user"
    );
    assert_eq!(s.users_after(None, 1_000).unwrap().len(), 150);
}

/// Issue 14 §4: sled keeps what a batch writes and reads until the store is closed, so a
/// large batch reopens the store every few thousand users (here 700) while it is staged,
/// checked and applied, and still lands whole — or, refused, not at all.
#[test]
fn a_large_batch_reopens_the_store_as_it_goes_and_lands_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let s = guarded(dir.path());
    s.bulk_every.store(700, SeqCst);
    let first: Vec<User> = (0..2_500).map(|i| listed(&format!("u{i:05}"), i)).collect();
    let before = s.generation.load(SeqCst);
    let applied = stage_and_commit(&s, &first, "c1").unwrap();
    assert_eq!(applied.added, 2_500);
    let reopened = s.generation.load(SeqCst) - before;
    // Staging 2 500 (3 reopens), the check's steps, the one after the head, and the
    // roll-forward's 3 000 users: at least 7.
    assert!(reopened >= 7, "reopened {reopened} times");
    assert_eq!(s.user_count().unwrap(), 2_500);
    assert_eq!(s.card_owner("2499").unwrap().as_deref(), Some("u02499"));
    let state = s.sync_state("hr").unwrap().unwrap();
    assert_eq!(state.cursor.as_deref(), Some(&b"c1"[..]));

    // A card held outside the batch, claimed by its last user: refused at the check, after
    // reopens, and nothing of the 2 500 changed users applied.
    let mut outsider = User::new_local("local");
    outsider.cards = vec!["999999".into()];
    s.insert_user(&outsider).unwrap();
    let mut second: Vec<User> = (0..2_500)
        .map(|i| listed(&format!("u{i:05}"), 10_000 + i))
        .collect();
    second[2_499].cards = vec!["999999".into()];
    let before = s.generation.load(SeqCst);
    let refused = stage_and_commit(&s, &second, "c2").unwrap_err();
    assert!(
        matches!(refused, StoreError::CardTaken(ref c) if c == "999999"),
        "{refused}"
    );
    assert!(
        s.generation.load(SeqCst) - before >= 3,
        "reopened while staging"
    );
    assert_eq!(s.card_owner("0").unwrap().as_deref(), Some("u00000"));
    assert_eq!(s.card_owner("10000").unwrap(), None);
    let state = s.sync_state("hr").unwrap().unwrap();
    assert_eq!(state.cursor.as_deref(), Some(&b"c1"[..]));

    // A reopen after a failure (it clears what was staged) in the middle of staging: the
    // commit is refused rather than missing users.
    second[2_499].cards = vec!["12499".into()];
    s.discard_sync("hr").unwrap();
    s.stage_sync("hr", &second[..1_000]).unwrap();
    s.reopen(s.generation.load(SeqCst)).unwrap();
    s.set_writable();
    s.stage_sync("hr", &second[1_000..]).unwrap();
    let refused = s
        .commit_sync(&crate::store::SyncWrite {
            source: "hr",
            upserts: &[],
            removals: &[],
            state: &batch_state("c3"),
        })
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("reopened while the sync staged"),
        "{refused}"
    );
    assert_eq!(s.card_owner("0").unwrap().as_deref(), Some("u00000"));

    // Run again whole: it lands.
    let applied = stage_and_commit(&s, &second, "c3").unwrap();
    assert_eq!(applied.changed, 2_500);
    assert_eq!(s.card_owner("12499").unwrap().as_deref(), Some("u02499"));
    assert_eq!(s.card_owner("0").unwrap(), None);
}
