//! The one reader of secrets kept in files (pepper, SMTP password or token, LDAP bind
//! password, SCIM token, MQTT and CUPS passwords): a file that group or other may read or
//! write is refused, naming its path, its mode and the fix; a systemd credential (under
//! `$CREDENTIALS_DIRECTORY`, which systemd makes private to the service) is taken as is.
//! Knows nothing of what the secret is for.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read {key} {path}: {source}")]
    Read {
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{key} {path} is open to other users (mode {mode:o}): run `chmod 600 {path}` \
         (or deliver it as a systemd credential)"
    )]
    Open {
        key: String,
        path: PathBuf,
        mode: u32,
    },
}

/// The bytes of the secret file `path` (configured as `key`), checked first.
pub fn read_bytes(key: &str, path: &Path) -> Result<Zeroizing<Vec<u8>>, SecretError> {
    check(key, path)?;
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|source| SecretError::Read {
            key: key.into(),
            path: path.into(),
            source,
        })
}

/// The secret file's text with its trailing line end removed (what `echo secret > file`
/// leaves), checked first. An invalid UTF-8 file is a read error.
pub fn read_line(key: &str, path: &Path) -> Result<Zeroizing<String>, SecretError> {
    let bytes = read_bytes(key, path)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| SecretError::Read {
        key: key.into(),
        path: path.into(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
    })?;
    Ok(Zeroizing::new(
        text.trim_end_matches(['\r', '\n']).to_string(),
    ))
}

/// Refuses a secret file that group or other may read or write (a systemd credential is
/// accepted as is); a missing file is a read error naming the key.
pub fn check(key: &str, path: &Path) -> Result<(), SecretError> {
    let meta = std::fs::metadata(path).map_err(|source| SecretError::Read {
        key: key.into(),
        path: path.into(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 && !is_credential(path) {
        return Err(SecretError::Open {
            key: key.into(),
            path: path.into(),
            mode,
        });
    }
    Ok(())
}

/// Whether `path` lies in the service's systemd credential directory.
fn is_credential(path: &Path) -> bool {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY");
    dir.is_some_and(|dir| within(path, Path::new(&dir)))
}

/// Whether `path` resolves to a file under `dir` (both resolved: no `..` or link escapes).
fn within(path: &Path, dir: &Path) -> bool {
    match (dir.canonicalize(), path.canonicalize()) {
        (Ok(dir), Ok(path)) => path.starts_with(dir),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn file(dir: &Path, mode: u32, text: &str) -> PathBuf {
        let path = dir.join("secret");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn private_file_is_read_without_its_line_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), 0o600, "s3cret\n");
        assert_eq!(
            read_line("smtp.password_file", &path).unwrap().as_str(),
            "s3cret"
        );
        let path = file(dir.path(), 0o400, "s3cret\r\n");
        assert_eq!(read_line("k", &path).unwrap().as_str(), "s3cret");
    }

    #[test]
    fn group_or_other_bits_are_refused_naming_path_mode_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o640, 0o604, 0o660, 0o620, 0o644] {
            let path = file(dir.path(), mode, "s3cret\n");
            let e = read_line("mqtt.password_file", &path)
                .unwrap_err()
                .to_string();
            assert!(e.contains("mqtt.password_file"), "{e}");
            assert!(e.contains(&path.display().to_string()), "{e}");
            assert!(e.contains(&format!("{mode:o}")), "{e}");
            assert!(e.contains("chmod 600"), "{e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn only_files_inside_the_credential_directory_count_as_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("creds");
        std::fs::create_dir(&creds).unwrap();
        let inside = file(&creds, 0o644, "s3cret\n");
        let outside = file(dir.path(), 0o644, "s3cret\n");
        assert!(within(&inside, &creds));
        assert!(!within(&outside, &creds));
        assert!(!within(&creds.join("../secret"), &creds), "a .. escape");
        std::os::unix::fs::symlink(&outside, creds.join("link")).unwrap();
        assert!(!within(&creds.join("link"), &creds), "a link escape");
    }

    #[test]
    fn missing_file_names_the_key() {
        let e = read_bytes("ldap.bind_password_file", Path::new("/nonexistent/pw"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ldap.bind_password_file") && e.contains("/nonexistent/pw"),
            "{e}"
        );
    }
}
