//! The composition root: the only module that knows every other. Opens the pepper and the
//! store, builds the core and the admin service, binds every listener (failing fast), runs
//! the tasks under one cancellation token, reports readiness to systemd and shuts down
//! within a deadline.

mod actions;
mod admin;
mod sync;

use crate::action::door::Door;
use crate::action::print::PrintRelease;
use crate::config::Config;
use crate::core::decide::{AccessRules, DeviceRules};
use crate::core::Core;
use crate::crypto::{HashPool, Hasher, Pepper};
use crate::domain::{AuditKind, Timestamp};
use crate::frontend::{control, keypad, mqtt, tcp};
use crate::lifecycle::users::UserAdmin;
use crate::store::{OpenParams, SledStore, Store};
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);
const AUDIT_PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Runs the daemon until `shutdown` is cancelled (by a signal in production, by the test
/// in tests). Startup errors are returned with context saying how to fix them.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let started = Timestamp::now();
    std::fs::create_dir_all(&config.state_dir).with_context(|| {
        format!(
            "cannot create state_dir {}: create it or fix its permissions",
            config.state_dir.display()
        )
    })?;
    let (store, hasher) = open_store(&config)?;
    let pool = Arc::new(HashPool::new(
        Arc::clone(&hasher),
        config.security.hash_workers,
        config.security.hash_queue,
    ));
    let tasks = TaskTracker::new();
    let mqtt = match &config.mqtt {
        Some(m) => {
            let password = mqtt::read_password(m).map_err(anyhow::Error::msg)?;
            // From now on every audit event is also queued for the events topic.
            store.set_outbox_limit(m.outbox_max);
            Some((Arc::new(m.clone()), password, mqtt::Link::default()))
        }
        None => None,
    };
    let sink = mqtt
        .as_ref()
        .map(|(_, _, link)| Arc::new(link.clone()) as Arc<dyn crate::action::door::CommandSink>);
    let doors = config
        .doors
        .iter()
        .map(|d| {
            let audit = actions::door_audit(Arc::clone(&store), d.device.clone());
            (
                d.device.clone(),
                Door::spawn(d.clone(), sink.clone(), audit, shutdown.clone(), &tasks),
            )
        })
        .collect();
    let print = match &config.cups {
        Some(cups) => Some(
            PrintRelease::new(cups, &config.print_queues)
                .context("cannot set up print release ([cups])")?,
        ),
        None => None,
    };
    let actions = Arc::new(actions::DaemonActions {
        doors,
        print,
        store: Arc::clone(&store),
    });
    let (devices, access) = access_rules(&config);
    let engines = sync::engines(&config, &store, &pool, &hasher)?;
    let stale = Arc::new(crate::core::Staleness::default());
    let core = Arc::new(
        Core::new(
            Arc::clone(&store),
            Arc::clone(&pool),
            devices,
            access,
            config.lockout,
            actions,
        )
        .with_staleness(Arc::clone(&stale)),
    );
    let users = UserAdmin::new(
        Arc::clone(&store),
        Arc::clone(&pool),
        config.policy.pin_policy(),
        config.policy.generated_length,
        config.policy.default_expiry,
        config.lockout,
    );

    let mut listeners = Vec::new();
    let mut bound = Vec::<SocketAddr>::new();
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
    let control_listener = control::bind(&config.control_socket).await?;
    let directories = sync::start(engines, stale, &tasks, &shutdown);

    let admin = Arc::new(admin::Admin {
        users,
        core: Arc::clone(&core),
        pool: Arc::clone(&pool),
        store: Arc::clone(&store),
        started,
        tcp: bound.clone(),
        control_socket: config.control_socket.clone(),
        user_max_failures: config.lockout.user_max_failures,
        mqtt: mqtt.as_ref().map(|(_, _, link)| link.clone()),
        sync: directories,
    });
    let windows = Arc::new(tcp::CardWindows::new());
    for (listener, cfg) in listeners {
        tasks.spawn(tcp::serve(
            listener,
            cfg,
            Arc::clone(&core),
            Arc::clone(&windows),
            shutdown.clone(),
        ));
    }
    for cfg in config.tcp.iter().filter(|t| t.listen.is_none()) {
        tasks.spawn(tcp::dial(
            Arc::new(cfg.clone()),
            Arc::clone(&core),
            Arc::clone(&windows),
            shutdown.clone(),
        ));
    }
    for k in &config.keypads {
        tasks.spawn(keypad::serve(
            Arc::new(k.clone()),
            Arc::clone(&core),
            shutdown.clone(),
        ));
    }
    if let Some((cfg, password, link)) = mqtt {
        let outbox = Arc::new(actions::StoreOutbox(Arc::clone(&store)));
        tasks.spawn(mqtt::serve_events(
            Arc::clone(&cfg),
            password.clone(),
            outbox,
            link.clone(),
            shutdown.clone(),
        ));
        tasks.spawn(mqtt::serve(
            cfg,
            password,
            Arc::clone(&core),
            link,
            shutdown.clone(),
        ));
    }
    tasks.spawn(control::serve(control_listener, admin, shutdown.clone()));
    tasks.spawn(prune_audit(
        Arc::clone(&store),
        config.store.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(watchdog(shutdown.clone()));

    store.record(AuditKind::Daemon {
        action: crate::domain::DaemonAction::Started,
    });
    tracing::info!(tcp = ?bound, control = %config.control_socket.display(), "pinwarden ready");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

    shutdown.cancelled().await;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    tracing::info!("shutting down: finishing requests in flight");
    tasks.close();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "some connections did not finish within {SHUTDOWN_DEADLINE:?}; closing them"
        );
    }
    store.record(AuditKind::Daemon {
        action: crate::domain::DaemonAction::Stopped,
    });
    let _ = std::fs::remove_file(&config.control_socket);
    let flushed = tokio::task::spawn_blocking(move || store.flush()).await;
    if !matches!(flushed, Ok(Ok(()))) {
        tracing::error!("final store flush failed");
    }
    tracing::info!("stopped");
    Ok(())
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
    let opened = SledStore::open(
        &config.store_dir,
        OpenParams {
            pepper_fingerprint: &pepper.fingerprint(),
            hash_params: &params.to_string(),
            cache_capacity_mib: config.store.cache_capacity_mib,
        },
    )?;
    if opened.created {
        tracing::info!(path = %config.store_dir.display(), "created a new store");
    }
    let hasher = Hasher::new(pepper, opened.salt, params).map_err(anyhow::Error::msg)?;
    Ok((Arc::new(opened.store), Arc::new(hasher)))
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

/// Keeps the audit log within its retention; an idle wait is interrupted by shutdown,
/// a prune in progress is not.
async fn prune_audit(
    store: Arc<dyn Store>,
    cfg: crate::config::StoreConfig,
    shutdown: CancellationToken,
) {
    loop {
        let retention = Duration::from_secs(u64::from(cfg.audit_retention_days) * 86_400);
        let cutoff =
            Timestamp::from_millis(Timestamp::now().millis() - retention.as_millis() as i64);
        let store2 = Arc::clone(&store);
        let max = cfg.audit_max_entries;
        match tokio::task::spawn_blocking(move || store2.prune_audit(cutoff, max)).await {
            Ok(Ok(n)) if n > 0 => tracing::info!(removed = n, "pruned old audit events"),
            Ok(Err(e)) => tracing::warn!(error = %e, "audit pruning failed"),
            _ => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(AUDIT_PRUNE_EVERY) => {}
        }
    }
}

/// Pings systemd's watchdog at half its interval when `WatchdogSec=` is set.
async fn watchdog(shutdown: CancellationToken) {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let every = Duration::from_micros(usec / 2);
    loop {
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
