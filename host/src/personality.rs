//! A personality: a directory holding a `c11n` file and a `modules/` folder.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The environment variable naming the personality, as in ServerKit.
pub const PERSONALITY_ENV: &str = "SERVER_PERSONALITY_PATH";

/// A personality directory, located and readable.
#[derive(Debug, Clone)]
pub struct Personality {
    /// The directory.
    pub dir: PathBuf,
}

impl Personality {
    /// Locates the personality: `dir` if given, else `$SERVER_PERSONALITY_PATH`.
    pub fn locate(dir: Option<PathBuf>) -> Result<Self> {
        let dir = match dir.or_else(|| std::env::var_os(PERSONALITY_ENV).map(PathBuf::from)) {
            Some(dir) => dir,
            None => bail!(
                "no personality given: name its directory on the command line or in ${PERSONALITY_ENV}"
            ),
        };
        if !dir.is_dir() {
            bail!("personality `{}` is not a directory", dir.display());
        }
        Ok(Personality { dir })
    }

    /// The configuration file.
    pub fn c11n_path(&self) -> PathBuf {
        self.dir.join("c11n")
    }

    /// The folder of module files.
    pub fn modules_dir(&self) -> PathBuf {
        self.dir.join("modules")
    }

    /// The text of the configuration file.
    pub fn read_c11n(&self) -> Result<String> {
        let path = self.c11n_path();
        std::fs::read_to_string(&path).with_context(|| {
            format!(
                "failed to read personality configuration `{}`",
                path.display()
            )
        })
    }
}

/// `path` as given, for messages.
pub fn shown(path: &Path) -> String {
    path.display().to_string()
}
