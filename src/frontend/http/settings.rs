//! The settings of the `[http]` block: the HTTP frontend's own types, which `config` parses
//! into. Plain data; knows nothing of config files.

use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Clone, Debug, Serialize)]
pub struct HttpSettings {
    /// Where the listener binds (`127.0.0.1:8080`; port 0 picks one).
    pub listen: SocketAddr,
    /// TLS from PEM files (certificate chain, private key); plain HTTP without.
    pub tls: Option<TlsFiles>,
    /// The address people reach this listener at, for links in mail
    /// (`https://pins.example.org`); by default `http(s)://<listen>`.
    pub public_url: Option<String>,
    /// Connections served at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Serve `/metrics` (Prometheus text format); on by default.
    pub metrics: bool,
    /// Connections one peer address may hold at once; more are refused at accept (503).
    pub max_per_source: usize,
    /// Admin API tokens on plain HTTP at a non-loopback address (behind a TLS-terminating
    /// proxy); refused at start otherwise.
    pub allow_plain_http: bool,
    /// Admin API bearer tokens (`[[http.token]]`); the API is served only with one.
    pub tokens: Vec<ApiToken>,
}

/// An admin API token: its name (audit records say `token:<name>`), the 0600 file holding
/// it, and what it may do.
#[derive(Clone, Debug, Serialize)]
pub struct ApiToken {
    pub name: String,
    pub file: PathBuf,
    pub scope: TokenScope,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// Read-only requests (the control socket's read role).
    Read,
    /// Everything.
    Admin,
}

#[derive(Clone, Debug, Serialize)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl HttpSettings {
    /// Whether browsers reach the listener over https: it speaks TLS, or a TLS-terminating
    /// proxy is in front (`public_url` is https). Cookies are `Secure` then.
    pub fn browser_sees_https(&self) -> bool {
        self.tls.is_some()
            || self
                .public_url
                .as_deref()
                .is_some_and(|u| u.to_ascii_lowercase().starts_with("https://"))
    }

    /// The base of links in mail, without a trailing slash, for the address actually bound.
    pub fn base_url(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{bound}")
            }
        }
    }
}
