use super::*;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn keys() -> LinkKeys {
    LinkKeys::new([5; 32])
}

fn holder(pin_set_at: Option<i64>) -> Option<Holder> {
    Some(Holder {
        enabled: true,
        pin_set_at: pin_set_at.map(at),
        pending_set_at: None,
    })
}

fn fresh() -> NewLink {
    let browser = keys().nonce_key("nonce-a");
    new_link(
        &keys(),
        "alice",
        Some(at(10)),
        browser,
        Duration::from_secs(1800),
        at(1_000),
    )
}

#[test]
fn tokens_and_codes_are_random_and_only_their_keyed_hashes_are_kept() {
    let a = fresh();
    let b = fresh();
    assert!(is_token(&a.token) && a.token != b.token);
    assert_eq!(a.code.len(), CODE_LEN);
    assert_ne!(a.link.key, b.link.key);
    assert_eq!(a.link.key, keys().token_key(&a.token));
    assert_ne!(a.link.key, LinkKeys::new([6; 32]).token_key(&a.token));
    let stored = serde_json::to_string(&a.link).unwrap();
    assert!(!stored.contains(&a.token) && !stored.contains(&a.code));
    assert!(!is_token("../../etc/passwd") && !is_token(""));
}

#[test]
fn the_asking_browser_or_the_code_spends_a_link_once() {
    let new = fresh();
    let k = keys();
    let same_browser = Proof {
        browser: Some(k.nonce_key("nonce-a")),
        code: None,
    };
    let Spend::Granted(spent) = spend(&new.link, holder(Some(10)), &same_browser, at(2_000)) else {
        panic!("the asking browser spends it");
    };
    assert!(spent.spent);
    assert_eq!(
        spend(&spent, holder(Some(10)), &same_browser, at(2_000)),
        Spend::Refused(Dead::Spent)
    );
    let other = Proof {
        browser: Some(k.nonce_key("nonce-b")),
        code: None,
    };
    assert_eq!(
        spend(&new.link, holder(Some(10)), &other, at(2_000)),
        Spend::NeedCode
    );
    let typed = Proof {
        browser: None,
        code: Some(k.code_key(&format!(" {} ", new.code.to_lowercase()))),
    };
    assert!(matches!(
        spend(&new.link, holder(Some(10)), &typed, at(2_000)),
        Spend::Granted(_)
    ));
}

#[test]
fn wrong_codes_are_counted_and_kill_the_link() {
    let mut link = fresh().link;
    let wrong = Proof {
        browser: None,
        code: Some(keys().code_key("WRONG1")),
    };
    for _ in 0..MAX_CODE_FAILURES {
        match spend(&link, holder(Some(10)), &wrong, at(2_000)) {
            Spend::WrongCode(next) => link = next,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        spend(&link, holder(Some(10)), &wrong, at(2_000)),
        Spend::Refused(Dead::TooManyCodes)
    );
}

#[test]
fn expiry_a_pin_change_and_a_disabled_user_revoke() {
    let link = fresh().link;
    assert_eq!(
        usable(&link, holder(Some(10)), at(1_000 + 1_799_999)),
        Ok(())
    );
    assert_eq!(
        usable(&link, holder(Some(10)), at(1_000 + 1_800_000)),
        Err(Dead::Expired)
    );
    assert_eq!(
        usable(&link, holder(Some(11)), at(2_000)),
        Err(Dead::Revoked)
    );
    assert_eq!(usable(&link, holder(None), at(2_000)), Err(Dead::Revoked));
    assert_eq!(usable(&link, None, at(2_000)), Err(Dead::Revoked));
    let disabled = Some(Holder {
        enabled: false,
        pin_set_at: Some(at(10)),
        pending_set_at: None,
    });
    assert_eq!(usable(&link, disabled, at(2_000)), Err(Dead::Revoked));
}

#[test]
fn sessions_idle_out_end_and_check_their_csrf_token() {
    let k = keys();
    let mut sessions = Sessions::default();
    let cookie = sessions.start(&k, "alice", at(0));
    let s = sessions.get(&k, &cookie, at(1_000)).unwrap();
    assert_eq!(s.user, "alice");
    assert!(csrf_ok(&s, Some(&s.csrf)));
    assert!(!csrf_ok(&s, None) && !csrf_ok(&s, Some("forged")));
    let idle = SESSION_IDLE.as_millis() as i64;
    assert!(sessions.get(&k, &cookie, at(1_000 + idle - 1)).is_some());
    assert!(sessions.get(&k, &cookie, at(1_000 + 2 * idle)).is_none());
    let again = sessions.start(&k, "alice", at(0));
    sessions.end_user("alice");
    assert!(sessions.get(&k, &again, at(1)).is_none());
}

#[test]
fn the_budget_locks_after_the_free_failures_and_drains() {
    let mut budget = Budget::default();
    for _ in 0..5 {
        assert!(!budget.locked("source:10.0.0.1", at(0)));
        budget.count("source:10.0.0.1", at(0));
    }
    assert!(!budget.locked("source:10.0.0.1", at(0)));
    budget.count("source:10.0.0.1", at(0));
    assert!(budget.locked("source:10.0.0.1", at(0)));
    assert!(!budget.locked("source:10.0.0.2", at(0)));
    assert!(!budget.locked("source:10.0.0.1", at(31_000)));
}

#[test]
fn a_reveal_link_opens_its_pin_only_with_its_token_and_code() {
    let k = keys();
    let pin = crate::domain::Pin::new("482913");
    let made = reveal_link(&k, "alice", at(10), &pin, at(1_000_000_000_000), at(1_000));
    assert_eq!(made.link.expires_at, at(1_000).plus(REVEAL_MAX), "capped");
    let stored = serde_json::to_string(&made.link).unwrap();
    assert!(!stored.contains("482913"), "{stored}");
    assert_eq!(
        open_pin(&k, &made.token, &made.link).unwrap().expose(),
        "482913"
    );
    assert!(open_pin(&k, &random_token(), &made.link).is_none());
    assert!(open_pin(&LinkKeys::new([9; 32]), &made.token, &made.link).is_none());
    let no_code = Proof {
        browser: None,
        code: None,
    };
    assert_eq!(
        spend(&made.link, holder(Some(10)), &no_code, at(2_000)),
        Spend::NeedCode
    );
    let typed = Proof {
        browser: None,
        code: Some(k.code_key(&made.code)),
    };
    assert!(matches!(
        spend(&made.link, holder(Some(10)), &typed, at(2_000)),
        Spend::Granted(_)
    ));
    // A pending (forgotten-PIN) PIN it carries keeps it alive; another PIN revokes it.
    let pending = Some(Holder {
        enabled: true,
        pin_set_at: Some(at(3)),
        pending_set_at: Some(at(10)),
    });
    assert_eq!(usable(&made.link, pending, at(2_000)), Ok(()));
    assert_eq!(
        usable(&made.link, holder(Some(11)), at(2_000)),
        Err(Dead::Revoked)
    );
}

#[test]
fn a_person_keeps_at_most_five_sessions_their_oldest_ending() {
    let keys = keys();
    let mut sessions = Sessions::default();
    let other = sessions.start(&keys, "bob", at(0));
    let cookies: Vec<String> = (0..6)
        .map(|i| sessions.start(&keys, "alice", at(1 + i)))
        .collect();
    assert!(
        sessions.get(&keys, &cookies[0], at(10)).is_none(),
        "the oldest ended"
    );
    for c in &cookies[1..] {
        assert!(sessions.get(&keys, c, at(10)).is_some());
    }
    assert!(
        sessions.get(&keys, &other, at(10)).is_some(),
        "others' untouched"
    );
}
