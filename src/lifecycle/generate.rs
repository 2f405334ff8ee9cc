//! Random PIN generation from a CSPRNG that meets the PIN policy; it must not touch the store.

use crate::domain::Pin;
use crate::lifecycle::policy::{Charset, PinPolicy};
use rand::{CryptoRng, Rng, RngCore};

const DIGITS: &[u8] = b"0123456789";

/// Letters and digits without look-alikes (0/O/o, 1/l/I).
const UNAMBIGUOUS: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz";

/// Candidates tried before giving up; real policies reject only a few percent of them.
const MAX_ATTEMPTS: usize = 1_000;

/// A random PIN of `length` chars that passes `policy.check(_, user_id, cards)`.
/// CSPRNG (rand::rngs::OsRng or a CryptoRng passed in). Uniqueness is the caller's job
/// (needs the store): it calls this again on collision.
pub fn generate_pin<R: RngCore + CryptoRng>(
    policy: &PinPolicy,
    length: usize,
    user_id: &str,
    cards: &[String],
    rng: &mut R,
) -> Result<Pin, String> {
    policy.validate()?;
    let (min, max) = (policy.min_length, policy.max_length);
    if !(min..=max).contains(&length) {
        return Err(format!(
            "PIN length {length} is outside the policy; choose a length from {min} to {max}"
        ));
    }
    let alphabet = alphabet(policy.charset);
    for _ in 0..MAX_ATTEMPTS {
        let pin = random_pin(alphabet, length, rng);
        if policy.check(&pin, user_id, cards).is_ok() {
            return Ok(pin);
        }
    }
    Err(format!(
        "no random PIN of length {length} passed the policy in {MAX_ATTEMPTS} attempts; \
         use a longer length or a shorter blocklist"
    ))
}

fn alphabet(charset: Charset) -> &'static [u8] {
    match charset {
        Charset::Digits => DIGITS,
        Charset::Alphanumeric => UNAMBIGUOUS,
    }
}

/// Each character drawn uniformly from `alphabet`. The buffer is sized up front so no
/// unzeroized copy is left behind by a reallocation.
fn random_pin<R: RngCore>(alphabet: &[u8], length: usize, rng: &mut R) -> Pin {
    let mut value = String::with_capacity(length);
    for _ in 0..length {
        value.push(char::from(alphabet[rng.gen_range(0..alphabet.len())]));
    }
    Pin::new(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::{OsRng, StdRng};
    use rand::SeedableRng;

    fn cards() -> Vec<String> {
        vec!["0731-5590".to_string(), "00487215".to_string()]
    }

    fn generate_many(policy: &PinPolicy, length: usize, seed: u64) -> Vec<Pin> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..1000)
            .map(|_| generate_pin(policy, length, "jdoe590317", &cards(), &mut rng).unwrap())
            .collect()
    }

    #[test]
    fn generated_digit_pins_pass_and_have_the_length() {
        let policy = PinPolicy::default();
        let pins = generate_many(&policy, 6, 1);
        for pin in &pins {
            assert_eq!(pin.len(), 6);
            assert!(pin.expose().bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(policy.check(pin, "jdoe590317", &cards()), Ok(()));
        }
        let leading_zeros = pins
            .iter()
            .filter(|pin| pin.expose().starts_with('0'))
            .count();
        assert!(leading_zeros > 0, "a leading zero must be possible");
    }

    #[test]
    fn short_pins_still_pass_the_policy() {
        let policy = PinPolicy {
            min_length: 4,
            ..PinPolicy::default()
        };
        for pin in generate_many(&policy, 4, 2) {
            assert_eq!(pin.len(), 4);
            assert_eq!(policy.check(&pin, "jdoe590317", &cards()), Ok(()));
        }
    }

    #[test]
    fn alphanumeric_pins_use_only_the_unambiguous_alphabet() {
        let policy = PinPolicy {
            charset: Charset::Alphanumeric,
            ..PinPolicy::default()
        };
        let pins = generate_many(&policy, 8, 3);
        let mut seen = [false; 256];
        for pin in &pins {
            assert_eq!(pin.len(), 8);
            assert_eq!(policy.check(pin, "jdoe590317", &cards()), Ok(()));
            for b in pin.expose().bytes() {
                assert!(
                    UNAMBIGUOUS.contains(&b),
                    "{} is not in the alphabet",
                    char::from(b)
                );
                seen[usize::from(b)] = true;
            }
        }
        assert!(
            UNAMBIGUOUS.iter().all(|b| seen[usize::from(*b)]),
            "every char must occur"
        );
        assert!(!UNAMBIGUOUS.iter().any(|b| b"0Oo1lI".contains(b)));
    }

    #[test]
    fn length_outside_the_policy_is_refused() {
        let policy = PinPolicy::default();
        for length in [0, 5, 13] {
            let err = generate_pin(&policy, length, "u", &[], &mut OsRng).unwrap_err();
            assert!(err.contains("from 6 to 12"), "{err}");
        }
    }

    #[test]
    fn invalid_policy_is_refused() {
        let policy = PinPolicy {
            min_length: 3,
            ..PinPolicy::default()
        };
        let err = generate_pin(&policy, 3, "u", &[], &mut OsRng).unwrap_err();
        assert!(err.contains("min_length"), "{err}");
    }

    #[test]
    fn exhausted_blocklist_gives_up() {
        let policy = PinPolicy {
            min_length: 4,
            max_length: 4,
            extra_blocklist: (0..10_000).map(|n| format!("{n:04}")).collect(),
            ..PinPolicy::default()
        };
        let mut rng = StdRng::seed_from_u64(4);
        let err = generate_pin(&policy, 4, "u", &[], &mut rng).unwrap_err();
        assert!(err.contains("attempts"), "{err}");
    }

    #[test]
    fn os_rng_works() {
        let pin = generate_pin(&PinPolicy::default(), 8, "u", &[], &mut OsRng).unwrap();
        assert_eq!(pin.len(), 8);
    }
}
