//! Key files of the data directory (our member key, founder master keys).
//!
//! Temporary: a minimal reader and writer of py-ipv8's raw key blob, mode 0600, until
//! `dispersy_net::keyfile` lands; then these functions call it.

use std::io;
use std::path::{Path, PathBuf};

use dispersy::crypto::PrivateKey;

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("key file {}: {detail}", path.display())]
pub struct KeyFileError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub detail: String,
}

fn err(path: &Path, detail: impl ToString) -> KeyFileError {
    KeyFileError {
        path: path.to_owned(),
        detail: detail.to_string(),
    }
}

/// The key in `path`, `None` when there is no file.
pub fn load(path: &Path) -> Result<Option<PrivateKey>, KeyFileError> {
    let bin = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(path, e)),
    };
    PrivateKey::from_bin(&bin)
        .map(Some)
        .map_err(|e| err(path, e))
}

/// Writes a new key file; refuses to replace one.
pub fn create(path: &Path, key: &PrivateKey) -> Result<(), KeyFileError> {
    if path.exists() {
        return Err(err(path, "exists (refusing to overwrite it)"));
    }
    super::datadir::write_private(path, &key.to_bin()[..]).map_err(|e| err(path, e))
}

/// Loads the key in `path`, or creates one there.
pub fn load_or_create(path: &Path) -> Result<PrivateKey, KeyFileError> {
    if let Some(k) = load(path)? {
        return Ok(k);
    }
    let key = PrivateKey::generate(&mut rand::rngs::OsRng);
    create(path, &key)?;
    tracing::info!(path = %path.display(), member = %key.member_id(), "created a new member key");
    Ok(key)
}
