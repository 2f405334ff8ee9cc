//! An import file turned into the control feed's lines (`ImportFeed`): chunks of rows read
//! record by record and the local parser's problems, then `end`. Shared by the CLI, which
//! reads a file, and the admin API, which reads an uploaded body; one pass per call.

use super::proto::{ImportFeed, WirePin, WireRow, IMPORT_CHUNK_ROWS};
use crate::lifecycle::import::{ImportProblem, ImportRow, Parsed, RowStream};
use std::io::Read;
use zeroize::Zeroizing;

/// Sends `input`'s rows (CSV or, with `b'\t'`, TSV) as feed lines through `send`, each
/// ending in a newline; stops early when `send` answers false (nobody wants them).
pub fn feed_rows<R: Read>(
    input: std::io::Result<R>,
    delimiter: u8,
    send: &dyn Fn(Zeroizing<Vec<u8>>) -> bool,
) {
    let send = |feed: &ImportFeed| {
        let mut line = Zeroizing::new(serde_json::to_vec(feed).expect("feed serialises"));
        line.push(b'\n');
        send(line)
    };
    let mut rows = Vec::with_capacity(IMPORT_CHUNK_ROWS);
    let mut problems = Vec::new();
    let stream = input
        .map_err(|e| problem(format!("cannot read the file: {e}")))
        .and_then(|f| RowStream::new(f, delimiter));
    match stream {
        Err(p) => problems.push(p),
        Ok(stream) => {
            for item in stream {
                match item {
                    Parsed::Row(r) => rows.push(wire(r)),
                    Parsed::Problems(p) => problems.extend(p),
                }
                if rows.len() < IMPORT_CHUNK_ROWS && problems.len() < IMPORT_CHUNK_ROWS {
                    continue;
                }
                if !flush(&send, &mut rows, &mut problems) {
                    return;
                }
            }
        }
    }
    if flush(&send, &mut rows, &mut problems) {
        send(&ImportFeed::End);
    }
}

/// Sends the rows and problems gathered; false when the call has ended.
fn flush(
    send: &dyn Fn(&ImportFeed) -> bool,
    rows: &mut Vec<WireRow>,
    problems: &mut Vec<ImportProblem>,
) -> bool {
    if !problems.is_empty() {
        let problems = std::mem::take(problems);
        if !send(&ImportFeed::Problems { problems }) {
            return false;
        }
    }
    if rows.is_empty() {
        return true;
    }
    let rows = std::mem::replace(rows, Vec::with_capacity(IMPORT_CHUNK_ROWS));
    send(&ImportFeed::Rows { rows })
}

fn problem(message: String) -> ImportProblem {
    ImportProblem { line: 0, message }
}

fn wire(r: ImportRow) -> WireRow {
    WireRow {
        line: r.line,
        id: r.id,
        name: r.name,
        email: r.email,
        groups: r.groups,
        pin: r.pin.map(WirePin),
        cards: r.cards,
    }
}
