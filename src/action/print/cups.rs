//! The IPP client for CUPS: the only file that names the `ipp` crate (and hyper). Builds
//! Get-Jobs, Get-Printer-Attributes, Release-Job (0x000D) and CUPS-Move-Job (0x400D) with
//! the crate's low-level request API, sends them with a deadline and a credential — over
//! CUPS's domain socket (HTTP/1.1 on a `UnixStream`, as `lp` does) or over TCP — and turns
//! replies into plain values for `print/mod.rs`. Knows nothing about users, terminals or the
//! store.

use super::{CupsAuth, CupsServer, Job, PrintError, PrinterStatus};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use ipp::attribute::IppAttributeName;
use ipp::prelude::*;
use ipp::value::{IppKeyword, IppName, IppString};
use std::path::Path;
use std::time::Duration;
use zeroize::Zeroizing;

/// The largest IPP response read from CUPS (a Get-Jobs of a few thousand jobs fits easily).
const MAX_RESPONSE: usize = 8 << 20;

/// CUPS's "this Get-Jobs which-jobs value is not supported" and friends.
const ATTRIBUTES_NOT_SUPPORTED: u16 = 0x040B;
const BAD_REQUEST: u16 = 0x0400;
const NOT_FOUND: u16 = 0x0406;
const NOT_POSSIBLE: u16 = 0x040C;

/// What a job operation did to one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobAnswer {
    Done,
    /// The job is not in a state the operation applies to (e.g. no longer held).
    NotPossible,
    /// The job is gone.
    NotFound,
}

pub struct Client {
    server: CupsServer,
    auth: CupsAuth,
    timeout: Duration,
}

impl Client {
    pub fn new(server: CupsServer, auth: CupsAuth, timeout: Duration) -> Self {
        Client {
            server,
            auth,
            timeout,
        }
    }

    pub fn queue_uri(&self, queue: &str) -> String {
        match &self.server {
            // cupsd names itself `localhost` to clients on its socket.
            CupsServer::Socket(_) => format!("ipp://localhost/printers/{queue}"),
            CupsServer::Tcp(addr) => format!("ipp://{addr}/printers/{queue}"),
        }
    }

    /// The account the requests are made as (`requesting-user-name`).
    fn account(&self) -> &str {
        match &self.auth {
            CupsAuth::Basic { username, .. } => username,
            CupsAuth::LocalCertificate { .. } => "root",
            CupsAuth::PeerCredentials { username } => username,
            CupsAuth::None { username } => username,
        }
    }

    /// The `Authorization` header value, if any.
    async fn authorization(&self) -> Result<Option<Zeroizing<String>>, PrintError> {
        Ok(match &self.auth {
            CupsAuth::None { .. } => None,
            CupsAuth::Basic { username, password } => {
                let pair = Zeroizing::new(format!("{username}:{}", password.as_str()));
                let encoded = Zeroizing::new(
                    base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()),
                );
                Some(Zeroizing::new(format!("Basic {}", encoded.as_str())))
            }
            CupsAuth::LocalCertificate { cert_file } => {
                // CUPS writes a fresh certificate when it starts: read it for every request.
                let cert =
                    Zeroizing::new(tokio::fs::read_to_string(cert_file).await.map_err(|e| {
                        PrintError::Auth(format!(
                            "cannot read the CUPS local certificate {}: {e}",
                            cert_file.display()
                        ))
                    })?);
                Some(Zeroizing::new(format!("Local {}", cert.trim())))
            }
            // cupsd checks the name against the socket peer's uid.
            CupsAuth::PeerCredentials { username } => {
                Some(Zeroizing::new(format!("PeerCred {username}")))
            }
        })
    }

    fn new_request(&self, op: Operation, queue: &str) -> Result<IppRequestResponse, PrintError> {
        let uri: Uri = self
            .queue_uri(queue)
            .parse()
            .map_err(|_| PrintError::Config(format!("invalid CUPS queue name `{queue}`")))?;
        let mut req = IppRequestResponse::new(IppVersion::v2_0(), op, Some(uri))
            .map_err(|e| PrintError::Protocol(e.to_string()))?;
        let name = IppValue::new_name_without_language(self.account())
            .map_err(|e| PrintError::Protocol(e.to_string()))?;
        req.attributes_mut().add(
            DelimiterTag::OperationAttributes,
            IppAttribute::new(IppAttributeName::REQUESTING_USER_NAME, name),
        );
        Ok(req)
    }

    async fn send(
        &self,
        queue: &str,
        req: IppRequestResponse,
    ) -> Result<IppRequestResponse, PrintError> {
        let authorization = self.authorization().await?;
        let exchange = async {
            match &self.server {
                CupsServer::Socket(path) => {
                    let resource = format!("/printers/{queue}");
                    let body = req.to_bytes();
                    match post_unix(path, &resource, authorization, body.clone()).await {
                        // cupsd replaces its local certificate every few minutes
                        // (RootCertDuration): a request that raced the swap is refused once,
                        // so read the new certificate and ask again.
                        Err(PrintError::Auth(_))
                            if matches!(self.auth, CupsAuth::LocalCertificate { .. }) =>
                        {
                            post_unix(path, &resource, self.authorization().await?, body).await
                        }
                        other => other,
                    }
                }
                CupsServer::Tcp(_) => self.post_tcp(queue, authorization, req).await,
            }
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Err(PrintError::Timeout(self.timeout)),
            Ok(result) => result,
        }
    }

    async fn post_tcp(
        &self,
        queue: &str,
        authorization: Option<Zeroizing<String>>,
        req: IppRequestResponse,
    ) -> Result<IppRequestResponse, PrintError> {
        let uri: Uri = self
            .queue_uri(queue)
            .parse()
            .map_err(|_| PrintError::Config(format!("invalid CUPS queue name `{queue}`")))?;
        let mut builder = AsyncIppClient::builder(uri).request_timeout(self.timeout);
        if let Some(value) = authorization {
            builder = builder.http_header("authorization", value.as_str());
        }
        // The crate parses the answer itself, unchecked (see `ipp_frame.rs`): in its own
        // task, so a decoder panic on a malformed answer is an error, not a lost release.
        let mut exchange =
            AbortOnDrop(tokio::spawn(async move { builder.build().send(req).await }));
        let answer = match (&mut exchange.0).await {
            Ok(answer) => answer,
            Err(e) if e.is_panic() => {
                return Err(PrintError::Protocol(
                    "CUPS's answer is not IPP (the decoder failed on it)".into(),
                ))
            }
            Err(e) => return Err(PrintError::Unreachable(e.to_string())),
        };
        match answer {
            Ok(resp) => Ok(resp),
            Err(IppError::RequestError(code)) => Err(http_error(code)),
            Err(IppError::AsyncClientError(e)) if e.is_timeout() => {
                Err(PrintError::Timeout(self.timeout))
            }
            Err(e) => Err(PrintError::Unreachable(e.to_string())),
        }
    }

    /// printer-state and printer-state-reasons of a queue.
    pub async fn printer_status(&self, queue: &str) -> Result<PrinterStatus, PrintError> {
        let mut req = self.new_request(Operation::GetPrinterAttributes, queue)?;
        let wanted = ["printer-state", "printer-state-reasons"]
            .iter()
            .map(|k| IppValue::Keyword(IppKeyword::new_truncated(*k)))
            .collect();
        req.attributes_mut().add(
            DelimiterTag::OperationAttributes,
            IppAttribute::new(
                IppAttributeName::REQUESTED_ATTRIBUTES,
                IppValue::Array(wanted),
            ),
        );
        printer_status_of(&self.send(queue, req).await?, queue)
    }

    /// The queue's jobs that are held (`pending-held`), or, where the server rejects that
    /// value, every not-completed job (the caller keeps the held ones by `state`).
    pub async fn held_jobs(&self, queue: &str) -> Result<Vec<Job>, PrintError> {
        let resp = self.get_jobs(queue, "pending-held").await?;
        let code = resp.header().operation_or_status as u16;
        let resp = if code == ATTRIBUTES_NOT_SUPPORTED || code == BAD_REQUEST {
            self.get_jobs(queue, "not-completed").await?
        } else {
            resp
        };
        jobs_of(&resp, queue)
    }

    async fn get_jobs(&self, queue: &str, which: &str) -> Result<IppRequestResponse, PrintError> {
        let mut req = self.new_request(Operation::GetJobs, queue)?;
        let attrs = req.attributes_mut();
        attrs.add(
            DelimiterTag::OperationAttributes,
            IppAttribute::new(
                IppName::new_truncated("which-jobs"),
                IppValue::Keyword(IppKeyword::new_truncated(which)),
            ),
        );
        let wanted = ["job-id", "job-state", "job-originating-user-name"]
            .iter()
            .map(|k| IppValue::Keyword(IppKeyword::new_truncated(*k)))
            .collect();
        attrs.add(
            DelimiterTag::OperationAttributes,
            IppAttribute::new(
                IppAttributeName::REQUESTED_ATTRIBUTES,
                IppValue::Array(wanted),
            ),
        );
        self.send(queue, req).await
    }

    /// Release-Job (0x000D) for one job on `queue`.
    pub async fn release(&self, queue: &str, job: i32) -> Result<JobAnswer, PrintError> {
        let req = self.job_request(Operation::ReleaseJob, queue, job)?;
        self.job_answer("Release-Job", queue, req).await
    }

    /// CUPS-Move-Job (0x400D): moves `job` from `from` to the queue `to`.
    pub async fn move_job(&self, from: &str, job: i32, to: &str) -> Result<JobAnswer, PrintError> {
        let mut req = self.job_request(Operation::CupsMoveJob, from, job)?;
        let target = IppValue::Uri(
            IppString::new(self.queue_uri(to)).map_err(|e| PrintError::Protocol(e.to_string()))?,
        );
        req.attributes_mut().add(
            DelimiterTag::JobAttributes,
            IppAttribute::new(IppName::new_truncated("job-printer-uri"), target),
        );
        self.job_answer("CUPS-Move-Job", from, req).await
    }

    fn job_request(
        &self,
        op: Operation,
        queue: &str,
        job: i32,
    ) -> Result<IppRequestResponse, PrintError> {
        let mut req = self.new_request(op, queue)?;
        // The crate writes job-id right after printer-uri, as RFC 8011 §4.1.5 requires.
        req.attributes_mut().add(
            DelimiterTag::OperationAttributes,
            IppAttribute::new(IppAttributeName::JOB_ID, IppValue::Integer(job)),
        );
        Ok(req)
    }

    async fn job_answer(
        &self,
        what: &str,
        queue: &str,
        req: IppRequestResponse,
    ) -> Result<JobAnswer, PrintError> {
        job_answer_of(&self.send(queue, req).await?, what)
    }
}

/// A Get-Printer-Attributes answer as a status (the queue is named in errors).
pub(crate) fn printer_status_of(
    resp: &IppRequestResponse,
    queue: &str,
) -> Result<PrinterStatus, PrintError> {
    let status = resp.header().status_code();
    if !status.is_success() {
        let code = resp.header().operation_or_status as u16;
        return Err(if code == NOT_FOUND {
            PrintError::Config(format!("CUPS has no queue `{queue}`"))
        } else {
            PrintError::Protocol(format!("Get-Printer-Attributes: {status}"))
        });
    }
    let mut out = PrinterStatus::default();
    for group in resp.attributes().groups_of(DelimiterTag::PrinterAttributes) {
        if let Some(a) = group.get("printer-state") {
            out.state = a.value().as_enum().copied().unwrap_or(0);
        }
        if let Some(a) = group.get("printer-state-reasons") {
            out.reasons = strings(a.value());
        }
    }
    Ok(out)
}

/// A Get-Jobs answer as jobs (groups without a `job-id` integer are skipped).
pub(crate) fn jobs_of(resp: &IppRequestResponse, queue: &str) -> Result<Vec<Job>, PrintError> {
    let status = resp.header().status_code();
    if !status.is_success() {
        return Err(PrintError::Protocol(format!(
            "Get-Jobs on `{queue}`: {status}"
        )));
    }
    Ok(resp
        .attributes()
        .groups_of(DelimiterTag::JobAttributes)
        .filter_map(|g| {
            let id = *g.get("job-id")?.value().as_integer()?;
            Some(Job {
                id,
                state: g
                    .get("job-state")
                    .and_then(|a| a.value().as_enum().copied())
                    .unwrap_or(0),
                owner: g
                    .get("job-originating-user-name")
                    .and_then(|a| strings(a.value()).into_iter().next())
                    .unwrap_or_default(),
            })
        })
        .collect())
}

/// A Release-Job or CUPS-Move-Job answer (`what` names the operation in errors).
pub(crate) fn job_answer_of(
    resp: &IppRequestResponse,
    what: &str,
) -> Result<JobAnswer, PrintError> {
    let status = resp.header().status_code();
    match resp.header().operation_or_status as u16 {
        _ if status.is_success() => Ok(JobAnswer::Done),
        NOT_POSSIBLE => Ok(JobAnswer::NotPossible),
        NOT_FOUND => Ok(JobAnswer::NotFound),
        0x0401..=0x0403 => Err(PrintError::Auth(format!(
            "{what} refused ({status}): pinwarden's CUPS account must be in the system group"
        ))),
        _ => Err(PrintError::Protocol(format!("{what}: {status}"))),
    }
}

/// An IPP response body as CUPS sent it (framing checked first: see `ipp_frame.rs`).
pub(crate) fn parse_response(body: Bytes) -> Result<IppRequestResponse, PrintError> {
    super::ipp_frame::check(&body)
        .map_err(|e| PrintError::Protocol(format!("CUPS's answer is not IPP: {e}")))?;
    ipp::parser::IppParser::new(std::io::Cursor::new(body))
        .parse()
        .map_err(|e| PrintError::Protocol(format!("CUPS's answer is not IPP: {e}")))
}

/// An HTTP refusal from CUPS.
fn http_error(code: u16) -> PrintError {
    match code {
        401 | 403 => PrintError::Auth(format!(
            "CUPS answered HTTP {code}: pinwarden's credentials are missing, refused, or not \
             in the system group"
        )),
        _ => PrintError::Protocol(format!("CUPS answered HTTP {code}")),
    }
}

/// One IPP request as an HTTP/1.1 POST on CUPS's domain socket (what libcups does for
/// `lp` and `lpadmin`); one connection per request, closed after the answer.
async fn post_unix(
    socket: &Path,
    resource: &str,
    authorization: Option<Zeroizing<String>>,
    body: Bytes,
) -> Result<IppRequestResponse, PrintError> {
    let unreachable = |e: &dyn std::fmt::Display| {
        PrintError::Unreachable(format!("CUPS at {}: {e}", socket.display()))
    };
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| unreachable(&e))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
    // The connection is driven beside the request and dropped with it (on a timeout too).
    let connection = AbortOnDrop(tokio::spawn(connection));
    let mut request = hyper::Request::post(resource)
        .header(hyper::header::HOST, "localhost")
        .header(hyper::header::CONTENT_TYPE, "application/ipp")
        .header(hyper::header::CONNECTION, "close");
    if let Some(value) = authorization {
        let mut value = hyper::header::HeaderValue::from_str(&value)
            .map_err(|_| PrintError::Auth("the CUPS credential is not a valid header".into()))?;
        value.set_sensitive(true);
        request = request.header(hyper::header::AUTHORIZATION, value);
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| PrintError::Protocol(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| unreachable(&e))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(http_error(status));
    }
    let body: Bytes = Limited::new(response.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| PrintError::Protocol(format!("reading CUPS's answer: {e}")))?
        .to_bytes();
    drop(connection);
    parse_response(body)
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Every text/name/keyword string in a value (a single value or a set of them).
fn strings(value: &IppValue) -> Vec<String> {
    match value {
        IppValue::Array(values) => values.iter().flat_map(strings).collect(),
        IppValue::Keyword(k) => vec![k.as_str().to_string()],
        IppValue::NameWithoutLanguage(n) => vec![n.as_str().to_string()],
        IppValue::NameWithLanguage { name, .. } => vec![name.as_str().to_string()],
        IppValue::TextWithoutLanguage(t) => vec![t.as_ref().to_string()],
        IppValue::TextWithLanguage { text, .. } => vec![text.as_ref().to_string()],
        _ => Vec::new(),
    }
}
