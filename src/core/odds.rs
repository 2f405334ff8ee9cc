//! Attack odds: an attacker's chance per day of getting in at one device by guessing PINs,
//! for each credential mode it admits, from the PIN space, the users one guess can hit and
//! the guesses the lockout settings really allow, and the changes that would bring a device
//! under the ceiling. Pure: the caller passes the numbers (PIN space from the policy, user
//! counts from the store or `assumed_users`); knows nothing of config files or the store.
//!
//! Guesses per day are not a formula but the lockout arithmetic itself (`lockout.rs`) run
//! over 24 h against an attacker who guesses the moment they may, from fresh counters (the
//! worst day: burst plus refill). The device budget holds every source of the device, so
//! more terminals do not add guesses. The chance is exact for PINs drawn uniformly from
//! the policy-valid space: pinwarden refuses duplicate PINs, so `users` distinct PINs hide
//! among `space` and `guesses` distinct guesses miss them all with probability
//! Π (1 − users / (space − i)); it never exceeds the union bound guesses × users / space.

use super::lockout::{self, LockoutKey, LockoutPolicy};
use crate::domain::{Credential, LockoutState, Timestamp};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[lockout] max_daily_odds` and `assumed_users`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct OddsSettings {
    /// The ceiling on an attacker's chance per day at one device.
    pub max_daily_odds: f64,
    /// Users with a PIN assumed where the store is not at hand (`check-config`).
    pub assumed_users: u64,
}

impl Default for OddsSettings {
    fn default() -> Self {
        OddsSettings {
            max_daily_odds: 0.001,
            assumed_users: 1000,
        }
    }
}

/// A way of presenting oneself at a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A PIN alone: it names its holder, so one guess tries every user at once.
    Pin,
    /// A user id and that user's PIN: one guess tries one user.
    IdPin,
    /// A card alone: nothing to guess (possession only).
    Card,
    /// A card and its holder's PIN: one guess tries the card's holder.
    CardPin,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Pin, Mode::IdPin, Mode::Card, Mode::CardPin];

    /// The name in `[[device]] credentials`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Pin => "pin",
            Mode::IdPin => "id_pin",
            Mode::Card => "card",
            Mode::CardPin => "card_pin",
        }
    }

    pub fn parse(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn label(self) -> &'static str {
        match self {
            Mode::Pin => "PIN only",
            Mode::IdPin => "ID + PIN",
            Mode::Card => "card",
            Mode::CardPin => "card + PIN",
        }
    }

    pub fn of(credential: &Credential) -> Mode {
        match credential {
            Credential::Pin(_) => Mode::Pin,
            Credential::IdPin { .. } => Mode::IdPin,
            Credential::Card { .. } => Mode::Card,
            Credential::CardPin { .. } => Mode::CardPin,
        }
    }
}

const DAY: Duration = Duration::from_secs(24 * 3600);
/// A bound on the simulation (validated settings stay far below it).
const GUESS_CAP: u64 = 10_000_000;

/// Guesses evaluated at one device in a day, over all its sources.
pub fn device_guesses_per_day(policy: &LockoutPolicy) -> u64 {
    let device = LockoutKey::Device(String::new());
    guesses_in(DAY, |s, t| lockout::count_failure(&device, s, policy, t))
}

/// Guesses evaluated against one user (ID + PIN, card + PIN) in a day, by the user lock.
pub fn user_guesses_per_day(policy: &LockoutPolicy) -> u64 {
    guesses_in(DAY, |s, t| lockout::on_user_failure(s, policy, t))
}

/// Runs a counter's arithmetic for `window`, guessing whenever it is not locked.
pub fn guesses_in(
    window: Duration,
    step: impl Fn(Option<LockoutState>, Timestamp) -> LockoutState,
) -> u64 {
    let start = Timestamp::from_millis(0);
    let end = start.plus(window);
    let (mut state, mut t, mut n) = (None, start, 0u64);
    while t < end && n < GUESS_CAP {
        match state
            .and_then(|s: LockoutState| s.locked_until)
            .filter(|until| t < *until)
        {
            Some(until) => t = until,
            None => {
                state = Some(step(state, t));
                n += 1;
            }
        }
    }
    n
}

/// The chance that `guesses` distinct guesses hit one of `users` distinct PINs among
/// `space` equally likely ones.
pub fn chance(users: u64, space: f64, guesses: u64) -> f64 {
    if users == 0 || guesses == 0 {
        return 0.0;
    }
    let u = users as f64;
    let mut log_miss = 0.0f64;
    for i in 0..guesses {
        let left = space - i as f64;
        if left <= u {
            return 1.0;
        }
        log_miss += (-u / left).ln_1p();
    }
    -log_miss.exp_m1()
}

/// One mode's odds at one device.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModeOdds {
    pub mode: Mode,
    /// Users one guess can hit.
    pub users: u64,
    /// Policy-valid PINs of the shortest allowed length.
    pub space: f64,
    /// Guesses a day the lockout allows.
    pub guesses: u64,
    /// The chance per day; `None` for a card alone (nothing to guess).
    pub odds: Option<f64>,
    /// The daily budget the ceiling allows this mode (`under`), if asked.
    pub allowed: Option<u64>,
}

impl ModeOdds {
    /// With the most guesses a day that keep this mode under `ceiling`.
    pub fn under(mut self, ceiling: f64) -> Self {
        self.allowed = self
            .odds
            .map(|_| allowed_guesses(self.users, self.space, ceiling));
        self
    }
}

/// The odds of `mode` at a device admitting `users` users with a PIN.
pub fn assess(mode: Mode, users: u64, space: f64, policy: &LockoutPolicy) -> ModeOdds {
    let device = device_guesses_per_day(policy);
    let (users, guesses) = match mode {
        Mode::Pin => (users, device),
        Mode::IdPin => (users.min(1), device),
        Mode::CardPin => (users.min(1), device.min(user_guesses_per_day(policy))),
        Mode::Card => (0, 0),
    };
    let odds = (mode != Mode::Card).then(|| chance(users, space, guesses));
    ModeOdds {
        mode,
        users,
        space,
        guesses,
        odds,
        allowed: None,
    }
}

/// Formats a chance for people: `0.012 %`, `1.2e-7 %`.
pub fn percent(odds: f64) -> String {
    let p = odds * 100.0;
    if p == 0.0 {
        "0 %".into()
    } else if p >= 0.001 {
        format!("{} %", trim(format!("{p:.3}")))
    } else {
        format!("{p:.1e} %")
    }
}

fn trim(text: String) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// What a fix may change: the policy's PIN space by length and the modes to suggest.
pub struct Levers<'a> {
    /// Policy-valid PINs of a given length.
    pub space_of_length: &'a dyn Fn(usize) -> f64,
    pub min_length: usize,
    pub max_length_limit: usize,
}

/// The changes that would bring `odds` under `ceiling`, each with the odds it gives.
pub fn fixes(
    odds: &ModeOdds,
    ceiling: f64,
    policy: &LockoutPolicy,
    levers: &Levers<'_>,
) -> Vec<String> {
    let mut out = Vec::new();
    let longer = (levers.min_length + 1..=levers.max_length_limit)
        .map(|len| {
            (
                len,
                chance(odds.users, (levers.space_of_length)(len), odds.guesses),
            )
        })
        .find(|(_, o)| *o <= ceiling);
    if let Some((len, o)) = longer {
        out.push(format!(
            "longer PINs: [policy] min_length = {len} (and generated_length >= {len}) gives {}",
            percent(o)
        ));
    }
    if odds.mode == Mode::Pin {
        for mode in [Mode::IdPin, Mode::CardPin] {
            let alt = assess(mode, odds.users, odds.space, policy);
            if alt.odds.is_some_and(|o| o <= ceiling) {
                let needs = match mode {
                    Mode::CardPin => " with a card reader set to card_then_pin",
                    _ => "",
                };
                out.push(format!(
                    "{}: [[device]] credentials = [\"{}\"] (drop \"pin\"){needs} gives {}",
                    mode.label(),
                    mode.name(),
                    percent(alt.odds.unwrap_or(0.0))
                ));
            }
        }
    }
    out.push(stricter_budget(odds, ceiling, policy));
    out
}

/// The most guesses a day that keep `users` among `space` within `ceiling` by the exact
/// chance (what the figure and the derived budget use): at least the union bound's
/// floor(ceiling × space / users), which is always safe, and searched up from it.
pub fn allowed_guesses(users: u64, space: f64, ceiling: f64) -> u64 {
    if users == 0 {
        return GUESS_CAP;
    }
    let bound = (ceiling * space / users as f64).floor();
    if bound >= GUESS_CAP as f64 {
        return GUESS_CAP;
    }
    // chance(lo) <= ceiling < chance(hi).
    let (mut lo, mut hi) = (bound as u64, (bound as u64 * 2 + 2).min(GUESS_CAP));
    if chance(users, space, hi) <= ceiling {
        return hi;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if chance(users, space, mid) <= ceiling {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

fn stricter_budget(odds: &ModeOdds, ceiling: f64, policy: &LockoutPolicy) -> String {
    let allowed = allowed_guesses(odds.users, odds.space, ceiling);
    if allowed == 0 {
        return format!(
            "no lockout budget suffices: a single guess a day already hits one of {} PINs \
             among {:.0} (1 in {:.0}), above the ceiling",
            odds.users,
            odds.space,
            odds.space / odds.users.max(1) as f64
        );
    }
    const WEEK_MINUTES: u64 = 7 * 24 * 60;
    for free in (1..=policy.free_failures).rev() {
        let with = |minutes: u64| {
            let every = Duration::from_secs(minutes * 60);
            LockoutPolicy {
                free_failures: free,
                source_failures: policy.source_failures.min(free),
                forgive_every: every,
                max_backoff: policy.max_backoff.max(every),
                ..*policy
            }
        };
        let fits = |minutes: u64| device_guesses_per_day(&with(minutes)) <= allowed;
        if !fits(WEEK_MINUTES) {
            continue;
        }
        let (mut lo, mut hi) = ((policy.forgive_every.as_secs() / 60).max(1), WEEK_MINUTES);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        let p = with(lo);
        return format!(
            "a stricter budget of at most {allowed} guesses a day: [lockout] free_failures = \
             {free}, forgive_every = \"{}\", max_backoff = \"{}\" ({} a day)",
            crate::duration::format_duration(p.forgive_every),
            crate::duration::format_duration(p.max_backoff),
            device_guesses_per_day(&p)
        );
    }
    format!(
        "no lockout budget suffices: the ceiling allows {allowed} guesses a day, fewer than \
         the lockout's escalation lets through"
    )
}

#[cfg(test)]
#[path = "odds_tests.rs"]
mod tests;
