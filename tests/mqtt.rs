//! The MQTT frontend against a real mosquitto: requests and replies, retained and replayed
//! requests, Zigbee2MQTT keypads, a Tasmota-style relay, the event stream and its outbox
//! across a broker outage, the retained status and the last will, and a wrong password.

mod common;

use common::mosquitto::{Broker, Probe};
use common::{Daemon, DEFAULT_TCP};
use std::time::Duration;

const PREFIX: &str = "pinwarden/test";

fn mqtt_block(port: u16, extra: &str) -> String {
    format!(
        r#"
[mqtt]
host = "127.0.0.1"
port = {port}
client_id = "pinwarden-test"
prefix = "{PREFIX}"
keep_alive = "5s"
devices = ["front-door", "lobby-printer"]
{extra}
"#
    )
}

fn start(broker: &Broker, mqtt_extra: &str, extra: &str) -> Daemon {
    let top = mqtt_block(broker.port, mqtt_extra);
    Daemon::start_edited(|text| {
        // [mqtt] sub-tables must follow it, so the block goes last.
        format!(
            "{}\n{extra}\n{top}",
            text.replace("{EXTRA}", DEFAULT_TCP)
                .replace("{EXTRA_TOP}", "")
        )
    })
}

fn wait_connected(d: &Daemon) -> serde_json::Value {
    d.wait_status("connected to the broker", |s| {
        s["mqtt"]["connected"] == true && s["mqtt"]["events_connected"] == true
    })
}

fn request(probe: &Probe, device: &str, body: &str) -> serde_json::Value {
    probe.publish(
        &format!("{PREFIX}/request/{device}"),
        body.as_bytes(),
        false,
    );
    probe.next_on(&format!("{PREFIX}/reply/{device}")).json()
}

#[test]
fn a_request_gets_its_reply() {
    let broker = Broker::start();
    let d = start(&broker, "", "");
    wait_connected(&d);
    d.add_user("alice", "staff", "482913");
    let probe = Probe::connect(broker.port);
    probe.subscribe(&format!("{PREFIX}/reply/+"));

    let r = request(&probe, "front-door", r#"{"id":"r1","pin":"482913"}"#);
    assert_eq!(
        r,
        serde_json::json!({"id":"r1","result":"granted","user":"alice"})
    );
    let r = request(
        &probe,
        "front-door",
        r#"{"id":2,"user":"alice","pin":"482913"}"#,
    );
    assert_eq!(r["id"], 2);
    assert_eq!(r["result"], "granted");
    let r = request(&probe, "front-door", r#"{"id":"r3","pin":"000000"}"#);
    assert_eq!(r, serde_json::json!({"id":"r3","result":"denied"}));

    // Garbage and unknown devices are audited and get no reply; the loop carries on.
    probe.publish(
        &format!("{PREFIX}/request/front-door"),
        b"\xff\x00{not json",
        false,
    );
    probe.publish(
        &format!("{PREFIX}/request/garage"),
        br#"{"id":"g","pin":"482913"}"#,
        false,
    );
    let r = request(&probe, "front-door", r#"{"id":"r4","pin":"482913"}"#);
    assert_eq!(
        r["id"], "r4",
        "the malformed request must not have been answered"
    );
    d.wait_audit(
        "malformed request: payload is not a JSON object",
        Duration::from_secs(5),
    );
    d.wait_audit("not in mqtt.devices", Duration::from_secs(5));
    // Replies are never retained: a new subscriber gets the retained status and no reply
    // (the broker sends retained messages in subscription order).
    let late = Probe::connect(broker.port);
    late.subscribe(&format!("{PREFIX}/reply/+"));
    late.subscribe(&format!("{PREFIX}/status"));
    assert_eq!(late.next_on(&format!("{PREFIX}/status")).text(), "online");
    assert_eq!(late.skipped_on(&format!("{PREFIX}/reply/")), 0);
    assert!(common::found_in_files(&d.state_dir(), b"482913").is_empty());
    assert!(!d.logs().contains("482913"));
}

#[test]
fn retained_and_replayed_requests_are_refused() {
    let broker = Broker::start();
    // A retained request reaches the daemon flagged as retained when it subscribes: it is
    // history (or a planted replay), never a person at the door.
    let probe = Probe::connect(broker.port);
    probe.publish(
        &format!("{PREFIX}/request/front-door"),
        br#"{"id":"old","pin":"482913"}"#,
        true,
    );
    let d = start(&broker, "", "");
    wait_connected(&d);
    d.add_user("alice", "staff", "482913");
    probe.subscribe(&format!("{PREFIX}/reply/+"));
    let r = request(&probe, "front-door", r#"{"id":"once","pin":"482913"}"#);
    assert_eq!(r["id"], "once", "a retained request must not be answered");
    probe.publish(
        &format!("{PREFIX}/request/front-door"),
        br#"{"id":"once","pin":"482913"}"#,
        false,
    );
    // The replay got no answer: the next reply is for the next request.
    let r = request(&probe, "front-door", r#"{"id":"next","pin":"482913"}"#);
    assert_eq!(r["id"], "next");
    d.wait_audit("retained request", Duration::from_secs(5));
    d.wait_audit("duplicate request id", Duration::from_secs(5));
    let audit = d.cli_ok(&["audit", "--json", "--last", "200"], None);
    assert_eq!(audit.matches("\"outcome\":\"grant\"").count(), 2, "{audit}");
}

#[test]
fn zigbee_keypads_get_every_transaction_answered() {
    let broker = Broker::start();
    let d = start(
        &broker,
        "[[mqtt.zigbee_keypad]]\nname = \"hall keypad\"\ndevice = \"front-door\"\n",
        "",
    );
    wait_connected(&d);
    d.add_user("alice", "staff", "482913");
    let probe = Probe::connect(broker.port);
    probe.subscribe("zigbee2mqtt/hall keypad/set");
    let state = "zigbee2mqtt/hall keypad";

    probe.publish(state, br#"{"battery":80,"tamper":false}"#, false);
    probe.publish(
        state,
        br#"{"action":"disarm","action_code":"482913","action_transaction":41}"#,
        false,
    );
    let a = probe.next_on("zigbee2mqtt/hall keypad/set").json();
    assert_eq!(
        a,
        serde_json::json!({"arm_mode":{"transaction":41,"mode":"disarm"}})
    );
    probe.publish(
        state,
        br#"{"action":"disarm","action_code":"111111","action_transaction":42}"#,
        false,
    );
    let a = probe.next_on("zigbee2mqtt/hall keypad/set").json();
    assert_eq!(
        a,
        serde_json::json!({"arm_mode":{"transaction":42,"mode":"invalid_code"}})
    );
    // The same transaction republished with the device state is not a second attempt.
    probe.publish(
        state,
        br#"{"action_code":"111111","action_transaction":42,"battery":80}"#,
        false,
    );
    probe.publish(
        state,
        br#"{"action":"disarm","action_code":"482913","action_transaction":43}"#,
        false,
    );
    let a = probe.next_on("zigbee2mqtt/hall keypad/set").json();
    assert_eq!(a["arm_mode"]["transaction"], 43);
    let audit = d.cli_ok(&["audit", "--json", "--last", "200"], None);
    assert_eq!(audit.matches("\"outcome\":\"deny\"").count(), 1, "{audit}");
}

#[test]
fn a_tasmota_relay_gets_one_unlock_per_grant() {
    let broker = Broker::start();
    let door = r#"
[[door]]
device = "front-door"
actuator = "mqtt"
mqtt_preset = "tasmota"
mqtt_topic = "tasmota_frontdoor"
pulse = "3s"
"#;
    let d = start(&broker, "", door);
    wait_connected(&d);
    d.add_user("alice", "staff", "482913");
    let probe = Probe::connect(broker.port);
    probe.subscribe("cmnd/tasmota_frontdoor/#");
    probe.subscribe(&format!("{PREFIX}/reply/+"));

    for id in ["a", "b"] {
        let body = format!(r#"{{"id":"{id}","pin":"482913"}}"#);
        assert_eq!(request(&probe, "front-door", &body)["result"], "granted");
        let cmd = probe.next_on("cmnd/tasmota_frontdoor/Backlog");
        assert_eq!(cmd.text(), "PulseTime1 30;Power1 ON");
        assert!(!cmd.retain);
    }
    let r = request(&probe, "front-door", r#"{"id":"c","pin":"000000"}"#);
    assert_eq!(r["result"], "denied");
    // A denial sends nothing: the next command on the relay topic belongs to the next grant.
    assert_eq!(
        request(&probe, "front-door", r#"{"id":"d","pin":"482913"}"#)["result"],
        "granted"
    );
    probe.next_on("cmnd/tasmota_frontdoor/Backlog");
    let audit = d.wait_audit("\"action\":\"unlock\"", Duration::from_secs(5));
    assert_eq!(audit.matches("\"action\":\"unlock\"").count(), 3, "{audit}");
}

#[test]
fn events_survive_a_broker_outage_in_order() {
    let mut broker = Broker::start();
    let d = start(&broker, "", "");
    wait_connected(&d);
    d.add_user("alice", "staff", "482913");
    // A persistent session: the broker queues events for the probe across its own restart.
    let probe = Probe::connect_as(broker.port, "event-watcher", false);
    probe.subscribe(&format!("{PREFIX}/events"));
    let mut t = d.terminal();
    assert!(t.ask("PIN 482913").starts_with("OK alice"));
    let seen = next_decision(&probe);
    assert_eq!(seen["outcome"], "grant");
    let before = seen["seq"].as_u64().unwrap();

    broker.stop();
    assert!(t.ask("PIN 000000").starts_with("DENY"));
    assert!(t.ask("PIN 482913").starts_with("OK alice"));
    assert!(t.ask("PIN 111111").starts_with("DENY"));
    broker.start_again();

    // Delivery is at least once: a batch the broker took but had not acknowledged when it
    // stopped comes again. Consumers deduplicate by `seq`, and so does this one.
    let mut outcomes: Vec<(u64, String)> = Vec::new();
    while outcomes.len() < 3 {
        let e = next_decision(&probe);
        let seq = e["seq"].as_u64().unwrap();
        if seq > before && outcomes.iter().all(|(s, _)| *s != seq) {
            outcomes.push((seq, e["outcome"].as_str().unwrap().to_string()));
        }
    }
    let got: Vec<&str> = outcomes.iter().map(|(_, o)| o.as_str()).collect();
    assert_eq!(got, ["deny", "grant", "deny"], "{outcomes:?}");
    assert!(outcomes.windows(2).all(|w| w[0].0 < w[1].0) && outcomes[0].0 > before);
    let s = wait_connected(&d);
    assert!(s["mqtt"]["reconnects"].as_u64().unwrap() >= 1, "{s}");
    // Clean sessions forget subscriptions: requests work again only if we resubscribed.
    let asker = Probe::connect(broker.port);
    asker.subscribe(&format!("{PREFIX}/reply/+"));
    let r = request(&asker, "front-door", r#"{"id":"after","pin":"482913"}"#);
    assert_eq!(r["result"], "granted");
    let raw = outcomes_raw(&probe);
    assert!(!raw.contains("482913") && !raw.contains("\"tag\""), "{raw}");
}

/// The next decision event (other events — admin, lockouts — are skipped).
fn next_decision(probe: &Probe) -> serde_json::Value {
    loop {
        let e = probe.next_on(&format!("{PREFIX}/events")).json();
        assert!(e["seq"].is_u64(), "{e}");
        if e["event"] == "decision" {
            return e;
        }
    }
}

/// Every event text the probe has received and not yet consumed.
fn outcomes_raw(probe: &Probe) -> String {
    probe.drain_text(&format!("{PREFIX}/events"))
}

#[test]
fn status_is_retained_and_the_last_will_says_offline() {
    let broker = Broker::start();
    let mut d = start(&broker, "", "");
    wait_connected(&d);
    let probe = Probe::connect(broker.port);
    probe.subscribe(&format!("{PREFIX}/status"));
    let online = probe.next_on(&format!("{PREFIX}/status"));
    assert_eq!((online.text().as_str(), online.retain), ("online", true));
    d.stop();
    assert_eq!(probe.next_on(&format!("{PREFIX}/status")).text(), "offline");

    let mut d2 = start(&broker, "", "");
    wait_connected(&d2);
    assert_eq!(probe.next_on(&format!("{PREFIX}/status")).text(), "online");
    // A crash cannot say goodbye: the broker publishes the last will.
    d2.kill();
    let will = probe.next_on(&format!("{PREFIX}/status"));
    assert_eq!(will.text(), "offline");
}

#[test]
fn a_wrong_password_is_a_status_error_not_a_crash() {
    let broker = Broker::start_with(Some(("edge", "right-password")));
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("mqtt.pass");
    common::write_secret(&secret, "wrong-password\n");
    let extra = format!(
        "username = \"edge\"\npassword_file = \"{}\"\n",
        secret.display()
    );
    let d = start(&broker, &extra, "");
    d.add_user("alice", "staff", "482913");
    let status = d.wait_status("an MQTT error", |s| s["mqtt"]["last_error"].is_string());
    let error = status["mqtt"]["last_error"].as_str().unwrap();
    assert!(error.contains("refused the login"), "{error}");
    assert!(!error.contains("wrong-password"), "{error}");
    assert_eq!(status["mqtt"]["connected"], false);
    // Decisions go on over TCP while the broker refuses us.
    assert!(d.terminal().ask("PIN 482913").starts_with("OK alice"));
}

#[test]
fn tls_with_the_sites_ca() {
    let broker = Broker::start_tls();
    let ca = broker.ca.clone().unwrap();
    let extra = format!("tls = true\nca_file = \"{}\"\n", ca.display());
    let d = start(&broker, &extra, "");
    wait_connected(&d);
    d.add_user("alice", "staff", "482913");
    let probe = Probe::connect_tls(broker.port, &ca);
    probe.subscribe(&format!("{PREFIX}/reply/+"));
    let r = request(&probe, "front-door", r#"{"id":"t1","pin":"482913"}"#);
    assert_eq!(r["result"], "granted");

    // A broker whose certificate is not from the configured CA is refused, with the reason.
    let other = Broker::start_tls();
    let d2 = start(&other, &extra, "");
    let s = d2.wait_status("a TLS error", |s| s["mqtt"]["last_error"].is_string());
    let e = s["mqtt"]["last_error"].as_str().unwrap();
    assert!(e.contains("TLS"), "{e}");
    assert_eq!(s["mqtt"]["connected"], false);
}

/// `"new_pin"` on an unlock was once granted, its field ignored: every request schema now
/// refuses what it does not name, answers `error` (the id echoed, never the payload) and
/// audits the refusal. The request's id stays usable.
#[test]
fn a_request_with_an_unknown_field_is_refused_and_audited() {
    let broker = Broker::start();
    let d = start(&broker, "", "");
    wait_connected(&d);
    d.add_user("alice", "staff", "482913");
    let probe = Probe::connect(broker.port);
    probe.subscribe(&format!("{PREFIX}/reply/+"));

    let r = request(
        &probe,
        "front-door",
        r#"{"id":"n1","user":"alice","pin":"482913","new_pin":"707172"}"#,
    );
    assert_eq!(r["id"], "n1");
    assert_eq!(r["result"], "error", "{r}");
    let text = r["error"].as_str().unwrap();
    assert!(!text.contains("482913") && !text.contains("707172"), "{r}");
    let r = request(
        &probe,
        "front-door",
        r#"{"id":"n2","action":"forgot","user":"alice","pin":"482913"}"#,
    );
    assert_eq!(r["result"], "error", "{r}");
    d.wait_audit(
        "malformed request: a field this request does not take",
        Duration::from_secs(5),
    );
    let r = request(&probe, "front-door", r#"{"id":"n1","pin":"482913"}"#);
    assert_eq!(
        r["result"], "granted",
        "a refused request does not use up its id"
    );
    let audit = d.cli_ok(&["audit", "--json", "--last", "200"], None);
    assert_eq!(audit.matches("\"outcome\":\"grant\"").count(), 1, "{audit}");
    for pin in ["482913", "707172"] {
        assert!(!d.logs().contains(pin));
        assert!(common::found_in_files(&d.state_dir(), pin.as_bytes()).is_empty());
    }
}

/// Needs the core's change_pin and forgot_pin (i13-c): a change answers `denied` for a
/// wrong old PIN, `refused` with the policy reason for a weak new one, `changed` for a good
/// one; a forgot answers `accepted` for any user; replays and retained requests of both
/// kinds get no answer.
#[test]
fn change_and_forgot_requests_are_answered() {
    let broker = Broker::start();
    // A forgotten PIN needs a relay to be delivered through (a loopback one, in clear).
    let relay = common::smtp::SmtpServer::start(common::smtp::SmtpOptions::default());
    let d = start(
        &broker,
        "",
        &format!(
            "[policy]\nmin_length = 6\nuser_can_change = true\n[smtp]\nhost = \"127.0.0.1\"\n\
             port = {}\ntls = \"none\"\nfrom = \"print@example.org\"\n",
            relay.port
        ),
    );
    wait_connected(&d);
    d.add_user("alice", "staff", "482913");
    let probe = Probe::connect(broker.port);
    probe.subscribe(&format!("{PREFIX}/reply/+"));
    let change = |id: &str, old: &str, new: &str| {
        let body = format!(
            r#"{{"id":"{id}","action":"change","user":"alice","pin":"{old}","new_pin":"{new}"}}"#
        );
        request(&probe, "front-door", &body)
    };

    let r = change("c1", "111111", "707172");
    assert_eq!(r, serde_json::json!({"id":"c1","result":"denied"}));
    let r = change("c2", "482913", "1234");
    assert_eq!(r["result"], "refused", "{r}");
    assert!(r["reason"].as_str().is_some_and(|s| !s.is_empty()), "{r}");
    let r = change("c3", "482913", "707172");
    assert_eq!(r, serde_json::json!({"id":"c3","result":"changed"}));
    let r = request(&probe, "front-door", r#"{"id":"u1","pin":"707172"}"#);
    assert_eq!(r["result"], "granted");

    for (id, user) in [("f1", "alice"), ("f2", "nobody-here")] {
        let body = format!(r#"{{"id":"{id}","action":"forgot","user":"{user}"}}"#);
        let r = request(&probe, "front-door", &body);
        assert_eq!(r, serde_json::json!({"id": id, "result": "accepted"}));
    }

    // A replayed change is refused unanswered (retained requests: see
    // `retained_and_replayed_requests_are_refused`, the same guard for every action).
    probe.publish(
        &format!("{PREFIX}/request/front-door"),
        br#"{"id":"c3","action":"change","user":"alice","pin":"482913","new_pin":"707172"}"#,
        false,
    );
    let r = request(&probe, "front-door", r#"{"id":"last","pin":"707172"}"#);
    assert_eq!(r["id"], "last", "the replay got no answer");
    d.wait_audit("duplicate request id", Duration::from_secs(5));
    for pin in ["482913", "707172", "111111"] {
        assert!(!d.logs().contains(pin));
        assert!(common::found_in_files(&d.state_dir(), pin.as_bytes()).is_empty());
    }
}

#[test]
fn an_oversized_publish_is_refused_as_input_and_the_connection_kept() {
    let broker = Broker::start();
    let d = start(&broker, "", "");
    let since = wait_connected(&d)["mqtt"]["connected_since"].clone();
    d.add_user("alice", "staff", "482913");
    let probe = Probe::connect(broker.port);
    probe.subscribe(&format!("{PREFIX}/reply/+"));
    probe.subscribe(&format!("{PREFIX}/status"));
    assert_eq!(probe.next_on(&format!("{PREFIX}/status")).text(), "online");
    // 16 KiB used to drop pinwarden's connection (rumqttc's packet limit); up to 4 MiB is
    // now read and refused by our own layer.
    for size in [16 << 10, 64 << 10, 1 << 20, (4 << 20) - 1024] {
        let mut body = format!(r#"{{"id":"big{size}","pin":"482913","pad":""#).into_bytes();
        body.resize(size - 2, b'x');
        body.extend_from_slice(b"\"}");
        probe.publish(&format!("{PREFIX}/request/front-door"), &body, false);
    }
    let r = request(&probe, "front-door", r#"{"id":"after","pin":"482913"}"#);
    assert_eq!(r["id"], "after", "no oversized request was answered");
    assert_eq!(r["result"], "granted");
    d.wait_audit("payload larger than 1024 bytes", Duration::from_secs(5));
    let status = d.status();
    assert_eq!(
        status["mqtt"]["connected_since"], since,
        "never reconnected"
    );
    assert_eq!(
        probe.skipped_on(&format!("{PREFIX}/status")),
        0,
        "no last will (offline) was published"
    );
}

/// A QoS 1 packet above rumqttc's limit ends the connection, and the broker would send it
/// again on every reconnect of the persistent session: pinwarden discards that session once
/// and is back, answering, instead of staying offline for good.
#[test]
fn a_packet_above_the_limit_does_not_keep_pinwarden_offline() {
    let broker = Broker::start();
    let d = start(&broker, "", "");
    wait_connected(&d);
    d.add_user("alice", "staff", "482913");
    let probe = Probe::connect(broker.port);
    probe.subscribe(&format!("{PREFIX}/reply/+"));
    let mut body = br#"{"id":"huge","pin":"482913","pad":""#.to_vec();
    body.resize(6 << 20, b'x');
    body.extend_from_slice(b"\"}");
    probe.publish(&format!("{PREFIX}/request/front-door"), &body, false);
    d.wait_audit("above the 4 MiB limit", Duration::from_secs(20));
    let status = d.wait_status("reconnected after the oversize packet", |s| {
        s["mqtt"]["connected"] == true && s["mqtt"]["reconnects"].as_u64() >= Some(1)
    });
    let r = request(&probe, "front-door", r#"{"id":"after","pin":"482913"}"#);
    assert_eq!(r["id"], "after", "the huge request was never answered");
    assert_eq!(r["result"], "granted");
    // Connected for good: the oversize packet is not delivered again.
    let again = request(&probe, "front-door", r#"{"id":"later","pin":"482913"}"#);
    assert_eq!(again["result"], "granted");
    assert_eq!(
        d.status()["mqtt"]["reconnects"],
        status["mqtt"]["reconnects"],
        "no further reconnects"
    );
}

#[test]
fn requests_published_while_pinwarden_is_away_are_answered_when_it_returns() {
    let broker = Broker::start();
    let mut d = start(&broker, "replay_window = \"60s\"", "");
    wait_connected(&d);
    d.add_user("alice", "staff", "482913");
    let probe = Probe::connect(broker.port);
    probe.subscribe(&format!("{PREFIX}/reply/+"));
    d.stop();
    // The broker keeps pinwarden's session (QoS 1, not clean) and queues these for it.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let topic = format!("{PREFIX}/request/front-door");
    probe.publish(&topic, br#"{"id":"queued","pin":"482913"}"#, false);
    let stale = format!(
        r#"{{"id":"stale","pin":"482913","ts":{}}}"#,
        now_ms - 600_000
    );
    probe.publish(&topic, stale.as_bytes(), false);
    let fresh = format!(r#"{{"id":"fresh","pin":"482913","ts":{now_ms}}}"#);
    probe.publish(&topic, fresh.as_bytes(), false);
    d.start_again();
    // Answers leave as decisions finish (a refusal needs no argon2): by id, not in order.
    let reply = format!("{PREFIX}/reply/front-door");
    let replies: std::collections::BTreeMap<String, serde_json::Value> = (0..3)
        .map(|_| {
            let r = probe.next_on(&reply).json();
            (r["id"].as_str().unwrap().to_string(), r)
        })
        .collect();
    assert_eq!(replies["queued"]["result"], "granted", "{replies:?}");
    assert_eq!(replies["fresh"]["result"], "granted", "{replies:?}");
    let stale = &replies["stale"];
    assert_eq!(stale["result"], "error", "{stale}");
    assert!(
        stale["error"]
            .as_str()
            .unwrap_or_default()
            .contains("replay_window"),
        "{stale}"
    );
    d.wait_audit("stale or early request", Duration::from_secs(5));
}
