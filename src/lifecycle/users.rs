//! The user administration service behind the control socket: add, change PIN, set and
//! clear the duress PIN, enable, disable and remove (here), show and list
//! (`users_view.rs`), import (`users_import.rs`), sponsored guests (`guests.rs`). Every PIN
//! that is set passes the policy and the uniqueness check; every change is audited (without
//! the PIN). Writes users through the `Store` trait only, and never an upstream user's
//! directory data.

use super::generate::generate_pin;
use super::import::ImportProblem;
use super::mail::Composer;
use super::policy::{PinPolicy, PolicyViolation};
use super::settings::{Generation, LifecycleSettings};
use crate::core::lockout;
use crate::crypto::HashPool;
use crate::domain::{
    check_user_id, AdminAction, AuditKind, BadUserId, Expiry, Lane, MailKind, Pin, PinRecord,
    PinSource, Tag, Timestamp, User, UserOrigin,
};
use crate::live::Live;
use crate::notify::outbox::OutboxHandle;
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[path = "guests.rs"]
mod guests;
#[path = "users_account.rs"]
mod users_account;
#[path = "users_import.rs"]
mod users_import;
#[path = "users_import_job.rs"]
mod users_import_job;
#[path = "users_lifecycle.rs"]
mod users_lifecycle;
#[path = "users_limits.rs"]
mod users_limits;
#[path = "users_selfservice.rs"]
mod users_selfservice;
#[path = "users_validity.rs"]
mod users_validity;
#[path = "users_view.rs"]
mod users_view;

pub use guests::{guest_groups, guest_until, GuestAdded, GuestSettings, GuestView, NewGuest};
pub use users_import::{ImportOptions, ImportReport, MAX_PROBLEMS};
pub use users_import_job::ImportJob;
pub use users_limits::PinLimits;
pub use users_view::{PinView, UserView};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Policy(#[from] PolicyViolation),
    #[error("no user `{0}`")]
    NoSuchUser(String),
    #[error("user `{0}` already exists")]
    UserExists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("store unavailable: {0}")]
    Store(String),
    #[error("import refused: {} problem(s), nothing was applied", .0.len())]
    Import(Vec<ImportProblem>),
    /// Too much work in hand (every PIN worker busy): nothing was done, try again shortly.
    #[error("{0}")]
    Busy(String),
    /// The change was made but not flushed to disk; a crash may still undo it.
    #[error("{0}")]
    NotDurable(String),
}

impl From<crate::crypto::PoolBusy> for AdminError {
    fn from(_: crate::crypto::PoolBusy) -> Self {
        AdminError::Busy("every PIN worker is busy: nothing was done, try again in a moment".into())
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UserExists(id) => AdminError::UserExists(id),
            StoreError::NoSuchUser(id) => AdminError::NoSuchUser(id),
            StoreError::TagTaken => AdminError::Policy(PolicyViolation::NotUnique),
            StoreError::CardTaken(card) => {
                AdminError::Invalid(format!("card {card} is already assigned to another user"))
            }
            StoreError::Unavailable(m) | StoreError::Again(m) => AdminError::Store(m),
            StoreError::NotOwned(id) => {
                AdminError::Invalid(format!("user `{id}` is owned by another directory source"))
            }
        }
    }
}

/// How a new PIN is chosen.
pub enum PinChoice {
    Given(Pin),
    Generate,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Card numbers as read; stored normalised.
    #[serde(default)]
    pub cards: Vec<String>,
    /// Access validity window (RFC 3339 or YYYY-MM-DD, UTC midnight).
    #[serde(default)]
    pub valid_from: Option<String>,
    #[serde(default)]
    pub valid_until: Option<String>,
}

fn when(field: &str, text: &Option<String>) -> Result<Option<Timestamp>, AdminError> {
    text.as_deref()
        .map(|t| {
            Timestamp::parse(t).ok_or_else(|| {
                AdminError::Invalid(format!(
                    "{field} `{t}`: use YYYY-MM-DD or 2026-12-31T18:00:00Z"
                ))
            })
        })
        .transpose()
}

/// Normalises card numbers; Err names the one that has no digits or letters.
pub fn normalise_cards(raw: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for card in raw {
        let n = crate::domain::normalise_card(card)
            .ok_or_else(|| format!("`{card}` is not a card number"))?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

/// What a new PIN is checked against and how long a generated one is; a reload replaces
/// both together, so generation never runs under one rule set's length and another's
/// minimum.
#[derive(Clone, Debug)]
pub struct PinRules {
    pub policy: PinPolicy,
    pub generated_length: usize,
}

pub struct UserAdmin {
    store: Arc<dyn Store>,
    pool: Arc<HashPool>,
    /// Replaced by a reload (SIGHUP): each change is checked against the current rules.
    rules: Live<PinRules>,
    default_expiry: Expiry,
    lifecycle: LifecycleSettings,
    composer: Option<Arc<Composer>>,
    /// `[mail] delivery = "reveal"`: new PINs are mailed as links to the page.
    reveal: Option<crate::lifecycle::links::Reveal>,
    /// Woken after mail is queued.
    outbox: OutboxHandle,
    guests: GuestSettings,
}

fn validate_new(new: &NewUser) -> Result<(), AdminError> {
    check_user_id(&new.id).map_err(|_| AdminError::Invalid(BadUserId::RULE.into()))?;
    if let Some(email) = &new.email {
        let parts: Vec<&str> = email.split('@').collect();
        if parts.len() != 2
            || parts.iter().any(|p| p.is_empty())
            || email.contains(char::is_whitespace)
        {
            return Err(AdminError::Invalid(format!(
                "`{email}` is not an email address"
            )));
        }
    }
    if new.name.chars().any(char::is_control) || new.name.len() > 256 {
        return Err(AdminError::Invalid(
            "a name must be at most 256 bytes without line breaks or control characters".into(),
        ));
    }
    if new
        .groups
        .iter()
        .any(|g| g.trim().is_empty() || g.chars().any(char::is_control))
    {
        return Err(AdminError::Invalid("group names must not be empty".into()));
    }
    Ok(())
}

impl UserAdmin {
    pub fn new(
        store: Arc<dyn Store>,
        pool: Arc<HashPool>,
        policy: PinPolicy,
        generated_length: usize,
        default_expiry: Expiry,
    ) -> Self {
        UserAdmin {
            store,
            pool,
            rules: Live::new(PinRules {
                policy,
                generated_length,
            }),
            default_expiry,
            lifecycle: LifecycleSettings::default(),
            composer: None,
            outbox: OutboxHandle::default(),
            guests: GuestSettings::default(),
            reveal: None,
        }
    }

    /// The PIN rules, for a reload to replace.
    pub fn live_rules(&self) -> Live<PinRules> {
        self.rules.clone()
    }

    fn audit(&self, action: AdminAction, user: &str, detail: Option<String>) {
        let kind = AuditKind::Admin {
            action,
            user: Some(user.into()),
            detail,
            by: Some(super::actor::current()),
        };
        self.store.record(kind);
    }

    /// Checks, hashes and proves unique a PIN for `user`; returns the record and, for a
    /// generated PIN, the PIN to show once.
    async fn new_pin(
        &self,
        user: &User,
        choice: PinChoice,
        expiry: Option<Expiry>,
        source: PinSource,
    ) -> Result<(PinRecord, Option<Pin>), AdminError> {
        let (tag, shown) = match choice {
            PinChoice::Given(pin) => {
                self.rules.get().policy.check(&pin, &user.id, &user.cards)?;
                let tag = self.pool.tag_waiting(pin).await?;
                self.ensure_unique(&tag, &user.id)?;
                (tag, None)
            }
            PinChoice::Generate => self.generate_unique(user).await?,
        };
        let expiry = self.effective_expiry(expiry, &user.groups);
        let now = Timestamp::now();
        let record = PinRecord {
            tag,
            set_at: now,
            expires_at: expiry.expires_at(now),
            source: if shown.is_some() {
                PinSource::Generated
            } else {
                source
            },
            temporary: expiry != Expiry::Never || user.origin == UserOrigin::Upstream,
            uses_left: None,
            windows: Vec::new(),
        };
        Ok((record, shown))
    }

    /// The tag is free, or the user's own PIN; never another user's, and never the user's
    /// duress PIN (that would silently disable the duress alarm).
    fn ensure_unique(&self, tag: &Tag, id: &str) -> Result<(), AdminError> {
        match self.store.tag_owner(tag)? {
            Some(owner) if owner != id => Err(PolicyViolation::NotUnique.into()),
            Some(_) => {
                let own_duress = self
                    .store
                    .user(id)?
                    .and_then(|u| u.duress)
                    .is_some_and(|d| d.tag == *tag);
                if own_duress {
                    Err(PolicyViolation::NotUnique.into())
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }

    async fn generate_unique(&self, user: &User) -> Result<(Tag, Option<Pin>), AdminError> {
        let rules = self.rules.get();
        for _ in 0..32 {
            let pin = generate_pin(
                &rules.policy,
                rules.generated_length,
                &user.id,
                &user.cards,
                &mut rand::rngs::OsRng,
            )
            .map_err(AdminError::Invalid)?;
            let tag = self.pool.tag_waiting(pin.clone()).await?;
            if self.ensure_unique(&tag, &user.id).is_ok() && !self.recently_retired(&tag)? {
                return Ok((tag, Some(pin)));
            }
        }
        Err(AdminError::Invalid(
            "could not generate a unique PIN: raise policy.generated_length".into(),
        ))
    }

    pub async fn add(
        &self,
        new: NewUser,
        pin: Option<PinChoice>,
        expiry: Option<Expiry>,
    ) -> Result<Option<Pin>, AdminError> {
        self.add_limited(new, pin, expiry, PinLimits::default())
            .await
    }

    /// `add`, the PIN limited to `limits` (uses, windows).
    pub async fn add_limited(
        &self,
        new: NewUser,
        pin: Option<PinChoice>,
        expiry: Option<Expiry>,
        limits: PinLimits,
    ) -> Result<Option<Pin>, AdminError> {
        validate_new(&new)?;
        limits.check()?;
        if self.store.user(&new.id)?.is_some() {
            return Err(AdminError::UserExists(new.id));
        }
        let mut user = User::new_local(new.id);
        user.name = new.name;
        user.email = new.email;
        user.groups = new.groups;
        user.cards = normalise_cards(&new.cards).map_err(AdminError::Invalid)?;
        user.valid_from = when("--valid-from", &new.valid_from)?;
        user.valid_until = when("--valid-until", &new.valid_until)?;
        if let (Some(from), Some(until)) = (user.valid_from, user.valid_until) {
            if until <= from {
                return Err(AdminError::Invalid(
                    "--valid-until must be after --valid-from".into(),
                ));
            }
        }
        let asked = pin.is_some();
        let pin = match pin {
            None if self.lifecycle.generation == Generation::Auto => Some(PinChoice::Generate),
            other => other,
        };
        let mut shown = None;
        let mut mail = Vec::new();
        if pin.is_none() {
            limits.need_pin()?;
        }
        if let Some(choice) = pin {
            let (mut record, generated) = self
                .new_pin(&user, choice, expiry, PinSource::Admin)
                .await?;
            limits.apply(&mut record);
            user.pin = Some(record);
            user.pin_issued = true;
            if let Some(generated) = &generated {
                mail.extend(self.pin_mail(&user, MailKind::NewPin, Lane::NewPin, generated)?);
            }
            // A PIN generated unasked is the mail's to deliver; shown only when nobody
            // else can tell the person (no address, no mail configured).
            shown = generated.filter(|_| asked || mail.is_empty());
        }
        self.store.insert_user_mailing(&user, &mail)?;
        self.audit(
            AdminAction::UserAdd,
            &user.id,
            Some(match limits.describe().filter(|_| user.pin.is_some()) {
                Some(limits) => format!("pin: true, {limits}"),
                None => format!("pin: {}", user.pin.is_some()),
            }),
        );
        self.audit_queued(&mail);
        Ok(shown)
    }

    pub async fn set_pin(
        &self,
        id: &str,
        choice: PinChoice,
        expiry: Option<Expiry>,
    ) -> Result<Option<Pin>, AdminError> {
        self.set_pin_limited(id, choice, expiry, PinLimits::default())
            .await
    }

    /// `set_pin`, the new PIN limited to `limits` (uses, windows); a PIN set without limits
    /// has none, whatever the old one had.
    pub async fn set_pin_limited(
        &self,
        id: &str,
        choice: PinChoice,
        expiry: Option<Expiry>,
        limits: PinLimits,
    ) -> Result<Option<Pin>, AdminError> {
        limits.check()?;
        let mut user = self
            .store
            .user(id)?
            .ok_or_else(|| AdminError::NoSuchUser(id.into()))?;
        let (mut record, shown) = self
            .new_pin(&user, choice, expiry, PinSource::Admin)
            .await?;
        limits.apply(&mut record);
        let (kind, lane) = match user.pin_issued || user.pin.is_some() {
            true => (MailKind::ResetPin, Lane::Reset),
            false => (MailKind::NewPin, Lane::NewPin),
        };
        user.pin = Some(record);
        user.pin_issued = true;
        // A PIN an administrator sets wins over one sent after a forgotten-PIN request.
        user.pending_pin = None;
        let mail = match &shown {
            Some(pin) => self.pin_mail(&user, kind, lane, pin)?.into_iter().collect(),
            None => Vec::new(),
        };
        self.store.update_user_mailing(&user, &mail)?;
        self.store
            .update_lockout(&lockout::user_key(id), &|_| None)?;
        self.audit(AdminAction::PinSet, id, limits.describe());
        self.audit_queued(&mail);
        Ok(shown)
    }
}

#[cfg(test)]
#[path = "users_tests.rs"]
mod tests;
