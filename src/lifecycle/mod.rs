//! The PIN lifecycle: policy, generation, CSV import parsing and the admin service that
//! creates and changes local users and PINs. Writes users through the `Store` trait only.

pub mod actor;
pub mod generate;
pub mod import;
pub mod links;
pub mod mail;
pub mod policy;
pub mod selfservice;
pub mod settings;
pub mod sweeper;
pub mod users;
