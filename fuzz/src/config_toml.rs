//! The configuration file: TOML parsing and every validation `Config::parse` makes, then
//! the effective-config rendering `check-config` prints.
//! Invariant: an accepted configuration renders.

use pinwarden::config::Config;

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::parse(text) {
        assert!(
            !config.render().starts_with("# cannot render"),
            "render failed"
        );
    }
}
