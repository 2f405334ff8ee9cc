//! Parses user-import files (CSV/TSV) into validated rows, record by record from any reader; pure: no store or PIN policy, and no PIN in any message.

use crate::domain::{check_user_id, Pin};
use csv::{ByteRecord, Position, ReaderBuilder};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};

/// Largest file `parse_users` accepts (it holds the whole file; `RowStream` does not).
pub const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;
const MAX_ECHOED_HEADER_CHARS: usize = 40;
const BOM: &[u8] = b"\xEF\xBB\xBF";
const ALLOWED: &str = "allowed columns are: id, name, email, groups, pin, card";
const EXAMPLE: &str = "expected a header row such as `id,name,email,groups,pin`";

/// One valid user from an import file.
#[derive(Debug)]
pub struct ImportRow {
    /// Physical 1-based line of the row in the file.
    pub line: usize,
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    /// `None` when the cell is empty or the file has no `pin` column.
    pub pin: Option<Pin>,
    pub cards: Vec<String>,
}

/// Something wrong with an import file. `line` 0 means the file as a whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportProblem {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Id,
    Name,
    Email,
    Groups,
    Pin,
    Card,
}

impl Column {
    const ALL: [Column; 6] = [
        Column::Id,
        Column::Name,
        Column::Email,
        Column::Groups,
        Column::Pin,
        Column::Card,
    ];

    fn name(self) -> &'static str {
        match self {
            Column::Id => "id",
            Column::Name => "name",
            Column::Email => "email",
            Column::Groups => "groups",
            Column::Pin => "pin",
            Column::Card => "card",
        }
    }

    fn from_name(name: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.name() == name)
    }

    fn from_name_ignoring_case(name: &str) -> Option<Column> {
        Column::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }
}

/// The header row: which known column, if any, each position holds.
struct Header {
    columns: Vec<Option<Column>>,
}

impl Header {
    fn position(&self, column: Column) -> Option<usize> {
        self.columns.iter().position(|c| *c == Some(column))
    }

    fn describe(&self, index: usize) -> String {
        match self.columns.get(index).copied().flatten() {
            Some(c) => format!("column {} (`{}`)", index + 1, c.name()),
            None => format!("column {}", index + 1),
        }
    }
}

/// Accumulates problems, and the ids seen so far, while the file is read.
#[derive(Default)]
struct Checker {
    /// id (as `digester`'s digest) → first line
    seen_ids: HashMap<u128, usize>,
    digester: crate::domain::Digester,
    problems: Vec<ImportProblem>,
}

impl Checker {
    fn problem(&mut self, line: usize, message: impl Into<String>) {
        self.problems.push(ImportProblem {
            line,
            message: message.into(),
        });
    }

    fn parse_header(&mut self, record: &ByteRecord, line: usize) -> Header {
        let names: Vec<Option<&str>> = record
            .iter()
            .map(|cell| std::str::from_utf8(cell).ok().map(str::trim))
            .collect();
        let looks_like_header = names
            .iter()
            .flatten()
            .any(|n| Column::from_name_ignoring_case(n).is_some());
        if !looks_like_header {
            // Probably a data row: its cells may hold a PIN, so none of them is echoed.
            let message = "the first row is not a header (none of its cells is a column name)";
            self.problem(line, format!("{message}; {EXAMPLE}; {ALLOWED}"));
            return Header {
                columns: vec![None; names.len()],
            };
        }
        let mut columns = Vec::with_capacity(names.len());
        for (index, name) in names.iter().enumerate() {
            let column = name.and_then(Column::from_name);
            match (name, column) {
                (_, Some(c)) if columns.contains(&Some(c)) => {
                    let message = format!("column `{}` appears more than once", c.name());
                    self.problem(line, format!("{message}; {ALLOWED}"));
                    columns.push(None);
                    continue;
                }
                (_, Some(_)) => {}
                (None, None) => self.problem(
                    line,
                    format!("header column {} is not valid UTF-8", index + 1),
                ),
                (Some(name), None) => {
                    let message = unknown_column_message(index, name);
                    self.problem(line, format!("{message}; {ALLOWED}"));
                }
            }
            columns.push(column);
        }
        if !columns.contains(&Some(Column::Id)) {
            self.problem(line, format!("required column `id` is missing; {ALLOWED}"));
        }
        Header { columns }
    }

    fn parse_row(
        &mut self,
        header: &Header,
        record: &ByteRecord,
        line: usize,
    ) -> Option<ImportRow> {
        if record.len() != header.columns.len() {
            let (expected, found) = (header.columns.len(), record.len());
            self.problem(line, format!("expected {expected} columns, found {found}"));
            return None;
        }
        let mut cells = Vec::with_capacity(record.len());
        for (index, raw) in record.iter().enumerate() {
            match std::str::from_utf8(raw) {
                Ok(cell) => cells.push(cell),
                Err(_) => {
                    let message = format!("{} is not valid UTF-8", header.describe(index));
                    self.problem(line, message);
                    return None;
                }
            }
        }
        let cell = |c: Column| header.position(c).map(|i| cells[i]);
        let raw_pin = cell(Column::Pin).unwrap_or("");
        let id = cell(Column::Id).map(str::trim);
        let name = cell(Column::Name).unwrap_or("").trim().to_owned();
        let email = cell(Column::Email).map(str::trim).filter(|e| !e.is_empty());
        let groups = split_list(cell(Column::Groups).unwrap_or(""));
        let cards = split_list(cell(Column::Card).unwrap_or(""));

        let before = self.problems.len();
        if let Some(id) = id {
            self.check_id(id, line);
        }
        self.check_text("name", std::slice::from_ref(&name), line);
        if email.is_some_and(|e| !is_email(e)) {
            let hint = "expected one `@` with text on both sides and no spaces";
            self.problem(line, format!("`email` is not an email address ({hint})"));
        }
        self.check_text("groups", &groups, line);
        self.check_text("card", &cards, line);
        let pin = self.check_pin(raw_pin, line);
        let id = id?;
        (self.problems.len() == before).then(|| ImportRow {
            line,
            id: id.to_owned(),
            name,
            email: email.map(str::to_owned),
            groups,
            pin,
            cards,
        })
    }

    fn check_id(&mut self, id: &str, line: usize) {
        if let Err(why) = check_user_id(id) {
            self.problem(line, format!("`id` {why}"));
        } else if let Some(&first) = self.seen_ids.get(&self.digester.of(id)) {
            self.problem(
                line,
                format!("id `{id}` appears on both line {first} and line {line}"),
            );
        } else {
            self.seen_ids.insert(self.digester.of(id), line);
        }
    }

    fn check_text(&mut self, column: &str, values: &[String], line: usize) {
        if values.iter().any(|v| v.contains('\n')) {
            let hint = "is a `\"` left unclosed?";
            self.problem(line, format!("`{column}` contains a line break ({hint})"));
        } else if values.iter().any(|v| v.chars().any(char::is_control)) {
            self.problem(line, format!("`{column}` contains control characters"));
        }
    }

    /// The PIN is taken exactly as written; the message never includes it.
    fn check_pin(&mut self, raw: &str, line: usize) -> Option<Pin> {
        if raw.is_empty() {
            return None;
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            let hint = "PINs are taken exactly as written, so remove any spaces around it";
            self.problem(
                line,
                format!("`pin` contains whitespace or control characters ({hint})"),
            );
            return None;
        }
        Some(Pin::new(raw))
    }
}

/// Names an unknown header cell, echoing it only when it looks like a column name: a header
/// row can be a data row or swallow the rest of the file through an unclosed quote.
fn unknown_column_message(index: usize, name: &str) -> String {
    let looks_like_name = name.len() <= MAX_ECHOED_HEADER_CHARS
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' '));
    if name.is_empty() {
        return format!("header column {} has no name", index + 1);
    }
    if name.contains('\n') {
        return format!(
            "header column {} contains a line break (is a `\"` left unclosed?)",
            index + 1
        );
    }
    if !looks_like_name {
        return format!("header column {} is not a column name", index + 1);
    }
    let mut message = format!("unknown column `{name}`");
    if let Some(c) = Column::from_name_ignoring_case(name) {
        let hint = format!(
            " (column names are case-sensitive: did you mean `{}`?)",
            c.name()
        );
        message.push_str(&hint);
    }
    message
}

/// A `;`-separated list: entries trimmed, empty entries dropped.
fn split_list(cell: &str) -> Vec<String> {
    cell.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn is_email(value: &str) -> bool {
    let mut parts = value.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let bad = |c: char| c.is_whitespace() || c.is_control();
    !local.is_empty() && !domain.is_empty() && !value.chars().any(bad)
}

fn is_blank(record: &ByteRecord) -> bool {
    record.len() == 1 && record[0].iter().all(u8::is_ascii_whitespace)
}

/// The reader under the CSV parser: strips a leading BOM and remembers where the line-break
/// bytes not yet behind the current record are, so a record's physical line can be told
/// without holding the file (the csv crate skips empty lines without counting them).
struct Tracked<R> {
    inner: std::io::BufReader<R>,
    offset: u64,
    breaks: Arc<Mutex<Breaks>>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut breaks = lock(&self.breaks);
        for (i, b) in buf[..n].iter().enumerate() {
            if matches!(b, b'\r' | b'\n') {
                breaks.pending.push_back((self.offset + i as u64, *b));
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// The breaks (shared by the reader and the stream, which is `Send` so that a sync can
/// read a file a chunk at a time on blocking threads; never contended).
fn lock(breaks: &Mutex<Breaks>) -> MutexGuard<'_, Breaks> {
    breaks.lock().unwrap_or_else(|e| e.into_inner())
}

/// Line-break bytes read but not yet behind a record, and the physical lines ended before
/// them. A line ends in LF, CRLF or a lone CR, as the csv crate reads records (its own line
/// count sees only LFs, so a file with CR line ends would be all "line 1").
#[derive(Default)]
struct Breaks {
    pending: VecDeque<(u64, u8)>,
    lines_ended: usize,
    last_cr: Option<u64>,
}

/// Whether the break byte at `at` ends a line (an LF right after a CR does not).
fn ends_line(last_cr: &mut Option<u64>, at: u64, b: u8) -> bool {
    let ends = !(b == b'\n' && last_cr.is_some_and(|cr| cr + 1 == at));
    *last_cr = (b == b'\r').then_some(at);
    ends
}

/// The physical line on which a record starts. The csv crate reports the position just after
/// the previous record, before any empty lines it skipped, so those are counted here (and
/// line breaks before that position forgotten).
fn start_line(breaks: &Mutex<Breaks>, position: &Position) -> usize {
    let mut breaks = lock(breaks);
    while let Some(&(at, b)) = breaks
        .pending
        .front()
        .filter(|(at, _)| *at < position.byte())
    {
        breaks.pending.pop_front();
        if ends_line(&mut breaks.last_cr, at, b) {
            breaks.lines_ended += 1;
        }
    }
    // Empty lines the csv crate skipped: the breaks that follow on from the position.
    let mut last_cr = breaks.last_cr;
    let skipped = breaks
        .pending
        .iter()
        .zip(position.byte()..)
        .take_while(|((at, _), want)| at == want)
        .filter(|((at, b), _)| ends_line(&mut last_cr, *at, *b))
        .count();
    breaks.lines_ended.saturating_add(skipped).saturating_add(1)
}

/// What one record of an import file gave: a valid row, or the problems it has.
#[derive(Debug)]
pub enum Parsed {
    Row(ImportRow),
    Problems(Vec<ImportProblem>),
}

/// An import file read record by record: memory is one record and the ids seen so far,
/// whatever the file's size. Every problem is reported, each with the record it belongs to.
pub struct RowStream<R: Read> {
    reader: csv::Reader<Tracked<R>>,
    breaks: Arc<Mutex<Breaks>>,
    checker: Checker,
    header: Option<Header>,
    record: ByteRecord,
    done: bool,
}

impl<R: Read> RowStream<R> {
    pub fn new(input: R, delimiter: u8) -> Result<Self, ImportProblem> {
        if !delimiter.is_ascii() || matches!(delimiter, b'"' | b'\r' | b'\n') {
            return Err(ImportProblem {
                line: 0,
                message: format!(
                    "unsupported delimiter byte 0x{delimiter:02x}; use `,` for CSV or a tab for TSV"
                ),
            });
        }
        let mut inner = std::io::BufReader::new(input);
        if let Ok(head) = std::io::BufRead::fill_buf(&mut inner) {
            if head.starts_with(BOM) {
                std::io::BufRead::consume(&mut inner, BOM.len());
            }
        }
        let breaks = Arc::new(Mutex::new(Breaks::default()));
        let tracked = Tracked {
            inner,
            offset: 0,
            breaks: Arc::clone(&breaks),
        };
        let reader = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(tracked);
        Ok(RowStream {
            reader,
            breaks,
            checker: Checker::default(),
            header: None,
            record: ByteRecord::new(),
            done: false,
        })
    }

    /// The next record's outcome; at the end, a file without a header is one problem.
    fn step(&mut self) -> Option<Parsed> {
        loop {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    if self.header.is_none() {
                        let message = format!("file is empty: {EXAMPLE}");
                        self.checker.problem(0, message);
                    }
                    break;
                }
                Err(err) => {
                    self.done = true;
                    let line = err.position().map_or(0, |p| start_line(&self.breaks, p));
                    let message = "the file could not be read as CSV from here on";
                    self.checker.problem(line, message);
                    break;
                }
            }
            if is_blank(&self.record) {
                continue;
            }
            let line = self
                .record
                .position()
                .map_or(0, |p| start_line(&self.breaks, p));
            match &self.header {
                None => self.header = Some(self.checker.parse_header(&self.record, line)),
                Some(h) => {
                    if let Some(row) = self.checker.parse_row(h, &self.record, line) {
                        return Some(Parsed::Row(row));
                    }
                }
            }
            if !self.checker.problems.is_empty() {
                break;
            }
        }
        let problems = std::mem::take(&mut self.checker.problems);
        (!problems.is_empty()).then_some(Parsed::Problems(problems))
    }
}

impl<R: Read> Iterator for RowStream<R> {
    type Item = Parsed;

    fn next(&mut self) -> Option<Parsed> {
        if self.done {
            return None;
        }
        self.step()
    }
}

/// Parses a whole file. Ok only when every row is valid.
pub fn parse_users(bytes: &[u8], delimiter: u8) -> Result<Vec<ImportRow>, Vec<ImportProblem>> {
    if bytes.len() > MAX_IMPORT_BYTES {
        let limit = MAX_IMPORT_BYTES / (1024 * 1024);
        let message = format!(
            "file is {} bytes, larger than the {limit} MiB import limit; split it into smaller files",
            bytes.len()
        );
        return Err(vec![ImportProblem { line: 0, message }]);
    }
    let stream = RowStream::new(bytes, delimiter).map_err(|p| vec![p])?;
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for item in stream {
        match item {
            Parsed::Row(row) => rows.push(row),
            Parsed::Problems(p) => problems.extend(p),
        }
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        problems.sort_by_key(|p| p.line);
        Err(problems)
    }
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
