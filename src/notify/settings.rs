//! `[smtp]` as the notify module uses it (config parses into these types): where the relay
//! is, how the connection is protected, how pinwarden logs in, and the sender's addresses.
//! Secrets are file paths here; the transport reads them.

use std::path::PathBuf;
use std::time::Duration;

/// How the connection to the relay is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connect, then STARTTLS, which must be offered (port 587; the default).
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// Clear text: only with an explicit opt-in, for a relay on loopback.
    None,
}

impl SmtpTls {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Starttls => 587,
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
        }
    }
}

/// How pinwarden logs in to the relay.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SmtpAuth {
    /// No login (a relay that trusts this host).
    None,
    /// SASL PLAIN or LOGIN with a password read from a file.
    Password {
        username: String,
        password_file: PathBuf,
    },
    /// SASL XOAUTH2 with an OAuth access token read from a file (Exchange Online, Gmail),
    /// re-read for every connection so an external refresher can replace it.
    Xoauth2 {
        username: String,
        token_file: PathBuf,
    },
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub auth: SmtpAuth,
    /// Extra CA certificates (PEM) trusted for the relay, beside the system's.
    pub ca_file: Option<PathBuf>,
    /// `From:` (and the envelope sender), e.g. `Print room <print@example.org>`.
    pub from: String,
    pub reply_to: Option<String>,
    /// A whole send (or probe) is abandoned after this: the relay may stop answering
    /// mid-dialogue, and lettre bounds only the connect.
    #[serde(serialize_with = "serialize_secs")]
    pub timeout: Duration,
}

fn serialize_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{}s", d.as_secs()))
}

/// `[mail]`: what the outbox and the templates need besides the relay.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MailSettings {
    /// A directory holding `<template>.txt` (and optionally `<template>.html`) files; None:
    /// the bundled defaults (`config/templates/`, compiled in).
    pub templates: Option<PathBuf>,
    /// `{{customer-name}}`: the site or company name.
    pub customer_name: String,
    /// The site's IANA time zone for `{{pinExpiration}}` (the top-level `time_zone`).
    pub time_zone: String,
    /// strftime format of `{{pinExpiration}}`, e.g. `%Y-%m-%d %H:%M %Z`.
    pub date_format: String,
    /// Sending pace; None: unpaced.
    pub per_minute: Option<u32>,
    pub per_day: Option<u32>,
    /// A message not sent within this is dropped (audited).
    #[serde(serialize_with = "serialize_secs")]
    pub max_age: Duration,
    /// How a new PIN reaches its holder: in the mail, or a link to a page that shows it once.
    pub delivery: PinDelivery,
}

/// `[mail] delivery`: `pin` (the mail carries the PIN) or `reveal` (the mail carries a link
/// to the self-service page, which shows the PIN once; no PIN in the outbox or a mailbox).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PinDelivery {
    #[default]
    Pin,
    Reveal,
}

impl MailSettings {
    /// Presets for `[mail] preset`: (per minute, per day) the provider allows.
    pub fn preset(name: &str) -> Option<(Option<u32>, Option<u32>)> {
        match name {
            // Exchange Online: 30 messages a minute, 10 000 recipients a day.
            "microsoft365" => Some((Some(30), Some(10_000))),
            // Google Workspace SMTP relay: 10 000 recipients a day (per user 2 000); we
            // stay under 2 000 a day and a conservative 60 a minute.
            "google" => Some((Some(60), Some(2_000))),
            "none" => Some((None, None)),
            _ => None,
        }
    }
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            templates: None,
            customer_name: String::new(),
            time_zone: "UTC".into(),
            date_format: "%Y-%m-%d %H:%M %Z".into(),
            per_minute: None,
            per_day: None,
            max_age: Duration::from_secs(3 * 86_400),
            delivery: PinDelivery::Pin,
        }
    }
}
