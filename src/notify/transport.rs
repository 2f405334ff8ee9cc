//! The SMTP transport: the only file that names lettre. Builds one reused connection to the
//! relay from `SmtpSettings` (STARTTLS required unless clear text was chosen; password or
//! XOAUTH2 login), turns a `Mail` into a MIME message (text, optional HTML alternative),
//! sends it and sorts failures into what the outbox does next: drop (refused, invalid) or
//! retry later (deferred, unavailable; a quota deferral pauses the lane). `probe` runs the
//! dialogue up to `RCPT TO` the sender's own address, then `RSET`, for `check-config --smtp`.

use super::settings::{SmtpAuth, SmtpSettings, SmtpTls};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, Tls, TlsParameters};
use lettre::transport::smtp::commands::{Mail as MailCmd, Rcpt, Rset};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Mutex;
use zeroize::Zeroizing;

/// One message, rendered. The text may carry a PIN: it is wiped when dropped.
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: Zeroizing<String>,
    pub html: Option<Zeroizing<String>>,
}

/// Why a message was not accepted, sorted by what the outbox does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The relay refused this message for good (5xx): audit, do not retry.
    #[error("refused by the mail server: {0}")]
    Refused(String),
    /// The relay asked to try later (4xx). `quota`: a sending rate or quota was hit, so the
    /// whole lane waits for its window rather than this message alone.
    #[error("deferred by the mail server: {reason}")]
    Deferred { reason: String, quota: bool },
    /// The relay could not be reached, TLS failed, STARTTLS was not offered, the login was
    /// refused or a command timed out: retry with back-off; nothing was sent in clear.
    #[error("mail server unavailable: {0}")]
    Unavailable(String),
    /// The message cannot be built (an invalid address, CR/LF in a header): never retried.
    #[error("invalid message: {0}")]
    Invalid(String),
}

/// Where `probe` stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{step}: {message}")]
pub struct ProbeError {
    pub step: &'static str,
    pub message: String,
}

/// SASL logins refused (530, 534, 535, 538) are the relay's settings, not the message's.
const LOGIN_CODES: [&str; 4] = ["530", "534", "535", "538"];
/// The relay as a whole says "not now" (service closing, TLS or auth temporarily off).
const RELAY_CODES: [&str; 3] = ["421", "432", "454"];

/// The RFC 3463 enhanced status code in a reply (`5.1.1`), as (class, subject, detail).
fn enhanced(text: &str) -> Option<(u16, u16, u16)> {
    text.split(|c: char| c.is_whitespace() || c == ':' || c == '(' || c == ')')
        .find_map(|word| {
            let mut parts = word.split('.');
            let class = parts
                .next()?
                .parse()
                .ok()
                .filter(|c| matches!(c, 2 | 4 | 5))?;
            let subject = parts.next()?.parse().ok()?;
            let detail = parts.next()?.parse().ok()?;
            parts.next().is_none().then_some((class, subject, detail))
        })
}

/// The sender's own sending rate or quota was hit: every message waits, not this one only.
fn sender_quota(lower: &str, code: Option<(u16, u16, u16)>) -> bool {
    matches!(code, Some((_, 4, 5)))
        || [
            "rate limit",
            "sending limit",
            "sending quota",
            "submissionquota",
            "too many messages",
        ]
        .iter()
        .any(|w| lower.contains(w))
}

/// Problems of this message or recipient (address, mailbox full, too big, too many
/// recipients, a loop, content): other messages are unaffected.
fn per_message(code: Option<(u16, u16, u16)>) -> bool {
    matches!(
        code,
        Some((_, 1, _) | (_, 2, _) | (_, 3, 4) | (_, 4, 6) | (_, 5, 3) | (_, 6, _))
    )
}

fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let text = e.to_string();
    let basic = e.status().map(|c| c.to_string()).unwrap_or_default();
    let lower = text.to_ascii_lowercase();
    let code = enhanced(&text);
    if LOGIN_CODES.contains(&basic.as_str()) {
        SendError::Unavailable(format!("login refused ({basic}): {text}"))
    } else if (e.is_transient() || e.is_permanent()) && sender_quota(&lower, code) {
        // Exchange Online reports its daily submission quota with a 5xx.
        SendError::Deferred {
            reason: text,
            quota: true,
        }
    } else if per_message(code) && e.is_permanent() {
        SendError::Refused(text)
    } else if per_message(code) && e.is_transient() {
        SendError::Deferred {
            reason: text,
            quota: false,
        }
    } else if RELAY_CODES.contains(&basic.as_str()) || matches!(code, Some((_, 7, _))) {
        // Relay access denied, sender not allowed, TLS or auth required: the relay's
        // settings, so no message is dropped for it.
        SendError::Unavailable(format!(
            "the mail server refuses pinwarden ({basic}): {text}"
        ))
    } else if e.is_permanent() {
        SendError::Refused(text)
    } else if e.is_transient() {
        SendError::Deferred {
            reason: text,
            quota: false,
        }
    } else {
        SendError::Unavailable(text)
    }
}

fn mailbox(key: &str, text: &str) -> Result<Mailbox, String> {
    text.parse::<Mailbox>()
        .map_err(|e| format!("{key} = {text:?} is not an email address: {e}"))
}

/// Checks that `text` is one mailbox, with or without a display name
/// (`Print room <print@example.org>`), for `smtp.from` and `smtp.reply_to`.
pub fn valid_mailbox(text: &str) -> Result<(), String> {
    if text.contains(['\r', '\n']) {
        return Err("an address cannot contain a line break".into());
    }
    mailbox("address", text).map(|_| ())
}

/// Checks that `text` is one email address (for `user add --email` and the like).
pub fn valid_address(text: &str) -> Result<(), String> {
    if text.contains(['\r', '\n']) {
        return Err("an email address cannot contain a line break".into());
    }
    text.parse::<lettre::Address>()
        .map(|_| ())
        .map_err(|e| format!("{text:?} is not an email address: {e}"))
}

/// A secret from its file, refused when others may read it.
fn read_secret(key: &str, path: &std::path::Path) -> Result<Zeroizing<String>, String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {key} {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o007 != 0 {
        return Err(format!(
            "{key} {} is open to other users (mode {:o}): chmod 600 it",
            path.display(),
            mode & 0o777
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {key} {}: {e}", path.display()))?;
    Ok(Zeroizing::new(
        text.trim_end_matches(['\r', '\n']).to_string(),
    ))
}

fn tls_parameters(settings: &SmtpSettings) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(settings.host.clone());
    if let Some(path) = &settings.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read smtp.ca_file {}: {e}", path.display()))?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| format!("smtp.ca_file {}: {e}", path.display()))?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build_rustls()
        .map_err(|e| format!("TLS settings for {}: {e}", settings.host))
}

/// The login: credentials and the mechanisms to offer, or none. `token` is the XOAUTH2
/// token as the caller read it (so the transport and its cache agree).
fn login(
    settings: &SmtpSettings,
    token: Option<&Zeroizing<String>>,
) -> Result<Option<(Credentials, Vec<Mechanism>)>, String> {
    Ok(match &settings.auth {
        SmtpAuth::None => None,
        SmtpAuth::Password {
            username,
            password_file,
        } => {
            let password = read_secret("smtp.password_file", password_file)?;
            Some((
                Credentials::new(username.clone(), password.to_string()),
                vec![Mechanism::Plain, Mechanism::Login],
            ))
        }
        SmtpAuth::Xoauth2 {
            username,
            token_file,
        } => {
            let token = match token {
                Some(t) => t.clone(),
                None => read_secret("smtp.token_file", token_file)?,
            };
            Some((
                Credentials::new(username.clone(), token.to_string()),
                vec![Mechanism::Xoauth2],
            ))
        }
    })
}

/// Clear text only to a relay on this host, and never with a login.
pub fn check_clear_text(settings: &SmtpSettings) -> Result<(), String> {
    if settings.tls != SmtpTls::None {
        return Ok(());
    }
    let loopback = settings.host == "localhost"
        || settings
            .host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(format!(
            "smtp.tls = \"none\" sends PINs in clear: only allowed for a relay on this host \
             (127.0.0.1, ::1, localhost), not \"{}\"; use tls = \"starttls\"",
            settings.host
        ));
    }
    if settings.auth != SmtpAuth::None {
        return Err(
            "smtp.tls = \"none\" with a login would send the password in clear: use \
                    tls = \"starttls\" or \"implicit\""
                .into(),
        );
    }
    Ok(())
}

fn build_transport(
    settings: &SmtpSettings,
    token: Option<&Zeroizing<String>>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let tls = match settings.tls {
        SmtpTls::Starttls => Tls::Required(tls_parameters(settings)?),
        SmtpTls::Implicit => Tls::Wrapper(tls_parameters(settings)?),
        SmtpTls::None => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
        .port(settings.port)
        .tls(tls)
        .timeout(Some(settings.timeout))
        // One connection, reused across messages while it stays open.
        .pool_config(PoolConfig::new().max_size(1));
    if let Some((credentials, mechanisms)) = login(settings, token)? {
        builder = builder.credentials(credentials).authentication(mechanisms);
    }
    Ok(builder.build())
}

pub struct Mailer {
    settings: SmtpSettings,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    /// Rebuilt when an XOAUTH2 token file changes (an external refresher replaced it).
    transport: Mutex<(
        AsyncSmtpTransport<Tokio1Executor>,
        Option<Zeroizing<String>>,
    )>,
}

impl Mailer {
    /// Reads the secrets and prepares the connection; errors name the key to fix.
    pub fn new(settings: &SmtpSettings) -> Result<Self, String> {
        let from = mailbox("smtp.from", &settings.from)?;
        let reply_to = settings
            .reply_to
            .as_deref()
            .map(|r| mailbox("smtp.reply_to", r))
            .transpose()?;
        check_clear_text(settings)?;
        let token = Self::token(settings)?;
        let transport = build_transport(settings, token.as_ref())?;
        Ok(Mailer {
            settings: settings.clone(),
            from,
            reply_to,
            transport: Mutex::new((transport, token)),
        })
    }

    fn token(settings: &SmtpSettings) -> Result<Option<Zeroizing<String>>, String> {
        match &settings.auth {
            SmtpAuth::Xoauth2 { token_file, .. } => {
                read_secret("smtp.token_file", token_file).map(Some)
            }
            _ => Ok(None),
        }
    }

    fn current_transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
        let mut slot = self.transport.lock().unwrap_or_else(|e| e.into_inner());
        let token = Self::token(&self.settings).map_err(SendError::Unavailable)?;
        if token != slot.1 {
            slot.0 =
                build_transport(&self.settings, token.as_ref()).map_err(SendError::Unavailable)?;
            slot.1 = token;
        }
        Ok(slot.0.clone())
    }

    /// Drops the pooled connection: after a deadline it may be mid-dialogue, and reusing it
    /// would pair the next message with this one's late replies.
    fn discard_connection(&self) {
        let mut slot = self.transport.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(fresh) = build_transport(&self.settings, slot.1.as_ref()) {
            slot.0 = fresh;
        }
    }

    /// The MIME message for `mail`.
    pub fn message(&self, mail: &Mail) -> Result<Message, SendError> {
        if mail.subject.contains(['\r', '\n']) {
            return Err(SendError::Invalid(
                "a subject cannot contain a line break".into(),
            ));
        }
        let to = mailbox("recipient", &mail.to).map_err(SendError::Invalid)?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone());
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text.to_string());
        let built = match &mail.html {
            None => builder.singlepart(text),
            Some(html) => builder.multipart(
                MultiPart::alternative().singlepart(text).singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html.to_string()),
                ),
            ),
        };
        built.map_err(|e| SendError::Invalid(e.to_string()))
    }

    /// Sends one message over the shared connection, within the configured timeout.
    pub async fn send(&self, mail: &Mail) -> Result<(), SendError> {
        let message = self.message(mail)?;
        let transport = self.current_transport()?;
        match tokio::time::timeout(self.settings.timeout, transport.send(message)).await {
            Ok(sent) => sent.map(|_| ()).map_err(|e| classify(&e)),
            Err(_) => {
                self.discard_connection();
                Err(SendError::Unavailable(format!(
                    "no answer from {} within {:?}",
                    self.settings.host, self.settings.timeout
                )))
            }
        }
    }

    /// The dialogue up to `RCPT TO` the sender's own address, then `RSET` and `QUIT`:
    /// proves address, TLS, login and sender without sending anything.
    pub async fn probe(&self) -> Result<(), ProbeError> {
        tokio::time::timeout(self.settings.timeout, self.dialogue())
            .await
            .unwrap_or_else(|_| {
                Err(ProbeError {
                    step: "waiting for the server",
                    message: format!("no answer within {:?}", self.settings.timeout),
                })
            })
    }

    async fn dialogue(&self) -> Result<(), ProbeError> {
        let step = |step: &'static str| {
            move |e: lettre::transport::smtp::Error| ProbeError {
                step,
                message: e.to_string(),
            }
        };
        let hello = ClientId::default();
        let s = &self.settings;
        let wrapper = match s.tls {
            SmtpTls::Implicit => Some(tls_parameters(s).map_err(|message| ProbeError {
                step: "TLS settings",
                message,
            })?),
            _ => None,
        };
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (s.host.as_str(), s.port),
            Some(s.timeout),
            &hello,
            wrapper,
            None,
        )
        .await
        .map_err(step("connect and EHLO"))?;
        if s.tls == SmtpTls::Starttls {
            let params = tls_parameters(s).map_err(|message| ProbeError {
                step: "TLS settings",
                message,
            })?;
            conn.starttls(params, &hello)
                .await
                .map_err(step("STARTTLS"))?;
        }
        let token = Self::token(s).map_err(|message| ProbeError {
            step: "AUTH",
            message,
        })?;
        let credentials = login(s, token.as_ref()).map_err(|message| ProbeError {
            step: "AUTH",
            message,
        })?;
        if let Some((credentials, mechanisms)) = credentials {
            conn.auth(&mechanisms, &credentials)
                .await
                .map_err(step("AUTH"))?;
        }
        let sender = self.from.email.clone();
        conn.command(MailCmd::new(Some(sender.clone()), vec![]))
            .await
            .map_err(step("MAIL FROM"))?;
        conn.command(Rcpt::new(sender, vec![]))
            .await
            .map_err(step("RCPT TO"))?;
        conn.command(Rset).await.map_err(step("RSET"))?;
        let _ = conn.quit().await;
        Ok(())
    }
}
