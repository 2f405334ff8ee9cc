use super::super::SledStore;
use super::{apply_chunk, encode, key, prefix, Head, CHUNK, HEAD, UPSERTS};
use crate::domain::{PinRecord, PinSource, Tag, Timestamp, UpstreamRef, User, UserOrigin};
use crate::store::{OpenParams, Store, StoreError, SyncState, SyncWrite};
use std::collections::HashSet;

fn open(dir: &std::path::Path) -> SledStore {
    let params = OpenParams {
        pepper_fingerprint: "fp",
        hash_params: "m=64,t=1,p=1",
        cache_capacity_mib: 8,
    };
    SledStore::open(dir, params).unwrap().store
}

fn tag(n: u32) -> Tag {
    let mut t = [0u8; 32];
    t[..4].copy_from_slice(&n.to_be_bytes());
    t[4] = 1;
    Tag(t)
}

fn user(i: u32, generation: &str, pin: u32) -> User {
    let mut u = User::new_local(format!("u{i:05}"));
    u.name = format!("{generation} {i}");
    u.origin = UserOrigin::Upstream;
    u.upstream = Some(UpstreamRef {
        source: "hr".into(),
        key: format!("k{i}"),
        version: None,
    });
    u.cards = vec![format!("{}", 100_000 + i)];
    u.pin = Some(PinRecord {
        tag: tag(pin),
        set_at: Timestamp::from_millis(0),
        expires_at: None,
        source: PinSource::Upstream,
        temporary: false,
    });
    u
}

/// `n` users spanning several chunks.
fn generation(n: u32, name: &str, pin_base: u32) -> Vec<User> {
    (0..n).map(|i| user(i, name, pin_base + i)).collect()
}

fn state(cursor: &str) -> SyncState {
    SyncState {
        cursor: Some(cursor.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn apply(
    store: &SledStore,
    upserts: &[User],
    removals: &[String],
    cursor: &str,
) -> crate::store::Result<crate::store::SyncApplied> {
    store.apply_sync(&SyncWrite {
        source: "hr",
        upserts,
        removals,
        state: &state(cursor),
    })
}

/// The store holds `total` users of which each of `users` is stored as given and reachable
/// through each index, and the journal is empty.
fn assert_holds(store: &SledStore, users: &[User], total: usize) {
    assert_eq!(store.user_count().unwrap(), total as u64);
    assert_eq!(store.upstream_keys("hr").unwrap().len(), total);
    for u in users {
        assert_eq!(store.user(&u.id).unwrap().as_ref(), Some(u), "{}", u.id);
        let pin = u.pin.as_ref().unwrap();
        assert_eq!(store.tag_owner(&pin.tag).unwrap().as_deref(), Some(&*u.id));
        for card in &u.cards {
            assert_eq!(store.card_owner(card).unwrap().as_deref(), Some(&*u.id));
        }
    }
    assert_eq!(store.journal.len(), 0, "the journal is empty");
}

const N: u32 = (CHUNK as u32) * 2 + 500;

#[test]
fn a_large_batch_applies_in_chunks_with_the_same_result_as_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let first = generation(N, "old", 0);
    let applied = apply(&store, &first, &[], "c1").unwrap();
    assert_eq!((applied.added, applied.changed), (N as usize, 0));
    assert!(applied.collisions.is_empty());
    assert_holds(&store, &first, N as usize);

    // Every PIN and card moves to the user one chunk away; 100 users leave; one new PIN
    // is held by users in different chunks (a collision).
    let mut second = generation(N - 100, "new", 0);
    for (i, u) in second.iter_mut().enumerate() {
        let from = ((i + CHUNK) % (N as usize - 100)) as u32;
        u.pin.as_mut().unwrap().tag = tag(from);
        u.cards = vec![format!("{}", 100_000 + from)];
    }
    second[5].pin.as_mut().unwrap().tag = tag(N + 7);
    second[CHUNK + 5].pin.as_mut().unwrap().tag = tag(N + 7);
    let leaving: Vec<String> = (N - 100..N).map(|i| format!("u{i:05}")).collect();
    let applied = apply(&store, &second, &leaving, "c2").unwrap();
    assert_eq!(
        (applied.added, applied.changed, applied.removed),
        (0, (N - 100) as usize, 100)
    );
    assert_eq!(
        applied.collisions,
        vec!["u00005", &format!("u{:05}", CHUNK + 5)]
    );
    let clean: Vec<User> = second
        .iter()
        .filter(|u| !applied.collisions.contains(&u.id))
        .cloned()
        .collect();
    assert_holds(&store, &clean, (N - 100) as usize);
    for id in &leaving {
        assert!(store.user(id).unwrap().is_none());
    }
    assert_eq!(
        store.tag_owner(&tag(N + 7)).unwrap(),
        None,
        "shared: PIN-only off"
    );
    assert_eq!(
        store.sync_state("hr").unwrap().unwrap().cursor,
        state("c2").cursor
    );
}

/// Writes `upserts` to the journal as `apply` does; with `commit` also the head.
fn stage(store: &SledStore, upserts: &[User], cursor: &str, commit: bool) {
    for (seq, chunk) in (0..).zip(upserts.chunks(CHUNK)) {
        store
            .journal
            .insert(key("hr", UPSERTS, seq), encode(&chunk))
            .unwrap();
    }
    if commit {
        let head = Head {
            state: state(cursor),
            touched: upserts.iter().map(|u| u.id.clone()).collect(),
        };
        store
            .journal
            .insert(key("hr", HEAD, 0), encode(&head))
            .unwrap();
    }
    store.db.flush().unwrap();
}

#[test]
fn a_stop_midway_through_a_committed_batch_is_completed_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let old = generation(N, "old", 0);
    let new = generation(N, "new", N);
    {
        let store = open(dir.path());
        apply(&store, &old, &[], "c1").unwrap();
        stage(&store, &new, "c2", true);
        // The first chunk is applied, then the process dies.
        let first = store
            .journal
            .scan_prefix(prefix("hr", UPSERTS))
            .keys()
            .next()
            .unwrap()
            .unwrap();
        let touched: HashSet<String> = new.iter().map(|u| u.id.clone()).collect();
        apply_chunk(&store, "hr", &first, &[], &new[..CHUNK], &touched).unwrap();
        store.db.flush().unwrap();
        assert_eq!(store.user("u00000").unwrap().unwrap().name, "new 0");
        assert_eq!(
            store.user(&format!("u{:05}", N - 1)).unwrap().unwrap().name,
            format!("old {}", N - 1)
        );
    }
    let store = open(dir.path());
    assert_holds(&store, &new, N as usize);
    assert_eq!(
        store.sync_state("hr").unwrap().unwrap().cursor,
        state("c2").cursor
    );
}

#[test]
fn a_batch_stopped_before_its_head_was_written_leaves_the_previous_state() {
    let dir = tempfile::tempdir().unwrap();
    let old = generation(N, "old", 0);
    {
        let store = open(dir.path());
        apply(&store, &old, &[], "c1").unwrap();
        stage(&store, &generation(N, "new", N), "c2", false);
    }
    let store = open(dir.path());
    assert_holds(&store, &old, N as usize);
    assert_eq!(
        store.sync_state("hr").unwrap().unwrap().cursor,
        state("c1").cursor
    );
}

#[test]
fn a_large_batch_is_refused_whole_like_one_transaction_would_be() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut lou = User::new_local("lou");
    lou.cards = vec!["424242".into()];
    store.insert_user(&lou).unwrap();
    let mut users = generation(N, "new", 0);
    users[N as usize - 1].cards = vec!["424242".into()];
    let e = apply(&store, &users, &[], "c1").unwrap_err();
    assert!(
        matches!(e, StoreError::CardTaken(ref c) if c == "424242"),
        "{e}"
    );
    let e = apply(&store, &generation(N, "new", 0), &["lou".into()], "c1").unwrap_err();
    assert!(
        matches!(e, StoreError::NotOwned(ref id) if id == "lou"),
        "{e}"
    );
    assert_eq!(store.user_count().unwrap(), 1, "nothing applied");
    assert!(store.sync_state("hr").unwrap().is_none(), "nor the cursor");
    assert_eq!(store.journal.len(), 0);
}
