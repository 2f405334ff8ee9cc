//! What every directory source (LDAP/AD, HTTP/SCIM, CSV) hands the sync engine: a batch of
//! users as the upstream describes them, the deletions it knows of and a new cursor. Sources
//! do I/O and attribute mapping only; they never touch the store.

use super::listing::Listing;
use crate::domain::{Pin, Timestamp};
use std::future::Future;
use std::pin::Pin as StdPin;

/// One user as the upstream describes it, after attribute mapping. `Debug` never shows the PIN
/// (`Pin` redacts itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamUser {
    /// The entry's stable key at the source (LDAP entryUUID, SCIM `id`, CSV user id).
    /// Deletions name keys, not user ids.
    pub key: String,
    /// The login name pinwarden knows the user by.
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    /// `None`: the source carries no PIN for this user (a PIN set locally stays).
    pub pin: Option<Pin>,
    /// Card numbers as the source holds them; the engine normalises them.
    pub cards: Vec<String>,
    pub enabled: bool,
    pub valid_from: Option<Timestamp>,
    pub valid_until: Option<Timestamp>,
    /// The entry's own version (LDAP `entryCSN`, AD `uSNChanged`), when the source has one.
    /// An entry arriving with the version already stored keeps its PIN record: a complete
    /// refresh re-hashes only the PINs that changed.
    pub version: Option<String>,
}

/// The deletions a batch carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deletions {
    /// Incremental: exactly these keys were deleted upstream.
    Keys(Vec<String>),
    /// Complete: `changed` plus the `present` keys are every entry that exists; every other
    /// user of this source is deleted (a full listing, or syncrepl's present phase).
    AllExcept { present: Vec<String> },
}

/// One fetch's result, applied by the engine as one atomic batch together with `cursor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Users added or changed since the cursor (every user for a full fetch). Their PINs are
    /// re-hashed; users the source reports unchanged are not in here.
    pub changed: Vec<UpstreamUser>,
    pub deletions: Deletions,
    /// The cursor to save with this batch (syncrepl cookie, SCIM high-water mark, file
    /// digest). `None`: keep the previous cursor.
    pub cursor: Option<Vec<u8>>,
}

/// Why a fetch failed; each variant says what the engine does next.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Unreachable, timed out or dropped mid-transfer: retry with back-off; decisions go on
    /// from the cache.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    /// The server refused us (bad bind, 401/403, no such base): retry with back-off, and
    /// `status` says an operator must fix the configuration or the credentials.
    #[error("directory refused the request: {0}")]
    Rejected(String),
    /// The cursor is no longer valid (syncrepl refresh required, SCIM 410): the engine
    /// fetches again at once with no cursor.
    #[error("the sync cursor is no longer valid: {0}")]
    CursorExpired(String),
    /// The source sent data we cannot use (the whole batch is dropped, nothing applied).
    #[error("malformed data from the directory: {0}")]
    Malformed(String),
}

pub type ListFuture<'a> =
    StdPin<Box<dyn Future<Output = Result<Listing, SourceError>> + Send + 'a>>;

pub type FetchFuture<'a> = StdPin<Box<dyn Future<Output = Result<Batch, SourceError>> + Send + 'a>>;

/// A directory source. `fetch(None)` is a full fetch (a complete listing); `fetch(Some(c))`
/// an incremental one from the cursor a previous batch returned. A source may answer an
/// incremental fetch with a complete batch (`Deletions::AllExcept`) whenever it must
/// (a server restart, a periodic full reconcile).
pub trait Source: Send + Sync {
    fn fetch<'a>(&'a self, cursor: Option<&'a [u8]>) -> FetchFuture<'a>;

    /// The same as a listing whose users the engine takes a chunk at a time. By default the
    /// fetched batch, whole; a source that can read its users again (a file) overrides it
    /// so that a sync never holds them all.
    fn list<'a>(&'a self, cursor: Option<&'a [u8]>) -> ListFuture<'a> {
        Box::pin(async move { self.fetch(cursor).await.map(Listing::whole) })
    }
}
