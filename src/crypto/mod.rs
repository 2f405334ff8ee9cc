//! PIN tags: the keyed argon2id hash that is the only stored form of a PIN, the pepper that
//! keys it, and the bounded worker pool that computes it. Knows nothing of users or stores.

mod batch;
mod pepper;
mod pool;
mod timing;

pub use pepper::{Pepper, PepperError};
pub use pool::{HashPool, PoolBusy, PoolStats};
pub use timing::{HistogramSnapshot, TagTimes};

use crate::domain::{Pin, Tag};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// argon2id cost parameters. The defaults are OWASP's (19 MiB, 2 passes, 1 lane).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        HashParams {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl HashParams {
    /// Cheap parameters for unit tests only.
    pub const TEST: HashParams = HashParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    pub fn validate(&self) -> Result<(), String> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map(|_| ())
            .map_err(|e| format!("invalid argon2 parameters ({e})"))
    }
}

impl std::fmt::Display for HashParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "m={},t={},p={}",
            self.memory_kib, self.iterations, self.parallelism
        )
    }
}

/// Computes tags. Holds the pepper and the site salt; cheap to share behind an `Arc`.
pub struct Hasher {
    pepper: Pepper,
    salt: [u8; 16],
    params: HashParams,
}

impl Hasher {
    pub fn new(pepper: Pepper, salt: [u8; 16], params: HashParams) -> Result<Self, String> {
        params.validate()?;
        Ok(Hasher {
            pepper,
            salt,
            params,
        })
    }

    fn argon(&self) -> Argon2<'_> {
        let p = self.params;
        let params = Params::new(p.memory_kib, p.iterations, p.parallelism, Some(32))
            .expect("parameters were validated in Hasher::new");
        Argon2::new_with_secret(
            self.pepper.secret(),
            Algorithm::Argon2id,
            Version::V0x13,
            params,
        )
        .expect("a 32-byte secret is always accepted")
    }

    /// The argon2 work memory for one worker, allocated once and reused.
    pub fn workspace(&self) -> Workspace {
        Workspace(vec![Block::default(); self.argon().params().block_count()])
    }

    /// `argon2id(pin, salt = site salt, secret = pepper)`: deterministic, so the tag can be
    /// looked up; keyed, so a stolen store alone cannot be brute-forced offline. The work
    /// memory is wiped afterwards (argon2's own zeroize feature does not wipe it).
    pub fn tag_in(&self, pin: &Pin, workspace: &mut Workspace) -> Tag {
        let mut out = [0u8; 32];
        self.argon()
            .hash_password_into_with_memory(
                pin.expose().as_bytes(),
                &self.salt,
                &mut out,
                &mut workspace.0,
            )
            .expect("output length and salt length are fixed and valid");
        workspace.0.iter_mut().for_each(Zeroize::zeroize);
        Tag(out)
    }

    /// One-off tag with a temporary workspace (tests, tools).
    pub fn tag(&self, pin: &Pin) -> Tag {
        self.tag_in(pin, &mut self.workspace())
    }

    pub fn params(&self) -> HashParams {
        self.params
    }

    /// A 32-byte key for `purpose`, derived from the pepper (so, like the tags, worthless
    /// without it). Used to key digests that cover PIN-bearing data, such as a directory
    /// file's sync cursor.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        use blake2::Digest;
        let mut h = blake2::Blake2b512::new();
        h.update(b"pinwarden derived key v1\0");
        h.update(self.pepper.secret());
        h.update(purpose.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(&h.finalize()[..32]);
        key
    }
}

/// argon2 work memory (about `memory_kib`), wiped after every use and on drop.
pub struct Workspace(Vec<Block>);

impl Drop for Workspace {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(Zeroize::zeroize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher(pepper: [u8; 32]) -> Hasher {
        Hasher::new(Pepper::from_bytes(pepper), [9; 16], HashParams::TEST).unwrap()
    }

    #[test]
    fn tag_is_deterministic_and_keyed() {
        let a = hasher([1; 32]);
        let b = hasher([2; 32]);
        let pin = Pin::new("048213");
        assert_eq!(a.tag(&pin), a.tag(&Pin::new("048213")));
        assert_ne!(
            a.tag(&pin),
            a.tag(&Pin::new("48213")),
            "leading zero is significant"
        );
        assert_ne!(
            a.tag(&pin),
            b.tag(&pin),
            "a different pepper gives a different tag"
        );
    }

    #[test]
    fn a_reused_workspace_gives_the_same_tags() {
        let h = hasher([1; 32]);
        let mut ws = h.workspace();
        let first = h.tag_in(&Pin::new("482913"), &mut ws);
        let second = h.tag_in(&Pin::new("482913"), &mut ws);
        assert_eq!(first, second);
        assert_eq!(first, h.tag(&Pin::new("482913")));
    }

    #[test]
    fn params_validation() {
        assert!(HashParams::default().validate().is_ok());
        assert!(HashParams {
            memory_kib: 1,
            iterations: 1,
            parallelism: 1
        }
        .validate()
        .is_err());
        assert!(HashParams {
            memory_kib: 64,
            iterations: 0,
            parallelism: 1
        }
        .validate()
        .is_err());
    }
}
