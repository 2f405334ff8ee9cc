//! The outbox worker under the real supervisor against a real aiosmtpd on loopback (STARTTLS
//! verified against a test CA), with an in-test Vec-backed `MailQueue`: delivery once in
//! lane priority order, an outage survived, a 5xx refusal dropped and audited, a quota 4xx
//! pausing only its lane, superseded and expired messages dropped unsent.

mod common;

use common::smtp::{SmtpOptions, SmtpServer};
use common::wait_until;
use pinwarden::domain::{AuditKind, Lane, MailAction, MailKind, QueuedMail, Timestamp};
use pinwarden::notify::{
    Currency, MailQueue, MailWorker, Mailer, OutboxHandle, OutboxSettings, Rendered, Sealer,
    SmtpAuth, SmtpSettings, SmtpTls,
};
use pinwarden::worker::{Settings, Supervisor};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use zeroize::Zeroizing;

const KEY: [u8; 32] = [7; 32];
const WITHIN: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Queue {
    rows: Mutex<Vec<QueuedMail>>,
    audit: Mutex<Vec<AuditKind>>,
    superseded: Mutex<Vec<String>>,
    /// How many removals fail next (a store error).
    failing_removes: Mutex<u32>,
    next_seq: Mutex<u64>,
}

impl Queue {
    /// Queues a sealed message for `user` in `lane`, `created` ago.
    fn push(&self, lane: Lane, user: &str, created: Duration) {
        let kind = MailKind::NewPin;
        let to = format!("{user}@example.org");
        let rendered = Rendered {
            subject: format!("PIN for {user}"),
            text: Zeroizing::new(format!("Hello {user}, your PIN is 4711.\n")),
            html: None,
        };
        let sealed = Sealer::new(&KEY).seal(
            &QueuedMail::seal_binding(user, &to, kind),
            &rendered.to_bytes(),
        );
        let mut seq = self.next_seq.lock().unwrap();
        *seq += 1;
        let created_at =
            Timestamp::from_millis(Timestamp::now().millis() - created.as_millis() as i64);
        self.rows.lock().unwrap().push(QueuedMail {
            seq: *seq,
            lane,
            kind,
            user: user.into(),
            to,
            pin_set_at: Some(created_at),
            created_at,
            not_before: created_at,
            attempts: 0,
            last_error: None,
            sealed,
        });
    }

    fn rows(&self) -> Vec<QueuedMail> {
        self.rows.lock().unwrap().clone()
    }

    /// (action, user, detail) of every mail audit event so far.
    fn audited(&self) -> Vec<(MailAction, String, Option<String>)> {
        let audit = self.audit.lock().unwrap();
        audit
            .iter()
            .filter_map(|e| match e {
                AuditKind::Mail {
                    action,
                    user,
                    detail,
                    ..
                } => Some((*action, user.clone().unwrap_or_default(), detail.clone())),
                _ => None,
            })
            .collect()
    }

    fn wait_audited(&self, action: MailAction, user: &str) -> Option<String> {
        wait_until(WITHIN, || {
            let audited = self.audited();
            audited
                .iter()
                .find(|(a, u, _)| *a == action && u == user)
                .map(|(_, _, detail)| detail.clone())
                .ok_or(format!("no {action} for {user}: {audited:?}"))
        })
    }
}

impl MailQueue for Queue {
    fn peek_after(&self, lane: Lane, after: u64, limit: usize) -> Result<Vec<QueuedMail>, String> {
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .iter()
            .filter(|m| m.lane == lane && m.seq > after)
            .take(limit)
            .cloned()
            .collect())
    }

    fn update(&self, mail: &QueuedMail) -> Result<(), String> {
        let mut rows = self.rows.lock().unwrap();
        let row = rows
            .iter_mut()
            .find(|m| (m.lane, m.seq) == (mail.lane, mail.seq));
        *row.ok_or("no such row")? = mail.clone();
        Ok(())
    }

    fn remove(&self, lane: Lane, seq: u64) -> Result<(), String> {
        let mut failing = self.failing_removes.lock().unwrap();
        if *failing > 0 {
            *failing -= 1;
            return Err("the store is read-only".into());
        }
        self.rows
            .lock()
            .unwrap()
            .retain(|m| (m.lane, m.seq) != (lane, seq));
        Ok(())
    }

    fn check(&self, mail: &QueuedMail) -> Result<Currency, String> {
        Ok(match self.superseded.lock().unwrap().contains(&mail.user) {
            true => Currency::Superseded("the PIN was replaced".into()),
            false => Currency::Current,
        })
    }

    fn audit(&self, event: AuditKind) {
        self.audit.lock().unwrap().push(event);
    }
}

struct Running {
    handle: OutboxHandle,
    supervisor: Supervisor,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

fn start(server: &SmtpServer, queue: Arc<Queue>, quota_pause: Duration) -> Running {
    let mailer = Mailer::new(&SmtpSettings {
        host: "127.0.0.1".into(),
        port: server.port,
        tls: SmtpTls::Starttls,
        auth: SmtpAuth::None,
        ca_file: Some(server.ca.clone()),
        from: "Print room <print@example.org>".into(),
        reply_to: None,
        timeout: Duration::from_secs(10),
    })
    .unwrap();
    let settings = OutboxSettings {
        retry_initial: Duration::from_millis(200),
        retry_max: Duration::from_secs(1),
        quota_pause,
        ..OutboxSettings::new(Duration::from_secs(3_600), None, None)
    };
    let worker = MailWorker::new(
        queue,
        Arc::new(mailer),
        Arc::new(Sealer::new(&KEY)),
        settings,
    );
    let handle = worker.handle();
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let supervisor = Supervisor::new(shutdown.clone(), tracker.clone());
    let retry = Settings::new(Duration::from_millis(100), Duration::from_millis(500));
    supervisor.spawn("mail", retry, worker);
    Running {
        handle,
        supervisor,
        shutdown,
        tracker,
    }
}

fn starttls() -> SmtpOptions {
    SmtpOptions {
        starttls: true,
        ..SmtpOptions::default()
    }
}

/// The recipients of the delivered messages, in order.
fn recipients(server: &SmtpServer) -> Vec<String> {
    server
        .messages()
        .iter()
        .filter_map(|m| m.lines().find_map(|l| l.strip_prefix("X-Envelope-To: ")))
        .map(|to| to.trim_end_matches("@example.org").to_string())
        .collect()
}

fn wait_empty(queue: &Queue) {
    wait_until(WITHIN, || match queue.rows().is_empty() {
        true => Ok(()),
        false => Err(format!("still queued: {:?}", queue.rows())),
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_once_in_lane_priority_order_with_the_pin_only_inside() {
    let server = SmtpServer::start(starttls());
    let queue = Arc::new(Queue::default());
    for (lane, user) in [
        (Lane::Bulk, "bulk1"),
        (Lane::Bulk, "bulk2"),
        (Lane::NewPin, "new1"),
        (Lane::Reset, "reset1"),
    ] {
        queue.push(lane, user, Duration::ZERO);
    }
    let running = start(&server, queue.clone(), Duration::from_secs(60));
    server.wait_messages(4, WITHIN);
    wait_empty(&queue);
    assert_eq!(recipients(&server), ["reset1", "new1", "bulk1", "bulk2"]);
    let messages = server.messages();
    assert!(messages[0].contains("your PIN is 4711") && messages[0].contains("X-TLS: yes"));
    let audited = queue.audited();
    assert_eq!(audited.len(), 4, "{audited:?}");
    assert!(audited
        .iter()
        .all(|(a, _, d)| *a == MailAction::Sent && d.is_none()));
    // Queued later, woken at once.
    queue.push(Lane::Bulk, "late", Duration::ZERO);
    running.handle.wake();
    server.wait_messages(5, WITHIN);
    let status = running.handle.status();
    assert_eq!((status.sent, status.last_error), (5, None));
    running.stop().await;
    assert_eq!(server.messages().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_outage_delays_and_loses_nothing() {
    let mut server = SmtpServer::start(starttls());
    server.stop();
    let queue = Arc::new(Queue::default());
    queue.push(Lane::NewPin, "alice", Duration::ZERO);
    let running = start(&server, queue.clone(), Duration::from_secs(60));
    let failed = wait_until(WITHIN, || match queue.rows().first() {
        Some(row) if row.attempts >= 2 => Ok(row.clone()),
        row => Err(format!("not retried yet: {row:?}")),
    });
    let error = failed.last_error.unwrap();
    assert!(
        error.contains("unavailable") && !error.contains("4711"),
        "{error}"
    );
    assert!(running.handle.status().last_error.is_some());
    server.restart();
    server.wait_messages(1, WITHIN);
    wait_empty(&queue);
    queue.wait_audited(MailAction::Sent, "alice");
    running.stop().await;
    assert_eq!(recipients(&server), ["alice"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_is_audited_and_not_retried() {
    let server = SmtpServer::start(SmtpOptions {
        refuse_rcpt: Some("550 5.1.1 no such user"),
        ..starttls()
    });
    let queue = Arc::new(Queue::default());
    queue.push(Lane::Reset, "ghost", Duration::ZERO);
    let running = start(&server, queue.clone(), Duration::from_secs(60));
    let detail = queue.wait_audited(MailAction::Refused, "ghost").unwrap();
    assert!(
        detail.contains("5.1.1") && !detail.contains("4711"),
        "{detail}"
    );
    wait_empty(&queue);
    // A second message goes through the same relay dialogue: the first was not retried.
    queue.push(Lane::Reset, "other", Duration::ZERO);
    running.handle.wake();
    queue.wait_audited(MailAction::Refused, "other");
    running.stop().await;
    let rcpts: Vec<String> = server
        .events()
        .into_iter()
        .filter(|e| e.starts_with("RCPT"))
        .collect();
    assert_eq!(rcpts, ["RCPT ghost@example.org", "RCPT other@example.org"]);
    assert!(server.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_reply_pauses_its_lane_while_others_go_on() {
    let server = SmtpServer::start(SmtpOptions {
        quota_after: Some(1),
        ..starttls()
    });
    let queue = Arc::new(Queue::default());
    queue.push(Lane::NewPin, "new1", Duration::ZERO);
    for user in ["bulk1", "bulk2"] {
        queue.push(Lane::Bulk, user, Duration::ZERO);
    }
    let running = start(&server, queue.clone(), Duration::from_secs(3));
    let detail = queue.wait_audited(MailAction::LanePaused, "bulk1").unwrap();
    assert!(detail.contains("rate limit"), "{detail}");
    let paused = running.handle.status().paused;
    assert_eq!(
        paused.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
        [Lane::Bulk]
    );
    // The reset lane is not paused: its message goes before the bulk lane resumes.
    queue.push(Lane::Reset, "reset1", Duration::ZERO);
    running.handle.wake();
    server.wait_messages(4, WITHIN);
    wait_empty(&queue);
    assert_eq!(recipients(&server), ["new1", "reset1", "bulk1", "bulk2"]);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superseded_and_expired_messages_are_dropped_unsent() {
    let server = SmtpServer::start(starttls());
    let queue = Arc::new(Queue::default());
    queue.superseded.lock().unwrap().push("replaced".into());
    queue.push(Lane::NewPin, "replaced", Duration::ZERO);
    // More stale rows than the worker looks at in one unit.
    for _ in 0..20 {
        queue.push(Lane::Bulk, "stale", Duration::from_secs(7_200));
    }
    queue.push(Lane::Bulk, "fresh", Duration::ZERO);
    let running = start(&server, queue.clone(), Duration::from_secs(60));
    server.wait_messages(1, WITHIN);
    wait_empty(&queue);
    let detail = queue.wait_audited(MailAction::Superseded, "replaced");
    assert_eq!(detail.as_deref(), Some("the PIN was replaced"));
    queue.wait_audited(MailAction::Expired, "stale");
    running.stop().await;
    assert_eq!(recipients(&server), ["fresh"]);
    let expired = queue.audited().into_iter();
    assert_eq!(
        expired.filter(|(a, ..)| *a == MailAction::Expired).count(),
        20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_message_is_not_sent_again_when_its_removal_fails() {
    let server = SmtpServer::start(starttls());
    let queue = Arc::new(Queue::default());
    *queue.failing_removes.lock().unwrap() = 2;
    queue.push(Lane::NewPin, "alice", Duration::ZERO);
    queue.push(Lane::Bulk, "bob", Duration::ZERO);
    let running = start(&server, queue.clone(), Duration::from_secs(60));
    server.wait_messages(2, WITHIN);
    wait_empty(&queue);
    queue.wait_audited(MailAction::Sent, "bob");
    running.stop().await;
    assert_eq!(recipients(&server), ["alice", "bob"]);
    let sent = queue.audited();
    assert_eq!(sent.len(), 2, "{sent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_message_4xx_retries_that_message_and_the_worker_stays_healthy() {
    let server = SmtpServer::start(SmtpOptions {
        refuse_rcpt: Some("452 4.2.2 mailbox full"),
        ..starttls()
    });
    let queue = Arc::new(Queue::default());
    queue.push(Lane::NewPin, "alice", Duration::ZERO);
    queue.push(Lane::NewPin, "bob", Duration::ZERO);
    let running = start(&server, queue.clone(), Duration::from_secs(60));
    // Both tried in one go: the first deferral did not back the worker off.
    let rows = wait_until(WITHIN, || match queue.rows() {
        rows if rows.iter().all(|r| r.attempts >= 1) => Ok(rows),
        rows => Err(format!("not all tried: {rows:?}")),
    });
    for row in &rows {
        let error = row.last_error.as_deref().unwrap();
        assert!(
            error.contains("4.2.2") && !error.contains("4711"),
            "{error}"
        );
    }
    let worker = running.supervisor.status().remove(0);
    assert_eq!(worker.failures, 0, "{worker:?}");
    assert!(running.handle.status().last_error.is_some());
    running.stop().await;
    assert!(server.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_message_goes_past_more_retrying_ones_than_one_read_holds() {
    let server = SmtpServer::start(starttls());
    let queue = Arc::new(Queue::default());
    for _ in 0..20 {
        queue.push(Lane::Reset, "greylisted", Duration::ZERO);
    }
    let later = Timestamp::from_millis(Timestamp::now().millis() + 3_600_000);
    for row in queue.rows.lock().unwrap().iter_mut() {
        row.attempts = 1;
        row.not_before = later;
    }
    queue.push(Lane::Reset, "fresh", Duration::ZERO);
    let running = start(&server, queue.clone(), Duration::from_secs(60));
    queue.wait_audited(MailAction::Sent, "fresh");
    running.stop().await;
    assert_eq!(recipients(&server), ["fresh"]);
    assert_eq!(queue.rows().len(), 20);
}
