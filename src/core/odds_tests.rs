use super::*;

/// Every way of placing `users` distinct PINs among `space`, against an attacker trying
/// `guesses` fixed distinct PINs: the share of placements they hit.
fn enumerated(users: u32, space: u32, guesses: u32) -> f64 {
    let (mut hit, mut all) = (0u64, 0u64);
    for placement in 0u32..(1 << space) {
        if placement.count_ones() != users {
            continue;
        }
        all += 1;
        let tried = (1u32 << guesses) - 1;
        if placement & tried != 0 {
            hit += 1;
        }
    }
    hit as f64 / all as f64
}

#[test]
fn the_chance_matches_enumeration_of_every_placement() {
    for (users, space) in [(1, 6), (2, 8), (3, 10), (5, 12)] {
        for guesses in 0..=space {
            let want = enumerated(users, space, guesses);
            let got = chance(users.into(), space.into(), guesses.into());
            assert!(
                (got - want).abs() < 1e-12,
                "{users}/{space} x{guesses}: {got} vs {want}"
            );
            assert!(got <= f64::from(guesses * users) / f64::from(space) + 1e-12);
        }
    }
}

fn binomial(n: u64, k: u64) -> f64 {
    (0..k).map(|i| (n - i) as f64 / (k - i) as f64).product()
}

#[test]
fn four_digit_pins_under_a_tiny_lockout() {
    use crate::lifecycle::policy::PinPolicy;
    let pins = PinPolicy {
        min_length: 4,
        ..PinPolicy::default()
    };
    let space = pins.valid_pins_exact(4).unwrap() as u64;
    let tiny = LockoutPolicy {
        free_failures: 2,
        source_failures: 1,
        initial_backoff: Duration::from_secs(3600),
        max_backoff: Duration::from_secs(6 * 3600),
        forgive_every: Duration::from_secs(6 * 3600),
        ..LockoutPolicy::default()
    };
    // 2 at once, then one after 1 h, one 2 h later (levels 3, 4 leak by then: 2 at 6 h),
    // counted by hand from the rules: 0,0 | 1h | 3h | 6h+ ... checked against the model.
    let guesses = device_guesses_per_day(&tiny);
    let by_hand = {
        let (mut t, mut n, mut s) = (0u64, 0u64, None);
        while t < 24 * 3600 {
            let now = Timestamp::from_millis(t as i64 * 1000);
            if lockout::is_locked(s, now) {
                t += 1;
                continue;
            }
            s = Some(lockout::on_failure(s, &tiny, now));
            n += 1;
        }
        n
    };
    assert_eq!(guesses, by_hand);
    assert!(guesses < 12, "{guesses}");
    for users in [1u64, 10, 100] {
        // The same chance counted from the other side: the guess set misses every PIN.
        let want = 1.0 - binomial(space - guesses, users) / binomial(space, users);
        let got = chance(users, space as f64, guesses);
        assert!((got - want).abs() < 1e-9, "{users}: {got} vs {want}");
    }
}

#[test]
fn the_default_lockout_allows_what_the_issue_measured() {
    let p = LockoutPolicy::default();
    // Issue 15: 106 guesses on the first day from fresh counters.
    assert_eq!(device_guesses_per_day(&p), 106);
    // A user: 10, then one after each lock of 15 m, 30 m, 1 h, 2 h, 4 h, 8 h (16 h is past
    // the day).
    assert_eq!(user_guesses_per_day(&p), 10 + 6);
}

#[test]
fn modes_and_fixes_for_a_six_digit_site() {
    use crate::lifecycle::policy::PinPolicy;
    let pins = PinPolicy::default();
    let space_of = |len: usize| {
        PinPolicy {
            max_length: 64,
            min_length: len,
            ..pins.clone()
        }
        .valid_pins(len)
    };
    let space = space_of(6);
    let p = LockoutPolicy::default();
    let pin = assess(Mode::Pin, 1000, space, &p);
    assert!((pin.odds.unwrap() - 0.1).abs() < 0.01, "{pin:?}");
    let id = assess(Mode::IdPin, 1000, space, &p);
    assert_eq!(id.users, 1);
    assert!(id.odds.unwrap() < 0.001 && id.odds.unwrap() > 0.0001);
    let card = assess(Mode::CardPin, 1000, space, &p);
    assert_eq!(card.guesses, 16);
    assert_eq!(assess(Mode::Card, 1000, space, &p).odds, None);
    let levers = Levers {
        space_of_length: &space_of,
        min_length: 6,
        max_length_limit: 64,
    };
    let fixes = fixes(&pin, 0.001, &p, &levers);
    let text = fixes.join("\n");
    assert!(text.contains("min_length = 9"), "{text}");
    assert!(text.contains("credentials = [\"id_pin\"]"), "{text}");
    assert!(text.contains("credentials = [\"card_pin\"]"), "{text}");
    assert!(text.contains("no lockout budget suffices"), "{text}");
    // An 8-digit site is a stricter budget away.
    let eight = assess(Mode::Pin, 1000, space_of(8), &p);
    let text = super::fixes(&eight, 0.001, &p, &levers).join("\n");
    assert!(text.contains("forgive_every"), "{text}");
}

#[test]
fn percentages_read_well() {
    assert_eq!(percent(0.1), "10 %");
    assert_eq!(percent(0.00106), "0.106 %");
    assert_eq!(percent(0.0), "0 %");
    assert_eq!(percent(1.7e-9), "1.7e-7 %");
}

#[test]
fn modes_round_trip_through_their_names() {
    for mode in Mode::ALL {
        assert_eq!(Mode::parse(mode.name()), Some(mode));
    }
    assert_eq!(Mode::parse("pin+card"), None);
}

#[test]
fn the_allowed_budget_is_safe_and_tight() {
    for (users, space) in [
        (1000u64, 999_834.0),
        (1, 999_834.0),
        (1000, 99_999_891.0),
        (7, 9_700.0),
    ] {
        let allowed = allowed_guesses(users, space, 0.001);
        assert!(
            chance(users, space, allowed) <= 0.001,
            "{users}/{space}: {allowed}"
        );
        // One more would go over; never below the union bound.
        assert!(chance(users, space, allowed + 1) > 0.001, "{users}/{space}");
        assert!(allowed as f64 >= (0.001 * space / users as f64).floor());
    }
    assert_eq!(allowed_guesses(1000, 999_834.0, 0.001), 0);
    // The union bound says 99; the exact chance of 100 guesses is 0.099 995 %.
    assert_eq!(allowed_guesses(1000, 99_999_891.0, 0.001), 100);
}
