use super::*;

fn source(dir: &std::path::Path, text: &str) -> CsvSource {
    let path = dir.join("users.csv");
    std::fs::write(&path, text).unwrap();
    CsvSource::new(
        CsvSettings {
            path,
            delimiter: ',',
        },
        [5; 32],
    )
}

fn ids(batch: &Batch) -> Vec<&str> {
    batch.changed.iter().map(|u| u.id.as_str()).collect()
}

const FILE: &str = "id,name,email,groups,pin\nann,Ann,,staff,482913\nbob,Bob,,staff,730194\n";

#[test]
fn an_unchanged_file_is_an_empty_batch_and_a_change_names_only_changed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), FILE);
    let first = src.fetch_now(None).unwrap();
    assert_eq!(ids(&first), vec!["ann", "bob"]);
    let cursor = first.cursor.clone().unwrap();
    assert!(!cursor.windows(6).any(|w| w == b"482913"));
    let again = src.fetch_now(Some(&cursor)).unwrap();
    assert!(again.changed.is_empty() && again.cursor.is_none());
    assert_eq!(again.deletions, Deletions::Keys(vec![]));

    std::fs::write(
        dir.path().join("users.csv"),
        FILE.replace("730194", "730195"),
    )
    .unwrap();
    let second = src.fetch_now(Some(&cursor)).unwrap();
    assert_eq!(
        ids(&second),
        vec!["bob"],
        "only the row that changed is re-hashed"
    );
    assert_eq!(
        second.deletions,
        Deletions::AllExcept {
            present: vec!["ann".into()]
        }
    );
    // The engine did not apply `second` (refused, crashed): from the old cursor again,
    // the same rows are still changed.
    let retry = src.fetch_now(Some(&cursor)).unwrap();
    assert_eq!(ids(&retry), vec!["bob"]);
    // A cursor this process never handed out (after a restart): every row.
    let unknown = src.fetch_now(Some(b"other")).unwrap();
    assert_eq!(ids(&unknown), vec!["ann", "bob"]);
}

#[test]
fn a_broken_file_applies_nothing_and_names_lines_not_pins() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(
        dir.path(),
        "id,name,email,groups,pin\nann,Ann,,staff,482913\nbob,Bob,staff,730194\n",
    );
    let e = src.fetch_now(None).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, SourceError::Malformed(_)), "{text}");
    assert!(text.contains("line 3"), "{text}");
    assert!(
        !text.contains("730194") && !text.contains("482913"),
        "{text}"
    );
    let src = source(dir.path(), "");
    assert!(matches!(
        src.fetch_now(None),
        Err(SourceError::Malformed(_))
    ));
    std::fs::remove_file(dir.path().join("users.csv")).unwrap();
    assert!(matches!(
        src.fetch_now(None),
        Err(SourceError::Unavailable(_))
    ));
}
