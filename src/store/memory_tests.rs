use super::*;
use crate::domain::AuditKind;

fn run(test: fn(&dyn Store)) {
    test(&MemoryStore::new());
}

store_suite!(run);

#[test]
fn read_failures_are_switched_per_kind_and_writes_go_on() {
    let s = MemoryStore::new();
    s.insert_user(&User::new_local("alice")).unwrap();
    s.fail_user_reads(true);
    for e in [
        s.user("alice").err(),
        s.card_owner("1").err(),
        s.tag_owner(&Tag([1; 32])).err(),
    ] {
        assert!(matches!(e, Some(StoreError::Unavailable(_))), "{e:?}");
    }
    assert_eq!(s.lockout("device:x").unwrap(), None, "lockouts still read");
    s.fail_lockout_reads(true);
    assert!(matches!(
        s.lockout("device:x"),
        Err(StoreError::Unavailable(_))
    ));
    s.update_lockout("device:x", &|_| Some(LockoutState::default()))
        .unwrap();
    s.fail_user_reads(false);
    s.fail_lockout_reads(false);
    assert!(s.user("alice").unwrap().is_some());
    assert!(s.lockout("device:x").unwrap().is_some());
}

#[test]
fn a_recording_store_logs_its_calls_in_order() {
    let s = MemoryStore::recording();
    s.lockout("device:x").unwrap();
    s.update_lockout("device:x", &|_| None).unwrap();
    s.flush().unwrap();
    s.record(AuditKind::Daemon {
        action: crate::domain::DaemonAction::Started,
    });
    let want = [
        "lockout device:x",
        "update_lockout device:x",
        "flush",
        "append_audit Daemon",
    ];
    assert_eq!(s.calls(), want);
    assert!(
        MemoryStore::new().calls().is_empty(),
        "off unless asked for"
    );
}
