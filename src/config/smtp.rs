//! The `[smtp]` block, parsed into the notify module's own `SmtpSettings`: where the relay is,
//! how the connection is protected (STARTTLS unless chosen otherwise; clear text only to a
//! relay on this host and without a login), how pinwarden logs in, and the sender. Reads no
//! files: secrets are paths, read (and their modes checked) when the mailer is built.

use super::raw::RawSmtp;
use super::{absolute, duration_key};
use crate::notify::transport::{check_clear_text, valid_mailbox};
use crate::notify::{SmtpAuth, SmtpSettings, SmtpTls};
use std::time::Duration;

fn tls(raw: &RawSmtp) -> Result<SmtpTls, String> {
    match raw.tls.as_deref().unwrap_or("starttls") {
        "starttls" => Ok(SmtpTls::Starttls),
        "implicit" => Ok(SmtpTls::Implicit),
        "none" => Ok(SmtpTls::None),
        other => Err(format!(
            "smtp.tls = \"{other}\": use \"starttls\" (port 587, the default), \"implicit\" \
             (port 465) or \"none\" (clear text, only to a relay on this host)"
        )),
    }
}

fn auth(raw: &RawSmtp) -> Result<SmtpAuth, String> {
    match (&raw.username, &raw.password_file, &raw.token_file) {
        (None, None, None) => Ok(SmtpAuth::None),
        (Some(_), Some(_), Some(_)) => {
            Err("smtp: set password_file (password login) or token_file (XOAUTH2), not both".into())
        }
        (Some(username), Some(password_file), None) => Ok(SmtpAuth::Password {
            username: username.clone(),
            password_file: absolute(password_file),
        }),
        (Some(username), None, Some(token_file)) => Ok(SmtpAuth::Xoauth2 {
            username: username.clone(),
            token_file: absolute(token_file),
        }),
        (Some(_), None, None) => Err(
            "smtp.username needs smtp.password_file (a file, mode 0600, holding the password) \
             or smtp.token_file (an OAuth access token for XOAUTH2)"
                .into(),
        ),
        (None, _, _) => {
            Err("smtp.password_file or smtp.token_file is set without smtp.username".into())
        }
    }
}

pub fn validate_smtp(raw: &RawSmtp) -> Result<SmtpSettings, String> {
    let host = raw.host.trim().to_string();
    if host.is_empty() {
        return Err("smtp.host is empty: set the relay, e.g. \"smtp.office365.com\"".into());
    }
    let tls = tls(raw)?;
    let auth = auth(raw)?;
    valid_mailbox(&raw.from).map_err(|e| format!("smtp.from: {e}"))?;
    if let Some(reply_to) = &raw.reply_to {
        valid_mailbox(reply_to).map_err(|e| format!("smtp.reply_to: {e}"))?;
    }
    let timeout = duration_key(
        "smtp.timeout",
        raw.timeout.as_deref(),
        Duration::from_secs(30),
    )?;
    if timeout.is_zero() {
        return Err("smtp.timeout must be above zero (default 30s)".into());
    }
    let settings = SmtpSettings {
        port: raw.port.unwrap_or(tls.default_port()),
        host,
        tls,
        auth,
        ca_file: raw.ca_file.as_deref().map(absolute),
        from: raw.from.clone(),
        reply_to: raw.reply_to.clone(),
        timeout,
    };
    check_clear_text(&settings)?;
    Ok(settings)
}
