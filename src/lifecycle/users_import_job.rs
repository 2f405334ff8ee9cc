//! The state an import keeps between its chunks: only small per-row keys (ids, cards, PIN
//! tags, one digest per chunk) and the problems found, capped; and the one row check shared
//! by the check and apply passes.

use super::{normalise_cards, validate_new, AdminError, NewUser, UserAdmin};
use crate::domain::{Pin, Tag, User, UserOrigin};
use crate::lifecycle::import::{ImportProblem, ImportRow};
use crate::lifecycle::settings::Generation;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Problems shown at most (the first by line); past it they are counted.
pub const MAX_PROBLEMS: usize = 200;

#[derive(Clone, Copy, Debug, Default)]
pub struct ImportOptions {
    /// Check only; change nothing.
    pub dry_run: bool,
    /// In a dry run, hash the PINs too to prove them unique (argon2 for each).
    pub check_unique: bool,
}

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

/// One import across its chunks (see `users_import.rs`).
pub struct ImportJob {
    pub(super) options: ImportOptions,
    /// id → first line, the id as `digester`'s digest
    ids: HashMap<u128, usize>,
    /// normalised card → first line, the card as `digester`'s digest
    cards: HashMap<u128, usize>,
    digester: crate::domain::Digester,
    /// tag → line, over given and generated PINs
    pub(super) seen: HashMap<[u8; 32], usize>,
    /// line → tag of a checked PIN, for the apply pass
    pub(super) tags: HashMap<usize, Tag>,
    /// digest of each chunk of the check pass, in order
    pub(super) digests: Vec<[u8; 32]>,
    problems: Vec<ImportProblem>,
    problem_count: usize,
    /// What the check pass found the file would do.
    pub(super) report: ImportReport,
    /// What the apply pass has written so far.
    pub(super) applied: ImportReport,
    pub(super) applied_chunks: usize,
}

/// One chunk's rows as they will be written.
#[derive(Default)]
pub(super) struct Chunk {
    /// (line, user as it will be written)
    pub users: Vec<(usize, User)>,
    /// (index into `users`, line, PIN)
    pub pins: Vec<(usize, usize, Pin)>,
    /// (index into `users`, line) of rows that get a generated PIN
    pub generate: Vec<(usize, usize)>,
}

impl ImportJob {
    pub fn new(options: ImportOptions) -> Self {
        ImportJob {
            options,
            ids: HashMap::new(),
            cards: HashMap::new(),
            digester: Default::default(),
            seen: HashMap::new(),
            tags: HashMap::new(),
            digests: Vec::new(),
            problems: Vec::new(),
            problem_count: 0,
            report: ImportReport::default(),
            applied: ImportReport::default(),
            applied_chunks: 0,
        }
    }

    pub fn options(&self) -> ImportOptions {
        self.options
    }

    /// Rows written so far by the apply pass.
    pub fn applied_rows(&self) -> usize {
        self.applied.rows
    }

    /// Rows seen by the check pass.
    pub fn checked_rows(&self) -> usize {
        self.report.rows
    }

    /// Adds a problem found elsewhere (the client's parser), so that every problem of the
    /// file is reported at once.
    pub fn problem(&mut self, line: usize, message: impl Into<String>) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(ImportProblem {
                line,
                message: message.into(),
            });
        }
    }

    /// The problems found so far, sorted by line, with a last line counting those not
    /// shown; None when there are none.
    pub(super) fn take_problems(&mut self) -> Option<Vec<ImportProblem>> {
        if self.problem_count == 0 {
            return None;
        }
        let mut problems = std::mem::take(&mut self.problems);
        problems.sort_by_key(|p| p.line);
        let hidden = self.problem_count - problems.len();
        if hidden > 0 {
            problems.push(ImportProblem {
                line: 0,
                message: format!(
                    "{} problem(s) in all; the first {} are shown above",
                    self.problem_count,
                    problems.len()
                ),
            });
        }
        self.problem_count = 0;
        Some(problems)
    }

    /// One row: its shape, its id (once in the file, never an upstream user's), its cards
    /// (once in the file, nobody else's) and, when `checking`, its PIN against the policy.
    /// The apply pass (`checking` false) sees rows already checked in this file.
    pub(super) fn check_row(
        &mut self,
        admin: &UserAdmin,
        row: ImportRow,
        chunk: &mut Chunk,
        checking: bool,
    ) -> Result<(), AdminError> {
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
            self.problem(line, e.to_string());
            return Ok(());
        }
        if checking {
            if let Some(first) = self.ids.insert(self.digester.of(&row.id), line) {
                let id = &row.id;
                let message = format!("id `{id}` appears on both line {first} and line {line}");
                self.problem(line, message);
                return Ok(());
            }
        }
        let existing = admin.store.user(&row.id)?;
        let exists = existing.is_some();
        let mut user = match existing {
            Some(existing) => match refusal(&existing) {
                Some(why) => {
                    self.problem(line, why);
                    return Ok(());
                }
                None => existing,
            },
            None => User::new_local(row.id),
        };
        if checking {
            self.report.rows += 1;
            if exists {
                self.report.updated += 1;
            } else {
                self.report.added += 1;
            }
        }
        user.name = row.name;
        user.email = row.email;
        user.groups = row.groups;
        user.cards = match normalise_cards(&row.cards) {
            Ok(cards) => cards,
            Err(e) => {
                self.problem(line, e);
                return Ok(());
            }
        };
        self.check_cards(admin, &user, line, checking)?;
        if let Some(pin) = row.pin {
            match checking.then(|| admin.rules.get().policy.check(&pin, &user.id, &user.cards)) {
                Some(Err(e)) => self.problem(line, e.to_string()),
                _ => chunk.pins.push((chunk.users.len(), line, pin)),
            }
        } else if admin.lifecycle.generation == Generation::Auto
            && user.pin.is_none()
            && !user.pin_issued
        {
            chunk.generate.push((chunk.users.len(), line));
        }
        chunk.users.push((line, user));
        Ok(())
    }

    fn check_cards(
        &mut self,
        admin: &UserAdmin,
        user: &User,
        line: usize,
        checking: bool,
    ) -> Result<(), AdminError> {
        for card in &user.cards {
            let here = if checking {
                self.cards.insert(self.digester.of(card), line)
            } else {
                None
            };
            let elsewhere = match here {
                Some(other) => Some(format!("card {card} is also on line {other}")),
                None => match admin.store.card_owner(card)? {
                    Some(owner) if owner != user.id => {
                        Some(format!("card {card} is already assigned to another user"))
                    }
                    _ => None,
                },
            };
            if let Some(message) = elsewhere {
                self.problem(line, message);
            }
        }
        Ok(())
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
