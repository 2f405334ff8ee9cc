//! `cargo bench --bench api_tokens`: does an admin API token's check tell a wrong token
//! from a right one by time? (1) In process, `Tokens::find` over 8 configured tokens: a
//! right token (first and last entry) against wrong tokens (differing in the first or in
//! the last character, and of another length), BENCH_ROUNDS (200) rounds of 1 000 calls
//! each, interleaved: the median per call. (2) On the real release binary over loopback,
//! one keep-alive connection, BENCH_TRIES (500) of each interleaved: a wrong token (401)
//! and a right one on a route whose answer is a refusal without store work
//! (`DELETE /api/v1/users/..` → 400 after the token check): medians of the request time.

mod common;

use common::env_or as env;
use pinwarden::frontend::http::api::Tokens;
use pinwarden::frontend::http::TokenScope;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn token(i: usize) -> String {
    format!("token-{i}-0123456789abcdefghijklmnopq")
}

fn in_process(rounds: usize) {
    let secrets = (0..8)
        .map(|i| (format!("t{i}"), TokenScope::Read, Zeroizing::new(token(i))))
        .collect();
    let tokens = Tokens::from_secrets(secrets).unwrap();
    let right_first = token(0);
    let right_last = token(7);
    let mut wrong_first = token(0);
    wrong_first.replace_range(0..1, "X");
    let mut wrong_last = token(7);
    wrong_last.pop();
    wrong_last.push('X');
    let wrong_length = "short-wrong-token".to_string();
    let cases = [
        ("right (first entry)", right_first, true),
        ("right (last of 8)", right_last, true),
        ("wrong, first char differs", wrong_first, false),
        ("wrong, last char differs", wrong_last, false),
        ("wrong, other length", wrong_length, false),
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (i, (_, presented, right)) in cases.iter().enumerate() {
            let started = Instant::now();
            for _ in 0..1000 {
                let found = tokens.find(std::hint::black_box(presented));
                assert_eq!(found.is_some(), *right);
            }
            samples[i].push(started.elapsed() / 1000);
        }
    }
    println!("Tokens::find, 8 tokens, {rounds} rounds of 1000 calls, interleaved");
    println!("| presented | median per call |\n|---|---|");
    for ((name, _, _), s) in cases.iter().zip(samples.iter_mut()) {
        println!("| {name} | {} ns |", median(s).as_nanos());
    }
}

fn over_http(tries: usize) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ops.token");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&file)
            .unwrap();
        f.write_all(token(0).as_bytes()).unwrap();
    }
    let http = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let config = dir.path().join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n[[device]]\nid = \"p\"\nkind = \"printer\"\nallow_groups = [\"staff\"]\n\
             [[tcp]]\nlisten = \"127.0.0.1:0\"\n[[tcp.terminal]]\naddress = \"127.0.0.1\"\ndevice = \"p\"\n\
             [http]\nlisten = \"{http}\"\n[[http.token]]\nname = \"ops\"\nfile = \"{}\"\nscope = \"admin\"\n",
            dir.path().join("var").display(),
            file.display()
        ),
    )
    .unwrap();
    let daemon = common::Bench::start(config, |s| s["http"].is_string());
    let stream = TcpStream::connect(http).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut ask = |bearer: &str, expect: &str| {
        let started = Instant::now();
        write!(
            writer,
            "DELETE /api/v1/users/.. HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer {bearer}\r\n\r\n"
        )
        .unwrap();
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let elapsed = started.elapsed();
        assert!(status.contains(expect), "{status}");
        elapsed
    };
    let right = token(0);
    let mut wrong = token(0);
    wrong.pop();
    wrong.push('X');
    for _ in 0..20 {
        ask(&right, "400");
        ask(&wrong, "401");
    }
    let (mut r, mut w) = (Vec::new(), Vec::new());
    for _ in 0..tries {
        r.push(ask(&right, "400"));
        w.push(ask(&wrong, "401"));
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("\nHTTP request time on loopback, {tries} of each, interleaved on one connection");
    println!("| token | answer | median |\n|---|---|---|");
    println!(
        "| right | 400 (refused after the check) | {:.1} µs |",
        us(median(&mut r))
    );
    println!("| wrong (last char) | 401 | {:.1} µs |", us(median(&mut w)));
    daemon.stop();
}

fn main() {
    in_process(env("BENCH_ROUNDS", 200));
    over_http(env("BENCH_TRIES", 500));
}
