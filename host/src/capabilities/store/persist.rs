//! A keyed store kept in the embedded SQLite database: one file per module,
//! `<personality>/store/<module>.sqlite`, written through on every change so it survives a
//! restart. The in-memory map stays the one the guest reads; this file is its copy.
//!
//! Opened at prestart like every other grant (as root at startup): the directory is made
//! `0700`, the database put in WAL mode and read once, which creates its `-wal` and `-shm`
//! files, so the connection keeps every descriptor it needs after the privilege drop and
//! never has to create a file in a directory the service user may not write.
//!
//! Writes run on the module's blocking threads, one at a time under the file's lock, so
//! the file is changed in the order memory is, and a write that waits (a checkpoint's
//! fsync, a lock another connection holds, up to [`BUSY_TIMEOUT`]) holds up only the
//! sessions writing this store, never a worker. No fsync but at a checkpoint.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags, params};

/// How long a write waits for a lock held by another connection (a `sqlite3` shell the
/// operator opened, say) before it fails with an error the guest sees.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// One persisted entry: key, value, deadline (milliseconds since the epoch).
pub type Row = (String, Vec<u8>, Option<u64>);

/// One module's persisted store.
pub struct Persisted {
    conn: Connection,
}

impl Persisted {
    /// Opens (creating it and its directory if missing) the store at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| {
                    format!("failed to create the store directory `{}`", dir.display())
                })?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .with_context(|| format!("failed to open the store `{}`", path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL with NORMAL sync: a write costs no fsync (only a checkpoint does), and an
        // operating-system crash may lose the last writes but never corrupts the file.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA temp_store = MEMORY;
             CREATE TABLE IF NOT EXISTS store (
                 key TEXT PRIMARY KEY NOT NULL,
                 value BLOB NOT NULL,
                 expires INTEGER
             ) WITHOUT ROWID;",
        )
        .with_context(|| format!("failed to prepare the store `{}`", path.display()))?;
        Ok(Persisted { conn })
    }

    /// How long a write waits for another connection's lock (tests: longer than the
    /// default, so a test decides when the lock goes).
    #[cfg(test)]
    pub fn wait_for_locks(&self, wait: std::time::Duration) {
        self.conn.busy_timeout(wait).unwrap();
    }

    /// Every entry not expired at `now` (milliseconds since the epoch); expired ones are
    /// deleted.
    pub fn load(&self, now: u64) -> Result<Vec<Row>> {
        let now = now as i64;
        self.conn
            .execute(
                "DELETE FROM store WHERE expires IS NOT NULL AND expires <= ?1",
                [now],
            )
            .context("failed to drop expired keys from the store")?;
        let mut statement = self.conn.prepare("SELECT key, value, expires FROM store")?;
        let rows = statement
            .query_map([], |row| {
                let expires: Option<i64> = row.get(2)?;
                Ok((row.get(0)?, row.get(1)?, expires.map(|e| e as u64)))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context("failed to read the store")?;
        Ok(rows)
    }

    /// In one transaction: deletes `deletes`, then writes `put` (key, value, deadline).
    pub fn apply(&self, deletes: &[&str], put: Option<(&str, &[u8], Option<u64>)>) -> Result<()> {
        let transaction = self
            .conn
            .unchecked_transaction()
            .context("failed to begin a write of the persisted store")?;
        for key in deletes {
            transaction
                .prepare_cached("DELETE FROM store WHERE key = ?1")?
                .execute([key])
                .context("failed to delete from the persisted store")?;
        }
        if let Some((key, value, expires)) = put {
            transaction
                .prepare_cached(
                    "INSERT INTO store (key, value, expires) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires",
                )?
                .execute(params![key, value, expires.map(|e| e as i64)])
                .context("failed to write the persisted store")?;
        }
        transaction
            .commit()
            .context("failed to commit a write of the persisted store")
    }
}
