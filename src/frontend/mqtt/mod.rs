//! The MQTT frontend (the only module naming rumqttc): access-controller requests (unlock,
//! self-change, forgotten PIN) and replies, Zigbee2MQTT keypads, door-relay commands (`Link` is the actuators' sink), the
//! retained `online`/`offline` status and, on a second connection, the event stream from the
//! durable outbox. Both connections are supervised workers (reconnect with back-off and
//! jitter); every event loop is polled all the time by its own task, so publishing never
//! blocks. Calls the core, never the store.

mod events;
pub mod proto;
mod requests;
mod session;
pub mod settings;

pub use events::{EventOutbox, Pending};

use crate::action::door::CommandSink;
use crate::core::Core;
use crate::domain::Timestamp;
use crate::frontend::throttle::Throttle;
use crate::worker::{Context, Next, Settings, Worker};
use proto::ReplayGuard;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, LastWill, MqttOptions,
    Packet, QoS, TlsConfiguration, Transport,
};
use serde::Serialize;
use settings::MqttConfig;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::task::TaskTracker;

/// Requests decided at once; beyond it a request is answered `busy`.
const MAX_IN_FLIGHT: usize = 64;
const REPLAY_CAPACITY: usize = 100_000;

/// What `status` shows about the broker connections.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MqttStatus {
    pub broker: String,
    pub connected: bool,
    pub events_connected: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected_since: Option<Timestamp>,
    pub reconnects: u64,
    pub outbox_pending: u64,
    pub outbox_dropped: u64,
    pub requests: u64,
    pub refused: u64,
}

/// The shared handle: the current client (while connected) and the status.
#[derive(Clone, Default)]
pub struct Link {
    client: Arc<Mutex<Option<AsyncClient>>>,
    status: Arc<Mutex<MqttStatus>>,
}

impl Link {
    pub fn status(&self) -> MqttStatus {
        lock(&self.status).clone()
    }

    fn update(&self, f: impl FnOnce(&mut MqttStatus)) {
        f(&mut lock(&self.status));
    }

    fn client(&self) -> Option<AsyncClient> {
        lock(&self.client).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl CommandSink for Link {
    /// QoS 0 and only while connected: a command queued during an outage would open the
    /// door long after the grant.
    fn publish_command(&self, topic: &str, payload: &[u8]) -> Result<(), String> {
        let client = self
            .client()
            .ok_or_else(|| "the MQTT broker is not connected".to_string())?;
        client
            .try_publish(topic, QoS::AtMostOnce, false, payload.to_vec())
            .map_err(|e| format!("cannot queue the MQTT command: {e}"))
    }
}

/// The largest packet the broker may send us before rumqttc drops the connection. Far
/// above any request (our own layer refuses those over `proto::MAX_PAYLOAD`, audited, the
/// connection kept): a big publish on a request topic is bad input, not a way to take
/// pinwarden offline. A packet above this costs a reconnect and the broker session (see
/// `session::oversize`); a broker shared with untrusted publishers should cap `max_packet_size`
/// below it.
pub const MAX_INCOMING_PACKET: usize = 4 * 1024 * 1024;

/// Connection options shared by both connections. The password comes from `password_file`.
/// `persistent`: the broker keeps the session (subscriptions and QoS 1 messages) while we
/// are away, so requests published during a reconnect are delivered after it.
fn options(
    cfg: &MqttConfig,
    client_id: String,
    password: Option<&str>,
    persistent: bool,
) -> Result<MqttOptions, String> {
    let mut opts = MqttOptions::new(client_id, cfg.host.clone(), cfg.port);
    opts.set_keep_alive(cfg.keep_alive);
    opts.set_clean_session(!persistent);
    opts.set_max_packet_size(MAX_INCOMING_PACKET, 16 * 1024);
    if let (Some(user), Some(password)) = (&cfg.username, password) {
        opts.set_credentials(user.clone(), password.to_string());
    } else if let Some(user) = &cfg.username {
        opts.set_credentials(user.clone(), String::new());
    }
    if cfg.tls {
        let transport = match &cfg.ca_file {
            Some(path) => {
                let ca = std::fs::read(path)
                    .map_err(|e| format!("cannot read mqtt.ca_file {}: {e}", path.display()))?;
                Transport::Tls(TlsConfiguration::Simple {
                    ca,
                    alpn: None,
                    client_auth: None,
                })
            }
            None => Transport::tls_with_default_config(),
        };
        opts.set_transport(transport);
    }
    Ok(opts)
}

/// Reads `password_file` (trailing newline trimmed) and checks that `ca_file` is readable:
/// at startup, so a typo fails fast with the key named.
pub fn read_password(cfg: &MqttConfig) -> Result<Option<String>, String> {
    let password = match &cfg.password_file {
        None => None,
        Some(path) => {
            let text =
                crate::secret::read_line("mqtt.password_file", path).map_err(|e| e.to_string())?;
            Some(text.as_str().to_string())
        }
    };
    options(cfg, cfg.client_id.clone(), password.as_deref(), true)?;
    Ok(password)
}

/// Says what went wrong in words an operator can act on.
fn describe(cfg: &MqttConfig, e: &ConnectionError) -> String {
    let broker = format!("{}:{}", cfg.host, cfg.port);
    match e {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => format!(
            "the broker {broker} refused the login (bad username or password, or not authorised): check mqtt.username and mqtt.password_file"
        ),
        ConnectionError::ConnectionRefused(code) => {
            format!("the broker {broker} refused the connection: {code:?}")
        }
        ConnectionError::Io(io) => format!("cannot reach the broker {broker}: {io}"),
        ConnectionError::NetworkTimeout => format!("the broker {broker} did not answer in time"),
        ConnectionError::Tls(t) => format!("TLS with the broker {broker} failed: {t} (check mqtt.ca_file)"),
        other => format!("connection to the broker {broker} lost: {other}"),
    }
}

/// Polls an event loop in its own task until it fails, forwarding events: nothing the
/// frontend does can stall the connection's keep-alive.
fn spawn_poller(
    mut eventloop: EventLoop,
    tracker: &TaskTracker,
) -> mpsc::Receiver<Result<Event, ConnectionError>> {
    // Without TCP_NODELAY a reply waits for the broker's delayed ACK (40 ms on Linux).
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    network.set_connection_timeout(10);
    eventloop.set_network_options(network);
    let (tx, rx) = mpsc::channel(256);
    tracker.spawn(async move {
        loop {
            let event = eventloop.poll().await;
            let failed = event.is_err();
            if tx.send(event).await.is_err() || failed {
                return;
            }
        }
    });
    rx
}

/// Everything the request side needs.
struct Frontend {
    cfg: Arc<MqttConfig>,
    core: Arc<Core>,
    link: Link,
    replay: Mutex<ReplayGuard>,
    slots: Arc<Semaphore>,
    refusals: Mutex<Throttle<(String, String)>>,
}

/// How both connections retry; the back-off restarts at every ConnAck.
pub const RETRY: Settings = Settings::new(Duration::from_secs(1), Duration::from_secs(60));

/// The request/reply connection as a supervised worker: a unit of work is one connection,
/// from connect to failure (the supervisor backs off and rebuilds it) or to shutdown (then
/// it publishes `offline`).
pub struct Requests {
    front: Arc<Frontend>,
    password: Option<String>,
    status_topic: String,
    tracker: TaskTracker,
    /// The last connection ended on an oversize packet: discard the session first.
    discard: bool,
}

impl Requests {
    pub fn new(
        cfg: Arc<MqttConfig>,
        password: Option<String>,
        core: Arc<Core>,
        link: Link,
    ) -> Self {
        link.update(|s| s.broker = format!("{}:{}", cfg.host, cfg.port));
        Requests {
            status_topic: format!("{}/status", cfg.prefix),
            front: Arc::new(Frontend {
                replay: Mutex::new(ReplayGuard::new(cfg.replay_window, REPLAY_CAPACITY)),
                slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
                refusals: Mutex::new(Throttle::new(1024)),
                cfg,
                core,
                link,
            }),
            password,
            tracker: TaskTracker::new(),
            discard: false,
        }
    }

    pub fn name(&self) -> String {
        format!(
            "mqtt requests ({}:{})",
            self.front.cfg.host, self.front.cfg.port
        )
    }

    fn lost(&self, message: String) -> String {
        let link = &self.front.link;
        *lock(&link.client) = None;
        link.update(|s| {
            s.connected = false;
            s.connected_since = None;
            s.last_error = Some(message.clone());
        });
        message
    }
}

impl Worker for Requests {
    async fn work(&mut self, cx: &Context) -> Result<Next, String> {
        let (front, link) = (&self.front, &self.front.link);
        if self.discard {
            session::discard(&front.cfg, self.password.as_deref(), &self.tracker)
                .await
                .map_err(|e| self.lost(e))?;
            self.discard = false;
            tracing::warn!("MQTT: discarded the broker session after an oversize packet");
        }
        // Checked at startup; a CA file removed since then is reported and retried.
        let mut opts = options(
            &front.cfg,
            front.cfg.client_id.clone(),
            self.password.as_deref(),
            true,
        )
        .map_err(|e| self.lost(e))?;
        opts.set_last_will(LastWill::new(
            &self.status_topic,
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        let (client, eventloop) = AsyncClient::new(opts, 256);
        let mut events = spawn_poller(eventloop, &self.tracker);
        loop {
            let event = tokio::select! {
                _ = cx.shutdown().cancelled() => {
                    if link.client().is_some() {
                        say_offline(&client, &self.status_topic, &mut events).await;
                    }
                    *lock(&link.client) = None;
                    return Ok(Next::Done);
                }
                event = events.recv() => event,
            };
            match event {
                Some(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                    cx.healthy();
                    on_connected(front, &client, &self.status_topic);
                }
                Some(Ok(Event::Incoming(Packet::Publish(p)))) => {
                    Arc::clone(front).dispatch(p, &client, &self.tracker)
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    if let Some(size) = session::oversize(&e) {
                        self.discard = true;
                        let broker = format!("{}:{}", front.cfg.host, front.cfg.port);
                        let reason = format!(
                            "a packet of {size} bytes, above the {} MiB limit: the broker \
                             session is discarded so it is not sent again (requests queued \
                             behind it are lost; set the broker's max_packet_size)",
                            MAX_INCOMING_PACKET >> 20
                        );
                        front.refuse(&broker, &reason);
                    }
                    return Err(self.lost(describe(&front.cfg, &e)));
                }
                None => return Err(self.lost("the MQTT event loop ended".into())),
            }
        }
    }

    async fn stop(&mut self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// On every ConnAck: subscribe (again: harmless when the broker kept the session, needed
/// when it did not), say `online`.
fn on_connected(front: &Frontend, client: &AsyncClient, status_topic: &str) {
    let cfg = &front.cfg;
    let mut topics = vec![format!("{}/request/+", cfg.prefix)];
    topics.extend(
        cfg.zigbee_keypads
            .keys()
            .map(|name| format!("{}/{}", cfg.zigbee_base_topic, name)),
    );
    for topic in topics {
        if let Err(e) = client.try_subscribe(topic, QoS::AtLeastOnce) {
            tracing::error!(error = %e, "cannot subscribe");
        }
    }
    let _ = client.try_publish(status_topic, QoS::AtLeastOnce, true, "online");
    *lock(&front.link.client) = Some(client.clone());
    front.link.update(|s| {
        if s.connected_since.is_some() || s.last_error.is_some() {
            s.reconnects += 1;
        }
        s.connected = true;
        s.connected_since = Some(Timestamp::now());
        s.last_error = None;
    });
    tracing::info!(broker = %format!("{}:{}", cfg.host, cfg.port), "MQTT connected");
}

/// Publishes the retained `offline` and disconnects, waiting briefly for it to go out.
async fn say_offline(
    client: &AsyncClient,
    status_topic: &str,
    events: &mut mpsc::Receiver<Result<Event, ConnectionError>>,
) {
    let _ = client.try_publish(status_topic, QoS::AtLeastOnce, true, "offline");
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = events.recv().await {}
    })
    .await;
}

pub use events::Events;
