//! The composition root: the only module that knows every other. Opens the pepper and the
//! store, builds the core and the admin service, binds every listener (failing fast), runs
//! every worker under one supervisor and cancellation token, reports readiness to systemd
//! and shuts down within a deadline.

mod actions;
mod admin;
mod budget;
mod files;
mod http;
mod mail;
mod metrics;
mod reload;
mod selfservice;
mod sync;
mod web;
mod workers;

use crate::action::door::{CommandSink, Door};
use crate::action::print::PrintRelease;
use crate::config::Config;
use crate::core::decide::{AccessRules, DeviceRules};
use crate::core::Core;
use crate::crypto::{HashPool, Hasher, Pepper};
use crate::domain::{AuditKind, Timestamp};
use crate::frontend::card_hold::CardHold;
use crate::frontend::{control, keypad, mqtt, tcp};
use crate::store::{
    CheckReport, GuardSettings, GuardedStore, OpenError, OpenParams, RepairReport, SledStore, Store,
};
use crate::worker::Supervisor;
use anyhow::Context;
pub use files::private_umask;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// Runs the daemon until `shutdown` is cancelled (by a signal in production, by the test
/// in tests) and its tasks have drained. Startup errors are returned with context saying
/// how to fix them.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    start(config, shutdown).await?.drained().await;
    Ok(())
}

/// A started daemon: listeners bound, workers running, readiness reported.
pub struct Running {
    /// The TCP listeners' addresses (port 0 resolved).
    pub tcp: Vec<SocketAddr>,
    store: Arc<dyn Store>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    control_socket: PathBuf,
    /// SIGHUP (caught from the start, so an early one cannot kill the daemon) and what a
    /// reload replaces; taken by `reload_on_hangup`.
    hangup: Option<(tokio::signal::unix::Signal, reload::Reloader)>,
}

/// Starts the daemon under `shutdown` and returns once it is ready; `Running::drained`
/// then waits for shutdown and the drain. Nothing keeps running after a startup error.
pub async fn start(config: Config, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let started = Timestamp::now();
    files::private_umask();
    for warning in crate::config::warnings(&config) {
        tracing::warn!("config: {warning}");
    }
    files::prepare_state_dir(&config)?;
    let (store, hasher) = open_store(&config)?;
    let tasks = TaskTracker::new();
    // Our own token, so a failed start can stop what it already spawned.
    let token = shutdown.child_token();
    let supervisor = Supervisor::new(token.clone(), tasks.clone());
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot catch SIGHUP")?;
    let wired = wire(&config, &store, &hasher, &supervisor, started).await;
    let (bound, reloader) = match wired {
        Ok(wired) => wired,
        Err(e) => {
            token.cancel();
            tasks.close();
            tasks.wait().await;
            return Err(e);
        }
    };
    store.record(AuditKind::Daemon {
        action: crate::domain::DaemonAction::Started,
    });
    tracing::info!(tcp = ?bound, control = %config.control_socket.display(), "pinwarden ready");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    Ok(Running {
        tcp: bound,
        store,
        tasks,
        shutdown: token,
        control_socket: config.control_socket.clone(),
        hangup: Some((hangup, reloader)),
    })
}

impl Running {
    /// From now on a SIGHUP re-reads `path` and applies what it can (`reload.rs`).
    pub fn reload_on_hangup(&mut self, path: PathBuf) {
        if let Some((signal, reloader)) = self.hangup.take() {
            let shutdown = self.shutdown.clone();
            self.tasks
                .spawn(reload::on_hangup(signal, path, reloader, shutdown));
        }
    }

    /// Waits for shutdown, lets requests in flight finish (within a deadline), audits the
    /// stop and flushes the store.
    pub async fn drained(self) {
        self.shutdown.cancelled().await;
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        tracing::info!("shutting down: finishing requests in flight");
        self.tasks.close();
        if tokio::time::timeout(SHUTDOWN_DEADLINE, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "some connections did not finish within {SHUTDOWN_DEADLINE:?}; closing them"
            );
        }
        self.store.record(AuditKind::Daemon {
            action: crate::domain::DaemonAction::Stopped,
        });
        let _ = std::fs::remove_file(&self.control_socket);
        let store = self.store;
        let flushed = tokio::task::spawn_blocking(move || store.flush()).await;
        if !matches!(flushed, Ok(Ok(()))) {
            tracing::error!("final store flush failed");
        }
        tracing::info!("stopped");
    }
}

/// `pinwarden store check`: reads every record of the store, which must not be in use.
pub fn store_check(config: &Config) -> Result<CheckReport, OpenError> {
    SledStore::check(&config.store_dir)
}

/// `pinwarden store repair`: backs the store up beside it, then rebuilds it from every
/// record that can still be read. The store must not be in use.
pub fn store_repair(config: &Config) -> Result<RepairReport, OpenError> {
    SledStore::repair(&config.store_dir)
}

/// Builds the services, binds every listener (failing fast) and starts every worker and
/// server; returns the TCP addresses.
async fn wire(
    config: &Config,
    store: &Arc<dyn Store>,
    hasher: &Arc<Hasher>,
    supervisor: &Supervisor,
    started: Timestamp,
) -> anyhow::Result<(Vec<SocketAddr>, reload::Reloader)> {
    let pool = Arc::new(HashPool::new(
        Arc::clone(hasher),
        config.security.hash_workers,
        config.security.hash_queue,
    ));
    let mqtt = mqtt_parts(config, store)?;
    let stale = Arc::new(crate::core::Staleness::default());
    let http_bound = match &config.http {
        Some(settings) => Some((
            crate::frontend::http::bind(settings).await?,
            http::api_tokens(settings)?,
        )),
        None => None,
    };
    let reveal = web::reveal(config, http_bound.as_ref().map(|(b, _)| b.addr), hasher);
    let mut life = mail::build(config, store, &pool, hasher, reveal)?;
    let recovery = crate::lifecycle::selfservice::RecoveryHandle::default();
    let self_service = selfservice::build(config, store, &life, &recovery);
    let parts = (mqtt.as_ref(), &stale, self_service);
    let core = build_core(config, store, &pool, supervisor, parts)?;
    let pins = crate::sync::weak::PinCheck {
        policy: config.policy.pin_policy(),
        weak: config.lifecycle.weak_upstream,
    };
    let engines = sync::engines(config, store, &pool, hasher, &pins)?;
    let (listeners, bound) = bind_tcp(config).await?;
    let access = control::access::Access::resolve(&config.control).map_err(anyhow::Error::msg)?;
    let control_listener = control::bind(&config.control_socket).await?;
    let directories = sync::start(engines, stale, supervisor);
    let rules = life.users.live_rules();
    // Every device's budget derived from its population before the first attempt.
    let budget = budget::Budget::new(config, store, core.live_lockout());
    if let Err(e) = budget.recount_now().await {
        tracing::error!(
            "lockout budget: {e}; the configured [lockout] applies until a count succeeds"
        );
    }
    let reloader = reload::Reloader {
        started: config.clone(),
        rules,
        budget: Arc::clone(&budget),
        templates: life.templates.clone(),
    };
    let admin = Arc::new(admin::Admin {
        users: Arc::clone(&life.users),
        core: Arc::clone(&core),
        pool: Arc::clone(&pool),
        store: Arc::clone(store),
        started,
        tcp: bound.clone(),
        http: http_bound.as_ref().map(|(b, _)| b.addr),
        control_socket: config.control_socket.clone(),
        odds: Arc::clone(&budget),
        mqtt: mqtt.as_ref().map(|m| m.link.clone()),
        sync: directories,
        workers: supervisor.clone(),
        templates: Some(life.templates.clone()),
        mail: config.mail.clone(),
        outbox: config.smtp.is_some().then(|| life.outbox.clone()),
        generation: config.lifecycle.generation,
    });
    mail::spawn_outbox(&mut life, supervisor);
    mail::spawn_sweeper(config, store, &life, supervisor);
    selfservice::spawn_recovery(config, store, &life, recovery, supervisor);
    spawn_frontends(config, &core, listeners, mqtt, store, supervisor);
    let server = control::Server::new(control_listener, admin.clone(), access);
    supervisor.spawn(server.name(), control::ACCEPT_RETRY, server);
    if let (Some((listener, tokens)), Some(settings)) = (http_bound, &config.http) {
        let page = config
            .web
            .as_ref()
            .map(|w| {
                let base = settings.base_url(listener.addr);
                web::build(config, w, store, &life, hasher, base)
            })
            .transpose()?;
        http::spawn(
            listener,
            settings,
            store,
            supervisor,
            (&admin, tokens, page),
        );
    }
    workers::spawn(config, store, &pool, supervisor);
    workers::spawn_flood_counts(&core, supervisor);
    budget::spawn(&budget, supervisor);
    Ok((bound, reloader))
}

/// The MQTT connection settings, password and shared link, when `[mqtt]` is configured.
struct MqttParts {
    cfg: Arc<crate::frontend::mqtt::settings::MqttConfig>,
    password: Option<String>,
    link: mqtt::Link,
}

fn mqtt_parts(config: &Config, store: &Arc<dyn Store>) -> anyhow::Result<Option<MqttParts>> {
    let Some(m) = &config.mqtt else {
        return Ok(None);
    };
    let password = mqtt::read_password(m).map_err(anyhow::Error::msg)?;
    // From now on every audit event is also queued for the events topic.
    store.set_outbox_limit(m.outbox_max);
    Ok(Some(MqttParts {
        cfg: Arc::new(m.clone()),
        password,
        link: mqtt::Link::default(),
    }))
}

/// What the core is built with beyond the config: the MQTT link (door commands), the
/// stale directory sources and self-service.
type CoreParts<'a> = (
    Option<&'a MqttParts>,
    &'a Arc<crate::core::Staleness>,
    crate::core::selfservice::SelfService,
);

/// The door workers, print release and the core with the daemon's `Actions`.
fn build_core(
    config: &Config,
    store: &Arc<dyn Store>,
    pool: &Arc<HashPool>,
    supervisor: &Supervisor,
    (mqtt, stale, self_service): CoreParts<'_>,
) -> anyhow::Result<Arc<Core>> {
    let sink = mqtt.map(|m| Arc::new(m.link.clone()) as Arc<dyn CommandSink>);
    let doors = config
        .doors
        .iter()
        .map(|d| {
            let audit = actions::door_audit(Arc::clone(store), d.device.clone());
            let door = Door::spawn(d.clone(), sink.clone(), audit, supervisor);
            (d.device.clone(), door)
        })
        .collect();
    let print = match &config.cups {
        Some(cups) => Some(
            PrintRelease::new(cups, &config.print_queues)
                .context("cannot set up print release ([cups])")?
                .with_status(supervisor.register("print release (CUPS)")),
        ),
        None => None,
    };
    let actions = Arc::new(actions::DaemonActions {
        doors,
        print,
        store: Arc::clone(store),
    });
    let (devices, access) = access_rules(config);
    let core = Core::new(
        Arc::clone(store),
        Arc::clone(pool),
        devices,
        access,
        config.lockout,
        actions,
    )
    .with_staleness(Arc::clone(stale))
    .with_self_service(self_service)
    .with_credentials(
        config
            .devices
            .iter()
            .filter(|(_, d)| d.credentials.len() < crate::core::odds::Mode::ALL.len())
            .map(|(id, d)| (id.clone(), d.credentials.clone()))
            .collect(),
    );
    Ok(Arc::new(core))
}

type Listeners = Vec<(
    tokio::net::TcpListener,
    Arc<crate::frontend::tcp::settings::TcpConfig>,
)>;

async fn bind_tcp(config: &Config) -> anyhow::Result<(Listeners, Vec<SocketAddr>)> {
    let mut listeners = Vec::new();
    let mut bound = Vec::new();
    for t in &config.tcp {
        let Some(listen) = t.listen else { continue };
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| {
                format!("cannot listen on {listen} (tcp.listen): is the port in use or privileged?")
            })?;
        bound.push(listener.local_addr()?);
        listeners.push((listener, Arc::new(t.clone())));
    }
    Ok((listeners, bound))
}

/// TCP listeners, dial readers, keypads and the MQTT connections.
fn spawn_frontends(
    config: &Config,
    core: &Arc<Core>,
    listeners: Listeners,
    mqtt: Option<MqttParts>,
    store: &Arc<dyn Store>,
    supervisor: &Supervisor,
) {
    let holds = Arc::new(CardHold::new());
    for (listener, cfg) in listeners {
        let listener = tcp::Listener::new(listener, cfg, Arc::clone(core), Arc::clone(&holds));
        supervisor.spawn(listener.name(), tcp::ACCEPT_RETRY, listener);
    }
    for cfg in config.tcp.iter().filter(|t| t.listen.is_none()) {
        for reader in tcp::DialReader::all(&Arc::new(cfg.clone()), core, &holds) {
            supervisor.spawn(reader.name(), tcp::DIAL_RETRY, reader);
        }
    }
    for k in &config.keypads {
        let keypad = keypad::Keypad::new(Arc::new(k.clone()), Arc::clone(core));
        supervisor.spawn(keypad.name(), keypad::RETRY, keypad);
    }
    if let Some(MqttParts {
        cfg,
        password,
        link,
    }) = mqtt
    {
        let outbox = Arc::new(actions::StoreOutbox(Arc::clone(store)));
        let events = mqtt::Events::new(Arc::clone(&cfg), password.clone(), outbox, link.clone());
        supervisor.spawn(events.name(), mqtt::RETRY, events);
        let requests = mqtt::Requests::new(cfg, password, Arc::clone(core), link);
        supervisor.spawn(requests.name(), mqtt::RETRY, requests);
    }
}

fn open_store(config: &Config) -> anyhow::Result<(Arc<dyn Store>, Arc<Hasher>)> {
    let (pepper_path, may_create) = config
        .security
        .pepper
        .resolve()
        .map_err(anyhow::Error::msg)?;
    // A pepper is only ever created together with a new store: for an existing store a
    // missing pepper is an error (a mistyped path must not mint a useless new one).
    let store_exists = config.store_dir.join("conf").exists();
    let (pepper, created) = Pepper::load(&pepper_path, may_create && !store_exists)
        .with_context(|| if store_exists {
            format!("the store {} exists, so its pepper must too: restore it or fix security.pepper_file", config.store_dir.display())
        } else {
            "cannot set up the pepper".to_string()
        })?;
    if created {
        tracing::warn!(path = %pepper_path.display(),
            "generated a new pepper: back it up with the store; PINs cannot be verified without it");
    }
    let params = config.security.argon2;
    let guard = GuardSettings {
        store_dir: config.store_dir.clone(),
        state_dir: config.state_dir.clone(),
        reserve_mib: config.store.reserve_mib,
        pepper_fingerprint: pepper.fingerprint(),
        hash_params: params.to_string(),
        cache_capacity_mib: config.store.cache_capacity_mib,
    };
    let opened = SledStore::open(
        &config.store_dir,
        OpenParams {
            pepper_fingerprint: &guard.pepper_fingerprint,
            hash_params: &guard.hash_params,
            cache_capacity_mib: guard.cache_capacity_mib,
        },
    )?;
    if opened.created {
        tracing::info!(path = %config.store_dir.display(), "created a new store");
    }
    let hasher = Hasher::new(pepper, opened.salt, params).map_err(anyhow::Error::msg)?;
    let store = GuardedStore::new(opened.store, guard);
    // The lockout clock never starts behind a lockout on record: a wall clock set back
    // while the daemon was stopped cannot stretch a lock.
    let latest = store.lockouts().unwrap_or_default().into_iter();
    if let Some(t) = latest.filter_map(|(_, s)| s.last_failure).max() {
        crate::core::clock::not_before(t);
    }
    Ok((Arc::new(store), Arc::new(hasher)))
}

/// The decision rules per device and the cross-device schedules, from the configuration.
fn access_rules(
    config: &Config,
) -> (
    std::collections::BTreeMap<crate::domain::DeviceId, DeviceRules>,
    AccessRules,
) {
    let schedule = |name: &String| config.access.schedules.get(name).map(|s| s.parsed.clone());
    let devices = config
        .devices
        .iter()
        .map(|(id, d)| {
            let rules = DeviceRules {
                allow_groups: d.allow_groups.clone(),
                schedule: d.schedule.as_ref().and_then(schedule),
                fail_open: d.fail_open,
                deny_when_stale: match d.kind {
                    crate::config::DeviceKind::Printer => config.sync.on_stale_printer,
                    crate::config::DeviceKind::Door => config.sync.on_stale_door,
                } == crate::config::StaleAction::Deny,
            };
            (id.clone(), rules)
        })
        .collect();
    let group_schedules = config
        .access
        .group_schedules
        .iter()
        .filter_map(|(group, name)| Some((group.clone(), schedule(name)?)))
        .collect();
    (
        devices,
        AccessRules {
            group_schedules,
            tz: config.access.tz.clone(),
        },
    )
}
