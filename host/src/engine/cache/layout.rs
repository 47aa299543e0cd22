//! Where the cache lives and who may change it. The cache directory belongs to the user
//! who starts serverkit and no one else may write to it; it holds the secret key (mode
//! 0600) and one subdirectory of artifacts per uid modules are served as (`uid-65534`),
//! owned by that uid so that hot swaps after the root drop can read and write there
//! through the descriptor opened before it. The service user can change artifacts, never
//! the key nor the directory holding it.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Uid};
use rustix::io::Errno;

use super::seal::{KEY_LEN, Key};

/// The key's file name in the cache directory.
const KEY_FILE: &str = "key";

/// What an opened cache holds: the key, and the artifacts' subdirectory.
pub struct Layout {
    /// The secret key the artifacts are sealed with.
    pub key: Key,
    /// The subdirectory of artifacts, opened before the drop: every later access goes
    /// through it (the service user may not be able to reach it by path).
    pub artifacts: OwnedFd,
    /// Its path, for messages.
    pub shown: PathBuf,
}

/// The cache directory: `$SERVERKIT_CACHE_DIR`, else `$XDG_CACHE_HOME/serverkit`, else
/// `~/.cache/serverkit` with `~` from `$HOME` or, when it is unset (under daemontools), from
/// the passwd entry of the user running serverkit. An empty variable counts as unset.
pub fn default_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("SERVERKIT_CACHE_DIR") {
        return Some(dir.into());
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Some(Path::new(&dir).join("serverkit"));
    }
    let home = var("HOME").map(PathBuf::from).or_else(|| {
        nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map(|user| user.dir)
    })?;
    Some(home.join(".cache").join("serverkit"))
}

/// Opens the cache in `dir` for modules served as `serving_uid`: checks the directory,
/// reads (or makes) the key, and opens (or makes) the artifacts' subdirectory.
pub fn open(dir: &Path, serving_uid: u32) -> Result<Layout> {
    let fd = open_dir(dir)?;
    let key = read_or_create_key(fd.as_fd(), dir)?;
    let name = format!("uid-{serving_uid}");
    let shown = dir.join(&name);
    let artifacts = open_artifacts(fd.as_fd(), &name, serving_uid)
        .with_context(|| format!("cannot use {}", shown.display()))?;
    Ok(Layout {
        key,
        artifacts,
        shown,
    })
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Makes `dir` if needed and opens it, if it belongs to us and no one else may write to it.
fn open_dir(dir: &Path) -> Result<OwnedFd> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("failed to create {}", dir.display()))?;
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("failed to open {}", dir.display()))?;
    let stat =
        rustix::fs::fstat(&fd).with_context(|| format!("failed to stat {}", dir.display()))?;
    let euid = euid();
    ensure!(
        stat.st_uid == euid,
        "{} belongs to uid {}, not to the user starting serverkit (uid {euid}): it holds the key that vouches for compiled code",
        dir.display(),
        stat.st_uid
    );
    ensure!(
        stat.st_mode & 0o022 == 0,
        "{} is writable by group or others",
        dir.display()
    );
    Ok(fd)
}

/// The key in `dir`, made first if there is none.
fn read_or_create_key(dir: BorrowedFd<'_>, shown: &Path) -> Result<Key> {
    if let Some(key) = read_key(dir, shown)? {
        return Ok(key);
    }
    create_key(dir).with_context(|| {
        format!(
            "failed to create the cache key {}",
            shown.join(KEY_FILE).display()
        )
    })?;
    read_key(dir, shown)?.with_context(|| {
        format!(
            "the cache key {} vanished as it was made",
            shown.join(KEY_FILE).display()
        )
    })
}

/// The key, `None` when there is no key file; an error when it is not a regular file of
/// the right size that only we may read.
fn read_key(dir: BorrowedFd<'_>, shown: &Path) -> Result<Option<Key>> {
    let path = shown.join(KEY_FILE);
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(dir, KEY_FILE, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("failed to open {}", path.display())),
    };
    let stat =
        rustix::fs::fstat(&fd).with_context(|| format!("failed to stat {}", path.display()))?;
    ensure!(
        FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile,
        "{} is not a regular file",
        path.display()
    );
    ensure!(
        stat.st_uid == euid(),
        "{} belongs to uid {}, not to us",
        path.display(),
        stat.st_uid
    );
    ensure!(
        stat.st_mode & 0o077 == 0,
        "{} may be read by group or others: remove it (serverkit makes a new key, and compiles every module again)",
        path.display()
    );
    ensure!(
        stat.st_size == KEY_LEN as i64,
        "{} holds {} bytes, not a key of {KEY_LEN}: remove it (serverkit makes a new one)",
        path.display(),
        stat.st_size
    );
    let mut bytes = [0; KEY_LEN];
    std::fs::File::from(fd)
        .read_exact(&mut bytes)
        .with_context(|| format!("failed to read {}", path.display()))?;
    Ok(Some(Key::from_bytes(bytes)))
}

/// Writes a new key beside its final name (`O_EXCL`, mode 0600), then links it in place
/// unless another process got there first: a reader never sees half a key, and two
/// first starts agree on one key.
fn create_key(dir: BorrowedFd<'_>) -> Result<()> {
    let tmp = format!(".{KEY_FILE}.{}.tmp", std::process::id());
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, &tmp, flags, Mode::RUSR | Mode::WUSR)
        .with_context(|| format!("failed to create {tmp}"))?;
    let written = Key::random().and_then(|key| {
        let mut file = std::fs::File::from(fd);
        file.write_all(key.bytes())?;
        file.sync_all()?;
        match rustix::fs::linkat(dir, &tmp, dir, KEY_FILE, AtFlags::empty()) {
            Ok(()) | Err(Errno::EXIST) => Ok(()),
            Err(e) => Err(e.into()),
        }
    });
    let _ = rustix::fs::unlinkat(dir, &tmp, AtFlags::empty());
    written
}

/// Opens the artifacts' subdirectory `name` of `dir`, made if needed, owned by
/// `serving_uid` (root gives it away) and closed to everyone else.
fn open_artifacts(dir: BorrowedFd<'_>, name: &str, serving_uid: u32) -> Result<OwnedFd> {
    match rustix::fs::mkdirat(dir, name, Mode::RWXU) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(e).context("failed to create it"),
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty()).context("failed to open it")?;
    let stat = rustix::fs::fstat(&fd).context("failed to stat it")?;
    if stat.st_uid != serving_uid {
        if euid() != 0 {
            bail!(
                "it belongs to uid {}, not to uid {serving_uid}",
                stat.st_uid
            );
        }
        rustix::fs::fchown(&fd, Some(Uid::from_raw(serving_uid)), None::<Gid>)
            .with_context(|| format!("failed to give it to uid {serving_uid}"))?;
    }
    if stat.st_mode & 0o077 != 0 {
        rustix::fs::fchmod(&fd, Mode::RWXU).context("failed to make it mode 0700")?;
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().mode() & 0o777
    }

    #[test]
    fn a_new_cache_gets_a_private_key_and_a_subdirectory_for_the_serving_uid() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let layout = open(&dir, euid()).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        assert_eq!(
            std::fs::read(dir.join(KEY_FILE)).unwrap(),
            layout.key.bytes()
        );
        let sub = dir.join(format!("uid-{}", euid()));
        assert_eq!(layout.shown, sub);
        assert_eq!(mode(&sub), 0o700);
        // No temporary file is left beside the key.
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [KEY_FILE.to_string(), format!("uid-{}", euid())]);
    }

    #[test]
    fn a_second_open_reads_the_same_key() {
        let tmp = tempfile::tempdir().unwrap();
        let first = open(tmp.path(), euid()).unwrap();
        let second = open(tmp.path(), euid()).unwrap();
        assert_eq!(first.key.bytes(), second.key.bytes());
    }

    #[test]
    fn a_directory_others_may_write_to_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = open(tmp.path(), euid()).err().unwrap().to_string();
        assert!(err.ends_with("is writable by group or others"), "{err}");
        assert!(!tmp.path().join(KEY_FILE).exists(), "no key made there");
    }

    #[test]
    fn a_key_others_may_read_or_of_the_wrong_size_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join(KEY_FILE);
        std::fs::write(&key, [1; KEY_LEN]).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = open(tmp.path(), euid()).err().unwrap().to_string();
        assert!(err.contains("may be read by group or others"), "{err}");
        std::fs::write(&key, [1; 5]).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = open(tmp.path(), euid()).err().unwrap().to_string();
        assert!(err.contains("holds 5 bytes"), "{err}");
    }

    #[test]
    fn a_symlinked_key_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::write(&elsewhere, [1; KEY_LEN]).unwrap();
        let dir = tmp.path().join("cache");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.join(KEY_FILE)).unwrap();
        let err = format!("{:#}", open(&dir, euid()).err().unwrap());
        assert!(err.starts_with("failed to open"), "{err}");
    }

    #[test]
    fn root_gives_the_subdirectory_to_the_serving_uid() {
        if euid() != 0 {
            eprintln!("!!! SKIPPED: root_gives_the_subdirectory_to_the_serving_uid needs root !!!");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let layout = open(tmp.path(), 65534).unwrap();
        let sub = tmp.path().join("uid-65534");
        assert_eq!(std::fs::metadata(&sub).unwrap().uid(), 65534);
        assert_eq!(
            std::fs::metadata(tmp.path().join(KEY_FILE)).unwrap().uid(),
            0
        );
        assert_eq!(layout.shown, sub);
    }
}
