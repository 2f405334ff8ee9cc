//! `[web]`: the self-service page (off without the block or with `enabled = false`).

use super::duration_key;
use super::raw::RawWeb;
use crate::frontend::http::web::{NewPinDelivery, WebSettings};
use std::time::Duration;

pub fn validate_web(raw: Option<&RawWeb>, http: bool) -> Result<Option<WebSettings>, String> {
    let Some(raw) = raw.filter(|r| r.enabled.unwrap_or(true)) else {
        return Ok(None);
    };
    if !http {
        return Err(
            "web: the self-service page is served by the HTTP listener; add an [http] \
                    block with listen = \"127.0.0.1:8080\" (or set web.enabled = false)"
                .into(),
        );
    }
    let defaults = WebSettings::default();
    let link_lifetime = duration_key(
        "web.link_lifetime",
        raw.link_lifetime.as_deref(),
        defaults.link_lifetime,
    )?;
    if link_lifetime < Duration::from_secs(5 * 60) || link_lifetime > Duration::from_secs(24 * 3600)
    {
        return Err(format!(
            "web.link_lifetime = \"{}\": give 5m to 24h (default 30m: greylisting alone \
             delays mail 10–15 minutes)",
            raw.link_lifetime.as_deref().unwrap_or_default()
        ));
    }
    let new_pin = match raw.new_pin.as_deref() {
        None => defaults.new_pin,
        Some("show") => NewPinDelivery::Show,
        Some("mail") => NewPinDelivery::Mail,
        Some("both") => NewPinDelivery::Both,
        Some(other) => {
            return Err(format!(
                "web.new_pin = \"{other}\": give \"show\" (on the page once), \"mail\" or \"both\""
            ))
        }
    };
    Ok(Some(WebSettings {
        link_lifetime,
        new_pin,
    }))
}
