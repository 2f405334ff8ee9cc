#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pinwarden_fuzz::zigbee::run(data));
