//! Loading (or creating on first start) the 32-byte pepper kept outside the store.

use blake2::{Blake2b512, Digest};
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, ZeroizeOnDrop};

#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Pepper([u8; 32]);

#[derive(Debug, thiserror::Error)]
pub enum PepperError {
    #[error("cannot read the pepper file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the pepper file {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
    #[error("the pepper file {path} must hold 32 bytes, raw or as 64 hex digits")]
    Format { path: PathBuf },
}

impl Pepper {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Pepper(bytes)
    }

    pub(super) fn secret(&self) -> &[u8] {
        &self.0
    }

    /// A public fingerprint stored in the store's meta, so a store opened with another
    /// pepper refuses to start instead of silently denying every PIN.
    pub fn fingerprint(&self) -> String {
        let mut h = Blake2b512::new();
        h.update(b"pinwarden pepper fingerprint v1\0");
        h.update(self.0);
        hex::encode(&h.finalize()[..16])
    }

    /// Reads the pepper at `path`; when `create` is set and the file is absent, generates
    /// one with the OS CSPRNG and writes it with mode 0600.
    pub fn load(path: &Path, create: bool) -> Result<(Pepper, bool), PepperError> {
        match fs::metadata(path) {
            Ok(_) => {
                let raw = crate::secret::read_bytes("the pepper file", path)?;
                parse(&raw)
                    .map(|p| (p, false))
                    .ok_or_else(|| PepperError::Format { path: path.into() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let pepper = Pepper(rand::random());
                write_new(path, &pepper).map_err(|source| PepperError::Create {
                    path: path.into(),
                    source,
                })?;
                Ok((pepper, true))
            }
            Err(source) => Err(PepperError::Read {
                path: path.into(),
                source,
            }),
        }
    }
}

fn parse(raw: &[u8]) -> Option<Pepper> {
    if raw.len() == 32 {
        return Some(Pepper(raw.try_into().ok()?));
    }
    let text = std::str::from_utf8(raw).ok()?.trim();
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(Pepper(out))
}

fn write_new(path: &Path, pepper: &Pepper) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut text = hex::encode(pepper.0);
    text.push('\n');
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    let result = file
        .write_all(text.as_bytes())
        .and_then(|_| file.sync_all());
    text.zeroize();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_once_then_reloaded_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/pepper");
        let (first, created) = Pepper::load(&path, true).unwrap();
        assert!(created);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (again, created) = Pepper::load(&path, true).unwrap();
        assert!(!created);
        assert_eq!(first.fingerprint(), again.fingerprint());
    }

    #[test]
    fn refuses_open_mode_and_bad_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pepper");
        fs::write(&path, "not hex").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Pepper::load(&path, false),
            Err(PepperError::Secret(crate::secret::SecretError::Open { .. }))
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            Pepper::load(&path, false),
            Err(PepperError::Format { .. })
        ));
        assert!(matches!(
            Pepper::load(&dir.path().join("missing"), false),
            Err(PepperError::Read { .. })
        ));
    }
}
