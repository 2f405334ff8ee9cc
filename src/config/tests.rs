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
    assert_eq!(c.store.reserve_mib, 8);
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
    assert_eq!(c.odds, crate::core::odds::OddsSettings::default());
    assert_eq!(
        c.devices[printer].credentials,
        [
            crate::core::odds::Mode::IdPin,
            crate::core::odds::Mode::Card
        ]
    );
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
        (minimal("[lockout]\nmax_daily_odds = 1.5"), "lockout.max_daily_odds = 1.5"),
        (minimal("[lockout]\nassumed_users = 0"), "lockout.assumed_users = 0"),
        (minimal("[lockout]\nsource_failures = 6"), "lockout.source_failures = 6: use 1 to lockout.free_failures (5)"),
        (minimal("[lockout]\nforgive_every = \"2h\""), "raise max_backoff to at least forgive_every"),
        (minimal("[lockout]\nuser_lock = \"2d\""), "lockout.user_lock"),
        (minimal("").replace("kind = \"printer\"\n", "kind = \"printer\"\ncredentials = [\"pin+card\"]\n"), "device[0].credentials: \"pin+card\" is not a credential mode"),
        (minimal("").replace("kind = \"printer\"\n", "kind = \"printer\"\ncredentials = []\n"), "device[0].credentials is empty"),
        (minimal("[security]\nargon2_memory_kib = 1"), "security.argon2_*"),
        (minimal("[store]\ncache_capacity_mib = 0"), "store.cache_capacity_mib"),
        (minimal("[store]\nreserve_mib = 5000"), "store.reserve_mib = 5000 is too large"),
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
        (tcp("listen = \"127.0.0.1:0\"\nmax_connections = 4\nmax_per_source = 5"), "tcp[0].max_per_source = 5: use 1 to max_connections (4)"),
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

#[test]
fn http_tokens_on_plain_http_need_loopback_tls_or_a_proxy() {
    let http = |block: &str| {
        format!(
            "{}\n[http]\n{block}\n[[http.token]]\nname = \"ops\"\nfile = \"/t\"\nscope = \"admin\"\n",
            minimal("")
        )
    };
    let message = err(&http("listen = \"0.0.0.0:8080\""));
    assert!(
        message.contains("allow_plain_http = true") && message.contains("tls_cert"),
        "{message}"
    );
    assert!(Config::parse(&http("listen = \"127.0.0.1:8080\"")).is_ok());
    let proxied = Config::parse(&http("listen = \"0.0.0.0:8080\"\nallow_plain_http = true"));
    assert!(proxied.is_ok(), "{:?}", proxied.err());
    let no_tokens = format!("{}\n[http]\nlisten = \"0.0.0.0:8080\"\n", minimal(""));
    let c = Config::parse(&no_tokens).unwrap();
    assert_eq!(c.http.as_ref().unwrap().max_per_source, 16);
    let over = err(&http(
        "listen = \"127.0.0.1:0\"\nmax_connections = 4\nmax_per_source = 5",
    ));
    assert!(
        over.contains("http.max_per_source = 5: use 1 to max_connections (4)"),
        "{over}"
    );
}

const SMTP: &str = "[smtp]\nhost = \"smtp.example.org\"\nfrom = \"print@example.org\"";

#[test]
fn lifecycle_keys_parse_into_the_lifecycle_settings() {
    use crate::lifecycle::settings::{Generation, WeakPins};
    let day = Duration::from_secs(86_400);
    let c = Config::parse(&minimal("")).unwrap();
    assert_eq!(c.lifecycle.generation, Generation::Admin);
    assert_eq!(c.lifecycle.site_validity, None);
    assert!(c.lifecycle.expiry_warning.is_empty());
    assert_eq!(c.lifecycle.weak_upstream, WeakPins::Warn);
    assert_eq!(c.lifecycle.cooling_off, 365 * day);
    let c = Config::parse(&minimal(
        "[policy]\ngeneration = \"auto\"\npin_validity = \"30d\"\nexpiry_warning = [\"1d\", \"7d\", \"12h\"]\npin_policy = \"refuse\"\ncooling_off = \"90d\"\n[[group]]\nname = \"guests\"\npin_validity = \"24h\"",
    ))
    .unwrap();
    let lc = &c.lifecycle;
    assert_eq!(lc.generation, Generation::Auto);
    assert_eq!(lc.site_validity, Some(30 * day));
    assert_eq!(lc.group_validity, [("guests".to_string(), day)]);
    assert_eq!(lc.expiry_warning, [7 * day, day, day / 2], "longest first");
    assert_eq!(lc.weak_upstream, WeakPins::Refuse);
    assert_eq!(lc.cooling_off, 90 * day);
    let shown = c.render();
    assert!(shown.contains("generation = \"auto\""), "{shown}");
}

#[test]
fn mail_keys_parse_into_the_mail_settings() {
    let c = Config::parse(&minimal("")).unwrap();
    assert!(!c.mail_declared);
    assert_eq!(c.mail.time_zone, "UTC");
    assert_eq!((c.mail.per_minute, c.mail.per_day), (None, None));
    let c = Config::parse(&minimal(
        "time_zone = \"Europe/Berlin\"\n[mail]\ntemplates = \"/etc/pinwarden/templates\"\ncustomer_name = \"Acme\"\ndate_format = \"%d.%m.%Y %H:%M\"\npreset = \"microsoft365\"\nper_day = 5000\nmax_age = \"1d\"",
    ))
    .unwrap();
    assert!(c.mail_declared);
    let m = &c.mail;
    assert_eq!(m.templates, Some(PathBuf::from("/etc/pinwarden/templates")));
    assert_eq!(m.customer_name, "Acme");
    assert_eq!(m.time_zone, "Europe/Berlin");
    assert_eq!(m.date_format, "%d.%m.%Y %H:%M");
    assert_eq!(m.per_minute, Some(30), "from the preset");
    assert_eq!(
        m.per_day,
        Some(5000),
        "an explicit value overrides the preset"
    );
    assert_eq!(m.max_age, Duration::from_secs(86_400));
    let c = Config::parse(&minimal("[mail]\npreset = \"google\"")).unwrap();
    assert_eq!((c.mail.per_minute, c.mail.per_day), (Some(60), Some(2000)));
}

#[test]
fn lifecycle_and_mail_errors_name_the_key_and_the_fix() {
    #[rustfmt::skip]
    let table = [
        ("[policy]\ngeneration = \"magic\"", "policy.generation = \"magic\": use \"admin\""),
        ("[policy]\npin_policy = \"ignore\"", "policy.pin_policy = \"ignore\": use \"warn\""),
        ("[policy]\npin_validity = \"72h\"", "policy.pin_validity: `72h` is out of range"),
        ("[policy]\npin_validity = \"181d\"", "policy.pin_validity: `181d` is out of range"),
        ("[policy]\npin_validity = \"never\"", "cannot be never"),
        ("[policy]\nexpiry_warning = [\"soon\"]", "policy.expiry_warning \"soon\""),
        ("[policy]\nexpiry_warning = [\"0d\"]", "policy.expiry_warning \"0d\" is out of range"),
        ("[policy]\nexpiry_warning = [\"1d\", \"24h\"]", "lists \"24h\" twice (also as \"1d\")"),
        ("[policy]\ncooling_off = \"forever\"", "policy.cooling_off = \"forever\""),
        ("[policy]\ncooling_off = \"4000d\"", "policy.cooling_off = \"4000d\" is too long"),
        ("[[group]]\nname = \"g\"\npin_validity = \"2w\"", "group[0].pin_validity"),
        ("[policy]\nlifetime = \"1d\"", "unknown field `lifetime`"),
        ("[mail]\npreset = \"yahoo\"", "mail.preset = \"yahoo\": use \"microsoft365\""),
        ("[mail]\nper_minute = 0", "mail.per_minute = 0 would never send"),
        ("[mail]\nmax_age = \"90d\"", "mail.max_age is out of range"),
        ("[mail]\nmax_age = \"later\"", "mail.max_age = \"later\""),
        ("[mail]\ndate_format = \"\"", "mail.date_format"),
        ("[mail]\ncustomer_name = \"A\\nB\"", "mail.customer_name must be one line"),
        ("[mail]\ntemplates = \" \"", "mail.templates is empty"),
        ("[mail]\ncolour = \"red\"", "unknown field `colour`"),
    ];
    for (extra, expected) in table {
        let message = err(&minimal(extra));
        assert!(
            message.contains(expected),
            "expected `{expected}` in: {message}"
        );
    }
}

fn warnings_of(extra: &str) -> Vec<String> {
    super::warnings(&Config::parse(&minimal(extra)).unwrap())
}

#[test]
fn warnings_name_settings_that_do_not_work_together() {
    assert!(warnings_of("").is_empty());
    assert!(warnings_of(SMTP).is_empty());
    let w = warnings_of("[policy]\ngeneration = \"auto\"");
    assert!(
        w.len() == 1 && w[0].contains("generation = \"auto\"") && w[0].contains("[smtp]"),
        "{w:?}"
    );
    let w = warnings_of("[[group]]\nname = \"guests\"\npin_validity = \"24h\"");
    assert!(
        w.len() == 1 && w[0].contains("\"guests\" pin_validity = \"1d\""),
        "{w:?}"
    );
    let w = warnings_of("[policy]\npin_validity = \"30d\"");
    assert!(
        w.len() == 1 && w[0].contains("policy.pin_validity = \"30d\""),
        "{w:?}"
    );
    let w = warnings_of("[policy]\nexpiry_warning = [\"7d\"]");
    assert!(
        w.len() == 1 && w[0].contains("policy.expiry_warning"),
        "{w:?}"
    );
    let w = warnings_of("[mail]\ncustomer_name = \"Acme\"");
    assert!(
        w.len() == 1 && w[0].contains("[mail] is set but there is no [smtp]"),
        "{w:?}"
    );
    assert!(warnings_of(&format!(
        "[policy]\ngeneration = \"auto\"\npin_validity = \"30d\"\n{SMTP}\n[mail]"
    ))
    .is_empty());
}

#[test]
fn self_service_that_cannot_work_is_warned_about() {
    let w = warnings_of("[recovery]\nper_person_per_day = 2");
    assert!(
        w.len() == 1 && w[0].contains("policy.user_can_change is off"),
        "{w:?}"
    );
    assert!(warnings_of("[recovery]\n[policy]\nuser_can_change = true").is_empty());
    assert!(warnings_of(&format!("[recovery]\n{SMTP}")).is_empty());
    let w = warnings_of(&format!("[recovery]\nenabled = false\n{SMTP}"));
    assert_eq!(w.len(), 1, "{w:?}");
    let c = Config::parse(&minimal("")).unwrap();
    assert!(!c.self_service.user_can_change, "off by default");
    assert_eq!(c.self_service.recovery.per_person_per_day, 3);
    let e = err(&minimal("[recovery]\nper_device_per_day = 0"));
    assert!(e.contains("recovery.enabled = false"), "{e}");
}

#[test]
fn a_reminder_no_forced_validity_outlives_is_named_with_the_validity() {
    let w = warnings_of(&format!(
        "[policy]\npin_validity = \"30d\"\nexpiry_warning = [\"7d\", \"1d\"]\n[[group]]\nname = \"guests\"\npin_validity = \"24h\"\n{SMTP}"
    ));
    assert_eq!(w.len(), 2, "7d and 1d never fire for guests: {w:?}");
    assert!(
        w[1].contains("policy.expiry_warning \"1d\"")
            && w[1].contains("[[group]] \"guests\" pin_validity = \"1d\""),
        "{w:?}"
    );
    let w = warnings_of(&format!(
        "[policy]\npin_validity = \"5d\"\nexpiry_warning = [\"7d\", \"5d\", \"1d\"]\n{SMTP}"
    ));
    assert_eq!(w.len(), 2, "7d and 5d never fire: {w:?}");
    assert!(
        w.iter().all(|w| w.contains("policy.pin_validity = \"5d\"")),
        "{w:?}"
    );
}

#[test]
fn the_bundled_configs_pass_their_own_odds_check() {
    let production = include_str!("../../config/pinwarden.production.toml");
    for text in [BUNDLED, production] {
        let c = Config::parse(text).expect("parses");
        let devices = odds::assess(&c, &|_| c.odds.assumed_users);
        assert_eq!(odds::problems(&c, &devices), Vec::<String>::new());
    }
    // Left at its defaults, a PIN-only terminal is refused with the fixes named.
    let c = Config::parse(&minimal(
        "[[tcp]]\nlisten = \"127.0.0.1:0\"\n[[tcp.terminal]]\naddress = \"127.0.0.1\"\ndevice = \"p\"",
    ))
    .unwrap();
    let devices = odds::assess(&c, &|_| 1000);
    let problems = odds::problems(&c, &devices);
    assert_eq!(problems.len(), 1, "{problems:?}");
    for part in [
        "device \"p\": PIN only gives an attacker 10.064 % a day with 1000 users (106 \
         guesses a day as configured)",
        "at the slowest budget the daemon derives",
        // 8 digits need no more than the budget the daemon derives (100 a day).
        "min_length = 8",
        "credentials = [\"id_pin\"]",
    ] {
        assert!(problems[0].contains(part), "{part}: {}", problems[0]);
    }
    // 8-digit PINs: the configured 106 guesses a day are above the ceiling at 1 000
    // users, the derived budget (forgive_every 15m55s, 100 a day) is not: no error.
    let c8 = Config::parse(&minimal(
        "[policy]\nmin_length = 8\ngenerated_length = 8\n[[tcp]]\nlisten = \"127.0.0.1:0\"\n\
         [[tcp.terminal]]\naddress = \"127.0.0.1\"\ndevice = \"p\"",
    ))
    .unwrap();
    let devices = odds::assess(&c8, &|_| 1000);
    assert_eq!(odds::problems(&c8, &devices), Vec::<String>::new());
    let line = odds::summary(&devices[0]);
    assert!(
        line.contains("106 guesses/day configured, 100 enforced (forgive_every = \"955s\"")
            && line.contains("PIN only 0.1 %"),
        "{line}"
    );
    let modes = odds::admitted_modes(&c);
    use crate::core::odds::Mode;
    assert_eq!(
        modes[&DeviceId("p".into())],
        [Mode::Pin, Mode::IdPin, Mode::Card]
    );
}

#[test]
fn http_metrics_default_on_and_can_be_turned_off() {
    let http = |extra: &str| {
        let text = minimal(&format!("[http]\nlisten = \"127.0.0.1:0\"\n{extra}"));
        Config::parse(&text).map(|c| c.http.unwrap().metrics)
    };
    assert_eq!(http(""), Ok(true));
    assert_eq!(http("metrics = false"), Ok(false));
    assert!(err(&minimal(
        "[http]\nlisten = \"127.0.0.1:0\"\nmetrics = \"yes\""
    ))
    .contains("metrics"));
}

#[test]
fn the_page_on_plain_http_needs_loopback_tls_or_a_proxy() {
    let web = |block: &str| format!("{}\n[http]\n{block}\n[web]\n", minimal(""));
    let message = err(&web("listen = \"0.0.0.0:8080\""));
    assert!(
        message.contains("public_url = \"https://")
            && message.contains("allow_plain_http = true")
            && message.contains("tls_cert"),
        "{message}"
    );
    let plain_url = err(&web(
        "listen = \"0.0.0.0:8080\"\npublic_url = \"http://pins.example.org\"",
    ));
    assert!(plain_url.contains("in clear text"), "{plain_url}");
    for ok in [
        "listen = \"127.0.0.1:8080\"",
        "listen = \"0.0.0.0:8080\"\npublic_url = \"https://pins.example.org\"",
        "listen = \"0.0.0.0:8080\"\nallow_plain_http = true",
    ] {
        let parsed = Config::parse(&web(ok));
        assert!(parsed.is_ok(), "{ok}: {:?}", parsed.err());
    }
    // Secure cookies behind a TLS-terminating proxy too.
    let https = |block: &str| {
        Config::parse(&web(block))
            .unwrap()
            .http
            .unwrap()
            .browser_sees_https()
    };
    assert!(https(
        "listen = \"0.0.0.0:8080\"\npublic_url = \"https://pins.example.org\""
    ));
    assert!(!https("listen = \"127.0.0.1:8080\""));
    assert!(!https("listen = \"0.0.0.0:8080\"\nallow_plain_http = true"));
}
