//! [`SqliteStore`]: the [`dispersy::store::Store`] trait on SQLite (bundled, through rusqlite).
//!
//! This is the node daemon's default store: one file per data directory holding member keys,
//! community records and every synced message with its raw packet.
//!
//! # How writes become durable
//!
//! The first write after a commit opens a transaction; every following write joins it;
//! [`Store::commit`] commits it. The node commits once per burst of received packets, so a burst
//! of 500 messages costs one commit, not 500. `commit()` with nothing pending runs no SQL at all.
//! Reads use the same connection and see uncommitted writes.
//!
//! The journal is a write-ahead log (`journal_mode=WAL`) with `synchronous=NORMAL`: a commit
//! appends to the log without waiting for the disk, and the log is synced at checkpoints. So:
//!
//! - a committed transaction survives the process being killed (even `SIGKILL`): it is in the
//!   operating system's page cache, and the next open replays the log;
//! - an operating-system crash or power cut may lose the last few commits, but never corrupts the
//!   file and never splits a transaction.
//!
//! Writes not yet committed when the store is dropped are committed by `Drop` (unless the thread
//! is panicking: then they are rolled back, as a crash would). [`SqliteStore::close`] commits,
//! checkpoints the log into the main file and reports errors, which `Drop` can only log. A
//! transaction that grows past [`Options::max_pending_writes`] is committed early, so a caller
//! that forgets to commit cannot grow the log without bound.
//!
//! # One process per file
//!
//! The connection runs in `locking_mode=EXCLUSIVE` and takes the write lock at open, holding it
//! until closed. A second process (or a second store in this process) opening the same file
//! waits [`Options::busy_timeout`] and then gets [`StoreError::Backend`] saying the database is
//! locked. Two nodes can never interleave writes in one file. Exclusive mode also keeps SQLite's
//! WAL index in private memory, so no `-shm` file is needed.
//!
//! Those locks are POSIX advisory locks: they belong to the process, and closing *any*
//! descriptor of the file releases all of them. So a second open of a file this process already
//! holds is refused before the file is touched at all (even reading its header would close a
//! descriptor and let other processes in); the stores open in a process are kept in a small
//! registry for this.
//!
//! # Opening is cheap and careful
//!
//! Before SQLite touches the file, its header is checked: a non-SQLite file, a truncated file, a
//! SQLite database of another application (by the `application_id` header field), a database of
//! a newer schema version, or one with missing tables each give a typed [`StoreError`] naming the
//! problem. Nothing is ever created over, or "repaired" in, a file that is not ours. An older
//! schema is migrated in one transaction (see the `schema` module and `docs/storage-schema.md`).
//!
//! Nothing at open reads messages: the message count is kept in a counter row, so opening a
//! store of a million messages costs the same as opening an empty one. The full consistency
//! check (`PRAGMA quick_check`, linear in the file size) runs only on request
//! ([`SqliteStore::check`], or [`Options::check_on_open`]).
//!
//! # Integers
//!
//! SQLite integers are signed 64-bit. Global times map to the same number and must not exceed
//! [`GlobalTime::MAX`] (`i64::MAX`): storing a larger one is an error, and query bounds above it
//! are clamped. Digests are stored as the same 64 bits read as a signed integer. See
//! `docs/storage-schema.md` for the tables, every index and the queries each one serves.
#![deny(missing_docs)]

mod convert;
mod schema;
mod store;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use dispersy::ids::CommunityId;
use dispersy::store::StoreError;
use rusqlite::{Connection, OpenFlags};

use convert::SqlResult;
use schema::Found;

#[cfg(doc)]
use dispersy::{ids::GlobalTime, store::Store};

/// Tunables of a [`SqliteStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// How long an open or a write waits for a lock held by another connection before failing.
    pub busy_timeout: Duration,
    /// Run [`SqliteStore::check`] at open (linear in the file size; off by default).
    pub check_on_open: bool,
    /// Page cache size in KiB.
    pub cache_kib: u32,
    /// Writes after which an uncommitted transaction is committed without waiting for
    /// [`Store::commit`].
    pub max_pending_writes: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            busy_timeout: Duration::from_secs(1),
            check_on_open: false,
            cache_kib: 16 * 1024,
            max_pending_writes: 100_000,
        }
    }
}

/// Sizes of a store, cheap to obtain (no row is counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Stored messages over all communities, uncommitted writes included.
    pub messages: u64,
    /// Size of the database pages (the main file once checkpointed).
    pub database_bytes: u64,
    /// Size of the write-ahead log file (zero in memory).
    pub wal_bytes: u64,
}

/// A [`dispersy::store::Store`] in a SQLite file. See the crate docs for the durability and
/// locking guarantees.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    /// This process's claim on the file; declared after `conn`, so it is released only once the
    /// connection is closed.
    _claim: Option<Claim>,
    path: Option<PathBuf>,
    options: Options,
    /// A write transaction is open (begun lazily by the first write since the last commit).
    in_transaction: bool,
    /// Writes in the open transaction.
    pending_writes: u64,
    /// Stored messages, uncommitted changes included; written to the counter row at commit.
    messages: u64,
    /// `messages` differs from the counter row.
    count_dirty: bool,
    /// Communities known to have a `community` row, so inserts can skip creating it. Cleared
    /// whenever a write fails or a transaction is lost; at most [`MAX_KNOWN_COMMUNITIES`].
    known_communities: BTreeSet<CommunityId>,
}

/// Bound of [`SqliteStore::known_communities`]; the set is cleared when it would grow past it.
const MAX_KNOWN_COMMUNITIES: usize = 1024;

/// The database files the stores of this process have open, by canonical path (see the crate
/// docs: a second open must not touch a file we hold).
static OPEN_FILES: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// One store's entry in [`OPEN_FILES`], removed when dropped.
#[derive(Debug)]
struct Claim(PathBuf);

impl Claim {
    /// Claims `path` (whose parent directory exists), or reports that this process holds it.
    fn take(path: &Path) -> Result<Claim, StoreError> {
        let io = |e: std::io::Error| StoreError::Backend(format!("{}: {e}", path.display()));
        // Resolve links and relative parts without opening the file.
        let canonical = match std::fs::canonicalize(path) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let name = path.file_name().ok_or_else(|| {
                    StoreError::Backend(format!("{}: not a file name", path.display()))
                })?;
                let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
                std::fs::canonicalize(parent.unwrap_or(Path::new(".")))
                    .map_err(io)?
                    .join(name)
            }
            Err(e) => return Err(io(e)),
        };
        let mut open = OPEN_FILES.lock().unwrap_or_else(PoisonError::into_inner);
        if !open.insert(canonical.clone()) {
            return Err(StoreError::Backend(format!(
                "{}: database is locked: this process has it open already (is another node \
                 using this data directory?)",
                path.display()
            )));
        }
        Ok(Claim(canonical))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        OPEN_FILES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.0);
    }
}

impl SqliteStore {
    /// Opens (or creates) the store at `path` with default [`Options`], creating parent
    /// directories.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, Options::default())
    }

    /// Opens (or creates) the store at `path`.
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::Backend(format!("{}: {e}", parent.display())))?;
        }
        let claim = Claim::take(path)?;
        schema::check_header(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).sql()?;
        let mut store = SqliteStore::init(conn, Some(path.to_path_buf()), options)?;
        // Held from before the header was read; on failure it is released after the connection
        // closed (`init` drops it first).
        store._claim = Some(claim);
        Ok(store)
    }

    /// A store in memory, for tests and tools; nothing survives it.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory().sql()?;
        SqliteStore::init(conn, None, Options::default())
    }

    fn init(
        conn: Connection,
        path: Option<PathBuf>,
        options: Options,
    ) -> Result<SqliteStore, StoreError> {
        conn.busy_timeout(options.busy_timeout).sql()?;
        // Exclusive before the first read, so the WAL index lives in private memory and the file
        // lock is held for the connection's lifetime.
        conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE")
            .sql()?;
        // Classify before any pragma that writes: a foreign file must stay untouched.
        let found = schema::classify(&conn)?;
        if path.is_some() {
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .sql()?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Backend(format!(
                    "cannot switch the journal to WAL (got {mode})"
                )));
            }
        }
        conn.execute_batch(&format!(
            "PRAGMA synchronous = NORMAL;
             PRAGMA temp_store = MEMORY;
             PRAGMA journal_size_limit = 67108864;
             PRAGMA cache_size = -{};",
            options.cache_kib
        ))
        .sql()?;
        conn.set_prepared_statement_cache_capacity(64);
        let from = match found {
            Found::Fresh => 0,
            Found::Ours(v) => v,
        };
        schema::migrate(&conn, schema::MIGRATIONS, from)?;
        schema::check_objects(&conn)?;
        // Take the write lock now (exclusive mode keeps it), so a second opener fails here and
        // not at its first write.
        conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;").sql()?;
        let mut store = SqliteStore {
            conn,
            _claim: None,
            path,
            options,
            in_transaction: false,
            pending_writes: 0,
            messages: 0,
            count_dirty: false,
            known_communities: BTreeSet::new(),
        };
        store.messages = store.stored_count()?;
        if store.options.check_on_open {
            store.check()?;
        }
        Ok(store)
    }

    /// The file this store lives in (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Stored messages over all communities (uncommitted writes included). O(1).
    pub fn message_count(&self) -> u64 {
        self.messages
    }

    /// Message count and file sizes. O(1): reads two header fields and the log's length.
    pub fn stats(&self) -> Result<Stats, StoreError> {
        let pages: i64 = self
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .sql()?;
        let page_size: i64 = self
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .sql()?;
        let wal_bytes = self
            .path
            .as_deref()
            .and_then(|p| std::fs::metadata(schema::wal_path(p)).ok())
            .map_or(0, |m| m.len());
        Ok(Stats {
            messages: self.messages,
            database_bytes: u64::try_from(pages.saturating_mul(page_size)).unwrap_or(0),
            wal_bytes,
        })
    }

    /// Full consistency check: SQLite's `PRAGMA quick_check` (every page and record, linear in
    /// the file size: about a second per few hundred MB) and the message counter against the
    /// rows. Returns [`StoreError::Corrupt`] naming the first problems found.
    pub fn check(&self) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare("PRAGMA quick_check(10)").sql()?;
        let problems: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .sql()?
            .collect::<Result<_, _>>()
            .sql()?;
        if problems != ["ok"] {
            return Err(StoreError::Corrupt(problems.join("; ")));
        }
        let rows: i64 = self
            .conn
            .query_row("SELECT count(*) FROM message", [], |r| r.get(0))
            .sql()?;
        if u64::try_from(rows).ok() != Some(self.messages) {
            return Err(StoreError::Corrupt(format!(
                "message counter says {} but {rows} rows are stored",
                self.messages
            )));
        }
        Ok(())
    }

    /// Commits, moves the write-ahead log into the main file and closes. Errors that `Drop`
    /// could only log are returned here.
    pub fn close(mut self) -> Result<(), StoreError> {
        dispersy::store::Store::commit(&mut self)?;
        if self.path.is_some() {
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .sql()?;
        }
        Ok(())
    }

    /// The counter row.
    fn stored_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT value FROM counter WHERE name = 'messages'",
                [],
                |r| r.get(0),
            )
            .sql()?;
        u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative message counter {n}")))
    }

    /// Opens the write transaction if none is open. Reports writes lost to a rollback that
    /// SQLite performed on its own after an earlier failure (disk full, I/O error).
    fn begin_write(&mut self) -> Result<(), StoreError> {
        if self.in_transaction {
            if self.conn.is_autocommit() {
                return Err(self.lost_transaction());
            }
            return Ok(());
        }
        self.conn.execute_batch("BEGIN IMMEDIATE").sql()?;
        self.in_transaction = true;
        Ok(())
    }

    /// Resets after SQLite rolled back the open transaction; the error to report.
    fn lost_transaction(&mut self) -> StoreError {
        self.known_communities.clear();
        self.in_transaction = false;
        self.pending_writes = 0;
        self.count_dirty = false;
        match self.stored_count() {
            Ok(n) => self.messages = n,
            Err(e) => return e,
        }
        StoreError::Backend(
            "an earlier failure rolled back the writes made since the last commit".into(),
        )
    }

    /// Accounts for one write; commits early when the transaction grew too big.
    fn wrote(&mut self, message_delta: i64) -> Result<(), StoreError> {
        if message_delta != 0 {
            self.messages = self.messages.saturating_add_signed(message_delta);
            self.count_dirty = true;
        }
        self.pending_writes += 1;
        if self.pending_writes >= self.options.max_pending_writes {
            tracing::debug!(
                writes = self.pending_writes,
                "committing a long transaction early"
            );
            self.commit_pending()?;
        }
        Ok(())
    }

    /// Writes the counter and commits the open transaction, if any.
    fn commit_pending(&mut self) -> Result<(), StoreError> {
        if !self.in_transaction {
            return Ok(());
        }
        if self.conn.is_autocommit() {
            return Err(self.lost_transaction());
        }
        if self.count_dirty {
            let n = i64::try_from(self.messages).unwrap_or(i64::MAX);
            self.conn
                .prepare_cached("UPDATE counter SET value = ?1 WHERE name = 'messages'")
                .and_then(|mut s| s.execute([n]))
                .sql()?;
        }
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => {
                self.in_transaction = false;
                self.pending_writes = 0;
                self.count_dirty = false;
                Ok(())
            }
            Err(e) => {
                self.known_communities.clear();
                // A busy COMMIT leaves the transaction open (commit can be retried); any other
                // failure rolled it back.
                if self.conn.is_autocommit() {
                    let _ = self.lost_transaction();
                }
                Err(convert::db_err(e))
            }
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        if let Err(e) = self.commit_pending() {
            tracing::warn!(error = %e, "store dropped with writes that could not be committed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use dispersy::ids::{CommunityId, GlobalTime, MemberId, MetaId};
    use dispersy::store::{Store, StoredMessage, Undone, digest};

    pub(crate) fn msg(c: u8, gt: u64, member: u8) -> StoredMessage {
        let packet = Bytes::from(vec![c, member, gt as u8, 0xAA]);
        StoredMessage {
            community: CommunityId([c; 20]),
            meta: MetaId(1),
            member: MemberId([member; 20]),
            global_time: GlobalTime(gt),
            sequence: None,
            second_member: None,
            digest: digest(&packet),
            packet,
            undone: Undone::No,
        }
    }

    fn filled(path: &Path, n: u64) {
        let mut s = SqliteStore::open(path).unwrap();
        for gt in 1..=n {
            assert!(s.insert_message(&msg(1, gt, (gt % 7) as u8)).unwrap());
        }
        s.close().unwrap();
    }

    fn quick(path: &Path) -> Options {
        let _ = path;
        Options {
            busy_timeout: Duration::from_millis(50),
            ..Options::default()
        }
    }

    #[test]
    fn reopens_with_data_and_creates_parent_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/dispersy.db");
        filled(&path, 100);
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.message_count(), 100);
        assert_eq!(
            s.max_global_time(&CommunityId([1; 20])).unwrap(),
            GlobalTime(100)
        );
        s.check().unwrap();
        let stats = s.stats().unwrap();
        assert_eq!(stats.messages, 100);
        assert!(stats.database_bytes > 4096);
    }

    #[test]
    fn second_opener_gets_a_lock_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let first = SqliteStore::open(&path).unwrap();
        let err = SqliteStore::open_with(&path, quick(&path)).unwrap_err();
        assert!(
            matches!(&err, StoreError::Backend(m) if m.contains("locked")),
            "{err}"
        );
        drop(first);
        SqliteStore::open_with(&path, quick(&path)).unwrap();
    }

    #[test]
    fn files_that_are_not_ours_are_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "x".repeat(5000)).unwrap();
        let err = SqliteStore::open(&text).unwrap_err();
        assert!(
            matches!(&err, StoreError::NotOurs(m) if m.contains("no SQLite header")),
            "{err}"
        );
        assert_eq!(std::fs::read(&text).unwrap(), "x".repeat(5000).as_bytes());

        let short = dir.path().join("short");
        std::fs::write(&short, b"SQLite format 3\0").unwrap();
        let err = SqliteStore::open(&short).unwrap_err();
        assert!(
            matches!(&err, StoreError::NotOurs(m) if m.contains("too few")),
            "{err}"
        );

        let foreign = dir.path().join("foreign.db");
        let conn = Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        drop(conn);
        let before = std::fs::read(&foreign).unwrap();
        let err = SqliteStore::open(&foreign).unwrap_err();
        assert!(
            matches!(&err, StoreError::NotOurs(m) if m.contains("another application")),
            "{err}"
        );
        assert_eq!(std::fs::read(&foreign).unwrap(), before);
        assert!(!schema::wal_path(&foreign).exists());
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        filled(&path, 3);
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", schema::latest() + 1)
            .unwrap();
        drop(conn);
        assert_eq!(
            SqliteStore::open(&path).unwrap_err(),
            StoreError::TooNew {
                found: schema::latest() + 1,
                supported: schema::latest()
            }
        );
    }

    #[test]
    fn truncated_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        filled(&path, 2000);
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len / 2).unwrap();
        drop(f);
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt(m) if m.contains("truncated")),
            "{err}"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len / 2);
    }

    #[test]
    fn damaged_pages_are_reported_not_panicked_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        filled(&path, 3000);
        let mut bytes = std::fs::read(&path).unwrap();
        let len = bytes.len();
        // Scribble over the second half of the file, keeping the header and schema page.
        for (i, b) in bytes[len / 2..].iter_mut().enumerate() {
            *b = (i * 31 % 251) as u8;
        }
        std::fs::write(&path, &bytes).unwrap();
        let opened = SqliteStore::open(&path);
        let err = match opened {
            Err(e) => e,
            Ok(s) => {
                let c = CommunityId([1; 20]);
                let q = dispersy::store::RangeQuery::between(GlobalTime(1), GlobalTime::MAX, 5000);
                let read = s.range(&c, &q).map(|_| ());
                let check = s.check();
                check.and(read).unwrap_err()
            }
        };
        assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    }

    #[test]
    fn in_memory_store_works() {
        let mut s = SqliteStore::open_in_memory().unwrap();
        assert!(s.insert_message(&msg(1, 5, 1)).unwrap());
        s.commit().unwrap();
        assert_eq!(s.message_count(), 1);
        assert_eq!(s.stats().unwrap().wal_bytes, 0);
        s.close().unwrap();
    }

    #[test]
    fn global_times_above_max_are_refused_and_clamped_in_queries() {
        let mut s = SqliteStore::open_in_memory().unwrap();
        let c = CommunityId([1; 20]);
        assert!(s.insert_message(&msg(1, GlobalTime::MAX.0, 1)).unwrap());
        let err = s
            .insert_message(&msg(1, GlobalTime::MAX.0 + 1, 1))
            .unwrap_err();
        assert!(matches!(&err, StoreError::Backend(m) if m.contains("GlobalTime::MAX")));
        assert_eq!(s.max_global_time(&c).unwrap(), GlobalTime::MAX);
        assert_eq!(
            s.count(&c, None, GlobalTime(1), GlobalTime(u64::MAX))
                .unwrap(),
            1
        );
        assert_eq!(
            s.count(&c, None, GlobalTime(u64::MAX), GlobalTime(u64::MAX))
                .unwrap(),
            0
        );
        let id = dispersy::ids::MessageId {
            member: MemberId([1; 20]),
            global_time: GlobalTime(u64::MAX),
        };
        assert_eq!(s.message(&c, &id).unwrap(), None);
        assert!(!s.delete_message(&c, &id).unwrap());
        assert_eq!(
            s.delete_up_to(&c, MetaId(1), GlobalTime(u64::MAX)).unwrap(),
            1
        );
    }

    #[test]
    fn uncommitted_writes_are_rolled_back_when_dropped_while_panicking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let p = path.clone();
        let r = std::panic::catch_unwind(move || {
            let mut s = SqliteStore::open(&p).unwrap();
            s.insert_message(&msg(1, 1, 1)).unwrap();
            s.commit().unwrap();
            s.insert_message(&msg(1, 2, 1)).unwrap();
            panic!("boom");
        });
        assert!(r.is_err());
        let mut s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.message_count(), 1);
        s.insert_message(&msg(1, 3, 1)).unwrap();
        drop(s);
        assert_eq!(SqliteStore::open(&path).unwrap().message_count(), 2);
    }

    #[test]
    fn long_transactions_are_committed_early() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut s = SqliteStore::open_with(
            &path,
            Options {
                max_pending_writes: 10,
                ..Options::default()
            },
        )
        .unwrap();
        for gt in 1..=25 {
            s.insert_message(&msg(1, gt, 1)).unwrap();
        }
        assert!(s.in_transaction);
        assert_eq!(s.pending_writes, 5);
        assert_eq!(s.stored_count().unwrap(), 20);
    }

    /// SQLite's `sum()` fails on 64-bit overflow; the fingerprint sums the two 32-bit halves of
    /// the digests apart and must equal the wrapping sum whatever the digests.
    #[test]
    fn fingerprints_wrap_like_the_model_on_extreme_digests() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SqliteStore::open(dir.path().join("f.db")).unwrap();
        let c = CommunityId([1; 20]);
        let digests = [
            u64::MAX,
            u64::MAX,
            1 << 63,
            (1 << 63) + 5,
            u64::MAX - 1,
            0,
            7,
        ];
        let mut want = dispersy::store::Fingerprint::default();
        for (i, d) in digests.iter().enumerate() {
            let mut m = msg(1, i as u64 + 1, 3);
            m.digest = *d;
            assert!(s.insert_message(&m).unwrap());
            want.add(*d);
        }
        let got = s
            .fingerprint(&c, Some(&[MetaId(1)]), GlobalTime(1), GlobalTime(u64::MAX))
            .unwrap();
        assert_eq!(got, want);
        assert_eq!(
            s.fingerprint(&c, None, GlobalTime(1), GlobalTime(u64::MAX))
                .unwrap(),
            want
        );
        // A range of only the largest digests.
        let mut top = dispersy::store::Fingerprint::default();
        for d in &digests[..4] {
            top.add(*d);
        }
        assert_eq!(
            s.fingerprint(&c, None, GlobalTime(1), GlobalTime(4))
                .unwrap(),
            top
        );
    }
}
