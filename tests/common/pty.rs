//! Pseudo-terminal pairs standing in for USB-serial keypads and relay boards. The daemon
//! opens a stable symlink (like /dev/serial/by-id/...) pointing at the pty's slave; the test
//! drives the master side. Replugging = a new pty and the symlink moved to it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Pty {
    master: File,
    _slave: OwnedFd,
    pub slave_path: PathBuf,
}

impl Pty {
    /// Opens a pty pair in raw mode and points `link` at its slave.
    pub fn plug(link: &Path) -> Pty {
        let (mut master, mut slave) = (0, 0);
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: openpty writes two fds and a NUL-terminated name into buffers we own.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                name.as_mut_ptr(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty failed");
        // SAFETY: termios calls on the fd we just opened; cfmakeraw fills the struct.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            libc::tcgetattr(slave, &mut t);
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(slave, libc::TCSANOW, &t);
            let flags = libc::fcntl(master, libc::F_GETFL);
            libc::fcntl(master, libc::F_SETFL, flags | libc::O_NONBLOCK);
            // Spawned daemons must not inherit the master: it would keep the pty from
            // hanging up when the test "unplugs" it.
            libc::fcntl(master, libc::F_SETFD, libc::FD_CLOEXEC);
            libc::fcntl(slave, libc::F_SETFD, libc::FD_CLOEXEC);
        }
        // SAFETY: name is NUL-terminated by openpty.
        let slave_path = PathBuf::from(
            unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
                .to_string_lossy()
                .into_owned(),
        );
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(&slave_path, link).unwrap();
        // SAFETY: both fds are ours and open.
        unsafe {
            Pty {
                master: File::from_raw_fd(master),
                _slave: OwnedFd::from_raw_fd(slave),
                slave_path,
            }
        }
    }

    pub fn type_bytes(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }

    /// Types each byte with a pause after it, as a person would.
    pub fn type_slowly(&mut self, bytes: &[u8], pause: Duration) {
        for b in bytes {
            self.type_bytes(&[*b]);
            std::thread::sleep(pause);
        }
    }

    /// Reads what the daemon wrote until `want` bytes arrived or `within` passed.
    pub fn read(&mut self, want: usize, within: Duration) -> Vec<u8> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while got.len() < want && Instant::now() < deadline {
            match self.master.read(&mut buf) {
                Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                _ => std::thread::sleep(Duration::from_micros(200)),
            }
        }
        got
    }
}
