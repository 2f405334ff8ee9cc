use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use KeypadEvent::{Cleared, Garbage, Hash, Overlong, Star, TimedOut};

const TIMEOUT: Duration = Duration::from_secs(5);
const STEP: Duration = Duration::from_millis(300);
const ALL: [Framing; 4] = [
    Framing::Keys,
    Framing::Line,
    Framing::Wiegand4,
    Framing::Wiegand8,
];

fn decoder(framing: Framing, max_length: usize) -> KeypadDecoder {
    KeypadDecoder::new(FramingConfig {
        framing,
        max_length,
        inter_key_timeout: TIMEOUT,
    })
}

fn submit(pin: &str) -> KeypadEvent {
    KeypadEvent::Submit(Pin::new(pin))
}

/// Encodes keys written as `0-9`, `*`, `#` the way a keypad in `framing` sends them.
fn encode(framing: Framing, keys: &str) -> Vec<u8> {
    let code = |k: u8| match k {
        b'*' => 10,
        b'#' => 11,
        _ => k - b'0',
    };
    keys.bytes()
        .map(|k| match framing {
            Framing::Keys | Framing::Line => k,
            Framing::Wiegand4 => code(k),
            Framing::Wiegand8 => (!code(k) << 4) | code(k),
        })
        .collect()
}

/// Feeds one byte at a time, `STEP` apart, starting at `start`.
fn type_slowly(dec: &mut KeypadDecoder, bytes: &[u8], start: Instant) -> Vec<KeypadEvent> {
    let mut events = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        events.extend(dec.push(&[*b], start + STEP * i as u32));
    }
    events
}

#[test]
fn every_framing_decodes_keys_typed_one_by_one_and_keeps_leading_zeros() {
    let t0 = Instant::now();
    for framing in ALL {
        let mut dec = decoder(framing, 8);
        let bytes = encode(framing, "0123#");
        for (i, b) in bytes[..4].iter().enumerate() {
            assert_eq!(dec.push(&[*b], t0 + STEP * i as u32), [], "{framing:?}");
            assert!(dec.has_partial());
        }
        assert_eq!(dec.push(&bytes[4..], t0 + STEP * 4), [submit("0123")]);
        assert!(!dec.has_partial(), "{framing:?}");
        assert_eq!(dec.deadline(), None);
    }
}

#[test]
fn keys_framing_skips_filler_and_uppercases_letter_keys() {
    let mut dec = decoder(Framing::Keys, 8);
    let events = type_slowly(&mut dec, b"\r\n 1\x00a\r\nB c\n d#\r\n", Instant::now());
    assert_eq!(events, [submit("1ABCD")]);
    assert!(!dec.has_partial());
}

#[test]
fn line_framing_submits_on_cr_lf_or_hash_and_keeps_case() {
    let mut dec = decoder(Framing::Line, 8);
    let t0 = Instant::now();
    assert_eq!(type_slowly(&mut dec, b"ab12\r\n", t0), [submit("ab12")]);
    assert_eq!(
        dec.push(b"X9\rY8\nZ7#\r\n", t0),
        [submit("X9"), submit("Y8"), submit("Z7")]
    );
    assert_eq!(dec.push(b"\r\n\n\r", t0), [], "empty lines are ignored");
    assert_eq!(
        dec.push(b"#", t0),
        [Hash],
        "a `#` on an empty line is a key"
    );
    assert_eq!(dec.push(b"12 34\n", t0), [Garbage, submit("34")]);
}

#[test]
fn star_in_the_middle_clears_the_entry_so_far() {
    for framing in ALL {
        let mut dec = decoder(framing, 8);
        let events = type_slowly(&mut dec, &encode(framing, "12*34#"), Instant::now());
        assert_eq!(events, [Cleared, submit("34")], "{framing:?}");
    }
}

#[test]
fn hash_and_star_on_an_empty_entry_are_reported_as_keys_and_leave_no_partial() {
    for framing in ALL {
        let mut dec = decoder(framing, 8);
        let events = dec.push(&encode(framing, "#*##**"), Instant::now());
        assert_eq!(events, [Hash, Star, Hash, Hash, Star, Star], "{framing:?}");
        assert!(!dec.has_partial(), "{framing:?}");
        assert_eq!(dec.deadline(), None);
    }
}

#[test]
fn after_an_overlong_entry_hash_and_star_only_end_it() {
    for framing in ALL {
        let mut dec = decoder(framing, 4);
        let events = dec.push(&encode(framing, "12345#*123456*#"), Instant::now());
        assert_eq!(events, [Overlong, Star, Overlong, Hash], "{framing:?}");
    }
}

#[test]
fn wiegand8_requires_the_high_nibble_to_be_the_inverse_of_the_low_one() {
    let t0 = Instant::now();
    let mut dec = decoder(Framing::Wiegand8, 8);
    assert_eq!(dec.push(&[0xF0, 0xE1, 0xD2, 0x5A], t0), [Cleared]);
    assert_eq!(dec.push(&[0x87, 0x78, 0x69, 0x4B], t0), [submit("789")]);
    for bad in [0x01, 0xE2, 0xFF, 0x00, 0x1E, 0x0B, 0x3C, 0x0F] {
        assert_eq!(
            dec.push(&[0xE1, bad, 0xD2, 0x4B], t0),
            [Garbage, submit("2")]
        );
    }
}

#[test]
fn wiegand4_rejects_a_high_nibble_and_codes_above_eleven() {
    let t0 = Instant::now();
    let mut dec = decoder(Framing::Wiegand4, 8);
    assert_eq!(dec.push(&[9, 8, 10, 7, 11], t0), [Cleared, submit("7")]);
    for bad in [12, 13, 14, 15, 0x10, 0x21, 0xE1, 0xFF, b'1'] {
        assert_eq!(dec.push(&[1, bad, 2, 11], t0), [Garbage, submit("2")]);
    }
}

#[test]
fn garbage_discards_the_partial_entry_and_a_run_of_it_is_reported_once() {
    let t0 = Instant::now();
    let mut dec = decoder(Framing::Keys, 8);
    assert_eq!(dec.push(b"12x3#", t0), [Garbage, submit("3")]);
    assert_eq!(dec.push(b"45\xff\xfe", t0), [Garbage]);
    assert!(!dec.has_partial());
    assert_eq!(
        dec.push(b"\x80E!", t0),
        [],
        "the run continues across pushes"
    );
    assert_eq!(dec.push(b"6?", t0), [Garbage], "a key ends the run");
    assert_eq!(
        dec.push(b"?", t0 + TIMEOUT),
        [Garbage],
        "so does a quiet gap"
    );
    assert_eq!(dec.push(b"\n?", t0 + TIMEOUT), [Garbage], "so does filler");
    assert_eq!(dec.push(b"7#", t0 + TIMEOUT), [submit("7")]);
}

#[test]
fn inter_key_timeout_is_applied_by_push_after_the_gap() {
    let t0 = Instant::now();
    for framing in ALL {
        let mut dec = decoder(framing, 8);
        assert_eq!(dec.push(&encode(framing, "12"), t0), []);
        let almost = t0 + TIMEOUT - Duration::from_millis(1);
        assert_eq!(dec.push(&encode(framing, "3"), almost), []);
        let late = almost + TIMEOUT;
        let events = dec.push(&encode(framing, "4#"), late);
        assert_eq!(events, [TimedOut, submit("4")], "{framing:?}");
    }
}

#[test]
fn inter_key_timeout_is_reported_by_deadline_and_poll() {
    let t0 = Instant::now();
    for framing in ALL {
        let mut dec = decoder(framing, 8);
        assert_eq!(dec.deadline(), None);
        assert_eq!(dec.poll(t0 + TIMEOUT * 10), None);
        dec.push(&encode(framing, "1"), t0);
        dec.push(&encode(framing, "2"), t0 + STEP);
        assert_eq!(
            dec.deadline(),
            Some(t0 + STEP + TIMEOUT),
            "each key moves it"
        );
        assert_eq!(dec.poll(t0 + TIMEOUT), None);
        assert!(dec.has_partial());
        assert_eq!(
            dec.poll(t0 + STEP + TIMEOUT),
            Some(TimedOut),
            "due at the deadline"
        );
        assert!(!dec.has_partial());
        assert_eq!((dec.deadline(), dec.poll(t0 + TIMEOUT * 10)), (None, None));
        let events = dec.push(&encode(framing, "3#"), t0 + TIMEOUT * 10);
        assert_eq!(events, [submit("3")], "{framing:?}");
    }
}

#[test]
fn filler_bytes_do_not_extend_the_timeout() {
    let t0 = Instant::now();
    let mut dec = decoder(Framing::Keys, 8);
    dec.push(b"1", t0);
    dec.push(b"\r\n", t0 + STEP);
    assert_eq!(dec.deadline(), Some(t0 + TIMEOUT));
}

#[test]
fn line_framing_times_out_a_half_line() {
    let t0 = Instant::now();
    let mut dec = decoder(Framing::Line, 8);
    dec.push(b"12ab", t0);
    assert_eq!(dec.push(b"cd\r\n", t0 + TIMEOUT), [TimedOut, submit("cd")]);
}

#[test]
fn overlong_is_reported_once_and_the_rest_is_ignored_until_submit_or_clear() {
    let t0 = Instant::now();
    for framing in ALL {
        let mut dec = decoder(framing, 4);
        let events = dec.push(&encode(framing, "1234#123456789#1234#"), t0);
        assert_eq!(events, [submit("1234"), Overlong, submit("1234")]);
        let events = dec.push(&encode(framing, "12345*6#"), t0);
        assert_eq!(events, [Overlong, submit("6")], "{framing:?}");
    }
}

#[test]
fn an_ignored_overlong_entry_ends_silently_at_its_deadline() {
    let t0 = Instant::now();
    let mut dec = decoder(Framing::Keys, 2);
    assert_eq!(dec.push(b"123", t0), [Overlong]);
    assert_eq!(
        dec.push(b"45", t0 + STEP),
        [],
        "keys still arrive: moved deadline"
    );
    assert!(dec.has_partial());
    assert_eq!(dec.deadline(), Some(t0 + STEP + TIMEOUT));
    assert_eq!(dec.poll(t0 + STEP + TIMEOUT), None);
    assert_eq!((dec.has_partial(), dec.deadline()), (false, None));
    assert_eq!(dec.push(b"67#", t0 + TIMEOUT * 2), [submit("67")]);
    assert_eq!(dec.push(b"123", t0), [Overlong]);
    assert_eq!(
        dec.push(b"4", t0 + STEP + TIMEOUT),
        [],
        "push applies it too"
    );
    assert_eq!(dec.push(b"9#", t0 + STEP + TIMEOUT), [submit("49")]);
}

#[test]
fn max_length_of_zero_is_treated_as_one_and_long_entries_grow_the_buffer() {
    let t0 = Instant::now();
    let mut dec = decoder(Framing::Keys, 0);
    assert_eq!(dec.push(b"1#12#", t0), [submit("1"), Overlong]);
    let mut dec = decoder(Framing::Line, 1000);
    let long = "7".repeat(1000);
    assert_eq!(
        dec.push(format!("{long}\n{long}8\n").as_bytes(), t0),
        [submit(&long), Overlong]
    );
}

#[test]
fn an_unrepresentable_timeout_never_expires_and_never_panics() {
    let t0 = Instant::now();
    let mut dec = KeypadDecoder::new(FramingConfig {
        framing: Framing::Keys,
        max_length: 8,
        inter_key_timeout: Duration::MAX,
    });
    assert_eq!(dec.push(b"1x?", t0), [Garbage]);
    assert_eq!(dec.push(b"?", t0 + TIMEOUT * 1000), []);
    assert_eq!(dec.push(b"2", t0 + TIMEOUT * 1000), []);
    assert_eq!((dec.has_partial(), dec.deadline()), (true, None));
    assert_eq!(dec.push(b"3#", t0 + TIMEOUT * 2000), [submit("23")]);
}

#[test]
fn framing_names_in_config_are_snake_case() {
    let names = ["\"keys\"", "\"line\"", "\"wiegand4\"", "\"wiegand8\""];
    for (framing, name) in ALL.into_iter().zip(names) {
        assert_eq!(serde_json::to_string(&framing).unwrap(), name);
        assert_eq!(serde_json::from_str::<Framing>(name).unwrap(), framing);
    }
    assert!(serde_json::from_str::<Framing>("\"Wiegand26\"").is_err());
}

/// Random input biased towards the framing's own keys, so entries do complete.
fn random_input(rng: &mut StdRng, framing: Framing) -> Vec<u8> {
    let len = rng.gen_range(0..48);
    (0..len)
        .map(|_| match rng.gen_range(0..10) {
            0..=1 => rng.gen(),
            2 => encode(framing, if rng.gen() { "#" } else { "*" })[0],
            3 if framing == Framing::Keys => b"\r\n aD"[rng.gen_range(0..5)],
            3 if framing == Framing::Line => b"\r\nzQ"[rng.gen_range(0..4)],
            _ => encode(framing, &rng.gen_range(0..10).to_string())[0],
        })
        .collect()
}

fn random_chunks(rng: &mut StdRng, input: &[u8]) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rng.gen_range(1..=rest.len()));
        chunks.push(chunk.to_vec());
        rest = tail;
    }
    chunks
}

fn valid_pin_char(framing: Framing, c: char) -> bool {
    match framing {
        Framing::Keys => matches!(c, '0'..='9' | 'A'..='D'),
        Framing::Line => c.is_ascii_alphanumeric(),
        Framing::Wiegand4 | Framing::Wiegand8 => c.is_ascii_digit(),
    }
}

#[test]
fn random_bytes_chunks_and_gaps_never_panic_and_submit_only_bounded_pins() {
    let mut rng = StdRng::seed_from_u64(0x6b65_7970_6164);
    for framing in ALL {
        let mut submits = 0;
        for _ in 0..20_000 {
            let max_length = rng.gen_range(1..=12);
            let timeout = Duration::from_millis(rng.gen_range(0..2_000));
            let config = FramingConfig {
                framing,
                max_length,
                inter_key_timeout: timeout,
            };
            let mut dec = KeypadDecoder::new(config);
            let mut now = Instant::now();
            let input = random_input(&mut rng, framing);
            for chunk in random_chunks(&mut rng, &input) {
                now += Duration::from_millis(rng.gen_range(0..2_500));
                if rng.gen_ratio(1, 4) {
                    dec.poll(now);
                }
                for event in dec.push(&chunk, now) {
                    if let KeypadEvent::Submit(pin) = event {
                        submits += 1;
                        assert!((1..=max_length).contains(&pin.len()), "{config:?}");
                        assert!(pin.expose().chars().all(|c| valid_pin_char(framing, c)));
                    }
                }
                assert_eq!(dec.deadline().is_some(), dec.has_partial());
                assert!(
                    dec.buf.capacity() <= max_length,
                    "the buffer never outgrows an entry"
                );
            }
            if let Some(deadline) = dec.deadline() {
                assert!(deadline >= now);
                dec.poll(deadline);
                assert_eq!((dec.deadline(), dec.has_partial()), (None, false));
            }
        }
        assert!(
            submits > 5_000,
            "{framing:?}: only {submits} entries completed"
        );
    }
}

#[test]
fn decoding_does_not_depend_on_how_bytes_are_chunked() {
    let mut rng = StdRng::seed_from_u64(0x6368_756e_6b73);
    let now = Instant::now();
    for framing in ALL {
        for _ in 0..2_000 {
            let input = random_input(&mut rng, framing);
            let whole = decoder(framing, 6).push(&input, now);
            let mut dec = decoder(framing, 6);
            let chunks = random_chunks(&mut rng, &input);
            let pieces: Vec<_> = chunks.iter().flat_map(|c| dec.push(c, now)).collect();
            assert_eq!(whole, pieces, "{framing:?} {input:?}");
        }
    }
}
