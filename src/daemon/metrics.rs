//! The `/metrics` registry: wires what each module already keeps into prometheus-client
//! collectors read at scrape time. The values stay with their owners — the core counts
//! decisions and tracks locks, the hash pool times argon2 and counts BUSY, sync, the mail
//! worker, the MQTT link and the supervisor keep their status — and a scrape reads them
//! (`Snapshot::gather`: O(devices × reasons + sources + lanes + workers + locks held),
//! never a walk of the users) and encodes them (`encode`, pure). Label values come from
//! the configuration or closed vocabularies: no user id, PIN, tag or card ever appears.

use super::admin::Admin;
use crate::crypto::HistogramSnapshot;
use crate::domain::Timestamp;
use crate::worker::State;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, EncodeMetric,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// The registry `/metrics` renders: every metric named `pinwarden_…`.
pub fn registry(admin: &Arc<Admin>) -> Registry {
    let mut registry = Registry::with_prefix("pinwarden");
    registry.register_collector(Box::new(Scrape(Arc::clone(admin))));
    registry
}

/// Reads the daemon's parts at each scrape.
struct Scrape(Arc<Admin>);

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scrape")
    }
}

impl Collector for Scrape {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode(&Snapshot::gather(&self.0), encoder)
    }
}

/// One decision cell: device, outcome, reason (`""` for grant and BUSY), count.
type DecisionCell = (String, &'static str, &'static str, u64);

/// Everything a scrape shows, read at one moment.
#[derive(Debug)]
pub(super) struct Snapshot {
    version: &'static str,
    started: Timestamp,
    now: Timestamp,
    decisions: Vec<DecisionCell>,
    argon2: Vec<(&'static str, HistogramSnapshot)>,
    hash_in_flight: u64,
    hash_capacity: u64,
    hash_busy: u64,
    lockouts_active: Option<u64>,
    users: Option<u64>,
    /// (directory, last success, last result)
    directories: Vec<(String, Option<Timestamp>, &'static str)>,
    /// (lane, queued, oldest, paused); empty without `[smtp]`.
    mail: Vec<(&'static str, u64, Option<Timestamp>, bool)>,
    mail_sent: Option<u64>,
    /// (requests connected, events connected, reconnects), with `[mqtt]`.
    mqtt: Option<(bool, bool, u64)>,
    /// (worker, healthy, consecutive failures)
    workers: Vec<(String, bool, u32)>,
}

impl Snapshot {
    fn gather(admin: &Admin) -> Snapshot {
        let pool = admin.pool.stats();
        let decisions = admin
            .core
            .decision_counts()
            .into_iter()
            .map(|c| (c.device.to_string(), c.outcome, c.reason, c.count))
            .collect();
        let now = Timestamp::now();
        let mail = match &admin.outbox {
            None => Vec::new(),
            Some(outbox) => {
                let paused = outbox.status().paused;
                let depth = admin.store.mail_depth().unwrap_or_default();
                depth
                    .into_iter()
                    .map(|(lane, d)| {
                        let held = paused.iter().any(|(l, until)| *l == lane && *until > now);
                        (lane.name(), d.depth, d.oldest, held)
                    })
                    .collect()
            }
        };
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            started: admin.started,
            now,
            decisions,
            argon2: admin.pool.argon2_times().into(),
            hash_in_flight: pool.in_flight as u64,
            hash_capacity: (pool.workers + pool.queue) as u64,
            hash_busy: pool.busy,
            lockouts_active: admin.core.active_lockouts().ok().map(|n| n as u64),
            users: admin.store.user_count().ok(),
            directories: admin
                .sync
                .health()
                .into_iter()
                .map(|h| (h.name, h.last_success, h.last_result))
                .collect(),
            mail_sent: admin.outbox.as_ref().map(|o| o.status().sent),
            mail,
            mqtt: admin.mqtt.as_ref().map(|link| {
                let s = link.status();
                (s.connected, s.events_connected, s.reconnects)
            }),
            workers: admin
                .workers
                .status()
                .into_iter()
                .map(|w| {
                    let healthy =
                        w.failures == 0 && !matches!(w.state, State::BackingOff | State::Stopped);
                    (w.name, healthy, w.failures)
                })
                .collect(),
        }
    }
}

fn secs_between(from: Timestamp, to: Timestamp) -> f64 {
    from.until(to).as_millis() as f64 / 1000.0
}

/// One metric family: its samples, each with its labels; nothing when it has none.
fn family<S, M>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl IntoIterator<Item = (S, M)>,
) -> Result<(), std::fmt::Error>
where
    S: EncodeLabelSet,
    M: EncodeMetric,
{
    let samples: Vec<(S, M)> = samples.into_iter().collect();
    if samples.is_empty() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge<S: EncodeLabelSet, N: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (S, N)>,
) -> Result<(), std::fmt::Error> {
    let samples = samples.into_iter().map(|(l, v)| (l, ConstGauge::new(v)));
    family(encoder, name, help, MetricType::Gauge, samples)
}

fn counter<S: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (S, u64)>,
) -> Result<(), std::fmt::Error> {
    let samples = samples.into_iter().map(|(l, v)| (l, ConstCounter::new(v)));
    family(encoder, name, help, MetricType::Counter, samples)
}

/// No labels.
const NONE: [(&str, &str); 0] = [];

fn flag(on: bool) -> u64 {
    u64::from(on)
}

/// The snapshot as metric families (pure: the same snapshot gives the same text).
pub(super) fn encode(s: &Snapshot, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let e = &mut e;
    gauge(
        e,
        "build_info",
        "The running version (always 1)",
        [([("version", s.version)], 1u64)],
    )?;
    gauge(
        e,
        "start_time_seconds",
        "When the daemon started, in seconds since the Unix epoch",
        [(NONE, s.started.millis() as f64 / 1000.0)],
    )?;
    gauge(
        e,
        "uptime_seconds",
        "Seconds since the daemon started",
        [(NONE, secs_between(s.started, s.now))],
    )?;
    counter(
        e,
        "decisions",
        "Authentication decisions by device, outcome (grant, deny, busy) and deny reason",
        s.decisions.iter().map(|(device, outcome, reason, n)| {
            let labels = [
                ("device", device.as_str()),
                ("outcome", outcome),
                ("reason", reason),
            ];
            (labels, *n)
        }),
    )?;
    let histograms = s
        .argon2
        .iter()
        .map(|(work, h)| ([("work", *work)], Histogram(h)));
    family(
        e,
        "argon2_duration_seconds",
        "Time of one argon2id PIN tag computation on the hash pool (attempt or admin work)",
        MetricType::Histogram,
        histograms,
    )?;
    gauge(
        e,
        "hash_in_flight",
        "Attempts computing or queued on the hash pool",
        [(NONE, s.hash_in_flight)],
    )?;
    gauge(
        e,
        "hash_capacity",
        "Attempts the hash pool takes at once (workers + queue); past it attempts get BUSY",
        [(NONE, s.hash_capacity)],
    )?;
    counter(
        e,
        "hash_busy",
        "Attempts refused BUSY because the hash pool was full",
        [(NONE, s.hash_busy)],
    )?;
    gauge(
        e,
        "lockouts_active",
        "Lockout keys (devices, sources, users) locked now",
        s.lockouts_active.map(|n| (NONE, n)),
    )?;
    gauge(e, "users", "Users in the store", s.users.map(|n| (NONE, n)))?;
    encode_status(s, e)
}

/// Directories, mail, MQTT and workers.
fn encode_status(s: &Snapshot, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    gauge(
        e,
        "directory_sync_age_seconds",
        "Seconds since the directory's last successful sync (absent before the first)",
        s.directories.iter().filter_map(|(name, last, _)| {
            last.map(|t| ([("directory", name.as_str())], secs_between(t, s.now)))
        }),
    )?;
    gauge(
        e,
        "directory_last_result",
        "The directory's last sync result (applied, unchanged, completed, or the error kind: \
         unavailable, rejected, refused, store, …; none before the first); always 1",
        s.directories
            .iter()
            .map(|(name, _, result)| ([("directory", name.as_str()), ("result", result)], 1u64)),
    )?;
    if let Some(sent) = s.mail_sent {
        gauge(
            e,
            "mail_queued",
            "Messages waiting in the mail outbox, per lane",
            s.mail.iter().map(|(lane, n, _, _)| ([("lane", *lane)], *n)),
        )?;
        gauge(
            e,
            "mail_oldest_age_seconds",
            "Age of the oldest message waiting in the lane (0 when empty)",
            s.mail.iter().map(|(lane, _, oldest, _)| {
                let age = oldest.map_or(0.0, |t| secs_between(t, s.now));
                ([("lane", *lane)], age)
            }),
        )?;
        gauge(
            e,
            "mail_lane_paused",
            "1 while the relay's quota refusal pauses the lane",
            s.mail
                .iter()
                .map(|(lane, _, _, held)| ([("lane", *lane)], flag(*held))),
        )?;
        counter(
            e,
            "mail_sent",
            "Messages the relay accepted",
            [(NONE, sent)],
        )?;
    }
    if let Some((requests, events, reconnects)) = s.mqtt {
        gauge(
            e,
            "mqtt_connected",
            "1 while the MQTT connection (requests or events) is up",
            [
                ([("connection", "requests")], flag(requests)),
                ([("connection", "events")], flag(events)),
            ],
        )?;
        counter(
            e,
            "mqtt_reconnects",
            "MQTT reconnections",
            [(NONE, reconnects)],
        )?;
    }
    gauge(
        e,
        "worker_healthy",
        "1 while the background worker (listener, directory, print release (CUPS), mail, …) \
         runs without failing",
        s.workers
            .iter()
            .map(|(name, ok, _)| ([("worker", name.as_str())], flag(*ok))),
    )?;
    gauge(
        e,
        "worker_failures",
        "Consecutive failures of the worker (0 when healthy)",
        s.workers
            .iter()
            .map(|(name, _, n)| ([("worker", name.as_str())], *n)),
    )
}

/// A histogram snapshot as prometheus-client encodes one.
struct Histogram<'a>(&'a HistogramSnapshot);

impl EncodeMetric for Histogram<'_> {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        let h = self.0;
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            h.sum_seconds,
            h.count,
            &h.buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
