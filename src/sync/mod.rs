//! Directory sync: the only writer of upstream users. Sources fetch; the engine applies each
//! batch in one store transaction.

pub mod ldap;
pub mod source;
