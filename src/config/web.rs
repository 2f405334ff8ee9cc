//! `[web]`: the self-service page (off without the block or with `enabled = false`).

use super::duration_key;
use super::raw::RawWeb;
use crate::frontend::http::web::{NewPinDelivery, WebSettings};
use std::time::Duration;

pub fn validate_web(
    raw: Option<&RawWeb>,
    http: bool,
    ldap: bool,
) -> Result<Option<WebSettings>, String> {
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
    let mut password = false;
    for way in raw.sign_in.as_deref().unwrap_or(&["email".to_string()]) {
        match way.as_str() {
            "email" => {}
            "ldap" if ldap => password = true,
            "ldap" => {
                return Err(
                    "web.sign_in = [\"ldap\"]: no [[directory]] of kind \"ldap\" is \
                            configured to check directory passwords against"
                        .into(),
                )
            }
            other => {
                return Err(format!(
                    "web.sign_in: \"{other}\" is not a way to sign in; give \"email\" (a \
                     mailed link) and/or \"ldap\" (the directory password)"
                ))
            }
        }
    }
    Ok(Some(WebSettings {
        link_lifetime,
        new_pin,
        directory_password: password,
    }))
}

/// The page's cookies and links are credentials: on plain HTTP at a non-loopback address
/// they would cross the network in clear unless a TLS-terminating proxy is in front
/// (`public_url` is https, or `allow_plain_http = true` says so).
pub fn check_web_transport(http: &crate::frontend::http::HttpSettings) -> Result<(), String> {
    if !http.browser_sees_https() && !http.listen.ip().is_loopback() && !http.allow_plain_http {
        return Err(format!(
            "web: the self-service page on plain HTTP at {} would send sign-in links and \
             session cookies in clear text: give tls_cert and tls_key, listen on a loopback \
             address, or, behind a TLS-terminating proxy, set public_url = \"https://…\" \
             (or allow_plain_http = true) in [http]",
            http.listen
        ));
    }
    Ok(())
}

/// People's directory passwords cross to the directory at sign-in: only over ldaps://,
/// StartTLS, a local socket (ldapi://) or to a loopback address.
pub fn check_password_transport(name: &str, url: &str, starttls: bool) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    if starttls || lower.starts_with("ldaps://") || lower.starts_with("ldapi://") {
        return Ok(());
    }
    let rest = lower.strip_prefix("ldap://").unwrap_or(&lower);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        return Ok(());
    }
    Err(format!(
        "web.sign_in = [\"ldap\"]: directory \"{name}\" at {url} would receive people's \
         passwords in clear text: use an ldaps:// url or starttls = true (or a directory on \
         a loopback address)"
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn directory_passwords_need_tls_off_loopback() {
        use super::check_password_transport as check;
        assert!(check("d", "ldap://dc.example.org", false)
            .unwrap_err()
            .contains("starttls = true"));
        assert!(check("d", "ldap://10.0.0.5:389/", false).is_err());
        assert!(check("d", "ldap://dc.example.org", true).is_ok());
        assert!(check("d", "LDAPS://dc.example.org", false).is_ok());
        assert!(check("d", "ldap://127.0.0.1:3389/", false).is_ok());
        assert!(check("d", "ldap://[::1]:389", false).is_ok());
        assert!(check("d", "ldap://localhost", false).is_ok());
    }

    use crate::config::Config;

    const BUNDLED: &str = include_str!("../../config/pinwarden.toml");

    fn refused(from: &str, to: &str) -> String {
        assert!(BUNDLED.contains(from), "{from}");
        Config::parse(&BUNDLED.replacen(from, to, 1)).unwrap_err()
    }

    #[test]
    fn the_demo_serves_the_page_and_errors_name_the_key_and_the_fix() {
        let web = Config::parse(BUNDLED)
            .unwrap()
            .web
            .expect("the demo has [web]");
        assert_eq!(web.link_lifetime.as_secs(), 1800);
        assert!(!web.directory_password);
        let e = refused("new_pin = \"both\"", "new_pin = \"loud\"");
        assert!(e.contains("web.new_pin") && e.contains("\"show\""), "{e}");
        let e = refused("link_lifetime = \"30m\"", "link_lifetime = \"1m\"");
        assert!(
            e.contains("web.link_lifetime") && e.contains("5m to 24h"),
            "{e}"
        );
        let e = refused("new_pin = \"both\"", "sign_in = [\"ldap\"]");
        assert!(e.contains("no [[directory]] of kind \"ldap\""), "{e}");
        let e = refused("new_pin = \"both\"", "sign_in = [\"sms\"]");
        assert!(e.contains("web.sign_in"), "{e}");
        let e = refused("[http]\nlisten = \"127.0.0.1:8080\"", "");
        assert!(e.contains("add an [http] block"), "{e}");
        let off = BUNDLED.replacen("[web]\n", "[web]\nenabled = false\n", 1);
        assert!(Config::parse(&off).unwrap().web.is_none());
        let reveal = format!("{BUNDLED}\n[mail]\ndelivery = \"reveal\"\n");
        let c = Config::parse(&reveal).unwrap();
        assert_eq!(c.mail.delivery, crate::notify::PinDelivery::Reveal);
        let bad = reveal.replacen("[web]\n", "[web]\nenabled = false\n", 1);
        let e = Config::parse(&bad).unwrap_err();
        assert!(e.contains("mail.delivery = \"reveal\""), "{e}");
    }
}
