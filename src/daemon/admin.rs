//! Answers control-socket requests by delegating to the admin service, the core and the
//! store. Lives under `daemon` because only the composition root may know all three.

use crate::core::Core;
use crate::crypto::HashPool;
use crate::domain::{parse_expiry, Expiry, MailKind, Pin, QueuedMail, Timestamp, UserOrigin};
use crate::frontend::control::access::Role;
use crate::frontend::control::proto::{ErrorKind, Request, Response, WirePin};
use crate::frontend::control::{Handler, Principal, Progress, Reply, Session};
use crate::lifecycle::users::{AdminError, ImportOptions, PinChoice, PinLimits, UserAdmin};
use crate::store::Store;
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[path = "admin_import.rs"]
mod admin_import;
#[path = "admin_lockout.rs"]
mod admin_lockout;

pub struct Admin {
    pub users: Arc<UserAdmin>,
    /// The mail outbox worker (None without `[smtp]`).
    pub outbox: Option<crate::notify::OutboxHandle>,
    pub generation: crate::lifecycle::settings::Generation,
    pub core: Arc<Core>,
    pub pool: Arc<HashPool>,
    pub store: Arc<dyn Store>,
    pub started: Timestamp,
    pub tcp: Vec<SocketAddr>,
    /// The HTTP listener's address (None without `[http]`).
    pub http: Option<SocketAddr>,
    pub control_socket: PathBuf,
    /// Each device's attack odds with the real user counts (`status`).
    pub odds: Arc<super::budget::Budget>,
    pub mqtt: Option<crate::frontend::mqtt::Link>,
    pub sync: Arc<crate::sync::SyncService>,
    pub workers: crate::worker::Supervisor,
    /// Loaded mail templates (`mail preview`); None when mail is not configured.
    pub templates: Option<crate::live::Live<crate::notify::Templates>>,
    pub mail: crate::notify::MailSettings,
}

/// The PIN `mail preview` renders with: an obvious example, never a real PIN.
const PREVIEW_PIN: &str = "123456";

fn choice(pin: Option<WirePin>, generate: bool) -> Result<Option<PinChoice>, AdminError> {
    match (pin, generate) {
        (Some(_), true) => Err(AdminError::Invalid(
            "give a PIN or --generate, not both".into(),
        )),
        (Some(WirePin(pin)), false) => Ok(Some(PinChoice::Given(pin))),
        (None, true) => Ok(Some(PinChoice::Generate)),
        (None, false) => Ok(None),
    }
}

fn expiry(text: Option<String>) -> Result<Option<Expiry>, AdminError> {
    text.map(|t| parse_expiry(&t))
        .transpose()
        .map_err(AdminError::Invalid)
}

/// `--expires` of `user set-validity`: `never`, a duration from now (the ranges of PIN
/// expiry) or a date / RFC 3339 time in the future.
fn validity_until(text: &str, now: Timestamp) -> Result<Option<Timestamp>, AdminError> {
    if let Ok(expiry) = parse_expiry(text) {
        return Ok(expiry.expires_at(now));
    }
    let at = Timestamp::parse(text.trim()).ok_or_else(|| {
        AdminError::Invalid(format!(
            "--expires `{text}`: use never, 1h to 48h, 1d to 180d, a date (2026-12-31) or a \
             time (2026-12-31T18:00:00Z)"
        ))
    })?;
    if at <= now {
        return Err(AdminError::Invalid(format!(
            "--expires `{text}` is in the past: give a later date"
        )));
    }
    Ok(Some(at))
}

fn mail_row(m: &QueuedMail) -> serde_json::Value {
    json!({
        "seq": m.seq,
        "lane": m.lane,
        "kind": m.kind,
        "user": m.user,
        "to": m.to,
        "created_at": m.created_at,
        "attempts": m.attempts,
        "not_before": m.not_before,
        "last_error": m.last_error,
    })
}

fn respond(result: Result<serde_json::Value, AdminError>) -> Response {
    use crate::lifecycle::policy::PolicyViolation;
    let kind = match &result {
        Ok(data) => return Response::ok(data),
        Err(AdminError::Import(_)) | Err(AdminError::Policy(_)) => ErrorKind::Policy,
        Err(AdminError::NoSuchUser(_)) => ErrorKind::NotFound,
        Err(AdminError::UserExists(_)) => ErrorKind::Conflict,
        Err(AdminError::Invalid(_)) => ErrorKind::Invalid,
        Err(AdminError::Store(_)) => ErrorKind::Unavailable,
        Err(AdminError::Busy(_)) => ErrorKind::Busy,
        Err(AdminError::NotDurable(_)) => ErrorKind::NotDurable,
    };
    match result {
        Err(AdminError::Import(problems)) => Response {
            problems,
            ..Response::refused(kind, "import refused: nothing was applied")
        },
        Err(AdminError::Policy(PolicyViolation::NotUnique)) => {
            Response::refused(ErrorKind::Conflict, PolicyViolation::NotUnique.to_string())
        }
        Err(e) => Response::refused(kind, e.to_string()),
        Ok(_) => unreachable!("answered above"),
    }
}

impl Admin {
    /// The answer to a PIN change: the PIN when generated (shown once), its expiry read
    /// back from the store, and whether the directory's PIN will replace it.
    fn pin_answer(&self, id: &str, pin: Option<Pin>) -> Result<serde_json::Value, AdminError> {
        let user = self.store.user(id)?;
        let expires_at = user
            .as_ref()
            .and_then(|u| u.pin.as_ref())
            .and_then(|p| p.expires_at);
        let upstream = user.is_some_and(|u| u.origin == UserOrigin::Upstream);
        let mut out = json!({ "id": id, "expires_at": expires_at, "upstream": upstream });
        if let Some(pin) = pin {
            out["generated_pin"] = json!(pin.expose());
        }
        Ok(out)
    }

    fn mail_preview(&self, template: &str, id: &str) -> Result<serde_json::Value, AdminError> {
        let Some(kind) = MailKind::from_template(template) else {
            let names: Vec<&str> = MailKind::ALL.iter().map(|k| k.template()).collect();
            return Err(AdminError::Invalid(format!(
                "no template `{template}`: use one of {}",
                names.join(", ")
            )));
        };
        let Some(templates) = &self.templates else {
            return Err(AdminError::Invalid(
                "mail is not configured: add [smtp] (and optionally [mail]) and restart".into(),
            ));
        };
        let user = self
            .store
            .user(id)?
            .ok_or_else(|| AdminError::NoSuchUser(id.into()))?;
        let vars = crate::notify::MailVars {
            pin: Some(zeroize::Zeroizing::new(PREVIEW_PIN.to_string())),
            pin_expiration: user.pin.as_ref().and_then(|p| p.expires_at),
            username: user.id,
            name: user.name,
            ..Default::default()
        };
        let rendered = templates
            .get()
            .render(kind, &vars)
            .map_err(|e| AdminError::Invalid(e.to_string()))?;
        Ok(json!({
            "template": template,
            "subject": rendered.subject,
            "text": rendered.text.as_str(),
            "html": rendered.html.as_ref().map(|h| h.as_str()),
            "time_zone": self.mail.time_zone,
        }))
    }

    /// Answers even while the store is closed for a reopen (its fields are then null or
    /// empty and `not_ready` says why).
    fn status(&self) -> Result<serde_json::Value, AdminError> {
        // Lockout times are on the lockout clock (monotonic since start).
        let now = crate::core::clock::now();
        let locked: Vec<_> = self
            .store
            .lockouts()
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, s)| s.locked_until.is_some_and(|u| u > now))
            .map(|(key, s)| json!({ "key": key, "failures": s.failures, "until": s.locked_until }))
            .collect();
        let not_ready = super::workers::not_ready(self.store.as_ref(), &self.workers);
        // Status answers even while the store is closed for a reopen: what cannot be read
        // is left empty rather than failing the whole answer.
        let (odds, odds_warnings) = self.odds.report();
        let mut warnings = self.warnings().unwrap_or_default();
        warnings.extend(odds_warnings);
        Ok(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "ready": not_ready.is_empty(),
            "not_ready": not_ready,
            "store": self.store.write_health(),
            "started": self.started,
            "uptime_secs": self.started.until(now).as_secs(),
            "users": self.store.user_count().ok(),
            "tcp": self.tcp,
            "http": self.http,
            "control_socket": self.control_socket,
            "hash_pool": self.pool.stats(),
            "decisions": self.core.stats(),
            "locked": locked,
            "mqtt": self.mqtt.as_ref().map(|m| m.status()),
            "directories": self.sync.status(),
            "workers": self.workers.status(),
            "pin_collisions": self.store.pin_collisions().unwrap_or_default(),
            "mail": self.mail_status().unwrap_or_default(),
            "odds": odds,
            "warnings": warnings,
        }))
    }

    /// Depth and oldest message per lane, the worker's last error and paused lanes.
    fn mail_status(&self) -> Result<serde_json::Value, AdminError> {
        let Some(outbox) = &self.outbox else {
            return Ok(serde_json::Value::Null);
        };
        let lanes: serde_json::Map<String, serde_json::Value> = self
            .store
            .mail_depth()?
            .into_iter()
            .map(|(lane, d)| (lane.name().to_string(), json!(d)))
            .collect();
        let worker = outbox.status();
        let paused: serde_json::Map<String, serde_json::Value> = worker
            .paused
            .iter()
            .map(|(lane, until)| (lane.name().to_string(), json!(until)))
            .collect();
        Ok(json!({
            "lanes": lanes,
            "paused": paused,
            "last_error": worker.last_error,
            "last_error_at": worker.last_error_at,
            "last_sent_at": worker.last_sent_at,
            "sent": worker.sent,
        }))
    }

    /// What only the running daemon can see: users a PIN cannot reach.
    fn warnings(&self) -> Result<Vec<String>, AdminError> {
        use crate::lifecycle::settings::Generation;
        let mut out = Vec::new();
        if self.generation == Generation::Auto {
            // A count and the first ten ids: never the whole directory in memory.
            let (mut count, mut some) = (0usize, Vec::new());
            crate::store::each_user(self.store.as_ref(), |u| {
                if u.pin.is_none() && u.email.as_deref().unwrap_or("").is_empty() {
                    count += 1;
                    if some.len() < 10 {
                        some.push(u.id);
                    }
                }
                Ok::<_, AdminError>(())
            })?;
            if count > 0 {
                out.push(format!(
                    "{count} user(s) without a PIN have no email address, so generation = \"auto\" \
                     cannot deliver one: {}{}",
                    some.join(", "),
                    if count > some.len() {
                        ", …"
                    } else {
                        ""
                    }
                ));
            }
        }
        Ok(out)
    }

    async fn dispatch(
        &self,
        request: Request,
        progress: Progress,
        caller: &Principal,
    ) -> Result<serde_json::Value, AdminError> {
        match request {
            Request::Status => self.status(),
            Request::UserAdd {
                user,
                pin,
                generate,
                expires,
                uses,
                windows,
            } => {
                let id = user.id.clone();
                let limits = PinLimits { uses, windows };
                let (choice, expiry) = (choice(pin, generate)?, expiry(expires)?);
                let shown = self.users.add_limited(user, choice, expiry, limits).await?;
                self.pin_answer(&id, shown)
            }
            Request::UserSetPin {
                id,
                pin,
                generate,
                expires,
                uses,
                windows,
            } => {
                let Some(choice) = choice(pin, generate)? else {
                    return Err(AdminError::Invalid(
                        "give a PIN on stdin or --generate".into(),
                    ));
                };
                let limits = PinLimits { uses, windows };
                let expiry = expiry(expires)?;
                let shown = self
                    .users
                    .set_pin_limited(&id, choice, expiry, limits)
                    .await?;
                self.pin_answer(&id, shown)
            }
            Request::UserSetDuress { id, pin } => {
                self.users.set_duress(&id, pin.0).await.map(|_| json!({}))
            }
            Request::UserClearDuress { id } => self.users.clear_duress(&id).map(|_| json!({})),
            Request::UserRemove { id } => self.users.remove(&id).map(|_| json!({})),
            Request::UserDisable { id } => self.users.set_enabled(&id, false).map(|_| json!({})),
            Request::UserEnable { id } => self.users.set_enabled(&id, true).map(|_| json!({})),
            Request::UserShow { id } => Ok(json!(self.users.show(&id)?)),
            // Heavy reads (every user; up to 200 000 audit events scanned) run on the
            // blocking pool, never on the runtime's threads.
            Request::UserList => {
                let users = Arc::clone(&self.users);
                blocking(move || Ok(json!(users.list()?))).await
            }
            Request::UserSetValidity { id, expires } => {
                let until = validity_until(&expires, Timestamp::now())?;
                self.users.set_validity(&id, until)?;
                Ok(json!({ "id": id, "expires_at": until }))
            }
            Request::GuestAdd { sponsor, guest } => {
                let id = guest.id.clone();
                let added = self.users.guest_add(&sponsor, guest).await?;
                let mut out =
                    json!({ "id": id, "sponsor": sponsor, "valid_until": added.valid_until });
                if let Some(pin) = added.shown {
                    out["generated_pin"] = json!(pin.expose());
                }
                Ok(out)
            }
            Request::GuestList { sponsor } => {
                Ok(json!(self.users.guest_list(sponsor.as_deref())?))
            }
            Request::GuestExtend {
                id,
                sponsor,
                valid_for,
            } => {
                let until = self
                    .users
                    .guest_extend(&id, sponsor.as_deref(), &valid_for)?;
                Ok(json!({ "id": id, "valid_until": until }))
            }
            Request::GuestEnd { id, sponsor } => self
                .users
                .guest_end(&id, sponsor.as_deref())
                .map(|_| json!({ "id": id })),
            Request::MailList => {
                let rows: Vec<_> = self.store.mail_all()?.iter().map(mail_row).collect();
                Ok(json!(rows))
            }
            Request::MailPreview { template, user } => self.mail_preview(&template, &user),
            // Streamed on the connection: see `handle`.
            Request::Import { .. } => Err(AdminError::Invalid("import needs its session".into())),
            Request::Audit { last } => {
                let store = Arc::clone(&self.store);
                blocking(move || Ok(json!(store.audit_tail(last.min(100_000))?))).await
            }
            Request::AuditQuery { query } => {
                let store = Arc::clone(&self.store);
                blocking(move || Ok(json!(store.audit_query(&query)?))).await
            }
            Request::LockoutList => self.lockout_list(),
            Request::LockoutClear { key } => self.lockout_clear(&key, caller),
            Request::Sync {
                source,
                full,
                force,
            } => {
                let opts = crate::sync::engine::RunOptions { full, force };
                let results = self
                    .sync
                    .trigger(source.as_deref(), opts, Some(progress))
                    .await
                    .map_err(AdminError::Invalid)?;
                let results: Vec<_> = results
                    .into_iter()
                    .map(|(name, r)| match r {
                        Ok(summary) => json!({ "source": name, "ok": true, "summary": summary }),
                        Err(error) => json!({ "source": name, "ok": false, "error": error }),
                    })
                    .collect();
                Ok(json!(results))
            }
        }
    }
}

/// Runs a store read on the blocking pool.
async fn blocking(
    read: impl FnOnce() -> Result<serde_json::Value, AdminError> + Send + 'static,
) -> Result<serde_json::Value, AdminError> {
    tokio::task::spawn_blocking(read)
        .await
        .unwrap_or_else(|e| Err(AdminError::Store(format!("the read failed: {e}"))))
}

impl Handler for Admin {
    /// A caller refused at a frontend's door (a wrong admin API token), throttled there.
    fn refused(&self, frontend: &str, peer: SocketAddr, reason: String) {
        self.store.record(crate::domain::AuditKind::Refused {
            frontend: frontend.into(),
            peer: peer.to_string(),
            reason,
        });
    }

    /// Refuses what the caller's credentials do not allow (audited); runs the rest as the
    /// caller (`by` in its admin records). Every answer to a request that may write leaves
    /// after the store is flushed.
    fn handle(&self, request: Request, session: Session) -> Reply<'_> {
        Box::pin(async move {
            if !session.role.permits(&request) {
                return self.refuse(&session);
            }
            let by = session.caller.by();
            crate::lifecycle::actor::acting(by, self.handle_permitted(request, session)).await
        })
    }
}

impl Admin {
    async fn handle_permitted(&self, request: Request, session: Session) -> Response {
        let writes = durable::writes(&request);
        let result = if let Request::Import {
            dry_run,
            check_unique,
        } = request
        {
            let options = ImportOptions {
                dry_run,
                check_unique,
            };
            let mut session = session;
            admin_import::import(&self.users, options, &mut session).await
        } else {
            self.dispatch(request, session.progress, &session.caller)
                .await
        };
        if !writes {
            return respond(result);
        }
        // A user added, enabled, given a PIN or groups may change a device's budget.
        self.odds.poke();
        respond(durable::durable(&self.store, result).await)
    }

    /// The answer and audit record of a request the caller may not make.
    fn refuse(&self, session: &Session) -> Response {
        let reads = "only read (status, user show/list, audit, mail list)";
        let (message, key) = match (&session.caller, session.role) {
            (Principal::Token(name), _) => (
                format!(
                    "token {name} may {reads}: to allow it, give it scope = \"admin\" in its \
                     [[http.token]] block"
                ),
                "its [[http.token]] scope",
            ),
            (Principal::Peer(c), Role::Read) => {
                let key = "control.admin_uids or a group in control.admin_groups";
                (
                    format!("uid {} may {reads}: to allow it, add it to {key}", c.uid),
                    key,
                )
            }
            (Principal::Peer(c), _) => {
                let key = "control.admin_uids, control.admin_groups or control.read_groups";
                let may = "not use the control socket";
                (
                    format!("uid {} may {may}: to allow it, add it to {key}", c.uid),
                    key,
                )
            }
        };
        let who = session.caller.describe();
        tracing::warn!(caller = %who, "admin request refused: {message}");
        self.store.record(crate::domain::AuditKind::Admin {
            action: crate::domain::AdminAction::Refused,
            user: None,
            detail: Some(format!("{who}: not allowed by {key}")),
            by: Some(session.caller.by()),
        });
        Response::refused(ErrorKind::Forbidden, message)
    }
}

#[path = "admin_durable.rs"]
mod durable;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_pool_and_a_change_not_flushed_have_their_own_kinds() {
        let busy = respond(Err(AdminError::from(crate::crypto::PoolBusy)));
        assert_eq!(busy.kind, Some(ErrorKind::Busy));
        assert!(busy.error.unwrap().contains("try again"));
        let lost = respond(Err(AdminError::NotDurable("not on disk".into())));
        assert_eq!(lost.kind, Some(ErrorKind::NotDurable));
        let store = respond(Err(AdminError::Store("read-only".into())));
        assert_eq!(store.kind, Some(ErrorKind::Unavailable));
    }
}
