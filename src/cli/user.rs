//! `pinwarden user …`: one control request per command, the answer printed for a person (or
//! as JSON). PINs come from stdin or a no-echo prompt, never argv; a generated PIN is shown
//! once on stdout.

use super::admin::call;
use super::{PinArgs, UserCommand};
use crate::config::Config;
use crate::domain::{Pin, Timestamp};
use crate::frontend::control::proto::{Request, WirePin};
use crate::lifecycle::users::{NewUser, PinView, UserView};
use anyhow::{bail, Context};
use std::io::{BufRead, IsTerminal};

pub async fn run(config: &Config, cmd: UserCommand) -> anyhow::Result<()> {
    let (request, done, id) = match cmd {
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
            let user = NewUser {
                id,
                name,
                email,
                groups,
                cards,
                valid_from,
                valid_until,
            };
            return add(config, user, pin).await;
        }
        UserCommand::SetPin { id, pin } => return set_pin(config, id, pin).await,
        UserCommand::Show { id, json } => return show(config, id, json).await,
        UserCommand::List { json } => return list(config, json).await,
        UserCommand::SetValidity { id, expires, json } => {
            return set_validity(config, id, expires, json).await
        }
        UserCommand::SetDuress { id, .. } => {
            let pin = WirePin(read_pin()?);
            let request = Request::UserSetDuress {
                id: id.clone(),
                pin,
            };
            (request, "duress PIN set for", id)
        }
        UserCommand::ClearDuress { id } => {
            let request = Request::UserClearDuress { id: id.clone() };
            (request, "duress PIN removed for", id)
        }
        UserCommand::Remove { id } => (Request::UserRemove { id: id.clone() }, "removed", id),
        UserCommand::Disable { id } => (Request::UserDisable { id: id.clone() }, "disabled", id),
        UserCommand::Enable { id } => (Request::UserEnable { id: id.clone() }, "enabled", id),
    };
    call(config, &request).await?;
    eprintln!("{done} {id}");
    Ok(())
}

async fn add(config: &Config, user: NewUser, pin: PinArgs) -> anyhow::Result<()> {
    let id = user.id.clone();
    let request = Request::UserAdd {
        user,
        pin: pin_fields(&pin)?,
        generate: pin.generate,
        expires: pin.expires,
        uses: pin.uses,
        windows: pin.windows,
    };
    let data = call(config, &request).await?;
    if pin.json {
        println!("{}", serde_json::to_string_pretty(&data)?);
        return Ok(());
    }
    eprintln!("added user {id}");
    show_pin(&data, &id);
    Ok(())
}

async fn set_pin(config: &Config, id: String, pin: PinArgs) -> anyhow::Result<()> {
    if !pin.pin_stdin && !pin.generate {
        bail!("choose --pin-stdin or --generate");
    }
    let request = Request::UserSetPin {
        id: id.clone(),
        pin: pin_fields(&pin)?,
        generate: pin.generate,
        expires: pin.expires,
        uses: pin.uses,
        windows: pin.windows,
    };
    let data = call(config, &request).await?;
    if pin.json {
        println!("{}", serde_json::to_string_pretty(&data)?);
        return Ok(());
    }
    if data.get("generated_pin").is_none() {
        eprintln!("PIN set for {id} ({})", validity(&data));
    }
    show_pin(&data, &id);
    Ok(())
}

async fn set_validity(
    config: &Config,
    id: String,
    expires: String,
    json: bool,
) -> anyhow::Result<()> {
    let request = Request::UserSetValidity {
        id: id.clone(),
        expires,
    };
    let data = call(config, &request).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&data)?);
    } else {
        eprintln!("PIN of {id} is now {}", validity(&data));
    }
    Ok(())
}

async fn show(config: &Config, id: String, json: bool) -> anyhow::Result<()> {
    let data = call(config, &Request::UserShow { id }).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&data)?);
    } else {
        print_user(&serde_json::from_value(data)?);
    }
    Ok(())
}

async fn list(config: &Config, json: bool) -> anyhow::Result<()> {
    let data = call(config, &Request::UserList).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&data)?);
        return Ok(());
    }
    let users: Vec<UserView> = serde_json::from_value(data)?;
    for u in &users {
        println!("{}", user_line(u));
    }
    eprintln!("{} user(s)", users.len());
    Ok(())
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

/// `valid until T`, `no expiry`, or for an upstream user that the directory's PIN replaces
/// it, from a PIN answer's `expires_at` (unix ms) and `upstream`.
fn validity(data: &serde_json::Value) -> String {
    if data["upstream"].as_bool() == Some(true) {
        let until = data["expires_at"].as_i64().map_or(String::new(), |ms| {
            format!(", valid until {} at the latest", Timestamp::from_millis(ms))
        });
        return format!("temporary: the directory's PIN replaces it at the next sync{until}");
    }
    data["expires_at"]
        .as_i64()
        .map_or("no expiry".into(), |ms| {
            format!("valid until {}", Timestamp::from_millis(ms))
        })
}

/// A generated PIN: its validity on stderr, then the PIN alone on stdout (shown once), so
/// `PIN=$(pinwarden user set-pin bob --generate)` keeps working.
fn show_pin(data: &serde_json::Value, id: &str) {
    if let Some(pin) = data.get("generated_pin").and_then(|p| p.as_str()) {
        eprintln!("generated PIN for {id} ({}), shown once:", validity(data));
        println!("{pin}");
    }
}

/// The PIN's state as `user list` and `user show` say it: expired (until swept),
/// temporary, until when.
fn pin_state(p: &PinView, now: Timestamp) -> String {
    match p.expires_at {
        Some(at) if at <= now => format!("expired {at}"),
        Some(at) if p.temporary => format!("temporary until {at}"),
        Some(at) => format!("until {at}"),
        None if p.temporary => "temporary".into(),
        None => "no expiry".into(),
    }
}

fn user_line(u: &UserView) -> String {
    let mut flags: Vec<String> = Vec::new();
    if !u.enabled {
        flags.push("disabled".into());
    }
    if u.locked {
        flags.push("locked".into());
    }
    match &u.pin {
        None => flags.push("no-pin".into()),
        Some(p) => {
            let now = Timestamp::now();
            if p.expires_at.is_some_and(|at| at <= now) {
                flags.push("expired".into());
            } else if p.temporary {
                flags.push("temporary".into());
            }
            if let Some(at) = p.expires_at {
                flags.push(format!("until {at}"));
            }
            match p.uses_left {
                Some(0) => flags.push("uses-exhausted".into()),
                Some(n) => flags.push(format!("uses-left {n}")),
                None => {}
            }
            if !p.windows.is_empty() {
                flags.push(format!("windows {}", p.windows.join("; ")));
            }
        }
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
            let state = pin_state(p, crate::domain::Timestamp::now());
            let local = p.source != crate::domain::PinSource::Upstream;
            let upstream = if local && u.origin == crate::domain::UserOrigin::Upstream {
                " (set here: the directory's PIN replaces it at the next sync)"
            } else {
                ""
            };
            println!(
                "pin:       set {} ({:?}), {state}{upstream}",
                p.set_at, p.source
            );
            if let Some(n) = p.uses_left {
                let left = if n == 0 {
                    "none (exhausted)".into()
                } else {
                    n.to_string()
                };
                println!("uses left: {left}");
            }
            if !p.windows.is_empty() {
                println!("windows:   {} (site time zone)", p.windows.join("; "));
            }
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
