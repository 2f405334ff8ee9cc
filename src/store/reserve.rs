//! The space reserve (a child of `guarded.rs`): a preallocated file beside the store, in the
//! state directory, given back to the file system when a store write finds the disk full so
//! that lockout counters can still be written and flushed, and made again once there is room.
//! It knows nothing of sled or of what the store holds.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Room a recovered disk must have beyond the reserve before the store is called writable
/// again (a few of sled's 512 KiB segments).
pub const HEADROOM: u64 = 2 * 1024 * 1024;

pub struct Reserve {
    path: PathBuf,
    bytes: u64,
}

impl Reserve {
    /// `mib` 0: no reserve.
    pub fn new(path: PathBuf, mib: u64) -> Self {
        Reserve {
            path,
            bytes: mib * 1024 * 1024,
        }
    }

    pub fn enabled(&self) -> bool {
        self.bytes > 0
    }

    pub fn present(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.len() >= self.bytes)
    }

    /// Writes the reserve file (real blocks, not a sparse file) unless it is there; a
    /// partial file left by a full disk is removed again.
    pub fn make(&self) -> std::io::Result<()> {
        if !self.enabled() || self.present() {
            return Ok(());
        }
        let written = write_zeros(&self.path, self.bytes);
        if written.is_err() {
            let _ = std::fs::remove_file(&self.path);
        }
        written
    }

    /// Gives the space back; true when there was a reserve to release.
    pub fn release(&self) -> bool {
        std::fs::remove_file(&self.path).is_ok()
    }

    /// Bytes the recovered disk must have free before the reserve is made again.
    pub fn needed(&self) -> u64 {
        if self.present() {
            HEADROOM
        } else {
            self.bytes + HEADROOM
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn write_zeros(path: &Path, bytes: u64) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .mode(0o600)
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)?;
    let chunk = vec![0u8; 1024 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    file.sync_all()
}

/// Bytes an unprivileged writer may still use on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `st` is large enough for the result.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_released_and_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let r = Reserve::new(dir.path().join("space.reserve"), 1);
        assert!(!r.present());
        assert_eq!(r.needed(), 1024 * 1024 + HEADROOM);
        r.make().unwrap();
        assert!(r.present());
        assert_eq!(std::fs::metadata(r.path()).unwrap().len(), 1024 * 1024);
        assert!(r.release());
        assert!(!r.release());
        r.make().unwrap();
        assert!(r.present());
        assert!(free_bytes(dir.path()).unwrap() > 0);
    }

    #[test]
    fn no_reserve_when_off() {
        let dir = tempfile::tempdir().unwrap();
        let r = Reserve::new(dir.path().join("space.reserve"), 0);
        r.make().unwrap();
        assert!(!dir.path().join("space.reserve").exists());
        assert_eq!(r.needed(), HEADROOM);
    }
}
