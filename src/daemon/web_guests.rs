//! Sponsors' guests on the page's side (a child of `daemon/web.rs`): the list with each
//! guest's end and last use, and invite/extend/end through `UserAdmin` as `web:<sponsor>`,
//! flushed before the answer.

use super::{DaemonWeb, Inner, BUSY};
use crate::domain::{AuditKind, AuditQuery};
use crate::frontend::http::web::service::{Guest, GuestForm, Who};
use crate::lifecycle::users::AdminError;
use crate::store::StoreError;

impl Inner {
    /// A sponsor's guests with their end and last use (the newest grant in the audit).
    pub(super) fn guests_of(&self, sponsor: &str) -> Result<Vec<Guest>, StoreError> {
        let templates = self.templates.get();
        let listed = self
            .users
            .guest_list(Some(sponsor))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let mut guests = Vec::new();
        for g in listed {
            let query = AuditQuery {
                user: Some(g.id.clone()),
                kind: Some("decision".into()),
                limit: 50,
                ..AuditQuery::default()
            };
            let last = self.store.audit_query(&query)?.into_iter().find(|e| {
                matches!(&e.kind, AuditKind::Decision { outcome, .. } if outcome.as_str() == "grant")
            });
            guests.push(Guest {
                name: if g.name.is_empty() {
                    g.id.clone()
                } else {
                    g.name.clone()
                },
                until: templates.expiration(g.valid_until),
                last_use: last
                    .map(|e| templates.expiration(Some(e.at)))
                    .unwrap_or_else(|| "not yet".into()),
                id: g.id,
            });
        }
        Ok(guests)
    }
}

impl DaemonWeb {
    pub(super) async fn guest_change(&self, who: &Who, form: GuestForm) -> Result<String, String> {
        {
            if !self.0.guests_on {
                return Err("Guests are not allowed here.".into());
            }
            let users = &self.0.users;
            let sponsor = who.user.as_str();
            let by = format!("web:{sponsor}");
            let templates = self.0.templates.get();
            let work = async {
                match form {
                    GuestForm::Invite {
                        id,
                        name,
                        email,
                        valid_for,
                    } => {
                        let new = crate::lifecycle::users::NewGuest {
                            id: id.clone(),
                            name,
                            email,
                            groups: Vec::new(),
                            valid_for,
                        };
                        let added = users.guest_add(sponsor, new).await?;
                        let until = templates.expiration(Some(added.valid_until));
                        Ok(match added.shown {
                            Some(pin) => format!(
                                "Guest {id} can come in until {until}. Their PIN, shown only \
                                 this once: {}",
                                pin.expose()
                            ),
                            None => format!("Guest {id} can come in until {until}; their PIN was mailed to them."),
                        })
                    }
                    GuestForm::Extend { id, valid_for } => {
                        let until = users.guest_extend(&id, Some(sponsor), &valid_for)?;
                        Ok(format!(
                            "Guest {id} can now come in until {}.",
                            templates.expiration(Some(until))
                        ))
                    }
                    GuestForm::End { id } => {
                        users.guest_end(&id, Some(sponsor))?;
                        Ok(format!("Guest {id} has been ended."))
                    }
                }
            };
            let done: Result<String, AdminError> = crate::lifecycle::actor::acting(by, work).await;
            match done {
                Ok(notice) => {
                    self.0
                        .blocking(|i| i.store.flush())
                        .await
                        .map_err(|_| BUSY.to_string())?;
                    self.0.outbox.wake();
                    Ok(notice)
                }
                Err(AdminError::Store(e)) => {
                    tracing::error!(error = %e, "a guest change on the self-service page failed");
                    Err(BUSY.to_string())
                }
                Err(e) => Err(e.to_string()),
            }
        }
    }
}
