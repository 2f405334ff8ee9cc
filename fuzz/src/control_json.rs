//! Control socket JSON, one message a line as the socket carries them: requests and import
//! feed lines (what the daemon decodes) and frames and responses (what the CLI decodes).
//! Invariant: a request or feed line that decodes re-encodes to one that decodes again.

use pinwarden::frontend::control::proto::{Frame, ImportFeed, Request, Response};

pub fn run(data: &[u8]) {
    for line in data.split(|&b| b == b'\n') {
        if let Ok(request) = serde_json::from_slice::<Request>(line) {
            let again = serde_json::to_vec(&request).expect("a request encodes");
            serde_json::from_slice::<Request>(&again).expect("a re-encoded request decodes");
        }
        if let Ok(feed) = serde_json::from_slice::<ImportFeed>(line) {
            let again = serde_json::to_vec(&feed).expect("a feed line encodes");
            serde_json::from_slice::<ImportFeed>(&again).expect("a re-encoded feed decodes");
        }
        if let Ok(frame) = serde_json::from_slice::<Frame>(line) {
            let again = serde_json::to_vec(&frame).expect("a frame encodes");
            serde_json::from_slice::<Frame>(&again).expect("a re-encoded frame decodes");
        }
        let _ = serde_json::from_slice::<Response>(line);
    }
}
