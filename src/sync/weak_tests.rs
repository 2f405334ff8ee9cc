use super::*;
use crate::domain::{Pin, PinRecord, PinSource, Tag, Timestamp, User};

fn plan_of(rows: &[(&str, &str)]) -> Plan {
    let mut plan = Plan::default();
    for (i, (id, pin)) in rows.iter().enumerate() {
        let mut user = User::new_local((*id).to_string());
        user.pin = Some(PinRecord {
            tag: Tag([7; 32]),
            set_at: Timestamp::from_millis(1),
            expires_at: None,
            source: PinSource::Upstream,
            temporary: false,
            uses_left: None,
            windows: Vec::new(),
        });
        plan.users.push(user);
        plan.pins.push((i, Pin::new(*pin)));
    }
    plan
}

fn check(weak: WeakPins) -> PinCheck {
    PinCheck {
        policy: PinPolicy::default(),
        weak,
    }
}

#[test]
fn warn_keeps_a_weak_pin_and_names_the_rule_not_the_pin() {
    let mut plan = plan_of(&[("ann", "1234"), ("bob", "48291373")]);
    let (weak, checked) = screen(&mut plan, &check(WeakPins::Warn));
    assert_eq!(
        weak,
        vec![Weak {
            user: "ann".into(),
            rule: "too short"
        }]
    );
    assert_eq!(checked, vec!["ann".to_string(), "bob".to_string()]);
    assert_eq!(plan.pins.len(), 2, "both PINs are still hashed");
    assert!(plan.users[0].pin.is_some());
}

#[test]
fn refuse_leaves_the_pin_out_and_removes_the_one_on_record() {
    let mut plan = plan_of(&[("ann", "482913"), ("bob", "111111"), ("cat", "905172")]);
    let (weak, _) = screen(&mut plan, &check(WeakPins::Refuse));
    assert_eq!(weak.len(), 1);
    assert_eq!(
        (weak[0].user.as_str(), weak[0].rule),
        ("bob", "repeated characters")
    );
    let hashed: Vec<usize> = plan.pins.iter().map(|(i, _)| *i).collect();
    assert_eq!(hashed, vec![0, 2], "the weak PIN is not hashed");
    assert!(plan.users[1].pin.is_none(), "no older PIN keeps working");
    assert!(plan.users[0].pin.is_some() && plan.users[2].pin.is_some());
}

#[test]
fn a_pin_made_of_the_users_own_id_is_weak() {
    let mut plan = plan_of(&[("u482913", "482913")]);
    let (weak, _) = screen(&mut plan, &check(WeakPins::Warn));
    assert_eq!(weak[0].rule, "contains the user id or a card number");
}

#[test]
fn the_list_follows_rechecked_and_removed_users_and_is_capped() {
    let mut list = WeakList::default();
    let many: Vec<Weak> = (0..60)
        .map(|i| Weak {
            user: format!("u{i:02}"),
            rule: "too short",
        })
        .collect();
    list.update(&[], &many, &[]);
    assert_eq!(list.len(), 60);
    assert_eq!(list.ids().len(), LIST_CAP);
    assert_eq!(capped_ids(&many).len(), LIST_CAP);
    list.update(&["u00".into()], &[], &["u01".into()]);
    assert_eq!(
        list.len(),
        58,
        "a fixed PIN and a removed user leave the list"
    );
    assert_eq!(list.ids()[0], "u02");
    assert!(!list.is_empty());
}
