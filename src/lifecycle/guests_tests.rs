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
