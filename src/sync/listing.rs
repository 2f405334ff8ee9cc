//! A fetched batch as the engine consumes it: what must be known before the first user is
//! planned (every changed key, the deletions, the cursor) up front, the users themselves in
//! chunks. A source that fetches everything at once (LDAP, SCIM) is wrapped as it is
//! (`Listing::whole`); the CSV source reads its file again for the chunks, so a sync holds
//! one chunk of users, PINs and records at a time whatever the directory's size.

use super::source::{Batch, Deletions, SourceError, UpstreamUser};
use std::collections::{HashMap, HashSet};

/// The users of a listing, a chunk at a time. Called on a blocking thread (it may read a
/// file); a chunk shorter than asked is not the end, an empty one is.
pub trait Chunks: Send {
    fn next_chunk(&mut self, max: usize) -> Result<Vec<UpstreamUser>, SourceError>;
}

/// One fetch's result, applied by the engine as one atomic batch together with `cursor`.
pub struct Listing {
    /// The key of every entry `chunks` yields (one entry per key, one per id).
    pub keys: HashSet<String>,
    pub deletions: Deletions,
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
            keys: changed.iter().map(|u| u.key.clone()).collect(),
            pins: changed.iter().filter(|u| u.pin.is_some()).count(),
            deletions: batch.deletions,
            cursor: batch.cursor,
            skipped,
            chunks: Box::new(VecChunks(changed.into_iter())),
        }
    }

    /// Nothing to apply: no entry, no deletion (a cursor alone is saved without a batch).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
            && self.skipped.is_empty()
            && matches!(&self.deletions, Deletions::Keys(k) if k.is_empty())
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
