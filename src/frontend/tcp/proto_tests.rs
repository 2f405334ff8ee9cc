use super::*;
use rand::{Rng, SeedableRng};

fn lines(events: Vec<Event>) -> Vec<String> {
    events
        .into_iter()
        .map(|e| match e {
            Event::Line(l) => String::from_utf8_lossy(&l).into_owned(),
            Event::Overlong => "<overlong>".into(),
        })
        .collect()
}

#[test]
fn splits_on_cr_lf_and_crlf() {
    let mut s = LineSplitter::new();
    assert_eq!(
        lines(s.push(b"PING\rPING\nPIN 1\r\n\r\n")),
        ["PING", "PING", "PIN 1"]
    );
    assert!(!s.has_partial());
}

#[test]
fn lines_may_arrive_byte_by_byte() {
    let mut s = LineSplitter::new();
    let mut got = Vec::new();
    for b in b"PIN 048213\r\n" {
        got.extend(lines(s.push(&[*b])));
        if got.is_empty() {
            assert!(s.has_partial() || *b == b'\r');
        }
    }
    assert_eq!(got, ["PIN 048213"]);
}

#[test]
fn overlong_line_is_reported_once_then_discarded_until_terminator() {
    let mut s = LineSplitter::new();
    let mut input = vec![b'7'; MAX_LINE + 100];
    input.extend_from_slice(b"\nPING\n");
    assert_eq!(lines(s.push(&input)), ["<overlong>", "PING"]);
    let exact = [vec![b'A'; MAX_LINE], b"\n".to_vec()].concat();
    assert_eq!(
        lines(s.push(&exact)).len(),
        1,
        "a line of exactly MAX_LINE bytes is accepted"
    );
}

#[test]
fn parse_table() {
    #[rustfmt::skip]
    let table: [(&[u8], Result<Request, ProtoError>); 18] = [
        (b"PING", Ok(Request::Ping)),
        (b"ping", Ok(Request::Ping)),
        (b"QUIT", Ok(Request::Quit)),
        (b"PIN 048213", Ok(Request::Pin(Pin::new("048213")))),
        (b"pin\t048213", Ok(Request::Pin(Pin::new("048213")))),
        (b"ID alice PIN 482913", Ok(Request::IdPin { id: "alice".into(), pin: Pin::new("482913") })),
        (b"id alice pin 482913", Ok(Request::IdPin { id: "alice".into(), pin: Pin::new("482913") })),
        (b"PIN", Err(ProtoError::Syntax)),
        (b"PIN 1 2", Err(ProtoError::Syntax)),
        (b"ID alice 482913", Err(ProtoError::Syntax)),
        (b"   ", Err(ProtoError::Syntax)),
        (b"GET / HTTP/1.1", Err(ProtoError::UnknownCommand)),
        (b"CARD 0004 82115", Ok(Request::Card("0004 82115".into()))),
        (b"card 75B43", Ok(Request::Card("75B43".into()))),
        (b"CARD", Err(ProtoError::Syntax)),
        (b"PIN \xff\xfe", Err(ProtoError::NotAscii)),
        (b"PIN 12\x0034", Err(ProtoError::NotAscii)),
        (b"PIN 0123456789012345678901234567890123456789012345678901234567890123456789", Err(ProtoError::FieldTooLong)),
    ];
    for (input, want) in table {
        assert_eq!(
            parse(input),
            want,
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn error_replies_never_echo_input() {
    for e in [
        ProtoError::NotAscii,
        ProtoError::UnknownCommand,
        ProtoError::Syntax,
        ProtoError::FieldTooLong,
    ] {
        let reply = String::from_utf8_lossy(e.reply()).into_owned();
        assert!(
            reply.starts_with("ERR ") && reply.ends_with("\r\n"),
            "{reply}"
        );
        assert!(!reply.contains("048213"));
    }
}

#[test]
fn encodes_replies() {
    assert_eq!(
        encode(&Reply::Ok {
            user: "alice",
            released: 0,
            notice: None,
        }),
        b"OK alice 0\r\n"
    );
    assert_eq!(
        encode(&Reply::Ok {
            user: "alice",
            released: 2,
            notice: Some("printer-unavailable"),
        }),
        b"OK alice 2 printer-unavailable\r\n"
    );
    assert_eq!(encode(&Reply::NeedPin), b"NEED PIN\r\n");
    assert_eq!(encode(&Reply::Deny), b"DENY\r\n");
    assert_eq!(encode(&Reply::Busy), b"BUSY\r\n");
}

/// Random garbage never panics, never yields a line above the limit, and every byte is
/// accounted for: the splitter never buffers more than MAX_LINE bytes.
#[test]
fn fuzz_splitter_and_parser_with_random_bytes() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let alphabet: &[u8] = b"PINIDPING \r\n\t0123456789\xff\x00";
    for _ in 0..20_000 {
        let mut s = LineSplitter::new();
        let len = rng.gen_range(0..600);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.gen_bool(0.7) {
                    alphabet[rng.gen_range(0..alphabet.len())]
                } else {
                    rng.gen()
                }
            })
            .collect();
        for chunk in bytes.chunks(rng.gen_range(1..64)) {
            for event in s.push(chunk) {
                if let Event::Line(line) = event {
                    assert!(line.len() <= MAX_LINE);
                    let _ = parse(&line);
                }
            }
            assert!(s.buf.len() <= MAX_LINE);
        }
    }
}

#[test]
fn self_service_requests_and_replies() {
    let change = parse(b"change alice 482913 731955").unwrap();
    assert_eq!(
        change,
        Request::Change {
            id: "alice".into(),
            old: Pin::new("482913"),
            new: Pin::new("731955"),
        }
    );
    assert!(!format!("{change:?}").contains("482913"), "PINs redacted");
    assert_eq!(
        parse(b"FORGOT alice"),
        Ok(Request::Forgot { id: "alice".into() })
    );
    for bad in [&b"CHANGE alice 482913"[..], b"FORGOT", b"FORGOT a b"] {
        assert_eq!(parse(bad), Err(ProtoError::SelfServiceSyntax));
    }
    let reply = String::from_utf8_lossy(ProtoError::SelfServiceSyntax.reply()).into_owned();
    assert!(reply.starts_with("ERR 400 ") && reply.ends_with("\r\n"));
    assert_eq!(encode(&Reply::Changed), b"OK CHANGED\r\n");
    assert_eq!(encode(&Reply::ForgotAccepted), b"OK FORGOT\r\n");
    assert_eq!(encode(&Reply::NotAllowed), b"ERR 403 not allowed\r\n");
    assert_eq!(
        encode(&Reply::Refused("PIN must\r\nnot")),
        b"ERR 422 PIN must  not\r\n"
    );
}
