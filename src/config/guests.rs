//! The `[guests]` block, parsed into the lifecycle's own `GuestSettings`: whether sponsored
//! guests may be created (off unless the site opts in) and the longest a guest may stay.
//! Errors name the key and the fix; `check-config` shows durations as written (`7d`).

use super::duration_key;
use super::raw::RawGuests;
use crate::duration::format_duration;
use crate::lifecycle::users::GuestSettings;
use std::time::Duration;

/// The longest `max_validity` accepted: a guest is a visitor, not a member of staff.
const LONGEST: Duration = Duration::from_secs(180 * 86_400);

pub fn validate_guests(raw: Option<&RawGuests>) -> Result<GuestSettings, String> {
    let d = GuestSettings::default();
    let Some(raw) = raw else {
        return Ok(d);
    };
    let max_validity = duration_key(
        "guests.max_validity",
        raw.max_validity.as_deref(),
        d.max_validity,
    )?;
    if max_validity < Duration::from_secs(60) || max_validity > LONGEST {
        return Err(format!(
            "guests.max_validity = \"{}\" is out of range: use 1m to 180d (default 7d)",
            format_duration(max_validity)
        ));
    }
    Ok(GuestSettings {
        allowed: raw.allowed.unwrap_or(d.allowed),
        max_validity,
    })
}

pub fn serialize<S: serde::Serializer>(g: &GuestSettings, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut st = s.serialize_struct("GuestSettings", 2)?;
    st.serialize_field("allowed", &g.allowed)?;
    st.serialize_field("max_validity", &format_duration(g.max_validity))?;
    st.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(allowed: Option<bool>, max: Option<&str>) -> RawGuests {
        RawGuests {
            allowed,
            max_validity: max.map(str::to_owned),
        }
    }

    #[test]
    fn guests_are_off_unless_the_site_opts_in() {
        assert_eq!(validate_guests(None).unwrap(), GuestSettings::default());
        assert!(!GuestSettings::default().allowed);
        let g = validate_guests(Some(&raw(Some(true), Some("12h")))).unwrap();
        assert!(g.allowed);
        assert_eq!(g.max_validity, Duration::from_secs(12 * 3600));
        let err = validate_guests(Some(&raw(Some(true), Some("365d")))).unwrap_err();
        assert!(err.contains("guests.max_validity"), "{err}");
        assert!(validate_guests(Some(&raw(None, Some("soon")))).is_err());
    }

    #[test]
    fn guests_without_a_relay_are_a_warning() {
        let config = |extra: &str| {
            crate::config::Config::parse(&format!(
                "state_dir = \"/tmp/pw\"\n{extra}\n[[device]]\nid = \"p\"\nkind = \"printer\"\nallow_groups = [\"staff\"]\n"
            ))
            .unwrap()
        };
        let w = crate::config::warnings(&config("[guests]\nallowed = true"));
        assert!(w.len() == 1 && w[0].contains("guests.allowed"), "{w:?}");
        assert!(crate::config::warnings(&config("[guests]\nallowed = false")).is_empty());
        let smtp = "[smtp]\nhost = \"relay\"\nfrom = \"p@example.org\"";
        let w = crate::config::warnings(&config(&format!("[guests]\nallowed = true\n{smtp}")));
        assert!(w.is_empty(), "{w:?}");
    }
}
