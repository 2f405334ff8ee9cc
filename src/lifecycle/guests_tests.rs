use super::*;
use crate::domain::PinSource;

const HOUR: Duration = Duration::from_secs(3600);

fn sponsor(groups: &[&str]) -> User {
    let mut u = User::new_local("alice");
    u.groups = groups.iter().map(|g| g.to_string()).collect();
    u
}

#[test]
fn a_guest_gets_only_groups_its_sponsor_has() {
    let s = sponsor(&["staff", "guests"]);
    assert_eq!(guest_groups(&[], &s).unwrap(), vec!["staff", "guests"]);
    assert_eq!(
        guest_groups(&["guests".into(), "guests".into()], &s).unwrap(),
        vec!["guests"]
    );
    let err = guest_groups(&["finance".into()], &s).unwrap_err();
    assert!(err.contains("`finance`") && err.contains("alice"), "{err}");
    assert!(guest_groups(&[], &sponsor(&[])).is_err());
}

#[test]
fn a_guest_stays_within_the_cap_and_never_outlasts_its_sponsor() {
    let now = Timestamp::from_millis(1_000_000_000_000);
    let cap = 24 * HOUR;
    assert_eq!(
        guest_until(now, 8 * HOUR, cap, None).unwrap(),
        now.plus(8 * HOUR)
    );
    assert_eq!(guest_until(now, cap, cap, None).unwrap(), now.plus(cap));
    let err = guest_until(now, 25 * HOUR, cap, None).unwrap_err();
    assert!(err.contains("25h") && err.contains("1d"), "{err}");
    let sponsor_end = now.plus(4 * HOUR);
    let err = guest_until(now, 8 * HOUR, cap, Some((sponsor_end, "alice"))).unwrap_err();
    assert!(err.contains("alice"), "{err}");
    assert!(guest_until(now, 4 * HOUR, cap, Some((sponsor_end, "alice"))).is_ok());
    assert!(guest_until(now, Duration::from_secs(5), cap, None).is_err());
}

#[test]
fn the_sponsor_ends_at_the_earlier_of_validity_and_pin_expiry() {
    let mut s = sponsor(&["staff"]);
    assert_eq!(sponsor_end(&s), None);
    s.valid_until = Some(Timestamp::from_millis(2_000));
    assert_eq!(sponsor_end(&s), Some(Timestamp::from_millis(2_000)));
    s.pin = Some(crate::domain::PinRecord {
        tag: crate::domain::Tag([0; 32]),
        set_at: Timestamp::from_millis(0),
        expires_at: Some(Timestamp::from_millis(1_000)),
        source: PinSource::Admin,
        temporary: true,
        uses_left: None,
        windows: Vec::new(),
    });
    assert_eq!(sponsor_end(&s), Some(Timestamp::from_millis(1_000)));
    assert_eq!(sponsor_name(&s), "alice");
    s.name = "Alice Doe".into();
    assert_eq!(sponsor_name(&s), "Alice Doe");
}

mod service {
    use crate::crypto::{HashParams, HashPool, Hasher, Pepper};
    use crate::domain::{Expiry, Timestamp, User};
    use crate::lifecycle::policy::PinPolicy;
    use crate::lifecycle::users::{GuestSettings, NewGuest, UserAdmin};
    use crate::store::{OpenParams, SledStore, Store};
    use std::sync::Arc;
    use std::time::Duration;

    fn admin(dir: &std::path::Path) -> (Arc<dyn Store>, UserAdmin) {
        let params = OpenParams {
            pepper_fingerprint: "t",
            hash_params: "t",
            cache_capacity_mib: 8,
        };
        let opened = SledStore::open(dir, params).unwrap();
        let store: Arc<dyn Store> = Arc::new(opened.store);
        let hasher = Hasher::new(Pepper::from_bytes([5; 32]), opened.salt, HashParams::TEST);
        let pool = Arc::new(HashPool::new(Arc::new(hasher.unwrap()), 2, 8));
        let policy = PinPolicy::default();
        let admin = UserAdmin::new(Arc::clone(&store), pool, policy, 6, Expiry::Never).with_guests(
            GuestSettings {
                allowed: true,
                ..GuestSettings::default()
            },
        );
        let mut alice = User::new_local("alice");
        alice.groups = vec!["staff".into()];
        store.insert_user(&alice).unwrap();
        (store, admin)
    }

    async fn invite(admin: &UserAdmin, id: &str) {
        let guest = NewGuest {
            id: id.into(),
            email: format!("{id}@example.org"),
            valid_for: "8h".into(),
            ..NewGuest::default()
        };
        let added = admin.guest_add("alice", guest).await.unwrap();
        assert!(added.shown.is_some(), "without mail the PIN is shown");
    }

    /// A directory sync changes the sponsor in the store directly, past `UserAdmin`: the
    /// lifecycle worker's sweep ends the guests.
    #[tokio::test]
    async fn the_sweep_ends_guests_that_expired_or_lost_their_sponsor() {
        let dir = tempfile::tempdir().unwrap();
        let (store, admin) = admin(dir.path());
        invite(&admin, "bob").await;
        let now = Timestamp::now();
        assert_eq!(admin.sweep_guests(now).unwrap(), 0);
        assert_eq!(
            admin
                .sweep_guests(now.plus(Duration::from_secs(9 * 3600)))
                .unwrap(),
            1
        );
        assert!(store.user("bob").unwrap().is_none());

        invite(&admin, "carol").await;
        let mut alice = store.user("alice").unwrap().unwrap();
        alice.enabled = false;
        store.update_user(&alice).unwrap();
        assert_eq!(admin.sweep_guests(now).unwrap(), 1);
        assert!(store.user("carol").unwrap().is_none());

        alice.enabled = true;
        store.update_user(&alice).unwrap();
        invite(&admin, "dave").await;
        store.remove_user("alice").unwrap();
        assert_eq!(admin.sweep_guests(now).unwrap(), 1);
        assert!(admin.guest_list(None).unwrap().is_empty());
    }

    /// A sync narrows the sponsor (a group gone, an earlier end): the sweep narrows the
    /// guest to match, and ends it when none of its groups is left.
    #[tokio::test]
    async fn the_sweep_keeps_guests_in_their_sponsors_likeness() {
        let dir = tempfile::tempdir().unwrap();
        let (store, admin) = admin(dir.path());
        let mut alice = store.user("alice").unwrap().unwrap();
        alice.groups = vec!["staff".into(), "lab".into()];
        store.update_user(&alice).unwrap();
        invite(&admin, "erin").await;
        assert_eq!(store.user("erin").unwrap().unwrap().groups.len(), 2);

        let end = Timestamp::now().plus(Duration::from_secs(3600));
        alice.groups = vec!["lab".into()];
        alice.valid_until = Some(end);
        store.update_user(&alice).unwrap();
        let now = Timestamp::now();
        assert_eq!(admin.sweep_guests(now).unwrap(), 0, "narrowed, not ended");
        let erin = store.user("erin").unwrap().unwrap();
        assert_eq!(erin.groups, vec!["lab".to_string()]);
        assert_eq!(erin.valid_until, Some(end));
        assert_eq!(erin.pin.unwrap().expires_at, Some(end));
        assert_eq!(admin.sweep_guests(now).unwrap(), 0, "nothing more to do");

        alice.groups = vec!["other".into()];
        store.update_user(&alice).unwrap();
        assert_eq!(admin.sweep_guests(now).unwrap(), 1);
        assert!(store.user("erin").unwrap().is_none());
    }
}
