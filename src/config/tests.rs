use super::*;
use crate::action::print::{CupsAuthConfig, CupsServer};
use crate::crypto::HashParams;
use crate::frontend::tcp::settings::TcpMode;

const BUNDLED: &str = include_str!("../../config/pinwarden.toml");

fn err(text: &str) -> String {
    Config::parse(text).expect_err("should be rejected")
}

fn minimal(extra: &str) -> String {
    format!(
        "state_dir = \"/tmp/pw\"\n{extra}\n[[device]]\nid = \"p\"\nkind = \"printer\"\nallow_groups = [\"staff\"]\n"
    )
}

/// A printer device with a queue, and `cups` (a `[cups]` block or nothing).
fn printer_with_cups(cups: &str) -> String {
    format!(
        "{}\n{cups}\n",
        minimal("").replace(
            "kind = \"printer\"\n",
            "kind = \"printer\"\nqueue = \"q\"\n"
        )
    )
}

#[test]
fn bundled_config_is_valid_and_matches_the_issue() {
    let c = Config::parse(BUNDLED).expect("bundled config parses");
    assert!(c.state_dir.ends_with("var"));
    assert_eq!(c.control_socket, c.state_dir.join("control.sock"));
    assert_eq!(c.tcp.len(), 1);
    assert_eq!(c.tcp[0].listen, Some("127.0.0.1:7410".parse().unwrap()));
    let printer = &c.tcp[0].terminals[&"127.0.0.1".parse().unwrap()];
    assert_eq!(c.devices[printer].allow_groups, ["staff", "guests"]);
    assert_eq!(
        c.devices[&DeviceId("front-door".into())].allow_groups,
        ["staff"]
    );
    assert_eq!(
        c.devices[&DeviceId("front-door".into())].kind,
        DeviceKind::Door
    );
    assert_eq!(c.lockout, LockoutPolicy::default());
    assert_eq!(c.security.argon2, HashParams::default());
    assert!(c.render().contains("pepper"));
}

#[test]
fn errors_name_the_key_and_the_fix() {
    #[rustfmt::skip]
    let table = [
        (minimal("[policy]\nmin_length = 3"), "policy.min_length = 3 is below the floor of 4"),
        (minimal("[policy]\ncharset = \"emoji\""), "policy.charset"),
        (minimal("[policy]\nmin_length = 8\nmax_length = 6"), "policy"),
        (minimal("[policy]\ndefault_expiry = \"3y\""), "policy.default_expiry"),
        (minimal("[lockout]\ninitial_backoff = \"soon\""), "lockout.initial_backoff"),
        (minimal("[lockout]\nuser_max_failures = 0"), "lockout.user_max_failures"),
        (minimal("[security]\nargon2_memory_kib = 1"), "security.argon2_*"),
        (minimal("[store]\ncache_capacity_mib = 0"), "store.cache_capacity_mib"),
        (minimal("[log]\nlevel = \"loud\""), "log.level"),
        (minimal("[[tcp]]\nlisten = \"nowhere\""), "tcp[0].listen"),
        (minimal("[[tcp]]\nlisten = \"127.0.0.1:0\""), "tcp[0] has no [[tcp.terminal]]"),
        (minimal("[[tcp]]\nlisten = \"127.0.0.1:0\"\n[[tcp.terminal]]\naddress = \"127.0.0.1\"\ndevice = \"nope\""), "tcp[0].terminal[0].device = \"nope\""),
        (minimal("[[tcp]]\nlisten = \"127.0.0.1:0\"\n[[tcp.terminal]]\naddress = \"localhost\"\ndevice = \"p\""), "tcp[0].terminal[0].address"),
        (minimal("colour = \"blue\""), "unknown field `colour`"),
        (minimal("[security]\npepper_file = \"a\"\npepper_credential = \"b\""), "both set"),
        ("state_dir = \"/tmp\"\n[[device]]\nid = \"d\"\nkind = \"lift\"\nallow_groups = [\"x\"]".into(), "device[0].kind"),
        ("state_dir = \"/tmp\"\n[[device]]\nid = \"d\"\nkind = \"door\"".into(), "device[0].allow_groups is empty"),
        ("state_dir = \"/tmp\"\n[[device]]\nid = \"d\"\nkind = \"door\"\nallow_groups = [\"x\"]\n[[device]]\nid = \"d\"\nkind = \"door\"\nallow_groups = [\"x\"]".into(), "declared twice"),
        ("[log]\nlevel = \"info\"".into(), "missing field `state_dir`"),
    ];
    for (text, expected) in table {
        let message = err(&text);
        assert!(
            message.contains(expected),
            "expected `{expected}` in: {message}"
        );
    }
}

#[test]
fn pepper_credential_resolves_only_under_systemd() {
    let c = Config::parse(&minimal(
        "[security]\npepper_credential = \"pinwarden-pepper\"",
    ))
    .unwrap();
    // The CLI must load this config outside systemd; only the daemon resolves it.
    if std::env::var_os("CREDENTIALS_DIRECTORY").is_none() {
        let e = c.security.pepper.resolve().unwrap_err();
        assert!(e.contains("LoadCredential=pinwarden-pepper"), "{e}");
    }
    assert!(err(&minimal("[security]\npepper_credential = \"/etc/x\"")).contains("not a path"));
}

#[test]
fn relative_paths_are_resolved_without_dot_components() {
    let c = Config::parse(&minimal("")).unwrap();
    assert_eq!(c.state_dir, PathBuf::from("/tmp/pw"));
    let c = Config::parse(&minimal("").replace("/tmp/pw", "./var")).unwrap();
    assert!(c.state_dir.is_absolute());
    assert!(!c.state_dir.to_string_lossy().contains("/./"));
}

fn door_base(extra: &str) -> String {
    format!(
        "state_dir = \"/tmp/pw\"\n{extra}\n[[device]]\nid = \"p\"\nkind = \"printer\"\nallow_groups = [\"staff\"]\n[[device]]\nid = \"d\"\nkind = \"door\"\nallow_groups = [\"staff\"]\n"
    )
}

#[test]
fn access_errors_name_the_key() {
    #[rustfmt::skip]
    let table = [
        ("time_zone = \"Mars/Olympus\"", "time_zone: unknown time zone"),
        ("[[schedule]]\nname = \"s\"\nwindows = [\"Mon-Fry 07:00-19:00\"]", "schedule[0] (\"s\")"),
        ("[[group]]\nname = \"g\"\nschedule = \"nope\"", "group[0].schedule = \"nope\" is not a declared [[schedule]]"),
        ("[[keypad]]\nport = \"/dev/x\"\ndevice = \"p\"", "keypad[0].device = \"p\" is a printer"),
        ("[[keypad]]\nport = \"/dev/x\"\ndevice = \"d\"\nframing = \"morse\"", "keypad[0].framing"),
        ("[[keypad]]\nport = \"/dev/x\"\ndevice = \"d\"\ninter_key_timeout = \"10ms\"", "keypad[0].inter_key_timeout"),
        ("[[door]]\ndevice = \"d\"\nactuator = \"serial\"", "door[0].port is required"),
        ("[[door]]\ndevice = \"d\"\nactuator = \"serial\"\nport = \"/dev/x\"", "door[0].on is required"),
        ("[[door]]\ndevice = \"d\"\nactuator = \"command\"", "door[0].command is required"),
        ("[[door]]\ndevice = \"d\"\nactuator = \"none\"\npulse = \"1h\"", "door[0].pulse"),
        ("[[door]]\ndevice = \"d\"\nactuator = \"none\"\n[[door]]\ndevice = \"d\"\nactuator = \"none\"", "one actuator per door"),
        ("[[door]]\ndevice = \"zz\"\nactuator = \"none\"", "door[0].device = \"zz\" is not a declared [[device]]"),
    ];
    for (extra, expected) in table {
        let message = err(&door_base(extra));
        assert!(
            message.contains(expected),
            "expected `{expected}` in: {message}"
        );
    }
    let fail_open_printer = door_base("").replace(
        "kind = \"printer\"",
        "kind = \"printer\"\nfail_mode = \"open\"",
    );
    assert!(err(&fail_open_printer).contains("applies to doors only"));
    let ok = door_base("time_zone = \"Europe/Berlin\"\n[[schedule]]\nname = \"office\"\nwindows = [\"Mon-Fri 07:00-19:00\"]\nholidays = [\"2026-12-25\"]\n[[group]]\nname = \"cleaners\"\nschedule = \"office\"\n[[keypad]]\nport = \"/dev/serial/by-id/kp\"\ndevice = \"d\"\nframing = \"wiegand8\"\n[[door]]\ndevice = \"d\"\nactuator = \"serial\"\nport = \"/dev/serial/by-id/relay\"\non = [0xA0, 1, 1, 0xA2]\noff = [0xA0, 1, 0, 0xA1]")
        .replace("kind = \"door\"", "kind = \"door\"\nschedule = \"office\"\nfail_mode = \"open\"");
    let c = Config::parse(&ok).unwrap();
    assert_eq!(c.keypads.len(), 1);
    assert_eq!(c.doors.len(), 1);
    assert!(c.devices[&DeviceId("d".into())].fail_open);
    assert!(c.render().contains("Mon-Fri 07:00-19:00"));
}

#[test]
fn print_and_card_reader_keys() {
    let c = Config::parse(&format!(
        "{}\n[cups]\nserver = \"127.0.0.1:6310\"\nauth = \"basic\"\nusername = \"pw\"\n\
         password_file = \"/etc/pw/cups\"\n\
         [[tcp]]\nmode = \"card\"\nlisten = \"127.0.0.1:7411\"\n[tcp.card]\ninput = \"hex\"\n\
         byte_order = \"reverse\"\ncard_then_pin = \"10s\"\n\
         [[tcp.terminal]]\naddress = \"10.0.0.31\"\ndevice = \"p\"\n\
         [[tcp]]\nmode = \"dial\"\n[tcp.card]\nregex = '([0-9]+)'\n\
         [[tcp.terminal]]\naddress = \"10.0.0.32:4001\"\ndevice = \"p\"\n",
        minimal("").replace(
            "kind = \"printer\"\n",
            "kind = \"printer\"\nqueue = \"lobby\"\nhold_queue = \"hold\"\n"
        )
    ))
    .expect("parses");
    assert_eq!(c.print_queues[0].queue, "lobby");
    assert_eq!(c.print_queues[0].hold_queue.as_deref(), Some("hold"));
    assert_eq!(
        c.cups.as_ref().unwrap().server,
        CupsServer::Tcp("127.0.0.1:6310".into())
    );
    let local = Config::parse(&printer_with_cups("")).expect("a local CUPS by default");
    let cups = local.cups.unwrap();
    assert_eq!(
        cups.server,
        CupsServer::Socket("/run/cups/cups.sock".into()),
        "CUPS on this host is reached over its domain socket"
    );
    assert!(matches!(cups.auth, CupsAuthConfig::LocalCertificate { .. }));
    let peer = Config::parse(&printer_with_cups("[cups]\nauth = \"peer-credentials\"")).unwrap();
    assert!(matches!(
        peer.cups.unwrap().auth,
        CupsAuthConfig::PeerCredentials
    ));
    assert_eq!(c.tcp[0].mode, TcpMode::Card);
    assert_eq!(
        c.tcp[0].card.as_ref().unwrap().card_then_pin,
        Some(Duration::from_secs(10))
    );
    assert_eq!(c.tcp[1].listen, None);
    assert_eq!(c.tcp[1].dial.len(), 1);
    assert!(
        !c.render().contains("password ="),
        "only the password file is named"
    );
    assert!(
        Config::parse(BUNDLED).unwrap().cups.is_none(),
        "no queue, no CUPS"
    );

    let printer = |extra: &str| {
        minimal("").replace(
            "kind = \"printer\"\n",
            &format!("kind = \"printer\"\n{extra}\n"),
        )
    };
    let tcp = |block: &str| {
        format!(
            "{}\n[[tcp]]\n{block}\n[[tcp.terminal]]\naddress = \"10.0.0.1\"\ndevice = \"p\"\n",
            minimal("")
        )
    };
    #[rustfmt::skip]
    let table = [
        (printer("hold_queue = \"hold\""), "device[0].hold_queue needs device[0].queue"),
        (printer("queue = \"a b\""), "device[0].queue"),
        (format!("{}\n[cups]\nauth = \"kerberos\"", printer("queue = \"q\"")), "cups.auth = \"kerberos\""),
        (format!("{}\n[cups]\nauth = \"basic\"", printer("queue = \"q\"")), "cups.username is missing"),
        (format!("{}\n[cups]\nserver = \"http://cups/\"", printer("queue = \"q\"")), "cups.server"),
        (printer_with_cups("[cups]\nserver = \"127.0.0.1:631\""), "cups.username is missing"),
        (printer_with_cups("[cups]\nserver = \"127.0.0.1:631\"\nauth = \"local-certificate\""), "works only on CUPS's domain socket"),
        (printer_with_cups("[cups]\nserver = \"cups:631\"\nauth = \"peer-credentials\""), "works only on CUPS's domain socket"),
        (tcp("mode = \"card\"\nlisten = \"127.0.0.1:0\""), "needs a [tcp.card] block"),
        (tcp("mode = \"radio\"\nlisten = \"127.0.0.1:0\""), "tcp[0].mode = \"radio\""),
        (tcp("mode = \"dial\"\nlisten = \"127.0.0.1:0\"\n[tcp.card]"), "a dial block connects out"),
        (tcp("mode = \"dial\"\n[tcp.card]"), "needs the reader's ADDRESS:PORT"),
        (tcp("mode = \"card\"\nlisten = \"127.0.0.1:0\"\n[tcp.card]\nregex = \"(\""), "tcp[0].card.regex"),
        (tcp("mode = \"card\"\nlisten = \"127.0.0.1:0\"\n[tcp.card]\ninput = \"octal\""), "tcp[0].card.input"),
        (tcp("mode = \"card\"\nlisten = \"127.0.0.1:0\"\n[tcp.card]\nbyte_order = \"big\""), "tcp[0].card.byte_order"),
    ];
    for (text, expected) in table {
        let message = err(&text);
        assert!(
            message.contains(expected),
            "expected `{expected}` in: {message}"
        );
    }
}
