//! The file's identity and layout: header checks, the versioned schema and its migrations.
//!
//! A database of ours carries [`APPLICATION_ID`] in SQLite's `application_id` header field and
//! its schema version in `user_version`. [`MIGRATIONS`] is the list of steps; step `i` takes a
//! database from version `i` to `i + 1`, so a new file runs every step from 0 and an old one only
//! the missing ones. All pending steps run in one exclusive transaction at open: a failure
//! leaves the file exactly as it was. See `docs/storage-schema.md`.

use std::io::Read;
use std::path::{Path, PathBuf};

use dispersy::store::StoreError;
use rusqlite::Connection;

use crate::convert::SqlResult;

/// `application_id` of our files: "DPSY".
pub(crate) const APPLICATION_ID: i32 = 0x4450_5359;

/// One migration step, from version `i` to `i + 1` where `i` is its index in the list.
pub(crate) type Step = fn(&Connection) -> rusqlite::Result<()>;

/// Every migration step, oldest first. The newest schema version is its length.
pub(crate) const MIGRATIONS: &[Step] = &[create_v1];

/// The schema version this build writes.
pub(crate) fn latest() -> u32 {
    version_of(MIGRATIONS)
}

fn version_of(steps: &[Step]) -> u32 {
    u32::try_from(steps.len()).expect("invariant: a handful of migration steps")
}

/// Version 1: members, communities and messages. Every index names the queries it serves.
fn create_v1(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "
        CREATE TABLE member (
            id         BLOB PRIMARY KEY,   -- 20-byte member id (SHA-1 of the key)
            public_key BLOB NOT NULL
        ) WITHOUT ROWID;

        CREATE TABLE community (
            n      INTEGER PRIMARY KEY,    -- short key that message rows use
            id     BLOB NOT NULL UNIQUE,   -- 20-byte community id
            joined INTEGER NOT NULL DEFAULT 0, -- 1: a CommunityRecord was put
            master BLOB,
            spec   TEXT,
            kind   TEXT
        );

        CREATE TABLE message (
            id                 INTEGER PRIMARY KEY,
            community          INTEGER NOT NULL,
            global_time        INTEGER NOT NULL,
            member             BLOB NOT NULL,
            meta               INTEGER NOT NULL,
            digest             INTEGER NOT NULL,
            sequence           INTEGER,
            second_member      BLOB,
            undone             INTEGER NOT NULL DEFAULT 0,
            undone_member      BLOB,
            undone_global_time INTEGER,
            packet             BLOB NOT NULL
        );
        -- The one uniqueness rule; also point lookups, max global time (one seek) and
        -- ranges in (global time, member) order.
        CREATE UNIQUE INDEX message_id ON message (community, global_time, member);
        -- Covering index for count and fingerprint: never touches the packets.
        CREATE INDEX message_fingerprint ON message (community, global_time, meta, digest);
        -- Pruning (delete_up_to) of one meta-message.
        CREATE INDEX message_meta ON message (community, meta, global_time);
        -- Ranges restricted to one author.
        CREATE INDEX message_member ON message (community, member, global_time);
        -- last_sequence and by_sequence; only rows that have a sequence number.
        CREATE INDEX message_sequence ON message (community, member, meta, sequence, global_time)
            WHERE sequence IS NOT NULL;

        -- Counters kept exact at every commit so nothing at open has to count rows.
        CREATE TABLE counter (
            name  TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO counter (name, value) VALUES ('messages', 0);
        ",
    )
}

/// Tables and indexes a version-1 database must have.
const V1_OBJECTS: &[&str] = &[
    "member",
    "community",
    "message",
    "message_id",
    "message_fingerprint",
    "message_meta",
    "message_member",
    "message_sequence",
    "counter",
];

/// What [`classify`] found in a file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// An empty database: ours to create.
    Fresh,
    /// One of ours at this schema version (at most the latest).
    Ours(u32),
}

/// The path of the write-ahead log next to a database file.
pub(crate) fn wal_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

/// Looks at the raw file before SQLite does, so that a non-SQLite or truncated file gets a clear
/// error and is never touched (opening it read-write must not "repair" someone else's data).
pub(crate) fn check_header(path: &Path) -> Result<(), StoreError> {
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::Backend(format!("{}: {e}", path.display()))),
    };
    if len == 0 {
        return Ok(());
    }
    let mut header = Vec::with_capacity(100);
    std::fs::File::open(path)
        .and_then(|f| f.take(100).read_to_end(&mut header))
        .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
    if header.len() < 100 {
        return Err(StoreError::NotOurs(format!(
            "{} holds {len} bytes, too few for a SQLite header (truncated or not a database)",
            path.display()
        )));
    }
    if &header[..16] != b"SQLite format 3\0" {
        return Err(StoreError::NotOurs(format!(
            "{} is not a SQLite database (no SQLite header)",
            path.display()
        )));
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u32::from(u16::from_be_bytes([header[16], header[17]])) {
        1 => 65536,
        n if n.is_power_of_two() && (512..=32768).contains(&n) => n,
        n => {
            return Err(StoreError::Corrupt(format!(
                "{}: invalid page size {n}",
                path.display()
            )));
        }
    };
    // The in-header page count is valid when its "version-valid-for" matches the change counter.
    // With a non-empty WAL the file may legitimately lag behind (pages not yet checkpointed), so
    // only a file without one is checked.
    let wal_len = std::fs::metadata(wal_path(path)).map_or(0, |m| m.len());
    let pages = u64::from(be32(28));
    if be32(92) == be32(24) && wal_len == 0 && len < pages * u64::from(page_size) {
        return Err(StoreError::Corrupt(format!(
            "{} is truncated: its header counts {pages} pages of {page_size} bytes but the file \
             holds {len} bytes",
            path.display()
        )));
    }
    Ok(())
}

/// Decides whether an open database is empty, ours (and which version), or something else.
pub(crate) fn classify(conn: &Connection) -> Result<Found, StoreError> {
    let app: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .sql()?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .sql()?;
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .sql()?;
    if app == 0 && version == 0 && objects == 0 {
        return Ok(Found::Fresh);
    }
    if app != APPLICATION_ID {
        return Err(StoreError::NotOurs(format!(
            "a SQLite database of another application (application_id {app:#010x}, expected \
             {APPLICATION_ID:#010x})"
        )));
    }
    let supported = latest();
    match u32::try_from(version) {
        Ok(0) | Err(_) => Err(StoreError::Corrupt(format!(
            "dispersy database with invalid schema version {version}"
        ))),
        Ok(found) if found > supported => Err(StoreError::TooNew { found, supported }),
        Ok(found) => Ok(Found::Ours(found)),
    }
}

/// Checks that every table and index of the current schema exists (an O(1) look at the
/// schema table, not at the data).
pub(crate) fn check_objects(conn: &Connection) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare("SELECT 1 FROM sqlite_schema WHERE name = ?1")
        .sql()?;
    for name in V1_OBJECTS {
        if !stmt.exists([name]).sql()? {
            return Err(StoreError::Corrupt(format!(
                "schema object {name} is missing"
            )));
        }
    }
    Ok(())
}

/// Runs `steps[from..]` in one exclusive transaction and records the new version. Returns the
/// version reached. On failure nothing changes.
pub(crate) fn migrate(conn: &Connection, steps: &[Step], from: u32) -> Result<u32, StoreError> {
    let target = version_of(steps);
    if from >= target {
        return Ok(from);
    }
    conn.execute_batch("BEGIN EXCLUSIVE").sql()?;
    let run = || -> Result<(), StoreError> {
        for (i, step) in steps.iter().enumerate().skip(from as usize) {
            step(conn).map_err(|e| {
                StoreError::Backend(format!("schema migration {i} -> {} failed: {e}", i + 1))
            })?;
        }
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .sql()?;
        conn.pragma_update(None, "user_version", target).sql()
    };
    match run() {
        Ok(()) => {
            conn.execute_batch("COMMIT").sql()?;
            tracing::info!(from, to = target, "migrated store schema");
            Ok(target)
        }
        Err(e) => {
            // A failed step may already have ended the transaction; either way nothing is kept.
            if !conn.is_autocommit() {
                conn.execute_batch("ROLLBACK").sql()?;
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2_add_note(conn: &Connection) -> rusqlite::Result<()> {
        conn.execute_batch(
            "ALTER TABLE community ADD COLUMN note TEXT;
             UPDATE community SET note = 'migrated';",
        )
    }

    fn v2_broken(conn: &Connection) -> rusqlite::Result<()> {
        conn.execute_batch("ALTER TABLE community ADD COLUMN note TEXT; SELECT * FROM nowhere;")
    }

    fn v1_with_data() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        assert_eq!(classify(&conn).unwrap(), Found::Fresh);
        assert_eq!(migrate(&conn, &[create_v1], 0).unwrap(), 1);
        conn.execute("INSERT INTO community (id) VALUES (x'01')", [])
            .unwrap();
        conn
    }

    #[test]
    fn fresh_database_runs_every_step() {
        let conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&conn, MIGRATIONS, 0).unwrap(), latest());
        assert_eq!(classify(&conn).unwrap(), Found::Ours(latest()));
        check_objects(&conn).unwrap();
    }

    #[test]
    fn older_version_migrates_forward_keeping_data() {
        let conn = v1_with_data();
        let steps: &[Step] = &[create_v1, v2_add_note];
        assert_eq!(migrate(&conn, steps, 1).unwrap(), 2);
        let note: String = conn
            .query_row("SELECT note FROM community", [], |r| r.get(0))
            .unwrap();
        assert_eq!(note, "migrated");
        let v: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 2);
        // Already current: nothing runs.
        assert_eq!(migrate(&conn, steps, 2).unwrap(), 2);
    }

    #[test]
    fn failed_step_leaves_the_file_untouched() {
        let conn = v1_with_data();
        let err = migrate(&conn, &[create_v1, v2_broken], 1).unwrap_err();
        assert!(matches!(&err, StoreError::Backend(m) if m.contains("migration 1 -> 2")));
        let v: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 1);
        assert!(conn.prepare("SELECT note FROM community").is_err());
        assert!(conn.is_autocommit());
    }

    #[test]
    fn newer_and_foreign_databases_are_refused() {
        let conn = v1_with_data();
        conn.pragma_update(None, "user_version", latest() + 1)
            .unwrap();
        assert_eq!(
            classify(&conn).unwrap_err(),
            StoreError::TooNew {
                found: latest() + 1,
                supported: latest()
            }
        );
        let foreign = Connection::open_in_memory().unwrap();
        foreign.execute_batch("CREATE TABLE t (x)").unwrap();
        assert!(matches!(classify(&foreign), Err(StoreError::NotOurs(_))));
        foreign.pragma_update(None, "application_id", 7).unwrap();
        assert!(
            matches!(classify(&foreign), Err(StoreError::NotOurs(m)) if m.contains("0x00000007"))
        );
    }
}
