//! `pinwarden check-config`: the effective configuration (secrets redacted), the templates
//! checked, misconfiguration warnings (`--strict`: errors), the warnings of a daemon that
//! answers on the control socket, and with `--smtp` the relay dialogue up to RCPT TO.

use crate::config::Config;
use crate::frontend::control::{client, proto::Request};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

pub async fn run(
    config: &Config,
    path: &Path,
    smtp: bool,
    strict: bool,
) -> anyhow::Result<ExitCode> {
    print!("{}", config.render());
    if let Some(http) = &config.http {
        // The admin API's token files, read and checked as `run` will (then dropped).
        crate::frontend::http::api::Tokens::load(&http.tokens).map_err(anyhow::Error::msg)?;
    }
    if !print_odds(config, path) {
        return Ok(ExitCode::FAILURE);
    }
    if let Some(smtp) = &config.smtp {
        crate::notify::transport::check_secrets(smtp).map_err(anyhow::Error::msg)?;
    }
    if config.smtp.is_some() || config.mail_declared {
        crate::notify::Templates::load(&config.mail)
            .map_err(|e| anyhow::anyhow!("mail templates: {e}"))?;
    }
    let mut warnings = crate::config::warnings(config);
    warnings.extend(daemon_warnings(config).await);
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if strict && !warnings.is_empty() {
        eprintln!(
            "{}: {} warning(s), refused under --strict",
            path.display(),
            warnings.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    eprintln!("{}: configuration is valid", path.display());
    if smtp {
        check_smtp(config).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints each device's attack odds (with `assumed_users`) as comments; false, after
/// printing why and how to fix it, when a device is above `max_daily_odds`.
fn print_odds(config: &Config, path: &Path) -> bool {
    use crate::config::odds;
    let assumed = config.odds.assumed_users;
    let devices = odds::assess(config, &|_| assumed);
    println!(
        "\n# attack odds per day and device (lockout.assumed_users = {assumed}, ceiling \
         lockout.max_daily_odds = {}):",
        crate::core::odds::percent(config.odds.max_daily_odds)
    );
    for d in &devices {
        println!("#   {}", odds::summary(d));
    }
    let problems = odds::problems(config, &devices);
    for p in &problems {
        eprintln!("error: {p}");
    }
    if !problems.is_empty() {
        eprintln!(
            "{}: {} device mode(s) above lockout.max_daily_odds",
            path.display(),
            problems.len()
        );
    }
    problems.is_empty()
}

/// What a running daemon reports in `status` (`warnings`), if one answers within a second.
async fn daemon_warnings(config: &Config) -> Vec<String> {
    if !config.control_socket.exists() {
        return Vec::new();
    }
    let call = client::call(&config.control_socket, &Request::Status, |_, _| {});
    let Ok(Ok(response)) = tokio::time::timeout(Duration::from_secs(1), call).await else {
        return Vec::new();
    };
    let data = response.data.unwrap_or_default();
    data["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str())
        .map(|w| format!("daemon: {w}"))
        .collect()
}

/// `check-config --smtp`: the SMTP dialogue up to RCPT TO, then RSET.
async fn check_smtp(config: &Config) -> anyhow::Result<()> {
    let Some(smtp) = &config.smtp else {
        anyhow::bail!("--smtp: the configuration has no [smtp] block");
    };
    let mailer = crate::notify::Mailer::new(smtp).map_err(anyhow::Error::msg)?;
    mailer
        .probe()
        .await
        .map_err(|e| anyhow::anyhow!("smtp {}:{}: {e}", smtp.host, smtp.port))?;
    eprintln!(
        "smtp {}:{}: reached RCPT TO for {} (nothing sent)",
        smtp.host, smtp.port, smtp.from
    );
    Ok(())
}
