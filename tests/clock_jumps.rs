//! Lockouts under wall-clock jumps (issue 15 §4), the real binary under libfaketime (Debian
//! `faketime`) with monotonic time left alone, as after a real clock change: a jump forward
//! does not lift a lock early, a jump back — while running or while stopped — does not
//! stretch it past its back-off.

mod common;

use common::Daemon;
use std::time::Duration;

/// A lock of 20 s after two failures (at most a minute): long enough to see it hold across a
/// jump on a loaded machine, short enough to see it lift.
const LOCKOUT: &str = "[lockout]\nfree_failures = 2\nsource_failures = 2\n\
    initial_backoff = \"20s\"\nmax_backoff = \"1m\"\nforgive_every = \"1m\"\n";

fn locked_out(d: &Daemon) -> u64 {
    d.status()["decisions"]["locked_out"].as_u64().unwrap()
}

#[test]
fn a_clock_jump_neither_lifts_a_lock_early_nor_stretches_it() {
    let mut d = Daemon::start_prepared(true, |_| (LOCKOUT.into(), common::DEFAULT_TCP.into()));
    d.add_user("alice", "staff", "482913");
    let mut t = d.terminal();
    for wrong in ["111293", "220394", "330495"] {
        assert_eq!(t.ask(&format!("PIN {wrong}")), "DENY");
    }
    d.wait_status("the device is locked", |s| {
        s["locked"].as_array().is_some_and(|l| !l.is_empty())
    });

    // Two hours ahead: on the wall clock the lock is long over, on ours it is not.
    d.set_clock("+2h");
    let before = locked_out(&d);
    assert_eq!(
        t.ask("PIN 482913"),
        "DENY",
        "a jump forward lifted the lock"
    );
    assert_eq!(
        locked_out(&d),
        before + 1,
        "refused by the lock, not evaluated"
    );

    // A day back while running, then a restart with the clock still a day back: the lock
    // still ends after its back-off (20 s, at most max_backoff), not a day later.
    d.set_clock("-1d");
    assert_eq!(t.ask("PIN 482913"), "DENY");
    drop(t);
    d.restart();
    let mut t = d.terminal();
    d.wait_for(Duration::from_secs(90), || {
        match t.ask("PIN 482913").as_str() {
            "OK alice 0" => Ok(()),
            other => Err(format!(
                "the lock should end within its back-off; got {other}"
            )),
        }
    });
}
