//! Real print peers for tests: a private D-Bus (ippeveprinter's Avahi client will not start
//! without a bus, even with `-r off`), `ippeveprinter` as the printer and a private `cupsd`
//! (own ServerRoot, spool and state dirs, its own domain socket and a free loopback port)
//! holding jobs. A missing binary fails the test naming its Debian package. Nothing depends
//! on the machine's system bus: on a fresh box there may be none, or a stale socket left by
//! a bus that died.
//!
//! Administration goes over the domain socket, as on a real host: cupsd (since Debian's
//! 2.4.2-3+deb12u10) refuses its local root certificate over TCP. Jobs are submitted with
//! `ipptool`, naming the owner in `requesting-user-name`: `lp -U NAME` for a name without a
//! passwd entry crashes that cupsd. A person at their desk is a real account (`daemon`),
//! so cupsd can check who they are.

use super::mosquitto::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Binary → the Debian package that ships it.
const NEEDED: [(&str, &str); 9] = [
    ("cupsd", "cups-daemon"),
    ("lpadmin", "cups-client"),
    ("lp", "cups-client"),
    ("lpstat", "cups-client"),
    ("cupsenable", "cups-client"),
    ("cupsdisable", "cups-client"),
    ("ippeveprinter", "cups-ipp-utils"),
    ("ipptool", "cups-ipp-utils"),
    ("dbus-daemon", "dbus"),
];

pub fn binary(name: &str) -> PathBuf {
    let package = NEEDED.iter().find(|(b, _)| *b == name).map_or("?", |p| p.1);
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/bin", "/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "`{name}` not found: install the Debian package {package} (apt-get install {package})"
        )
    })
}

/// Starts a private bus listening on `socket`; ippeveprinter is pointed at it as its system
/// bus through `DBUS_SYSTEM_BUS_ADDRESS`.
fn private_bus(socket: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    let mut child = Command::new(binary("dbus-daemon"))
        .arg("--session")
        .arg("--nofork")
        .arg("--nopidfile")
        .arg(format!("--address=unix:path={}", socket.display()))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start dbus-daemon");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("dbus-daemon exited ({status}) before listening on {socket:?}");
        }
        assert!(
            Instant::now() < deadline,
            "dbus-daemon did not listen on {socket:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Print-Job with the owner in `requesting-user-name`, as a client at a desk sends it.
const PRINT_JOB_TEST: &str = "{\n NAME \"Print-Job\"\n OPERATION Print-Job\n\
 GROUP operation-attributes-tag\n ATTR charset attributes-charset utf-8\n\
 ATTR language attributes-natural-language en\n ATTR uri printer-uri $uri\n\
 ATTR name requesting-user-name $owner\n ATTR name job-name $title\n\
 ATTR mimeMediaType document-format application/vnd.cups-raw\n FILE $filename\n\
 STATUS successful-ok\n EXPECT job-id OF-TYPE integer\n DISPLAY job-id\n}\n";

/// The account that plays a person at their desk: it exists on every Debian system and is
/// not in the test cupsd's SystemGroup (root).
pub const DESK_ACCOUNT: &str = "daemon";

/// A minimal PDF: real PDF bytes for a raw print job.
pub const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

pub struct Printer {
    child: Child,
    pub port: u16,
    pub spool: PathBuf,
}

pub struct Cups {
    pub dir: tempfile::TempDir,
    pub port: u16,
    cupsd: Option<Child>,
    printers: Vec<Printer>,
    bus: Child,
}

impl Cups {
    /// Starts cupsd; `policy` is extra cupsd.conf text (an operation policy).
    pub fn start(policy: &str) -> Cups {
        for (bin, _) in NEEDED {
            binary(bin);
        }
        let dir = tempfile::tempdir().unwrap();
        // CUPS backends run as `lp` and must reach the spool below it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let port = free_port();
        let d = dir.path();
        for sub in ["root", "spool", "tmp", "cache", "state", "log"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let bus = private_bus(&d.join("bus"), &d.join("log/dbus.log"));
        let files = format!(
            "ServerRoot {d}/root\nRequestRoot {d}/spool\nTempDir {d}/tmp\nCacheDir {d}/cache\n\
             StateDir {d}/state\nErrorLog {d}/log/error_log\nAccessLog {d}/log/access_log\n\
             PageLog {d}/log/page_log\nSystemGroup root\nSandboxing relaxed\n",
            d = d.display()
        );
        std::fs::write(d.join("cups-files.conf"), files).unwrap();
        let conf = format!(
            "Listen 127.0.0.1:{port}\nListen {socket}\nLogLevel debug\nBrowsing Off\nWebInterface No\n\
             DefaultAuthType Basic\nPreserveJobFiles Yes\nDirtyCleanInterval 0\nMaxJobs 0\nMaxJobsPerUser 0\n\
             <Location />\n  Order allow,deny\n  Allow from 127.0.0.1\n  Allow from @LOCAL\n</Location>\n{policy}\n",
            socket = d.join("cups.sock").display()
        );
        std::fs::write(d.join("cupsd.conf"), conf).unwrap();
        let mut cups = Cups {
            dir,
            port,
            cupsd: None,
            printers: Vec::new(),
            bus,
        };
        cups.launch();
        cups
    }

    fn launch(&mut self) {
        let d = self.dir.path();
        let log = std::fs::File::create(d.join("log/cupsd.out")).unwrap();
        let child = Command::new(binary("cupsd"))
            .arg("-f")
            .arg("-c")
            .arg(d.join("cupsd.conf"))
            .arg("-s")
            .arg(d.join("cups-files.conf"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start cupsd");
        self.cupsd = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.lpstat(&["-r"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "cupsd did not start:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// cupsd's domain socket, where a CUPS on this host is administered.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("cups.sock")
    }

    /// `ipp://` URI of `queue` on the domain socket (the path percent-encoded, as libcups
    /// reads it).
    fn socket_uri(&self, queue: &str) -> String {
        let path = self.socket().display().to_string().replace('/', "%2F");
        format!("ipp://{path}/printers/{queue}")
    }

    /// CUPS's local root certificate (what pinwarden uses as root).
    pub fn cert_file(&self) -> PathBuf {
        self.dir.path().join("state/certs/0")
    }

    pub fn logs(&self) -> String {
        let d = self.dir.path();
        let read = |p: &str| std::fs::read_to_string(d.join(p)).unwrap_or_default();
        let tail = |s: String| s.lines().rev().take(40).collect::<Vec<_>>().join("\n");
        format!("{}\n{}", read("log/cupsd.out"), tail(read("log/error_log")))
    }

    /// A CUPS client command run as root on the domain socket (an administrator).
    pub fn admin(&self, bin: &str, args: &[&str]) -> Output {
        Command::new(binary(bin))
            .env("CUPS_STATEDIR", self.dir.path().join("state"))
            .arg("-h")
            .arg(self.socket())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// A CUPS client command run by `DESK_ACCOUNT` at their desk: the kernel tells cupsd
    /// who it is (the domain socket's peer credentials); it has no certificate.
    pub fn desk(&self, bin: &str, args: &[&str]) -> Output {
        use std::os::unix::process::CommandExt;
        let (uid, gid) = account_ids(DESK_ACCOUNT);
        Command::new(binary(bin))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/nonexistent")
            .env("CUPS_STATEDIR", self.dir.path().join("no-certs"))
            .arg("-h")
            .arg(self.socket())
            .args(args)
            .stdin(Stdio::null())
            .uid(uid)
            .gid(gid)
            .output()
            .unwrap()
    }

    fn lpstat(&self, args: &[&str]) -> Output {
        self.admin("lpstat", args)
    }

    fn admin_ok(&self, bin: &str, args: &[&str]) -> String {
        let out = self.admin(bin, args);
        assert!(
            out.status.success(),
            "{bin} {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts an ippeveprinter; returns its index.
    pub fn printer(&mut self, name: &str) -> usize {
        let port = free_port();
        let spool = self.dir.path().join(format!("printer-{name}"));
        std::fs::create_dir_all(&spool).unwrap();
        let log = std::fs::File::create(self.dir.path().join(format!("log/{name}.log"))).unwrap();
        let bus = format!("unix:path={}", self.dir.path().join("bus").display());
        let mut child = Command::new(binary("ippeveprinter"))
            .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
            .args([
                "-r",
                "off",
                "-k",
                "-f",
                "application/pdf",
                "-p",
                &port.to_string(),
                "-d",
            ])
            .arg(&spool)
            .arg(name)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start ippeveprinter");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.path().join(format!("log/{name}.log")));
                panic!(
                    "ippeveprinter {name} did not start ({}):\n{}",
                    exited.map_or("still running".into(), |s| s.to_string()),
                    log.unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.printers.push(Printer { child, port, spool });
        self.printers.len() - 1
    }

    /// A CUPS queue on printer `printer` that holds every job until released.
    pub fn queue(&self, queue: &str, printer: usize, extra: &[&str]) {
        let uri = format!("ipp://localhost:{}/ipp/print", self.printers[printer].port);
        let mut args = vec!["-p", queue, "-E", "-v", &uri, "-m", "everywhere"];
        args.extend(["-o", "job-hold-until-default=indefinite"]);
        args.extend(extra);
        self.admin_ok("lpadmin", &args);
    }

    /// Submits real PDF bytes owned by `user`, titled `title`; returns the CUPS job id.
    pub fn submit(&self, queue: &str, user: &str, title: &str) -> u32 {
        let d = self.dir.path();
        let file = d.join(format!("{title}.pdf"));
        std::fs::write(&file, PDF).unwrap();
        let test = d.join("print-job.test");
        std::fs::write(&test, PRINT_JOB_TEST).unwrap();
        let out = Command::new(binary("ipptool"))
            .args(["-V", "2.0", "-d"])
            .arg(format!("owner={user}"))
            .arg("-d")
            .arg(format!("title={title}"))
            .arg("-f")
            .arg(&file)
            .arg(self.socket_uri(queue))
            .arg(&test)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "ipptool Print-Job on {queue} as {user}: {text}{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        // "job-id\n------\n12\n"
        text.lines()
            .filter_map(|l| l.trim().parse().ok())
            .next()
            .unwrap_or_else(|| panic!("no job id in {text:?}"))
    }

    /// Titles of the documents printer `printer` has received so far.
    pub fn printed(&self, printer: usize) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.printers[printer].spool)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Waits until printer `printer` received a document whose name contains each title.
    pub fn wait_printed(&self, printer: usize, titles: &[&str]) {
        super::wait_until(Duration::from_secs(30), || {
            let printed = self.printed(printer);
            match titles.iter().all(|t| printed.iter().any(|p| p.contains(t))) {
                true => Ok(()),
                false => Err(format!(
                    "printer did not receive {titles:?}; it has {printed:?}\n{}",
                    self.logs()
                )),
            }
        })
    }

    /// The ids of jobs on `queue` that are still held.
    pub fn held(&self, queue: &str) -> Vec<u32> {
        let out = self.admin_ok("lpstat", &["-l", "-o", queue]);
        let mut held = Vec::new();
        let mut current: Option<u32> = None;
        for line in out.lines() {
            if !line.starts_with(char::is_whitespace) {
                current = line
                    .split_whitespace()
                    .next()
                    .and_then(|w| w.rsplit_once('-'))
                    .and_then(|(_, n)| n.parse().ok());
            } else if line.contains("job-hold-until") {
                held.extend(current.take());
            }
        }
        held
    }

    /// Stops (`libc::SIGSTOP`), kills or resumes cupsd.
    pub fn signal(&self, sig: i32) {
        let pid = self.cupsd.as_ref().expect("cupsd running").id();
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        unsafe { libc::kill(pid as i32, sig) };
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.cupsd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts cupsd again on the same directories and port (held jobs persist).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Disables (stops) a queue, as a jammed or switched-off printer would be.
    pub fn disable(&self, queue: &str) {
        self.admin_ok("cupsdisable", &[queue]);
    }

    pub fn enable(&self, queue: &str) {
        self.admin_ok("cupsenable", &[queue]);
    }

    /// The `[cups]` block pointing pinwarden at this cupsd's socket, as root with the
    /// local certificate (what a CUPS on the same host uses).
    pub fn pinwarden_config(&self) -> String {
        self.pinwarden_config_with(&format!(
            "server = \"{}\"\nauth = \"local-certificate\"\ncert_file = \"{}\"\n",
            self.socket().display(),
            self.cert_file().display()
        ))
    }

    /// A `[cups]` block with `server_and_auth` lines and the tests' short timeouts.
    pub fn pinwarden_config_with(&self, server_and_auth: &str) -> String {
        format!(
            "[cups]\n{server_and_auth}timeout = \"2s\"\nrelease_timeout = \"10s\"\n\
             max_backoff = \"1s\"\n"
        )
    }

    /// HOST:PORT of cupsd's TCP listener (how a remote CUPS is reached).
    pub fn tcp_address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// uid and gid of a local account (asked of `id`, which is safe to run from parallel tests,
/// unlike getpwnam); panics naming it when it does not exist.
pub fn account_ids(name: &str) -> (u32, u32) {
    let id = |flag: &str| {
        let out = Command::new("id").arg(flag).arg(name).output().unwrap();
        assert!(
            out.status.success(),
            "the test needs the local account `{name}` (Debian base-passwd)"
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

impl Drop for Cups {
    fn drop(&mut self) {
        if let Some(c) = self.cupsd.as_ref() {
            // A stopped cupsd must be resumed to die cleanly.
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGCONT) };
        }
        self.kill();
        for p in &mut self.printers {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}
