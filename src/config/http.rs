//! `[http]`: the HTTP listener (off without the block).

use super::absolute;
use super::raw::RawHttp;
use crate::frontend::http::{HttpSettings, TlsFiles};

pub fn validate_http(raw: &RawHttp) -> Result<HttpSettings, String> {
    let listen = raw.listen.parse().map_err(|_| {
        format!(
            "http.listen = \"{}\": give an address and port such as \"127.0.0.1:8080\" \
             (or \"0.0.0.0:443\" with tls_cert and tls_key)",
            raw.listen
        )
    })?;
    let tls = match (&raw.tls_cert, &raw.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: absolute(cert),
            key: absolute(key),
        }),
        _ => {
            return Err(
                "http: give both tls_cert and tls_key (PEM files) for TLS, or neither for \
                 plain HTTP"
                    .into(),
            )
        }
    };
    let public_url = match &raw.public_url {
        None => None,
        Some(url) => {
            let ok = (url.starts_with("https://") || url.starts_with("http://"))
                && !url.contains(|c: char| c.is_whitespace() || c.is_control())
                && !url.contains(['?', '#']);
            if !ok {
                return Err(format!(
                    "http.public_url = \"{url}\": give the address people open, such as \
                     \"https://pins.example.org\" (no query or fragment)"
                ));
            }
            Some(url.trim_end_matches('/').to_string())
        }
    };
    let max_connections = raw.max_connections.unwrap_or(256);
    if max_connections == 0 {
        return Err("http.max_connections = 0: give at least 1 (default 256)".into());
    }
    Ok(HttpSettings {
        listen,
        tls,
        public_url,
        max_connections,
        metrics: raw.metrics.unwrap_or(true),
    })
}
