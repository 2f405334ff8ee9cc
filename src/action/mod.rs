//! Actions taken after a decision: unlocking doors (`door`) and, later, releasing print
//! jobs. The daemon builds them from config and hands the core an `Actions` to call.

pub mod door;
