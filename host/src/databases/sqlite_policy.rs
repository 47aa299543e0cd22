//! What a guest's SQL may do on a pooled SQLite connection. The connection is shared: the
//! next query on it may be another module's, and SQLite can reach files. So an authorizer
//! allows reading and writing the database's own tables and its schema, and denies:
//!
//! - `ATTACH` and `DETACH`: attaching names any file the service user can open (another
//!   personality's `users.db`) or creates one, and the attachment stays on the connection.
//!   `VACUUM` and `VACUUM INTO` attach their target internally, so they are denied through
//!   that `ATTACH` (SQLite asks the authorizer nothing for `VACUUM` itself): `VACUUM INTO
//!   '/tmp/x'` created a file anywhere.
//! - every `PRAGMA`: setting one outlives the statement on the shared connection
//!   (`foreign_keys`, `query_only`, `recursive_triggers`...), several touch files
//!   (`journal_mode`, `temp_store_directory`, `wal_checkpoint`), and the read-only ones
//!   reveal paths (`database_list`) or cost a whole scan (`integrity_check`). A module
//!   reads the schema from `sqlite_schema` instead. An allow list of harmless pragmas was
//!   weighed and left out: no shipped module uses one, and each entry would need the same
//!   argument.
//! - transactions (`BEGIN`, `COMMIT`, `ROLLBACK`, `SAVEPOINT`, `RELEASE`): each call runs on
//!   whichever connection is free, so a transaction cannot span calls, and a `BEGIN` left
//!   behind would hold a lock for every later borrower. Each statement is its own implicit
//!   transaction.
//! - temporary tables, indexes, views and triggers: they live on the connection, so the
//!   next module would see them, and a temporary trigger on a main table would run inside
//!   other modules' statements.
//! - virtual tables (`CREATE VIRTUAL TABLE`) and the `load_extension()` function: code
//!   and files the host did not choose.
//! - anything this SQLite reports that the list above does not name.
//!
//! Belt and braces where SQLite offers them: `SQLITE_LIMIT_ATTACHED = 0`,
//! `SQLITE_DBCONFIG_DEFENSIVE` (no writes to the schema table or `sqlite_dbpage`),
//! `SQLITE_DBCONFIG_TRUSTED_SCHEMA` off (functions with side effects not run from
//! schema objects), extension loading never enabled. And a connection goes back to the
//! pool only in autocommit mode (see [`is_clean`]).

use std::cell::RefCell;

use anyhow::{Context, Result};
use rusqlite::Connection;
use rusqlite::config::DbConfig;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;

use super::MAX_RESULT_BYTES;

/// Longest text or blob SQLite may build (`SQLITE_LIMIT_LENGTH`, default 1 GB): what it
/// defends is host memory against `randomblob(1e9)` and the like. Nothing longer could be
/// returned anyway ([`MAX_RESULT_BYTES`]).
const MAX_VALUE_BYTES: usize = MAX_RESULT_BYTES;

thread_local! {
    /// Why the authorizer last denied a statement on this thread, for the error message:
    /// SQLite itself only says "not authorized". A query's prepare and its error happen
    /// on one thread.
    static DENIAL: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Applies the policy to a freshly opened connection.
pub fn harden(conn: &Connection) -> Result<()> {
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)
        .context("failed to forbid attached databases")?;
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES as i32)
        .context("failed to limit value lengths")?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
        .context("failed to set SQLITE_DBCONFIG_DEFENSIVE")?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)
        .context("failed to clear SQLITE_DBCONFIG_TRUSTED_SCHEMA")?;
    conn.authorizer(Some(authorize));
    Ok(())
}

/// Whether the connection may go back to the pool: not inside a transaction. The
/// authorizer denies `BEGIN`, so this is the second line: a connection that fails it is
/// closed, which rolls back whatever it held.
pub fn is_clean(conn: &Connection) -> bool {
    conn.is_autocommit()
}

/// Forgets the reason of an earlier denial on this thread; call before a query.
pub fn forget_denial() {
    DENIAL.with(|d| d.borrow_mut().take());
}

/// The message of a failed query: the authorizer's reason when it denied something since
/// [`forget_denial`] (SQLite says only "not authorized", or names the function), else
/// SQLite's own.
pub fn explain(error: &rusqlite::Error) -> String {
    match DENIAL.with(|d| d.borrow_mut().take()) {
        Some(reason) => format!("not authorized: {reason}"),
        None => error.to_string(),
    }
}

fn authorize(context: AuthContext<'_>) -> Authorization {
    let verdict = if context.database_name == Some("temp") {
        temp_denial(&context.action)
    } else {
        denial(&context.action)
    };
    match verdict {
        None => Authorization::Allow,
        Some(reason) => {
            DENIAL.with(|d| {
                d.borrow_mut().get_or_insert(reason);
            });
            Authorization::Deny
        }
    }
}

/// Why `action` on the `temp` schema is denied: anything but reading it. `CREATE TABLE
/// temp.t` is reported as a plain `CreateTable` whose database is `temp`.
fn temp_denial(action: &AuthAction<'_>) -> Option<String> {
    match action {
        AuthAction::Select | AuthAction::Read { .. } | AuthAction::Recursive => None,
        AuthAction::Function { .. } => denial(action),
        _ => Some(TEMP_OBJECTS.to_string()),
    }
}

/// Why temporary objects are denied.
const TEMP_OBJECTS: &str =
    "temporary objects: they would stay on a pooled connection other modules borrow next";

/// Why `action` is denied on a shared connection, or `None` if it is allowed.
fn denial(action: &AuthAction<'_>) -> Option<String> {
    use AuthAction::*;
    let reason = match action {
        Select | Read { .. } | Insert { .. } | Update { .. } | Delete { .. } | Recursive => {
            return None;
        }
        CreateTable { .. } | CreateIndex { .. } | CreateView { .. } | CreateTrigger { .. } => {
            return None;
        }
        DropTable { .. } | DropIndex { .. } | DropView { .. } | DropTrigger { .. } => return None,
        AlterTable { .. } | Reindex { .. } | Analyze { .. } => return None,
        Function { function_name } if !function_name.eq_ignore_ascii_case("load_extension") => {
            return None;
        }
        Function { .. } => "load_extension() loads code into the host".to_string(),
        Attach { filename } => format!(
            "ATTACH `{filename}` (also what VACUUM and VACUUM INTO do): a pool reaches its own database file only"
        ),
        Detach { .. } => "DETACH: nothing can be attached".to_string(),
        Pragma { pragma_name, .. } => format!(
            "PRAGMA {pragma_name}: pragmas change or reveal the pooled connection other modules share"
        ),
        Transaction { .. } | Savepoint { .. } => {
            "transactions: each call runs on whichever pooled connection is free, in its own implicit transaction".to_string()
        }
        CreateTempTable { .. }
        | CreateTempIndex { .. }
        | CreateTempView { .. }
        | CreateTempTrigger { .. }
        | DropTempTable { .. }
        | DropTempIndex { .. }
        | DropTempView { .. }
        | DropTempTrigger { .. } => TEMP_OBJECTS.to_string(),
        CreateVtable { module_name, .. } | DropVtable { module_name, .. } => {
            format!("virtual tables (module `{module_name}`)")
        }
        other => format!("an action this host does not allow ({other:?})"),
    };
    Some(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database in a directory of its own, with a table, opened as the pool opens it.
    struct Db {
        dir: tempfile::TempDir,
        conn: Connection,
    }

    fn db() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE users (name TEXT, password TEXT); INSERT INTO users VALUES ('demo', 'demo');")
            .unwrap();
        let conn = Connection::open(&path).unwrap();
        harden(&conn).unwrap();
        Db { dir, conn }
    }

    /// Runs `sql`, expecting it to be refused; returns the message.
    fn refused(conn: &Connection, sql: &str) -> String {
        forget_denial();
        let error = conn
            .prepare(sql)
            .and_then(|mut s| s.raw_query().next().map(|_| ()))
            .expect_err(sql);
        explain(&error)
    }

    /// The connection still reads its own table and is in autocommit mode, with nothing
    /// attached and no temporary object.
    fn assert_clean(conn: &Connection) {
        assert!(is_clean(conn), "in autocommit mode");
        let name: String = conn
            .query_row("SELECT name FROM users", [], |r| r.get(0))
            .unwrap();
        assert_eq!(name, "demo");
        let temp: i64 = conn
            .query_row("SELECT count(*) FROM temp.sqlite_schema", [], |r| r.get(0))
            .unwrap();
        assert_eq!(temp, 0, "no temporary object");
        let attached: Result<i64, _> =
            conn.query_row("SELECT count(*) FROM other.users", [], |r| r.get(0));
        assert!(attached.is_err(), "nothing attached");
    }

    #[test]
    fn attach_of_another_database_is_refused_and_leaves_nothing_attached() {
        let db = db();
        let other = tempfile::tempdir().unwrap();
        let other_db = other.path().join("users.db");
        Connection::open(&other_db)
            .unwrap()
            .execute_batch("CREATE TABLE users (name TEXT)")
            .unwrap();
        let sql = format!("ATTACH '{}' AS other", other_db.display());
        let message = refused(&db.conn, &sql);
        assert!(message.starts_with("not authorized: ATTACH `"), "{message}");
        let message = refused(&db.conn, "ATTACH ?1 || 'x' AS other");
        assert!(message.contains("not authorized"), "{message}");
        let message = refused(&db.conn, "DETACH main");
        assert!(message.starts_with("not authorized: DETACH"), "{message}");
        assert_clean(&db.conn);
    }

    #[test]
    fn vacuum_into_creates_no_file_anywhere() {
        let db = db();
        let elsewhere = tempfile::tempdir().unwrap();
        let target = elsewhere.path().join("copy.db");
        let message = refused(&db.conn, &format!("VACUUM INTO '{}'", target.display()));
        assert!(message.contains("not authorized: ATTACH"), "{message}");
        assert!(!target.exists(), "no file was created");
        let message = refused(&db.conn, "VACUUM");
        assert!(message.contains("not authorized"), "{message}");
        let files: Vec<_> = std::fs::read_dir(db.dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1, "only the database itself: {files:?}");
        assert_clean(&db.conn);
    }

    #[test]
    fn pragmas_are_refused_whatever_they_do() {
        let db = db();
        for sql in [
            "PRAGMA journal_mode = WAL",
            "PRAGMA temp_store_directory = '/tmp'",
            "PRAGMA foreign_keys = OFF",
            "PRAGMA database_list",
            "PRAGMA table_info(users)",
            "SELECT * FROM pragma_table_info('users')",
            "PRAGMA writable_schema = ON",
        ] {
            let message = refused(&db.conn, sql);
            assert!(
                message.starts_with("not authorized: PRAGMA "),
                "{sql}: {message}"
            );
        }
        assert_clean(&db.conn);
    }

    #[test]
    fn transactions_are_refused_and_the_connection_stays_in_autocommit() {
        let db = db();
        for sql in [
            "BEGIN",
            "BEGIN IMMEDIATE",
            "SAVEPOINT s",
            "COMMIT",
            "ROLLBACK",
        ] {
            let message = refused(&db.conn, sql);
            assert!(
                message.starts_with("not authorized: transactions"),
                "{sql}: {message}"
            );
        }
        assert_clean(&db.conn);
    }

    #[test]
    fn temporary_objects_are_refused() {
        let db = db();
        for sql in [
            "CREATE TEMP TABLE t (x)",
            "CREATE TABLE temp.t (x)",
            "CREATE TEMP VIEW v AS SELECT 1",
            "CREATE TEMP TRIGGER tr AFTER INSERT ON users BEGIN DELETE FROM users; END",
            "CREATE TRIGGER temp.tr AFTER INSERT ON users BEGIN DELETE FROM users; END",
            "CREATE VIEW temp.v AS SELECT 1",
        ] {
            let message = refused(&db.conn, sql);
            assert!(
                message.starts_with("not authorized: temporary objects"),
                "{sql}: {message}"
            );
        }
        assert_clean(&db.conn);
    }

    #[test]
    fn extensions_virtual_tables_and_huge_values_are_refused() {
        let db = db();
        let message = refused(&db.conn, "SELECT load_extension('/tmp/evil.so')");
        assert!(
            message.starts_with("not authorized: load_extension()"),
            "{message}"
        );
        let message = refused(&db.conn, "CREATE VIRTUAL TABLE f USING fts5(body)");
        assert!(
            message.starts_with("not authorized: virtual tables"),
            "{message}"
        );
        let message = refused(&db.conn, "SELECT randomblob(1000000000)");
        assert!(message.contains("too big"), "{message}");
        assert_clean(&db.conn);
    }

    #[test]
    fn the_schema_cannot_be_written_directly() {
        let db = db();
        let message = refused(
            &db.conn,
            "UPDATE sqlite_schema SET sql = 'CREATE TABLE users (x)' WHERE name = 'users'",
        );
        assert!(
            message.contains("may not be modified"),
            "defensive mode: {message}"
        );
        assert_clean(&db.conn);
    }

    #[test]
    fn ordinary_queries_and_schema_changes_still_work() {
        let db = db();
        let conn = &db.conn;
        conn.execute("INSERT INTO users VALUES (?1, ?2)", ["alice", "secret"])
            .unwrap();
        conn.execute("UPDATE users SET password = 'x' WHERE name = 'alice'", [])
            .unwrap();
        let found: String = conn
            .query_row(
                "select name from users where users.password=\"x\" and users.name=\"alice\"",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(found, "alice");
        conn.execute_batch("CREATE TABLE notes (body TEXT); CREATE INDEX notes_body ON notes (body); DROP TABLE notes")
            .unwrap();
        let counted: i64 = conn
            .query_row(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT sum(i) FROM n",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(counted, 15);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 1);
        assert_clean(conn);
    }

    #[test]
    fn a_connection_inside_a_transaction_is_not_clean() {
        // Without the authorizer (the second line must hold on its own).
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("BEGIN").unwrap();
        assert!(!is_clean(&conn));
        conn.execute_batch("ROLLBACK").unwrap();
        assert!(is_clean(&conn));
    }
}
