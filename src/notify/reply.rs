//! Sorting an SMTP reply into what the outbox does next (drop, retry this message, pause the
//! lane, wait for the relay), from its basic and RFC 3463 enhanced codes and wording. Pure;
//! the transport hands it lettre's error as text and flags.

use super::transport::SendError;

/// SASL logins refused (530, 534, 535, 538) are the relay's settings, not the message's.
const LOGIN_CODES: [&str; 4] = ["530", "534", "535", "538"];
/// The relay as a whole says "not now" (service closing, TLS or auth temporarily off).
const RELAY_CODES: [&str; 3] = ["421", "432", "454"];

/// The RFC 3463 enhanced status code in a reply (`5.1.1`), as (class, subject, detail).
fn enhanced(text: &str) -> Option<(u16, u16, u16)> {
    text.split(|c: char| c.is_whitespace() || c == ':' || c == '(' || c == ')')
        .find_map(|word| {
            let mut parts = word.split('.');
            let class = parts
                .next()?
                .parse()
                .ok()
                .filter(|c| matches!(c, 2 | 4 | 5))?;
            let subject = parts.next()?.parse().ok()?;
            let detail = parts.next()?.parse().ok()?;
            parts.next().is_none().then_some((class, subject, detail))
        })
}

/// The sender's own sending rate or quota was hit: every message waits, not this one only.
fn sender_quota(lower: &str, code: Option<(u16, u16, u16)>) -> bool {
    matches!(code, Some((_, 4, 5)))
        || [
            "rate limit",
            "sending limit",
            "sending quota",
            "submissionquota",
            "too many messages",
        ]
        .iter()
        .any(|w| lower.contains(w))
}

/// Problems of this message or recipient (address, mailbox full, too big, too many
/// recipients, a loop, content): other messages are unaffected.
fn per_message(code: Option<(u16, u16, u16)>) -> bool {
    matches!(
        code,
        Some((_, 1, _) | (_, 2, _) | (_, 3, 4) | (_, 4, 6) | (_, 5, 3) | (_, 6, _))
    )
}

/// What the outbox does after a reply: `text` the whole reply, `basic` its three-digit
/// code (empty when there was none, e.g. a broken connection).
pub(super) fn sort(text: String, basic: &str, transient: bool, permanent: bool) -> SendError {
    let lower = text.to_ascii_lowercase();
    let code = enhanced(&text);
    if LOGIN_CODES.contains(&basic) {
        SendError::Unavailable(format!("login refused ({basic}): {text}"))
    } else if (transient || permanent) && sender_quota(&lower, code) {
        // Exchange Online reports its daily submission quota with a 5xx.
        SendError::Deferred {
            reason: text,
            quota: true,
        }
    } else if per_message(code) && permanent {
        SendError::Refused(text)
    } else if per_message(code) && transient {
        SendError::Deferred {
            reason: text,
            quota: false,
        }
    } else if RELAY_CODES.contains(&basic) || matches!(code, Some((_, 7, _))) {
        // Relay access denied, sender not allowed, TLS or auth required: the relay's
        // settings, so no message is dropped for it.
        SendError::Unavailable(format!(
            "the mail server refuses pinwarden ({basic}): {text}"
        ))
    } else if permanent {
        SendError::Refused(text)
    } else if transient {
        SendError::Deferred {
            reason: text,
            quota: false,
        }
    } else {
        SendError::Unavailable(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(reply: &str) -> SendError {
        let basic = &reply[..3];
        sort(
            reply.into(),
            basic,
            basic.starts_with('4'),
            basic.starts_with('5'),
        )
    }

    #[test]
    fn replies_are_sorted_by_what_happens_next() {
        assert!(matches!(
            sorted("550 5.1.1 no such user"),
            SendError::Refused(_)
        ));
        let full = sorted("452 4.2.2 mailbox full");
        assert!(matches!(full, SendError::Deferred { quota: false, .. }));
        let rate = sorted("451 4.7.0 Sending rate limit exceeded");
        assert!(matches!(rate, SendError::Deferred { quota: true, .. }));
        let daily = sorted("554 5.2.0 SubmissionQuotaExceeded");
        assert!(matches!(daily, SendError::Deferred { quota: true, .. }));
        let login = sorted("535 5.7.8 authentication failed");
        assert!(matches!(login, SendError::Unavailable(ref m) if m.contains("login refused")));
        let relay = sorted("550 5.7.1 relaying denied");
        assert!(matches!(relay, SendError::Unavailable(_)));
        assert_eq!(enhanced("250 2.0.0 ok"), Some((2, 0, 0)));
        assert_eq!(enhanced("250 ok"), None);
    }
}
