use super::super::SledStore;
use crate::domain::{PinRecord, PinSource, Tag, Timestamp, UpstreamRef, User, UserOrigin};
use crate::store::{Store, StoreError, SyncState, SyncWrite};

/// Opens, or reopens once the dropped handle's flusher thread has released the file.
fn open(dir: &std::path::Path) -> SledStore {
    super::super::tests::reopen(dir, "fp", "m=64,t=1,p=1")
        .unwrap()
        .store
}

fn upstream(source: &str, id: &str, tag: Option<u8>) -> User {
    let mut u = User::new_local(id);
    u.origin = UserOrigin::Upstream;
    u.upstream = Some(UpstreamRef {
        source: source.into(),
        key: format!("k-{id}"),
        version: None,
    });
    u.pin = tag.map(|t| PinRecord {
        tag: Tag([t; 32]),
        set_at: Timestamp::from_millis(0),
        expires_at: None,
        source: PinSource::Upstream,
        temporary: false,
    });
    u
}

fn apply(
    store: &SledStore,
    source: &str,
    upserts: &[User],
    removals: &[&str],
) -> super::Result<super::SyncApplied> {
    let removals: Vec<String> = removals.iter().map(|s| s.to_string()).collect();
    let state = SyncState {
        cursor: Some(b"c1".to_vec()),
        users: 0,
        ..Default::default()
    };
    store.apply_sync(&SyncWrite {
        source,
        upserts,
        removals: &removals,
        state: &state,
    })
}

fn owner(store: &SledStore, t: u8) -> Option<String> {
    store.tag_owner(&Tag([t; 32])).unwrap()
}

#[test]
fn a_shared_pin_leaves_the_pin_only_index_until_the_collision_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut local = User::new_local("lou");
    local.pin = upstream("x", "lou", Some(7)).pin;
    store.insert_user(&local).unwrap();
    let a = upstream("hr", "ann", Some(1));
    let b = upstream("hr", "bob", Some(1));
    let c = upstream("hr", "cat", Some(7));
    let applied = apply(&store, "hr", &[a.clone(), b.clone(), c.clone()], &[]).unwrap();
    assert_eq!(applied.added, 3);
    assert_eq!(applied.collisions, vec!["ann", "bob", "cat"]);
    assert_eq!(
        owner(&store, 1),
        None,
        "nobody logs in PIN-only with a shared PIN"
    );
    assert_eq!(
        owner(&store, 7),
        None,
        "the local holder loses PIN-only login too"
    );
    assert_eq!(store.pin_collisions().unwrap().len(), 2);
    assert_eq!(
        store.user("ann").unwrap().unwrap().pin,
        a.pin,
        "the PIN stays for ID+PIN"
    );
    let admin_takes = store.update_user(&User {
        pin: a.pin.clone(),
        ..local.clone()
    });
    assert!(
        matches!(admin_takes, Err(StoreError::TagTaken)),
        "{admin_takes:?}"
    );

    let b2 = upstream("hr", "bob", Some(2));
    let applied = apply(&store, "hr", &[b2], &["cat"]).unwrap();
    assert_eq!((applied.changed, applied.removed), (1, 1));
    assert!(applied.collisions.is_empty());
    assert_eq!(
        owner(&store, 1).as_deref(),
        Some("ann"),
        "ann is alone again"
    );
    assert_eq!(owner(&store, 2).as_deref(), Some("bob"));
    assert_eq!(owner(&store, 7).as_deref(), Some("lou"));
    assert!(store.pin_collisions().unwrap().is_empty());
    assert_eq!(store.user_count().unwrap(), 3);
    let keys = store.upstream_keys("hr").unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(
        store.sync_state("hr").unwrap().unwrap().cursor.as_deref(),
        Some(&b"c1"[..])
    );
}

#[test]
fn pins_and_cards_may_swap_within_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut a = upstream("hr", "ann", Some(1));
    let mut b = upstream("hr", "bob", Some(2));
    a.cards = vec!["11".into()];
    b.cards = vec!["22".into()];
    apply(&store, "hr", &[a.clone(), b.clone()], &[]).unwrap();
    std::mem::swap(&mut a.pin, &mut b.pin);
    std::mem::swap(&mut a.cards, &mut b.cards);
    let applied = apply(&store, "hr", &[a, b], &[]).unwrap();
    assert!(applied.collisions.is_empty());
    assert_eq!(owner(&store, 1).as_deref(), Some("bob"));
    assert_eq!(owner(&store, 2).as_deref(), Some("ann"));
    assert_eq!(store.card_owner("11").unwrap().as_deref(), Some("bob"));
}

#[test]
fn a_batch_touching_a_user_it_does_not_own_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.insert_user(&User::new_local("lou")).unwrap();
    apply(&store, "other", &[upstream("other", "oz", Some(9))], &[]).unwrap();
    let new = upstream("hr", "ann", Some(1));
    for removals in [&["lou"][..], &["oz"][..]] {
        let e = apply(&store, "hr", std::slice::from_ref(&new), removals).unwrap_err();
        assert!(matches!(e, StoreError::NotOwned(_)), "{e}");
    }
    let e = apply(
        &store,
        "hr",
        &[new.clone(), upstream("hr", "lou", None)],
        &[],
    )
    .unwrap_err();
    assert!(matches!(e, StoreError::NotOwned(_)), "{e}");
    assert!(
        store.user("ann").unwrap().is_none(),
        "nothing of the batch applied"
    );
    assert_eq!(owner(&store, 1), None);
    assert!(store.sync_state("hr").unwrap().is_none(), "nor its cursor");
    assert_eq!(store.user_count().unwrap(), 2);
}

#[test]
fn removing_a_user_by_hand_drops_its_source_key_and_shared_pin() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = upstream("hr", "ann", Some(1));
    let b = upstream("hr", "bob", Some(1));
    apply(&store, "hr", &[a, b], &[]).unwrap();
    store.remove_user("bob").unwrap();
    assert_eq!(owner(&store, 1).as_deref(), Some("ann"));
    assert_eq!(store.upstream_keys("hr").unwrap().len(), 1);
}
