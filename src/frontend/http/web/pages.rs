//! The self-service page's HTML (maud: every value escaped unless marked otherwise). Plain
//! forms that work without JavaScript, a `<label for>` on every field, one stylesheet
//! served as a file (the CSP allows no inline style). Knows nothing of sessions or links.

use super::service::{Account, Opened};
use maud::{html, Markup, DOCTYPE};

pub const CSS: &str = include_str!("self.css");

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — PIN self-service" }
                link rel="stylesheet" href="/static/self.css";
            }
            body {
                header { p.brand { "PIN self-service" } }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub fn sign_in(mail_configured: bool, directory: bool, error: Option<&str>) -> Markup {
    layout(
        "Sign in",
        html! {
            @if let Some(e) = error { p.error role="alert" id="sign-in-error" { (e) } }
            @if directory {
                h2 { "With your directory password" }
                form method="post" action="/sign-in/password" {
                    label for="id" { "User name" }
                    input id="id" name="id" type="text" autocomplete="username" required maxlength="256";
                    label for="password" { "Password" }
                    input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024";
                    button type="submit" { "Sign in" }
                }
                h2 { "Or by email" }
            }
            @if mail_configured {
                p { "Type the email address or user name on record. We will mail you a link that signs you in." }
                form method="post" action="/sign-in" {
                    label for="who" { "Email address or user name" }
                    input id="who" name="who" type="text" autocomplete="username" required maxlength="256";
                    button type="submit" { "Email me a sign-in link" }
                }
            } @else {
                p.notice role="status" {
                    "Mail is not configured on this server, so sign-in links cannot be sent. "
                    "Ask your administrator to set up [smtp]."
                }
            }
        },
    )
}

pub fn link_sent(lifetime: &str) -> Markup {
    layout(
        "Check your mail",
        html! {
            p role="status" {
                "If the address or name is on record, a sign-in link is on its way. "
                "It works for " (lifetime) " and only once; open it in this browser."
            }
            p { a href="/" { "Back" } }
        },
    )
}

/// A link's page: a visible button spends it (a GET never does).
pub fn link(token: &str, opened: &Opened, need_code: bool, wrong_code: bool) -> Markup {
    let action = format!("/link/{token}");
    match opened {
        Opened::Refused(why) => refused_link(why),
        Opened::Usable => layout(
            "Sign in",
            html! {
                @if wrong_code {
                    p.error role="alert" id="code-error" { "That code is not the one in the mail. Try again." }
                }
                form method="post" action=(action) {
                    @if need_code {
                        p { "This browser did not ask for the link. Type the code printed in the same mail." }
                        label for="code" { "Code from the mail" }
                        input id="code" name="code" type="text" autocomplete="one-time-code" required maxlength="16";
                    }
                    button type="submit" { "Sign in" }
                }
            },
        ),
    }
}

/// A reveal link's page: the code from the mail and a visible button show the PIN.
pub fn reveal(token: &str, opened: &Opened, wrong_code: bool) -> Markup {
    let action = format!("/reveal/{token}");
    match opened {
        Opened::Refused(why) => refused_link(why),
        Opened::Usable => layout(
            "Your new PIN is ready",
            html! {
                @if wrong_code {
                    p.error role="alert" id="code-error" { "That code is not the one in the mail. Try again." }
                }
                p { "Type the code printed in the same mail. Your PIN is then shown once." }
                form method="post" action=(action) {
                    label for="code" { "Code from the mail" }
                    input id="code" name="code" type="text" autocomplete="one-time-code" required maxlength="16";
                    button type="submit" { "Show my PIN" }
                }
            },
        ),
    }
}

/// The one time a revealed PIN is shown (served with `Cache-Control: no-store`).
pub fn revealed(pin: &str) -> Markup {
    layout(
        "Your new PIN",
        html! {
            p { "Your new PIN is shown only this once. Learn it or keep it safe:" }
            p.pin id="pin" { (pin) }
            p { "This link no longer works." }
        },
    )
}

pub fn refused_link(why: &str) -> Markup {
    layout(
        "This link cannot be used",
        html! {
            p.error role="alert" { "This link " (why) "." }
            p { a href="/" { "Ask for a new link" } }
        },
    )
}

/// Where a refusal is shown: next to the PIN form, or above the guests.
pub enum Problem<'a> {
    Pin(&'a str),
    Guest(&'a str),
}

pub fn account(a: &Account, csrf: &str, notice: Option<&str>, problem: Option<Problem>) -> Markup {
    let (error, guest_error) = match problem {
        Some(Problem::Pin(e)) => (Some(e), None),
        Some(Problem::Guest(e)) => (None, Some(e)),
        None => (None, None),
    };
    layout(
        &format!("Hello, {}", if a.name.is_empty() { &a.id } else { &a.name }),
        html! {
            @if let Some(n) = notice { p.notice role="status" { (n) } }
            section aria-labelledby="pin-h" {
                h2 id="pin-h" { "Your PIN" }
                p id="validity" { (a.validity) }
                @if !a.can_change { @if let Some(e) = error { p.error role="alert" id="pin-error" { (e) } } }
                form method="post" action="/pin/new" {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Generate a new PIN" }
                }
            }
            @if a.can_change {
                section aria-labelledby="set-h" {
                    h2 id="set-h" { "Choose your own PIN" }
                    @if let Some(e) = error { p.error role="alert" id="pin-error" { (e) } }
                    form method="post" action="/pin/change" {
                        input type="hidden" name="csrf" value=(csrf);
                        label for="new" { "New PIN" }
                        input id="new" name="new" type="password" inputmode="numeric" autocomplete="new-password" required maxlength="64";
                        label for="repeat" { "New PIN again" }
                        input id="repeat" name="repeat" type="password" inputmode="numeric" autocomplete="new-password" required maxlength="64";
                        button type="submit" { "Set this PIN" }
                    }
                }
            }
            section aria-labelledby="use-h" {
                h2 id="use-h" { "Your recent use at devices" }
                @if a.decisions.is_empty() {
                    p { "None recorded." }
                } @else {
                    table {
                        thead { tr { th scope="col" { "When" } th scope="col" { "Device" } th scope="col" { "Result" } } }
                        tbody {
                            @for d in &a.decisions {
                                tr { td { (d.at) } td { (d.device) } td { (d.outcome) } }
                            }
                        }
                    }
                }
            }
            @if let Some(guests) = &a.guests { (guests_section(guests, csrf, guest_error)) }
            form method="post" action="/sign-out" {
                input type="hidden" name="csrf" value=(csrf);
                button.secondary type="submit" { "Sign out" }
            }
        },
    )
}

/// The one time a generated PIN is shown (served with `Cache-Control: no-store`).
pub fn new_pin(pin: Option<&str>, mailed: bool) -> Markup {
    layout(
        "Your new PIN",
        html! {
            @if let Some(pin) = pin {
                p { "Your new PIN is shown only this once:" }
                p.pin id="pin" { (pin) }
            }
            @if mailed { p role="status" { "It has also been sent to your email address." } }
            @if pin.is_none() && !mailed { p { "No PIN could be delivered." } }
            p { "Your previous PIN no longer works." }
            p { a href="/" { "Back to your account" } }
        },
    )
}

pub fn problem(title: &str, text: &str) -> Markup {
    layout(
        title,
        html! {
            p.error role="alert" { (text) }
            p { a href="/" { "Back" } }
        },
    )
}

fn guests_section(guests: &[super::service::Guest], csrf: &str, error: Option<&str>) -> Markup {
    html! {
        section aria-labelledby="guests-h" {
            h2 id="guests-h" { "Your guests" }
            @if let Some(e) = error { p.error role="alert" id="guest-error" { (e) } }
            @if guests.is_empty() {
                p { "You have no guests." }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "Guest" } th scope="col" { "Access until" }
                        th scope="col" { "Last use" } th scope="col" { "Change" }
                    } }
                    tbody {
                        @for g in guests {
                            tr {
                                td { (g.name) " (" (g.id) ")" }
                                td { (g.until) }
                                td { (g.last_use) }
                                td {
                                    form method="post" action="/guests" {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="id" value=(g.id);
                                        label for=(format!("for-{}", g.id)) { "Extend by" }
                                        input id=(format!("for-{}", g.id)) name="valid_for" type="text" value="1d" maxlength="16";
                                        button type="submit" name="action" value="extend" { "Extend" }
                                        button.secondary type="submit" name="action" value="end" { "End now" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Invite a guest" }
            form method="post" action="/guests" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value="invite";
                label for="g-id" { "User name for the guest" }
                input id="g-id" name="id" type="text" required maxlength="64";
                label for="g-name" { "Name" }
                input id="g-name" name="name" type="text" maxlength="128";
                label for="g-email" { "Email address (the PIN is sent there)" }
                input id="g-email" name="email" type="email" required maxlength="256";
                label for="g-for" { "Access for (such as 8h or 3d)" }
                input id="g-for" name="valid_for" type="text" value="1d" required maxlength="16";
                button type="submit" { "Invite" }
            }
        }
    }
}
