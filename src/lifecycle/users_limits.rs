//! A PIN's own limits, set with it (`user add|set-pin --uses N --window "Mon-Fri 08:00-18:00"`):
//! how many grants it allows and the weekly windows it works in (the `[[schedule]]` window
//! syntax, in the site time zone). Checked here when set; counted and enforced by the core.
//! Data and checks only: writes nothing.

use super::AdminError;
use crate::core::schedule::Schedule;
use crate::domain::PinRecord;

/// How many times a PIN works and when; the default is no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PinLimits {
    /// Grants it allows; `None`: unlimited.
    pub uses: Option<u32>,
    /// Weekly windows (`Mon-Fri 08:00-18:00`); empty: whenever the user's access allows.
    pub windows: Vec<String>,
}

impl PinLimits {
    pub fn is_unlimited(&self) -> bool {
        self.uses.is_none() && self.windows.is_empty()
    }

    /// Err names the bad value and the accepted form.
    pub fn check(&self) -> Result<(), AdminError> {
        if self.uses == Some(0) {
            return Err(AdminError::Invalid(
                "--uses must be at least 1 (a PIN that may never be used is no PIN)".into(),
            ));
        }
        if !self.windows.is_empty() {
            Schedule::parse(&self.windows, &[])
                .map_err(|e| AdminError::Invalid(format!("--window: {e}")))?;
        }
        Ok(())
    }

    /// Puts the limits on a new PIN record.
    pub fn apply(&self, record: &mut PinRecord) {
        record.uses_left = self.uses;
        record.windows = self.windows.iter().map(|w| w.trim().to_owned()).collect();
    }

    /// For the audit: `3 uses, windows Mon-Fri 08:00-18:00`; `None` without limits.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(n) = self.uses {
            parts.push(format!("{n} use(s)"));
        }
        if !self.windows.is_empty() {
            let windows: Vec<&str> = self.windows.iter().map(|w| w.trim()).collect();
            parts.push(format!("windows {}", windows.join("; ")));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// Refuses limits where no PIN is set.
    pub fn need_pin(&self) -> Result<(), AdminError> {
        match self.is_unlimited() {
            true => Ok(()),
            false => Err(AdminError::Invalid(
                "--uses and --window limit a PIN: give one with --pin-stdin or --generate".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked_and_named() {
        let ok = PinLimits {
            uses: Some(3),
            windows: vec!["Mon-Fri 08:00-18:00".into(), " Sat 09:00-12:00 ".into()],
        };
        assert!(ok.check().is_ok());
        assert_eq!(
            ok.describe().as_deref(),
            Some("3 use(s), windows Mon-Fri 08:00-18:00; Sat 09:00-12:00")
        );
        let zero = PinLimits {
            uses: Some(0),
            ..PinLimits::default()
        };
        assert!(zero.check().unwrap_err().to_string().contains("--uses"));
        let bad = PinLimits {
            windows: vec!["Mon-Fry 08:00-18:00".into()],
            ..PinLimits::default()
        };
        let e = bad.check().unwrap_err().to_string();
        assert!(e.contains("--window") && e.contains("Mon-Fry"), "{e}");
        assert!(PinLimits::default().need_pin().is_ok());
        assert!(ok.need_pin().is_err());
    }
}
