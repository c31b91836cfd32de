//! The data directory: everything a node must not lose, and all a user needs to back up.
//!
//! ```text
//! <data-dir>/
//!   config.toml          the configuration (read when no --config is given)
//!   member.key           our identity, py-ipv8's raw key format, mode 0600
//!   dispersy.db          the SQLite store (and its -wal/-shm files while running)
//!   masters/<id>.key     master keys of communities this node founded, mode 0600
//!   api.token            the API's bearer token when generated, mode 0600
//!   left.toml            communities left through the API (not re-joined at start)
//! ```

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use dispersy::crypto::PrivateKey;
use dispersy::ids::CommunityId;
use serde::{Deserialize, Serialize};

use dispersy_net::keyfile;

/// Most bytes read from a small state file.
const MAX_STATE_FILE: u64 = 1 << 20;

/// A data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Left {
    #[serde(default)]
    communities: Vec<String>,
}

impl DataDir {
    /// Opens (creating, mode 0700) a data directory.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<DataDir> {
        let root = root.into();
        if !root.exists() {
            fs::create_dir_all(&root)?;
            restrict_dir(&root)?;
        }
        Ok(DataDir { root })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The configuration file read when none is named.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    /// Our member key.
    pub fn member_key(&self) -> PathBuf {
        self.root.join("member.key")
    }

    /// The SQLite database.
    pub fn database(&self) -> PathBuf {
        self.root.join("dispersy.db")
    }

    /// The generated API token.
    pub fn token(&self) -> PathBuf {
        self.root.join("api.token")
    }

    fn masters(&self) -> PathBuf {
        self.root.join("masters")
    }

    /// The master key file of a community we founded.
    pub fn master_key(&self, community: &CommunityId) -> PathBuf {
        self.masters().join(format!("{}.key", community.to_hex()))
    }

    fn left(&self) -> PathBuf {
        self.root.join("left.toml")
    }

    /// Loads our member key, creating one on first start.
    pub fn load_or_create_member_key(&self) -> Result<PrivateKey, keyfile::Error> {
        let (key, _) = keyfile::load_or_create(&self.member_key(), &mut rand::rngs::OsRng)?;
        Ok(key)
    }

    /// Saves the master key of a community we founded (refusing to replace one).
    pub fn save_master_key(
        &self,
        community: &CommunityId,
        key: &PrivateKey,
    ) -> Result<(), keyfile::Error> {
        if !self.masters().exists() {
            fs::create_dir_all(self.masters())
                .and_then(|()| restrict_dir(&self.masters()))
                .map_err(|source| keyfile::Error::Io {
                    action: "write",
                    path: self.masters(),
                    source,
                })?;
        }
        keyfile::create(&self.master_key(community), key)
    }

    /// The master key of a community, if we founded it.
    pub fn master_key_of(
        &self,
        community: &CommunityId,
    ) -> Result<Option<PrivateKey>, keyfile::Error> {
        match keyfile::load(&self.master_key(community)) {
            Ok(k) => Ok(Some(k)),
            Err(keyfile::Error::Missing { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The stored API token, or a new random one saved with mode 0600.
    pub fn load_or_create_token(&self) -> io::Result<String> {
        let path = self.token();
        match read_small(&path) {
            Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_owned()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        let token = hex::encode(bytes);
        write_private(&path, format!("{token}\n").as_bytes())?;
        Ok(token)
    }

    /// Communities left through the API.
    pub fn left_communities(&self) -> io::Result<BTreeSet<CommunityId>> {
        let text = match read_small(&self.left()) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
            Err(e) => return Err(e),
        };
        let left: Left = toml::from_str(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", self.left().display()),
            )
        })?;
        Ok(left
            .communities
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect())
    }

    /// Records that a community was left (`true`) or joined again (`false`).
    pub fn set_left(&self, community: CommunityId, left: bool) -> io::Result<()> {
        let mut set = self.left_communities()?;
        let changed = if left {
            set.insert(community)
        } else {
            set.remove(&community)
        };
        if !changed {
            return Ok(());
        }
        let body = Left {
            communities: set.iter().map(|c| c.to_hex()).collect(),
        };
        let text = toml::to_string(&body).map_err(io::Error::other)?;
        write_private(&self.left(), text.as_bytes())
    }
}

fn read_small(path: &Path) -> io::Result<String> {
    let file = fs::File::open(path)?;
    let mut text = String::new();
    io::Read::read_to_string(&mut io::Read::take(file, MAX_STATE_FILE), &mut text)?;
    Ok(text)
}

/// Writes a file readable only by us, atomically (temporary file, fsync, rename).
fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)
}

#[cfg(unix)]
fn restrict_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn restrict_dir(_: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn layout_and_secrets() {
        let tmp = tempfile::tempdir().unwrap();
        let d = DataDir::open(tmp.path().join("node")).unwrap();
        let key = d.load_or_create_member_key().unwrap();
        assert_eq!(
            d.load_or_create_member_key().unwrap().member_id(),
            key.member_id()
        );
        let token = d.load_or_create_token().unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(d.load_or_create_token().unwrap(), token);

        let master = PrivateKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(9));
        let id = master.public().community_id();
        assert!(d.master_key_of(&id).unwrap().is_none());
        d.save_master_key(&id, &master).unwrap();
        assert!(d.save_master_key(&id, &master).is_err(), "never replaced");
        assert_eq!(
            d.master_key_of(&id).unwrap().unwrap().member_id(),
            master.member_id()
        );
        #[cfg(unix)]
        {
            assert_eq!(mode(d.root()), 0o700);
            assert_eq!(mode(&d.token()), 0o600);
            assert_eq!(mode(&d.member_key()), 0o600);
            assert_eq!(mode(&d.master_key(&id)), 0o600);
        }

        assert!(d.left_communities().unwrap().is_empty());
        d.set_left(id, true).unwrap();
        assert!(d.left_communities().unwrap().contains(&id));
        d.set_left(id, false).unwrap();
        assert!(d.left_communities().unwrap().is_empty());
    }
}
