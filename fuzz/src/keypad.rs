//! Keypad framing and key sequences: the decoder and the sequencer under every framing, fed
//! bytes in arbitrary pieces with arbitrary pauses (timeouts) between them.
//! Invariants: no entry is longer than `max_length`; a partial entry always has a deadline
//! (unless the timeout is too large to represent); nothing panics.

use pinwarden::frontend::keypad::framing::{Framing, FramingConfig, KeypadDecoder, KeypadEvent};
use pinwarden::frontend::keypad::sequence::{Input, Sequencer};
use std::time::{Duration, Instant};

fn config(head: &[u8]) -> FramingConfig {
    let framing = match head[0] % 4 {
        0 => Framing::Keys,
        1 => Framing::Line,
        2 => Framing::Wiegand4,
        _ => Framing::Wiegand8,
    };
    let inter_key_timeout = match head[2] {
        255 => Duration::MAX,
        t => Duration::from_millis(u64::from(t) * 10),
    };
    FramingConfig {
        framing,
        max_length: usize::from(head[1] % 40),
        inter_key_timeout,
    }
}

pub fn run(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let (head, mut rest) = data.split_at(3);
    let cfg = config(head);
    let longest = cfg.max_length.max(1);
    let mut decoder = KeypadDecoder::new(cfg);
    let mut sequencer = Sequencer::new(cfg);
    let mut now = Instant::now();
    let mut events = Vec::new();
    let mut inputs = Vec::new();
    // Each op byte: high bit set = a pause of (low bits × 25 ms) then a poll; else push
    // the next (low 3 bits + 1) bytes.
    while let Some((&op, tail)) = rest.split_first() {
        if op & 0x80 != 0 {
            now += Duration::from_millis(u64::from(op & 0x7f) * 25);
            events.extend(decoder.poll(now));
            inputs.extend(sequencer.poll(now));
            rest = tail;
        } else {
            let n = usize::from((op & 7) + 1).min(tail.len());
            let (bytes, tail) = tail.split_at(n);
            events.extend(decoder.push(bytes, now));
            inputs.extend(sequencer.push(bytes, now));
            rest = tail;
        }
        if decoder.has_partial() && cfg.inter_key_timeout != Duration::MAX {
            assert!(
                decoder.deadline().is_some(),
                "a partial entry without a deadline"
            );
        }
    }
    for event in &events {
        if let KeypadEvent::Submit(pin) = event {
            assert!(!pin.is_empty() && pin.len() <= longest, "entry length");
        }
    }
    for input in &inputs {
        match input {
            Input::Entry(pin) => assert!(pin.len() <= longest, "entry length"),
            Input::Change { id, old, new } => {
                assert!(id.len() <= longest && old.len() <= longest && new.len() <= longest)
            }
            Input::Forgot { id } => assert!(id.len() <= longest),
            _ => {}
        }
    }
}
