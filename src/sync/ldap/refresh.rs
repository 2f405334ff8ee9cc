//! The RFC 4533 refreshOnly state machine, sans-IO: fed the messages of one sync search
//! (entries with their Sync State, Sync Info intermediates, the Sync Done), it produces the
//! batch. Both refresh shapes end here: a delete phase (`refreshDeletes` TRUE, deletions
//! listed) becomes `Deletions::Keys`; a present phase (survivors listed, the rest gone)
//! becomes `Deletions::AllExcept`. A refresh without a cookie is a complete listing.

use crate::sync::source::{Deletions, UpstreamUser};

/// What a Sync State control said about one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Present,
    /// Added or changed: OpenLDAP reports modifications as `add` in refreshOnly.
    Add,
    Modify,
    Delete,
}

/// A Sync Info intermediate message, reduced to what a refreshOnly client uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Info {
    NewCookie(Vec<u8>),
    /// refreshDelete / refreshPresent markers: only their cookie matters here.
    Phase {
        cookie: Option<Vec<u8>>,
    },
    /// syncIdSet: UUIDs (already in text form) that were deleted (`refresh_deletes`) or
    /// that are present.
    IdSet {
        cookie: Option<Vec<u8>>,
        refresh_deletes: bool,
        keys: Vec<String>,
    },
}

/// The result of one refresh, before the cursor is wrapped.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub changed: Vec<UpstreamUser>,
    pub deletions: Deletions,
    /// The last cookie the server sent; `None`: it sent none (keep the old one).
    pub cookie: Option<Vec<u8>>,
    /// Entries that could not be mapped; kept as present so a complete refresh does not
    /// delete them.
    pub skipped: usize,
}

/// Accumulates one refresh.
#[derive(Debug)]
pub struct Refresh {
    complete: bool,
    changed: Vec<UpstreamUser>,
    present: Vec<String>,
    deleted: Vec<String>,
    cookie: Option<Vec<u8>>,
    skipped: usize,
}

impl Refresh {
    /// `complete`: the search carried no cookie, so every entry will be sent.
    pub fn new(complete: bool) -> Self {
        Refresh {
            complete,
            changed: Vec::new(),
            present: Vec::new(),
            deleted: Vec::new(),
            cookie: None,
            skipped: 0,
        }
    }

    /// An entry; `user` is `None` for Present/Delete states, and for an Add/Modify entry
    /// that could not be mapped (kept as present, counted as skipped).
    pub fn entry(&mut self, state: State, key: String, user: Option<UpstreamUser>) {
        match (state, user) {
            (State::Add | State::Modify, Some(user)) => self.changed.push(user),
            (State::Add | State::Modify, None) => {
                self.skipped += 1;
                self.present.push(key);
            }
            (State::Present, _) => self.present.push(key),
            (State::Delete, _) => self.deleted.push(key),
        }
    }

    pub fn info(&mut self, info: Info) {
        match info {
            Info::NewCookie(c) => self.cookie = Some(c),
            Info::Phase { cookie } => self.take_cookie(cookie),
            Info::IdSet {
                cookie,
                refresh_deletes,
                keys,
            } => {
                self.take_cookie(cookie);
                if refresh_deletes {
                    self.deleted.extend(keys);
                } else {
                    self.present.extend(keys);
                }
            }
        }
    }

    fn take_cookie(&mut self, cookie: Option<Vec<u8>>) {
        if cookie.is_some() {
            self.cookie = cookie;
        }
    }

    /// The Sync Done control ends the refresh.
    pub fn done(mut self, cookie: Option<Vec<u8>>, refresh_deletes: bool) -> Outcome {
        self.take_cookie(cookie);
        let deletions = if self.complete || !refresh_deletes {
            let mut present = self.present;
            present.sort();
            present.dedup();
            Deletions::AllExcept { present }
        } else {
            let mut keys = self.deleted;
            keys.sort();
            keys.dedup();
            Deletions::Keys(keys)
        };
        Outcome {
            changed: self.changed,
            deletions,
            cookie: self.cookie,
            skipped: self.skipped,
        }
    }
}
