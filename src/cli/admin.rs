//! Admin subcommands: dispatch, the control-socket call shared by every command, and
//! `status`, `sync` and `audit` (user commands in `user.rs`, import in `import.rs`): build a
//! control request, send it, print the answer for a person (or as JSON), and exit non-zero
//! with one clear line on error.

use super::Command;
use crate::config::Config;
use crate::domain::{AuditEvent, AuditKind, Timestamp};
use crate::frontend::control::client;
use crate::frontend::control::proto::{Request, Response};
use anyhow::bail;
use std::io::IsTerminal;
use std::process::ExitCode;

pub async fn run(config: &Config, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Status { json } => {
            let data = call(config, &Request::Status).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&data)?);
            } else {
                print_status(&data);
            }
        }
        Command::User(cmd) => super::user::run(config, cmd).await?,
        Command::Guest(cmd) => super::guest::run(config, cmd).await?,
        Command::Import {
            file,
            dry_run,
            check_unique,
            json,
        } => super::import::run(config, &file, dry_run, check_unique, json).await?,
        Command::Mail(cmd) => super::mail::run(config, cmd).await?,
        Command::Lockout(cmd) => super::lockout::run(config, cmd).await?,
        Command::Audit {
            last,
            user,
            device,
            kind,
            since,
            until,
            json,
        } => {
            let when = |flag: &str, text: Option<String>| {
                text.map(|t| {
                    Timestamp::parse(&t).ok_or_else(|| {
                        anyhow::anyhow!("--{flag} `{t}`: use 2026-12-31 or 2026-12-31T08:00:00Z")
                    })
                })
                .transpose()
            };
            let query = crate::domain::AuditQuery {
                since: when("since", since)?,
                until: when("until", until)?,
                user,
                device,
                kind,
                limit: last,
            };
            let request = if query
                == (crate::domain::AuditQuery {
                    limit: last,
                    ..Default::default()
                }) {
                Request::Audit { last }
            } else {
                Request::AuditQuery { query }
            };
            let data = call(config, &request).await?;
            let events: Vec<AuditEvent> = serde_json::from_value(data)?;
            for event in events {
                if json {
                    println!("{}", serde_json::to_string(&event)?);
                } else {
                    println!("{}", audit_line(&event));
                }
            }
        }
        Command::Sync {
            source,
            full,
            force,
            json,
        } => return sync(config, source, full, force, json).await,
        Command::Run | Command::CheckConfig { .. } | Command::Store(_) => {
            unreachable!("handled by cli::run")
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn sync(
    config: &Config,
    source: Option<String>,
    full: bool,
    force: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let request = Request::Sync {
        source,
        full,
        force,
    };
    let data = into_data(call_hashing(config, &request).await?)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&data)?);
    }
    let mut failed = false;
    for result in data.as_array().into_iter().flatten() {
        let name = result["source"].as_str().unwrap_or("?");
        if result["ok"].as_bool() != Some(true) {
            failed = true;
            eprintln!("{name}: {}", result["error"].as_str().unwrap_or("failed"));
            continue;
        }
        let s = &result["summary"];
        if !json {
            println!(
                "{name}: {} added, {} changed, {} removed, {} re-hashed, {} collision(s), {} skipped, {} users, {:.1}s",
                s["added"], s["changed"], s["removed"], s["rehashed"],
                s["collisions"].as_array().map_or(0, Vec::len),
                s["skipped"].as_array().map_or(0, Vec::len),
                s["users"],
                s["millis"].as_u64().unwrap_or(0) as f64 / 1000.0
            );
        }
        if let Some(ids) = s["collisions"].as_array().filter(|c| !c.is_empty()) {
            let ids: Vec<&str> = ids.iter().filter_map(|v| v.as_str()).collect();
            eprintln!(
                "{name}: PIN-only login is off for users sharing a PIN: {}",
                ids.join(", ")
            );
        }
        for why in s["skipped"].as_array().into_iter().flatten() {
            eprintln!("{name}: skipped: {}", why.as_str().unwrap_or("?"));
        }
        if let Some(ids) = s["weak_pin_users"].as_array().filter(|c| !c.is_empty()) {
            let ids: Vec<&str> = ids.iter().filter_map(|v| v.as_str()).collect();
            eprintln!(
                "{name}: {} directory PIN(s) break the policy: {}",
                s["weak_pins"],
                ids.join(", ")
            );
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub(super) async fn call(config: &Config, request: &Request) -> anyhow::Result<serde_json::Value> {
    let response = client::call(&config.control_socket, request, |_, _| {}).await?;
    into_data(response)
}

pub(super) fn into_data(response: Response) -> anyhow::Result<serde_json::Value> {
    if response.ok {
        return Ok(response.data.unwrap_or_default());
    }
    for problem in &response.problems {
        eprintln!("{problem}");
    }
    bail!(
        "{}",
        response
            .error
            .unwrap_or_else(|| "the daemon refused the request".into())
    )
}

/// Sends a request whose answer waits for PINs to be hashed, with a progress bar on a
/// terminal.
pub(super) async fn call_hashing(
    config: &Config,
    request: &Request,
) -> Result<Response, client::ClientError> {
    let bar = progress_bar();
    let response = client::call(&config.control_socket, request, |done, total| {
        if let Some(bar) = &bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    })
    .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    response
}

fn progress_bar() -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("hashing PINs {bar:40} {pos}/{len} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

fn print_status(data: &serde_json::Value) {
    println!(
        "pinwarden {} up {}s",
        data["version"].as_str().unwrap_or("?"),
        data["uptime_secs"]
    );
    let store = &data["store"];
    match (&store["writable"], &store["reason"]) {
        (serde_json::Value::Bool(true), _) => println!("store:     writable"),
        (_, reason) => println!(
            "store:     not writable ({}); {} audit event(s) dropped",
            reason.as_str().unwrap_or("unknown"),
            store["audit_dropped"]
        ),
    }
    match data["ready"].as_bool() {
        Some(true) => println!("ready:     yes"),
        _ => {
            let why: Vec<&str> = data["not_ready"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str())
                .collect();
            println!("ready:     NO ({})", why.join("; "));
        }
    }
    println!("users:     {}", data["users"]);
    println!("tcp:       {}", data["tcp"]);
    if !data["http"].is_null() {
        println!("http:      {}", data["http"]);
    }
    println!("decisions: {}", data["decisions"]);
    println!("hash pool: {}", data["hash_pool"]);
    println!("locked:    {}", data["locked"]);
    for d in data["odds"]["devices"].as_array().into_iter().flatten() {
        let above = if d["above"] == true {
            "  ABOVE THE CEILING"
        } else {
            ""
        };
        println!("odds:      {}{above}", d["summary"].as_str().unwrap_or("?"));
    }
    let mqtt = &data["mqtt"];
    if mqtt.is_object() {
        let state = match (&mqtt["connected"], &mqtt["last_error"]) {
            (serde_json::Value::Bool(true), _) => "connected".to_string(),
            (_, serde_json::Value::String(e)) => format!("NOT CONNECTED: {e}"),
            _ => "connecting".to_string(),
        };
        println!(
            "mqtt:      {} {state}; events outbox {} waiting, {} dropped",
            mqtt["broker"].as_str().unwrap_or("?"),
            mqtt["outbox_pending"],
            mqtt["outbox_dropped"]
        );
    }
    for d in data["directories"].as_array().into_iter().flatten() {
        // Times travel as unix milliseconds.
        let when = |k: &str| {
            d[k].as_i64().map_or("never".to_string(), |ms| {
                Timestamp::from_millis(ms).to_string()
            })
        };
        let weak = match d["weak_pins"].as_u64() {
            Some(n) if n > 0 => format!(
                ", {n} weak PIN(s) ({}): {}",
                d["weak_pin_policy"].as_str().unwrap_or("?"),
                d["weak_pin_users"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => String::new(),
        };
        println!(
            "directory {} ({}): {} users, last success {}, cursor age {}s{}{}{weak}",
            d["name"].as_str().unwrap_or("?"),
            d["kind"].as_str().unwrap_or("?"),
            d["users"],
            when("last_success"),
            d["cursor_age_secs"],
            if d["stale"].as_bool() == Some(true) {
                format!(
                    ", STALE (older than {})",
                    d["max_staleness"].as_str().unwrap_or("?")
                )
            } else {
                String::new()
            },
            d["last_error"]
                .as_str()
                .map(|e| format!(", last error {}: {e}", when("last_error_at")))
                .unwrap_or_default()
        );
    }
    for w in data["workers"].as_array().into_iter().flatten() {
        if let Ok(w) = serde_json::from_value(w.clone()) {
            println!("{}", worker_line(&w));
        }
    }
    if let Some(groups) = data["pin_collisions"].as_array().filter(|g| !g.is_empty()) {
        println!(
            "pin collisions (PIN-only login off): {}",
            serde_json::Value::from(groups.clone())
        );
    }
    print_mail(&data["mail"]);
    for w in data["warnings"].as_array().into_iter().flatten() {
        println!("warning:   {}", w.as_str().unwrap_or("?"));
    }
}

/// The `mail` object of `status`: depth and oldest message per lane, pause, last error.
/// Prints what is present.
fn print_mail(mail: &serde_json::Value) {
    if !mail.is_object() {
        return;
    }
    let mut lanes = Vec::new();
    for (name, lane) in mail["lanes"].as_object().into_iter().flatten() {
        let oldest = lane["oldest"]
            .as_i64()
            .map(|ms| {
                let age = Timestamp::from_millis(ms).until(Timestamp::now());
                format!(
                    " (oldest {})",
                    crate::duration::format_duration(std::time::Duration::from_secs(age.as_secs()),)
                )
            })
            .unwrap_or_default();
        lanes.push(format!("{name} {}{oldest}", lane["depth"]));
    }
    let mut line = format!(
        "mail:      {}",
        if lanes.is_empty() {
            "-".into()
        } else {
            lanes.join(", ")
        }
    );
    match &mail["paused"] {
        serde_json::Value::Bool(true) => line.push_str("; PAUSED"),
        serde_json::Value::String(p) => line.push_str(&format!("; paused: {p}")),
        serde_json::Value::Array(p) if !p.is_empty() => {
            line.push_str(&format!("; paused: {}", serde_json::Value::from(p.clone())))
        }
        serde_json::Value::Object(p) if !p.is_empty() => {
            line.push_str(&format!("; paused: {}", serde_json::Value::from(p.clone())))
        }
        _ => {}
    }
    if let Some(e) = mail["last_error"].as_str() {
        line.push_str(&format!("; last error: {e}"));
    }
    println!("{line}");
}

/// `worker NAME: STATE[ until T][, N failures in a row][, last error AT: ERROR]`.
fn worker_line(w: &crate::worker::WorkerStatus) -> String {
    let retry = match w.retry_at {
        Some(at) => format!(" until {at}"),
        None => String::new(),
    };
    let failing = match w.failures {
        0 => String::new(),
        n => format!(", {n} failures in a row"),
    };
    let error = match (&w.last_error, w.last_error_at) {
        (Some(e), Some(at)) => format!(", last error {at}: {e}"),
        (Some(e), None) => format!(", last error: {e}"),
        _ => String::new(),
    };
    format!("worker {}: {}{retry}{failing}{error}", w.name, w.state)
}

fn audit_line(e: &AuditEvent) -> String {
    let detail = match &e.kind {
        AuditKind::Decision { device, origin, credential, user, outcome, reason, repeated } => format!(
            "decision device={device} origin={} credential={credential} user={} outcome={outcome}{}{}",
            serde_json::to_string(origin).unwrap_or_default(),
            user.as_deref().unwrap_or("-"),
            reason.map(|r| format!(" reason={}", r.as_str())).unwrap_or_default(),
            repeated.map(|n| format!(" repeated={n} more within a minute")).unwrap_or_default()
        ),
        AuditKind::Lockout { key, failures, until } => format!(
            "lockout key={key} failures={failures} until={}",
            until.map_or("-".into(), |t| t.to_string())
        ),
        AuditKind::Admin { action, user, detail, by } => format!(
            "admin action={action} user={} by={} {}",
            user.as_deref().unwrap_or("-"),
            by.as_deref().unwrap_or("-"),
            detail.as_deref().unwrap_or("")
        ),
        AuditKind::Refused { frontend, peer, reason } => format!("refused frontend={frontend} peer={peer} reason={reason}"),
        AuditKind::Daemon { action } => format!("daemon {action}"),
        AuditKind::Duress { device, user } => format!("DURESS device={device} user={user}"),
        AuditKind::Door { door, user, action, detail } => format!(
            "door {door} action={action} user={} {}",
            user.as_deref().unwrap_or("-"),
            detail.as_deref().unwrap_or("")
        ),
        AuditKind::Keypad { device, port, action, detail } => {
            format!("keypad device={device} port={port} action={action} {detail}")
        }
        AuditKind::Sync { source, outcome, added, changed, removed, rehashed, collisions, skipped, error } => format!(
            "sync source={source} outcome={outcome} added={added} changed={changed} removed={removed} rehashed={rehashed} collisions={collisions} skipped={skipped} {}",
            error.as_deref().unwrap_or("")
        ),
        AuditKind::Print { device, user, action, released, detail } => format!(
            "print device={device} user={user} action={action} released={released} {}",
            detail.as_deref().unwrap_or("")
        ),
        AuditKind::Card { device, peer, action, card } => format!(
            "card device={device} peer={peer} action={action} card={}",
            card.as_deref().unwrap_or("-")
        ),
        AuditKind::Mail { action, kind, user, lane, detail } => format!(
            "mail action={action} kind={} user={} lane={} {}",
            kind.template(),
            user.as_deref().unwrap_or("-"),
            lane.map_or("-", |l| l.name()),
            detail.as_deref().unwrap_or("")
        ),
        AuditKind::Pin { action, user, detail } => format!(
            "pin action={action} user={user} {}",
            detail.as_deref().unwrap_or("")
        ),
        AuditKind::Alarm { action, detail } => {
            format!("ALARM {action} {}", detail.as_deref().unwrap_or(""))
        }
    };
    format!("{} {}", e.at, detail.trim_end())
}
