use super::*;
use crate::frontend::keypad::framing::Framing;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TIMEOUT: Duration = Duration::from_secs(5);
const STEP: Duration = Duration::from_millis(300);
const ALL: [Framing; 4] = [
    Framing::Keys,
    Framing::Line,
    Framing::Wiegand4,
    Framing::Wiegand8,
];

fn sequencer(framing: Framing) -> Sequencer {
    Sequencer::new(FramingConfig {
        framing,
        max_length: 8,
        inter_key_timeout: TIMEOUT,
    })
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

/// Types `keys` one at a time, `STEP` apart from `start`; returns the inputs and the time of
/// the last key.
fn type_keys(seq: &mut Sequencer, framing: Framing, keys: &str, start: Instant) -> Vec<Input> {
    let bytes = encode(framing, keys);
    let mut inputs = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        inputs.extend(seq.push(&[*b], start + STEP * i as u32));
    }
    inputs
}

fn change(id: &str, old: &str, new: &str) -> Input {
    Input::Change {
        id: id.into(),
        old: Pin::new(old),
        new: Pin::new(new),
    }
}

#[test]
fn a_plain_entry_and_a_habitual_leading_star_are_entries() {
    let t0 = Instant::now();
    for framing in ALL {
        let mut seq = sequencer(framing);
        let got = type_keys(&mut seq, framing, "4829#*4829#", t0);
        let want = [
            Input::Entry(Pin::new("4829")),
            Input::Entry(Pin::new("4829")),
        ];
        assert_eq!(got, want, "{framing:?}");
        assert_eq!(seq.deadline(), None);
    }
}

#[test]
fn the_change_sequence_asks_once_all_four_fields_are_in() {
    let t0 = Instant::now();
    for framing in ALL {
        let mut seq = sequencer(framing);
        let got = type_keys(&mut seq, framing, "**1042#1111#2580#2580#", t0);
        assert_eq!(got, [change("1042", "1111", "2580")], "{framing:?}");
        assert_eq!((seq.deadline(), seq.decoder.has_partial()), (None, false));
        let got = type_keys(&mut seq, framing, "1111#", t0 + TIMEOUT * 10);
        assert_eq!(
            got,
            [Input::Entry(Pin::new("1111"))],
            "back to plain entries"
        );
    }
}

#[test]
fn a_repeated_new_pin_that_differs_is_a_mismatch() {
    let t0 = Instant::now();
    for framing in ALL {
        let mut seq = sequencer(framing);
        let got = type_keys(&mut seq, framing, "**1042#1111#2580#2581#", t0);
        assert_eq!(got, [Input::Mismatch], "{framing:?}");
    }
}

#[test]
fn the_forgot_sequence_takes_one_id() {
    let t0 = Instant::now();
    for framing in ALL {
        let mut seq = sequencer(framing);
        let got = type_keys(&mut seq, framing, "*#1042#", t0);
        let want = [Input::Forgot { id: "1042".into() }];
        assert_eq!(got, want, "{framing:?}");
        assert_eq!(seq.deadline(), None);
    }
}

#[test]
fn a_star_abandons_a_sequence_and_stray_hashes_are_not_fields() {
    let t0 = Instant::now();
    for framing in ALL {
        let mut seq = sequencer(framing);
        let got = type_keys(&mut seq, framing, "**1042#1111#*4829#", t0);
        assert_eq!(got, [Input::Abandoned, Input::Entry(Pin::new("4829"))]);
        let got = type_keys(&mut seq, framing, "**1042##1111##2580#2580#", t0);
        assert_eq!(got, [change("1042", "1111", "2580")], "{framing:?}");
        let got = type_keys(&mut seq, framing, "*#12*", t0);
        assert_eq!(got, [Input::Abandoned], "{framing:?}");
    }
}

#[test]
fn a_sequence_waiting_for_its_next_field_times_out() {
    let t0 = Instant::now();
    for framing in ALL {
        let mut seq = sequencer(framing);
        assert_eq!(type_keys(&mut seq, framing, "**1042#", t0), []);
        let last = t0 + STEP * 6;
        assert_eq!(seq.deadline(), Some(last + TIMEOUT));
        assert_eq!(seq.poll(last + TIMEOUT - STEP), []);
        assert_eq!(seq.poll(last + TIMEOUT), [Input::Abandoned]);
        assert_eq!(seq.deadline(), None);
        // The same through push, after a gap.
        assert_eq!(type_keys(&mut seq, framing, "*#", t0), []);
        let late = t0 + STEP + TIMEOUT;
        let got = seq.push(&encode(framing, "4829#"), late);
        let want = [Input::Abandoned, Input::Entry(Pin::new("4829"))];
        assert_eq!(got, want, "{framing:?}");
    }
}

#[test]
fn a_field_typed_too_slowly_abandons_the_sequence() {
    let t0 = Instant::now();
    let mut seq = sequencer(Framing::Keys);
    assert_eq!(type_keys(&mut seq, Framing::Keys, "**10", t0), []);
    let typing = t0 + STEP * 3;
    assert_eq!(
        seq.deadline(),
        Some(typing + TIMEOUT),
        "the entry's own deadline"
    );
    let got = seq.poll(typing + TIMEOUT);
    assert_eq!(got, [Input::Abandoned]);
    assert_eq!(seq.deadline(), None);
}

#[test]
fn a_lone_star_is_forgotten_after_the_timeout() {
    let t0 = Instant::now();
    let mut seq = sequencer(Framing::Keys);
    assert_eq!(seq.push(b"*", t0), []);
    assert_eq!(seq.deadline(), Some(t0 + TIMEOUT));
    assert_eq!(seq.poll(t0 + TIMEOUT), []);
    assert_eq!(seq.deadline(), None);
    assert_eq!(
        seq.push(b"*1042#", t0 + TIMEOUT),
        [Input::Entry(Pin::new("1042"))]
    );
}

#[test]
fn line_ends_on_an_empty_line_do_not_start_a_forgot_sequence() {
    let t0 = Instant::now();
    let mut seq = sequencer(Framing::Line);
    assert_eq!(seq.push(b"*\r\n", t0), []);
    assert_eq!(
        seq.push(b"alice\r\n", t0),
        [Input::Entry(Pin::new("alice"))]
    );
    let got = seq.push(b"*#alice\r\n", t0);
    assert_eq!(got, [Input::Forgot { id: "alice".into() }]);
    let got = seq.push(b"**alice\r\nOld1\r\nNew2\r\nNew2\r\n", t0);
    assert_eq!(got, [change("alice", "Old1", "New2")]);
}

#[test]
fn garbage_and_overlong_fields_abandon_a_sequence() {
    let t0 = Instant::now();
    let mut seq = sequencer(Framing::Keys);
    let got = seq.push(b"**10x", t0);
    assert_eq!(got, [Input::Abandoned]);
    let got = seq.push(b"*#123456789#", t0);
    assert_eq!(got, [Input::Abandoned]);
    assert_eq!(seq.push(b"12#", t0), [Input::Entry(Pin::new("12"))]);
}

/// Random keys, mostly sequence keys and digits, in random chunks and gaps: nothing panics,
/// fields stay bounded, and a pending state always has a deadline that ends it.
#[test]
fn random_sequences_never_panic_and_always_end() {
    let mut rng = StdRng::seed_from_u64(0x7365_7175_656e);
    for framing in ALL {
        let (mut changes, mut forgots) = (0, 0);
        for _ in 0..10_000 {
            let mut seq = sequencer(framing);
            let mut now = Instant::now();
            for _ in 0..rng.gen_range(0..40) {
                let key = match rng.gen_range(0..20) {
                    0 => "**",
                    1 => "*#",
                    2 => "*",
                    3..=6 => "#",
                    _ => ["1", "2"][rng.gen_range(0..2)],
                };
                let mut bytes = encode(framing, key);
                if rng.gen_ratio(1, 30) {
                    bytes = vec![rng.gen()];
                }
                now += Duration::from_millis(rng.gen_range(0..1_500));
                for input in seq.push(&bytes, now) {
                    match input {
                        Input::Change { id, old, new } => {
                            changes += 1;
                            assert!([id.len(), old.len(), new.len()].iter().all(|l| *l <= 8));
                        }
                        Input::Mismatch => changes += 1,
                        Input::Forgot { id } => {
                            forgots += 1;
                            assert!((1..=8).contains(&id.len()));
                        }
                        _ => {}
                    }
                }
            }
            if let Some(deadline) = seq.deadline() {
                assert!(deadline >= now);
                seq.poll(deadline);
                assert_eq!(seq.deadline(), None, "{framing:?}");
            }
        }
        assert!(
            changes > 20 && forgots > 100,
            "{framing:?}: {changes} {forgots}"
        );
    }
}
