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

/// A Vec-backed queue for `next_due`.
#[derive(Default)]
struct Rows(Mutex<Vec<QueuedMail>>);

impl MailQueue for Rows {
    fn peek_after(&self, lane: Lane, after: u64, limit: usize) -> Result<Vec<QueuedMail>, String> {
        let rows = self.0.lock().unwrap();
        let rows = rows.iter().filter(|m| m.lane == lane && m.seq > after);
        Ok(rows.take(limit).cloned().collect())
    }
    fn update(&self, _: &QueuedMail) -> Result<(), String> {
        Ok(())
    }
    fn remove(&self, lane: Lane, seq: u64) -> Result<(), String> {
        self.0
            .lock()
            .unwrap()
            .retain(|m| (m.lane, m.seq) != (lane, seq));
        Ok(())
    }
    fn check(&self, _: &QueuedMail) -> Result<Currency, String> {
        Ok(Currency::Current)
    }
    fn audit(&self, _: AuditKind) {}
}

#[tokio::test(start_paused = true)]
async fn a_lane_is_read_past_messages_waiting_to_retry() {
    let now = Timestamp::now().millis();
    let age = Duration::from_secs(3_600);
    let waiting = now + 600_000;
    // Three pages of rows waiting to retry, then a due one.
    let mut rows: Vec<QueuedMail> = (1..=6).map(|s| row(s, now, waiting)).collect();
    rows.push(row(7, now, now));
    let queue = Arc::new(Rows(Mutex::new(rows)));
    let mailer = Mailer::new(&super::super::SmtpSettings {
        host: "127.0.0.1".into(),
        port: 1,
        tls: super::super::SmtpTls::None,
        auth: super::super::SmtpAuth::None,
        ca_file: None,
        from: "print@example.org".into(),
        reply_to: None,
        timeout: Duration::from_secs(1),
    })
    .unwrap();
    let settings = OutboxSettings {
        scan: 2,
        ..OutboxSettings::new(age, None, None)
    };
    let mut worker = MailWorker::new(
        queue.clone(),
        Arc::new(mailer),
        Arc::new(Sealer::new(&[1; 32])),
        settings,
    );
    let due = worker.next_due(Instant::now()).unwrap();
    assert_eq!(due.map(|m| m.seq), Some(7), "found behind 6 waiting rows");
    // Without it, the worker sleeps until the first waiting row is due.
    queue.0.lock().unwrap().pop();
    assert_eq!(worker.next_due(Instant::now()).unwrap(), None);
    let wake = worker.wake_at.unwrap() - Instant::now();
    assert!(
        wake > Duration::from_secs(590) && wake <= Duration::from_secs(600),
        "{wake:?}"
    );
}
