//! Full-fetch throughput of the LDAP source against a real slapd: 10 000 and 100 000
//! generated users, in syncrepl mode (one sync search) and poll mode (paged, 1000 a page).
//! Run: `cargo bench --bench ldap_fetch` (optionally `-- 10000` for one size).

#[path = "../tests/common/slapd.rs"]
mod slapd;

use pinwarden::sync::ldap::{LdapSettings, LdapSource, Mode};
use pinwarden::sync::source::Source;
use std::time::{Duration, Instant};

fn generated(count: usize) -> String {
    let mut out = String::with_capacity(count * 220);
    for i in 0..count {
        out.push_str(&format!(
            "dn: uid=u{i:07},ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\n\
             objectClass: pinwardenUser\nuid: u{i:07}\ncn: User {i}\nsn: U\n\
             mail: u{i}@example.org\npinwardenPin: {:06}\npinwardenCard: {}\n\n",
            (i * 7919) % 1_000_000,
            100_000 + i
        ));
    }
    out
}

fn settings(server: &slapd::Slapd, poll: bool) -> LdapSettings {
    let mut s = LdapSettings::openldap(&server.url, "ou=people,dc=example,dc=org");
    s.bind_dn = Some(slapd::BIND_DN.to_owned());
    s.bind_password = slapd::BIND_PW.to_owned();
    s.timeout = Duration::from_secs(60);
    if poll {
        s.mode = Mode::Poll {
            change_attribute: "entryCSN".to_owned(),
            high_water_attribute: None,
            server_id_attribute: "namingContexts".to_owned(),
            server_id_entry_attribute: None,
            full_every: Duration::from_secs(3600),
        };
    }
    s
}

fn main() {
    let sizes: Vec<usize> = match std::env::args().nth(1).and_then(|a| a.parse().ok()) {
        Some(n) => vec![n],
        None => vec![10_000, 100_000],
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for n in sizes {
        let load = Instant::now();
        let server = slapd::Slapd::start_with(slapd::Options {
            ldif: generated(n),
            ..slapd::Options::default()
        });
        println!("{n} entries loaded with slapadd in {:.1?}", load.elapsed());
        for poll in [false, true] {
            let source = LdapSource::new(settings(&server, poll)).unwrap();
            let start = Instant::now();
            let batch = rt.block_on(source.fetch(None)).expect("fetch");
            let took = start.elapsed();
            assert_eq!(batch.changed.len(), n + 3);
            let mode = if poll {
                "poll (paged 1000)"
            } else {
                "syncrepl"
            };
            println!(
                "full fetch, {mode:18} {n:>7} users: {took:>8.2?}  {:>8.0} entries/s",
                batch.changed.len() as f64 / took.as_secs_f64()
            );
        }
    }
}
