//! 128-bit keyed digests of strings, for the sets a large import or sync keeps (ids, keys,
//! cards seen so far): 16 bytes an entry whatever the string's length, where the string
//! itself costs ~40 with its allocation. SipHash under two keys drawn at random for each
//! `Digester`; two strings are taken for one only if both 64-bit digests collide (~2^-128
//! a pair: below 10^-28 for a million entries).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// Digests strings under its own random keys (the same string, the same digest).
#[derive(Clone)]
pub struct Digester(RandomState, RandomState);

impl Default for Digester {
    fn default() -> Self {
        Digester(RandomState::new(), RandomState::new())
    }
}

impl Digester {
    pub fn of(&self, text: &str) -> u128 {
        (u128::from(self.0.hash_one(text)) << 64) | u128::from(self.1.hash_one(text))
    }
}

#[cfg(test)]
mod tests {
    use super::Digester;

    #[test]
    fn one_string_one_digest_and_other_strings_others() {
        let d = Digester::default();
        assert_eq!(d.of("alice"), d.of("alice"));
        let mut seen = std::collections::HashSet::new();
        for i in 0..100_000 {
            assert!(seen.insert(d.of(&format!("u{i}"))), "u{i} collided");
        }
        // Another digester draws other keys.
        assert_ne!(Digester::default().of("alice"), d.of("alice"));
    }
}
