//! A fetched batch as the engine consumes it: what must be known before the first user is
//! planned (every changed key, the deletions, the cursor) up front, the users themselves in
//! chunks. A source that fetches everything at once (LDAP, SCIM) is wrapped as it is
//! (`Listing::whole`); the CSV source reads its file again for the chunks, so a sync holds
//! one chunk of users, PINs and records at a time whatever the directory's size.

use super::source::{Batch, Deletions, SourceError, UpstreamUser};
use crate::domain::Digester;
use std::collections::{HashMap, HashSet};

/// A set of a source's keys held as 128-bit keyed digests (`Digester`): a listing holds
/// one per entry of the directory; at 100 000 entries ~2 MiB instead of ~7 for the keys.
#[derive(Clone, Default)]
pub struct KeySet {
    digester: Digester,
    set: HashSet<u128>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySet({} keys)", self.set.len())
    }
}

impl KeySet {
    /// `key`'s digest in this set (the same key, the same digest).
    pub fn digest(&self, key: &str) -> u128 {
        self.digester.of(key)
    }

    /// Adds `key`; false when it was there.
    pub fn insert(&mut self, key: &str) -> bool {
        let d = self.digest(key);
        self.set.insert(d)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.set.contains(&self.digest(key))
    }

    /// Whether a key with this set's `digest` is in it.
    pub fn holds(&self, digest: u128) -> bool {
        self.set.contains(&digest)
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

impl<S: AsRef<str>> FromIterator<S> for KeySet {
    fn from_iter<I: IntoIterator<Item = S>>(keys: I) -> Self {
        let mut set = KeySet::default();
        for key in keys {
            set.insert(key.as_ref());
        }
        set
    }
}

/// The deletions of a listing: a batch's `Deletions`, with the present keys of a complete
/// listing as a `KeySet`.
#[derive(Debug)]
pub enum Gone {
    /// Incremental: exactly these keys were deleted upstream.
    Keys(Vec<String>),
    /// Complete: every user of the source whose key is neither listed nor here is deleted.
    AllExcept { present: KeySet },
}

impl From<Deletions> for Gone {
    fn from(d: Deletions) -> Gone {
        match d {
            Deletions::Keys(keys) => Gone::Keys(keys),
            Deletions::AllExcept { present } => Gone::AllExcept {
                present: present.into_iter().collect(),
            },
        }
    }
}

/// The users of a listing, a chunk at a time. Called on a blocking thread (it may read a
/// file); a chunk shorter than asked is not the end, an empty one is.
pub trait Chunks: Send {
    fn next_chunk(&mut self, max: usize) -> Result<Vec<UpstreamUser>, SourceError>;
}

/// One fetch's result, applied by the engine as one atomic batch together with `cursor`.
pub struct Listing {
    /// The key of every entry `chunks` yields (one entry per key, one per id).
    pub keys: KeySet,
    pub deletions: Gone,
    pub cursor: Option<Vec<u8>>,
    /// Entries left out before planning (a bad or doubled id), with the reason.
    pub skipped: Vec<String>,
    /// How many entries carry a PIN (the progress total; a PIN whose entry is unchanged
    /// is not hashed).
    pub pins: usize,
    pub chunks: Box<dyn Chunks>,
}

impl Listing {
    /// A batch fetched whole: deduplicated here, handed out in chunks.
    pub fn whole(batch: Batch) -> Listing {
        let mut skipped = Vec::new();
        let changed = dedupe(batch.changed, &mut skipped);
        Listing {
            keys: changed.iter().map(|u| u.key.as_str()).collect(),
            pins: changed.iter().filter(|u| u.pin.is_some()).count(),
            deletions: batch.deletions.into(),
            cursor: batch.cursor,
            skipped,
            chunks: Box::new(VecChunks(changed.into_iter())),
        }
    }

    /// Nothing to apply: no entry, no deletion (a cursor alone is saved without a batch).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
            && self.skipped.is_empty()
            && matches!(&self.deletions, Gone::Keys(k) if k.is_empty())
    }
}

struct VecChunks(std::vec::IntoIter<UpstreamUser>);

impl Chunks for VecChunks {
    fn next_chunk(&mut self, max: usize) -> Result<Vec<UpstreamUser>, SourceError> {
        Ok(self.0.by_ref().take(max.max(1)).collect())
    }
}

/// One entry per key (the last wins) and per id; invalid ids are skipped.
pub fn dedupe(changed: Vec<UpstreamUser>, skipped: &mut Vec<String>) -> Vec<UpstreamUser> {
    let mut last: HashMap<String, usize> = HashMap::new();
    for (i, u) in changed.iter().enumerate() {
        last.insert(u.key.clone(), i);
    }
    let mut ids = HashSet::new();
    let mut out = Vec::with_capacity(last.len());
    for (i, u) in changed.into_iter().enumerate() {
        if last.get(&u.key) != Some(&i) {
            continue;
        }
        if let Err(why) = crate::domain::check_user_id(&u.id) {
            skipped.push(format!("entry `{}`: the id {why}", printable(&u.key)));
        } else if !ids.insert(u.id.clone()) {
            skipped.push(format!(
                "id `{}` is held by two entries of the source",
                u.id
            ));
        } else {
            out.push(u);
        }
    }
    out
}

/// `text` without control characters, at most 80 of them.
pub fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(80).collect()
}
