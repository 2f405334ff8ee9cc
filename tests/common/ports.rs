//! Free loopback ports for the peers the tests start (mosquitto, slapd). Binding port 0 and
//! releasing it hands out a port from the kernel's ephemeral range, which the kernel may give
//! to somebody else (another test's daemon, any outgoing connection) before the peer binds
//! it; a random port below that range is only ever taken by an explicit choice like this one,
//! and the peers retry with another port when they lose that rare race.

use std::net::TcpListener;

pub fn free_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(0);
    if low < 12_000 {
        // No room below the ephemeral range: take what the kernel gives.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        return listener.local_addr().unwrap().port();
    }
    loop {
        let port = 10_000 + rand::random::<u16>() % (low - 10_000);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
