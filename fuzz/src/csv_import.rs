//! User import files (CSV/TSV, `pinwarden import` and the CSV directory source): the whole
//! file parser and the record-by-record stream. The first byte picks the delimiter.
//! Invariants: the stream and the whole-file parser agree on the rows and on whether the
//! file has problems; row lines increase.

use pinwarden::lifecycle::import::{parse_users, Parsed, RowStream};

pub fn run(data: &[u8]) {
    let Some((&pick, file)) = data.split_first() else {
        return;
    };
    let delimiter = match pick % 4 {
        0 => b',',
        1 => b'\t',
        2 => b';',
        _ => pick,
    };
    let whole = parse_users(file, delimiter);
    let Ok(stream) = RowStream::new(file, delimiter) else {
        assert!(
            whole.is_err(),
            "the stream refused a delimiter the parser took"
        );
        return;
    };
    let (mut rows, mut problems) = (Vec::new(), 0);
    for item in stream {
        match item {
            Parsed::Row(row) => rows.push(row),
            Parsed::Problems(p) => {
                assert!(!p.is_empty(), "an empty problem list");
                problems += p.len();
            }
        }
    }
    assert!(rows.windows(2).all(|w| w[0].line < w[1].line), "row lines");
    match whole {
        Ok(parsed) => {
            assert_eq!(problems, 0, "the stream found problems the parser did not");
            assert_eq!(parsed.len(), rows.len(), "row counts differ");
            for (a, b) in parsed.iter().zip(&rows) {
                assert_eq!((a.line, &a.id, &a.cards), (b.line, &b.id, &b.cards));
            }
        }
        Err(found) => {
            assert_eq!(found.len(), problems, "problem counts differ");
        }
    }
}
