//! The `[mail]` block, parsed into the notify module's own `MailSettings`: the templates
//! directory, `{{customer-name}}`, the date format of `{{pinExpiration}}` (in the top-level
//! `time_zone`), pacing (a provider preset, explicit caps override it) and the outbox's age
//! limit. Reads no files: the templates are loaded and checked by `check-config` and the daemon.

use super::raw::RawMail;
use super::{absolute, duration_key};
use crate::notify::MailSettings;
use std::time::Duration;

pub fn validate_mail(
    raw: Option<&RawMail>,
    time_zone: Option<&str>,
) -> Result<MailSettings, String> {
    let d = MailSettings::default();
    let time_zone = time_zone.unwrap_or(&d.time_zone).to_string();
    let Some(raw) = raw else {
        return Ok(MailSettings { time_zone, ..d });
    };
    let (preset_minute, preset_day) = match raw.preset.as_deref() {
        None => (None, None),
        Some(name) => MailSettings::preset(name).ok_or_else(|| {
            format!(
                "mail.preset = \"{name}\": use \"microsoft365\" (30 a minute, 10 000 a day), \
                 \"google\" (60 a minute, 2 000 a day) or \"none\" (unpaced)"
            )
        })?,
    };
    let per_minute = raw.per_minute.or(preset_minute);
    let per_day = raw.per_day.or(preset_day);
    for (key, cap) in [("mail.per_minute", per_minute), ("mail.per_day", per_day)] {
        if cap == Some(0) {
            return Err(format!(
                "{key} = 0 would never send: leave it out (unpaced) or set a limit above zero"
            ));
        }
    }
    let date_format = raw.date_format.clone().unwrap_or(d.date_format);
    if date_format.trim().is_empty() || date_format.chars().any(char::is_control) {
        return Err(
            "mail.date_format must be a one-line strftime format, e.g. \"%Y-%m-%d %H:%M %Z\""
                .into(),
        );
    }
    let customer_name = raw.customer_name.clone().unwrap_or_default();
    if customer_name.chars().any(char::is_control) {
        return Err("mail.customer_name must be one line (no CR, LF or other controls)".into());
    }
    let max_age = duration_key("mail.max_age", raw.max_age.as_deref(), d.max_age)?;
    if max_age < Duration::from_secs(60) || max_age > Duration::from_secs(30 * 86_400) {
        return Err(
            "mail.max_age is out of range: use 1m to 30d (default 3d); older messages are \
             dropped unsent"
                .into(),
        );
    }
    if raw
        .templates
        .as_deref()
        .is_some_and(|t| t.trim().is_empty())
    {
        return Err(
            "mail.templates is empty: name a directory, or leave it out for the bundled templates"
                .into(),
        );
    }
    let delivery = match raw.delivery.as_deref() {
        None | Some("pin") => crate::notify::PinDelivery::Pin,
        Some("reveal") => crate::notify::PinDelivery::Reveal,
        Some(other) => {
            return Err(format!(
                "mail.delivery = \"{other}\": give \"pin\" (the mail carries the PIN) or \
                 \"reveal\" (a link to the self-service page that shows it once; needs [web])"
            ))
        }
    };
    Ok(MailSettings {
        delivery,
        templates: raw.templates.as_deref().map(absolute),
        customer_name,
        time_zone,
        date_format,
        per_minute,
        per_day,
        max_age,
    })
}
