//! Admin API bearer tokens: read once at start from 0600 files (`crate::secret`), kept only
//! as a keyed BLAKE2s hash under a key made at start, and looked up so that a wrong token
//! costs what a right one does: the presented token is hashed once and compared, in
//! constant time, against every configured hash without stopping at a match.

use crate::frontend::http::{ApiToken, TokenScope};
use blake2::digest::{KeyInit, Mac};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroizing;

/// Shortest token accepted: a guessable token would make the API the weakest door.
pub const MIN_TOKEN_CHARS: usize = 24;
/// Distinct characters a token needs, unless it is base64 of `MIN_TOKEN_BYTES` or more.
pub const MIN_DISTINCT_CHARS: usize = 16;
/// Bytes a base64 token must decode to when it has fewer distinct characters (hex is base64
/// too: 24 hex digits decode to 18 bytes).
pub const MIN_TOKEN_BYTES: usize = 18;

/// Whether `token` is long and varied enough: at least `MIN_TOKEN_CHARS` characters, and
/// `MIN_DISTINCT_CHARS` distinct ones or base64 of `MIN_TOKEN_BYTES` bytes or more (and
/// never fewer than 8 distinct characters: 24 × `A` decodes to 18 zero bytes).
fn strong(token: &str) -> bool {
    use base64::Engine;
    let distinct = token
        .chars()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let decoded = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ]
    .iter()
    .filter_map(|engine| engine.decode(token).ok())
    .map(|bytes| bytes.len())
    .max()
    .unwrap_or(0);
    token.chars().count() >= MIN_TOKEN_CHARS
        && (distinct >= MIN_DISTINCT_CHARS || (decoded >= MIN_TOKEN_BYTES && distinct >= 8))
}

struct Entry {
    hash: [u8; 32],
    name: String,
    scope: TokenScope,
}

/// The configured tokens, hashed.
pub struct Tokens {
    key: Zeroizing<[u8; 32]>,
    entries: Vec<Entry>,
}

/// Who a presented token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub name: String,
    pub scope: TokenScope,
}

impl Tokens {
    /// Reads every token file (refusing one others may read, naming `chmod 600`).
    pub fn load(tokens: &[ApiToken]) -> Result<Tokens, String> {
        let mut read = Vec::new();
        for t in tokens {
            let key = format!("http.token.file (token {})", t.name);
            let secret = crate::secret::read_line(&key, &t.file).map_err(|e| e.to_string())?;
            read.push((t.name.clone(), t.scope, secret));
        }
        Tokens::from_secrets(read)
    }

    /// From (name, scope, token) triples; the tokens are dropped (wiped) once hashed.
    pub fn from_secrets(
        secrets: Vec<(String, TokenScope, Zeroizing<String>)>,
    ) -> Result<Tokens, String> {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key[..]);
        let mut tokens = Tokens {
            key,
            entries: Vec::new(),
        };
        for (name, scope, secret) in secrets {
            let secret = secret.trim();
            if !strong(secret) || secret.contains(char::is_control) {
                return Err(format!(
                    "http.token (token {name}): the token file must hold one line of at least \
                     {MIN_TOKEN_CHARS} characters, {MIN_DISTINCT_CHARS} of them different (or \
                     base64 of {MIN_TOKEN_BYTES} random bytes or more): make one with \
                     `openssl rand -base64 32`"
                ));
            }
            let hash = tokens.hash(secret.as_bytes());
            if let Some(same) = tokens.entries.iter().find(|e| e.hash == hash) {
                return Err(format!(
                    "http.token: tokens {} and {name} are the same: give each its own token",
                    same.name
                ));
            }
            tokens.entries.push(Entry { hash, name, scope });
        }
        Ok(tokens)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn hash(&self, token: &[u8]) -> [u8; 32] {
        let mut mac = <blake2::Blake2sMac256 as KeyInit>::new_from_slice(&self.key[..])
            .expect("a 32-byte key is valid for BLAKE2s");
        mac.update(token);
        mac.finalize().into_bytes().into()
    }

    /// The holder of `presented`, if any. One hash and a comparison with every entry,
    /// whether it matches the first, the last or none.
    pub fn find(&self, presented: &str) -> Option<Holder> {
        let hash = self.hash(presented.trim().as_bytes());
        let mut found = subtle::Choice::from(0);
        let mut index = 0u32;
        for (i, entry) in self.entries.iter().enumerate() {
            let same = entry.hash.ct_eq(&hash);
            index.conditional_assign(&(i as u32), same);
            found |= same;
        }
        bool::from(found).then(|| {
            let entry = &self.entries[index as usize];
            Holder {
                name: entry.name.clone(),
                scope: entry.scope,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        let t = |n: &str, s, v: &str| (n.to_string(), s, Zeroizing::new(v.to_string()));
        Tokens::from_secrets(vec![
            t("portal", TokenScope::Read, "read-token-0123456789abcdef"),
            t("ops", TokenScope::Admin, "admin-token-0123456789abcdef\n"),
        ])
        .unwrap()
    }

    #[test]
    fn finds_each_token_and_no_other() {
        let tokens = tokens();
        let read = tokens.find("read-token-0123456789abcdef").unwrap();
        assert_eq!(
            (read.name.as_str(), read.scope),
            ("portal", TokenScope::Read)
        );
        let admin = tokens.find("admin-token-0123456789abcdef").unwrap();
        assert_eq!(
            (admin.name.as_str(), admin.scope),
            ("ops", TokenScope::Admin)
        );
        assert_eq!(tokens.find("admin-token-0123456789abcdeF"), None);
        assert_eq!(tokens.find(""), None);
    }

    #[test]
    fn short_and_repeated_tokens_are_refused() {
        let t = |n: &str, v: &str| (n.to_string(), TokenScope::Read, Zeroizing::new(v.into()));
        let short = Tokens::from_secrets(vec![t("a", "1234")]).err().unwrap();
        assert!(short.contains("token a") && short.contains("24"), "{short}");
        for weak in [
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "AAAAAAAAAAAAAAAAAAAAAAAA",
            "abababababababababababababab",
        ] {
            let e = Tokens::from_secrets(vec![t("w", weak)]).err().unwrap();
            assert!(e.contains("openssl rand -base64 32"), "{e}");
        }
        // What `openssl rand -base64 32` and `-hex 32` make is accepted.
        let good = [
            "q3Xb0vR8k2Lw9ZtN5yHc1MfPjD7sUoEa4GiKx6VeBnQ=",
            "0011223344556677889900112233445566778899",
            "9f8e7d6c5b4a3928170600aa99bb",
        ];
        for ok in good {
            assert!(Tokens::from_secrets(vec![t("g", ok)]).is_ok(), "{ok}");
        }
        let same = "same-token-0123456789abcdef";
        let twice = Tokens::from_secrets(vec![t("a", same), t("b", same)])
            .err()
            .unwrap();
        assert!(twice.contains("a and b"), "{twice}");
    }
}
