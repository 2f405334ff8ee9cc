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
    let unlock = |payload: &[u8]| match parse_request(payload).unwrap() {
        Request {
            id,
            action: Action::Unlock(credential),
            ..
        } => (id, credential),
        other => panic!("{other:?}"),
    };
    let (id, credential) = unlock(br#"{"id":"r1","pin":"482913"}"#);
    assert_eq!(id, Value::String("r1".into()));
    assert!(matches!(credential, Credential::Pin(ref p) if p.expose() == "482913"));
    let (id, credential) = unlock(br#"{"id":7,"user":"alice","pin":"0482"}"#);
    assert_eq!(id.to_string(), "7");
    assert!(matches!(credential, Credential::IdPin { ref id, .. } if id == "alice"));
    let (_, credential) = unlock(br#"{"id":"x","card":"00ab12","pin":"1234"}"#);
    assert!(matches!(credential, Credential::CardPin { ref card, .. } if card == "AB12"));
    let (_, credential) = unlock(br#"{"id":"x","action":"unlock","pin":"1234","user":null}"#);
    assert!(matches!(credential, Credential::Pin(_)));
}

#[test]
fn change_and_forgot_requests_parse() {
    let r = parse_request(
        br#"{"id":"c1","action":"change","user":"alice","pin":"0482","new_pin":"9071"}"#,
    )
    .unwrap();
    assert_eq!(r.id_key(), "\"c1\"");
    match r.action {
        Action::Change { user, old, new } => {
            assert_eq!(
                (user.as_str(), old.expose(), new.expose()),
                ("alice", "0482", "9071")
            )
        }
        other => panic!("{other:?}"),
    }
    let r = parse_request(br#"{"id":5,"action":"forgot","user":"alice"}"#).unwrap();
    assert!(matches!(r.action, Action::Forgot { ref user } if user == "alice"));
}

#[test]
fn every_schema_refuses_fields_it_does_not_take_and_the_id_is_kept_for_the_reply() {
    let cases: &[&[u8]] = &[
        br#"{"id":"r","pin":"482913","new_pin":"111111"}"#,
        br#"{"id":"r","pin":"482913","sent":1}"#,
        br#"{"id":"r","action":"unlock","pin":"482913","482913":true}"#,
        br#"{"id":"r","action":"change","user":"a","pin":"482913","new_pin":"1","x":null}"#,
        br#"{"id":"r","action":"change","user":"a","card":"ab","pin":"482913","new_pin":"1"}"#,
        br#"{"id":"r","action":"forgot","user":"alice","pin":"482913"}"#,
        br#"{"id":"r","action":"forgot","user":"alice","email":"a@example.org"}"#,
    ];
    for payload in cases {
        let got = parse_request(payload).unwrap_err();
        let want = Malformed {
            id: Some(Value::String("r".into())),
            error: RequestError::UnknownField,
        };
        assert_eq!(got, want, "{}", String::from_utf8_lossy(payload));
        assert!(!got.error.to_string().contains("482913"));
    }
}

#[test]
fn change_and_forgot_requests_say_what_is_missing() {
    let cases: &[(&[u8], RequestError)] = &[
        (
            br#"{"id":"r","action":"change","pin":"1","new_pin":"2"}"#,
            RequestError::NoUser,
        ),
        (
            br#"{"id":"r","action":"change","user":"a","new_pin":"2"}"#,
            RequestError::NoPin,
        ),
        (
            br#"{"id":"r","action":"change","user":"a","pin":"1"}"#,
            RequestError::NoNewPin,
        ),
        (
            br#"{"id":"r","action":"change","user":"a","pin":"1","new_pin":2}"#,
            RequestError::NoNewPin,
        ),
        (br#"{"id":"r","action":"forgot"}"#, RequestError::NoUser),
        (
            br#"{"id":"r","action":"forgot","user":7}"#,
            RequestError::BadField,
        ),
        (
            br#"{"id":"r","action":"open","pin":"1"}"#,
            RequestError::UnknownAction,
        ),
        (
            br#"{"id":"r","action":1,"pin":"1"}"#,
            RequestError::UnknownAction,
        ),
    ];
    for (payload, want) in cases {
        let got = parse_request(payload).unwrap_err();
        assert_eq!(got.error, *want, "{}", String::from_utf8_lossy(payload));
        assert_eq!(got.id, Some(Value::String("r".into())));
    }
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
        let got = parse_request(payload).unwrap_err().error;
        assert_eq!(got, *want, "{}", String::from_utf8_lossy(payload));
        assert!(!got.to_string().contains("482913"));
    }
    let big = format!(r#"{{"id":"r","pin":"1","x":"{}"}}"#, "a".repeat(2000));
    assert_eq!(
        parse_request(big.as_bytes()).unwrap_err(),
        Malformed {
            id: None,
            error: RequestError::TooLarge
        }
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
    let cases = [
        (
            Reply::Changed,
            serde_json::json!({"id":9,"result":"changed"}),
        ),
        (
            Reply::NotAllowed,
            serde_json::json!({"id":9,"result":"not_allowed"}),
        ),
        (
            Reply::Accepted,
            serde_json::json!({"id":9,"result":"accepted"}),
        ),
        (
            Reply::Refused("at least 6 characters"),
            serde_json::json!({"id":9,"result":"refused","reason":"at least 6 characters"}),
        ),
        (
            Reply::Error(RequestError::NoPin),
            serde_json::json!({"id":9,"result":"error","error":RequestError::NoPin.to_string()}),
        ),
    ];
    for (reply, want) in cases {
        let v: Value = serde_json::from_slice(&encode_reply(&Value::from(9), &reply)).unwrap();
        assert_eq!(v, want);
    }
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
    let seeds: [&[u8]; 5] = [
        br#"{"id":"r1","user":"alice","pin":"482913"}"#,
        br#"{"action_code":"1234","action_transaction":17}"#,
        br#"{"id":1,"card":"0x00ab","pin":"9"}"#,
        br#"{"id":"c","action":"change","user":"a","pin":"1","new_pin":"2"}"#,
        br#"{"id":"f","action":"forgot","user":"a","x":[{"y":"z"}]}"#,
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

#[test]
fn a_request_may_say_when_it_was_sent_and_a_stale_one_is_not_timely() {
    let r = parse_request(br#"{"id":"r1","pin":"482913","ts":1764748800000}"#).unwrap();
    assert_eq!(r.sent_at_ms, Some(1_764_748_800_000));
    let r = parse_request(br#"{"id":"r1","action":"forgot","user":"a","ts":5}"#).unwrap();
    assert_eq!(r.sent_at_ms, Some(5));
    assert_eq!(
        parse_request(br#"{"id":"r1","pin":"4829"}"#)
            .unwrap()
            .sent_at_ms,
        None
    );
    for bad in [
        &br#"{"id":"r1","pin":"482913","ts":"yesterday"}"#[..],
        br#"{"id":"r1","pin":"482913","ts":1.5}"#,
    ] {
        let e = parse_request(bad).unwrap_err();
        assert_eq!(e.error, RequestError::BadTime);
        assert_eq!(
            e.id,
            Some(Value::String("r1".into())),
            "answered with its id"
        );
    }
    let window = Duration::from_secs(30);
    let now = 1_000_000;
    assert!(
        timely(None, now, window),
        "controllers that do not say are trusted"
    );
    assert!(timely(Some(now - 30_000), now, window));
    assert!(!timely(Some(now - 30_001), now, window), "queued too long");
    assert!(!timely(Some(now + 30_001), now, window), "from the future");
    assert!(!timely(Some(i64::MIN), now, window));
}
