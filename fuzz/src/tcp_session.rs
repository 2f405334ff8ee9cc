//! TCP terminal session: the line splitter fed in arbitrary pieces, the request parser on each
//! line, the card normaliser under several reader formats and the reply encoder.
//! Invariants: how the stream is cut never changes the lines; lines are bounded and
//! terminator-free; card ids are normalised; every reply is one printable ASCII line.

use pinwarden::frontend::tcp::card::{CardFormat, CardReader, Radix};
use pinwarden::frontend::tcp::proto::{self, Event, LineSplitter, Reply, Request, MAX_LINE};
use std::sync::OnceLock;

fn readers() -> &'static [CardReader] {
    static READERS: OnceLock<Vec<CardReader>> = OnceLock::new();
    READERS.get_or_init(|| {
        let format = |regex: Option<&str>, input, output, reverse_bytes| CardFormat {
            regex: regex.map(str::to_owned),
            input,
            output,
            reverse_bytes,
        };
        [
            format(None, Radix::Hex, Radix::Hex, false),
            format(None, Radix::Hex, Radix::Decimal, true),
            format(None, Radix::Decimal, Radix::Hex, false),
            format(
                Some(r"^\x02([0-9A-Fa-f]+)\x03$"),
                Radix::Hex,
                Radix::Hex,
                false,
            ),
            format(
                Some(r"UID:\s*([0-9]+)"),
                Radix::Decimal,
                Radix::Decimal,
                true,
            ),
        ]
        .iter()
        .map(|f| CardReader::new(f).expect("the fuzz card formats compile"))
        .collect()
    })
}

fn one_line(reply: &[u8]) {
    assert!(reply.ends_with(b"\r\n"), "a reply ends in CRLF");
    let body = &reply[..reply.len() - 2];
    assert!(
        body.iter().all(|b| (0x20..0x7f).contains(b)),
        "a reply is one printable line"
    );
}

fn check_line(line: &[u8]) {
    assert!(!line.is_empty() && line.len() <= MAX_LINE, "line length");
    assert!(
        !line.contains(&b'\r') && !line.contains(&b'\n'),
        "terminator in a line"
    );
    match proto::parse(line) {
        Ok(Request::Card(raw)) => {
            if let Some(card) = pinwarden::domain::normalise_card(&raw) {
                assert!(card.len() <= 64 && card.bytes().all(|b| b.is_ascii_alphanumeric()));
            }
        }
        Ok(Request::IdPin { id, .. }) | Ok(Request::Change { id, .. }) => {
            one_line(&proto::encode(&Reply::Ok {
                user: &id,
                released: 1,
                notice: None,
            }));
        }
        Ok(_) => {}
        Err(e) => one_line(e.reply()),
    }
    for reader in readers() {
        if let Some(card) = reader.read(line) {
            assert!(!card.is_empty() && card.len() <= 64, "card length");
            assert!(
                card.bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()),
                "card id not normalised"
            );
        }
    }
    // A policy reason is free text: the encoder must still keep it to one line.
    one_line(&proto::encode(&Reply::Refused(&String::from_utf8_lossy(
        line,
    ))));
}

pub fn run(data: &[u8]) {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let piece = usize::from(cut % 32) + 1;
    let mut pieces = LineSplitter::new();
    let mut events = Vec::new();
    for chunk in stream.chunks(piece) {
        events.extend(pieces.push(chunk));
    }
    let mut whole = LineSplitter::new();
    assert_eq!(events, whole.push(stream), "the cut changed the lines");
    assert_eq!(pieces.has_partial(), whole.has_partial());
    for event in &events {
        if let Event::Line(line) = event {
            check_line(line);
        }
    }
}
