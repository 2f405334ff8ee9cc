#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pinwarden_fuzz::config_toml::run(data));
