//! `UserAdmin` imports, streamed in chunks: a check pass (`import_check`, chunk by chunk:
//! shape, ids and cards once in the file and nobody else's, never an upstream user, PIN
//! policy and, unless a dry run skips it, PIN uniqueness by hashing) that keeps only small
//! per-row keys (ids, cards, tags), then, for a clean file, an apply pass (`import_apply`)
//! writing each chunk of ≤ 1 000 users, their generated PINs and mail in one transaction.
//! An apply that stops part-way leaves whole chunks: an import is an upsert, so re-running
//! the same file converges.

use super::users_import_job::{Chunk, ImportJob};
use super::{AdminError, UserAdmin};
use crate::domain::{AdminAction, Expiry, Lane, MailKind, Pin, PinRecord, PinSource, Timestamp};
use crate::lifecycle::generate::generate_pin;
use crate::lifecycle::import::ImportRow;
use crate::lifecycle::policy::PolicyViolation;

pub use super::users_import_job::{ImportOptions, ImportReport, MAX_PROBLEMS};

/// Progress of one chunk's hashing: `(done, total)` of that chunk.
type ChunkProgress<'a> = &'a (dyn Fn(usize, usize) + Sync);

impl UserAdmin {
    /// The whole import in one call (rows held by the caller): check every row, then apply
    /// them in chunks, or nothing when any row has a problem.
    pub async fn import(
        &self,
        rows: Vec<ImportRow>,
        dry_run: bool,
        progress: ChunkProgress<'_>,
    ) -> Result<ImportReport, AdminError> {
        let options = ImportOptions {
            dry_run,
            check_unique: false,
        };
        let mut job = ImportJob::new(options);
        let size = crate::frontend::control::proto::IMPORT_CHUNK_ROWS;
        for chunk in rows.chunks(size) {
            self.import_check(&mut job, copy_rows(chunk), [0; 32], progress)
                .await?;
        }
        let report = self.import_checked(&mut job)?;
        if dry_run {
            return Ok(report);
        }
        for chunk in rows.chunks(size) {
            self.import_apply(&mut job, copy_rows(chunk), [0; 32], progress)
                .await?;
        }
        Ok(self.import_finish(job, None))
    }

    /// Checks one chunk of the file (`digest` identifies its bytes, so the apply pass can
    /// prove it is given the same file). Problems are gathered in the job, never returned.
    pub async fn import_check(
        &self,
        job: &mut ImportJob,
        rows: Vec<ImportRow>,
        digest: [u8; 32],
        progress: ChunkProgress<'_>,
    ) -> Result<(), AdminError> {
        let mut chunk = Chunk::default();
        let read = rows.len();
        for row in rows {
            job.check_row(self, row, &mut chunk, true)?;
        }
        job.digests.push(digest);
        let store = std::sync::Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.bulk_progress(read))
            .await
            .map_err(|e| AdminError::Invalid(format!("the import's check panicked: {e}")))?;
        let ImportOptions {
            dry_run,
            check_unique,
        } = job.options;
        if !dry_run || check_unique {
            self.tag_pins(job, &mut chunk, progress).await?;
        } else {
            job.report.pins_set += chunk.pins.len();
        }
        job.report.pins_generated += chunk.generate.len();
        Ok(())
    }

    /// The end of the check pass: every problem (capped, with the count), or the report of
    /// what the apply pass would do.
    pub fn import_checked(&self, job: &mut ImportJob) -> Result<ImportReport, AdminError> {
        if let Some(problems) = job.take_problems() {
            return Err(AdminError::Import(problems));
        }
        job.report.dry_run = job.options.dry_run;
        Ok(job.report.clone())
    }

    /// Applies one chunk of a checked file in one store transaction: the chunk must be the
    /// same as the check pass's chunk at this place, and still valid.
    pub async fn import_apply(
        &self,
        job: &mut ImportJob,
        rows: Vec<ImportRow>,
        digest: [u8; 32],
        progress: ChunkProgress<'_>,
    ) -> Result<(), AdminError> {
        if job.digests.get(job.applied_chunks) != Some(&digest) {
            return Err(AdminError::Invalid(format!(
                "the file changed between its check and its apply ({} chunk(s) of {} rows were \
                 applied): run the import again",
                job.applied_chunks,
                crate::frontend::control::proto::IMPORT_CHUNK_ROWS
            )));
        }
        let mut chunk = Chunk::default();
        for row in rows {
            job.check_row(self, row, &mut chunk, false)?;
        }
        if let Some(problems) = job.take_problems() {
            return Err(AdminError::Invalid(format!(
                "the store changed since the import was checked ({}; {} chunk(s) applied): \
                 run the import again",
                problems[0], job.applied_chunks
            )));
        }
        let now = Timestamp::now();
        for (index, line, _) in std::mem::take(&mut chunk.pins) {
            let Some(tag) = job.tags.remove(&line) else {
                return Err(AdminError::Invalid(format!(
                    "line {line}: PIN was not checked"
                )));
            };
            let user = &mut chunk.users[index].1;
            let expiry = self.effective_expiry(None, &user.groups);
            user.pin = Some(pin_record(tag, now, expiry, PinSource::Import));
            user.pin_issued = true;
            job.applied.pins_set += 1;
        }
        let generated = self.generate_pins(job, &mut chunk, progress).await?;
        if let Some(problems) = job.take_problems() {
            return Err(AdminError::Import(problems));
        }
        let mut mail = Vec::new();
        for (index, pin) in &generated {
            let user = &chunk.users[*index].1;
            mail.extend(self.pin_mail(user, MailKind::NewPin, Lane::Bulk, pin)?);
        }
        job.applied.pins_generated += generated.len();
        drop(generated);
        let users: Vec<_> = chunk.users.into_iter().map(|(_, u)| u).collect();
        let rows = users.len();
        // Off the runtime's threads: a chunk's transaction, and every few thousand users the
        // store's reopen that gives back sled's memory, take a while.
        let store = std::sync::Arc::clone(&self.store);
        let mail = std::sync::Arc::new(mail);
        let queued = std::sync::Arc::clone(&mail);
        let outcome =
            tokio::task::spawn_blocking(move || store.upsert_users_mailing(&users, &queued))
                .await
                .map_err(|e| AdminError::Invalid(format!("the import's write panicked: {e}")))??;
        job.applied.rows += rows;
        job.applied.added += outcome.added;
        job.applied.updated += outcome.updated;
        job.applied.mails_queued += mail.len();
        self.audit_queued(&mail);
        job.applied_chunks += 1;
        Ok(())
    }

    /// Ends an apply pass (whole, or stopped by `stopped`: the client went away, a chunk
    /// failed): audits what was written and returns it to the allocator.
    /// After a large import: the store gives back what it kept in memory for it (see
    /// `Store::release_memory`); a failure is logged, the import stands.
    pub async fn release_memory(&self) {
        let store = std::sync::Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || store.release_memory()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not release the store's memory"),
            Err(e) => tracing::warn!(error = %e, "releasing the store's memory panicked"),
        }
    }

    pub fn import_finish(&self, job: ImportJob, stopped: Option<&str>) -> ImportReport {
        let report = job.applied;
        let mut detail = format!(
            "added {}, updated {}, pins {}, generated {}",
            report.added, report.updated, report.pins_set, report.pins_generated
        );
        if let Some(why) = stopped {
            let chunks = job.applied_chunks;
            detail = format!("cancelled ({why}) after {chunks} chunk(s): {detail}");
            tracing::warn!(chunks, "import {detail}");
        }
        self.audit(AdminAction::Import, "*", Some(detail));
        crate::heap::release();
        report
    }

    /// Hashes a chunk's PINs on the pool (behind every login attempt) and keeps each tag
    /// that is unique, in the file and in the store, for the apply pass.
    async fn tag_pins(
        &self,
        job: &mut ImportJob,
        chunk: &mut Chunk,
        progress: ChunkProgress<'_>,
    ) -> Result<(), AdminError> {
        let pins = std::mem::take(&mut chunk.pins)
            .into_iter()
            .map(|(index, line, pin)| ((index, line), pin))
            .collect();
        let mut tags = Vec::new();
        self.pool
            .tag_all(pins, progress, |key, tag| tags.push((key, tag)))
            .await?;
        tags.sort_by_key(|((_, line), _)| *line);
        for ((index, line), tag) in tags {
            let id = &chunk.users[index].1.id;
            let taken_here = job.seen.insert(tag.0, line);
            if taken_here.is_some() || self.ensure_unique(&tag, id).is_err() {
                let message = match taken_here {
                    Some(other) => {
                        format!("this PIN is also used on line {other}; PINs must be unique")
                    }
                    None => PolicyViolation::NotUnique.to_string(),
                };
                job.problem(line, message);
                continue;
            }
            job.tags.insert(line, tag);
            job.report.pins_set += 1;
        }
        Ok(())
    }

    /// Generates a unique PIN for every row of the chunk that needs one (`generation =
    /// "auto"`), hashing them on the pool; a PIN that collides (in the file, the store, or a
    /// recently retired one) is drawn again. Returns (index into the chunk, PIN) for mail.
    async fn generate_pins(
        &self,
        job: &mut ImportJob,
        chunk: &mut Chunk,
        progress: ChunkProgress<'_>,
    ) -> Result<Vec<(usize, Pin)>, AdminError> {
        let mut pending = std::mem::take(&mut chunk.generate);
        let mut done = Vec::with_capacity(pending.len());
        let now = Timestamp::now();
        let rules = self.rules.get();
        for _ in 0..8 {
            if pending.is_empty() {
                break;
            }
            let mut batch = Vec::with_capacity(pending.len());
            for (index, line) in pending.drain(..) {
                let user = &chunk.users[index].1;
                let pin = generate_pin(
                    &rules.policy,
                    rules.generated_length,
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
                let user = &chunk.users[index].1;
                let free = !job.seen.contains_key(&tag.0)
                    && self.ensure_unique(&tag, &user.id).is_ok()
                    && !self.recently_retired(&tag)?;
                if !free {
                    pending.push((index, line));
                    continue;
                }
                job.seen.insert(tag.0, line);
                let user = &mut chunk.users[index].1;
                let expiry = self.effective_expiry(None, &user.groups);
                user.pin = Some(pin_record(tag, now, expiry, PinSource::Generated));
                user.pin_issued = true;
                done.push((index, pin));
            }
        }
        for (_, line) in pending {
            job.problem(
                line,
                "could not generate a unique PIN: raise policy.generated_length",
            );
        }
        Ok(done)
    }
}

fn pin_record(
    tag: crate::domain::Tag,
    now: Timestamp,
    expiry: Expiry,
    source: PinSource,
) -> PinRecord {
    PinRecord {
        tag,
        set_at: now,
        expires_at: expiry.expires_at(now),
        source,
        temporary: expiry != Expiry::Never,
        uses_left: None,
        windows: Vec::new(),
    }
}

fn copy_rows(rows: &[ImportRow]) -> Vec<ImportRow> {
    rows.iter()
        .map(|r| ImportRow {
            line: r.line,
            id: r.id.clone(),
            name: r.name.clone(),
            email: r.email.clone(),
            groups: r.groups.clone(),
            pin: r.pin.clone(),
            cards: r.cards.clone(),
        })
        .collect()
}
