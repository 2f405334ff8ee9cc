//! Sending pace and priority lanes for the outbox, pure logic over tokio's monotonic
//! `Instant` (tested with paused time): per-minute and per-day caps counted in **fixed
//! windows** shared by all lanes (the caps are the relay account's limits), lane pauses
//! after a quota refusal, and the choice of the next lane (Reset > NewPin > Bulk). Does no
//! I/O and knows nothing of the queue or the relay.

use crate::domain::Lane;
use std::time::Duration;
use tokio::time::Instant;

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);
/// Without configured caps, a quota refusal pauses its lane this long by default, doubling
/// up to `PAUSE_MAX` while refusals go on.
pub const PAUSE_FIRST: Duration = Duration::from_secs(60);
const PAUSE_MAX: Duration = Duration::from_secs(3_600);

/// A fixed window: opens at the first message after the previous one closed.
#[derive(Clone, Debug)]
struct Window {
    len: Duration,
    cap: Option<u32>,
    start: Option<Instant>,
    count: u32,
}

impl Window {
    fn new(len: Duration, cap: Option<u32>) -> Self {
        Window {
            len,
            cap,
            start: None,
            count: 0,
        }
    }

    /// Closes a window whose time is up.
    fn roll(&mut self, now: Instant) {
        if self.start.is_some_and(|s| now >= s + self.len) {
            self.start = None;
            self.count = 0;
        }
    }

    /// When the open window ends (now, if none is open).
    fn end(&self, now: Instant) -> Instant {
        self.start.map_or(now, |s| s + self.len)
    }

    fn full(&self) -> bool {
        self.cap.is_some_and(|cap| self.count >= cap)
    }

    /// At its cap or within 1 % of it (at least one message): the relay's count may be a
    /// little ahead of ours (a retried message it had accepted, another client).
    fn nearly_full(&self) -> bool {
        self.cap
            .is_some_and(|cap| self.count.saturating_add((cap / 100).max(1)) >= cap)
    }

    fn take(&mut self, now: Instant) {
        self.start.get_or_insert(now);
        self.count = self.count.saturating_add(1);
    }
}

#[derive(Clone, Debug)]
pub struct Pacer {
    minute: Window,
    day: Window,
    /// Per lane (by `Lane::index`): paused until.
    paused: [Option<Instant>; 3],
    /// The first cap-less quota pause, and the next one.
    pause_first: Duration,
    pause_step: Duration,
}

impl Pacer {
    /// `None` caps: unpaced.
    pub fn new(per_minute: Option<u32>, per_day: Option<u32>) -> Self {
        Pacer {
            minute: Window::new(MINUTE, per_minute),
            day: Window::new(DAY, per_day),
            paused: [None; 3],
            pause_first: PAUSE_FIRST,
            pause_step: PAUSE_FIRST,
        }
    }

    /// The first cap-less quota pause (`PAUSE_FIRST` unless set; at most `PAUSE_MAX`).
    pub fn with_quota_pause(mut self, first: Duration) -> Self {
        self.pause_first = first.min(PAUSE_MAX);
        self.pause_step = self.pause_first;
        self
    }

    /// Counts one message against the caps, or says when the next one is allowed.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Instant> {
        self.minute.roll(now);
        self.day.roll(now);
        match (self.minute.full(), self.day.full()) {
            (_, true) => Err(self.day.end(now)),
            (true, false) => Err(self.minute.end(now)),
            (false, false) => {
                self.minute.take(now);
                self.day.take(now);
                Ok(())
            }
        }
    }

    /// A message was accepted: the next cap-less quota pause starts short again.
    pub fn sent(&mut self) {
        self.pause_step = self.pause_first;
    }

    /// Pauses `lane` until `until`.
    pub fn pause(&mut self, lane: Lane, until: Instant) {
        self.paused[usize::from(lane.index())] = Some(until);
    }

    /// The relay refused for quota: pauses `lane` until the window that is full resets —
    /// the minute window if our per-minute cap is reached, the day window if our per-day
    /// count is at (or nearly at) its cap. Otherwise the relay counts differently from us:
    /// with a cap configured, the first refusal since a send waits out the open minute
    /// window, repeated ones `pause_step` (doubling up to an hour); with no caps 60 s,
    /// doubling up to an hour. Returns the end.
    pub fn quota_pause(&mut self, lane: Lane, now: Instant) -> Instant {
        self.minute.roll(now);
        self.day.roll(now);
        let until = if self.minute.full() {
            self.minute.end(now)
        } else if self.day.nearly_full() {
            self.day.end(now).max(now + MINUTE)
        } else {
            let step = self.pause_step;
            self.pause_step = (step * 2).min(PAUSE_MAX);
            let capped = self.minute.cap.is_some() || self.day.cap.is_some();
            match self.minute.start {
                Some(_) if capped && step == self.pause_first => {
                    self.minute.end(now).max(now + Duration::from_secs(1))
                }
                _ => now + step,
            }
        };
        self.pause(lane, until);
        until
    }

    /// Whether `lane` is paused at `now`.
    pub fn paused_until(&self, lane: Lane, now: Instant) -> Option<Instant> {
        self.paused[usize::from(lane.index())].filter(|until| *until > now)
    }

    /// Every lane paused at `now`, with its end.
    pub fn paused(&self, now: Instant) -> Vec<(Lane, Instant)> {
        Lane::ALL
            .into_iter()
            .filter_map(|lane| Some((lane, self.paused_until(lane, now)?)))
            .collect()
    }

    /// The highest-priority unpaused lane for which `due` says a message is due.
    pub fn next_lane(&self, now: Instant, due: impl Fn(Lane) -> bool) -> Option<Lane> {
        Lane::ALL
            .into_iter()
            .find(|&lane| self.paused_until(lane, now).is_none() && due(lane))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[tokio::test(start_paused = true)]
    async fn the_minute_cap_holds_until_its_window_ends() {
        let mut p = Pacer::new(Some(3), None);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(p.try_take(Instant::now()), Ok(()));
            tokio::time::advance(secs(5)).await;
        }
        assert_eq!(p.try_take(Instant::now()), Err(t0 + MINUTE));
        tokio::time::advance(secs(44)).await;
        assert_eq!(p.try_take(Instant::now()), Err(t0 + MINUTE));
        tokio::time::advance(secs(1)).await;
        assert_eq!(p.try_take(Instant::now()), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn the_day_cap_outlasts_minute_windows() {
        let mut p = Pacer::new(Some(2), Some(3));
        let t0 = Instant::now();
        assert!(p.try_take(t0).is_ok() && p.try_take(t0).is_ok());
        assert_eq!(p.try_take(t0), Err(t0 + MINUTE));
        tokio::time::advance(MINUTE).await;
        assert_eq!(p.try_take(Instant::now()), Ok(()));
        assert_eq!(p.try_take(Instant::now()), Err(t0 + DAY));
        tokio::time::advance(DAY).await;
        assert_eq!(p.try_take(Instant::now()), Ok(()));
    }

    #[test]
    fn unpaced_never_waits() {
        let mut p = Pacer::new(None, None);
        let now = Instant::now();
        assert!((0..10_000).all(|_| p.try_take(now).is_ok()));
    }

    #[test]
    fn lanes_go_by_priority_and_skip_paused_ones() {
        let mut p = Pacer::new(None, None);
        let now = Instant::now();
        assert_eq!(p.next_lane(now, |_| true), Some(Lane::Reset));
        assert_eq!(p.next_lane(now, |l| l != Lane::Reset), Some(Lane::NewPin));
        assert_eq!(p.next_lane(now, |l| l == Lane::Bulk), Some(Lane::Bulk));
        assert_eq!(p.next_lane(now, |_| false), None);
        p.pause(Lane::Reset, now + secs(10));
        assert_eq!(p.next_lane(now, |_| true), Some(Lane::NewPin));
        assert_eq!(p.paused(now), vec![(Lane::Reset, now + secs(10))]);
        assert_eq!(p.next_lane(now + secs(10), |_| true), Some(Lane::Reset));
        assert!(p.paused(now + secs(10)).is_empty());
    }

    #[test]
    fn a_quota_pause_waits_for_the_window_that_is_full() {
        let now = Instant::now();
        let mut p = Pacer::new(Some(2), Some(100));
        assert!(p.try_take(now).is_ok() && p.try_take(now + secs(10)).is_ok());
        assert_eq!(p.quota_pause(Lane::Bulk, now + secs(20)), now + MINUTE);
        let mut p = Pacer::new(Some(30), Some(100));
        assert!((0..99).all(|i| p.try_take(now + secs(i * 60)).is_ok()));
        let later = now + secs(98 * 60 + 20);
        assert_eq!(p.quota_pause(Lane::Bulk, later), now + DAY, "99 of 100");
        let mut p = Pacer::new(Some(30), None);
        assert!(p.try_take(now).is_ok());
        assert_eq!(p.quota_pause(Lane::NewPin, now + secs(20)), now + MINUTE);
        assert_eq!(p.paused_until(Lane::NewPin, now), Some(now + MINUTE));
    }

    #[tokio::test(start_paused = true)]
    async fn a_quota_refusal_far_from_the_day_cap_waits_the_minute_then_doubles() {
        // The microsoft365 preset: 30 a minute, 10 000 a day.
        let mut p = Pacer::new(Some(30), Some(10_000));
        let t0 = Instant::now();
        assert!(p.try_take(t0).is_ok());
        tokio::time::advance(secs(20)).await;
        let now = Instant::now();
        assert_eq!(
            p.quota_pause(Lane::Bulk, now),
            t0 + MINUTE,
            "the minute window"
        );
        assert_eq!(p.paused_until(Lane::Bulk, now), Some(t0 + MINUTE));
        tokio::time::advance(secs(40)).await;
        assert!(p.paused_until(Lane::Bulk, Instant::now()).is_none());
        // Refused again with nothing sent: doubling, up to an hour, never the day.
        let pauses: Vec<u64> = (0..7)
            .map(|_| {
                let now = Instant::now();
                (p.quota_pause(Lane::Bulk, now) - now).as_secs()
            })
            .collect();
        assert_eq!(pauses, [120, 240, 480, 960, 1920, 3600, 3600]);
        // A send starts over at the minute window.
        let t1 = Instant::now();
        assert!(p.try_take(t1).is_ok());
        p.sent();
        tokio::time::advance(secs(5)).await;
        assert_eq!(p.quota_pause(Lane::Bulk, Instant::now()), t1 + MINUTE);
        // Near the day cap (within 1 %), the day window.
        let mut p = Pacer::new(Some(30), Some(10_000));
        p.day.count = 9_900;
        p.day.start = Some(t0);
        let now = Instant::now();
        assert_eq!(p.quota_pause(Lane::Reset, now), t0 + DAY);
    }

    #[test]
    fn without_caps_quota_pauses_double_up_to_an_hour_and_reset_after_a_send() {
        let mut p = Pacer::new(None, None);
        let now = Instant::now();
        let pauses: Vec<u64> = (0..8)
            .map(|_| (p.quota_pause(Lane::Bulk, now) - now).as_secs())
            .collect();
        assert_eq!(pauses, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        p.sent();
        assert_eq!(p.quota_pause(Lane::Bulk, now), now + PAUSE_FIRST);
    }
}
