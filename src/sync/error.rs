//! Why a sync run failed, and the short kind `status` and the audit name it by.

use super::plan::PlanError;
use super::source::SourceError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Source(#[from] SourceError),
    #[error("{0}")]
    Plan(#[from] PlanError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("the directory source panicked (a bug, or data it could not handle); see the log")]
    Panicked,
    #[error("hashing a PIN failed; see the log")]
    Hashing,
    #[error("stopped by shutdown before anything was applied")]
    Cancelled,
}

impl SyncError {
    /// Short machine-readable kind for status and audit.
    pub fn kind(&self) -> &'static str {
        match self {
            SyncError::Source(SourceError::Unavailable(_)) => "unavailable",
            SyncError::Source(SourceError::Rejected(_)) => "rejected",
            SyncError::Source(SourceError::CursorExpired(_)) => "cursor_expired",
            SyncError::Source(SourceError::Malformed(_)) => "malformed",
            SyncError::Plan(PlanError::TooManyDeletions { .. }) => "refused",
            SyncError::Plan(PlanError::Store(_)) | SyncError::Store(_) => "store",
            SyncError::Panicked => "panicked",
            SyncError::Hashing => "hashing",
            SyncError::Cancelled => "cancelled",
        }
    }
}
