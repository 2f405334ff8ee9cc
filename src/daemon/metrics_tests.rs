use super::*;
use crate::frontend::http::metrics::render;

#[derive(Debug)]
struct Fixed(Snapshot);

impl Collector for Fixed {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        super::encode(&self.0, encoder)
    }
}

fn text(snapshot: Snapshot) -> String {
    let mut registry = Registry::with_prefix("pinwarden");
    registry.register_collector(Box::new(Fixed(snapshot)));
    render(&registry).unwrap()
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_millis(secs * 1000)
}

#[test]
fn renders_every_family_in_the_prometheus_text_format() {
    let histogram = HistogramSnapshot {
        buckets: vec![(0.01, 1), (0.05, 2), (f64::INFINITY, 0)],
        count: 3,
        sum_seconds: 0.07,
    };
    let text = text(Snapshot {
        version: "1.2.3",
        started: at(1_000),
        now: at(1_090),
        decisions: vec![
            ("front-door".into(), "grant", "", 4),
            ("front-door".into(), "deny", "wrong_pin", 2),
        ],
        argon2: vec![("attempt", histogram)],
        hash_in_flight: 1,
        hash_capacity: 6,
        hash_busy: 7,
        lockouts_active: Some(2),
        users: Some(1_000_000),
        directories: vec![
            ("corp".into(), Some(at(1_030)), "applied"),
            ("csv".into(), None, "none"),
        ],
        mail: vec![
            ("reset", 3, Some(at(1_080)), true),
            ("bulk", 0, None, false),
        ],
        mail_sent: Some(9),
        mqtt: Some((true, false, 5)),
        workers: vec![("print release (CUPS)".into(), false, 3)],
    });
    for line in [
        "# TYPE pinwarden_build_info gauge",
        "pinwarden_build_info{version=\"1.2.3\"} 1",
        "pinwarden_start_time_seconds 1000.0",
        "pinwarden_uptime_seconds 90.0",
        "# TYPE pinwarden_decisions_total counter",
        "pinwarden_decisions_total{device=\"front-door\",outcome=\"grant\",reason=\"\"} 4",
        "pinwarden_decisions_total{device=\"front-door\",outcome=\"deny\",reason=\"wrong_pin\"} 2",
        "# TYPE pinwarden_argon2_duration_seconds histogram",
        "pinwarden_argon2_duration_seconds_bucket{work=\"attempt\",le=\"0.01\"} 1",
        "pinwarden_argon2_duration_seconds_bucket{work=\"attempt\",le=\"0.05\"} 3",
        "pinwarden_argon2_duration_seconds_bucket{work=\"attempt\",le=\"+Inf\"} 3",
        "pinwarden_argon2_duration_seconds_count{work=\"attempt\"} 3",
        "pinwarden_hash_in_flight 1",
        "pinwarden_hash_capacity 6",
        "pinwarden_hash_busy_total 7",
        "pinwarden_lockouts_active 2",
        "pinwarden_users 1000000",
        "pinwarden_directory_sync_age_seconds{directory=\"corp\"} 60.0",
        "pinwarden_directory_last_result{directory=\"corp\",result=\"applied\"} 1",
        "pinwarden_directory_last_result{directory=\"csv\",result=\"none\"} 1",
        "pinwarden_mail_queued{lane=\"reset\"} 3",
        "pinwarden_mail_oldest_age_seconds{lane=\"reset\"} 10.0",
        "pinwarden_mail_oldest_age_seconds{lane=\"bulk\"} 0.0",
        "pinwarden_mail_lane_paused{lane=\"reset\"} 1",
        "pinwarden_mail_sent_total 9",
        "pinwarden_mqtt_connected{connection=\"requests\"} 1",
        "pinwarden_mqtt_connected{connection=\"events\"} 0",
        "pinwarden_mqtt_reconnects_total 5",
        "pinwarden_worker_healthy{worker=\"print release (CUPS)\"} 0",
        "pinwarden_worker_failures{worker=\"print release (CUPS)\"} 3",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    assert!(
        !text.contains("directory_sync_age_seconds{directory=\"csv\"}"),
        "no age before a first success"
    );
    // Every sample line is `name{labels} value` with a number for the value.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(
            value.parse::<f64>().is_ok() || value == "+Inf",
            "bad sample line `{line}`"
        );
    }
}

#[test]
fn parts_not_configured_are_left_out() {
    let text = text(Snapshot {
        version: "1.2.3",
        started: at(1_000),
        now: at(1_000),
        decisions: vec![("lobby".into(), "busy", "", 0)],
        argon2: Vec::new(),
        hash_in_flight: 0,
        hash_capacity: 1,
        hash_busy: 0,
        lockouts_active: None,
        users: None,
        directories: Vec::new(),
        mail: Vec::new(),
        mail_sent: None,
        mqtt: None,
        workers: Vec::new(),
    });
    assert!(text.contains("pinwarden_decisions_total"), "{text}");
    for absent in [
        "mail_",
        "mqtt_",
        "lockouts_active",
        "pinwarden_users",
        "argon2",
    ] {
        assert!(!text.contains(absent), "`{absent}` in:\n{text}");
    }
}
