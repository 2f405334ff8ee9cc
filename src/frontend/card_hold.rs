//! Card-then-PIN, for every frontend that reads cards (TCP readers and terminals, serial
//! keypads): a card read at a device is held there for its holder's PIN, one per device (a
//! newer read replaces it), and taken by the PIN that follows within the window. Knows no
//! sockets and no store.

use crate::domain::{Credential, DeviceId, Pin};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Default)]
pub struct CardHold {
    pending: Mutex<HashMap<DeviceId, (String, Instant)>>,
}

impl CardHold {
    pub fn new() -> Self {
        CardHold::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<DeviceId, (String, Instant)>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `card` at `device` for `window`.
    pub fn hold(&self, device: &DeviceId, card: String, window: Duration) {
        self.lock()
            .insert(device.clone(), (card, Instant::now() + window));
    }

    /// Forgets a held card (an unreadable read replaces it with nothing).
    pub fn clear(&self, device: &DeviceId) {
        self.lock().remove(device);
    }

    /// The card read at `device` within its window, if any; consumed either way.
    pub fn take(&self, device: &DeviceId) -> Option<String> {
        self.lock()
            .remove(device)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(card, _)| card)
    }

    /// The credential for a PIN typed at `device`: card+PIN after a card read there. When a
    /// card is `required`, a PIN alone is checked against no card, so it is denied like any
    /// other wrong credential, at the same cost.
    pub fn with_pin(&self, device: &DeviceId, pin: Pin, required: bool) -> Credential {
        match self.take(device) {
            Some(card) => Credential::CardPin { card, pin },
            None if required => Credential::CardPin {
                card: String::new(),
                pin,
            },
            None => Credential::Pin(pin),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin() -> Pin {
        Pin::new("1234".to_string())
    }

    #[tokio::test(start_paused = true)]
    async fn a_card_waits_for_its_pin_within_the_window_once() {
        let (hold, door, desk) = (
            CardHold::new(),
            DeviceId("door".into()),
            DeviceId("desk".into()),
        );
        hold.hold(&door, "c1".into(), Duration::from_secs(5));
        assert!(matches!(
            hold.with_pin(&desk, pin(), false),
            Credential::Pin(_)
        ));
        assert!(
            matches!(hold.with_pin(&door, pin(), false), Credential::CardPin { card, .. } if card == "c1")
        );
        assert!(matches!(
            hold.with_pin(&door, pin(), false),
            Credential::Pin(_)
        ));
        hold.hold(&door, "c2".into(), Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(
            matches!(hold.with_pin(&door, pin(), true), Credential::CardPin { card, .. } if card.is_empty())
        );
        hold.hold(&door, "c3".into(), Duration::from_secs(5));
        hold.clear(&door);
        assert_eq!(hold.take(&door), None);
    }
}
