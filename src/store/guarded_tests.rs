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
