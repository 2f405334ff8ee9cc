//! `pinwarden guest …`: sponsored guests over the control socket, one request per command,
//! the answer printed for a person (or as JSON). A guest's PIN is mailed with the
//! invitation; only without `[smtp]` is it printed, once, on stdout.

use super::admin::call;
use crate::config::Config;
use crate::domain::Timestamp;
use crate::frontend::control::proto::Request;
use crate::lifecycle::users::{GuestView, NewGuest};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum GuestCommand {
    /// Create a guest of SPONSOR: the sponsor's groups (or some of them), a generated PIN
    /// mailed to the guest, a notice (without the PIN) to the sponsor.
    Add {
        id: String,
        /// The user who vouches for the guest (enabled, not a guest).
        #[arg(long)]
        sponsor: String,
        /// Where the invitation with the PIN goes.
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// One of the sponsor's groups (repeat for several; default: all of them).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// How long from now, such as 8h or 2d: at most [guests] max_validity and never
        /// past the sponsor's own end.
        #[arg(long)]
        valid_for: String,
        #[arg(long)]
        json: bool,
    },
    /// Guests, with their sponsor and end.
    List {
        /// Only this sponsor's guests.
        #[arg(long)]
        sponsor: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Move a guest's end to VALID_FOR from now (the PIN stays the same).
    Extend {
        id: String,
        /// Refuse unless the guest is this sponsor's.
        #[arg(long)]
        sponsor: Option<String>,
        #[arg(long)]
        valid_for: String,
        #[arg(long)]
        json: bool,
    },
    /// End a guest now: the account is removed.
    End {
        id: String,
        /// Refuse unless the guest is this sponsor's.
        #[arg(long)]
        sponsor: Option<String>,
    },
}

pub async fn run(config: &Config, cmd: GuestCommand) -> anyhow::Result<()> {
    match cmd {
        GuestCommand::Add {
            id,
            sponsor,
            email,
            name,
            groups,
            valid_for,
            json,
        } => {
            let guest = NewGuest {
                id: id.clone(),
                name,
                email: email.clone(),
                groups,
                valid_for,
            };
            let data = call(config, &Request::GuestAdd { sponsor, guest }).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&data)?);
                return Ok(());
            }
            let until = until(&data["valid_until"]);
            match data["generated_pin"].as_str() {
                Some(pin) => {
                    eprintln!("added guest {id} until {until}; no mail is configured, so hand over the PIN, shown once:");
                    println!("{pin}");
                }
                None => eprintln!("added guest {id} until {until}; the PIN is mailed to {email}"),
            }
        }
        GuestCommand::List { sponsor, json } => {
            let data = call(config, &Request::GuestList { sponsor }).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&data)?);
                return Ok(());
            }
            let guests: Vec<GuestView> = serde_json::from_value(data)?;
            for g in &guests {
                let end = g.valid_until.map_or("-".into(), |t| t.to_string());
                let state = if g.enabled { "" } else { "\tdisabled" };
                println!(
                    "{}\t{}\tsponsor {}\tuntil {end}{state}",
                    g.id, g.name, g.sponsor
                );
            }
            eprintln!("{} guest(s)", guests.len());
        }
        GuestCommand::Extend {
            id,
            sponsor,
            valid_for,
            json,
        } => {
            let request = Request::GuestExtend {
                id: id.clone(),
                sponsor,
                valid_for,
            };
            let data = call(config, &request).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&data)?);
            } else {
                eprintln!("guest {id} now until {}", until(&data["valid_until"]));
            }
        }
        GuestCommand::End { id, sponsor } => {
            call(
                config,
                &Request::GuestEnd {
                    id: id.clone(),
                    sponsor,
                },
            )
            .await?;
            eprintln!("ended guest {id}");
        }
    }
    Ok(())
}

fn until(value: &serde_json::Value) -> String {
    value
        .as_i64()
        .map_or("-".into(), |ms| Timestamp::from_millis(ms).to_string())
}
