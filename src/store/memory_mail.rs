//! The PIN lifecycle of `MemoryStore` (a child of `memory.rs`): the mail outbox, reminder
//! records, the sweep of one user, a grant's PIN use and the pruning of retired tags and
//! stale reminders, on the caller's copy of the tables. Mirrors `sled_mail.rs`; must not decide policy.

use super::{index, Tables};
use crate::domain::{Lane, LaneDepth, QueuedMail, Tag, Timestamp, User};
use crate::store::{pin_is_current, pin_use, sweep_user, PinUse, Result};

impl Tables {
    /// Queues `mail`, each message with the next seq (never 0).
    pub(super) fn queue(&mut self, mail: &[QueuedMail]) {
        for queued in mail {
            self.mail_seq += 1;
            let seq = self.mail_seq;
            let row = QueuedMail {
                seq,
                ..queued.clone()
            };
            self.mail.insert((queued.lane, seq), row);
        }
    }

    fn lane(&self, lane: Lane) -> impl Iterator<Item = &QueuedMail> + Clone {
        self.mail
            .range((lane, 0)..=(lane, u64::MAX))
            .map(|(_, m)| m)
    }

    /// Up to `limit` rows of `lane` with a seq above `after`.
    pub(super) fn mail_peek(&self, lane: Lane, after: u64, limit: usize) -> Vec<QueuedMail> {
        let Some(from) = after.checked_add(1) else {
            return Vec::new();
        };
        self.mail
            .range((lane, from)..=(lane, u64::MAX))
            .take(limit)
            .map(|(_, m)| m.clone())
            .collect()
    }

    pub(super) fn mail_depth(&self) -> Vec<(Lane, LaneDepth)> {
        Lane::ALL
            .into_iter()
            .map(|lane| {
                let rows = self.lane(lane);
                let depth = LaneDepth {
                    depth: rows.clone().count() as u64,
                    oldest: rows.map(|m| m.created_at).min(),
                };
                (lane, depth)
            })
            .collect()
    }

    pub(super) fn mail_update(&mut self, mail: &QueuedMail) -> bool {
        match self.mail.get_mut(&(mail.lane, mail.seq)) {
            Some(row) => {
                *row = mail.clone();
                true
            }
            None => false,
        }
    }

    /// Records the reminder and queues its mail unless the PIN is not `set_at`'s any more,
    /// has expired, or the reminder was recorded before.
    pub(super) fn queue_reminder(
        &mut self,
        user: &str,
        (set_at, threshold_secs): (Timestamp, u64),
        now: Timestamp,
        mail: &QueuedMail,
    ) -> bool {
        let current = self
            .users
            .get(user)
            .is_some_and(|u| pin_is_current(u, set_at, now));
        if !current
            || !self
                .reminders
                .insert((user.to_owned(), set_at, threshold_secs))
        {
            return false;
        }
        self.queue(std::slice::from_ref(mail));
        true
    }

    /// Clears `id`'s expired PIN (with its duress PIN) and expired pending PIN at `now`;
    /// returns the user as it was if its PIN went.
    pub(super) fn sweep_one(&mut self, id: &str, now: Timestamp) -> Result<Option<User>> {
        let Some(old) = self.users.get(id).cloned() else {
            return Ok(None);
        };
        let Some((cleared, pin_went)) = sweep_user(&old, now) else {
            return Ok(None);
        };
        index::put_user(self, &cleared, false, now)?;
        Ok(pin_went.then_some(old))
    }

    /// Counts a grant by `tag` against `id` (see `Store::use_pin`).
    pub(super) fn use_pin(&mut self, id: &str, tag: &Tag, now: Timestamp) -> Result<PinUse> {
        let Some(user) = self.users.get(id) else {
            return Ok(PinUse::Gone);
        };
        let (used, next) = pin_use(user, tag);
        if let Some(next) = next {
            index::put_user(self, &next, false, now)?;
        }
        Ok(used)
    }

    /// Drops tags retired before `before` and reminders of PINs that are not current.
    pub(super) fn prune_lifecycle(&mut self, before: Timestamp) -> u64 {
        let (retired, reminders) = (self.retired.len(), self.reminders.len());
        self.retired.retain(|_, at| *at >= before);
        let users = &self.users;
        self.reminders.retain(|(id, set_at, _)| {
            let pin = users.get(id).and_then(|u| u.pin.as_ref());
            pin.is_some_and(|p| p.set_at == *set_at)
        });
        (retired - self.retired.len() + reminders - self.reminders.len()) as u64
    }
}
