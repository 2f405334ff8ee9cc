//! Email delivery: SMTP settings (`settings.rs`), the lettre transport (`transport.rs`, the
//! only file naming lettre), the sealing of queued bodies (`seal.rs`), templates
//! (`templates.rs`), pacing and lanes (`pace.rs`) and the outbox worker (`outbox.rs`).
//! Knows nothing of users, devices or the store: the daemon hands it finished messages and
//! a `MailQueue` over its store.

pub mod outbox;
pub mod pace;
mod reply;
pub mod seal;
pub mod settings;
pub mod templates;
pub mod transport;

pub use outbox::{Currency, MailQueue, MailStatus, MailWorker, OutboxHandle, OutboxSettings};
pub use pace::Pacer;
pub use seal::{SealError, Sealer};
pub use settings::{MailSettings, PinDelivery, SmtpAuth, SmtpSettings, SmtpTls};
pub use templates::{MailVars, Rendered, TemplateError, Templates, PREVIEW_PIN};
pub use transport::{Mail, Mailer, SendError};
