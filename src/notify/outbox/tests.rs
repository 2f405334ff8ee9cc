use super::*;
use crate::domain::MailKind;

fn row(seq: u64, created: i64, not_before: i64) -> QueuedMail {
    QueuedMail {
        seq,
        lane: Lane::Bulk,
        kind: MailKind::ExpiryReminder,
        user: "jdoe".into(),
        to: "jdoe@example.org".into(),
        pin_set_at: None,
        created_at: Timestamp::from_millis(created),
        not_before: Timestamp::from_millis(not_before),
        attempts: 0,
        last_error: None,
        sealed: Vec::new(),
    }
}

const AGE: Duration = Duration::from_secs(100);

#[test]
fn the_first_due_row_is_sent_oldest_first() {
    let rows = [row(1, 0, 50_000), row(2, 0, 10_000), row(3, 0, 0)];
    assert_eq!(
        pick(&rows, Timestamp::from_millis(20_000), AGE),
        Pick::Send(1)
    );
    assert_eq!(
        pick(&rows, Timestamp::from_millis(60_000), AGE),
        Pick::Send(0)
    );
}

#[test]
fn expired_rows_are_dropped_before_anything_is_sent() {
    let rows = [row(1, 50_000, 0), row(2, 0, 0)];
    assert_eq!(
        pick(&rows, Timestamp::from_millis(100_000), AGE),
        Pick::Expired(1)
    );
    assert_eq!(
        pick(&rows, Timestamp::from_millis(99_999), AGE),
        Pick::Send(0)
    );
}

#[test]
fn nothing_due_says_when_to_look_again() {
    let rows = [row(1, 0, 70_000), row(2, 0, 30_000)];
    let at = Timestamp::from_millis(30_000);
    assert_eq!(
        pick(&rows, Timestamp::from_millis(1_000), AGE),
        Pick::Wait(Some(at))
    );
    assert_eq!(
        pick(&[], Timestamp::from_millis(1_000), AGE),
        Pick::Wait(None)
    );
}

#[test]
fn retries_back_off_exponentially_with_jitter() {
    let settings = OutboxSettings {
        retry_initial: Duration::from_secs(10),
        retry_max: Duration::from_secs(60),
        ..OutboxSettings::new(AGE, None, None)
    };
    let delays: Vec<f64> = (1..=5)
        .map(|a| retry_delay(&settings, a).as_secs_f64())
        .collect();
    for (got, base) in delays.iter().zip([10.0, 20.0, 40.0, 60.0, 60.0]) {
        assert!((base * 0.8..=base * 1.2).contains(got), "{got} vs {base}");
    }
}
