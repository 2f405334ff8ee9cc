//! Tests of the user-import parser: the Lexmark rules, PIN secrecy and robustness.

use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn problems(input: &str) -> Vec<ImportProblem> {
    parse_users(input.as_bytes(), b',').expect_err("expected problems")
}

fn rows(input: &[u8], delimiter: u8) -> Vec<ImportRow> {
    match parse_users(input, delimiter) {
        Ok(rows) => rows,
        Err(problems) => panic!("unexpected problems: {problems:?}"),
    }
}

fn lines(problems: &[ImportProblem]) -> Vec<usize> {
    problems.iter().map(|p| p.line).collect()
}

#[test]
fn valid_file_with_every_column() {
    let input = "id,name,email,groups,pin,card\n\
                 alice,\"Smith, Alice\",alice@example.org, staff ; ;print ,0482,04AB;  77 \n\
                 \n\
                 bob , Bob ,,,,\n\
                 \"carol\",\"Carol \"\"CJ\"\" Jones\", ,guests,007,\n";
    let rows = rows(input.as_bytes(), b',');
    assert_eq!(rows.len(), 3);
    let alice = &rows[0];
    assert_eq!(
        (alice.line, alice.id.as_str(), alice.name.as_str()),
        (2, "alice", "Smith, Alice")
    );
    assert_eq!(alice.email.as_deref(), Some("alice@example.org"));
    assert_eq!(alice.groups, ["staff", "print"]);
    assert_eq!(alice.pin.as_ref().map(Pin::expose), Some("0482"));
    assert_eq!(alice.cards, ["04AB", "77"]);
    let bob = &rows[1];
    assert_eq!(
        (bob.line, bob.id.as_str(), bob.name.as_str()),
        (4, "bob", "Bob")
    );
    assert!(
        bob.email.is_none() && bob.groups.is_empty() && bob.pin.is_none() && bob.cards.is_empty()
    );
    let carol = &rows[2];
    assert_eq!((carol.line, carol.name.as_str()), (5, "Carol \"CJ\" Jones"));
    assert_eq!(carol.pin.as_ref().map(Pin::expose), Some("007"));
    assert!(!format!("{rows:?}").contains("0482"));
}

#[test]
fn tsv_and_column_order() {
    let input = b"pin\tid\tname\n0099\tdave\tDave, Jr.\n";
    let rows = rows(input, b'\t');
    assert_eq!(rows[0].id, "dave");
    assert_eq!(rows[0].name, "Dave, Jr.");
    assert_eq!(rows[0].pin.as_ref().map(Pin::expose), Some("0099"));
}

#[test]
fn bom_is_ignored() {
    let rows = rows(b"\xEF\xBB\xBFid,pin\r\nalice,1357\r\n", b',');
    assert_eq!((rows[0].line, rows[0].id.as_str()), (2, "alice"));
}

#[test]
fn empty_header_only_and_oversized_files() {
    let empty = "file is empty: expected a header row such as `id,name,email,groups,pin`";
    for input in ["", "\u{feff}", "\n\r\n"] {
        let problems = parse_users(input.as_bytes(), b',').unwrap_err();
        assert_eq!(
            problems,
            [ImportProblem {
                line: 0,
                message: empty.into()
            }]
        );
    }
    assert!(rows(b"id,name,pin\n", b',').is_empty());
    let big = vec![b'a'; MAX_IMPORT_BYTES + 1];
    let problems = parse_users(&big, b',').unwrap_err();
    assert_eq!(lines(&problems), [0]);
    assert!(problems[0].message.contains("64 MiB"), "{problems:?}");
}

#[test]
fn wrong_column_counts_are_reported_together() {
    let input = "id,name,email,groups,pin\na,A,,,\n\nb,B,,\nc,C,,,\nd,D,,,,,\n";
    let problems = problems(input);
    assert_eq!(lines(&problems), [4, 6]);
    assert_eq!(
        problems[0].to_string(),
        "line 4: expected 5 columns, found 4"
    );
    assert_eq!(
        problems[1].to_string(),
        "line 6: expected 5 columns, found 7"
    );
}

#[test]
fn bad_header_names_are_named() {
    let problems = problems("ID,name,Pin,mail,name\nalice,A,1234,a@b,A\n");
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(lines(&problems).iter().all(|&l| l == 1), "{text:?}");
    assert!(text
        .iter()
        .any(|m| m.contains("`ID`") && m.contains("did you mean `id`")));
    assert!(text
        .iter()
        .any(|m| m.contains("`Pin`") && m.contains("did you mean `pin`")));
    assert!(text.iter().any(|m| m.contains("unknown column `mail`")));
    assert!(text
        .iter()
        .any(|m| m.contains("`name` appears more than once")));
    assert!(text
        .iter()
        .any(|m| m.contains("required column `id` is missing")));
    assert!(text
        .iter()
        .all(|m| m.contains("id, name, email, groups, pin, card")));
}

#[test]
fn duplicate_ids_name_both_lines() {
    let problems = problems("id,name\nalice,A\nbob,B\nalice,A2\n");
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].line, 4);
    assert!(problems[0].message.contains("alice"));
    assert!(problems[0].message.contains("line 2") && problems[0].message.contains("line 4"));
}

#[test]
fn bad_email_empty_id_and_bad_ids() {
    let long = "x".repeat(129);
    let input =
        format!("id,email\nok,a@b.example\n,a@b\nb1,a@@b\nb2,@b\nb3,a b@c\nb4,ab\nx y,\n{long},\n");
    let problems = problems(&input);
    assert_eq!(lines(&problems), [3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(problems[0].message, "`id` is empty");
    assert!(problems[1..5].iter().all(|p| p.message.contains("`email`")));
    assert!(problems[5].message.contains("whitespace"));
    assert!(problems[6].message.contains("128 bytes"));
}

#[test]
fn pin_is_taken_exactly_and_whitespace_is_a_problem() {
    let problems = problems("id,pin,name\na,12 34,A\nb, 5678,B\nc,\"9012\t\",C\nd,0000,D\n");
    assert_eq!(lines(&problems), [2, 3, 4]);
    assert!(problems.iter().all(|p| p.message.contains("`pin`")));
}

#[test]
fn invalid_utf8_is_a_problem_for_that_line() {
    let input = b"id,name,pin\nalice,Al\xFFce,1234\nbob,Bob,\xC3\n";
    let problems = parse_users(input, b',').unwrap_err();
    assert_eq!(lines(&problems), [2, 3]);
    assert!(problems[0].message.contains("`name`") && problems[0].message.contains("UTF-8"));
    assert!(problems[1].message.contains("`pin`"));
}

#[test]
fn line_numbers_follow_blank_lines_and_quoted_newlines() {
    let input = "\n\nid,name\n\n\n\"a\",\"two\nlines\"\n\n b ,B\n\"\",X\n";
    let problems = problems(input);
    assert_eq!(lines(&problems), [6, 10]);
    assert!(problems[0]
        .message
        .starts_with("`name` contains a line break"));
    assert_eq!(problems[1].message, "`id` is empty");
    let rows = rows(b"id,name\r\n\r\na,A\r\n   \r\nb,B", b',');
    assert_eq!(lines_of(&rows), [3, 5]);
}

fn lines_of(rows: &[ImportRow]) -> Vec<usize> {
    rows.iter().map(|r| r.line).collect()
}

/// Found by the `csv_import` fuzz target: the csv crate ends a record at a lone CR but counts
/// only LFs, so every row of a file with CR line ends (or a stray CR) had a wrong line.
#[test]
fn lone_cr_line_ends_count_as_lines() {
    let rows = rows(b"id,name\ralice,A\r\rbob,B\r\ncarol,C\n\r\ndave,D", b',');
    assert_eq!(lines_of(&rows), [2, 4, 5, 7]);
    let found = problems("id,name\ralice\rbob,B,x\r\n\rcarol,C");
    assert_eq!(lines(&found), [2, 3]);
}

#[test]
fn messages_never_contain_pins() {
    let pins = [
        "9173",
        "58 26",
        "64\t47",
        "3\u{7}915",
        "4408",
        "7731",
        "2846",
    ];
    let input = format!(
        "id,pin,email\n\
         a,{},bad\n\
         a,\"{}\",x@y\n\
         ,\"{}\",\n\
         \"c d\",\"{}\",\n\
         e,{},,extra\n\
         f,\"{}\n\",\n",
        pins[0], pins[1], pins[2], pins[3], pins[4], pins[5]
    );
    let headerless = format!("alice,{},Alice\nbob,{},Bob\n", pins[6], pins[0]);
    let misplaced = format!("id,name,{},pin\nx,y,z,{}\n", pins[4], pins[5]);
    let mut all = problems(&input);
    all.extend(problems(&headerless));
    all.extend(problems(&misplaced));
    all.extend(parse_users(b"id,pin\nq,77\xFF31\n", b',').unwrap_err());
    all.extend(problems(&format!("id,\"pin\nq,{}\n", pins[6])));
    all.extend(problems(&format!(
        "id,name,pin\nq,\"Q,{}\nr,R,{}\n",
        pins[0], pins[4]
    )));
    assert!(all.len() >= 11, "{all:?}");
    for problem in &all {
        let text = problem.to_string();
        for pin in pins.iter() {
            let chars: Vec<char> = pin.chars().filter(|c| c.is_ascii_digit()).collect();
            for window in chars.windows(3) {
                let part: String = window.iter().collect();
                assert!(!text.contains(&part), "{text:?} contains part of a PIN");
            }
        }
    }
}

#[test]
fn random_input_never_panics() {
    const TOKENS: [&[u8]; 18] = [
        b",",
        b"\"",
        b"\n",
        b"\r\n",
        b"\t",
        b";",
        b" ",
        b"id",
        b"name",
        b"email",
        b"groups",
        b"pin",
        b"card",
        b"0123",
        b"a@b",
        b"\xEF\xBB\xBF",
        b"\xFF",
        b"\r",
    ];
    let mut rng = StdRng::seed_from_u64(0x5EED_1A7E);
    for _ in 0..20_000 {
        let len = rng.gen_range(0..512);
        let mut input = Vec::with_capacity(len + 16);
        while input.len() < len {
            if rng.gen_bool(0.8) {
                input.extend_from_slice(TOKENS[rng.gen_range(0..TOKENS.len())]);
            } else {
                input.push(rng.gen());
            }
        }
        input.truncate(len);
        let delimiter = if rng.gen_bool(0.5) { b',' } else { b'\t' };
        match parse_users(&input, delimiter) {
            Ok(rows) => assert!(rows.iter().all(|r| !r.id.is_empty() && r.line >= 2)),
            Err(problems) => {
                assert!(!problems.is_empty());
                assert!(problems.windows(2).all(|w| w[0].line <= w[1].line));
            }
        }
    }
}
