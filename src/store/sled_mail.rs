//! The PIN lifecycle in the sled store (a child of `sled.rs`; only the sled files name
//! sled): the mail outbox (`mail`: `lane seq` → JSON `QueuedMail`, so a lane is a prefix
//! scan, oldest first), expiry reminders queued exactly once (`reminders`:
//! `user NUL set_at threshold` → empty), the sweeper of expired PINs, a grant's PIN use
//! (limited-use and pending PINs) and the retired tags
//! (`retired_tags`: tag → unix ms, written by `sled_sync::untag`). Must not decide policy:
//! which mail to queue, when a reminder is due and how long tags cool off are the caller's.

use super::{abort, decode, encode, put_user_tx, tx_error, unavailable, SledStore, TxResult};
use crate::domain::{Lane, LaneDepth, PinRecord, QueuedMail, Tag, Timestamp, User};
use crate::store::{pin_is_current, pin_use, sweep_user, PinUse, Result};
use serde::Deserialize;
use sled::transaction::TransactionalTree;
use sled::Transactional;

/// The key of a queued message: the lane's byte, then the big-endian seq.
pub(super) fn key(lane: Lane, seq: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = lane.index();
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// Queues `mail` inside a transaction, each message with a fresh seq (sled's id generator,
/// plus one so that 0 stays "not queued": increasing across restarts, with gaps).
pub(super) fn queue_tx(tree: &TransactionalTree, mail: &[QueuedMail]) -> TxResult<()> {
    for queued in mail {
        let seq = tree.generate_id()? + 1;
        let row = QueuedMail {
            seq,
            ..queued.clone()
        };
        tree.insert(&key(row.lane, seq)[..], encode(&row))?;
    }
    Ok(())
}

fn rows(iter: sled::Iter) -> impl Iterator<Item = Result<QueuedMail>> {
    iter.values().map(|v| {
        v.map_err(unavailable)
            .and_then(|v| decode("queued mail", &v))
    })
}

/// Up to `limit` rows of `lane` with a seq above `after` (a range scan from `after + 1`).
pub(super) fn peek(
    store: &SledStore,
    lane: Lane,
    after: u64,
    limit: usize,
) -> Result<Vec<QueuedMail>> {
    let Some(from) = after.checked_add(1) else {
        return Ok(Vec::new());
    };
    rows(store.mail.range(key(lane, from)..=key(lane, u64::MAX)))
        .take(limit)
        .collect()
}

pub(super) fn all(store: &SledStore) -> Result<Vec<QueuedMail>> {
    rows(store.mail.iter()).collect()
}

/// Walks each lane (the outbox is small: sent mail leaves it).
pub(super) fn depth(store: &SledStore) -> Result<Vec<(Lane, LaneDepth)>> {
    Lane::ALL
        .into_iter()
        .map(|lane| {
            let mut d = LaneDepth::default();
            for row in rows(store.mail.scan_prefix([lane.index()])) {
                let row = row?;
                d.depth += 1;
                d.oldest = Some(d.oldest.map_or(row.created_at, |o| o.min(row.created_at)));
            }
            Ok((lane, d))
        })
        .collect()
}

/// Rewrites a message only while it is still queued (a sender racing a removal).
pub(super) fn update(store: &SledStore, queued: &QueuedMail) -> Result<bool> {
    let k = key(queued.lane, queued.seq);
    store
        .mail
        .transaction(|mail| -> TxResult<bool> {
            if mail.get(k)?.is_none() {
                return Ok(false);
            }
            mail.insert(&k[..], encode(queued))?;
            Ok(true)
        })
        .map_err(tx_error)
}

/// `user NUL set_at(ms, big-endian) threshold(s, big-endian)`: user ids have no NUL, so the
/// last 16 bytes are the PIN version and the threshold.
fn reminder_key(user: &str, set_at: Timestamp, threshold_secs: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(user.len() + 17);
    k.extend_from_slice(user.as_bytes());
    k.push(0);
    k.extend_from_slice(&set_at.millis().to_be_bytes());
    k.extend_from_slice(&threshold_secs.to_be_bytes());
    k
}

/// The user and PIN version a reminder key names.
fn parse_reminder_key(k: &[u8]) -> Option<(&str, Timestamp)> {
    let split = k.len().checked_sub(17)?;
    let (user, rest) = k.split_at(split);
    let set_at = <[u8; 8]>::try_from(&rest[1..9]).ok()?;
    let user = std::str::from_utf8(user).ok()?;
    Some((user, Timestamp::from_millis(i64::from_be_bytes(set_at))))
}

/// One transaction over the user, the reminder records and the outbox: the check, the
/// record and the mail land together or not at all, so a restart never sends it twice.
pub(super) fn queue_reminder(
    store: &SledStore,
    user: &str,
    (set_at, threshold_secs): (Timestamp, u64),
    now: Timestamp,
    queued: &QueuedMail,
) -> Result<bool> {
    let k = reminder_key(user, set_at, threshold_secs);
    (&store.users, &store.reminders, &store.mail)
        .transaction(|(users, reminders, mail)| {
            let Some(bytes) = users.get(user.as_bytes())? else {
                return Ok(false);
            };
            let current: User = match decode("user", &bytes) {
                Ok(u) => u,
                Err(e) => return abort(e),
            };
            if !pin_is_current(&current, set_at, now) || reminders.get(&k)?.is_some() {
                return Ok(false);
            }
            reminders.insert(k.as_slice(), &[][..])?;
            queue_tx(mail, std::slice::from_ref(queued))?;
            Ok(true)
        })
        .map_err(tx_error)
}

/// Just the PINs of a user record: the sweeper's scan decodes no more than it needs.
#[derive(Deserialize)]
struct PinOnly {
    #[serde(default)]
    pin: Option<PinRecord>,
    #[serde(default)]
    pending_pin: Option<PinRecord>,
}

/// Scans every user (the cost grows with the store: one read and a small decode a user;
/// nothing is collected but the swept users) and clears each expired PIN, with its duress
/// PIN, and each expired pending PIN, in a transaction of its own that checks the expiry
/// again.
pub(super) fn sweep_expired(store: &SledStore, now: Timestamp) -> Result<Vec<User>> {
    let mut swept = Vec::new();
    for kv in store.users.iter() {
        let (id, bytes) = kv.map_err(unavailable)?;
        let pins = decode::<PinOnly>("user", &bytes)?;
        let due = [pins.pin, pins.pending_pin]
            .iter()
            .flatten()
            .any(|p| p.expires_at.is_some_and(|at| at <= now));
        if !due {
            continue;
        }
        let before = store.user_tx(now, |tx| {
            let Some(bytes) = tx.t.users.get(&id)? else {
                return Ok(None);
            };
            let old: User = match decode("user", &bytes) {
                Ok(u) => u,
                Err(e) => return abort(e),
            };
            let Some((cleared, pin_went)) = sweep_user(&old, now) else {
                return Ok(None);
            };
            put_user_tx(&tx.t, &cleared, false)?;
            Ok(pin_went.then_some(old))
        })?;
        swept.extend(before);
    }
    Ok(swept)
}

/// One transaction over the user trees: the check against the current record, the count
/// and a pending PIN's promotion (its predecessor's tag retiring at `now`) land together;
/// sled retries it on a conflict, so two grants never take the same last use.
pub(super) fn use_pin(store: &SledStore, id: &str, tag: &Tag, now: Timestamp) -> Result<PinUse> {
    store.user_tx(now, |tx| {
        let Some(bytes) = tx.t.users.get(id.as_bytes())? else {
            return Ok(PinUse::Gone);
        };
        let user: User = match decode("user", &bytes) {
            Ok(u) => u,
            Err(e) => return abort(e),
        };
        let (used, next) = pin_use(&user, tag);
        if let Some(next) = next {
            put_user_tx(&tx.t, &next, false)?;
        }
        Ok(used)
    })
}

fn millis(what: &str, v: &[u8]) -> Result<Timestamp> {
    <[u8; 8]>::try_from(v)
        .map(|b| Timestamp::from_millis(i64::from_be_bytes(b)))
        .map_err(|_| unavailable(format!("corrupt {what} record")))
}

pub(super) fn retired_at(store: &SledStore, tag: &Tag) -> Result<Option<Timestamp>> {
    match store.retired.get(tag.as_bytes()).map_err(unavailable)? {
        Some(v) => millis("retired tag", &v).map(Some),
        None => Ok(None),
    }
}

/// Both trees are walked whole. A record is removed only if unchanged since it was read
/// (a tag retired again meanwhile keeps its newer time).
pub(super) fn prune(store: &SledStore, before: Timestamp) -> Result<u64> {
    let mut removed = 0;
    for kv in store.retired.iter() {
        let (k, v) = kv.map_err(unavailable)?;
        if millis("retired tag", &v)? >= before {
            continue;
        }
        let swapped = store
            .retired
            .compare_and_swap(&k, Some(&v), None::<&[u8]>)
            .map_err(unavailable)?;
        removed += u64::from(swapped.is_ok());
    }
    for k in store.reminders.iter().keys() {
        let k = k.map_err(unavailable)?;
        let current = match parse_reminder_key(&k) {
            Some((user, set_at)) => store
                .users
                .get(user.as_bytes())
                .map_err(unavailable)?
                .map(|bytes| decode::<PinOnly>("user", &bytes))
                .transpose()?
                .and_then(|u| u.pin)
                .is_some_and(|p| p.set_at == set_at),
            None => false,
        };
        if !current && store.reminders.remove(&k).map_err(unavailable)?.is_some() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes every reminder record of `user` (the keys start with the id and a NUL).
pub(super) fn forget_reminders(store: &SledStore, user: &str) -> Result<u64> {
    let mut prefix = user.as_bytes().to_vec();
    prefix.push(0);
    let mut removed = 0;
    for k in store.reminders.scan_prefix(&prefix).keys() {
        let k = k.map_err(unavailable)?;
        removed += u64::from(store.reminders.remove(&k).map_err(unavailable)?.is_some());
    }
    Ok(removed)
}
