use super::*;
use rand::{Rng, SeedableRng};

fn reader(regex: Option<&str>, input: Radix, output: Radix, reverse: bool) -> CardReader {
    CardReader::new(&CardFormat {
        regex: regex.map(String::from),
        input,
        output,
        reverse_bytes: reverse,
    })
    .unwrap()
}

#[test]
fn hex_and_decimal_reads_of_one_card_agree() {
    let hex_in = reader(None, Radix::Hex, Radix::Decimal, false);
    let dec_in = reader(None, Radix::Decimal, Radix::Decimal, false);
    for line in [&b"75B43"[..], b"075b43", b"00075B43", b" 75B43 "] {
        assert_eq!(hex_in.read(line).as_deref(), Some("482115"), "{line:?}");
    }
    for line in [&b"482115"[..], b"0000482115"] {
        assert_eq!(dec_in.read(line).as_deref(), Some("482115"), "{line:?}");
    }
    let to_hex = reader(None, Radix::Decimal, Radix::Hex, false);
    assert_eq!(to_hex.read(b"482115").as_deref(), Some("75B43"));
}

#[test]
fn byte_order_reversal() {
    let r = reader(None, Radix::Hex, Radix::Decimal, true);
    assert_eq!(r.read(b"78563412").as_deref(), Some("305419896"));
    let r = reader(None, Radix::Decimal, Radix::Hex, true);
    assert_eq!(r.read(b"305419896").as_deref(), Some("78563412"));
}

#[test]
fn regex_captures_the_number_and_skips_probes() {
    let r = reader(Some(r"^ID:([0-9A-F]+);"), Radix::Hex, Radix::Decimal, false);
    assert_eq!(r.read(b"ID:075B43;").as_deref(), Some("482115"));
    assert_eq!(r.read(b"GET / HTTP/1.0"), None);
    assert_eq!(r.read(b"ID:;"), None);
    let whole = reader(Some(r"[0-9]{6,}"), Radix::Decimal, Radix::Decimal, false);
    assert_eq!(whole.read(b"card 00482115 read").as_deref(), Some("482115"));
}

#[test]
fn non_cards_are_ignored() {
    let r = reader(None, Radix::Decimal, Radix::Decimal, false);
    for line in [
        &b"HELO"[..],
        b"",
        b"0000",
        b"12a4",
        b"\xff\xfe",
        b"12\x0034",
        &[b'9'; 65],
        b"999999999999999999999999999999999999999999",
    ] {
        assert_eq!(r.read(line), None, "{line:?}");
    }
    assert!(CardReader::new(&CardFormat {
        regex: Some("(".into()),
        input: Radix::Hex,
        output: Radix::Hex,
        reverse_bytes: false,
    })
    .is_err());
}

#[test]
fn garbage_never_panics_and_results_are_in_stored_form() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let readers = [
        reader(None, Radix::Hex, Radix::Decimal, true),
        reader(None, Radix::Decimal, Radix::Hex, false),
        reader(Some(r"([0-9A-Fa-f]+)"), Radix::Hex, Radix::Hex, true),
    ];
    let alphabet = b"0123456789abcdefABCDEF xyz;:\r\t\x00\xff";
    for _ in 0..20_000 {
        let len = rng.gen_range(0..80);
        let line: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
            .collect();
        for r in &readers {
            if let Some(card) = r.read(&line) {
                assert_eq!(
                    crate::domain::normalise_card(&card).as_deref(),
                    Some(&*card)
                );
            }
        }
    }
}
