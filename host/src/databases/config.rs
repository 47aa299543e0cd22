//! Startup step 6: each `database` section checked into a [`PoolConfig`], nothing opened.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serverkit_c11n::{Config, Section};

/// The database server kinds a pool can talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// MySQL or MariaDB.
    Mysql,
    /// PostgreSQL.
    Postgres,
    /// The embedded SQLite database.
    Sqlite,
}

/// One `database IDENT { ... }` section, checked.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The section's title, by which modules name the pool.
    pub name: String,
    /// Which server.
    pub driver: Driver,
    /// Database name; for SQLite, the database file (absolute, resolved against the
    /// personality directory).
    pub database: Option<String>,
    /// User to log in as.
    pub user: Option<String>,
    /// Its password.
    pub password: Option<String>,
    /// Server host name or address.
    pub host: Option<String>,
    /// Server port.
    pub port: Option<u16>,
    /// Unix socket (MySQL: the file; PostgreSQL: its directory).
    pub socket: Option<String>,
    /// Connections opened at start and kept.
    pub min: usize,
    /// Connections at most.
    pub max: usize,
}

/// Checks every `database` section of `config`; `personality` anchors relative SQLite paths.
pub fn plan(config: &Config, personality: &Path) -> Result<Vec<PoolConfig>> {
    config
        .sections_named("database")
        .map(|section| pool_config(section, personality))
        .collect()
}

fn pool_config(section: &Section, personality: &Path) -> Result<PoolConfig> {
    let name = section.title.clone().unwrap_or_default();
    let at = |key: &str| match section.location_of(key) {
        Some(l) => format!(" (line {}, column {})", l.line, l.column),
        None => String::new(),
    };
    let driver = match section.str("driver").unwrap_or("mysql") {
        "mysql" | "mariadb" => Driver::Mysql,
        "postgres" | "postgresql" => Driver::Postgres,
        "sqlite" => Driver::Sqlite,
        other => bail!(
            "database `{name}`: unknown driver `{other}`{}; expected mysql, postgres or sqlite",
            at("driver")
        ),
    };
    let int = |key: &str| section.int(key).unwrap_or(0);
    let (min, max) = (int("pool_min"), int("pool_max"));
    if max < 1 || min < 0 || min > max {
        bail!(
            "database `{name}`: need 0 <= pool_min <= pool_max and pool_max >= 1, found pool_min = {min}, pool_max = {max}{}",
            at("pool_max")
        );
    }
    let port = match section.int("port") {
        Some(p) => Some(u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
            anyhow::anyhow!("database `{name}`: port {p} is not 1-65535{}", at("port"))
        })?),
        None => None,
    };
    let mut database = section.str("name").map(str::to_string);
    if driver == Driver::Sqlite {
        let Some(file) = &database else {
            bail!("database `{name}`: a sqlite pool needs `name`, the database file");
        };
        database = Some(resolve(personality, file).display().to_string());
    }
    let text = |key: &str| section.str(key).map(str::to_string);
    Ok(PoolConfig {
        name,
        driver,
        database,
        user: text("user"),
        password: text("password"),
        host: text("host"),
        port,
        socket: text("socket"),
        min: min as usize,
        max: max as usize,
    })
}

fn resolve(base: &Path, file: &str) -> PathBuf {
    let path = Path::new(file);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serverkit_c11n::{Vocabulary, load};

    fn pools(text: &str) -> Result<Vec<PoolConfig>> {
        let config = load("c11n", text, &Vocabulary::core()).map_err(|e| anyhow::anyhow!("{e}"))?;
        plan(&config, Path::new("/etc/server/pop"))
    }

    #[test]
    fn the_seed_database_is_mysql_with_its_sizes() {
        let seed = "database FOOFOO {\nname = maildatabase\nuser = mailuser\npassword = sekret\nhost = localhost\npool_max = 30\npool_min = 2\n}\n";
        let pool = &pools(seed).unwrap()[0];
        assert_eq!(pool.name, "FOOFOO");
        assert_eq!(pool.driver, Driver::Mysql);
        assert_eq!((pool.min, pool.max), (2, 30));
        assert_eq!(pool.port, None);
    }

    #[test]
    fn sqlite_files_are_relative_to_the_personality() {
        let pool = &pools("database L {\ndriver = sqlite\nname = users.db\n}\n").unwrap()[0];
        assert_eq!(pool.database.as_deref(), Some("/etc/server/pop/users.db"));
        assert!(
            pools("database L {\ndriver = sqlite\n}\n").is_err(),
            "name is required"
        );
    }

    #[test]
    fn bad_drivers_sizes_and_ports_are_refused() {
        for bad in [
            "database D {\ndriver = oracle\n}\n",
            "database D {\npool_min = 5\npool_max = 2\n}\n",
            "database D {\npool_max = 0\n}\n",
            "database D {\nport = 70000\n}\n",
        ] {
            let error = pools(bad).unwrap_err().to_string();
            assert!(error.contains("database `D`"), "{bad}: {error}");
        }
    }
}
