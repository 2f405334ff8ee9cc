use super::*;
use crate::core::lockout::{self, LockoutKey};
use crate::core::odds::{chance, device_guesses_per_day};
use crate::domain::{LockoutState, Timestamp};

/// The share of placements of `users` distinct PINs among `space` that `guesses` distinct
/// guesses hit, by enumerating every placement (as in `odds_tests.rs`).
fn enumerated(users: u32, space: u32, guesses: u64) -> f64 {
    let tried = if guesses >= u64::from(space) {
        u32::MAX
    } else {
        (1u32 << guesses) - 1
    };
    let (mut hit, mut all) = (0u64, 0u64);
    for placement in 0u32..(1 << space) {
        if placement.count_ones() == users {
            all += 1;
            hit += u64::from(placement & tried != 0);
        }
    }
    hit as f64 / all as f64
}

fn small_site() -> LockoutPolicy {
    LockoutPolicy {
        free_failures: 1,
        source_failures: 1,
        initial_backoff: Duration::from_secs(2 * 3600),
        max_backoff: Duration::from_secs(2 * 3600),
        forgive_every: Duration::from_secs(3600),
        ..LockoutPolicy::default()
    }
}

#[test]
fn a_slower_refill_never_allows_more_guesses() {
    for configured in [LockoutPolicy::default(), small_site()] {
        let mut last = u64::MAX;
        let from = configured.forgive_every.as_secs();
        for secs in (from..=SLOWEST.as_secs()).step_by(7) {
            let g = device_guesses_per_day(&slowed(&configured, Duration::from_secs(secs)));
            assert!(g <= last, "{secs} s: {g} guesses, more than {last}");
            last = g;
        }
    }
}

/// On PIN spaces small enough to enumerate every placement: for each ceiling, every
/// refill period by the second from the configured one up. The derived budget is the
/// first period whose day of guesses the enumeration puts within the ceiling, or the
/// slowest when none does.
#[test]
fn the_derived_budget_is_the_fastest_that_enumeration_puts_under_the_ceiling() {
    let configured = small_site();
    let space = 16u32;
    for users in 1..=3u32 {
        for ceiling in [0.2, 0.3, 0.45, 0.6, 0.75, 0.9, 0.999] {
            let hit: Vec<f64> = (0..=u64::from(space))
                .map(|g| enumerated(users, space, g))
                .collect();
            let meets = |p: &LockoutPolicy| {
                let g = device_guesses_per_day(p).min(u64::from(space));
                hit[g as usize] <= ceiling + 1e-12
            };
            let mut first = None;
            for secs in configured.forgive_every.as_secs()..=SLOWEST.as_secs() {
                let p = slowed(&configured, Duration::from_secs(secs));
                if meets(&p) {
                    first = Some(p);
                    break;
                }
            }
            let got = for_device(
                &configured,
                &[Mode::Pin],
                u64::from(users),
                f64::from(space),
                ceiling,
            );
            let case = format!("{users} users among {space}, ceiling {ceiling}: {got:?}");
            match first {
                Some(want) => {
                    assert!(got.feasible, "{case}");
                    assert_eq!(got.policy, want, "{case}");
                    assert_eq!(got.slowed, want != configured, "{case}");
                }
                None => {
                    assert!(!got.feasible, "{case}");
                    assert_eq!(got.policy, slowed(&configured, SLOWEST), "{case}");
                }
            }
            assert_eq!(got.guesses, device_guesses_per_day(&got.policy), "{case}");
        }
    }
}

#[test]
fn never_faster_than_configured_and_monotone_in_the_population() {
    let configured = LockoutPolicy::default();
    let space = 99_999_891.0; // 8 digits
    let mut last = u64::MAX;
    for users in [0, 1, 100, 900, 1000, 1500, 3000, 6000, 12_000, 100_000] {
        let d = for_device(&configured, &[Mode::Pin, Mode::IdPin], users, space, 0.001);
        let p = d.policy;
        assert!(
            p.forgive_every >= configured.forgive_every,
            "{users}: {d:?}"
        );
        assert!(p.max_backoff >= configured.max_backoff.max(p.forgive_every));
        assert_eq!(
            LockoutPolicy {
                forgive_every: configured.forgive_every,
                max_backoff: configured.max_backoff,
                ..p
            },
            configured,
            "only the refill and the back-off cap change"
        );
        assert!(d.guesses <= d.configured_guesses, "{users}: {d:?}");
        assert!(
            d.guesses <= last,
            "more users, fewer guesses: {users}: {d:?}"
        );
        last = d.guesses;
        if d.feasible {
            assert!(chance(users, space, d.guesses) <= 0.001, "{users}: {d:?}");
        } else {
            assert_eq!(p.forgive_every, SLOWEST, "{users}: {d:?}");
        }
        if d.slowed && d.feasible {
            // Tight: one second faster breaks the ceiling.
            let faster = slowed(&configured, p.forgive_every - Duration::from_secs(1));
            assert!(chance(users, space, device_guesses_per_day(&faster)) > 0.001);
        }
    }
}

#[test]
fn the_readme_sites() {
    let configured = LockoutPolicy::default();
    assert_eq!(device_guesses_per_day(&configured), 106);
    let pin = [Mode::Pin, Mode::IdPin, Mode::CardPin];
    // 8 digits, 1 000 users: 106 guesses are 0.106 %; the budget comes down to 100
    // (forgive_every 15m55s).
    let d = for_device(&configured, &pin, 1000, 99_999_891.0, 0.001);
    assert!(d.feasible && d.slowed, "{d:?}");
    assert_eq!(
        (d.guesses, d.policy.forgive_every.as_secs()),
        (100, 955),
        "{d:?}"
    );
    // 8 digits, 100 users: under the ceiling as configured.
    let d = for_device(&configured, &pin, 100, 99_999_891.0, 0.001);
    assert!(d.feasible && !d.slowed, "{d:?}");
    // 6 digits, 1 000 users: one guess a day is already 1 in 1 000; a day's burst is more.
    let d = for_device(&configured, &pin, 1000, 999_834.0, 0.001);
    assert!(!d.feasible && d.policy.forgive_every == SLOWEST, "{d:?}");
    // ID + PIN alone at 6 digits is far under the ceiling whatever the population.
    let d = for_device(&configured, &[Mode::IdPin], 100_000, 999_834.0, 0.001);
    assert!(d.feasible && !d.slowed, "{d:?}");
}

#[test]
fn budgets_name_only_the_devices_they_slow() {
    let configured = LockoutPolicy::default();
    let slow = slowed(&configured, Duration::from_secs(3 * 3600));
    let derived = [("a", slow), ("b", configured)]
        .into_iter()
        .map(|(d, p)| (DeviceId(d.into()), p))
        .collect();
    let b = Budgets::new(configured, derived);
    assert_eq!(*b.for_device(&DeviceId("a".into())), slow);
    assert_eq!(*b.for_device(&DeviceId("b".into())), configured);
    assert_eq!(*b.for_device(&DeviceId("c".into())), configured);
    assert_eq!(*b.configured(), configured);
}

/// One attacker at one terminal, guessing whenever neither the source nor the device is
/// locked, for a day: whether the device ever locks (the other terminals with it).
fn one_source_locks_its_device(device: &LockoutPolicy, source: &LockoutPolicy) -> bool {
    let ip = LockoutKey::Source([127, 0, 0, 1].into());
    let (mut d, mut s): (Option<LockoutState>, Option<LockoutState>) = (None, None);
    let mut t = Timestamp::from_millis(0);
    let end = t.plus(SLOWEST);
    while t < end {
        let until = [d, s].into_iter().flatten().filter_map(|x| x.locked_until);
        match until.filter(|u| t < *u).max() {
            Some(u) => t = u,
            None => {
                d = Some(lockout::count_failure(
                    &LockoutKey::Device("x".into()),
                    d,
                    device,
                    t,
                ));
                s = Some(lockout::count_failure(&ip, s, source, t));
                if lockout::is_locked(d, t) {
                    return true;
                }
            }
        }
    }
    false
}

/// The source budget (`source_failures` < `free_failures`) keeps one terminal from
/// locking its device only while both refill at the same rate: a slowed device needs its
/// sources slowed with it, so the core applies a device's derived lockout to both.
#[test]
fn a_slowed_device_slows_its_sources_too() {
    let configured = LockoutPolicy::default();
    assert!(!one_source_locks_its_device(&configured, &configured));
    let slow = slowed(&configured, Duration::from_secs(40 * 60));
    assert!(!one_source_locks_its_device(&slow, &slow));
    assert!(
        one_source_locks_its_device(&slow, &configured),
        "a source refilling at the configured rate would lock the slowed device"
    );
}
