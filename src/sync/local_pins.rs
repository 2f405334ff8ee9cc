//! A PIN set here on a directory's user is temporary: the next run that carries a PIN for
//! that user replaces it, even when the directory's PIN did not change. An incremental run
//! does not deliver unchanged entries, so such a run is made a complete one. Reads the store
//! only; writes nothing.

use crate::domain::{PinSource, Timestamp};
use crate::store::{each_upstream_key, Store, StoreError};

/// Whether `source` owns a user whose PIN was set here after the source's last complete
/// listing (`last_full`, `None` when it never had one). Once a complete run has applied after
/// it, the PIN no longer forces one: a user the directory carries no PIN for keeps it, and
/// does not make every later run a complete one.
pub fn set_since_full(
    store: &dyn Store,
    source: &str,
    last_full: Option<Timestamp>,
) -> Result<bool, StoreError> {
    // Walked a page of keys at a time; `Found` stops the walk at the first such user.
    enum Stop {
        Found,
        Store(StoreError),
    }
    impl From<StoreError> for Stop {
        fn from(e: StoreError) -> Stop {
            Stop::Store(e)
        }
    }
    let walked = each_upstream_key(store, source, |_, id| {
        let Some(user) = store.user(&id)? else {
            return Ok(());
        };
        let local_since = user.pin.as_ref().is_some_and(|pin| {
            pin.source != PinSource::Upstream && last_full.is_none_or(|full| pin.set_at > full)
        });
        if local_since {
            return Err(Stop::Found);
        }
        Ok(())
    });
    match walked {
        Ok(()) => Ok(false),
        Err(Stop::Found) => Ok(true),
        Err(Stop::Store(e)) => Err(e),
    }
}
