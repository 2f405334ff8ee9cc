//! Who is acting on users: the control-socket caller (`uid:<n>`) for the request being
//! handled, or the daemon itself (`pinwarden`) for its own workers. Set by the daemon's
//! control handler around each request; read by the admin audit. Knows no sockets.

use std::future::Future;

/// Who a background worker acts as.
pub const DAEMON: &str = "pinwarden";

tokio::task_local! {
    static ACTOR: String;
}

/// Runs `work` with `by` as the acting party of every admin record it writes.
pub async fn acting<F: Future>(by: String, work: F) -> F::Output {
    ACTOR.scope(by, work).await
}

/// The acting party of the current task: the scope's, else the daemon.
pub fn current() -> String {
    ACTOR
        .try_with(Clone::clone)
        .unwrap_or_else(|_| DAEMON.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn scoped_caller_else_the_daemon() {
        assert_eq!(current(), "pinwarden");
        let inside = acting("uid:1000".into(), async {
            tokio::task::yield_now().await;
            current()
        })
        .await;
        assert_eq!(inside, "uid:1000");
        assert_eq!(current(), "pinwarden");
    }
}
