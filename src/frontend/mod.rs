//! Frontends turn bytes into `AuthRequest`s for the core and outcomes back into bytes. They
//! never touch the store. `tcp` serves terminals; `keypad` serves serial keypads; `control` serves the admin CLI; `mqtt` serves access controllers and
//! Zigbee keypads and publishes events.

pub mod card_hold;
pub mod control;
pub mod http;
pub mod keypad;
pub mod mqtt;
pub mod tcp;
pub mod throttle;
