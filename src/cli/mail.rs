//! `pinwarden mail list|preview`: the outbox's messages as the daemon reports them (state
//! only, never a body) and a template rendered for a user with a placeholder PIN.

use super::admin::call;
use super::MailCommand;
use crate::config::Config;
use crate::domain::Timestamp;
use crate::frontend::control::proto::Request;

pub async fn run(config: &Config, cmd: MailCommand) -> anyhow::Result<()> {
    match cmd {
        MailCommand::List { json } => {
            let data = call(config, &Request::MailList).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&data)?);
                return Ok(());
            }
            let rows = data.as_array().cloned().unwrap_or_default();
            for m in &rows {
                println!("{}", mail_line(m));
            }
            eprintln!("{} message(s) queued", rows.len());
        }
        MailCommand::Preview {
            template,
            user,
            json,
        } => {
            let data = call(config, &Request::MailPreview { template, user }).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&data)?);
                return Ok(());
            }
            println!("Subject: {}", data["subject"].as_str().unwrap_or(""));
            println!();
            print!("{}", data["text"].as_str().unwrap_or(""));
            if let Some(html) = data["html"].as_str() {
                eprintln!("(an HTML part of {} bytes is sent too)", html.len());
            }
            eprintln!("(rendered with a placeholder PIN)");
        }
    }
    Ok(())
}

/// Times travel as unix milliseconds.
fn time(v: &serde_json::Value) -> String {
    v.as_i64()
        .map_or("-".to_string(), |ms| Timestamp::from_millis(ms).to_string())
}

/// `SEQ LANE KIND USER TO queued AT, N attempt(s)[, next AT][, last error: E]`.
fn mail_line(m: &serde_json::Value) -> String {
    let s = |k: &str| m[k].as_str().unwrap_or("?").to_string();
    let attempts = m["attempts"].as_u64().unwrap_or(0);
    let next = m["not_before"]
        .as_i64()
        .filter(|ms| *ms > Timestamp::now().millis())
        .map(|ms| format!(", next try {}", Timestamp::from_millis(ms)))
        .unwrap_or_default();
    let error = m["last_error"]
        .as_str()
        .map(|e| format!(", last error: {e}"))
        .unwrap_or_default();
    format!(
        "{}\t{}\t{}\t{}\t{}\tqueued {}, {attempts} attempt(s){next}{error}",
        m["seq"],
        s("lane"),
        s("kind"),
        s("user"),
        s("to"),
        time(&m["created_at"])
    )
}
