//! `[http]`: the HTTP listener (off without the block).

use super::absolute;
use super::raw::RawHttp;
use crate::frontend::http::{ApiToken, HttpSettings, TlsFiles, TokenScope};

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
    let max_per_source = raw.max_per_source.unwrap_or(16.min(max_connections));
    if !(1..=max_connections).contains(&max_per_source) {
        return Err(format!(
            "http.max_per_source = {max_per_source}: use 1 to max_connections \
             ({max_connections})"
        ));
    }
    let tokens = tokens(&raw.token)?;
    let listen: std::net::SocketAddr = listen;
    if !tokens.is_empty() && tls.is_none() && !listen.ip().is_loopback() && !raw.allow_plain_http {
        return Err(format!(
            "http: [[http.token]] on plain HTTP at {listen} would send admin tokens in clear \
             text: give tls_cert and tls_key, listen on a loopback address, or, behind a \
             TLS-terminating proxy, set allow_plain_http = true"
        ));
    }
    Ok(HttpSettings {
        listen,
        tls,
        public_url,
        max_connections,
        metrics: raw.metrics.unwrap_or(true),
        max_per_source,
        allow_plain_http: raw.allow_plain_http,
        tokens,
    })
}

/// `[[http.token]]`: unique plain names, a file, a scope of `read` or `admin`.
fn tokens(raw: &[super::raw::RawHttpToken]) -> Result<Vec<ApiToken>, String> {
    let mut out: Vec<ApiToken> = Vec::new();
    for t in raw {
        let plain = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if t.name.is_empty() || t.name.len() > 64 || !t.name.chars().all(plain) {
            return Err(format!(
                "http.token.name = \"{}\": use 1 to 64 letters, digits, `-`, `_` or `.` \
                 (audit records name it as token:<name>)",
                t.name
            ));
        }
        if out.iter().any(|o| o.name == t.name) {
            return Err(format!(
                "http.token.name = \"{}\" is given twice: give each token its own name",
                t.name
            ));
        }
        let scope = match t.scope.as_str() {
            "read" => TokenScope::Read,
            "admin" => TokenScope::Admin,
            other => {
                return Err(format!(
                    "http.token.scope = \"{other}\" (token {}): use \"read\" or \"admin\"",
                    t.name
                ))
            }
        };
        out.push(ApiToken {
            name: t.name.clone(),
            file: absolute(&t.file),
            scope,
        });
    }
    Ok(out)
}
