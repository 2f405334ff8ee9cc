//! A terminal's `CHANGE` and `FORGOT` lines: hands them to the core and encodes its answer.
//! Neither PIN is echoed or logged; a FORGOT answer is the same for every id.

use super::proto::{self, Reply};
use crate::core::selfservice::{ChangeOutcome, ChangeRequest, ForgotOutcome, ForgotRequest};
use crate::core::Core;
use crate::domain::{DeviceId, Origin, Pin, Timestamp};

pub(super) async fn change(
    core: &Core,
    device: &DeviceId,
    origin: Origin,
    (id, old, new): (String, Pin, Pin),
) -> Vec<u8> {
    let request = ChangeRequest {
        device: device.clone(),
        origin,
        id,
        old,
        new,
        received_at: Timestamp::now(),
    };
    match core.change_pin(request).await {
        ChangeOutcome::Changed => proto::encode(&Reply::Changed),
        // The wire is uniform: a lockout is a DENY like any other.
        ChangeOutcome::Denied | ChangeOutcome::LockedOut => proto::encode(&Reply::Deny),
        ChangeOutcome::Busy => proto::encode(&Reply::Busy),
        ChangeOutcome::Refused(why) => proto::encode(&Reply::Refused(&why)),
        ChangeOutcome::NotAllowed => proto::encode(&Reply::NotAllowed),
    }
}

pub(super) async fn forgot(core: &Core, device: &DeviceId, origin: Origin, id: String) -> Vec<u8> {
    let request = ForgotRequest {
        device: device.clone(),
        origin,
        id,
        received_at: Timestamp::now(),
    };
    match core.forgot_pin(request).await {
        ForgotOutcome::Accepted => proto::encode(&Reply::ForgotAccepted),
        ForgotOutcome::Busy => proto::encode(&Reply::Busy),
        ForgotOutcome::NotAllowed => proto::encode(&Reply::NotAllowed),
    }
}
