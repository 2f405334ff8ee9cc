//! A check of an IPP response's framing before the `ipp` crate parses it: the crate (8.0)
//! slices the inner lengths of textWithLanguage/nameWithLanguage values without checking
//! them, so a short value panics (found by the `ipp_response` fuzz target). Pure bytes; knows
//! nothing of CUPS or of the crate.

const TEXT_WITH_LANGUAGE: u8 = 0x35;
const NAME_WITH_LANGUAGE: u8 = 0x36;
const END_OF_ATTRIBUTES: u8 = 0x03;

/// Err names the first with-language value whose inner lengths overrun it. Other framing
/// faults (truncation, unknown tags) are left to the parser, which reports them safely.
pub(crate) fn check(body: &[u8]) -> Result<(), String> {
    let mut rest = body.get(8..).unwrap_or_default();
    while let Some((&tag, tail)) = rest.split_first() {
        rest = tail;
        match tag {
            END_OF_ATTRIBUTES => return Ok(()),
            0x01..=0x0a => continue,
            0x10..=0x4a => {}
            _ => return Ok(()),
        }
        let Some((_name, tail)) = take_len(rest) else {
            return Ok(());
        };
        let Some((value, tail)) = take_len(tail) else {
            return Ok(());
        };
        rest = tail;
        if matches!(tag, TEXT_WITH_LANGUAGE | NAME_WITH_LANGUAGE) {
            let whole = take_len(value)
                .and_then(|(_language, text)| take_len(text))
                .is_some();
            if !whole {
                return Err(format!(
                    "a value of tag 0x{tag:02x} is shorter than its language and text"
                ));
            }
        }
    }
    Ok(())
}

/// A u16-length-prefixed field and what follows it; None when the bytes are too short.
fn take_len(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::check;

    fn response(value: &[u8]) -> Vec<u8> {
        let mut body = vec![2, 0, 0, 0, 0, 0, 0, 1, 0x02, 0x36, 0, 4];
        body.extend(b"name");
        body.extend((value.len() as u16).to_be_bytes());
        body.extend(value);
        body.push(0x03);
        body
    }

    #[test]
    fn well_formed_with_language_values_pass() {
        assert_eq!(check(&response(b"\x00\x02en\x00\x03bob")), Ok(()));
        assert_eq!(check(b"\x02\x00\x00\x00\x00\x00\x00\x01\x03"), Ok(()));
        assert_eq!(check(b""), Ok(()));
    }

    /// The `ipp_response` fuzz target's crash: a nameWithLanguage whose text length (0x6c)
    /// runs past the value made `ipp` 8.0 panic slicing it.
    #[test]
    fn an_overrunning_language_or_text_length_is_refused() {
        assert!(check(&response(b"\x00\x02en\x00\x6cbob")).is_err());
        assert!(check(&response(b"\x00\x09en")).is_err());
        assert!(check(&response(b"\x00")).is_err());
    }

    /// The same bodies through the parser as pinwarden calls it: an error, never a panic.
    #[test]
    fn the_parser_never_sees_them() {
        let body = bytes::Bytes::from(response(b"\x00\x02en\x00\x6cbob"));
        assert!(super::super::cups::parse_response(body).is_err());
    }
}
