//! Forgotten-PIN requests in `MemoryStore` (a child of `memory.rs`): the queue and the
//! recovery cap times, on the caller's copy of the tables. Mirrors `sled_forgot.rs`; must
//! not decide policy (which caps apply and whether a row becomes a reset are the caller's).

use super::{index, Tables};
use crate::store::{ForgotRow, ForgotSettle, Result, StoreError};

impl Tables {
    pub(super) fn forgot_push(&mut self, row: &ForgotRow) -> u64 {
        self.forgot_seq += 1;
        let seq = self.forgot_seq;
        self.forgot.insert(seq, ForgotRow { seq, ..row.clone() });
        seq
    }

    pub(super) fn forgot_settle(&mut self, s: &ForgotSettle<'_>) -> Result<bool> {
        if self.forgot.remove(&s.seq).is_none() {
            return Ok(false);
        }
        for key in s.counted {
            let times = self.recovery.entry(key.clone()).or_default();
            times.retain(|t| *t >= s.keep_after);
            times.push(s.at);
        }
        if let Some((user, mail)) = s.reset {
            if !self.users.contains_key(&user.id) {
                return Err(StoreError::NoSuchUser(user.id.clone()));
            }
            index::put_user(self, user, false, s.at)?;
            self.queue(std::slice::from_ref(mail));
        }
        Ok(true)
    }
}
