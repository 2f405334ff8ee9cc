//! pinwarden: a PIN authentication daemon for printers and doors on edge boxes.
//! See ARCHITECTURE.md for how the modules fit together.

pub mod action;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod core;
pub mod crypto;
pub mod daemon;
pub mod domain;
pub mod duration;
pub mod frontend;
#[doc(hidden)]
pub mod fuzzing;
pub mod heap;
pub mod lifecycle;
pub mod live;
pub mod notify;
pub mod secret;
pub mod serial;
pub mod store;
pub mod sync;
pub mod worker;
