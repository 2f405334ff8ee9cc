use super::*;

fn policy() -> LockoutPolicy {
    LockoutPolicy::default()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn backoff_table() {
    let p = policy();
    #[rustfmt::skip]
    let table = [
        (0, None), (4, None), (5, None),
        (6, Some(30)), (7, Some(60)), (8, Some(120)), (9, Some(240)),
        (12, Some(1920)), (13, Some(3600)), (40, Some(3600)), (u32::MAX, Some(3600)),
    ];
    for (failures, s) in table {
        assert_eq!(backoff(failures, &p), s.map(secs), "{failures} failures");
    }
}

#[test]
fn five_free_then_locked_and_doubling() {
    let p = policy();
    let t0 = Timestamp::from_millis(1_000_000);
    let mut s = None;
    for i in 1..=5 {
        s = Some(on_failure(s, &p, t0));
        assert!(!is_locked(s, t0), "failure {i} is within the budget");
    }
    s = Some(on_failure(s, &p, t0));
    assert!(is_locked(s, t0));
    assert!(is_locked(s, t0.plus(secs(29))));
    assert!(!is_locked(s, t0.plus(secs(30))));
    let later = t0.plus(secs(31));
    let s2 = on_failure(s, &p, later);
    assert_eq!(s2.locked_until, Some(later.plus(secs(60))), "doubles");
}

#[test]
fn one_failure_is_forgiven_per_period_and_grants_do_not_reset() {
    let p = policy();
    let t0 = Timestamp::from_millis(0);
    let mut s = None;
    for _ in 0..5 {
        s = Some(on_failure(s, &p, t0));
    }
    // 31 minutes later two failures were forgiven: two more are free, the third locks.
    let t1 = t0.plus(secs(31 * 60));
    let a = on_failure(s, &p, t1);
    assert_eq!(a.failures, 4);
    let b = on_failure(Some(a), &p, t1);
    let c = on_failure(Some(b), &p, t1);
    assert!(!is_locked(Some(b), t1) && is_locked(Some(c), t1));
    // The anchor advanced by whole periods: the leftover minute still counts.
    let t2 = t0.plus(secs(45 * 60));
    assert_eq!(on_failure(Some(c), &p, t2).failures, 6);
    // Fully drained after enough quiet time.
    let quiet = t0.plus(secs(24 * 3600));
    assert_eq!(on_failure(Some(c), &p, quiet).failures, 1);
}

#[test]
fn sustained_guessing_is_held_to_the_forgiveness_rate() {
    let p = policy();
    let mut now = Timestamp::from_millis(0);
    let mut s: Option<LockoutState> = None;
    let mut guesses = 0;
    let day = Timestamp::from_millis(24 * 3600 * 1000);
    while now < day {
        if !is_locked(s, now) {
            s = Some(on_failure(s, &p, now));
            guesses += 1;
        }
        now = now.plus(secs(1));
    }
    // One per 15 minutes (96 a day) plus the bucket's depth at equilibrium (where the lock
    // reaches the forgiveness period: 5 free + 6 doublings), whatever the attacker does.
    assert!(guesses <= 96 + 12, "{guesses} guesses in a day");
    assert!(
        guesses >= 50,
        "the budget is not a permanent lock: {guesses}"
    );
}

#[test]
fn admission_shrinks_with_the_budget_left() {
    let p = policy();
    let t0 = Timestamp::from_millis(0);
    assert_eq!(admits(None, &p, t0), 5);
    let mut s = None;
    for _ in 0..3 {
        s = Some(on_failure(s, &p, t0));
    }
    assert_eq!(admits(s, &p, t0), 2);
    for _ in 0..5 {
        s = Some(on_failure(s, &p, t0));
    }
    assert_eq!(admits(s, &p, t0), 1, "over budget: one at a time");
    assert_eq!(admits(s, &p, t0.plus(secs(24 * 3600))), 5, "drained");
}

#[test]
fn user_lock_is_time_limited_and_escalates() {
    let p = policy();
    let t0 = Timestamp::from_millis(0);
    let mut s = None;
    for _ in 0..9 {
        s = Some(on_user_failure(s, &p, t0));
    }
    assert!(!user_locked(s, t0));
    s = Some(on_user_failure(s, &p, t0));
    assert!(user_locked(s, t0) && user_locked(s, t0.plus(secs(15 * 60 - 1))));
    let t1 = t0.plus(secs(15 * 60));
    assert!(!user_locked(s, t1), "the lock runs out");
    // (failures, lock in minutes): doubling per further failure, at most a day.
    #[rustfmt::skip]
    let table = [(11, 30), (12, 60), (13, 120), (17, 1440), (40, 1440)];
    let mut failures = 10;
    for (n, minutes) in table {
        while failures < n {
            s = Some(on_user_failure(s, &p, t1));
            failures += 1;
        }
        assert_eq!(
            s.unwrap().locked_until,
            Some(t1.plus(secs(minutes * 60))),
            "{n}"
        );
    }
}

#[test]
fn a_source_is_held_below_the_device_budget() {
    let p = policy();
    let ip = LockoutKey::Source("10.0.0.7".parse().unwrap());
    let dev = LockoutKey::Device("lobby".into());
    let t0 = Timestamp::from_millis(0);
    let (mut src, mut device) = (None, None);
    let mut t = t0;
    let mut guesses = 0;
    // One attacker at one terminal, guessing whenever the source lets them, for a day.
    while t < t0.plus(secs(24 * 3600)) {
        if let Some(until) = src
            .and_then(|s: LockoutState| s.locked_until)
            .filter(|u| t < *u)
        {
            t = until;
            continue;
        }
        assert!(!is_locked(device, t), "the device stays open to others");
        src = Some(count_failure(&ip, src, &p, t));
        device = Some(count_failure(&dev, device, &p, t));
        guesses += 1;
    }
    // 5 at once (4 free, the fifth locks), then one per 15 minutes.
    assert_eq!(guesses, 5 + 96 - 1);
    assert_eq!(room(&ip, None, &p, t0), 4);
    assert_eq!(room(&ip, src, &p, t), 1);
}

#[test]
fn lockout_keys_round_trip_through_their_text() {
    let keys = [
        (LockoutKey::Device("lobby".into()), "device:lobby"),
        (
            LockoutKey::Source("10.0.0.7".parse().unwrap()),
            "source:10.0.0.7",
        ),
        (LockoutKey::Source("::1".parse().unwrap()), "source:::1"),
        (LockoutKey::User("a:b".into()), "user:a:b"),
    ];
    for (key, text) in keys {
        assert_eq!(key.to_string(), text);
        assert_eq!(LockoutKey::parse(text), Some(key), "{text}");
    }
    for text in ["", "lobby", "door:x", "source:not-an-ip"] {
        assert_eq!(LockoutKey::parse(text), None, "{text}");
    }
}
