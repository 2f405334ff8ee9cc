//! Batches staged a part at a time (`stage_sync`, `commit_sync`, `discard_sync`), as the
//! sync engine writes them.

use super::*;

/// `upserts` staged in uneven parts through `stage_sync`, as the sync engine does.
fn stage_parts(store: &SledStore, upserts: &[User]) {
    store.discard_sync("hr").unwrap();
    for part in upserts.chunks(CHUNK / 3 + 1) {
        store.stage_sync("hr", part).unwrap();
    }
}

#[test]
fn a_batch_staged_in_parts_commits_whole_and_nothing_shows_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let old = generation(N, "old", 0);
    apply(&store, &old, &[], "c1").unwrap();
    lock_leavers(&store);
    let (new, leaving) = moved();
    let (staged, last) = new.split_at(new.len() - 10);
    stage_parts(&store, staged);
    assert_holds_ignoring_journal(&store, &old);
    let applied = store
        .commit_sync(&SyncWrite {
            source: "hr",
            upserts: last,
            removals: &leaving,
            state: &state("c2"),
        })
        .unwrap();
    assert_eq!((applied.changed, applied.removed), (new.len(), 100));
    assert_moved(&store);
    assert_eq!(
        store.sync_state("hr").unwrap().unwrap().cursor,
        state("c2").cursor
    );
}

/// The old users are all there as they were (staged users may sit in the journal).
fn assert_holds_ignoring_journal(store: &SledStore, old: &[User]) {
    assert_eq!(store.user_count().unwrap(), old.len() as u64);
    for u in old.iter().step_by(97) {
        assert_eq!(store.user(&u.id).unwrap().as_ref(), Some(u), "{}", u.id);
    }
}

#[test]
fn staged_parts_vanish_on_discard_on_a_crash_and_on_a_refused_commit() {
    let dir = tempfile::tempdir().unwrap();
    let old = generation(N, "old", 0);
    {
        let store = open(dir.path());
        apply(&store, &old, &[], "c1").unwrap();
        stage_parts(&store, &generation(N, "new", N));
        store.discard_sync("hr").unwrap();
        assert_holds_ignoring_journal(&store, &old);
        assert_eq!(store.journal.len(), 1, "only the mark of a new staging");
        // Staged, never committed: the process dies here.
        stage_parts(&store, &generation(N, "new", N));
        store.db.flush().unwrap();
    }
    let store = open(dir.path());
    assert_holds(&store, &old, N as usize);
    assert_eq!(
        store.sync_state("hr").unwrap().unwrap().cursor,
        state("c1").cursor
    );
    // A card of someone outside the batch: the whole staged batch is refused and dropped.
    let mut lou = User::new_local("lou");
    lou.cards = vec!["424242".into()];
    store.insert_user(&lou).unwrap();
    let mut new = generation(N, "new", N);
    new[N as usize - 1].cards = vec!["424242".into()];
    stage_parts(&store, &new);
    let refused = store.commit_sync(&SyncWrite {
        source: "hr",
        upserts: &[],
        removals: &[],
        state: &state("c2"),
    });
    assert!(
        matches!(refused, Err(StoreError::CardTaken(_))),
        "{refused:?}"
    );
    assert_eq!(store.journal.len(), 0, "the refused batch is dropped");
    assert_eq!(store.upstream_keys("hr").unwrap().len(), N as usize);
    for u in old.iter().step_by(97) {
        assert_eq!(store.user(&u.id).unwrap().as_ref(), Some(u), "{}", u.id);
    }
}

#[test]
fn a_reopen_while_staging_refuses_the_commit_instead_of_applying_part_of_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let old = generation(N, "old", 0);
    let new = generation(N, "new", N);
    let (first, rest) = new.split_at(CHUNK + 7);
    {
        let store = open(dir.path());
        apply(&store, &old, &[], "c1").unwrap();
        stage_parts(&store, first);
        store.db.flush().unwrap();
    }
    // The daemon's store was closed and opened again (a memory release, a recovery):
    // the first part is gone, and the run must not commit the rest alone.
    let store = open(dir.path());
    store.stage_sync("hr", rest).unwrap();
    let refused = store.commit_sync(&SyncWrite {
        source: "hr",
        upserts: &[],
        removals: &[],
        state: &state("c2"),
    });
    assert!(matches!(refused, Err(StoreError::Again(_))), "{refused:?}");
    assert_holds(&store, &old, N as usize);
    assert_eq!(
        store.sync_state("hr").unwrap().unwrap().cursor,
        state("c1").cursor
    );
}
