//! Sealing of queued mail: a body that carries a PIN is stored only encrypted
//! (XChaCha20-Poly1305, a random 24-byte nonce per message). The caller binds what must not
//! change as associated data — the message id, the recipient, the purpose — so a sealed body
//! can be neither moved to another message nor redirected to another address by someone who
//! can write the store. The key is derived from the pepper (`Hasher::derive_key`), so a copy
//! of the store alone opens nothing. Format: version byte, nonce, ciphertext and tag.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const NONCE: usize = 24;
const TAG: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("a sealed mail body is damaged or belongs to another message or key")]
    Damaged,
}

pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        Sealer {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// `version || nonce || ciphertext+tag` of `plain`, bound to `bound` (an unambiguous
    /// encoding of message id, recipient and purpose).
    pub fn seal(&self, bound: &[u8], plain: &[u8]) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: bound,
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(1 + NONCE + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// The plain body; the buffer is wiped when dropped.
    pub fn open(&self, bound: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let Some((&VERSION, rest)) = sealed.split_first() else {
            return Err(SealError::Damaged);
        };
        if rest.len() < NONCE + TAG {
            return Err(SealError::Damaged);
        }
        let (nonce, body) = rest.split_at(NONCE);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: bound,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Damaged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bodies_hide_the_pin_and_open_only_for_their_message_and_key() {
        let sealer = Sealer::new(&[7; 32]);
        let body = b"Your new PIN is 482913, valid until 2026-12-03 08:00";
        let sealed = sealer.seal(b"msg-1", body);
        assert!(
            !sealed.windows(6).any(|w| w == b"482913"),
            "no PIN in clear"
        );
        assert_eq!(sealer.open(b"msg-1", &sealed).unwrap().as_slice(), body);
        assert_ne!(
            sealer.seal(b"msg-1", body),
            sealed,
            "a fresh nonce each time"
        );
        assert_eq!(sealer.open(b"msg-2", &sealed), Err(SealError::Damaged));
        assert_eq!(
            Sealer::new(&[8; 32]).open(b"msg-1", &sealed),
            Err(SealError::Damaged)
        );
        let mut flipped = sealed.clone();
        flipped[30] ^= 1;
        assert_eq!(sealer.open(b"msg-1", &flipped), Err(SealError::Damaged));
        let mut flipped = sealed.clone();
        flipped[0] = 2;
        assert_eq!(sealer.open(b"msg-1", &flipped), Err(SealError::Damaged));
        assert_eq!(
            sealer.open(b"msg-1", &sealed[..10]),
            Err(SealError::Damaged)
        );
    }
}
