//! Self-service links in the sled store (a child of `sled.rs`; only the sled files name
//! sled): `web_links` (keyed hash of the token → JSON `WebLink`) and `web_link_users`
//! (purpose NUL user → key of the one live link of that purpose). Replacing a link and queueing its mail is one
//! transaction. Must not decide whether a link is good (`lifecycle::links` does).

use super::{abort, decode, encode, mail, tx_error, unavailable, SledStore};
use crate::domain::{QueuedMail, WebLink};
use crate::store::Result;
use sled::Transactional;

pub(super) fn put(store: &SledStore, link: &WebLink, queued: &[QueuedMail]) -> Result<()> {
    let value = encode(link);
    (&store.links, &store.link_users, &store.mail)
        .transaction(|(links, users, mail)| {
            if let Some(old) = users.insert(link.owner_key().as_bytes(), &link.key[..])? {
                if old.as_ref() != link.key {
                    links.remove(old)?;
                }
            }
            links.insert(&link.key[..], value.as_slice())?;
            mail::queue_tx(mail, queued)?;
            Ok(())
        })
        .map_err(tx_error)
}

pub(super) fn get(store: &SledStore, key: &[u8; 32]) -> Result<Option<WebLink>> {
    match store.links.get(key).map_err(unavailable)? {
        Some(v) => decode("web link", &v).map(Some),
        None => Ok(None),
    }
}

pub(super) fn swap(store: &SledStore, old: &WebLink, new: &WebLink) -> Result<bool> {
    if old.key != new.key {
        return Ok(false);
    }
    let value = encode(new);
    store
        .links
        .transaction(|links| {
            let Some(bytes) = links.get(old.key)? else {
                return Ok(false);
            };
            let current: WebLink = match decode("web link", &bytes) {
                Ok(l) => l,
                Err(e) => return abort(e),
            };
            if current != *old {
                return Ok(false);
            }
            links.insert(&old.key[..], value.as_slice())?;
            Ok(true)
        })
        .map_err(tx_error)
}

/// Drops the links `WebLink::prunable` at `now`, each in its own transaction with its owner
/// entry (when it still points to it), re-read inside so a link rewritten meanwhile stays.
pub(super) fn prune(store: &SledStore, now: crate::domain::Timestamp) -> Result<u64> {
    let mut dead = Vec::new();
    for entry in store.links.iter() {
        let (key, bytes) = entry.map_err(unavailable)?;
        let link: WebLink = decode("web link", &bytes)?;
        if link.prunable(now) {
            dead.push(key);
        }
    }
    let mut pruned = 0;
    for key in dead {
        let gone = (&store.links, &store.link_users)
            .transaction(|(links, users)| {
                let Some(bytes) = links.get(&key)? else {
                    return Ok(false);
                };
                let link: WebLink = match decode("web link", &bytes) {
                    Ok(l) => l,
                    Err(e) => return abort(e),
                };
                if !link.prunable(now) {
                    return Ok(false);
                }
                links.remove(&key)?;
                let owner = link.owner_key();
                if users.get(owner.as_bytes())?.as_deref() == Some(&key[..]) {
                    users.remove(owner.as_bytes())?;
                }
                Ok(true)
            })
            .map_err(tx_error)?;
        pruned += u64::from(gone);
    }
    Ok(pruned)
}
