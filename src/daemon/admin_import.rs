//! The `import` control request: the file's rows arrive on the connection in chunks and are
//! checked chunk by chunk; a clean file (not a dry run) is asked for again and applied chunk
//! by chunk, one store transaction each. The work stops between chunks when the client goes
//! away; what was applied by then is whole chunks, and re-running the same file finishes it.

use crate::frontend::control::proto::{ImportFeed, WireRow, IMPORT_CHUNK_ROWS};
use crate::frontend::control::Session;
use crate::lifecycle::import::{ImportProblem, ImportRow};
use crate::lifecycle::users::{AdminError, ImportJob, ImportOptions, UserAdmin};
use blake2::Digest;
use serde_json::json;

/// One line of the feed, decoded.
enum Fed {
    Rows(Vec<ImportRow>, [u8; 32]),
    Problems(Vec<ImportProblem>),
    End,
}

pub(super) async fn import(
    users: &UserAdmin,
    options: ImportOptions,
    session: &mut Session,
) -> Result<serde_json::Value, AdminError> {
    let mut job = ImportJob::new(options);
    loop {
        let fed = match next(session).await {
            Ok(fed) => fed,
            Err(e) => {
                if session.gone.is_cancelled() {
                    users.import_finish(job, Some("the client went away while it was checked"));
                }
                return Err(e);
            }
        };
        match fed {
            Fed::Rows(rows, digest) => {
                let base = job.checked_rows();
                let progress = session.progress.clone();
                let each = move |done: usize, _| {
                    let _ = progress.send((base + done, 0));
                };
                users.import_check(&mut job, rows, digest, &each).await?;
                let _ = session.progress.send((job.checked_rows(), 0));
            }
            Fed::Problems(problems) => {
                for p in problems {
                    job.problem(p.line, p.message);
                }
            }
            Fed::End => break,
        }
    }
    let checked = users.import_checked(&mut job)?;
    if options.dry_run {
        return Ok(json!(checked));
    }
    session.input.send_again();
    let total = checked.rows;
    let stopped = loop {
        if session.gone.is_cancelled() {
            break Some("the client went away".to_string());
        }
        let rows = match next(session).await {
            Ok(Fed::Rows(rows, digest)) => (rows, digest),
            Ok(Fed::End) => break None,
            Ok(Fed::Problems(_)) => break Some("the file has problems now".into()),
            Err(e) => break Some(e.to_string()),
        };
        let progress = session.progress.clone();
        let base = job.applied_rows();
        let each = move |done: usize, _| {
            let _ = progress.send((base + done.min(IMPORT_CHUNK_ROWS), total));
        };
        if let Err(e) = users.import_apply(&mut job, rows.0, rows.1, &each).await {
            break Some(e.to_string());
        }
        let _ = session.progress.send((job.applied_rows(), total));
    };
    let applied = job.applied_rows();
    let report = users.import_finish(job, stopped.as_deref());
    if !options.dry_run && report.added + report.updated >= crate::store::RELEASE_AFTER {
        users.release_memory().await;
    }
    match stopped {
        None => Ok(json!(report)),
        Some(why) => Err(AdminError::Invalid(format!(
            "import stopped: {why}; {applied} of {total} row(s) were applied in whole chunks: \
             run the same import again to finish it"
        ))),
    }
}

/// The next line of the feed; a client that went away is an error.
async fn next(session: &mut Session) -> Result<Fed, AdminError> {
    let line = tokio::select! {
        line = session.input.next() => line,
        () = session.gone.cancelled() => None,
    };
    let Some(line) = line else {
        return Err(AdminError::Invalid(
            "the client went away before the end of the file".into(),
        ));
    };
    // Never serde's own message: it could quote a cell (a PIN).
    let feed: ImportFeed = serde_json::from_slice(&line).map_err(|_| {
        AdminError::Invalid("malformed import line from the client: nothing was applied".into())
    })?;
    Ok(match feed {
        ImportFeed::Rows { rows } if rows.len() > IMPORT_CHUNK_ROWS => {
            return Err(AdminError::Invalid(format!(
                "an import chunk holds at most {IMPORT_CHUNK_ROWS} rows"
            )))
        }
        ImportFeed::Rows { rows } => {
            let digest = blake2::Blake2s256::digest(&line[..]).into();
            Fed::Rows(rows.into_iter().map(row).collect(), digest)
        }
        ImportFeed::Problems { problems } => Fed::Problems(problems),
        ImportFeed::End => Fed::End,
    })
}

fn row(w: WireRow) -> ImportRow {
    ImportRow {
        line: w.line,
        id: w.id,
        name: w.name,
        email: w.email,
        groups: w.groups,
        pin: w.pin.map(|p| p.0),
        cards: w.cards,
    }
}
