//! Answers control-socket requests by delegating to the admin service, the core and the
//! store. Lives under `daemon` because only the composition root may know all three.

use crate::core::lockout::LockoutKey;
use crate::core::Core;
use crate::crypto::HashPool;
use crate::domain::{parse_expiry, Expiry, Pin, Timestamp};
use crate::frontend::control::proto::{Request, Response, WirePin, WireRow};
use crate::frontend::control::{Handler, Progress, Reply};
use crate::lifecycle::import::ImportRow;
use crate::lifecycle::users::{AdminError, PinChoice, UserAdmin};
use crate::store::Store;
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub struct Admin {
    pub users: UserAdmin,
    pub core: Arc<Core>,
    pub pool: Arc<HashPool>,
    pub store: Arc<dyn Store>,
    pub started: Timestamp,
    pub tcp: Vec<SocketAddr>,
    pub control_socket: PathBuf,
    pub user_max_failures: u32,
    pub mqtt: Option<crate::frontend::mqtt::Link>,
    pub sync: Arc<crate::sync::SyncService>,
    pub workers: crate::worker::Supervisor,
}

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

fn generated(pin: Option<Pin>) -> serde_json::Value {
    match pin {
        Some(pin) => json!({ "generated_pin": pin.expose() }),
        None => json!({}),
    }
}

fn respond(result: Result<serde_json::Value, AdminError>) -> Response {
    match result {
        Ok(data) => Response::ok(data),
        Err(AdminError::Import(problems)) => Response {
            problems,
            ..Response::error("import refused: nothing was applied")
        },
        Err(e) => Response::error(e.to_string()),
    }
}

impl Admin {
    fn status(&self) -> Result<serde_json::Value, AdminError> {
        let now = Timestamp::now();
        let max = self.user_max_failures;
        let locked: Vec<_> = self
            .store
            .lockouts()?
            .into_iter()
            .filter(|(key, s)| {
                s.locked_until.is_some_and(|u| u > now)
                    || (matches!(LockoutKey::parse(key), Some(LockoutKey::User(_)))
                        && s.failures >= max)
            })
            .map(|(key, s)| json!({ "key": key, "failures": s.failures, "until": s.locked_until }))
            .collect();
        Ok(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "started": self.started,
            "uptime_secs": self.started.until(now).as_secs(),
            "users": self.store.user_count()?,
            "tcp": self.tcp,
            "control_socket": self.control_socket,
            "hash_pool": self.pool.stats(),
            "decisions": self.core.stats(),
            "locked": locked,
            "mqtt": self.mqtt.as_ref().map(|m| m.status()),
            "directories": self.sync.status(),
            "workers": self.workers.status(),
            "pin_collisions": self.store.pin_collisions()?,
        }))
    }

    async fn dispatch(
        &self,
        request: Request,
        progress: Progress,
    ) -> Result<serde_json::Value, AdminError> {
        match request {
            Request::Status => self.status(),
            Request::UserAdd {
                user,
                pin,
                generate,
                expires,
            } => {
                let id = user.id.clone();
                let shown = self
                    .users
                    .add(user, choice(pin, generate)?, expiry(expires)?)
                    .await?;
                let mut out = generated(shown);
                out["id"] = json!(id);
                Ok(out)
            }
            Request::UserSetPin {
                id,
                pin,
                generate,
                expires,
            } => {
                let Some(choice) = choice(pin, generate)? else {
                    return Err(AdminError::Invalid(
                        "give a PIN on stdin or --generate".into(),
                    ));
                };
                Ok(generated(
                    self.users.set_pin(&id, choice, expiry(expires)?).await?,
                ))
            }
            Request::UserSetDuress { id, pin } => {
                self.users.set_duress(&id, pin.0).await.map(|_| json!({}))
            }
            Request::UserClearDuress { id } => self.users.clear_duress(&id).map(|_| json!({})),
            Request::UserRemove { id } => self.users.remove(&id).map(|_| json!({})),
            Request::UserDisable { id } => self.users.set_enabled(&id, false).map(|_| json!({})),
            Request::UserEnable { id } => self.users.set_enabled(&id, true).map(|_| json!({})),
            Request::UserShow { id } => Ok(json!(self.users.show(&id)?)),
            Request::UserList => Ok(json!(self.users.list()?)),
            Request::Import { rows, dry_run } => {
                let rows = rows.into_iter().map(row).collect();
                let report = self
                    .users
                    .import(rows, dry_run, &|done, total| {
                        let _ = progress.send((done, total));
                    })
                    .await?;
                Ok(json!(report))
            }
            Request::Audit { last } => Ok(json!(self.store.audit_tail(last.min(100_000))?)),
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

fn row(w: WireRow) -> ImportRow {
    ImportRow {
        line: w.line,
        id: w.id,
        name: w.name,
        email: w.email,
        groups: w.groups,
        pin: w.pin.map(|p| p.0),
        cards: w.cards,
    }
}

impl Handler for Admin {
    fn handle(&self, request: Request, progress: Progress) -> Reply<'_> {
        Box::pin(async move { respond(self.dispatch(request, progress).await) })
    }
}
