//! Test fixture: a real OpenLDAP `slapd` per test on a free loopback port, with a generated
//! slapd.conf (core, cosine, inetorgperson, nis and the pinwarden example schema; back_mdb,
//! syncprov with a session log, memberof), fixtures loaded with `slapadd`, and helpers to
//! modify it with ldap-utils, restart it, and freeze it with SIGSTOP.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SUFFIX: &str = "dc=example,dc=org";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
pub const ROOT_PW: &str = "admin-secret";
pub const BIND_DN: &str = "cn=pinwarden,ou=services,dc=example,dc=org";
pub const BIND_PW: &str = "sync-secret";

/// Where the fixture files live.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ldap")
        .join(name)
}

/// The path of a required program; fails (never skips) naming the Debian package.
pub fn require(program: &str, package: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin"] {
        let path = Path::new(dir).join(program);
        if path.exists() {
            return path;
        }
    }
    panic!(
        "`{program}` not found: install the Debian package `{package}` (apt-get install {package})"
    );
}

/// How to configure one slapd.
#[derive(Clone)]
pub struct Options {
    /// LDIF loaded with slapadd before start (after the base fixture when `base` is set).
    pub ldif: String,
    pub base: bool,
    /// `limits` clause for the service account, e.g. `size=unlimited`.
    pub limits: String,
    /// Keep deletions in syncprov's session log (delete-phase refreshes).
    pub sessionlog: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ldif: String::new(),
            base: true,
            limits: "size=unlimited".to_owned(),
            sessionlog: true,
        }
    }
}

pub struct Slapd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub url: String,
    conf: PathBuf,
    child: Option<Child>,
    stopped: bool,
    runs: usize,
}

impl Slapd {
    /// The base fixture plus `extra` LDIF.
    pub fn start(extra: &str) -> Slapd {
        Slapd::start_with(Options {
            ldif: extra.to_owned(),
            ..Options::default()
        })
    }

    pub fn start_with(opts: Options) -> Slapd {
        let slapd = require("slapd", "slapd");
        let slapadd = require("slapadd", "slapd");
        require("ldapmodify", "ldap-utils");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("db")).unwrap();
        let conf = dir.path().join("slapd.conf");
        std::fs::write(&conf, config(dir.path(), &opts)).unwrap();
        let mut ldif = String::new();
        if opts.base {
            ldif.push_str(&std::fs::read_to_string(fixture("base.ldif")).unwrap());
            ldif.push('\n');
        }
        ldif.push_str(&opts.ldif);
        let ldif_path = dir.path().join("load.ldif");
        std::fs::write(&ldif_path, ldif).unwrap();
        let out = Command::new(slapadd)
            .arg("-q")
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(&ldif_path)
            .output()
            .expect("run slapadd");
        assert!(
            out.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = slapd;
        let mut s = Slapd {
            dir,
            port: 0,
            url: String::new(),
            conf,
            child: None,
            stopped: false,
            runs: 0,
        };
        // The free port is only free until somebody else binds it: if slapd loses that
        // race (it exits at once, silently with -d 0), try another one.
        for _ in 0..5 {
            s.port = free_port();
            s.url = format!("ldap://127.0.0.1:{}", s.port);
            if s.try_launch() {
                return s;
            }
        }
        panic!("slapd did not start on any of 5 ports:\n{}", s.logs());
    }

    fn launch(&mut self) {
        assert!(
            self.try_launch(),
            "slapd exited during startup on port {}:\n{}",
            self.port,
            self.logs()
        );
    }

    /// Starts slapd on `self.port`; false if it exited during startup.
    fn try_launch(&mut self) -> bool {
        self.runs += 1;
        let log = std::fs::File::create(self.dir.path().join(format!("slapd-{}.log", self.runs)))
            .unwrap();
        let child = Command::new(require("slapd", "slapd"))
            .arg("-f")
            .arg(&self.conf)
            .arg("-h")
            .arg(format!("{}/", self.url))
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start slapd");
        self.child = Some(child);
        self.wait_ready()
    }

    /// Polls the root DSE until slapd answers; false if slapd exited first.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = Command::new(require("ldapsearch", "ldap-utils"))
                .args(["-x", "-LLL", "-H", &self.url, "-b", "", "-s", "base"])
                .arg("namingContexts")
                .output()
                .expect("run ldapsearch");
            // Checked after the search: an answer while our slapd has died came from
            // whoever else holds the port.
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                eprintln!("slapd exited during startup ({status})");
                self.child = None;
                return false;
            }
            if out.status.success() {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "slapd not ready:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn logs(&self) -> String {
        (1..=self.runs)
            .map(|r| {
                std::fs::read_to_string(self.dir.path().join(format!("slapd-{r}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n--- restart ---\n")
    }

    /// Stops slapd (SIGTERM) and starts it again on the same port and database: syncprov's
    /// in-memory session log is gone, so the next refresh takes the present phase.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.stopped {
                self.signal_child(&child, libc::SIGCONT);
                self.stopped = false;
            }
            self.signal_child(&child, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Freezes slapd: connections are accepted by the kernel but nothing answers. Returns
    /// once every thread of slapd is stopped: kill(2) only starts the stop, and on a loaded
    /// machine a slapd thread can still answer a request sent right after it returns.
    pub fn freeze(&mut self) {
        let child = self.child.as_ref().expect("running");
        self.signal_child(child, libc::SIGSTOP);
        self.stopped = true;
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !all_threads_stopped(pid) {
            assert!(
                Instant::now() < deadline,
                "slapd (pid {pid}) did not stop within 20 s of SIGSTOP"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn thaw(&mut self) {
        let child = self.child.as_ref().expect("running");
        self.signal_child(child, libc::SIGCONT);
        self.stopped = false;
    }

    fn signal_child(&self, child: &Child, sig: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let rc = unsafe { libc::kill(child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill({sig}) failed");
    }

    /// Runs `ldapmodify` as the root DN with `ldif` (changetype records, or plain entries
    /// with `add`).
    pub fn ldapmodify(&self, ldif: &str, add: bool) {
        let mut args = vec!["-x", "-H", &self.url, "-D", ROOT_DN, "-w", ROOT_PW];
        if add {
            args.push("-a");
        }
        run_with_stdin(require("ldapmodify", "ldap-utils"), &args, ldif);
    }

    pub fn ldapdelete(&self, dn: &str) {
        let args = ["-x", "-H", &self.url, "-D", ROOT_DN, "-w", ROOT_PW, dn];
        run_with_stdin(require("ldapdelete", "ldap-utils"), &args, "");
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether every thread of `pid` is in the stopped state (`T` in /proc/PID/task/*/stat).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat"))
            .ok()
            // The state follows the command name, which is in parentheses.
            .and_then(|stat| {
                stat.rsplit(')')
                    .next()?
                    .split_whitespace()
                    .next()
                    .map(String::from)
            })
            .is_some_and(|state| state == "T")
    })
}

fn run_with_stdin(program: PathBuf, args: &[&str], stdin: &str) {
    use std::io::Write;
    let mut child = Command::new(&program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ldap-utils");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

// Also loaded by mosquitto.rs: each of these files must stand alone (benches include them).
#[allow(clippy::duplicate_mod)]
#[path = "ports.rs"]
mod ports;
use ports::free_port;

fn config(dir: &Path, opts: &Options) -> String {
    let schema = fixture("pinwarden.schema");
    let sessionlog = if opts.sessionlog {
        "syncprov-sessionlog 1000"
    } else {
        ""
    };
    format!(
        r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include {schema}
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload syncprov
moduleload memberof
pidfile {dir}/slapd.pid
database mdb
maxsize 1073741824
suffix "{SUFFIX}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PW}
directory {dir}/db
index objectClass,entryUUID,entryCSN eq
overlay memberof
memberof-refint TRUE
overlay syncprov
syncprov-checkpoint 100 1
{sessionlog}
limits dn.exact="{BIND_DN}" {limits}
access to attrs=userPassword by anonymous auth by * none
access to * by dn.exact="{BIND_DN}" read by * none
"#,
        schema = schema.display(),
        dir = dir.display(),
        limits = opts.limits,
    )
}
