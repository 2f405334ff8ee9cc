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
