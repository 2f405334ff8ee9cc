//! The chunked path of a run: listings larger than one chunk, stops between chunks and the
//! guard decided before anything is staged.

use super::*;
use crate::crypto::{HashParams, Hasher, Pepper};
use crate::domain::Pin;
use crate::store::MemoryStore;
use crate::sync::csv::{CsvSettings, CsvSource};
use crate::sync::listing::{Chunks, Gone};
use crate::sync::source::{Batch, Deletions, FetchFuture, ListFuture, UpstreamUser};
use std::sync::atomic::{AtomicBool, Ordering};

fn hasher() -> Arc<Hasher> {
    Arc::new(Hasher::new(Pepper::from_bytes([3; 32]), [1; 16], HashParams::TEST).unwrap())
}

fn engine(source: Arc<dyn Source>, store: Arc<MemoryStore>, hasher: &Arc<Hasher>) -> Engine {
    let settings = EngineSettings {
        interval: Duration::from_secs(3600),
        max_delete_share: 0.5,
        max_staleness: Duration::from_secs(3600),
        backoff_initial: Duration::from_secs(1),
        backoff_max: Duration::from_secs(1),
    };
    Engine::new(
        "hr".into(),
        "csv",
        source,
        store,
        Arc::new(HashPool::new(Arc::clone(hasher), 2, 4)),
        settings,
        PinCheck::default(),
    )
    .with_chunk_size(3)
}

fn rows(users: impl Iterator<Item = (usize, String)>) -> String {
    let mut text = String::from("id,name,email,groups,pin,card\n");
    for (i, pin) in users {
        let card = if i == 1 || i == 8 { "77" } else { "" };
        text.push_str(&format!("u{i:02},User {i},,staff,{pin},{card}\n"));
    }
    text
}

fn pin(i: usize, generation: usize) -> String {
    format!("{}", 40_000_000 + generation * 1_000_003 + i * 7_919)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_of_several_chunks_applies_whole_and_rehashes_only_changed_pins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    let hasher = hasher();
    let store = Arc::new(MemoryStore::recording());
    let source = CsvSource::new(
        CsvSettings {
            path: path.clone(),
            delimiter: ',',
        },
        [5; 32],
    );
    let engine = engine(Arc::new(source), Arc::clone(&store), &hasher);
    let none = CancellationToken::new();
    let holder = |pin: &str| store.tag_owner(&hasher.tag(&Pin::new(pin))).unwrap();

    std::fs::write(&path, rows((0..10).map(|i| (i, pin(i, 0))))).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let s = engine
        .run(RunOptions::default(), Some(tx), false, &none)
        .await
        .unwrap();
    assert_eq!((s.added, s.rehashed, s.users), (10, 10, 10), "{s:?}");
    assert!(store.calls().iter().any(|c| c == "stage_sync"));
    for i in 0..10 {
        assert_eq!(holder(&pin(i, 0)), Some(format!("u{i:02}")));
    }
    // The card two users claim stays with the first; the second is told why.
    assert_eq!(store.card_owner("77").unwrap().as_deref(), Some("u01"));
    assert_eq!(s.skipped.len(), 1, "{:?}", s.skipped);
    assert!(s.skipped[0].contains("u08"), "{:?}", s.skipped);
    let mut last = (0, 0);
    while let Ok(p) = rx.try_recv() {
        assert!(p.0 >= last.0, "progress only grows");
        last = p;
    }
    assert_eq!(last, (10, 10));

    // u09 leaves, u00 and u05 get new PINs: only theirs are hashed again.
    let next = (0..9).map(|i| (i, pin(i, usize::from(i == 0 || i == 5))));
    std::fs::write(&path, rows(next)).unwrap();
    let s = engine
        .run(RunOptions::default(), None, false, &none)
        .await
        .unwrap();
    assert_eq!(
        (s.changed, s.removed, s.rehashed, s.users),
        (2, 1, 2, 9),
        "{s:?}"
    );
    assert_eq!(holder(&pin(0, 1)).as_deref(), Some("u00"));
    assert_eq!(holder(&pin(0, 0)), None);
    assert_eq!(holder(&pin(9, 0)), None);
    assert!(store.user("u09").unwrap().is_none());
}

/// A listing that stops the run when its second chunk is asked for, once armed.
struct Stopping {
    users: Vec<UpstreamUser>,
    stop: CancellationToken,
    armed: AtomicBool,
}

struct StoppingChunks {
    rest: std::vec::IntoIter<UpstreamUser>,
    calls: usize,
    stop: Option<CancellationToken>,
}

impl Chunks for StoppingChunks {
    fn next_chunk(&mut self, max: usize) -> Result<Vec<UpstreamUser>, SourceError> {
        self.calls += 1;
        if self.calls == 3 {
            if let Some(stop) = &self.stop {
                stop.cancel();
            }
        }
        Ok(self.rest.by_ref().take(max).collect())
    }
}

impl Source for Stopping {
    fn fetch<'a>(&'a self, _: Option<&'a [u8]>) -> FetchFuture<'a> {
        unreachable!("the engine lists")
    }

    fn list<'a>(&'a self, _: Option<&'a [u8]>) -> ListFuture<'a> {
        let users = self.users.clone();
        let armed = self.armed.load(Ordering::SeqCst);
        Box::pin(async move {
            Ok(Listing {
                keys: users.iter().map(|u| u.key.clone()).collect(),
                deletions: Gone::AllExcept {
                    present: Default::default(),
                },
                cursor: Some(b"c".to_vec()),
                skipped: Vec::new(),
                pins: users.len(),
                chunks: Box::new(StoppingChunks {
                    rest: users.into_iter(),
                    calls: 0,
                    stop: armed.then(|| self.stop.clone()),
                }),
            })
        })
    }
}

fn upstream(i: usize, name: &str) -> UpstreamUser {
    UpstreamUser {
        key: format!("k{i}"),
        id: format!("u{i:02}"),
        name: format!("{name} {i}"),
        email: None,
        groups: vec![],
        pin: Some(Pin::new(pin(i, name.len()))),
        cards: vec![],
        enabled: true,
        valid_from: None,
        valid_until: None,
        version: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_between_chunks_leaves_the_previous_state_and_nothing_staged() {
    let hasher = hasher();
    let store = Arc::new(MemoryStore::recording());
    let stop = CancellationToken::new();
    let source = Arc::new(Stopping {
        users: (0..10).map(|i| upstream(i, "old")).collect(),
        stop: stop.clone(),
        armed: AtomicBool::new(false),
    });
    let engine = engine(
        source.clone() as Arc<dyn Source>,
        Arc::clone(&store),
        &hasher,
    );
    engine
        .run(RunOptions::default(), None, false, &stop)
        .await
        .unwrap();
    // The next listing renames everyone and drops u09, but the run stops after two chunks
    // (one staged).
    let mut users: Vec<_> = (0..9).map(|i| upstream(i, "newer")).collect();
    users.reverse();
    let source = Arc::new(Stopping {
        users,
        stop: stop.clone(),
        armed: AtomicBool::new(true),
    });
    let engine = engine_with(source, &store, &hasher);
    let stopped = engine.run(RunOptions::default(), None, false, &stop).await;
    assert!(matches!(stopped, Err(SyncError::Cancelled)), "{stopped:?}");
    let calls = store.calls();
    let staged = calls.iter().rposition(|c| c == "stage_sync");
    let discarded = calls.iter().rposition(|c| c == "discard_sync");
    assert!(staged.is_some() && discarded > staged, "{calls:?}");
    for i in 0..10 {
        let user = store.user(&format!("u{i:02}")).unwrap().unwrap();
        assert_eq!(user.name, format!("old {i}"));
        let holder = store.tag_owner(&hasher.tag(&Pin::new(pin(i, 3)))).unwrap();
        assert_eq!(holder, Some(format!("u{i:02}")));
    }
    let state = store.sync_state("hr").unwrap().unwrap();
    assert_eq!(state.users, 10);
}

fn engine_with(source: Arc<Stopping>, store: &Arc<MemoryStore>, hasher: &Arc<Hasher>) -> Engine {
    engine(source as Arc<dyn Source>, Arc::clone(store), hasher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deletion_guard_refuses_a_chunked_listing_before_anything_is_hashed_or_staged() {
    let hasher = hasher();
    let store = Arc::new(MemoryStore::recording());
    let none = CancellationToken::new();
    let batch = |n: usize| Batch {
        changed: (0..n).map(|i| upstream(i, "old")).collect(),
        deletions: Deletions::AllExcept {
            present: Vec::new(),
        },
        cursor: None,
    };
    let whole = Arc::new(Whole(Mutex::new(batch(10))));
    let engine = engine(
        whole.clone() as Arc<dyn Source>,
        Arc::clone(&store),
        &hasher,
    );
    engine
        .run(RunOptions::default(), None, false, &none)
        .await
        .unwrap();
    *whole.0.lock().unwrap() = batch(4);
    let before = store.calls().len();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let refused = engine
        .run(RunOptions::default(), Some(tx), false, &none)
        .await;
    assert!(
        matches!(
            refused,
            Err(SyncError::Plan(PlanError::TooManyDeletions { .. }))
        ),
        "{refused:?}"
    );
    assert!(rx.try_recv().is_err(), "no PIN was hashed");
    let calls = &store.calls()[before..];
    let writes = ["stage_sync", "discard_sync", "apply_sync", "commit_sync"];
    assert!(
        !calls.iter().any(|c| writes.contains(&c.as_str())),
        "{calls:?}"
    );
    assert_eq!(store.upstream_keys("hr").unwrap().len(), 10);
}

/// A source that fetches whole (LDAP and SCIM do): fed to the same chunked path.
struct Whole(Mutex<Batch>);

impl Source for Whole {
    fn fetch<'a>(&'a self, _: Option<&'a [u8]>) -> FetchFuture<'a> {
        let batch = self.0.lock().unwrap().clone();
        Box::pin(async move { Ok(batch) })
    }
}
