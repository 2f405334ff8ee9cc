//! Email delivery: SMTP settings (`settings.rs`), the lettre transport (`transport.rs`, the
//! only file naming lettre) and the sealing of queued bodies (`seal.rs`). Knows nothing of
//! users, devices or the store: callers hand it finished messages.

pub mod seal;
pub mod settings;
pub mod templates;
pub mod transport;

pub use seal::{SealError, Sealer};
pub use settings::{MailSettings, SmtpAuth, SmtpSettings, SmtpTls};
pub use templates::{MailVars, Rendered, TemplateError, Templates};
pub use transport::{Mail, Mailer, SendError};
