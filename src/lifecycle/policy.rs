//! PIN policy: the pure rules a new PIN must meet; it must not touch the store, hashing or I/O.

use crate::domain::Pin;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

#[path = "policy_space.rs"]
mod space;

/// Which characters a PIN may contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Charset {
    /// ASCII digits 0-9 only.
    Digits,
    /// ASCII letters and digits only.
    Alphanumeric,
}

/// The rules for new PINs (existing PINs are not retro-checked).
#[derive(Clone, Debug)]
pub struct PinPolicy {
    /// Fewest characters allowed; never below [`PinPolicy::MIN_LENGTH_FLOOR`].
    pub min_length: usize,
    /// Most characters allowed; at most [`MAX_LENGTH_CEILING`].
    pub max_length: usize,
    pub charset: Charset,
    /// Site-specific PINs to refuse in addition to the built-in list, compared case-insensitively.
    pub extra_blocklist: Vec<String>,
}

/// Upper bound for `max_length`.
pub const MAX_LENGTH_CEILING: usize = 64;

impl PinPolicy {
    /// Absolute floor: a policy may never allow PINs shorter than this.
    pub const MIN_LENGTH_FLOOR: usize = 4;

    /// Validates the policy itself (min >= 4, max >= min, max <= 64); Err is a sentence saying how to fix it.
    pub fn validate(&self) -> Result<(), String> {
        let (min, max) = (self.min_length, self.max_length);
        if min < Self::MIN_LENGTH_FLOOR {
            return Err(format!(
                "min_length is {min} but PINs may never be shorter than {floor}; set min_length to {floor} or more",
                floor = Self::MIN_LENGTH_FLOOR
            ));
        }
        if max < min {
            return Err(format!(
                "max_length ({max}) is smaller than min_length ({min}); set max_length to {min} or more"
            ));
        }
        if max > MAX_LENGTH_CEILING {
            return Err(format!(
                "max_length is {max} but the limit is {MAX_LENGTH_CEILING}; set max_length to {MAX_LENGTH_CEILING} or less"
            ));
        }
        Ok(())
    }

    /// Checks a new PIN for `user_id` (whose card numbers are `cards`). Never reveals the PIN in the error.
    pub fn check(&self, pin: &Pin, user_id: &str, cards: &[String]) -> Result<(), PolicyViolation> {
        let value = pin.expose();
        match self.charset {
            Charset::Digits if !value.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(PolicyViolation::NotDigits)
            }
            Charset::Alphanumeric if !value.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                return Err(PolicyViolation::NotAlphanumeric)
            }
            _ => {}
        }
        let len = pin.len();
        if len < self.min_length {
            return Err(PolicyViolation::TooShort {
                min: self.min_length,
            });
        }
        if len > self.max_length {
            return Err(PolicyViolation::TooLong {
                max: self.max_length,
            });
        }
        if is_repeated(value.as_bytes()) {
            return Err(PolicyViolation::Repeated);
        }
        if is_sequence(value.as_bytes()) {
            return Err(PolicyViolation::Sequence);
        }
        if self.is_common(value) {
            return Err(PolicyViolation::Common);
        }
        if looks_like_user_id(value, user_id, cards) {
            return Err(PolicyViolation::LooksLikeUserId);
        }
        Ok(())
    }

    fn is_common(&self, pin: &str) -> bool {
        is_recent_year(pin)
            || COMMON_PINS
                .split_whitespace()
                .any(|common| common.eq_ignore_ascii_case(pin))
            || self
                .extra_blocklist
                .iter()
                .any(|blocked| blocked.trim().eq_ignore_ascii_case(pin))
    }
}

impl Default for PinPolicy {
    fn default() -> Self {
        PinPolicy {
            min_length: 6,
            max_length: 12,
            charset: Charset::Digits,
            extra_blocklist: Vec::new(),
        }
    }
}

/// Why a new PIN was refused. Messages never contain the PIN.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("PIN must have at least {min} characters")]
    TooShort { min: usize },
    #[error("PIN must have at most {max} characters")]
    TooLong { max: usize },
    #[error("PIN must contain only the digits 0-9")]
    NotDigits,
    #[error("PIN must contain only letters A-Z, a-z and digits 0-9")]
    NotAlphanumeric,
    #[error("PIN must not be a run of consecutive ascending or descending characters")]
    Sequence,
    #[error("PIN must not be one character or one pair of characters repeated")]
    Repeated,
    #[error("PIN is too common; choose a less predictable one")]
    Common,
    #[error("PIN must not contain the user's id or card number")]
    LooksLikeUserId,
    /// Produced by the caller, which can see the store; never by [`PinPolicy::check`].
    #[error("this PIN is not available; choose another")]
    NotUnique,
}

/// Commonly chosen PINs not already caught by the repeat, sequence or year rules
/// (lowercase, separated by whitespace).
const COMMON_PINS: &str =
    "1004 2580 0852 1470 0741 3690 0963 1397 1379 7931 9731 1590 7410 8520 9630 1357 2468 \
     1122 1133 1177 1221 2112 1331 1001 1000 0001 0007 1110 1112 1231 1225 0911 0420 5683 \
     1024 2048 4096 1200 1369 1235 1123 0069 1230 7890 0987 1478 3214 1593 3579 1011 0110 \
     1020 147258 159753 789456 456123 112233 123123 123321 111222 000111 147852 258369 159357 \
     753951 951753 102030 123654 147369 321654 100200 110110 520520 520131 123789 789123 \
     000007 007007 741852 852963 369258 963852 112358 314159 271828 142857 246810 135790 \
     135791 098765 121314 111000 159951 147147 258258 369369 666777 100100 123000 000123 \
     321321 456456 789789 654123 110011 223344 998877 778899 5201314 11223344 12341234 \
     12344321 1234567890 0987654321 qwer asdf zxcv qwerty asdfgh zxcvbn qwertz azerty 1q2w3e \
     q1w2e3r4 1qaz2wsx abc123 a1b2c3 abcd1234 qwer1234 1234qwer pass password passw0rd admin \
     letmein secret iloveyou welcome changeme default test guest";

/// Years 1950-2029 as four digits: birth years and anniversaries.
fn is_recent_year(pin: &str) -> bool {
    pin.len() == 4
        && pin.bytes().all(|b| b.is_ascii_digit())
        && pin
            .parse::<u16>()
            .is_ok_and(|year| (1950..=2029).contains(&year))
}

/// One byte repeated (`1111`), or one 2-byte block repeated (`1212`, `abab`); case-sensitive.
fn is_repeated(pin: &[u8]) -> bool {
    let single = pin
        .first()
        .is_some_and(|first| pin.iter().all(|b| b == first));
    let pair =
        pin.len() >= 4 && pin.len() % 2 == 0 && pin.chunks_exact(2).all(|block| block == &pin[..2]);
    single || pair
}

/// Every step +1 (`1234`, `abcd`) or every step -1 (`4321`, `DCBA`); case-sensitive, no wrap.
fn is_sequence(pin: &[u8]) -> bool {
    let steps_all = |step: i16| {
        pin.windows(2)
            .all(|w| i16::from(w[1]) - i16::from(w[0]) == step)
    };
    pin.len() >= 2 && (steps_all(1) || steps_all(-1))
}

fn digits_of(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// The PIN equals the user id, or (from 4 characters) appears in the id or its digits,
/// or equals or appears in a card number's digits.
fn looks_like_user_id(pin: &str, user_id: &str, cards: &[String]) -> bool {
    let pin_lower = Zeroizing::new(pin.to_lowercase());
    let id_lower = user_id.to_lowercase();
    if *pin_lower == id_lower {
        return true;
    }
    let long_enough = pin.chars().count() >= PinPolicy::MIN_LENGTH_FLOOR;
    if long_enough && (id_lower.contains(pin_lower.as_str()) || digits_of(user_id).contains(pin)) {
        return true;
    }
    cards
        .iter()
        .any(|card| matches_card(pin, card, long_enough))
}

fn matches_card(pin: &str, card: &str, long_enough: bool) -> bool {
    let digits = digits_of(card);
    if digits.is_empty() {
        return false;
    }
    let pin_trimmed = pin.trim_start_matches('0');
    let same_number = !pin_trimmed.is_empty() && pin_trimmed == digits.trim_start_matches('0');
    pin == digits || same_number || (long_enough && digits.contains(pin))
}

#[cfg(test)]
mod tests {
    use super::PolicyViolation::*;
    use super::*;

    const USER: &str = "jdoe590317";

    fn cards() -> Vec<String> {
        vec!["0731-5590".to_string(), "00487215".to_string()]
    }

    fn policy(name: &str) -> PinPolicy {
        match name {
            "default" => PinPolicy::default(),
            "digits4" => PinPolicy {
                min_length: 4,
                ..PinPolicy::default()
            },
            "alnum4" => PinPolicy {
                min_length: 4,
                charset: Charset::Alphanumeric,
                extra_blocklist: vec!["Pinwarden".to_string(), " door ".to_string()],
                ..PinPolicy::default()
            },
            other => panic!("unknown policy {other}"),
        }
    }

    /// (policy, pin, expected result of check for USER with cards()).
    const TABLE: &[(&str, &str, Result<(), PolicyViolation>)] = &[
        ("default", "482913", Ok(())),
        ("default", "048213", Ok(())),
        ("default", "", Err(TooShort { min: 6 })),
        ("default", "48291", Err(TooShort { min: 6 })),
        ("default", "4829134829134", Err(TooLong { max: 12 })),
        ("default", "1111111111111", Err(TooLong { max: 12 })),
        ("default", "48a913", Err(NotDigits)),
        ("default", "48 913", Err(NotDigits)),
        ("default", "4829\u{FF11}3", Err(NotDigits)),
        ("default", "1a", Err(NotDigits)),
        ("default", "111111", Err(Repeated)),
        ("default", "121212", Err(Repeated)),
        ("default", "123456", Err(Sequence)),
        ("default", "654321", Err(Sequence)),
        ("default", "012345", Err(Sequence)),
        ("default", "147258", Err(Common)),
        ("default", "159753", Err(Common)),
        ("default", "789456", Err(Common)),
        ("default", "112233", Err(Common)),
        ("default", "123123", Err(Common)),
        ("default", "123321", Err(Common)),
        ("default", "590317", Err(LooksLikeUserId)),
        ("default", "487215", Err(LooksLikeUserId)),
        ("default", "00487215", Err(LooksLikeUserId)),
        ("default", "0487215", Err(LooksLikeUserId)),
        ("default", "000487215", Err(LooksLikeUserId)),
        ("default", "07315590", Err(LooksLikeUserId)),
        ("default", "7315590", Err(LooksLikeUserId)),
        ("default", "073155", Err(LooksLikeUserId)),
        ("digits4", "8901", Ok(())),
        ("digits4", "4821", Ok(())),
        ("digits4", "1949", Ok(())),
        ("digits4", "2030", Ok(())),
        ("digits4", "123", Err(TooShort { min: 4 })),
        ("digits4", "1234", Err(Sequence)),
        ("digits4", "4321", Err(Sequence)),
        ("digits4", "2345", Err(Sequence)),
        ("digits4", "1111", Err(Repeated)),
        ("digits4", "0000", Err(Repeated)),
        ("digits4", "1212", Err(Repeated)),
        ("digits4", "1950", Err(Common)),
        ("digits4", "1984", Err(Common)),
        ("digits4", "2029", Err(Common)),
        ("digits4", "2580", Err(Common)),
        ("digits4", "1004", Err(Common)),
        ("digits4", "1470", Err(Common)),
        ("digits4", "0852", Err(Common)),
        ("digits4", "0317", Err(LooksLikeUserId)),
        ("digits4", "5590", Err(LooksLikeUserId)),
        ("alnum4", "AbCd", Ok(())),
        ("alnum4", "aaAA", Ok(())),
        ("alnum4", "x7Kq2m", Ok(())),
        ("alnum4", "482913", Ok(())),
        ("alnum4", "abc", Err(TooShort { min: 4 })),
        ("alnum4", "a c", Err(NotAlphanumeric)),
        ("alnum4", "ab-cd", Err(NotAlphanumeric)),
        ("alnum4", "ab cd", Err(NotAlphanumeric)),
        ("alnum4", "\u{e4}bcd", Err(NotAlphanumeric)),
        ("alnum4", "abcd", Err(Sequence)),
        ("alnum4", "ABCD", Err(Sequence)),
        ("alnum4", "dcba", Err(Sequence)),
        ("alnum4", "AAAA", Err(Repeated)),
        ("alnum4", "abab", Err(Repeated)),
        ("alnum4", "qwerty", Err(Common)),
        ("alnum4", "QwErTy", Err(Common)),
        ("alnum4", "PINWARDEN", Err(Common)),
        ("alnum4", "Door", Err(Common)),
        ("alnum4", "jdoe", Err(LooksLikeUserId)),
        ("alnum4", "JDoe", Err(LooksLikeUserId)),
        ("alnum4", "JDOE590317", Err(LooksLikeUserId)),
    ];

    #[test]
    fn table() {
        for (name, pin, expected) in TABLE {
            let got = policy(name).check(&Pin::new(*pin), USER, &cards());
            assert_eq!(&got, expected, "policy {name}, pin {pin:?}");
        }
    }

    #[test]
    fn leading_zero_is_kept_and_counted() {
        let pin = Pin::new("048213");
        assert_eq!(pin.len(), 6);
        assert_eq!(PinPolicy::default().check(&pin, "alice", &[]), Ok(()));
    }

    #[test]
    fn user_id_equality_is_case_insensitive_and_short_ids_do_not_block() {
        let alnum = policy("alnum4");
        assert_eq!(
            alnum.check(&Pin::new("Rk7Q"), "rk7q", &[]),
            Err(LooksLikeUserId)
        );
        assert_eq!(alnum.check(&Pin::new("Rk7Qz"), "k7", &[]), Ok(()));
        assert_eq!(
            alnum.check(&Pin::new("Rk7Qz"), "", &[String::new()]),
            Ok(())
        );
    }

    #[test]
    fn no_violation_message_contains_the_pin() {
        for (name, pin, expected) in TABLE {
            if let Err(violation) = policy(name).check(&Pin::new(*pin), USER, &cards()) {
                let message = violation.to_string();
                assert!(
                    pin.is_empty() || !message.contains(pin),
                    "{message:?} reveals {pin:?}"
                );
                assert_eq!(Err(violation), *expected);
            }
        }
        let not_unique = NotUnique.to_string();
        assert!(!not_unique.contains("482913") && !not_unique.contains(USER));
    }

    #[test]
    fn validate_rejects_bad_policies() {
        assert_eq!(PinPolicy::default().validate(), Ok(()));
        let edge = PinPolicy {
            min_length: 4,
            max_length: 64,
            ..PinPolicy::default()
        };
        assert_eq!(edge.validate(), Ok(()));
        let cases = [
            (3, 12, "min_length"),
            (0, 12, "min_length"),
            (8, 6, "max_length"),
            (6, 65, "64"),
        ];
        for (min_length, max_length, hint) in cases {
            let bad = PinPolicy {
                min_length,
                max_length,
                ..PinPolicy::default()
            };
            let err = bad.validate().expect_err("policy must be rejected");
            assert!(err.contains(hint), "{err}");
        }
    }

    #[test]
    fn every_builtin_entry_is_reachable_and_unique() {
        let alnum = PinPolicy {
            max_length: 64,
            ..policy("alnum4")
        };
        let mut seen = std::collections::HashSet::new();
        for entry in COMMON_PINS.split_whitespace() {
            assert!(seen.insert(entry), "duplicate {entry}");
            assert_eq!(entry.to_lowercase(), entry);
            assert_eq!(
                alnum.check(&Pin::new(entry), "x", &[]),
                Err(Common),
                "{entry}"
            );
        }
    }

    #[test]
    fn charset_serde_is_snake_case() {
        assert_eq!(
            serde_json::to_string(&Charset::Alphanumeric).unwrap(),
            r#""alphanumeric""#
        );
        assert_eq!(
            serde_json::from_str::<Charset>(r#""digits""#).unwrap(),
            Charset::Digits
        );
    }
}
