//! Admin subcommands: build a control request, send it, print the answer for a person
//! (or as JSON), and exit non-zero with one clear line on error.

use super::{Command, PinArgs, UserCommand};
use crate::config::Config;
use crate::domain::{AuditEvent, AuditKind, Pin, Timestamp};
use crate::frontend::control::client;
use crate::frontend::control::proto::{Request, Response, WirePin, WireRow};
use crate::lifecycle::import::{parse_users, MAX_IMPORT_BYTES};
use crate::lifecycle::users::{NewUser, UserView};
use anyhow::{bail, Context};
use std::io::{BufRead, IsTerminal};
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
        Command::User(cmd) => user(config, cmd).await?,
        Command::Import { file, dry_run } => import(config, &file, dry_run).await?,
        Command::Audit { last, json } => {
            let data = call(config, &Request::Audit { last }).await?;
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
        Command::Run | Command::CheckConfig => unreachable!("handled by cli::run"),
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
    let bar = progress_bar();
    let response = client::call(
        &config.control_socket,
        &Request::Sync {
            source,
            full,
            force,
        },
        |done, total| {
            if let Some(bar) = &bar {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }
        },
    )
    .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let data = into_data(response?)?;
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
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn call(config: &Config, request: &Request) -> anyhow::Result<serde_json::Value> {
    let response = client::call(&config.control_socket, request, |_, _| {}).await?;
    into_data(response)
}

fn into_data(response: Response) -> anyhow::Result<serde_json::Value> {
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

/// Reads a PIN: a no-echo prompt (asked twice) on a terminal, else one line of stdin.
fn read_pin() -> anyhow::Result<Pin> {
    if std::io::stdin().is_terminal() {
        let first = Pin::new(rpassword::prompt_password("New PIN: ")?);
        let again = Pin::new(rpassword::prompt_password("Repeat PIN: ")?);
        if first != again {
            bail!("the two PINs differ; nothing was changed");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the PIN from stdin")?;
    let pin = Pin::new(line.trim_end_matches(['\r', '\n']));
    zeroize::Zeroize::zeroize(&mut line);
    if pin.is_empty() {
        bail!("no PIN on stdin: pipe it in, for example `printf '%s' \"$PIN\" | pinwarden user set-pin ID --pin-stdin`");
    }
    Ok(pin)
}

fn pin_fields(args: &PinArgs) -> anyhow::Result<Option<WirePin>> {
    Ok(if args.pin_stdin {
        Some(WirePin(read_pin()?))
    } else {
        None
    })
}

fn show_generated(data: &serde_json::Value, id: &str) {
    if let Some(pin) = data.get("generated_pin").and_then(|p| p.as_str()) {
        eprintln!("New PIN for {id} (shown once):");
        println!("{pin}");
    }
}

async fn user(config: &Config, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            id,
            name,
            email,
            groups,
            cards,
            valid_from,
            valid_until,
            pin,
        } => {
            let request = Request::UserAdd {
                user: NewUser {
                    id: id.clone(),
                    name,
                    email,
                    groups,
                    cards,
                    valid_from,
                    valid_until,
                },
                pin: pin_fields(&pin)?,
                generate: pin.generate,
                expires: pin.expires,
            };
            let data = call(config, &request).await?;
            eprintln!("added user {id}");
            show_generated(&data, &id);
        }
        UserCommand::SetPin { id, pin } => {
            if !pin.pin_stdin && !pin.generate {
                bail!("choose --pin-stdin or --generate");
            }
            let request = Request::UserSetPin {
                id: id.clone(),
                pin: pin_fields(&pin)?,
                generate: pin.generate,
                expires: pin.expires,
            };
            let data = call(config, &request).await?;
            eprintln!("PIN set for {id}");
            show_generated(&data, &id);
        }
        UserCommand::SetDuress { id, .. } => {
            let pin = WirePin(read_pin()?);
            simple(
                config,
                Request::UserSetDuress {
                    id: id.clone(),
                    pin,
                },
                "duress PIN set for",
                &id,
            )
            .await?
        }
        UserCommand::ClearDuress { id } => {
            simple(
                config,
                Request::UserClearDuress { id: id.clone() },
                "duress PIN removed for",
                &id,
            )
            .await?
        }
        UserCommand::Remove { id } => {
            simple(
                config,
                Request::UserRemove { id: id.clone() },
                "removed",
                &id,
            )
            .await?
        }
        UserCommand::Disable { id } => {
            simple(
                config,
                Request::UserDisable { id: id.clone() },
                "disabled",
                &id,
            )
            .await?
        }
        UserCommand::Enable { id } => {
            simple(
                config,
                Request::UserEnable { id: id.clone() },
                "enabled",
                &id,
            )
            .await?
        }
        UserCommand::Show { id, json } => {
            let data = call(config, &Request::UserShow { id }).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&data)?);
            } else {
                print_user(&serde_json::from_value(data)?);
            }
        }
        UserCommand::List { json } => {
            let data = call(config, &Request::UserList).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&data)?);
            } else {
                let users: Vec<UserView> = serde_json::from_value(data)?;
                for u in &users {
                    println!("{}", user_line(u));
                }
                eprintln!("{} user(s)", users.len());
            }
        }
    }
    Ok(())
}

async fn simple(config: &Config, request: Request, done: &str, id: &str) -> anyhow::Result<()> {
    call(config, &request).await?;
    eprintln!("{done} {id}");
    Ok(())
}

async fn import(config: &Config, file: &std::path::Path, dry_run: bool) -> anyhow::Result<()> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    if size > MAX_IMPORT_BYTES as u64 {
        bail!(
            "{} is larger than {} MiB; split it",
            file.display(),
            MAX_IMPORT_BYTES >> 20
        );
    }
    let mut bytes =
        std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let tsv = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    let parsed = parse_users(&bytes, if tsv { b'\t' } else { b',' });
    zeroize::Zeroize::zeroize(&mut bytes);
    let rows = match parsed {
        Ok(rows) => rows,
        Err(problems) => {
            for p in &problems {
                eprintln!("{}: {p}", file.display());
            }
            bail!(
                "{} problem(s) in {}; nothing was imported",
                problems.len(),
                file.display()
            );
        }
    };
    let rows: Vec<WireRow> = rows
        .into_iter()
        .map(|r| WireRow {
            line: r.line,
            id: r.id,
            name: r.name,
            email: r.email,
            groups: r.groups,
            pin: r.pin.map(WirePin),
            cards: r.cards,
        })
        .collect();
    let bar = progress_bar();
    let response = client::call(
        &config.control_socket,
        &Request::Import { rows, dry_run },
        |done, total| {
            if let Some(bar) = &bar {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }
        },
    )
    .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let data = into_data(response?)
        .with_context(|| format!("{}: nothing was imported", file.display()))?;
    let verb = if dry_run { "would import" } else { "imported" };
    eprintln!(
        "{verb} {} row(s): {} added, {} updated, {} PIN(s) set",
        data["rows"], data["added"], data["updated"], data["pins_set"]
    );
    Ok(())
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

fn user_line(u: &UserView) -> String {
    let mut flags = Vec::new();
    if !u.enabled {
        flags.push("disabled");
    }
    if u.locked {
        flags.push("locked");
    }
    if u.pin.is_none() {
        flags.push("no-pin");
    }
    format!(
        "{}\t{}\t{}\t{}",
        u.id,
        u.name,
        u.groups.join(","),
        flags.join(",")
    )
}

fn print_user(u: &UserView) {
    println!("id:        {}", u.id);
    println!("name:      {}", u.name);
    println!("email:     {}", u.email.as_deref().unwrap_or("-"));
    println!("groups:    {}", u.groups.join(", "));
    println!("enabled:   {}", u.enabled);
    let show = |t: Option<crate::domain::Timestamp>| t.map_or("-".to_string(), |t| t.to_string());
    println!(
        "valid:     from {} until {}",
        show(u.valid_from),
        show(u.valid_until)
    );
    println!("origin:    {:?}", u.origin);
    match &u.pin {
        Some(p) => {
            let expires = p.expires_at.map_or("never".to_string(), |t| t.to_string());
            println!(
                "pin:       set {} ({:?}), expires {expires}",
                p.set_at, p.source
            );
        }
        None => println!("pin:       none"),
    }
    println!(
        "locked:    {} ({} failed attempt(s))",
        u.locked, u.failed_attempts
    );
    println!(
        "duress:    {}",
        if u.has_duress_pin { "set" } else { "none" }
    );
}

fn print_status(data: &serde_json::Value) {
    println!(
        "pinwarden {} up {}s",
        data["version"].as_str().unwrap_or("?"),
        data["uptime_secs"]
    );
    println!("users:     {}", data["users"]);
    println!("tcp:       {}", data["tcp"]);
    println!("decisions: {}", data["decisions"]);
    println!("hash pool: {}", data["hash_pool"]);
    println!("locked:    {}", data["locked"]);
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
        println!(
            "directory {} ({}): {} users, last success {}, cursor age {}s{}{}",
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
        AuditKind::Decision { device, origin, credential, user, outcome, reason } => format!(
            "decision device={device} origin={} credential={credential} user={} outcome={outcome}{}",
            serde_json::to_string(origin).unwrap_or_default(),
            user.as_deref().unwrap_or("-"),
            reason.map(|r| format!(" reason={}", r.as_str())).unwrap_or_default()
        ),
        AuditKind::Lockout { key, failures, until } => format!(
            "lockout key={key} failures={failures} until={}",
            until.map_or("reset by admin".into(), |t| t.to_string())
        ),
        AuditKind::Admin { action, user, detail } => format!(
            "admin action={action} user={} {}",
            user.as_deref().unwrap_or("-"),
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
    };
    format!("{} {}", e.at, detail.trim_end())
}
