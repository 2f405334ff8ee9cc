use super::*;
use crate::crypto::{HashParams, Hasher, Pepper};
use crate::lifecycle::import::ImportRow;
use crate::store::SledStore;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    admin: UserAdmin,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let opened = SledStore::open(
        dir.path(),
        crate::store::OpenParams {
            pepper_fingerprint: "t",
            hash_params: "t",
            cache_capacity_mib: 8,
        },
    )
    .unwrap();
    let store: Arc<dyn Store> = Arc::new(opened.store);
    let hasher = Hasher::new(Pepper::from_bytes([5; 32]), opened.salt, HashParams::TEST).unwrap();
    let pool = Arc::new(HashPool::new(Arc::new(hasher), 2, 8));
    let admin = UserAdmin::new(
        Arc::clone(&store),
        pool,
        PinPolicy::default(),
        6,
        Expiry::Never,
    );
    Fixture {
        _dir: dir,
        store,
        admin,
    }
}

fn new(id: &str) -> NewUser {
    NewUser {
        id: id.into(),
        groups: vec!["staff".into()],
        ..Default::default()
    }
}

fn given(pin: &str) -> Option<PinChoice> {
    Some(PinChoice::Given(Pin::new(pin)))
}

#[tokio::test]
async fn add_enforces_policy_and_uniqueness_without_naming_the_owner() {
    let f = fixture();
    f.admin
        .add(new("alice"), given("482913"), None)
        .await
        .unwrap();
    let e = f
        .admin
        .add(new("bob"), given("482913"), None)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "this PIN is not available; choose another");
    assert!(!e.to_string().contains("alice"));
    let e = f
        .admin
        .add(new("bob"), given("123456"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, AdminError::Policy(PolicyViolation::Sequence)),
        "{e}"
    );
    assert!(
        f.store.user("bob").unwrap().is_none(),
        "a refused add creates nothing"
    );
    let e = f.admin.add(new("alice"), None, None).await.unwrap_err();
    assert!(matches!(e, AdminError::UserExists(_)));
    let e = f.admin.add(new("has space"), None, None).await.unwrap_err();
    assert!(matches!(e, AdminError::Invalid(_)));
}

#[tokio::test]
async fn generated_pins_are_shown_once_and_stored_as_tags() {
    let f = fixture();
    let pin = f
        .admin
        .add(
            new("carol"),
            Some(PinChoice::Generate),
            Some(Expiry::After(std::time::Duration::from_secs(3600))),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pin.len(), 6);
    let stored = f.store.user("carol").unwrap().unwrap();
    let record = stored.pin.unwrap();
    assert_eq!(record.source, PinSource::Generated);
    assert!(record.temporary && record.expires_at.is_some());
    let json = serde_json::to_string(&f.store.users().unwrap()).unwrap();
    assert!(
        !json.contains(pin.expose()),
        "no plaintext PIN in stored records"
    );
}

#[tokio::test]
async fn enable_clears_a_user_lock_and_set_pin_replaces_the_tag() {
    let f = fixture();
    f.admin
        .add(new("dave"), given("482913"), None)
        .await
        .unwrap();
    f.store
        .update_lockout(&lockout::user_key("dave"), &|_| {
            let now = crate::domain::Timestamp::now();
            Some(crate::domain::LockoutState {
                failures: 10,
                locked_until: Some(now.plus(std::time::Duration::from_secs(900))),
                last_failure: Some(now),
            })
        })
        .unwrap();
    assert!(f.admin.show("dave").unwrap().locked);
    f.admin.set_enabled("dave", false).unwrap();
    assert!(!f.admin.show("dave").unwrap().enabled);
    f.admin.set_enabled("dave", true).unwrap();
    let view = f.admin.show("dave").unwrap();
    assert!(view.enabled && !view.locked);
    let before = f.store.user("dave").unwrap().unwrap().pin.unwrap().tag;
    f.admin
        .set_pin("dave", PinChoice::Given(Pin::new("730194")), None)
        .await
        .unwrap();
    let after = f.store.user("dave").unwrap().unwrap().pin.unwrap().tag;
    assert_ne!(before, after);
    f.admin
        .add(new("erin"), given("482913"), None)
        .await
        .expect("the old PIN is free again");
    assert!(matches!(
        f.admin.set_pin("nobody", PinChoice::Generate, None).await,
        Err(AdminError::NoSuchUser(_))
    ));
}

fn rows(csv: &str) -> Vec<ImportRow> {
    crate::lifecycle::import::parse_users(csv.as_bytes(), b',').unwrap()
}

#[tokio::test]
async fn import_is_all_or_nothing_with_line_numbers() {
    let f = fixture();
    f.admin
        .add(new("alice"), given("482913"), None)
        .await
        .unwrap();
    let bad = "id,name,groups,pin\nbob,Bob,staff,730194\ncarol,Carol,staff,730194\ndan,Dan,staff,1111\nerin,Erin,staff,482913\n";
    let e = f
        .admin
        .import(rows(bad), false, &|_, _| {})
        .await
        .unwrap_err();
    let AdminError::Import(problems) = e else {
        panic!("expected import problems")
    };
    let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, [3, 4, 5], "{problems:?}");
    assert!(problems[0].message.contains("line 2"));
    assert!(problems
        .iter()
        .all(|p| !p.message.contains("730194") && !p.message.contains("alice")));
    assert!(f.store.user("bob").unwrap().is_none(), "nothing applied");

    let good = "id,name,groups,pin\nbob,Bob,staff,730194\nalice,Alice B,staff;guests,\n";
    let dry = f.admin.import(rows(good), true, &|_, _| {}).await.unwrap();
    assert_eq!((dry.added, dry.updated, dry.dry_run), (1, 1, true));
    assert!(
        f.store.user("bob").unwrap().is_none(),
        "a dry run changes nothing"
    );
    let report = f.admin.import(rows(good), false, &|_, _| {}).await.unwrap();
    assert_eq!((report.added, report.updated, report.pins_set), (1, 1, 1));
    let alice = f.store.user("alice").unwrap().unwrap();
    assert_eq!(alice.groups, ["staff", "guests"]);
    assert!(
        alice.pin.is_some(),
        "an empty pin cell keeps the existing PIN"
    );
}

#[tokio::test]
async fn import_refuses_rows_of_upstream_users_and_changes_nothing() {
    let f = fixture();
    let mut alice = User::new_local("alice");
    alice.name = "Alice".into();
    alice.groups = vec!["staff".into()];
    alice.origin = UserOrigin::Upstream;
    alice.upstream = Some(crate::domain::UpstreamRef {
        source: "hr".into(),
        key: "alice".into(),
        version: None,
    });
    f.store.insert_user(&alice).unwrap();
    let file = "id,name,groups,card,pin\nbob,Bob,staff,,730194\nalice,Mallory,admins,4711,482913\n";
    for dry_run in [true, false] {
        let e = f
            .admin
            .import(rows(file), dry_run, &|_, _| {})
            .await
            .unwrap_err();
        let AdminError::Import(problems) = e else {
            panic!("expected import problems, got {e}")
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, 3);
        assert_eq!(
            problems[0].message,
            "`alice` comes from directory `hr`: change it there"
        );
    }
    assert_eq!(f.store.user("alice").unwrap().unwrap(), alice, "unchanged");
    assert!(f.store.user("bob").unwrap().is_none(), "nothing applied");
    assert_eq!(f.store.card_owner("4711").unwrap(), None);
}

/// Gives `id`'s PIN limits: 2 uses, a window and an expiry at `expires`.
fn limit_pin(store: &dyn Store, id: &str, expires: Timestamp) -> crate::domain::PinRecord {
    let mut user = store.user(id).unwrap().unwrap();
    let pin = user.pin.as_mut().unwrap();
    pin.uses_left = Some(2);
    pin.windows = vec!["Mon-Fri 08:00-18:00".into()];
    pin.expires_at = Some(expires);
    pin.temporary = true;
    let pin = pin.clone();
    store.update_user(&user).unwrap();
    pin
}

#[tokio::test]
async fn a_self_changed_pin_keeps_the_limits_of_the_one_it_replaces() {
    let f = fixture();
    f.admin
        .add(new("fay"), given("482913"), None)
        .await
        .unwrap();
    let expires = Timestamp::from_millis(Timestamp::now().millis() + 3_600_000);
    let old = limit_pin(f.store.as_ref(), "fay", expires);
    f.admin.change_own("fay", Pin::new("730194")).await.unwrap();
    let new = f.store.user("fay").unwrap().unwrap().pin.unwrap();
    assert_ne!(new.tag, old.tag);
    assert_eq!(new.uses_left, Some(2), "uses left carry over");
    assert_eq!(new.windows, old.windows);
    assert_eq!(new.expires_at, Some(expires), "no later than the old one");
    assert!(new.temporary);
}

#[tokio::test]
async fn a_change_is_refused_when_the_user_changed_during_the_hashing() {
    let f = fixture();
    // The window is the hash on the pool; with test parameters it can end before the first
    // poll returns. Then that change simply went through: try again with another user.
    for round in 0..50 {
        let id = format!("gus{round}");
        f.admin.add(new(&id), given("482913"), None).await.unwrap();
        let fut = f.admin.change_own(&id, Pin::new("730194"));
        let mut fut = std::pin::pin!(fut);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if std::future::Future::poll(fut.as_mut(), &mut cx).is_ready() {
            f.admin.remove(&id).unwrap();
            continue;
        }
        f.admin.set_enabled(&id, false).unwrap();
        assert!(matches!(fut.await, Err(AdminError::Invalid(_))));
        let gus = f.store.user(&id).unwrap().unwrap();
        assert!(!gus.enabled, "the disable stands");
        assert!(
            f.store.tag_owner(&gus.pin.unwrap().tag).unwrap().is_some(),
            "the old PIN stays"
        );
        return;
    }
    panic!("the hash never outlasted the first poll in 50 rounds");
}
