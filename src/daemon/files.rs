//! The daemon's own files are private: the umask it runs under, and the state directory
//! (0700) and store closed at start. Never changes a secret file's mode (the secret reader
//! refuses an open one instead).

use crate::config::Config;

/// Everything the daemon creates from now on (store, pepper, reserve, backups, sockets) is
/// private to its user whatever umask it was started with: card ids and audit records are
/// nobody else's business.
pub fn private_umask() {
    // SAFETY: umask only swaps the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates the state directory 0700, and closes what an older version or a loose umask left
/// open: the state directory itself and the store under it (directories back to 0700, files
/// to 0600). A secret file is never changed behind the operator's back: the secret reader
/// refuses an open one instead.
pub(super) fn prepare_state_dir(config: &Config) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = &config.state_dir;
    let fix = |e: std::io::Error| {
        anyhow::anyhow!(
            "cannot prepare state_dir {}: {e}: create it for the daemon's user or fix its \
             permissions",
            dir.display()
        )
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(fix)?;
    let mut closed = close_modes(dir, false).map_err(fix)?;
    if config.store_dir.exists() {
        closed += close_modes(&config.store_dir, true).map_err(fix)?;
    }
    if closed > 0 {
        tracing::warn!(state_dir = %dir.display(), closed,
            "state_dir held entries other users could reach: set them to 0700/0600");
    }
    Ok(())
}

/// Takes group and other bits off `path` and, with `deep`, everything under it (not
/// following symbolic links, leaving sockets alone); returns how many entries it changed.
fn close_modes(path: &std::path::Path, deep: bool) -> std::io::Result<usize> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let meta = std::fs::symlink_metadata(path)?;
    let kind = meta.file_type();
    if kind.is_symlink() || kind.is_socket() {
        return Ok(0);
    }
    let mut changed = 0;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        let private = if kind.is_dir() { 0o700 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(private))?;
        changed += 1;
    }
    if kind.is_dir() && deep {
        for entry in std::fs::read_dir(path)? {
            changed += close_modes(&entry?.path(), true)?;
        }
    }
    Ok(changed)
}
