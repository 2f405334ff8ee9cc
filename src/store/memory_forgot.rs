//! Forgotten-PIN requests in `MemoryStore` (a child of `memory.rs`): the queue and the
//! recovery cap times, on the caller's copy of the tables. Mirrors `sled_forgot.rs`; must
//! not decide policy (which caps apply and whether a row becomes a reset are the caller's).

use super::{index, Tables};
use crate::store::{forgot_reset_user, ForgotRow, ForgotSettle, Result, Settled};

impl Tables {
    pub(super) fn forgot_push(&mut self, row: &ForgotRow) -> u64 {
        self.forgot_seq += 1;
        let seq = self.forgot_seq;
        self.forgot.insert(seq, ForgotRow { seq, ..row.clone() });
        seq
    }

    pub(super) fn forgot_settle(&mut self, s: &ForgotSettle<'_>) -> Result<Settled> {
        if self.forgot.remove(&s.seq).is_none() {
            return Ok(Settled::Gone);
        }
        let reset = s.reset.as_ref().and_then(|r| {
            let user = forgot_reset_user(self.users.get(r.id).cloned(), r)?;
            Some((user, r))
        });
        let person = reset.as_ref().map(|(_, r)| r.person_key.to_string());
        for key in s.counted.iter().chain(person.as_ref()) {
            let times = self.recovery.entry(key.clone()).or_default();
            times.retain(|t| *t >= s.keep_after);
            times.push(s.at);
        }
        let Some((user, r)) = reset else {
            return Ok(Settled::Dropped);
        };
        index::put_user(self, &user, false, s.at)?;
        self.queue(std::slice::from_ref(r.mail));
        Ok(Settled::Reset)
    }
}
