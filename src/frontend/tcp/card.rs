//! Network card readers, sans-IO: turns one line from a reader (the PaperCut "generic"
//! style: a bare card number per read, maybe wrapped in a prefix/suffix) into the stored
//! card form. Regex capture → parse in the input radix → optional byte reversal → print in
//! the output radix → `domain::normalise_card` (upper case, leading zeros stripped). Lines
//! that are not a card (probe strings, banners, garbage) give `None`. The only file naming
//! `regex`; no sockets.

use regex::Regex;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Radix {
    Hex,
    Decimal,
}

/// How a reader's lines become card ids, as configured in `[tcp.card]`.
#[derive(Clone, Debug, Serialize)]
pub struct CardFormat {
    /// The card number is capture group 1 (or the whole match) of the first match.
    pub regex: Option<String>,
    pub input: Radix,
    pub output: Radix,
    /// Reverse the byte order (readers that send the UID least significant byte first).
    pub reverse_bytes: bool,
}

/// A `CardFormat` ready to apply: the regex compiled.
#[derive(Clone, Debug)]
pub struct CardReader {
    regex: Option<Regex>,
    format: CardFormat,
}

/// Longest card number accepted, in characters of the input radix.
const MAX_DIGITS: usize = 64;

impl CardReader {
    /// Compiles the regex; Err says what is wrong with it.
    pub fn new(format: &CardFormat) -> Result<Self, String> {
        let regex = match &format.regex {
            None => None,
            Some(r) => Some(Regex::new(r).map_err(|e| format!("regex {r:?}: {e}"))?),
        };
        Ok(CardReader {
            regex,
            format: format.clone(),
        })
    }

    /// The stored card id for one line from the reader, or `None` when it is not a card.
    pub fn read(&self, line: &[u8]) -> Option<String> {
        // Control characters (STX/ETX framing) are left for the regex to match.
        let text = std::str::from_utf8(line).ok()?;
        let digits = match &self.regex {
            Some(re) => {
                let caps = re.captures(text)?;
                caps.get(1).or_else(|| caps.get(0))?.as_str()
            }
            None => text,
        }
        .trim();
        let mut bytes = parse(digits, self.format.input)?;
        if self.format.reverse_bytes {
            bytes.reverse();
        }
        crate::domain::normalise_card(&print(&bytes, self.format.output)?)
    }
}

/// Big-endian bytes of a number written in `radix` (digits only, at most `MAX_DIGITS`).
fn parse(digits: &str, radix: Radix) -> Option<Vec<u8>> {
    if digits.is_empty() || digits.len() > MAX_DIGITS {
        return None;
    }
    match radix {
        Radix::Hex => {
            if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let padded = if digits.len() % 2 == 1 {
                format!("0{digits}")
            } else {
                digits.to_string()
            };
            hex::decode(padded).ok()
        }
        Radix::Decimal => {
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: u128 = digits.parse().ok()?;
            let all = n.to_be_bytes();
            let first = all.iter().position(|&b| b != 0).unwrap_or(all.len() - 1);
            Some(all[first..].to_vec())
        }
    }
}

fn print(bytes: &[u8], radix: Radix) -> Option<String> {
    match radix {
        Radix::Hex => Some(hex::encode_upper(bytes)),
        Radix::Decimal => {
            if bytes.len() > 16 {
                return None;
            }
            let mut all = [0u8; 16];
            all[16 - bytes.len()..].copy_from_slice(bytes);
            Some(u128::from_be_bytes(all).to_string())
        }
    }
}

#[cfg(test)]
#[path = "card_tests.rs"]
mod tests;
