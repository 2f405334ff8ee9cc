//! The outbox worker: sends queued mail one message per unit of work, highest lane first,
//! within the pace, and records each message's fate (sent, refused, expired, superseded, a
//! paused lane) through the `MailQueue` the daemon implements over its store. Owns the
//! retry schedule and the worker's status; must not know the store, users or devices (the
//! queue says whether a message is still current).

use super::pace::Pacer;
use super::seal::Sealer;
use super::templates::Rendered;
use super::transport::{Mail, Mailer, SendError};
use crate::backoff::Backoff;
use crate::domain::{AuditKind, Lane, MailAction, QueuedMail, Timestamp};
use crate::worker::{Context, Next, Worker};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How many pages of `scan` rows a lane is read through for a due message, past messages
/// waiting to retry (greylisting, a full mailbox), so that newer ones are not held back.
pub const SCAN_PAGES: usize = 16;

/// Whether a queued message still says the truth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Currency {
    Current,
    /// The PIN it carries was replaced, expired or removed (the reason is audited).
    Superseded(String),
}

/// The outbox as the worker sees it; the daemon implements it over the store. Errors are
/// the store's, shown in `status` and retried with back-off.
pub trait MailQueue: Send + Sync + 'static {
    /// Up to `limit` messages of `lane` with a seq above `after`, oldest first.
    fn peek_after(&self, lane: Lane, after: u64, limit: usize) -> Result<Vec<QueuedMail>, String>;
    /// The first `limit` messages of `lane`, oldest first.
    fn peek(&self, lane: Lane, limit: usize) -> Result<Vec<QueuedMail>, String> {
        self.peek_after(lane, 0, limit)
    }
    /// Writes back a message's attempts, `not_before` and `last_error`.
    fn update(&self, mail: &QueuedMail) -> Result<(), String>;
    fn remove(&self, lane: Lane, seq: u64) -> Result<(), String>;
    fn check(&self, mail: &QueuedMail) -> Result<Currency, String>;
    fn audit(&self, event: AuditKind);
}

/// How the worker retries one message and how far it looks into a lane.
#[derive(Clone, Copy, Debug)]
pub struct OutboxSettings {
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Messages older than this are dropped unsent.
    pub max_age: Duration,
    /// How many messages of a lane are read at a time when looking for one due now (up to
    /// `SCAN_PAGES` reads when the first ones wait to retry).
    pub scan: usize,
    pub per_minute: Option<u32>,
    pub per_day: Option<u32>,
    /// Without caps, the first pause of a lane after a quota refusal (doubling to an hour).
    pub quota_pause: Duration,
}

impl OutboxSettings {
    pub fn new(max_age: Duration, per_minute: Option<u32>, per_day: Option<u32>) -> Self {
        OutboxSettings {
            retry_initial: Duration::from_secs(30),
            retry_max: Duration::from_secs(3_600),
            max_age,
            scan: 16,
            per_minute,
            per_day,
            quota_pause: super::pace::PAUSE_FIRST,
        }
    }
}

/// The mail worker's line in `status`, besides the supervisor's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MailStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sent_at: Option<Timestamp>,
    pub sent: u64,
    /// Lanes paused by a quota refusal, with when they resume.
    pub paused: Vec<(Lane, Timestamp)>,
}

/// A cheap handle: wakes the worker when a message is queued; reads its status.
#[derive(Clone, Default)]
pub struct OutboxHandle {
    wake: Arc<Notify>,
    status: Arc<Mutex<MailStatus>>,
}

impl OutboxHandle {
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn status(&self) -> MailStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut MailStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// What to do with a lane's first rows at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Row `i` is older than `max_age`: drop it.
    Expired(usize),
    /// Row `i` is due.
    Send(usize),
    /// Nothing due; the earliest `not_before` among the rows, if any.
    Wait(Option<Timestamp>),
}

/// Expired rows first (in order), else the first due row, else the earliest wake-up.
pub fn pick(rows: &[QueuedMail], now: Timestamp, max_age: Duration) -> Pick {
    if let Some(i) = rows.iter().position(|m| m.created_at.plus(max_age) <= now) {
        return Pick::Expired(i);
    }
    if let Some(i) = rows.iter().position(|m| m.not_before <= now) {
        return Pick::Send(i);
    }
    Pick::Wait(rows.iter().map(|m| m.not_before).min())
}

/// The wait before retrying a message that failed `attempts` times (with jitter).
fn retry_delay(settings: &OutboxSettings, attempts: u32) -> Duration {
    let mut backoff = Backoff::new(settings.retry_initial, settings.retry_max);
    for _ in 1..attempts.min(32) {
        backoff.next_delay();
    }
    backoff.next_delay()
}

pub struct MailWorker<Q: MailQueue> {
    queue: Arc<Q>,
    mailer: Arc<Mailer>,
    sealer: Arc<Sealer>,
    settings: OutboxSettings,
    pacer: Pacer,
    handle: OutboxHandle,
    /// When `wait_for_work` returns without a wake-up; None: only on one.
    wake_at: Option<Instant>,
    /// A message whose fate is settled but whose removal the store refused.
    unremoved: Option<(QueuedMail, MailAction, Option<String>)>,
}

impl<Q: MailQueue> MailWorker<Q> {
    pub fn new(
        queue: Arc<Q>,
        mailer: Arc<Mailer>,
        sealer: Arc<Sealer>,
        settings: OutboxSettings,
    ) -> Self {
        MailWorker {
            queue,
            mailer,
            sealer,
            pacer: Pacer::new(settings.per_minute, settings.per_day)
                .with_quota_pause(settings.quota_pause),
            settings,
            handle: OutboxHandle::default(),
            wake_at: None,
            unremoved: None,
        }
    }

    pub fn handle(&self) -> OutboxHandle {
        self.handle.clone()
    }

    /// The next message to send, after dropping the expired ones it passes; None with
    /// `wake_at` set when nothing is due.
    fn next_due(&mut self, now: Instant) -> Result<Option<QueuedMail>, String> {
        let wall = Timestamp::now();
        let mut due: [Option<QueuedMail>; 3] = Default::default();
        let mut earliest: Option<Timestamp> = None;
        let mut dropped = false;
        for lane in Lane::ALL {
            if self.pacer.paused_until(lane, now).is_some() {
                continue;
            }
            let slot = &mut due[usize::from(lane.index())];
            let mut after = 0;
            for _ in 0..SCAN_PAGES {
                let mut rows = self.queue.peek_after(lane, after, self.settings.scan)?;
                let (Some(last), full) = (rows.last(), rows.len() >= self.settings.scan) else {
                    break;
                };
                after = last.seq;
                loop {
                    match pick(&rows, wall, self.settings.max_age) {
                        Pick::Expired(i) => {
                            let mail = rows.remove(i);
                            self.drop_mail(&mail, MailAction::Expired, None)?;
                            dropped = true;
                        }
                        Pick::Send(i) => {
                            *slot = Some(rows.swap_remove(i));
                            break;
                        }
                        Pick::Wait(at) => {
                            earliest = earliest.into_iter().chain(at).min();
                            break;
                        }
                    }
                }
                if slot.is_some() || !full {
                    break;
                }
            }
        }
        match self
            .pacer
            .next_lane(now, |l| due[usize::from(l.index())].is_some())
        {
            Some(lane) => Ok(due[usize::from(lane.index())].take()),
            None => {
                // Rows past the ones looked at may be due once expired ones are gone.
                let again = dropped.then_some(now);
                let rows_due = earliest.map(|at| now + wall.until(at));
                let resume = self.pacer.paused(now).into_iter().map(|(_, at)| at);
                self.wake_at = rows_due.into_iter().chain(again).chain(resume).min();
                Ok(None)
            }
        }
    }

    /// Removes a message and audits its fate. If the store fails, the removal is retried
    /// before anything else: a message the relay accepted is never sent again.
    fn drop_mail(
        &mut self,
        mail: &QueuedMail,
        action: MailAction,
        detail: Option<String>,
    ) -> Result<(), String> {
        if let Err(e) = self.queue.remove(mail.lane, mail.seq) {
            self.unremoved = Some((mail.clone(), action, detail));
            return Err(format!("removing a {action} message from the outbox: {e}"));
        }
        self.audit(mail, action, detail);
        Ok(())
    }

    fn audit(&self, mail: &QueuedMail, action: MailAction, detail: Option<String>) {
        self.queue.audit(AuditKind::Mail {
            action,
            kind: mail.kind,
            user: Some(mail.user.clone()),
            lane: Some(mail.lane),
            detail,
        });
    }

    /// The message as it goes out; None if its sealed body cannot be opened.
    fn open(&self, mail: &QueuedMail) -> Option<Mail> {
        let bound = QueuedMail::seal_binding(&mail.user, &mail.to, mail.kind);
        let plain = self.sealer.open(&bound, &mail.sealed).ok()?;
        let rendered = Rendered::from_bytes(&plain)?;
        Some(Mail {
            to: mail.to.clone(),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
        })
    }

    async fn send(&mut self, mut mail: QueuedMail, now: Instant) -> Result<Next, String> {
        let Some(out) = self.open(&mail) else {
            let why = "its sealed body cannot be opened (damaged, or sealed with another pepper)";
            self.drop_mail(&mail, MailAction::Refused, Some(why.into()))?;
            return Ok(Next::Again);
        };
        match self.mailer.send(&out).await {
            Ok(()) => {
                self.pacer.sent();
                self.drop_mail(&mail, MailAction::Sent, None)?;
                self.handle.update(|s| {
                    s.sent += 1;
                    s.last_sent_at = Some(Timestamp::now());
                });
                Ok(Next::Again)
            }
            Err(SendError::Refused(why) | SendError::Invalid(why)) => {
                self.drop_mail(&mail, MailAction::Refused, Some(why))?;
                Ok(Next::Again)
            }
            Err(e @ SendError::Deferred { quota: true, .. }) => {
                let until = self.pacer.quota_pause(mail.lane, now);
                let resumes = Timestamp::now().plus(until - now);
                self.audit(&mail, MailAction::LanePaused, Some(e.to_string()));
                mail.last_error = Some(e.to_string());
                self.queue.update(&mail)?;
                self.note_error(&e.to_string());
                self.handle.update(|s| {
                    s.paused.retain(|(l, _)| *l != mail.lane);
                    s.paused.push((mail.lane, resumes));
                });
                Ok(Next::Again)
            }
            Err(e) => {
                mail.attempts = mail.attempts.saturating_add(1);
                mail.not_before = Timestamp::now().plus(retry_delay(&self.settings, mail.attempts));
                mail.last_error = Some(e.to_string());
                self.queue.update(&mail)?;
                self.note_error(&e.to_string());
                match e {
                    // This message or recipient only (greylisting, a full mailbox): it waits
                    // its retry while the others go on; the relay is fine.
                    SendError::Deferred { quota: false, .. } => Ok(Next::Again),
                    // The relay as a whole: the supervisor backs the worker off.
                    _ => Err(e.to_string()),
                }
            }
        }
    }

    fn note_error(&self, error: &str) {
        self.handle.update(|s| {
            s.last_error = Some(error.to_string());
            s.last_error_at = Some(Timestamp::now());
        });
    }

    fn show_paused(&self, now: Instant) {
        let wall = Timestamp::now();
        let paused = self.pacer.paused(now);
        self.handle.update(|s| {
            s.paused = paused
                .into_iter()
                .map(|(lane, until)| (lane, wall.plus(until - now)))
                .collect();
        });
    }
}

impl<Q: MailQueue> Worker for MailWorker<Q> {
    async fn work(&mut self, _cx: &Context) -> Result<Next, String> {
        let now = Instant::now();
        self.wake_at = None;
        self.show_paused(now);
        if let Some((mail, action, detail)) = self.unremoved.take() {
            self.drop_mail(&mail, action, detail)?;
        }
        let Some(mail) = self.next_due(now)? else {
            return Ok(Next::Idle);
        };
        match self.queue.check(&mail)? {
            Currency::Superseded(why) => {
                self.drop_mail(&mail, MailAction::Superseded, Some(why))?;
                return Ok(Next::Again);
            }
            Currency::Current => {}
        }
        if let Err(next) = self.pacer.try_take(now) {
            self.wake_at = Some(next);
            return Ok(Next::Idle);
        }
        self.send(mail, now).await
    }

    async fn wait_for_work(&mut self) {
        let woken = self.handle.wake.notified();
        match self.wake_at {
            Some(at) => {
                tokio::select! {
                    _ = woken => {}
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
            None => woken.await,
        }
    }
}

#[cfg(test)]
mod tests;
