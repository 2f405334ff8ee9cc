//! Mail templates: loading and checking `<kind>.txt` (first line `Subject: …`, a blank
//! line, the text body) and the optional `<kind>.html`, and rendering them with the
//! variables `{{pin}}`, `{{username}}`, `{{name}}`, `{{pinExpiration}}`,
//! `{{customer-name}}`, `{{sponsor}}` (handlebars, strict mode). Knows nothing of users or
//! the store; the PIN never passes through handlebars: a random marker stands in for it and
//! is replaced in the wiped output.

use super::settings::MailSettings;
use crate::core::schedule::TimeZone;
use crate::domain::{MailKind, Timestamp};
use handlebars::Handlebars;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;
use zeroize::Zeroizing;

/// What `mail preview` shows instead of a PIN.
pub const PREVIEW_PIN: &str = "••••••";

/// The bundled defaults (`config/templates/`), compiled in.
const BUNDLED: [(MailKind, &str); 9] = [
    (
        MailKind::NewPin,
        include_str!("../../config/templates/new_pin.txt"),
    ),
    (
        MailKind::ResetPin,
        include_str!("../../config/templates/reset_pin.txt"),
    ),
    (
        MailKind::ExpiryReminder,
        include_str!("../../config/templates/expiry_reminder.txt"),
    ),
    (
        MailKind::GuestInvitation,
        include_str!("../../config/templates/guest_invitation.txt"),
    ),
    (
        MailKind::ForgottenPin,
        include_str!("../../config/templates/forgotten_pin.txt"),
    ),
    (
        MailKind::GuestNotice,
        include_str!("../../config/templates/guest_notice.txt"),
    ),
    (
        MailKind::PinChanged,
        include_str!("../../config/templates/pin_changed.txt"),
    ),
    (
        MailKind::SignIn,
        include_str!("../../config/templates/sign_in.txt"),
    ),
    (
        MailKind::PinLink,
        include_str!("../../config/templates/pin_link.txt"),
    ),
];

/// Kinds added after the first release: a templates directory may predate them.
fn bundled_only(kind: MailKind) -> bool {
    matches!(
        kind,
        MailKind::GuestNotice | MailKind::PinChanged | MailKind::SignIn | MailKind::PinLink
    )
}

/// The values a template may use. `pin` is None for messages that carry no PIN.
#[derive(Default)]
pub struct MailVars {
    pub pin: Option<Zeroizing<String>>,
    pub username: String,
    pub name: String,
    pub pin_expiration: Option<Timestamp>,
    pub sponsor: Option<String>,
    /// A sign-in link (`{{link}}`), its code (`{{code}}`) and lifetime (`{{linkLifetime}}`):
    /// secrets like a PIN, sealed with the body in the outbox.
    pub link: Option<Zeroizing<String>>,
    pub code: Option<Zeroizing<String>>,
    pub link_lifetime: String,
}

impl MailVars {
    /// Values for `mail preview` and the load check: `PREVIEW_PIN`, never a real PIN.
    pub fn placeholder(username: &str, name: &str, pin_expiration: Option<Timestamp>) -> Self {
        MailVars {
            pin: Some(Zeroizing::new(PREVIEW_PIN.to_string())),
            username: username.to_string(),
            name: name.to_string(),
            pin_expiration,
            sponsor: Some("Sam Sponsor".to_string()),
            link: Some(Zeroizing::new(
                "https://pins.example.org/link/…".to_string(),
            )),
            code: Some(Zeroizing::new("ABC234".to_string())),
            link_lifetime: "30 minutes".to_string(),
        }
    }
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

fn error(file: &str, line: Option<usize>, message: impl Into<String>) -> TemplateError {
    TemplateError {
        file: file.to_string(),
        line,
        message: message.into(),
    }
}

/// Where one kind's templates came from, for errors at render time.
struct Files {
    txt: String,
    html: Option<String>,
}

pub struct Templates {
    /// Subjects and text bodies: nothing escaped.
    text: Handlebars<'static>,
    /// HTML bodies: values HTML-escaped.
    html: Handlebars<'static>,
    files: HashMap<MailKind, Files>,
    customer_name: String,
    zone: TimeZone,
    date_format: String,
    /// Stands in for the PIN inside handlebars; random per load.
    marker: String,
}

/// Body lines start at line 3 of the `.txt` (line 1 the subject, line 2 blank).
const BODY_OFFSET: usize = 2;

impl Templates {
    /// Loads and checks every kind's template (the configured directory or the bundled
    /// defaults); an unknown variable is an error naming file and line.
    pub fn load(settings: &MailSettings) -> Result<Templates, TemplateError> {
        let zone =
            TimeZone::named(&settings.time_zone).map_err(|e| error("[mail] time_zone", None, e))?;
        let mut templates = Templates {
            text: strict(handlebars::no_escape),
            html: strict(handlebars::html_escape),
            files: HashMap::new(),
            customer_name: settings.customer_name.clone(),
            zone,
            date_format: settings.date_format.clone(),
            marker: format!("\u{E000}{:016x}\u{E000}", rand::random::<u64>()),
        };
        let sample = templates
            .zone
            .format(Timestamp::from_millis(0), &settings.date_format);
        sample.map_err(|e| {
            error(
                "[mail] date_format",
                None,
                format!("{:?}: {e}", settings.date_format),
            )
        })?;
        for kind in MailKind::ALL {
            templates.add(kind, settings.templates.as_deref())?;
            let check = MailVars::placeholder("jdoe", "Jane Doe", Some(Timestamp::now()));
            templates.render(kind, &check)?;
        }
        Ok(templates)
    }

    fn add(&mut self, kind: MailKind, dir: Option<&Path>) -> Result<(), TemplateError> {
        let stem = kind.template();
        // A directory written before a kind existed falls back to its bundled default.
        let dir = dir.filter(|d| d.join(format!("{stem}.txt")).exists() || !bundled_only(kind));
        let (txt_file, txt) = match dir {
            None => {
                let bundled = BUNDLED.iter().find(|(k, _)| *k == kind).map(|(_, t)| t);
                let text = bundled.expect("every kind has a bundled template");
                (
                    format!("config/templates/{stem}.txt (bundled)"),
                    text.to_string(),
                )
            }
            Some(dir) => {
                let path = dir.join(format!("{stem}.txt"));
                let file = path.display().to_string();
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| error(&file, None, format!("cannot read it: {e}")))?;
                (file, text)
            }
        };
        let (subject, body) = split_txt(&txt_file, &txt)?;
        register(
            &mut self.text,
            &format!("{stem}.subject"),
            subject,
            &txt_file,
            0,
        )?;
        register(
            &mut self.text,
            &format!("{stem}.txt"),
            body,
            &txt_file,
            BODY_OFFSET,
        )?;
        let mut html_file = None;
        if let Some(dir) = dir {
            let path = dir.join(format!("{stem}.html"));
            let file = path.display().to_string();
            match std::fs::read_to_string(&path) {
                Ok(html) => {
                    register(&mut self.html, &format!("{stem}.html"), &html, &file, 0)?;
                    html_file = Some(file);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(error(&file, None, format!("cannot read it: {e}"))),
            }
        }
        let files = Files {
            txt: txt_file,
            html: html_file,
        };
        self.files.insert(kind, files);
        Ok(())
    }

    /// Renders one kind. The subject never carries the PIN and must stay one line; a
    /// template using `{{pin}}` in a message without a PIN is an error.
    pub fn render(&self, kind: MailKind, vars: &MailVars) -> Result<Rendered, TemplateError> {
        let stem = kind.template();
        let files = self.files.get(&kind).expect("every kind is loaded");
        let pin = vars.pin.as_ref().filter(|_| kind.carries_pin());
        let without_pin = self.data(vars, false);
        let data = self.data(vars, pin.is_some());
        let subject = self.run(
            &self.text,
            &format!("{stem}.subject"),
            &without_pin,
            &files.txt,
            0,
        )?;
        if subject.contains(['\r', '\n']) {
            return Err(error(
                &files.txt,
                Some(1),
                "the subject would contain a line break (from a variable such as the name)",
            ));
        }
        let text = self.run(
            &self.text,
            &format!("{stem}.txt"),
            &data,
            &files.txt,
            BODY_OFFSET,
        )?;
        let html = match &files.html {
            Some(file) => {
                let html = self.run(&self.html, &format!("{stem}.html"), &data, file, 0)?;
                Some(self.fill(&html, pin))
            }
            None => None,
        };
        Ok(Rendered {
            subject,
            text: self.fill(&text, pin),
            html,
        })
    }

    fn run(
        &self,
        registry: &Handlebars<'static>,
        name: &str,
        data: &Value,
        file: &str,
        offset: usize,
    ) -> Result<String, TemplateError> {
        registry.render(name, data).map_err(|e| {
            let mut message = e.reason().to_string();
            if message.contains("\"pin\"") {
                message.push_str(" (this part of the message may not carry the PIN)");
            }
            error(file, e.line_no.map(|l| l + offset), message)
        })
    }

    fn data(&self, vars: &MailVars, with_pin: bool) -> Value {
        let mut data = Map::new();
        if with_pin {
            data.insert("pin".into(), self.marker.clone().into());
        }
        data.insert("username".into(), vars.username.clone().into());
        data.insert("name".into(), vars.name.clone().into());
        let expiration = self.expiration(vars.pin_expiration);
        data.insert("pinExpiration".into(), expiration.into());
        data.insert("customer-name".into(), self.customer_name.clone().into());
        let sponsor = vars.sponsor.clone().unwrap_or_default();
        data.insert("sponsor".into(), sponsor.into());
        let link = vars
            .link
            .as_ref()
            .map(|l| l.to_string())
            .unwrap_or_default();
        data.insert("link".into(), link.into());
        let code = vars
            .code
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default();
        data.insert("code".into(), code.into());
        data.insert("linkLifetime".into(), vars.link_lifetime.clone().into());
        Value::Object(data)
    }

    /// `{{pinExpiration}}`: in the site's time zone and format; `never` without expiry.
    pub fn expiration(&self, at: Option<Timestamp>) -> String {
        let Some(at) = at else {
            return "never".to_string();
        };
        self.zone
            .format(at, &self.date_format)
            .unwrap_or_else(|_| at.to_string())
    }

    /// The output with the marker replaced by the PIN, in a buffer wiped when dropped.
    fn fill(&self, rendered: &str, pin: Option<&Zeroizing<String>>) -> Zeroizing<String> {
        let pin = pin.map(|p| p.as_str()).unwrap_or("");
        let count = rendered.matches(&self.marker).count();
        let mut out = Zeroizing::new(String::with_capacity(rendered.len() + count * pin.len()));
        let mut parts = rendered.split(&self.marker);
        if let Some(first) = parts.next() {
            out.push_str(first);
        }
        for part in parts {
            out.push_str(pin);
            out.push_str(part);
        }
        out
    }
}

fn strict(escape: fn(&str) -> String) -> Handlebars<'static> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry.register_escape_fn(escape);
    registry
}

fn register(
    registry: &mut Handlebars<'static>,
    name: &str,
    source: &str,
    file: &str,
    offset: usize,
) -> Result<(), TemplateError> {
    registry
        .register_template_string(name, source)
        .map_err(|e| {
            error(
                file,
                e.pos().map(|(l, _)| l + offset),
                e.reason().to_string(),
            )
        })
}

/// The subject (from `Subject: …` on line 1) and the body (after the blank line 2).
fn split_txt<'a>(file: &str, text: &'a str) -> Result<(&'a str, &'a str), TemplateError> {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let subject = first
        .trim_end_matches('\r')
        .strip_prefix("Subject:")
        .ok_or_else(|| error(file, Some(1), "the first line must be `Subject: …`"))?;
    let (blank, body) = rest.split_once('\n').unwrap_or((rest, ""));
    if !blank.trim().is_empty() {
        return Err(error(
            file,
            Some(2),
            "the line after the subject must be blank",
        ));
    }
    Ok((subject.trim(), body))
}

/// How `Rendered` is sealed: compact JSON.
#[derive(Serialize, Deserialize)]
struct Wire<S> {
    s: S,
    t: S,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    h: Option<S>,
}

impl Rendered {
    /// The bytes sealed into the outbox (zeroized when dropped).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let wire = Wire {
            s: self.subject.as_str(),
            t: self.text.as_str(),
            h: self.html.as_ref().map(|h| h.as_str()),
        };
        // Room for the worst escaping up front: no reallocation leaves a copy behind.
        let len = self.subject.len() + self.text.len() + self.html.as_ref().map_or(0, |h| h.len());
        let mut out = Zeroizing::new(Vec::with_capacity(len * 6 + 32));
        serde_json::to_writer(&mut *out, &wire).expect("strings always serialise");
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Rendered> {
        let wire: Wire<String> = serde_json::from_slice(bytes).ok()?;
        Some(Rendered {
            subject: wire.s,
            text: Zeroizing::new(wire.t),
            html: wire.h.map(Zeroizing::new),
        })
    }
}

#[cfg(test)]
mod tests;
