//! A real `mosquitto` broker per test on a free loopback port (optionally with a password
//! file), and a probe client that subscribes, publishes and waits for messages.

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Broker {
    pub port: u16,
    /// The CA that signed the broker's certificate (TLS brokers only).
    pub ca: Option<PathBuf>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

#[path = "ports.rs"]
mod ports;
pub use ports::free_port;

fn mosquitto_bin() -> PathBuf {
    for p in ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"] {
        if std::path::Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("mosquitto is not installed: install the Debian package `mosquitto` (.ci/run does)");
}

impl Broker {
    pub fn start() -> Broker {
        Broker::start_with(None)
    }

    /// With `login`, anonymous clients are refused and only that user/password may connect.
    pub fn start_with(login: Option<(&str, &str)>) -> Broker {
        Broker::start_full(login, false)
    }

    /// A TLS-only listener with a certificate for 127.0.0.1 signed by a fresh test CA.
    pub fn start_tls() -> Broker {
        Broker::start_full(None, true)
    }

    fn start_full(login: Option<(&str, &str)>, tls: bool) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        // Persistence keeps sessions (and messages queued for them) across a graceful
        // restart, as a production broker would.
        // The `listener` line is added by `launch`, which may have to pick another port.
        let mut conf = format!(
            "persistence true\npersistence_location {}/\nlog_dest stderr\nset_tcp_nodelay true\n",
            dir.path().display()
        );
        // As root, mosquitto would drop to its own user and could not write our temp dir.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            conf.push_str("user root\n");
        }
        match login {
            None => conf.push_str("allow_anonymous true\n"),
            Some((user, pass)) => {
                let file = dir.path().join("passwd");
                let ok = Command::new("mosquitto_passwd")
                    .args(["-b", "-c"])
                    .arg(&file)
                    .args([user, pass])
                    .status()
                    .expect("mosquitto_passwd (Debian package `mosquitto`) must be installed");
                assert!(ok.success(), "mosquitto_passwd failed");
                conf.push_str(&format!(
                    "allow_anonymous false\npassword_file {}\n",
                    file.display()
                ));
            }
        }
        let ca = tls.then(|| {
            let ca = make_certificates(dir.path());
            let d = dir.path().display();
            conf.push_str(&format!(
                "cafile {d}/ca.crt\ncertfile {d}/server.crt\nkeyfile {d}/server.key\n"
            ));
            ca
        });
        std::fs::write(dir.path().join("mosquitto.conf.in"), conf).unwrap();
        let mut b = Broker {
            port: 0,
            ca,
            dir,
            child: None,
        };
        // The free port is only free until somebody else binds it (another test's broker,
        // slapd or daemon): if the broker loses that race, try another one.
        for _ in 0..5 {
            b.port = free_port();
            if b.launch() {
                return b;
            }
        }
        panic!("mosquitto found no free port:\n{}", b.log());
    }

    /// Starts the broker on `self.port`; false if that port was taken (it exited with
    /// "Address already in use").
    fn launch(&mut self) -> bool {
        let conf = std::fs::read_to_string(self.dir.path().join("mosquitto.conf.in")).unwrap();
        let conf = format!("listener {} 127.0.0.1\n{conf}", self.port);
        let conf_path = self.dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log_start = self.log().len();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("mosquitto.log"))
            .unwrap();
        let child = Command::new(mosquitto_bin())
            .arg("-c")
            .arg(conf_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        // Ready once it logged "running" (after binding): a successful connect alone could
        // reach whoever else holds the port.
        // (Self-contained: benches/mqtt.rs includes this file without the rest of common.)
        let deadline = Instant::now() + Duration::from_secs(20);
        let exited = loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                break Some(status);
            }
            let running = self.log()[log_start..].contains(" running");
            if running && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                break None;
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        match exited {
            None => true,
            Some(_) if self.log()[log_start..].contains("Address already in use") => false,
            Some(status) => panic!("mosquitto exited ({status}):\n{}", self.log()),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// Kills the broker (SIGKILL: no goodbye to clients).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops it with SIGTERM (it saves its sessions) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on a child we spawned and have not reaped.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "stop or kill the broker first");
        assert!(
            self.launch(),
            "the broker's port {} was taken while it was stopped:\n{}",
            self.port,
            self.log()
        );
    }
}

/// A test CA and a server certificate for 127.0.0.1 (openssl CLI); returns the CA path.
pub fn make_certificates(dir: &std::path::Path) -> PathBuf {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("openssl (Debian package `openssl`) must be installed");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // Long enough for tests that move the daemon's clock days ahead (libfaketime).
    let days = ["-days", "400"];
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=pinwarden test CA",
        days[0],
        days[1],
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-extfile",
        "san.ext",
        days[0],
        days[1],
    ]);
    dir.join("ca.crt")
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Clone, Debug)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Message {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| {
            panic!(
                "not JSON on {}: {e}: {}",
                self.topic,
                String::from_utf8_lossy(&self.payload)
            )
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// A test's own MQTT client.
pub struct Probe {
    client: Client,
    rx: mpsc::Receiver<Packet>,
    /// Packets received while waiting for something else, in arrival order.
    skipped: std::cell::RefCell<std::collections::VecDeque<Packet>>,
}

impl Probe {
    pub fn connect(port: u16) -> Probe {
        Probe::connect_as(port, &format!("probe-{}", rand::random::<u32>()), true)
    }

    /// With `clean` false the broker keeps the subscriptions and queues messages for this
    /// client while it is away (and across a graceful broker restart).
    pub fn connect_as(port: u16, id: &str, clean: bool) -> Probe {
        Probe::connect_opts(MqttOptions::new(id, "127.0.0.1", port), clean)
    }

    /// Over TLS, trusting `ca`.
    pub fn connect_tls(port: u16, ca: &std::path::Path) -> Probe {
        let mut opts = MqttOptions::new("probe-tls", "127.0.0.1", port);
        opts.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Simple {
            ca: std::fs::read(ca).unwrap(),
            alpn: None,
            client_auth: None,
        }));
        Probe::connect_opts(opts, true)
    }

    fn connect_opts(mut opts: MqttOptions, clean: bool) -> Probe {
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_clean_session(clean);
        // Tests publish oversized requests on purpose.
        opts.set_max_packet_size(8 << 20, 8 << 20);
        let (client, mut connection) = Client::new(opts, 64);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(p)) => {
                        if tx.send(p).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        });
        let probe = Probe {
            client,
            rx,
            skipped: Default::default(),
        };
        probe.wait_for(|p| matches!(p, Packet::ConnAck(_)), "CONNACK");
        probe
    }

    fn wait_for(&self, want: impl Fn(&Packet) -> bool, what: &str) -> Packet {
        let mut skipped = self.skipped.borrow_mut();
        if let Some(i) = skipped.iter().position(&want) {
            return skipped.remove(i).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(p) if want(&p) => return p,
                Ok(p) => skipped.push_back(p),
                Err(_) => panic!("no {what} from the broker within 20 s"),
            }
        }
    }

    /// Subscribes and waits for the SUBACK, so nothing published afterwards is missed.
    pub fn subscribe(&self, filter: &str) {
        self.client.subscribe(filter, QoS::AtLeastOnce).unwrap();
        self.wait_for(|p| matches!(p, Packet::SubAck(_)), "SUBACK");
    }

    pub fn publish(&self, topic: &str, payload: &[u8], retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.to_vec())
            .unwrap();
    }

    /// The next message on `topic` (messages on other topics are skipped).
    pub fn next_on(&self, topic: &str) -> Message {
        let Packet::Publish(p) = self.wait_for(
            |p| matches!(p, Packet::Publish(m) if m.topic == topic),
            &format!("message on {topic}"),
        ) else {
            unreachable!()
        };
        Message {
            topic: p.topic,
            payload: p.payload.to_vec(),
            retain: p.retain,
        }
    }

    /// How many messages on topics starting with `prefix` arrived while waiting for others.
    pub fn skipped_on(&self, prefix: &str) -> usize {
        self.skipped
            .borrow()
            .iter()
            .filter(|p| matches!(p, Packet::Publish(m) if m.topic.starts_with(prefix)))
            .count()
    }

    /// The text of every message received so far on `topic`, consumed.
    pub fn drain_text(&self, topic: &str) -> String {
        while let Ok(p) = self.rx.recv_timeout(Duration::from_millis(200)) {
            self.skipped.borrow_mut().push_back(p);
        }
        let mut out = String::new();
        self.skipped.borrow_mut().retain(|p| match p {
            Packet::Publish(m) if m.topic == topic => {
                out.push_str(&String::from_utf8_lossy(&m.payload));
                out.push('\n');
                false
            }
            _ => true,
        });
        out
    }
}
