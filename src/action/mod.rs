//! Actions taken after a decision: unlocking doors (`door`) and releasing print jobs
//! (`print`). The daemon builds them from config and hands the core an `Actions` to call.

pub mod door;
pub mod print;
