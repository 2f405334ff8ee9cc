//! `UserAdmin::import`: every row checked (shape, uniqueness within the file and against the
//! store, PIN policy), the PINs hashed with progress, then all rows applied in one
//! transaction or none. Never writes an upstream user: directory sync is their only writer.

use super::{normalise_cards, validate_new, AdminError, NewUser, UserAdmin};
use crate::domain::{
    AdminAction, Expiry, Lane, MailKind, Pin, PinRecord, PinSource, Tag, Timestamp, User,
    UserOrigin,
};
use crate::lifecycle::generate::generate_pin;
use crate::lifecycle::import::{ImportProblem, ImportRow};
use crate::lifecycle::policy::PolicyViolation;
use crate::lifecycle::settings::Generation;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ImportReport {
    pub rows: usize,
    pub added: usize,
    pub updated: usize,
    pub pins_set: usize,
    /// PINs generated for rows without one (`generation = "auto"`); in a dry run, how many
    /// would be.
    #[serde(default)]
    pub pins_generated: usize,
    /// New-PIN messages queued with the import.
    #[serde(default)]
    pub mails_queued: usize,
    pub dry_run: bool,
}

/// The rows checked so far: the users to write, the PINs still to hash, the problems found.
#[derive(Default)]
struct Checked {
    /// (line, user as it will be written)
    users: Vec<(usize, User)>,
    /// (index into `users`, line, PIN)
    pins: Vec<(usize, usize, Pin)>,
    /// (index into `users`, line) of rows that get a generated PIN
    generate: Vec<(usize, usize)>,
    /// tag → first line, over given and generated PINs
    seen: HashMap<[u8; 32], usize>,
    problems: Vec<ImportProblem>,
    /// id → first line
    ids: HashMap<String, usize>,
    /// normalised card → first line
    cards: HashMap<String, usize>,
}

impl Checked {
    fn problem(&mut self, line: usize, message: impl Into<String>) {
        self.problems.push(ImportProblem {
            line,
            message: message.into(),
        });
    }
}

/// Why an existing user may not be written by an import, if it may not.
fn refusal(existing: &User) -> Option<String> {
    if existing.origin != UserOrigin::Upstream {
        return None;
    }
    Some(match &existing.upstream {
        Some(up) => format!(
            "`{}` comes from directory `{}`: change it there",
            existing.id, up.source
        ),
        None => format!("`{}` comes from a directory: change it there", existing.id),
    })
}

impl UserAdmin {
    /// Validates every row (policy, uniqueness within the file and against the store, never
    /// an upstream user) and applies all of them in one transaction, or none: any problem
    /// refuses the whole file. `progress(done, total)` is called while PINs are hashed.
    pub async fn import(
        &self,
        rows: Vec<ImportRow>,
        dry_run: bool,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<ImportReport, AdminError> {
        let mut checked = Checked::default();
        for row in rows {
            self.check_row(row, &mut checked)?;
        }
        let pins_set = self.set_pins(&mut checked, progress).await?;
        let mut generated = Vec::new();
        if !dry_run && checked.problems.is_empty() {
            generated = self.generate_pins(&mut checked, progress).await?;
        }
        if !checked.problems.is_empty() {
            checked.problems.sort_by_key(|p| p.line);
            return Err(AdminError::Import(checked.problems));
        }
        let pins_generated = if dry_run {
            checked.generate.len()
        } else {
            generated.len()
        };
        let mut mail = Vec::new();
        for (index, pin) in &generated {
            let user = &checked.users[*index].1;
            mail.extend(self.pin_mail(user, MailKind::NewPin, Lane::Bulk, pin)?);
        }
        drop(generated);
        let users: Vec<User> = checked.users.into_iter().map(|(_, u)| u).collect();
        let mut report = ImportReport {
            rows: users.len(),
            pins_set,
            pins_generated,
            mails_queued: mail.len(),
            dry_run,
            ..Default::default()
        };
        if dry_run {
            for u in &users {
                if self.store.user(&u.id)?.is_some() {
                    report.updated += 1
                } else {
                    report.added += 1
                }
            }
            return Ok(report);
        }
        let outcome = self.store.upsert_users_mailing(&users, &mail);
        drop(users);
        let outcome = outcome?;
        report.added = outcome.added;
        report.updated = outcome.updated;
        let detail = format!(
            "added {}, updated {}, pins {pins_set}, generated {pins_generated}",
            report.added, report.updated
        );
        self.audit(AdminAction::Import, "*", Some(detail));
        self.audit_queued(&mail);
        drop(mail);
        // A big import's transaction leaves its memory freed but held by the allocator.
        let _ = tokio::task::spawn_blocking(crate::heap::release).await;
        Ok(report)
    }

    /// One row: its shape, its id (once in the file, never an upstream user's), its cards
    /// (once in the file, nobody else's) and its PIN against the policy.
    fn check_row(&self, row: ImportRow, checked: &mut Checked) -> Result<(), AdminError> {
        let line = row.line;
        // The daemon re-checks what the CLI's parser checked: a control-socket client may be
        // anything, and an id lands on the terminal wire (`OK <id> …`).
        let shape = NewUser {
            id: row.id.clone(),
            name: row.name.clone(),
            email: row.email.clone(),
            groups: row.groups.clone(),
            ..Default::default()
        };
        if let Err(e) = validate_new(&shape) {
            checked.problem(line, e.to_string());
            return Ok(());
        }
        if let Some(first) = checked.ids.insert(row.id.clone(), line) {
            let id = &row.id;
            checked.problem(
                line,
                format!("id `{id}` appears on both line {first} and line {line}"),
            );
            return Ok(());
        }
        let mut user = match self.store.user(&row.id)? {
            Some(existing) => match refusal(&existing) {
                Some(why) => {
                    checked.problem(line, why);
                    return Ok(());
                }
                None => existing,
            },
            None => User::new_local(row.id),
        };
        user.name = row.name;
        user.email = row.email;
        user.groups = row.groups;
        user.cards = match normalise_cards(&row.cards) {
            Ok(cards) => cards,
            Err(e) => {
                checked.problem(line, e);
                return Ok(());
            }
        };
        self.check_cards(&user, line, checked)?;
        if let Some(pin) = row.pin {
            match self.policy.check(&pin, &user.id, &user.cards) {
                Ok(()) => checked.pins.push((checked.users.len(), line, pin)),
                Err(e) => checked.problem(line, e.to_string()),
            }
        } else if self.lifecycle.generation == Generation::Auto
            && user.pin.is_none()
            && !user.pin_issued
        {
            checked.generate.push((checked.users.len(), line));
        }
        checked.users.push((line, user));
        Ok(())
    }

    fn check_cards(
        &self,
        user: &User,
        line: usize,
        checked: &mut Checked,
    ) -> Result<(), AdminError> {
        for card in &user.cards {
            let elsewhere = match checked.cards.insert(card.clone(), line) {
                Some(other) => Some(format!("card {card} is also on line {other}")),
                None => match self.store.card_owner(card)? {
                    Some(owner) if owner != user.id => {
                        Some(format!("card {card} is already assigned to another user"))
                    }
                    _ => None,
                },
            };
            if let Some(message) = elsewhere {
                checked.problem(line, message);
            }
        }
        Ok(())
    }

    /// Hashes the checked PINs on the pool (behind every login attempt) and sets each one
    /// that is unique, in the file and in the store; returns how many were set.
    async fn set_pins(
        &self,
        checked: &mut Checked,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<usize, AdminError> {
        let pins = std::mem::take(&mut checked.pins)
            .into_iter()
            .map(|(index, line, pin)| ((index, line), pin))
            .collect();
        let mut tags: Vec<(usize, usize, Tag)> = Vec::new();
        self.pool
            .tag_all(pins, progress, |(index, line), tag| {
                tags.push((index, line, tag))
            })
            .await?;
        tags.sort_by_key(|(_, line, _)| *line);
        let now = Timestamp::now();
        let mut set = 0;
        for (index, line, tag) in tags {
            let user = &mut checked.users[index].1;
            let taken_here = checked.seen.insert(tag.0, line);
            if taken_here.is_some() || self.ensure_unique(&tag, &user.id).is_err() {
                let message = match taken_here {
                    Some(other) => {
                        format!("this PIN is also used on line {other}; PINs must be unique")
                    }
                    None => PolicyViolation::NotUnique.to_string(),
                };
                checked.problem(line, message);
                continue;
            }
            let expiry = self.effective_expiry(None, &user.groups);
            user.pin = Some(PinRecord {
                tag,
                set_at: now,
                expires_at: expiry.expires_at(now),
                source: PinSource::Import,
                temporary: expiry != Expiry::Never,
                uses_left: None,
                windows: Vec::new(),
            });
            user.pin_issued = true;
            set += 1;
        }
        Ok(set)
    }

    /// Generates a unique PIN for every row that needs one (`generation = "auto"`), hashing
    /// them in batches on the pool; a PIN that collides (in the file, the store, or a
    /// recently retired one) is drawn again. Returns (index into `users`, PIN) for the mail.
    async fn generate_pins(
        &self,
        checked: &mut Checked,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Vec<(usize, Pin)>, AdminError> {
        let mut pending = std::mem::take(&mut checked.generate);
        let mut done = Vec::with_capacity(pending.len());
        let now = Timestamp::now();
        for _ in 0..8 {
            if pending.is_empty() {
                break;
            }
            let mut batch = Vec::with_capacity(pending.len());
            for (index, line) in pending.drain(..) {
                let user = &checked.users[index].1;
                let pin = generate_pin(
                    &self.policy,
                    self.generated_length,
                    &user.id,
                    &user.cards,
                    &mut rand::rngs::OsRng,
                )
                .map_err(AdminError::Invalid)?;
                batch.push(((index, line, pin.clone()), pin));
            }
            let mut tags = Vec::with_capacity(batch.len());
            self.pool
                .tag_all(batch, progress, |key, tag| tags.push((key, tag)))
                .await?;
            for ((index, line, pin), tag) in tags {
                let user = &checked.users[index].1;
                let free = !checked.seen.contains_key(&tag.0)
                    && self.ensure_unique(&tag, &user.id).is_ok()
                    && !self.recently_retired(&tag)?;
                if !free {
                    pending.push((index, line));
                    continue;
                }
                checked.seen.insert(tag.0, line);
                let user = &mut checked.users[index].1;
                let expiry = self.effective_expiry(None, &user.groups);
                user.pin = Some(PinRecord {
                    tag,
                    set_at: now,
                    expires_at: expiry.expires_at(now),
                    source: PinSource::Generated,
                    temporary: expiry != Expiry::Never,
                    uses_left: None,
                    windows: Vec::new(),
                });
                user.pin_issued = true;
                done.push((index, pin));
            }
        }
        for (_, line) in pending {
            checked.problem(
                line,
                "could not generate a unique PIN: raise policy.generated_length",
            );
        }
        Ok(done)
    }
}
