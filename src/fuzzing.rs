//! Entry points for the fuzz targets (`fuzz/`) and their corpus replay test: thin wrappers
//! over crate-private pure decoders, so those stay private. Owns no logic; not an API.

use crate::action::print::cups;
pub use crate::sync::ldap::mapping::{
    enabled, first_rdn_value, groups_from_attribute, key_from_values, normalise_dn, uuid_text,
};

/// An IPP response body through the parser and each reading pinwarden makes of a reply
/// (Get-Printer-Attributes, Get-Jobs, Release-Job/CUPS-Move-Job). Errors are expected;
/// the only failure is a panic. Returns whether the body parsed as IPP.
pub fn ipp_response(body: &[u8]) -> bool {
    let Ok(resp) = cups::parse_response(bytes::Bytes::copy_from_slice(body)) else {
        return false;
    };
    if let Ok(status) = cups::printer_status_of(&resp, "q") {
        let _ = crate::action::print::printer_trouble(&status);
    }
    if let Ok(jobs) = cups::jobs_of(&resp, "q") {
        let _ = crate::action::print::jobs_to_release(&jobs, "alice");
    }
    let _ = cups::job_answer_of(&resp, "Release-Job");
    true
}
