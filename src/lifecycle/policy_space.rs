//! The size of a policy's PIN space: how many PINs of one length `PinPolicy::check` accepts,
//! counted exactly from the same rules (charset, repeats, sequences, years, the built-in and
//! site blocklists), not charset^length. Pure; the odds of an attack are computed from it
//! (`core::odds`). The per-user rule (a PIN must not look like the user's id or card) is
//! left out: it removes a handful of PINs per user and depends on who is asking.

use super::{is_recent_year, is_repeated, is_sequence, Charset, PinPolicy, COMMON_PINS};
use std::collections::{BTreeSet, HashSet};

impl Charset {
    /// The bytes a PIN may be made of.
    fn alphabet(self) -> Vec<u8> {
        match self {
            Charset::Digits => (b'0'..=b'9').collect(),
            Charset::Alphanumeric => (b'0'..=b'9')
                .chain(b'A'..=b'Z')
                .chain(b'a'..=b'z')
                .collect(),
        }
    }
}

impl PinPolicy {
    /// The number of PINs of `len` characters this policy accepts (`None` when it does not
    /// fit in a u128: alphanumeric PINs longer than 21 characters).
    pub fn valid_pins_exact(&self, len: usize) -> Option<u128> {
        if len < self.min_length || len > self.max_length {
            return Some(0);
        }
        let alphabet = self.alphabet_for_count();
        let all = (alphabet.len() as u128).checked_pow(u32::try_from(len).ok()?)?;
        Some(all - self.refused(len, &alphabet))
    }

    /// `valid_pins_exact` as a float (exact below 2^53, within 1e-12 above).
    pub fn valid_pins(&self, len: usize) -> f64 {
        match self.valid_pins_exact(len) {
            Some(n) => n as f64,
            None => {
                let alphabet = self.alphabet_for_count();
                (alphabet.len() as f64).powi(len as i32) - self.refused(len, &alphabet) as f64
            }
        }
    }

    fn alphabet_for_count(&self) -> Vec<u8> {
        self.charset.alphabet()
    }

    /// How many strings of `len` characters of the alphabet the rules refuse.
    fn refused(&self, len: usize, alphabet: &[u8]) -> u128 {
        // Refused by shape: repeats, sequences and years, listed (there are few).
        let mut shaped: HashSet<Vec<u8>> = HashSet::new();
        for &a in alphabet {
            shaped.insert(vec![a; len]);
            if len >= 4 && len % 2 == 0 {
                for &b in alphabet {
                    shaped.insert([a, b].repeat(len / 2));
                }
            }
            for step in [1i16, -1] {
                let run: Option<Vec<u8>> = (0..len as i16)
                    .map(|i| u8::try_from(i16::from(a) + step * i).ok())
                    .collect();
                if let Some(run) = run.filter(|r| r.iter().all(|c| alphabet.contains(c))) {
                    shaped.insert(run);
                }
            }
        }
        if len == 4 {
            shaped.extend((1950..=2029).map(|y: u16| y.to_string().into_bytes()));
        }
        debug_assert!(shaped.iter().all(|s| {
            let text = std::str::from_utf8(s).unwrap_or("");
            is_repeated(s) || is_sequence(s) || is_recent_year(text)
        }));
        // Refused by list: each word (case-insensitive) refuses all its case variants.
        let words: BTreeSet<String> = COMMON_PINS
            .split_whitespace()
            .chain(self.extra_blocklist.iter().map(|w| w.trim()))
            .filter(|w| w.len() == len && w.bytes().all(|b| b.is_ascii_alphanumeric()))
            .map(str::to_ascii_lowercase)
            .collect();
        let mut listed: u128 = 0;
        for word in &words {
            let letters = word.bytes().filter(u8::is_ascii_alphabetic).count() as u32;
            listed += match self.charset {
                Charset::Digits if letters > 0 => 0,
                Charset::Digits => 1,
                Charset::Alphanumeric => 1u128.checked_shl(letters).unwrap_or(u128::MAX),
            };
        }
        let both = shaped
            .iter()
            .filter(|s| words.contains(&String::from_utf8_lossy(s).to_ascii_lowercase()))
            .count() as u128;
        shaped.len() as u128 + listed - both
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Pin;

    /// Every string of `len` characters of the alphabet that `check` accepts.
    fn brute_force(policy: &PinPolicy, len: usize) -> u128 {
        let alphabet = policy.charset.alphabet();
        let mut count = 0;
        let mut digits = vec![0usize; len];
        loop {
            let text: String = digits.iter().map(|&i| alphabet[i] as char).collect();
            // An id and card the length rules never match.
            if policy.check(&Pin::new(text), "\u{1}", &[]).is_ok() {
                count += 1;
            }
            let mut i = 0;
            loop {
                if i == len {
                    return count;
                }
                digits[i] += 1;
                if digits[i] < alphabet.len() {
                    break;
                }
                digits[i] = 0;
                i += 1;
            }
        }
    }

    fn digits(min: usize, blocklist: &[&str]) -> PinPolicy {
        PinPolicy {
            min_length: min,
            max_length: 12,
            charset: Charset::Digits,
            extra_blocklist: blocklist.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn counts_match_brute_force_enumeration() {
        for (policy, len) in [
            (digits(4, &[]), 4),
            (digits(4, &[" 4711 ", "abcd", "2580"]), 4),
            (digits(5, &[]), 5),
            (digits(5, &["31337"]), 5),
        ] {
            assert_eq!(
                policy.valid_pins_exact(len),
                Some(brute_force(&policy, len)),
                "{policy:?} length {len}"
            );
        }
    }

    #[test]
    fn known_counts() {
        // 10^4 − 10 repeats of one digit − 90 other pair repeats − 7 + 7 sequences − 80
        // years − the listed 4-digit PINs that none of those already refuses.
        let four = digits(4, &[]).valid_pins_exact(4).unwrap();
        assert!(four < 10_000 - 10 - 90 - 14 - 80 && four > 9_700, "{four}");
        let six = digits(6, &[]).valid_pins_exact(6).unwrap();
        assert!(six > 999_800 && six < 1_000_000 - 10 - 90 - 10, "{six}");
        assert_eq!(digits(6, &[]).valid_pins_exact(5), Some(0));
        let alnum = PinPolicy {
            min_length: 4,
            max_length: 64,
            charset: Charset::Alphanumeric,
            ..PinPolicy::default()
        };
        let with_pass = alnum.valid_pins_exact(4).unwrap();
        let more = PinPolicy {
            extra_blocklist: vec!["PaSs".into(), "zq9x".into()],
            ..alnum.clone()
        };
        // "pass" is built in; "zq9x" refuses its 8 case variants.
        assert_eq!(more.valid_pins_exact(4).unwrap(), with_pass - 8);
        assert!(alnum.valid_pins_exact(22).is_none());
        assert!(alnum.valid_pins(22) > 2.7e39);
    }
}
