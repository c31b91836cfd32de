//! Member key files, in py-ipv8's format: the 74-byte `LibNaCLSK:` blob, raw, nothing else.
//!
//! A key file is written to a temporary file beside it (mode `0600` from the start), flushed to
//! disk and then renamed into place, so a crash never leaves a half-written key and the secret
//! is never readable by others, not even briefly. [`create`] refuses to replace an existing file
//! and is race-free (it links the finished temporary file into place, which fails if the name
//! is taken).
//!
//! Loading names the file in every error: missing, unreadable, too large, truncated, a public
//! key where a private key belongs, or not a key at all.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use dispersy::crypto::{KEY_BIN_LEN, KeyError, PrivateKey};
use rand::{CryptoRng, RngCore};

/// Key files larger than this are refused without reading them (a key is 74 bytes).
pub const MAX_KEY_FILE_LEN: u64 = 4096;

/// Why a key file could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// There is no file at the path.
    #[error("key file {} does not exist", path.display())]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// The file exists and must not be replaced.
    #[error("key file {} already exists (refusing to overwrite it)", path.display())]
    Exists {
        /// The path.
        path: PathBuf,
    },
    /// The file is far larger than any key.
    #[error("key file {} is {len} bytes; a key file holds {KEY_BIN_LEN}", path.display())]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// The file does not hold a private key.
    #[error("key file {} does not hold a private key: {source}", path.display())]
    Malformed {
        /// The path.
        path: PathBuf,
        /// What is wrong with the blob.
        source: KeyError,
    },
    /// Reading or writing failed.
    #[error("cannot {action} key file {}: {source}", path.display())]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
}

/// Whether [`load_or_create`] found a key or made one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The file existed.
    Loaded,
    /// A new key was generated and saved.
    Created,
}

/// Reads a private key from `path`.
pub fn load(path: &Path) -> Result<PrivateKey, Error> {
    let io_err = |source: io::Error| match source.kind() {
        io::ErrorKind::NotFound => Error::Missing {
            path: path.to_owned(),
        },
        _ => Error::Io {
            action: "read",
            path: path.to_owned(),
            source,
        },
    };
    let file = File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if meta.len() > MAX_KEY_FILE_LEN {
        return Err(Error::TooLarge {
            path: path.to_owned(),
            len: meta.len(),
        });
    }
    warn_if_readable_by_others(path, &meta);
    let mut bin = zeroize::Zeroizing::new(Vec::with_capacity(KEY_BIN_LEN));
    file.take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut bin)
        .map_err(io_err)?;
    PrivateKey::from_bin(&bin).map_err(|source| Error::Malformed {
        path: path.to_owned(),
        source,
    })
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path, meta: &fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{:o}", mode & 0o777),
            "key file is readable by other users; it should have mode 0600"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path, _: &fs::Metadata) {}

/// Writes `key` to `path`, atomically replacing any existing file.
pub fn save(path: &Path, key: &PrivateKey) -> Result<(), Error> {
    let tmp = write_temporary(path, key)?;
    fs::rename(&tmp, path).map_err(|source| {
        let _ = fs::remove_file(&tmp);
        write_error(path, source)
    })
}

/// Writes `key` to a new file at `path`; fails with [`Error::Exists`] if there is one.
pub fn create(path: &Path, key: &PrivateKey) -> Result<(), Error> {
    let tmp = write_temporary(path, key)?;
    // A hard link fails if the name is taken, which makes "create unless it exists" atomic.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    linked.map_err(|source| match source.kind() {
        io::ErrorKind::AlreadyExists => Error::Exists {
            path: path.to_owned(),
        },
        _ => write_error(path, source),
    })
}

/// Loads the key at `path`, or generates one with `rng` and saves it there if there is no file.
pub fn load_or_create<R: RngCore + CryptoRng>(
    path: &Path,
    rng: &mut R,
) -> Result<(PrivateKey, Origin), Error> {
    match load(path) {
        Ok(key) => return Ok((key, Origin::Loaded)),
        Err(Error::Missing { .. }) => {}
        Err(e) => return Err(e),
    }
    let key = PrivateKey::generate(rng);
    match create(path, &key) {
        Ok(()) => {
            tracing::info!(path = %path.display(), member = %key.member_id(), "created a new member key");
            Ok((key, Origin::Created))
        }
        // Somebody else created it between our load and create: theirs wins.
        Err(Error::Exists { .. }) => load(path).map(|k| (k, Origin::Loaded)),
        Err(e) => Err(e),
    }
}

fn write_error(path: &Path, source: io::Error) -> Error {
    Error::Io {
        action: "write",
        path: path.to_owned(),
        source,
    }
}

/// Writes the key to a fresh temporary file in `path`'s directory and syncs it.
fn write_temporary(path: &Path, key: &PrivateKey) -> Result<PathBuf, Error> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| {
        write_error(
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
        )
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = path.with_file_name(tmp_name);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(&key.to_bin()[..])?;
        f.sync_all()
    });
    match written {
        Ok(()) => Ok(tmp),
        Err(source) => {
            let _ = fs::remove_file(&tmp);
            Err(write_error(path, source))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(11)
    }

    #[test]
    fn save_load_round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("member.key");
        let key = PrivateKey::generate(&mut rng());
        create(&path, &key).unwrap();
        assert_eq!(fs::read(&path).unwrap(), &key.to_bin()[..]);
        assert_eq!(load(&path).unwrap().public(), key.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Only the key file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn create_refuses_to_overwrite_and_save_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let mut r = rng();
        let (a, b) = (PrivateKey::generate(&mut r), PrivateKey::generate(&mut r));
        create(&path, &a).unwrap();
        assert!(matches!(create(&path, &b), Err(Error::Exists { .. })));
        assert_eq!(load(&path).unwrap().public(), a.public());
        save(&path, &b).unwrap();
        assert_eq!(load(&path).unwrap().public(), b.public());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn bad_files_are_errors_that_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate(&mut rng());
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("truncated", key.to_bin()[..40].to_vec(), "40 bytes"),
            (
                "public",
                key.public().to_bin().to_vec(),
                "found a public key",
            ),
            ("garbage", b"hello world".to_vec(), "unknown key format"),
            ("empty", Vec::new(), "unknown key format"),
            ("huge", vec![0; 5000], "5000 bytes"),
        ];
        for (name, contents, needle) in cases {
            let path = dir.path().join(name);
            fs::write(&path, contents).unwrap();
            let msg = load(&path).unwrap_err().to_string();
            assert!(msg.contains(name), "{msg}");
            assert!(msg.contains(needle), "{msg}");
        }
        let missing = dir.path().join("missing");
        let err = load(&missing).unwrap_err();
        assert!(matches!(err, Error::Missing { .. }));
        assert!(err.to_string().contains("missing"));
    }

    #[test]
    fn load_or_create_creates_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let (a, origin) = load_or_create(&path, &mut rng()).unwrap();
        assert_eq!(origin, Origin::Created);
        let (b, origin) = load_or_create(&path, &mut rng()).unwrap();
        assert_eq!(origin, Origin::Loaded);
        assert_eq!(a.public(), b.public());
        let nested = dir.path().join("no-such-dir").join("k");
        assert!(matches!(
            load_or_create(&nested, &mut rng()),
            Err(Error::Io { .. })
        ));
    }
}
