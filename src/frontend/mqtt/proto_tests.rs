use super::*;

#[test]
fn topics_are_classified() {
    let c = |t| classify(t, "pinwarden/hq", "zigbee2mqtt");
    assert_eq!(
        c("pinwarden/hq/request/front-door"),
        Topic::Request("front-door")
    );
    assert_eq!(c("pinwarden/hq/request/"), Topic::Other);
    assert_eq!(c("pinwarden/hq/request/a/b"), Topic::Other);
    assert_eq!(c("pinwarden/hqx/request/a"), Topic::Other);
    assert_eq!(c("zigbee2mqtt/hall keypad"), Topic::Zigbee("hall keypad"));
    assert_eq!(c("zigbee2mqtt/hall keypad/set"), Topic::Other);
    assert_eq!(c("zigbee2mqtt"), Topic::Other);
}

#[test]
fn requests_parse_into_credentials() {
    let r = parse_request(br#"{"id":"r1","pin":"482913"}"#).unwrap();
    assert_eq!(r.id, Value::String("r1".into()));
    assert!(matches!(r.credential, Credential::Pin(ref p) if p.expose() == "482913"));
    let r = parse_request(br#"{"id":7,"user":"alice","pin":"0482","ts":1}"#).unwrap();
    assert_eq!(r.id_key(), "7");
    assert!(matches!(r.credential, Credential::IdPin { ref id, .. } if id == "alice"));
    let r = parse_request(br#"{"id":"x","card":"00ab12","pin":"1234"}"#).unwrap();
    assert!(matches!(r.credential, Credential::CardPin { ref card, .. } if card == "AB12"));
}

#[test]
fn malformed_requests_say_why_without_the_pin() {
    let cases: &[(&[u8], RequestError)] = &[
        (b"", RequestError::NotJson),
        (b"[1,2]", RequestError::NotJson),
        (b"{\"pin\":\"482913\"", RequestError::NotJson),
        (br#"{"pin":"482913"}"#, RequestError::NoId),
        (br#"{"id":"","pin":"482913"}"#, RequestError::NoId),
        (br#"{"id":{"a":1},"pin":"482913"}"#, RequestError::NoId),
        (br#"{"id":"r"}"#, RequestError::NoPin),
        (br#"{"id":"r","pin":482913}"#, RequestError::NoPin),
        (br#"{"id":"r","pin":""}"#, RequestError::BadField),
        (br#"{"id":"r","pin":"48 2913"}"#, RequestError::BadField),
        (br#"{"id":"r","pin":"1","user":5}"#, RequestError::BadField),
        (
            br#"{"id":"r","pin":"1","card":"--"}"#,
            RequestError::BadField,
        ),
    ];
    for (payload, want) in cases {
        let got = parse_request(payload).unwrap_err();
        assert_eq!(got, *want, "{}", String::from_utf8_lossy(payload));
        assert!(!got.to_string().contains("482913"));
    }
    let big = format!(r#"{{"id":"r","pin":"1","x":"{}"}}"#, "a".repeat(2000));
    assert_eq!(
        parse_request(big.as_bytes()).unwrap_err(),
        RequestError::TooLarge
    );
}

#[test]
fn replies_echo_the_id_as_sent() {
    let v: Value = serde_json::from_slice(&encode_reply(
        &Value::String("r1".into()),
        &Reply::Granted {
            user: "alice",
            action_failed: false,
        },
    ))
    .unwrap();
    assert_eq!(
        v,
        serde_json::json!({"id":"r1","result":"granted","user":"alice"})
    );
    let v: Value = serde_json::from_slice(&encode_reply(&Value::from(9), &Reply::Denied)).unwrap();
    assert_eq!(v, serde_json::json!({"id":9,"result":"denied"}));
}

#[test]
fn zigbee_actions_and_answers() {
    let a = parse_zigbee(
        br#"{"action":"disarm","action_code":"1234","action_transaction":17,"battery":90}"#,
    )
    .unwrap()
    .unwrap();
    assert_eq!(a.transaction, Value::from(17));
    assert_eq!(a.code.expose(), "1234");
    assert!(parse_zigbee(br#"{"battery":90,"tamper":false}"#)
        .unwrap()
        .is_none());
    assert!(
        parse_zigbee(br#"{"action_code":null,"action_transaction":3}"#)
            .unwrap()
            .is_none()
    );
    assert!(
        parse_zigbee(br#"{"action_code":"12","action_transaction":"x"}"#)
            .unwrap()
            .is_none()
    );
    assert_eq!(
        parse_zigbee(br#"{"action_code":4321,"action_transaction":1}"#)
            .unwrap()
            .unwrap()
            .code
            .expose(),
        "4321"
    );
    assert!(parse_zigbee(b"not json").is_err());
    let v: Value = serde_json::from_slice(&encode_zigbee(&Value::from(17), true)).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"arm_mode":{"transaction":17,"mode":"disarm"}})
    );
    let v: Value = serde_json::from_slice(&encode_zigbee(&Value::from(18), false)).unwrap();
    assert_eq!(v["arm_mode"]["mode"], "invalid_code");
}

#[test]
fn replay_guard_refuses_repeats_within_the_window() {
    let mut g = ReplayGuard::new(Duration::from_secs(60), 1000);
    let t0 = Instant::now();
    assert!(g.fresh("door", "r1", t0));
    assert!(!g.fresh("door", "r1", t0 + Duration::from_secs(59)));
    assert!(g.fresh("other-door", "r1", t0));
    assert!(g.fresh("door", "r1", t0 + Duration::from_secs(61)));
}

#[test]
fn replay_guard_stays_bounded() {
    let mut g = ReplayGuard::new(Duration::from_secs(3600), 100);
    let t0 = Instant::now();
    for i in 0..10_000 {
        assert!(g.fresh("d", &i.to_string(), t0));
    }
    assert!(g.seen.len() <= 100 && g.order.len() <= 100);
    assert!(!g.fresh("d", "9999", t0));
}

/// Garbage never panics the parsers (a deterministic fuzz over random and mutated inputs).
#[test]
fn parsers_survive_garbage() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let seeds: [&[u8]; 3] = [
        br#"{"id":"r1","user":"alice","pin":"482913"}"#,
        br#"{"action_code":"1234","action_transaction":17}"#,
        br#"{"id":1,"card":"0x00ab","pin":"9"}"#,
    ];
    for _ in 0..20_000 {
        let mut bytes = seeds[rng.gen_range(0..seeds.len())].to_vec();
        for _ in 0..rng.gen_range(0..6) {
            let i = rng.gen_range(0..bytes.len());
            match rng.gen_range(0..3) {
                0 => bytes[i] = rng.gen(),
                1 => {
                    bytes.remove(i);
                }
                _ => bytes.insert(i, rng.gen()),
            }
        }
        let _ = parse_request(&bytes);
        let _ = parse_zigbee(&bytes);
        let random: Vec<u8> = (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect();
        let _ = parse_request(&random);
        let _ = parse_zigbee(&random);
    }
}
