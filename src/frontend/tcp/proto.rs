//! The terminal line protocol, sans-IO: a line splitter that bounds line length and wipes
//! consumed bytes, a request parser and the reply encoder. Unit-tested and fuzzed; no sockets.

use crate::domain::Pin;
use zeroize::{Zeroize, Zeroizing};

pub const MAX_LINE: usize = 256;
const MAX_FIELD: usize = 64;

/// What the splitter produced from the bytes received so far. `Debug` never shows a line.
#[derive(PartialEq, Eq)]
pub enum Event {
    /// A complete line without its terminator. Wiped on drop (it may hold a PIN).
    Line(Zeroizing<Vec<u8>>),
    /// A line passed the limit; its remaining bytes are discarded up to the next terminator.
    Overlong,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Line(line) => write!(f, "Line(<{} bytes>)", line.len()),
            Event::Overlong => f.write_str("Overlong"),
        }
    }
}

/// Splits a byte stream into lines ending in CR, LF or CRLF; empty lines are skipped.
#[derive(Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
    discarding: bool,
}

impl Drop for LineSplitter {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

impl LineSplitter {
    pub fn new() -> Self {
        LineSplitter {
            buf: Vec::with_capacity(MAX_LINE),
            discarding: false,
        }
    }

    /// True while part of a line has arrived without its terminator.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty() || self.discarding
    }

    pub fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        for &b in bytes {
            if b == b'\r' || b == b'\n' {
                if self.discarding {
                    self.discarding = false;
                } else if !self.buf.is_empty() {
                    let line = Zeroizing::new(self.buf.clone());
                    self.buf.zeroize();
                    events.push(Event::Line(line));
                }
            } else if self.discarding {
                continue;
            } else if self.buf.len() >= MAX_LINE {
                self.buf.zeroize();
                self.discarding = true;
                events.push(Event::Overlong);
            } else {
                self.buf.push(b);
            }
        }
        events
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Pin(Pin),
    IdPin {
        id: String,
        pin: Pin,
    },
    /// A card read by the terminal's own reader, as read (normalised by the listener).
    Card(String),
    /// `CHANGE <id> <old> <new>`: the person's own new PIN.
    Change {
        id: String,
        old: Pin,
        new: Pin,
    },
    /// `FORGOT <id>`: a new PIN by mail to the address on record.
    Forgot {
        id: String,
    },
    Ping,
    Quit,
}

/// A malformed request. The text never echoes the input (it may hold a PIN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoError {
    NotAscii,
    UnknownCommand,
    Syntax,
    /// `CHANGE` or `FORGOT` with the wrong number of fields.
    SelfServiceSyntax,
    FieldTooLong,
    LineTooLong,
    Timeout,
    /// Too many malformed lines in a row: the connection is closed.
    TooManyErrors,
}

impl ProtoError {
    pub fn reply(self) -> &'static [u8] {
        match self {
            ProtoError::NotAscii => b"ERR 400 request must be printable ASCII\r\n",
            ProtoError::UnknownCommand => {
                b"ERR 400 unknown command: use PIN, ID, CARD, PING or QUIT\r\n"
            }
            ProtoError::Syntax => {
                b"ERR 400 malformed request: use PIN <pin> or ID <id> PIN <pin>\r\n"
            }
            ProtoError::SelfServiceSyntax => {
                b"ERR 400 malformed request: use CHANGE <id> <old> <new> or FORGOT <id>\r\n"
            }
            ProtoError::FieldTooLong => b"ERR 400 field too long\r\n",
            ProtoError::LineTooLong => b"ERR 413 line too long\r\n",
            ProtoError::Timeout => b"ERR 408 timeout waiting for end of line\r\n",
            ProtoError::TooManyErrors => b"ERR 429 too many malformed lines: closing\r\n",
        }
    }
}

fn field(token: &str) -> Result<&str, ProtoError> {
    if token.len() > MAX_FIELD {
        Err(ProtoError::FieldTooLong)
    } else {
        Ok(token)
    }
}

/// Parses one line. Keywords are case-insensitive; fields are separated by spaces or tabs.
pub fn parse(line: &[u8]) -> Result<Request, ProtoError> {
    if line
        .iter()
        .any(|&b| !(b == b'\t' || (0x20..0x7f).contains(&b)))
    {
        return Err(ProtoError::NotAscii);
    }
    let text = std::str::from_utf8(line).map_err(|_| ProtoError::NotAscii)?;
    let tokens: Vec<&str> = text.split([' ', '\t']).filter(|t| !t.is_empty()).collect();
    let Some(command) = tokens.first() else {
        return Err(ProtoError::Syntax);
    };
    let is = |t: &str, kw: &str| t.eq_ignore_ascii_case(kw);
    match tokens.as_slice() {
        [c] if is(c, "PING") => Ok(Request::Ping),
        [c] if is(c, "QUIT") => Ok(Request::Quit),
        [c, pin] if is(c, "PIN") => Ok(Request::Pin(Pin::new(field(pin)?))),
        [c, id, p, pin] if is(c, "ID") && is(p, "PIN") => Ok(Request::IdPin {
            id: field(id)?.to_string(),
            pin: Pin::new(field(pin)?),
        }),
        [c, id, old, new] if is(c, "CHANGE") => Ok(Request::Change {
            id: field(id)?.to_string(),
            old: Pin::new(field(old)?),
            new: Pin::new(field(new)?),
        }),
        [c, id] if is(c, "FORGOT") => Ok(Request::Forgot {
            id: field(id)?.to_string(),
        }),
        [c, ..] if is(c, "CHANGE") || is(c, "FORGOT") => Err(ProtoError::SelfServiceSyntax),
        [c, rest @ ..] if is(c, "CARD") && !rest.is_empty() => {
            Ok(Request::Card(field(&rest.join(" "))?.to_string()))
        }
        _ if ["PIN", "ID", "CARD", "PING", "QUIT"]
            .iter()
            .any(|k| is(command, k)) =>
        {
            Err(ProtoError::Syntax)
        }
        _ => Err(ProtoError::UnknownCommand),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `notice`: why jobs stayed held (`printer-unavailable`, `print-server-unavailable`),
    /// sent as a third token on the same line.
    Ok {
        user: &'a str,
        released: u32,
        notice: Option<&'a str>,
    },
    /// A card was read; its holder's PIN is expected next (card-then-PIN).
    NeedPin,
    Deny,
    Busy,
    /// `OK CHANGED`: the new PIN works from now on.
    Changed,
    /// `OK FORGOT`: the request is queued (the same for every id).
    ForgotAccepted,
    /// `ERR 422 <reason>`: the new PIN breaks the policy; nothing changed.
    Refused(&'a str),
    /// `ERR 403 not allowed`: self-service is off here.
    NotAllowed,
    Pong,
    Bye,
}

pub fn encode(reply: &Reply<'_>) -> Vec<u8> {
    match reply {
        Reply::Ok {
            user,
            released,
            notice: None,
        } => format!("OK {user} {released}\r\n").into_bytes(),
        Reply::Ok {
            user,
            released,
            notice: Some(why),
        } => format!("OK {user} {released} {why}\r\n").into_bytes(),
        Reply::NeedPin => b"NEED PIN\r\n".to_vec(),
        Reply::Deny => b"DENY\r\n".to_vec(),
        Reply::Busy => b"BUSY\r\n".to_vec(),
        Reply::Changed => b"OK CHANGED\r\n".to_vec(),
        Reply::ForgotAccepted => b"OK FORGOT\r\n".to_vec(),
        Reply::Refused(why) => format!("ERR 422 {}\r\n", one_line(why)).into_bytes(),
        Reply::NotAllowed => b"ERR 403 not allowed\r\n".to_vec(),
        Reply::Pong => b"PONG\r\n".to_vec(),
        Reply::Bye => b"BYE\r\n".to_vec(),
    }
}

/// A reason as one printable ASCII line (a policy's text, never the input).
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
        .collect()
}

#[cfg(test)]
#[path = "proto_tests.rs"]
mod tests;
