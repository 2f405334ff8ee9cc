use super::*;

fn job(id: i32, state: i32, owner: &str) -> Job {
    Job {
        id,
        state,
        owner: owner.into(),
    }
}

#[test]
fn user_names_compare_as_cups_does() {
    assert!(same_user("alice", "alice"));
    assert!(same_user("Alice", "alice"));
    assert!(same_user("ALICE@CORP.EXAMPLE", "alice"));
    assert!(same_user("alice", "alice@corp.example"));
    assert!(!same_user("alicex", "alice"));
    assert!(!same_user("bob", "alice"));
    assert!(!same_user("", ""), "an anonymous job belongs to nobody");
    assert!(!same_user("@corp", ""));
}

#[test]
fn only_the_users_held_jobs_are_selected() {
    let jobs = [
        job(1, 4, "alice"),
        job(2, 4, "bob"),
        job(3, 3, "alice"),
        job(4, 4, "Alice@corp.example"),
        job(5, 9, "alice"),
        job(6, 4, ""),
    ];
    assert_eq!(jobs_to_release(&jobs, "alice"), [1, 4]);
    assert_eq!(jobs_to_release(&jobs, "bob"), [2]);
    assert!(jobs_to_release(&jobs, "carol").is_empty());
}

#[test]
fn printer_trouble_table() {
    let st = |state, reasons: &[&str]| PrinterStatus {
        state,
        reasons: reasons.iter().map(|r| r.to_string()).collect(),
    };
    #[rustfmt::skip]
    let table: [(PrinterStatus, Option<&str>); 10] = [
        (st(3, &["none"]), None),
        (st(4, &[]), None),
        (st(3, &["toner-low-warning", "media-low-report"]), None),
        (st(5, &["paused"]), Some("paused")),
        (st(5, &["none"]), Some("stopped")),
        (st(4, &["media-jam-error"]), Some("media-jam-error")),
        (st(3, &["media-jam"]), Some("media-jam")),
        (st(3, &["offline-report"]), Some("offline-report")),
        (st(3, &["other-error", "toner-low-warning"]), Some("other-error")),
        (st(3, &["offline-warning"]), None),
    ];
    for (status, want) in table {
        assert_eq!(printer_trouble(&status).as_deref(), want, "{status:?}");
    }
}

#[test]
fn the_breaker_refuses_until_the_back_off_passed() {
    let mut b = Breaker {
        backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(4)),
        open_until: None,
    };
    let t0 = Instant::now();
    assert!(b.check(t0).is_ok());
    b.failed(t0, &PrintError::Unreachable("refused".into()));
    let err = b.check(t0).unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    assert!(b.check(t0 + Duration::from_secs(2)).is_ok());
    b.succeeded();
    assert!(b.check(t0).is_ok());
}

#[test]
fn random_job_lists_never_select_another_users_job() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let names = [
        "alice",
        "ALICE",
        "bob",
        "alice@x",
        "al",
        "",
        "@",
        "alice@",
        "bob@alice",
    ];
    for _ in 0..5000 {
        let jobs: Vec<Job> = (0..rng.gen_range(0..8))
            .map(|i| {
                job(
                    i,
                    rng.gen_range(3..10),
                    names[rng.gen_range(0..names.len())],
                )
            })
            .collect();
        for id in jobs_to_release(&jobs, "alice") {
            let j = jobs.iter().find(|j| j.id == id).unwrap();
            assert_eq!(j.state, 4);
            assert_eq!(j.owner.split('@').next().unwrap().to_lowercase(), "alice");
        }
    }
}
