//! Mail templates: loading and checking `<kind>.txt` (first line `Subject: …`, a blank
//! line, the text body) and the optional `<kind>.html`, and rendering them with the
//! variables `{{pin}}`, `{{username}}`, `{{name}}`, `{{pinExpiration}}`,
//! `{{customer-name}}`, `{{sponsor}}`. (Foundation stub: the notify helper implements it.)

use super::settings::MailSettings;
use crate::domain::{MailKind, Timestamp};
use zeroize::Zeroizing;

/// The values a template may use. `pin` is None for messages that carry no PIN.
#[derive(Default)]
pub struct MailVars {
    pub pin: Option<Zeroizing<String>>,
    pub username: String,
    pub name: String,
    pub pin_expiration: Option<Timestamp>,
    pub sponsor: Option<String>,
}

/// A rendered message: what is sealed into the outbox.
pub struct Rendered {
    pub subject: String,
    pub text: Zeroizing<String>,
    pub html: Option<Zeroizing<String>>,
}

/// A template that cannot be used; names the file and, where known, the line.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct TemplateError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

pub struct Templates {}

impl Templates {
    /// Loads and checks every kind's template (the configured directory or the bundled
    /// defaults); an unknown variable is an error naming file and line.
    pub fn load(_settings: &MailSettings) -> Result<Templates, TemplateError> {
        unimplemented!("notify helper")
    }

    pub fn render(&self, _kind: MailKind, _vars: &MailVars) -> Result<Rendered, TemplateError> {
        unimplemented!("notify helper")
    }
}

impl Rendered {
    /// The bytes sealed into the outbox (zeroized when dropped).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        unimplemented!("notify helper")
    }

    pub fn from_bytes(_bytes: &[u8]) -> Option<Rendered> {
        unimplemented!("notify helper")
    }
}
