//! The audit log and the event outbox of the sled store (a child of `sled.rs`). Audit keys
//! are (unix ms, sequence), so the log iterates in time order; the outbox is keyed by the
//! same sequence. Both keep their length in memory (sled's `len()` walks the tree).

use super::{decode, encode, unavailable, SledStore, OUTBOX_DROPPED};
use crate::domain::{AuditEvent, AuditQuery, Timestamp, AUDIT_SCAN_LIMIT};
use crate::store::{OutboxBatch, Result};
use std::sync::atomic::Ordering;

pub(super) fn append(store: &SledStore, event: &AuditEvent) -> Result<()> {
    let seq = store.db.generate_id().map_err(unavailable)?;
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&(event.at.millis().max(0) as u64).to_be_bytes());
    key[8..].copy_from_slice(&seq.to_be_bytes());
    let value = encode(event);
    store
        .audit
        .insert(key, value.as_slice())
        .map_err(unavailable)?;
    store.audit_len.fetch_add(1, Ordering::Relaxed);
    let max = store.outbox_max.load(Ordering::Relaxed);
    if max > 0 {
        store
            .outbox
            .insert(seq.to_be_bytes(), value)
            .map_err(unavailable)?;
        store.outbox_len.fetch_add(1, Ordering::Relaxed);
        while store.outbox_len.load(Ordering::Relaxed) > max {
            match store.outbox.pop_min().map_err(unavailable)? {
                Some(_) => {
                    store.outbox_len.fetch_sub(1, Ordering::Relaxed);
                    bump_meta(store, OUTBOX_DROPPED, 1)?;
                }
                None => break,
            }
        }
    }
    Ok(())
}

pub(super) fn outbox_peek(store: &SledStore, limit: usize) -> Result<OutboxBatch> {
    let events = store
        .outbox
        .iter()
        .take(limit)
        .map(|kv| {
            let (k, v) = kv.map_err(unavailable)?;
            let seq = <[u8; 8]>::try_from(k.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| unavailable("corrupt outbox key"))?;
            Ok((seq, decode("outbox", &v)?))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(OutboxBatch {
        events,
        dropped: meta_u64(store, OUTBOX_DROPPED)?,
        pending: store.outbox_len.load(Ordering::Relaxed),
    })
}

pub(super) fn outbox_ack(store: &SledStore, upto: u64, dropped: u64) -> Result<()> {
    while let Some((key, _)) = store.outbox.first().map_err(unavailable)? {
        if key.as_ref() > upto.to_be_bytes().as_slice() {
            break;
        }
        if store.outbox.remove(&key).map_err(unavailable)?.is_some() {
            store.outbox_len.fetch_sub(1, Ordering::Relaxed);
        }
    }
    if dropped > 0 {
        bump_meta(store, OUTBOX_DROPPED, -(dropped as i64))?;
    }
    Ok(())
}

pub(super) fn tail(store: &SledStore, n: usize) -> Result<Vec<AuditEvent>> {
    let mut events = store
        .audit
        .iter()
        .rev()
        .take(n)
        .map(|kv| {
            kv.map_err(unavailable)
                .and_then(|(_, v)| decode("audit", &v))
        })
        .collect::<Result<Vec<AuditEvent>>>()?;
    events.reverse();
    Ok(events)
}

/// Walks the query's time range newest first (the keys begin with the time), decoding at
/// most `AUDIT_SCAN_LIMIT` events.
pub(super) fn query(store: &SledStore, query: &AuditQuery) -> Result<Vec<AuditEvent>> {
    let bound = |t: Option<Timestamp>| (t.map_or(0, |t| t.millis().max(0)) as u64).to_be_bytes();
    let low = bound(query.since);
    let range = match query.until {
        Some(_) => store.audit.range(low..bound(query.until)),
        None => store.audit.range(low..),
    };
    let mut events = Vec::new();
    for kv in range.rev().take(AUDIT_SCAN_LIMIT) {
        // The cap is checked before an event is taken: a cap of 0 returns none.
        if events.len() >= query.cap() {
            break;
        }
        let (_, v) = kv.map_err(unavailable)?;
        let event: AuditEvent = decode("audit", &v)?;
        if query.matches(&event) {
            events.push(event);
        }
    }
    events.reverse();
    Ok(events)
}

pub(super) fn prune(store: &SledStore, before: Timestamp, max_entries: u64) -> Result<u64> {
    let cutoff = (before.millis().max(0) as u64).to_be_bytes();
    let mut removed = 0;
    while let Some((key, _)) = store.audit.first().map_err(unavailable)? {
        let too_many = store.audit_len.load(Ordering::Relaxed) > max_entries;
        if key.as_ref()[..8] >= cutoff[..] && !too_many {
            break;
        }
        if store.audit.remove(&key).map_err(unavailable)?.is_some() {
            store.audit_len.fetch_sub(1, Ordering::Relaxed);
            removed += 1;
        }
    }
    Ok(removed)
}

fn meta_u64(store: &SledStore, key: &[u8]) -> Result<u64> {
    Ok(store
        .meta
        .get(key)
        .map_err(unavailable)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0))
}

fn bump_meta(store: &SledStore, key: &[u8], delta: i64) -> Result<()> {
    store
        .meta
        .fetch_and_update(key, |old| {
            let old = old
                .and_then(|v| <[u8; 8]>::try_from(v).ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            Some(old.saturating_add_signed(delta).to_be_bytes().to_vec())
        })
        .map_err(unavailable)?;
    Ok(())
}
