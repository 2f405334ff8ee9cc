//! Validation of the print-release keys into the print action's own types: `[cups]` and the
//! `queue` and `hold_queue` of printer devices. Errors name the key and the fix.

use super::devices::{Device, DeviceKind};
use super::raw::{RawConfig, RawCups};
use super::{absolute, duration_key};
use crate::action::print::{CupsAuthConfig, CupsConfig, CupsServer, PrintQueue};
use crate::domain::DeviceId;
use std::collections::BTreeMap;
use std::time::Duration;

fn queue_name(key: &str, value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= 127
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && !"/#\\?'\"".contains(c));
    if ok {
        Ok(value.to_string())
    } else {
        Err(format!(
            "{key} = {value:?}: use a CUPS queue name (printable, no spaces, / or #)"
        ))
    }
}

/// The print queues of printer devices (`queue`, `hold_queue`).
pub fn validate_queues(
    raw: &RawConfig,
    devices: &BTreeMap<DeviceId, Device>,
) -> Result<Vec<PrintQueue>, String> {
    let mut queues = Vec::new();
    for (i, d) in raw.device.iter().enumerate() {
        let key = format!("device[{i}]");
        let kind = devices.get(&DeviceId(d.id.clone())).map(|d| d.kind);
        match (&d.queue, &d.hold_queue, kind) {
            (None, None, _) => {}
            (None, Some(_), _) => {
                return Err(format!(
                    "{key}.hold_queue needs {key}.queue: the CUPS queue of the printer that \
                     Find-Me jobs are moved to"
                ))
            }
            (Some(_), _, Some(DeviceKind::Door)) => {
                return Err(format!(
                    "{key}.queue: only printer devices have print queues"
                ))
            }
            (Some(q), hold, _) => queues.push(PrintQueue {
                device: DeviceId(d.id.clone()),
                queue: queue_name(&format!("{key}.queue"), q)?,
                hold_queue: hold
                    .as_deref()
                    .map(|h| queue_name(&format!("{key}.hold_queue"), h))
                    .transpose()?,
            }),
        }
    }
    Ok(queues)
}

/// `cups.server`: a domain socket path (a CUPS on this host) or `HOST:PORT`.
fn cups_server(server: Option<&str>) -> Result<CupsServer, String> {
    let server = server.unwrap_or("/run/cups/cups.sock");
    if server.starts_with('/') {
        return Ok(CupsServer::Socket(server.into()));
    }
    if server.contains('/') || !server.contains(':') {
        return Err(format!(
            "cups.server = {server:?}: use the path of CUPS's domain socket for a CUPS on this \
             host (\"/run/cups/cups.sock\"), or HOST:PORT of a remote CUPS (\"print.example:631\")"
        ));
    }
    Ok(CupsServer::Tcp(server.to_string()))
}

/// `cups.auth` with its account and secret: on the domain socket root's local certificate
/// by default, over TCP Basic.
fn cups_auth(raw: &RawCups, on_socket: bool) -> Result<CupsAuthConfig, String> {
    let default_auth = if on_socket {
        "local-certificate"
    } else {
        "basic"
    };
    Ok(match (raw.auth.as_deref().unwrap_or(default_auth), &raw.username) {
        (local @ ("local-certificate" | "peer-credentials"), _) if !on_socket => {
            return Err(format!(
                "cups.auth = \"{local}\" works only on CUPS's domain socket (cupsd refuses its \
                 local credentials over TCP): for a CUPS on this host set cups.server = \
                 \"/run/cups/cups.sock\"; for a remote CUPS use auth = \"basic\""
            ))
        }
        ("local-certificate", _) => CupsAuthConfig::LocalCertificate {
            cert_file: absolute(raw.cert_file.as_deref().unwrap_or("/run/cups/certs/0")),
        },
        ("peer-credentials", _) => CupsAuthConfig::PeerCredentials,
        ("basic", Some(username)) => CupsAuthConfig::Basic {
            username: username.clone(),
            password_file: absolute(raw.password_file.as_deref().ok_or(
                "cups.auth = \"basic\" needs cups.password_file: a file (mode 0600) holding the password",
            )?),
        },
        ("none", Some(username)) => CupsAuthConfig::None {
            username: username.clone(),
        },
        ("basic" | "none", None) => {
            return Err(
                "cups.username is missing: name the CUPS account pinwarden acts as (a remote \
                 CUPS needs auth = \"basic\" with an account in its SystemGroup)"
                    .into(),
            )
        }
        (other, _) => {
            return Err(format!(
                "cups.auth = \"{other}\": use \"local-certificate\" (root, on CUPS's socket), \
                 \"peer-credentials\" (an account in CUPS's SystemGroup, on its socket), \
                 \"basic\" (an account in CUPS's SystemGroup, with a password) or \"none\""
            ))
        }
    })
}

/// `[cups]`, with defaults: the local scheduler on its domain socket, as root with its
/// local certificate.
pub fn validate_cups(raw: Option<&RawCups>) -> Result<CupsConfig, String> {
    let empty = RawCups {
        server: None,
        auth: None,
        username: None,
        password_file: None,
        cert_file: None,
        timeout: None,
        release_timeout: None,
        max_backoff: None,
    };
    let raw = raw.unwrap_or(&empty);
    let server = cups_server(raw.server.as_deref())?;
    let on_socket = matches!(server, CupsServer::Socket(_));
    let auth = cups_auth(raw, on_socket)?;
    let timeout = duration_key(
        "cups.timeout",
        raw.timeout.as_deref(),
        Duration::from_secs(5),
    )?;
    let release_timeout = duration_key(
        "cups.release_timeout",
        raw.release_timeout.as_deref(),
        Duration::from_secs(20),
    )?;
    let max_backoff = duration_key(
        "cups.max_backoff",
        raw.max_backoff.as_deref(),
        Duration::from_secs(30),
    )?;
    if timeout.is_zero() || release_timeout < timeout {
        return Err(
            "cups.timeout must be above zero and at most cups.release_timeout (defaults 5s and 20s)"
                .into(),
        );
    }
    Ok(CupsConfig {
        server,
        auth,
        timeout,
        release_timeout,
        max_backoff: max_backoff.max(Duration::from_secs(1)),
    })
}
