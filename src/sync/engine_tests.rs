use super::*;
use crate::crypto::{HashParams, Hasher, Pepper};
use crate::domain::{AuditKind, Pin};
use crate::lifecycle::policy::PinPolicy;
use crate::store::MemoryStore;
use crate::sync::csv::{CsvSettings, CsvSource};

struct Fixture {
    engine: Engine,
    store: Arc<MemoryStore>,
    hasher: Arc<Hasher>,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn fixture(weak: WeakPins) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.csv");
    let hasher =
        Arc::new(Hasher::new(Pepper::from_bytes([3; 32]), [1; 16], HashParams::TEST).unwrap());
    let store = Arc::new(MemoryStore::new());
    let source = CsvSource::new(
        CsvSettings {
            path: path.clone(),
            delimiter: ',',
        },
        [5; 32],
    );
    let settings = EngineSettings {
        interval: Duration::from_secs(3600),
        max_delete_share: 0.5,
        max_staleness: Duration::from_secs(3600),
        backoff_initial: Duration::from_secs(1),
        backoff_max: Duration::from_secs(1),
    };
    let pins = PinCheck {
        policy: PinPolicy::default(),
        weak,
    };
    let engine = Engine::new(
        "hr".into(),
        "csv",
        Arc::new(source),
        store.clone(),
        Arc::new(HashPool::new(Arc::clone(&hasher), 2, 4)),
        settings,
        pins,
    );
    Fixture {
        engine,
        store,
        hasher,
        path,
        _dir: dir,
    }
}

impl Fixture {
    async fn sync(&self, rows: &str) -> Summary {
        std::fs::write(&self.path, format!("id,name,email,groups,pin\n{rows}")).unwrap();
        let none = CancellationToken::new();
        self.engine
            .run(RunOptions::default(), None, false, &none)
            .await
            .unwrap()
    }

    fn holder(&self, pin: &str) -> Option<String> {
        self.store
            .tag_owner(&self.hasher.tag(&Pin::new(pin)))
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuse_leaves_a_weak_pin_out_and_removes_the_one_it_replaced() {
    let f = fixture(WeakPins::Refuse);
    let s = f.sync("ann,Ann,,staff,482913\nbob,Bob,,staff,1234\n").await;
    assert_eq!(
        (s.weak_pins, s.weak_pin_users.clone()),
        (1, vec!["bob".into()])
    );
    assert_eq!(s.added, 2, "a user with a weak PIN is applied without it");
    assert_eq!(f.holder("482913").as_deref(), Some("ann"));
    assert_eq!(f.holder("1234"), None);
    assert!(f.store.user("bob").unwrap().unwrap().pin.is_none());

    let s = f.sync("ann,Ann,,staff,4321\nbob,Bob,,staff,1234\n").await;
    assert_eq!(
        s.weak_pin_users,
        vec!["ann".to_string()],
        "only re-hashed PINs are checked"
    );
    assert_eq!(
        f.holder("482913"),
        None,
        "the replaced PIN stops working too"
    );
    assert!(f.store.user("ann").unwrap().unwrap().pin.is_none());
    let status = f.engine.status(Timestamp::now());
    assert_eq!(status["weak_pin_policy"], "refuse");
    assert_eq!(status["weak_pin_users"], serde_json::json!(["ann", "bob"]));

    let audit = f.store.audit_tail(50).unwrap();
    let weak: Vec<_> = audit
        .iter()
        .filter_map(|e| match &e.kind {
            AuditKind::Pin { user, detail, .. } => Some((user.clone(), detail.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(weak.len(), 2, "{weak:?}");
    let text = serde_json::to_string(&audit).unwrap();
    assert!(
        text.contains("too short") && text.contains("left out"),
        "{text}"
    );
    assert!(
        !text.contains("4321") && !text.contains("1234"),
        "never the PIN"
    );
}

/// Waits (bounded) until the clock has passed `t`.
fn past(t: Timestamp) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Timestamp::now() <= t {
        assert!(Instant::now() < deadline, "the clock does not move");
        std::thread::yield_now();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_pin_forces_one_complete_run_then_no_more() {
    let f = fixture(WeakPins::Warn);
    f.sync("ann,Ann,,staff,482913\nbob,Bob,,staff,\n").await;
    let listed = f
        .store
        .sync_state("hr")
        .unwrap()
        .unwrap()
        .last_full
        .unwrap();
    // Set after the listing, and the next run happens later still (the clock has ms steps).
    let set_at = listed.plus(Duration::from_millis(1));
    past(set_at);
    for (id, pin) in [("ann", "615243"), ("bob", "905172")] {
        let mut user = f.store.user(id).unwrap().unwrap();
        let mut record = crate::domain::PinRecord {
            tag: f.hasher.tag(&Pin::new(pin)),
            set_at,
            expires_at: None,
            source: crate::domain::PinSource::Admin,
            temporary: true,
            uses_left: None,
            windows: Vec::new(),
        };
        std::mem::swap(user.pin.get_or_insert(record.clone()), &mut record);
        f.store.update_user(&user).unwrap();
    }
    let rows = "ann,Ann,,staff,482913\nbob,Bob,,staff,\n";
    let s = f.sync(rows).await;
    assert!(s.complete && s.rehashed == 1, "{s:?}");
    assert_eq!(f.holder("482913").as_deref(), Some("ann"));
    assert_eq!(f.holder("615243"), None);
    assert_eq!(
        f.holder("905172").as_deref(),
        Some("bob"),
        "no directory PIN: kept"
    );
    let s = f.sync(rows).await;
    assert_eq!(s.outcome, SyncOutcome::Unchanged, "{s:?}");
}
