//! Zigbee2MQTT keypad messages: the state decoder and the `set` encoder.
//! Invariants: an attempt's transaction is a number and is echoed in a valid JSON answer.

use pinwarden::frontend::mqtt::proto;
use serde_json::Value;

pub fn run(data: &[u8]) {
    let Ok(Some(attempt)) = proto::parse_zigbee(data) else {
        return;
    };
    assert!(attempt.transaction.is_number(), "transaction type");
    for granted in [true, false] {
        let bytes = proto::encode_zigbee(&attempt.transaction, granted);
        let back: Value = serde_json::from_slice(&bytes).expect("the answer is JSON");
        assert!(back
            .pointer("/arm_mode/transaction")
            .is_some_and(Value::is_number));
        // Compared as written: serde_json's default float parsing may land one ulp from the
        // shortest form it prints, so a float read back need not be equal.
        let text = String::from_utf8(bytes).expect("the answer is UTF-8");
        let echoed = format!("\"transaction\":{}", attempt.transaction);
        assert!(text.contains(&echoed), "the transaction is echoed");
    }
}
