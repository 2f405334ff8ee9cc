//! The SMTP transport: the only file that names lettre. Builds one reused connection to the
//! relay from `SmtpSettings` (STARTTLS required unless clear text was chosen; password or
//! XOAUTH2 login), turns a `Mail` into a MIME message (text, optional HTML alternative),
//! sends it and sorts failures into what the outbox does next: drop (refused, invalid) or
//! retry later (deferred, unavailable; a quota deferral pauses the lane). `probe` runs the
//! dialogue up to `RCPT TO` the sender's own address, then `RSET`, for `check-config --smtp`.

use super::settings::{SmtpAuth, SmtpSettings, SmtpTls};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Mail as MailCmd, Rcpt, Rset};
use lettre::transport::smtp::extension::ClientId;
use lettre::Message;
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

fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let basic = e.status().map(|c| c.to_string()).unwrap_or_default();
    super::reply::sort(e.to_string(), &basic, e.is_transient(), e.is_permanent())
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

/// Reads the configured secret file once: missing, unreadable or open to other users is an
/// error naming the key and the file (for `check-config` and the daemon's start).
pub fn check_secrets(settings: &SmtpSettings) -> Result<(), String> {
    match &settings.auth {
        SmtpAuth::None => Ok(()),
        SmtpAuth::Password { password_file, .. } => {
            read_secret("smtp.password_file", password_file).map(drop)
        }
        SmtpAuth::Xoauth2 { token_file, .. } => {
            read_secret("smtp.token_file", token_file).map(drop)
        }
    }
}

/// A secret from its file, through the one secret-file reader (refused when others may
/// read or write it).
fn read_secret(key: &str, path: &std::path::Path) -> Result<Zeroizing<String>, String> {
    crate::secret::read_line(key, path).map_err(|e| e.to_string())
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

/// Why a connection could not be set up, and at which step.
struct ConnectError {
    step: &'static str,
    smtp: Option<lettre::transport::smtp::Error>,
    message: String,
}

impl ConnectError {
    fn smtp(step: &'static str) -> impl Fn(lettre::transport::smtp::Error) -> ConnectError {
        move |e| ConnectError {
            step,
            message: e.to_string(),
            smtp: Some(e),
        }
    }

    fn other(step: &'static str) -> impl Fn(String) -> ConnectError {
        move |message| ConnectError {
            step,
            smtp: None,
            message,
        }
    }

    /// Nothing was sent: whatever the relay said, the message waits (a refused login is
    /// named as such).
    fn into_send_error(self) -> SendError {
        match self.smtp.as_ref().map(classify) {
            Some(SendError::Unavailable(m)) => SendError::Unavailable(m),
            _ => SendError::Unavailable(format!("{}: {}", self.step, self.message)),
        }
    }
}

/// Connects, secures (STARTTLS must be offered unless clear text was chosen) and logs in.
/// The TCP connection is opened with TCP_NODELAY: lettre leaves Nagle on, and every small
/// write then waits for the relay's delayed ACK (about 40 ms a message on Linux). Implicit
/// TLS goes through lettre's own connect, which keeps Nagle.
async fn connect(
    s: &SmtpSettings,
    token: Option<&Zeroizing<String>>,
) -> Result<AsyncSmtpConnection, ConnectError> {
    let hello = ClientId::default();
    let mut conn = if s.tls == SmtpTls::Implicit {
        let wrapper = tls_parameters(s).map_err(ConnectError::other("TLS settings"))?;
        AsyncSmtpConnection::connect_tokio1(
            (s.host.as_str(), s.port),
            Some(s.timeout),
            &hello,
            Some(wrapper),
            None,
        )
        .await
        .map_err(ConnectError::smtp("connect and EHLO"))?
    } else {
        let tcp = tokio::net::TcpStream::connect((s.host.as_str(), s.port));
        let tcp = tokio::time::timeout(s.timeout, tcp)
            .await
            .map_err(|_| format!("no answer within {:?}", s.timeout))
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(ConnectError::other("connect"))?;
        tcp.set_nodelay(true)
            .map_err(|e| ConnectError::other("connect")(e.to_string()))?;
        AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello)
            .await
            .map_err(ConnectError::smtp("connect and EHLO"))?
    };
    if s.tls == SmtpTls::Starttls {
        let params = tls_parameters(s).map_err(ConnectError::other("TLS settings"))?;
        conn.starttls(params, &hello)
            .await
            .map_err(ConnectError::smtp("STARTTLS"))?;
    }
    let credentials = login(s, token).map_err(ConnectError::other("AUTH"))?;
    if let Some((credentials, mechanisms)) = credentials {
        conn.auth(&mechanisms, &credentials)
            .await
            .map_err(ConnectError::smtp("AUTH"))?;
    }
    Ok(conn)
}

/// A connection idle longer than this is checked with NOOP before it carries a message
/// (relays close idle connections).
const IDLE_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// The one connection, reused while it stays open.
struct Slot {
    conn: Option<AsyncSmtpConnection>,
    used: std::time::Instant,
    /// The XOAUTH2 token it logged in with: when the file changes (an external refresher
    /// replaced it), the next message opens a new connection.
    token: Option<Zeroizing<String>>,
}

pub struct Mailer {
    settings: SmtpSettings,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    slot: tokio::sync::Mutex<Slot>,
}

impl Mailer {
    /// Reads the secrets and checks the TLS settings; errors name the key to fix.
    pub fn new(settings: &SmtpSettings) -> Result<Self, String> {
        let from = mailbox("smtp.from", &settings.from)?;
        let reply_to = settings
            .reply_to
            .as_deref()
            .map(|r| mailbox("smtp.reply_to", r))
            .transpose()?;
        check_clear_text(settings)?;
        let token = Self::token(settings)?;
        if settings.tls != SmtpTls::None {
            tls_parameters(settings)?;
        }
        login(settings, token.as_ref())?;
        Ok(Mailer {
            settings: settings.clone(),
            from,
            reply_to,
            slot: tokio::sync::Mutex::new(Slot {
                conn: None,
                used: std::time::Instant::now(),
                token,
            }),
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

    /// Sends one message over the shared connection, within the configured timeout. After
    /// a failure or a deadline the connection is dropped: it may be mid-dialogue, and
    /// reusing it would pair the next message with this one's late replies.
    pub async fn send(&self, mail: &Mail) -> Result<(), SendError> {
        let message = self.message(mail)?;
        let body = Zeroizing::new(message.formatted());
        let mut slot = self.slot.lock().await;
        let sent = self.send_on(&mut slot, message.envelope(), &body);
        match tokio::time::timeout(self.settings.timeout, sent).await {
            Ok(Ok(())) => {
                slot.used = std::time::Instant::now();
                Ok(())
            }
            Ok(Err(e)) => {
                slot.conn = None;
                Err(e)
            }
            Err(_) => {
                slot.conn = None;
                Err(SendError::Unavailable(format!(
                    "no answer from {} within {:?}",
                    self.settings.host, self.settings.timeout
                )))
            }
        }
    }

    async fn send_on(
        &self,
        slot: &mut Slot,
        envelope: &lettre::address::Envelope,
        body: &[u8],
    ) -> Result<(), SendError> {
        let token = Self::token(&self.settings).map_err(SendError::Unavailable)?;
        if token != slot.token {
            slot.conn = None;
            slot.token = token;
        }
        if let Some(conn) = &mut slot.conn {
            if slot.used.elapsed() >= IDLE_CHECK && !conn.test_connected().await {
                slot.conn = None;
            }
        }
        let conn = match &mut slot.conn {
            Some(conn) => conn,
            None => {
                let fresh = connect(&self.settings, slot.token.as_ref()).await;
                slot.conn
                    .insert(fresh.map_err(ConnectError::into_send_error)?)
            }
        };
        conn.send(envelope, body)
            .await
            .map(|_| ())
            .map_err(|e| classify(&e))
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
        let token = Self::token(&self.settings).map_err(|message| ProbeError {
            step: "AUTH",
            message,
        })?;
        let mut conn = connect(&self.settings, token.as_ref())
            .await
            .map_err(|e| ProbeError {
                step: e.step,
                message: e.message,
            })?;
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
