//! The closed vocabularies of audit events and sync runs: what an event's `action` or
//! `outcome` may say. Each serialises as the snake_case string stored audit records and the
//! MQTT event stream have always carried, so old records still read and consumers see no
//! change. Data only.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An enum whose variants serialise, display and debug-print as the given strings (`Debug`
/// quotes it, as it did when the field was a `String`, so logs read as before).
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every variant, for tests and documentation.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }
    };
}

vocabulary! {
    /// What the core decided on an authentication request.
    DecisionOutcome {
        Grant = "grant",
        Deny = "deny",
        /// Every hash worker was busy: the attempt was answered BUSY, not decided.
        Busy = "busy",
    }
}

vocabulary! {
    /// How a directory sync run ended.
    #[derive(Default)]
    SyncOutcome {
        /// The batch was written.
        Applied = "applied",
        /// The source had nothing new.
        #[default]
        Unchanged = "unchanged",
        /// The mass-deletion guard refused the batch.
        Refused = "refused",
        Failed = "failed",
        /// A batch interrupted by a crash was completed when the store opened.
        Completed = "completed",
    }
}

vocabulary! {
    /// An administrative change made over the control socket.
    AdminAction {
        UserAdd = "user_add",
        UserRemove = "user_remove",
        UserEnable = "user_enable",
        UserDisable = "user_disable",
        PinSet = "pin_set",
        DuressSet = "duress_set",
        DuressClear = "duress_clear",
        Import = "import",
        /// A PIN's validity moved without changing the PIN.
        ValiditySet = "validity_set",
        /// A sponsored guest was created (detail: the sponsor and the end).
        GuestAdd = "guest_add",
        /// A guest's end moved (detail: the sponsor and the new end).
        GuestExtend = "guest_extend",
        /// A guest was removed: by its sponsor or an admin, `expired`, or its sponsor was
        /// disabled or removed.
        GuestEnd = "guest_end",
        /// A control request its caller's credentials do not allow (detail: the uid and
        /// the `[control]` key that would allow it).
        Refused = "refused",
        /// An operator cleared a lockout counter (detail: the key and who).
        LockoutClear = "lockout_clear",
    }
}

vocabulary! {
    /// What happened to a queued email (never its body).
    MailAction {
        Queued = "queued",
        Sent = "sent",
        /// The relay refused it for good (5xx): not retried.
        Refused = "refused",
        /// Older than `[mail] max_age`: dropped unsent.
        Expired = "expired",
        /// The PIN it carried was replaced, expired or removed before it could be sent.
        Superseded = "superseded",
        /// The relay's quota was reached: the lane waits for its window.
        LanePaused = "lane_paused",
    }
}

vocabulary! {
    /// What the PIN lifecycle did on its own (sweeper, generation, directory PIN checks).
    PinAction {
        /// An expired PIN was deleted by the sweeper.
        Expired = "expired",
        /// A PIN was generated for a user who had none (generation = "auto").
        Generated = "generated",
        /// A directory PIN broke the policy (pin_policy = "warn": kept; "refuse": left out).
        WeakUpstream = "weak_upstream",
        /// A PIN sent after a forgotten-PIN request was used for the first time and
        /// replaced the user's previous PIN.
        FirstUse = "first_use",
        /// A limited-use PIN was used; the detail says how many uses are left.
        Used = "used",
        /// A person changed their own PIN at a device (`CHANGE`).
        SelfChanged = "self_changed",
        /// A self-change was refused by the PIN policy or uniqueness; nothing changed.
        ChangeRefused = "change_refused",
        /// A forgotten-PIN request was queued (the id as typed; it may name nobody).
        ResetRequested = "reset_requested",
        /// A forgotten-PIN request became a pending PIN and a mail in the reset lane.
        ResetIssued = "reset_issued",
        /// A forgotten-PIN request was dropped (unknown id, no address, disabled, a cap).
        ResetDropped = "reset_dropped",
        /// A self-service sign-in link was mailed (the detail: the link's lifetime).
        WebLinkSent = "web_link_sent",
        /// A person signed in to the self-service page (the detail: how).
        WebSignIn = "web_sign_in",
        /// A self-service link or code was refused (the detail says why); nothing changed.
        WebRefused = "web_refused",
        /// A person signed out of the self-service page.
        WebSignOut = "web_sign_out",
        /// A reveal link showed its new PIN (never the PIN itself).
        WebPinRevealed = "web_pin_revealed",
    }
}

vocabulary! {
    /// Something an operator should look at now (also on the MQTT event stream).
    AlarmAction {
        /// More forgotten-PIN requests in an hour than `[recovery] spray_alarm_per_hour`.
        ForgotSpray = "forgot_spray",
        /// More failed attempts at a device in an hour than `[lockout] alarm_per_hour`.
        FailureRate = "failure_rate",
    }
}

vocabulary! {
    /// Daemon lifecycle.
    DaemonAction {
        Started = "started",
        Stopped = "stopped",
    }
}

vocabulary! {
    /// What a door actuator did, or failed to do.
    DoorAction {
        Unlock = "unlock",
        UnlockExtended = "unlock_extended",
        ActuatorFailed = "actuator_failed",
        RelockFailed = "relock_failed",
    }
}

vocabulary! {
    /// How a print release ended.
    PrintAction {
        Released = "released",
        PrinterUnavailable = "printer_unavailable",
        ServerUnavailable = "server_unavailable",
    }
}

vocabulary! {
    /// A network card reader's event that is not yet a decision.
    CardAction {
        WaitingForPin = "waiting_for_pin",
        ReaderConnected = "reader_connected",
        ReaderDisconnected = "reader_disconnected",
        ReaderUnreachable = "reader_unreachable",
    }
}

vocabulary! {
    /// A serial keypad's event that is not yet a decision.
    KeypadAction {
        Connected = "connected",
        Disconnected = "disconnected",
        Unavailable = "unavailable",
        CardRead = "card_read",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + fmt::Display + fmt::Debug + PartialEq + Serialize + for<'a> Deserialize<'a>,
    {
        for &v in all {
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{v}\""), "serialised as its display string");
            assert_eq!(format!("{v:?}"), json, "debug-printed as the string it was");
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
        }
    }

    #[test]
    fn every_word_serialises_as_the_string_audit_records_have_always_carried() {
        round_trips(DecisionOutcome::ALL);
        round_trips(SyncOutcome::ALL);
        round_trips(AdminAction::ALL);
        round_trips(DaemonAction::ALL);
        round_trips(DoorAction::ALL);
        round_trips(PrintAction::ALL);
        round_trips(CardAction::ALL);
        round_trips(KeypadAction::ALL);
        let words = [
            SyncOutcome::Unchanged.as_str(),
            AdminAction::UserAdd.as_str(),
            DoorAction::UnlockExtended.as_str(),
            PrintAction::PrinterUnavailable.as_str(),
            CardAction::WaitingForPin.as_str(),
            KeypadAction::CardRead.as_str(),
        ];
        let expected = [
            "unchanged",
            "user_add",
            "unlock_extended",
            "printer_unavailable",
            "waiting_for_pin",
            "card_read",
        ];
        assert_eq!(words, expected);
    }
}
