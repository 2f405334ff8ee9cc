//! Forgotten-PIN requests in the sled store (a child of `sled.rs`; only the sled files name
//! sled): the queue (`forgot`: big-endian seq → JSON `ForgotRow`) and the recovery cap times
//! (`recovery`: key → JSON list of unix ms), so the caps hold across restarts. Settling a row
//! is one transaction with the user trees and the mail outbox (the user re-read in it). Must not decide policy.

use super::{abort, decode, encode, mail, put_user_tx, tx_error, unavailable, SledStore, TxTrees};
use crate::domain::Timestamp;
use crate::store::{forgot_reset_user, ForgotRow, ForgotSettle, Result, Settled};
use sled::Transactional;

pub(super) fn push(store: &SledStore, row: &ForgotRow) -> Result<u64> {
    let seq = store.db.generate_id().map_err(unavailable)? + 1;
    let row = ForgotRow { seq, ..row.clone() };
    store
        .forgot
        .insert(seq.to_be_bytes(), encode(&row))
        .map_err(unavailable)?;
    Ok(seq)
}

pub(super) fn peek(store: &SledStore, limit: usize) -> Result<Vec<ForgotRow>> {
    store
        .forgot
        .iter()
        .values()
        .take(limit)
        .map(|v| {
            v.map_err(unavailable)
                .and_then(|v| decode("forgot row", &v))
        })
        .collect()
}

pub(super) fn times(store: &SledStore, key: &str) -> Result<Vec<Timestamp>> {
    match store.recovery.get(key.as_bytes()).map_err(unavailable)? {
        Some(v) => decode("recovery times", &v),
        None => Ok(Vec::new()),
    }
}

pub(super) fn settle(store: &SledStore, s: &ForgotSettle<'_>) -> Result<Settled> {
    let trees = (
        &store.users,
        &store.tags,
        &store.cards,
        &store.meta,
        &store.shared,
        &store.retired,
        &store.mail,
        &store.forgot,
        &store.recovery,
    );
    trees
        .transaction(
            |(users, tags, cards, meta, shared, retired, outbox, forgot, recovery)| {
                if forgot.remove(&s.seq.to_be_bytes())?.is_none() {
                    return Ok(Settled::Gone);
                }
                let reset = match &s.reset {
                    None => None,
                    Some(r) => {
                        let current = match users.get(r.id.as_bytes())? {
                            Some(v) => match decode("user", &v) {
                                Ok(u) => Some(u),
                                Err(e) => return abort(e),
                            },
                            None => None,
                        };
                        forgot_reset_user(current, r).map(|user| (user, r))
                    }
                };
                let person = reset.as_ref().map(|(_, r)| r.person_key.to_string());
                for key in s.counted.iter().chain(person.as_ref()) {
                    let mut times: Vec<Timestamp> = match recovery.get(key.as_bytes())? {
                        Some(v) => match decode("recovery times", &v) {
                            Ok(t) => t,
                            Err(e) => return abort(e),
                        },
                        None => Vec::new(),
                    };
                    times.retain(|t| *t >= s.keep_after);
                    times.push(s.at);
                    recovery.insert(key.as_bytes(), encode(&times))?;
                }
                let Some((user, r)) = reset else {
                    return Ok(Settled::Dropped);
                };
                let t = TxTrees {
                    users,
                    tags,
                    cards,
                    meta,
                    shared,
                    retired,
                    at: s.at,
                };
                put_user_tx(&t, &user, false)?;
                mail::queue_tx(outbox, std::slice::from_ref(r.mail))?;
                Ok(Settled::Reset)
            },
        )
        .map_err(tx_error)
}
