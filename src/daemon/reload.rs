//! SIGHUP: re-reads the config file and applies, without dropping a connection, what can
//! change under a running daemon: the PIN policy (and generated length), the lockout settings
//! (with the ceiling, each device's derived budget recounted before READY) and the mail
//! templates (with the site name, time zone and date format they render). An invalid file
//! is refused with a logged error and the running configuration kept. Every other change
//! is named in the log as waiting for a restart. systemd sees RELOADING=1 … READY=1.

use super::budget::Budget;
use crate::config::Config;
use crate::lifecycle::users::PinRules;
use crate::live::Live;
use crate::notify::Templates;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::signal::unix::Signal;
use tokio_util::sync::CancellationToken;

/// What a reload replaces, and the configuration the daemon started with (what the rest
/// of the daemon still runs on).
pub struct Reloader {
    pub started: Config,
    pub rules: Live<PinRules>,
    /// The core's lockout per device, derived from `[lockout]`, the ceiling and the
    /// population (the one copy: user views read lock ends from records).
    pub budget: Arc<Budget>,
    pub templates: Live<Templates>,
}

impl Reloader {
    /// Applies `new`'s reloadable parts; returns the sections that changed but wait for a
    /// restart. Err (nothing applied) when the new templates do not load.
    pub fn apply(&self, new: &Config) -> Result<Vec<String>, String> {
        let templates = Templates::load(&new.mail).map_err(|e| format!("mail templates: {e}"))?;
        self.templates.set(templates);
        self.rules.set(PinRules {
            policy: new.policy.pin_policy(),
            generated_length: new.policy.generated_length,
        });
        self.budget.reconfigure(new);
        Ok(needs_restart(&self.started, new))
    }
}

/// The top-level sections of `new` that differ from `old` once the reloadable settings are
/// taken as equal.
fn needs_restart(old: &Config, new: &Config) -> Vec<String> {
    let mut probe = new.clone();
    probe.lockout = old.lockout;
    probe.odds = old.odds;
    probe.policy.min_length = old.policy.min_length;
    probe.policy.max_length = old.policy.max_length;
    probe.policy.charset = old.policy.charset;
    probe.policy.blocklist = old.policy.blocklist.clone();
    probe.policy.generated_length = old.policy.generated_length;
    probe.mail.templates = old.mail.templates.clone();
    probe.mail.customer_name = old.mail.customer_name.clone();
    probe.mail.date_format = old.mail.date_format.clone();
    probe.mail.time_zone = old.mail.time_zone.clone();
    let (Ok(serde_json::Value::Object(old)), Ok(serde_json::Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(&probe))
    else {
        return vec!["(the configuration could not be compared)".into()];
    };
    new.iter()
        .filter(|(key, value)| old.get(*key) != Some(value))
        .map(|(key, _)| key.clone())
        .collect()
}

/// Reloads from `path` at every SIGHUP until `shutdown`.
pub async fn on_hangup(
    mut hangup: Signal,
    path: PathBuf,
    reloader: Reloader,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            got = hangup.recv() => if got.is_none() { return },
        }
        let mut reloading = vec![sd_notify::NotifyState::Reloading];
        reloading.extend(sd_notify::NotifyState::monotonic_usec_now().ok());
        let _ = sd_notify::notify(false, &reloading);
        tracing::info!(config = %path.display(), "SIGHUP: reloading the configuration");
        match Config::load(&path)
            .map_err(|e| e.to_string())
            .and_then(|new| Ok((reloader.apply(&new)?, new)))
        {
            Ok((waiting, new)) => {
                if let Err(e) = reloader.budget.recount_now().await {
                    tracing::error!("lockout budget not derived again: {e}");
                }
                tracing::info!(
                    "configuration reloaded: PIN policy, lockout settings and mail templates applied"
                );
                if new.http.as_ref().is_some_and(|h| !h.tokens.is_empty()) {
                    tracing::info!(
                        "admin API token files ([[http.token]]) are read only at start and were \
                         not re-read: a changed or revoked token applies after a restart \
                         (systemctl restart pinwarden)"
                    );
                }
                if !waiting.is_empty() {
                    tracing::warn!(
                        sections = %waiting.join(", "),
                        "changed settings that apply only after a restart (systemctl restart pinwarden)"
                    );
                }
            }
            Err(e) => tracing::error!("reload refused, the running configuration is kept: {e}"),
        }
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::parse(&format!("state_dir = \"/tmp/pw-reload\"\n{extra}")).unwrap()
    }

    #[test]
    fn only_other_sections_wait_for_a_restart() {
        let old = config("");
        let reloadable = config(
            "[policy]\nmin_length = 8\n[lockout]\nfree_failures = 3\nmax_daily_odds = 0.01\n",
        );
        assert_eq!(needs_restart(&old, &reloadable), Vec::<String>::new());
        let other = config("[store]\ncache_capacity_mib = 8\n");
        assert_eq!(needs_restart(&old, &other), vec!["store".to_string()]);
    }
}
