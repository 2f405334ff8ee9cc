//! The LDAP/AD directory source (ldap3, rustls): OpenLDAP syncrepl refreshOnly or AD-style
//! change polling behind the `Source` trait. Each fetch runs in its own task, so a panic in
//! ldap3's decoders is a `Malformed` error, not a dead daemon. Knows nothing of the store.

pub mod bind;
mod conn;
mod cursor;
mod fetch;
pub(crate) mod mapping;
mod refresh;
mod settings;

pub use cursor::{Cursor, CursorError};
pub use mapping::{map_entry, parse_time, Entry, GroupIndex, MapError};
pub use settings::{
    EnabledRule, GroupSource, LdapMapping, LdapSettings, Mode, Scope, SettingsError, MAX_PAGE_SIZE,
};

use crate::domain::Timestamp;
use crate::sync::source::{Batch, FetchFuture, Source, SourceError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use std::sync::Arc;

/// Why the source cannot be built from its settings (a startup error).
#[derive(Debug, thiserror::Error)]
pub enum LdapSourceError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("ldap.ca_file `{path}`: {problem}")]
    CaFile { path: String, problem: String },
    #[error("ldap: TLS setup failed: {0}")]
    Tls(String),
}

/// A directory source reading users from an LDAP server or AD domain controller.
pub struct LdapSource {
    settings: Arc<LdapSettings>,
    tls: Option<Arc<ClientConfig>>,
}

impl std::fmt::Debug for LdapSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapSource")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl LdapSource {
    /// Checks the settings and loads the TLS trust anchors (for `ldaps://` or StartTLS).
    pub fn new(settings: LdapSettings) -> Result<Self, LdapSourceError> {
        settings.validate()?;
        let wants_tls = settings.starttls || settings.url.starts_with("ldaps://");
        let tls = if wants_tls {
            Some(tls_config(settings.ca_file.as_deref())?)
        } else {
            None
        };
        Ok(LdapSource {
            settings: Arc::new(settings),
            tls,
        })
    }

    pub fn settings(&self) -> &LdapSettings {
        &self.settings
    }
}

impl Source for LdapSource {
    fn fetch<'a>(&'a self, cursor: Option<&'a [u8]>) -> FetchFuture<'a> {
        let settings = Arc::clone(&self.settings);
        let tls = self.tls.clone();
        let cursor = cursor.map(<[u8]>::to_vec);
        Box::pin(async move {
            let task = AbortOnDrop(tokio::spawn(run(settings, tls, cursor)));
            isolate(task).await
        })
    }
}

/// Aborts the fetch task when the caller stops waiting for it (shutdown).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Awaits the fetch task; a panic inside it (ldap3 decoding server data) is `Malformed`.
async fn isolate(mut task: AbortOnDrop<Result<Batch, SourceError>>) -> Result<Batch, SourceError> {
    match (&mut task.0).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(SourceError::Malformed(
            "the LDAP client failed while decoding the server's reply".to_owned(),
        )),
        Err(_) => Err(SourceError::Unavailable(
            "the fetch was cancelled".to_owned(),
        )),
    }
}

async fn run(
    settings: Arc<LdapSettings>,
    tls: Option<Arc<ClientConfig>>,
    cursor: Option<Vec<u8>>,
) -> Result<Batch, SourceError> {
    let expected = match settings.mode {
        Mode::Syncrepl { .. } => "syncrepl",
        Mode::Poll { .. } => "poll",
    };
    let cursor = match cursor.as_deref().map(Cursor::decode).transpose() {
        Err(e) => return Err(SourceError::CursorExpired(e.to_string())),
        Ok(Some(c)) if c.mode() != expected => {
            let e = CursorError::WrongMode {
                found: c.mode(),
                expected,
            };
            return Err(SourceError::CursorExpired(e.to_string()));
        }
        Ok(c) => c,
    };
    let mut conn = conn::Conn::open(&settings, tls).await?;
    let batch = match settings.mode {
        Mode::Syncrepl { full_every } => {
            let now = Timestamp::now();
            fetch::syncrepl(&mut conn, &settings, cursor, now, full_every).await
        }
        Mode::Poll { .. } => fetch::poll(&mut conn, &settings, cursor, Timestamp::now()).await,
    }?;
    conn.close().await;
    Ok(batch)
}

/// A rustls client configuration with the ring provider (named explicitly so another
/// crate enabling a second provider cannot make the default ambiguous).
fn tls_config(ca_file: Option<&str>) -> Result<Arc<ClientConfig>, LdapSourceError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let ca_error = |problem: String| LdapSourceError::CaFile {
                path: path.to_owned(),
                problem,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| ca_error(format!("cannot read it: {e}")))?;
            for cert in certs {
                let cert = cert.map_err(|e| ca_error(format!("not PEM certificates: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| ca_error(format!("unusable certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(ca_error("holds no certificate".to_owned()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(LdapSourceError::Tls(
                    "no system CA certificates found; set ca_file".to_owned(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| LdapSourceError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests;
