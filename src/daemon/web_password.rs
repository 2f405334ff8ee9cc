//! Signing in with the directory password on the page's side (a child of `daemon/web.rs`):
//! the failure budget, the person's own LDAP directory asked by `sync::ldap::bind`, a
//! session on success. The password is only handed to the bind.

use super::{lock, source_key, user_key, DaemonWeb};
use crate::domain::{PinAction, Timestamp};
use crate::frontend::http::web::service::Spent;
use std::net::IpAddr;

impl DaemonWeb {
    pub(super) async fn password(
        &self,
        id: &str,
        password: zeroize::Zeroizing<String>,
        source: IpAddr,
    ) -> Spent {
        {
            const WRONG: &str = "The user name or password is wrong.";
            let inner = &self.0;
            let now = Timestamp::now();
            {
                let budget = lock(&inner.budget);
                if budget.locked(&source_key(source), now) || budget.locked(&user_key(id), now) {
                    drop(budget);
                    inner.audit(
                        PinAction::WebRefused,
                        "",
                        Some(format!("password from {source}: budget")),
                    );
                    return Spent::Refused("Too many failed attempts; wait a few minutes.");
                }
            }
            let found = {
                let id = id.to_string();
                inner.blocking(move |i| i.store.user(&id)).await
            };
            let user = match found {
                Ok(Some(u)) if u.enabled => Some(u),
                Ok(_) => None,
                Err(_) => {
                    return Spent::Refused(
                        "The page cannot check that just now; try again in a minute.",
                    )
                }
            };
            let directory = user.as_ref().and_then(|u| {
                let source_name = &u.upstream.as_ref()?.source;
                inner.directories.iter().find(|(n, _)| n == source_name)
            });
            // An id nobody here signs in with (unknown, disabled, not from a directory) still
            // costs a search and a bind in a directory, its answer thrown away, and then
            // waits out the median of recent real checks: a quick refusal would tell which
            // ids exist. A directory that is down answers both alike.
            let started = tokio::time::Instant::now();
            let checked = match (user.as_ref(), directory) {
                (Some(u), Some((_, ldap))) => {
                    let checked =
                        crate::sync::ldap::bind::check_password(ldap, &u.id, &password).await;
                    if checked.is_ok() {
                        inner.bind_times.record(started.elapsed());
                    }
                    checked
                }
                _ => {
                    let checked = match inner.directories.first() {
                        Some((_, ldap)) => {
                            crate::sync::ldap::bind::check_password(ldap, id, &password)
                                .await
                                .map(|_| false)
                        }
                        None => Ok(false),
                    };
                    if let (Ok(_), Some(median)) = (&checked, inner.bind_times.median()) {
                        tokio::time::sleep_until(started + median).await;
                    }
                    checked
                }
            };
            match checked {
                Ok(true) => {
                    let user = user.map(|u| u.id).unwrap_or_default();
                    inner.audit(
                        PinAction::WebSignIn,
                        &user,
                        Some("directory password".into()),
                    );
                    Spent::SignedIn(lock(&inner.sessions).start(&inner.keys, &user, now))
                }
                Ok(false) => {
                    let mut budget = lock(&inner.budget);
                    budget.count(&source_key(source), now);
                    budget.count(&user_key(id), now);
                    drop(budget);
                    let who = user.map(|u| u.id).unwrap_or_default();
                    inner.audit(
                        PinAction::WebRefused,
                        &who,
                        Some(format!("directory password from {source}")),
                    );
                    Spent::Refused(WRONG)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a directory password could not be checked");
                    Spent::Refused("The directory cannot be reached just now; try again later.")
                }
            }
        }
    }
}
