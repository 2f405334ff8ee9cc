//! Timestamps (unix milliseconds, shown as RFC 3339 UTC) and PIN expiry specifications.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }
    pub fn millis(self) -> i64 {
        self.0
    }
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_millis() as i64)
    }
    pub fn plus(self, d: Duration) -> Self {
        Timestamp(
            self.0
                .saturating_add(d.as_millis().min(i64::MAX as u128) as i64),
        )
    }
    /// Time from `self` until `later`, zero if `later` is not after `self`.
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_millis(later.0.saturating_sub(self.0).max(0) as u64)
    }
    /// Parses RFC 3339 (`2026-01-31T08:00:00Z`) or a plain date (`2026-01-31`, midnight UTC).
    pub fn parse(text: &str) -> Option<Self> {
        use ::time::format_description::well_known::Rfc3339;
        if let Ok(t) = ::time::OffsetDateTime::parse(text, &Rfc3339) {
            return Some(Timestamp((t.unix_timestamp_nanos() / 1_000_000) as i64));
        }
        let fmt = ::time::macros::format_description!("[year]-[month]-[day]");
        let date = ::time::Date::parse(text, &fmt).ok()?;
        let t = date.midnight().assume_utc();
        Some(Timestamp(t.unix_timestamp() * 1000))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ::time::format_description::well_known::Rfc3339;
        let nanos = i128::from(self.0) * 1_000_000;
        match ::time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
        {
            Some(s) => f.write_str(&s),
            None => write!(f, "@{}ms", self.0),
        }
    }
}

/// How long a PIN stays valid: never expires, or a span of hours or days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    Never,
    After(Duration),
}

impl Expiry {
    pub fn expires_at(self, from: Timestamp) -> Option<Timestamp> {
        match self {
            Expiry::Never => None,
            Expiry::After(d) => Some(from.plus(d)),
        }
    }
}

/// Parses `never`, `1h`…`48h` or `1d`…`180d` (the ranges print-management products offer).
pub fn parse_expiry(text: &str) -> Result<Expiry, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("never") {
        return Ok(Expiry::Never);
    }
    let hint = "use `never`, 1h to 48h, or 1d to 180d (for example `24h` or `30d`)";
    let (num, unit) = match (t.strip_suffix('h'), t.strip_suffix('d')) {
        (Some(num), _) => (num, "h"),
        (_, Some(num)) => (num, "d"),
        _ => return Err(format!("`{t}` is not an expiry: {hint}")),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{t}` is not an expiry: {hint}"))?;
    match unit {
        "h" if (1..=48).contains(&n) => Ok(Expiry::After(Duration::from_secs(n * 3600))),
        "d" if (1..=180).contains(&n) => Ok(Expiry::After(Duration::from_secs(n * 86_400))),
        _ => Err(format!("`{t}` is out of range: {hint}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_parsing() {
        assert_eq!(parse_expiry("never"), Ok(Expiry::Never));
        assert_eq!(
            parse_expiry("24h"),
            Ok(Expiry::After(Duration::from_secs(86_400)))
        );
        assert_eq!(
            parse_expiry("30d"),
            Ok(Expiry::After(Duration::from_secs(30 * 86_400)))
        );
        for bad in [
            "0h", "49h", "181d", "0d", "12", "h", "", "5m", "-1h", "2€", "€",
        ] {
            assert!(parse_expiry(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn timestamps_round_trip_rfc3339() {
        let t = Timestamp::parse("2026-11-24T08:30:00Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-24T08:30:00Z");
        assert_eq!(
            Timestamp::parse("2026-11-24").unwrap().to_string(),
            "2026-11-24T00:00:00Z"
        );
        assert!(Timestamp::parse("yesterday").is_none());
    }
}
