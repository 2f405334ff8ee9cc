//! Durable before OK: which control requests may write the store, and the flush that puts
//! their changes on disk before the answer leaves (sled otherwise writes on a ~500 ms
//! timer, and a crash right after an OK would silently undo it).

use crate::frontend::control::proto::Request;
use crate::lifecycle::users::AdminError;
use crate::store::Store;
use std::sync::Arc;

/// Whether `request` may change the store: every request that is not read-only. The one
/// exhaustive list is `control::access::read_only` (no wildcard arm: a new request does not
/// compile until it is sorted there), so no write can forget its flush and the access check
/// and the flush can never disagree about what writes.
pub(super) fn writes(request: &Request) -> bool {
    !crate::frontend::control::access::read_only(request)
}

/// Flushes the store after a writing request, whatever its result (a refusal may follow
/// a write, e.g. a sync source failing after another applied). An answer that was OK
/// becomes an error when the flush fails: the operator must not believe a change that a
/// crash could still undo.
pub(super) async fn durable<T>(
    store: &Arc<dyn Store>,
    result: Result<T, AdminError>,
) -> Result<T, AdminError> {
    let store = Arc::clone(store);
    let flushed = match tokio::task::spawn_blocking(move || store.flush()).await {
        Ok(flushed) => flushed.map_err(|e| e.to_string()),
        Err(e) => Err(format!("the flush task failed: {e}")),
    };
    match (result, flushed) {
        (Ok(_), Err(e)) => {
            tracing::error!(error = %e, "an admin change could not be flushed to disk");
            Err(AdminError::NotDurable(format!(
                "the change was made but could not be written to disk ({e}), so a crash \
                 may still undo it: check the disk (free space, I/O errors in the kernel \
                 log), then check the change (`pinwarden user show`) and repeat the command"
            )))
        }
        (result, _) => result,
    }
}
