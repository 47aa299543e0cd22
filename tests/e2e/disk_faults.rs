//! Disk faults: files shttp may not read, a full or read-only filesystem under pop's
//! maildrops, and a full compile cache. Each gives a clean answer (a status code, `-ERR`
//! or a warning), never a crash, and nothing is lost. The filesystems are small tmpfs
//! mounts made for the test, so these tests need root (CI runs as root); elsewhere they
//! are skipped with a loud message.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::harness::{Server, TestPersonality, Tmpfs, echo_c11n, free_port, is_root, run};
use crate::http::{Raw, start};
use crate::pop_fixture::{Backend, NAMES, PopSetup};

fn skipped(what: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!(
        "!!! SKIPPED: {what} needs root (permissions do not bind root, mounts need it); CI runs as root !!!"
    );
    true
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn unreadable_files_and_directories_get_a_clean_answer() {
    if skipped("unreadable_files_and_directories_get_a_clean_answer") {
        return;
    }
    let site = start("");
    let www = &site.www;
    std::fs::write(www.join("locked.txt"), "locked\n").unwrap();
    chmod(&www.join("locked.txt"), 0o000);
    std::fs::create_dir(www.join("noexec")).unwrap();
    std::fs::write(www.join("noexec/f.txt"), "f\n").unwrap();
    chmod(&www.join("noexec"), 0o644);
    std::fs::create_dir(www.join("nolist")).unwrap();
    std::fs::write(www.join("nolist/ok.txt"), "ok\n").unwrap();
    chmod(&www.join("nolist/ok.txt"), 0o644);
    chmod(&www.join("nolist"), 0o711);

    // One keep-alive connection through every fault: each answer is clean, and the
    // connection goes on serving.
    let mut raw = Raw::connect(site.server.addr);
    for (path, status) in [
        ("/locked.txt", 403),
        ("/noexec/f.txt", 403),
        ("/noexec/", 403),
        ("/nolist/", 403),
        ("/nolist/ok.txt", 200),
        ("/index.txt", 200),
    ] {
        raw.get(path, "");
        let response = raw.response(false).expect("an answer");
        assert_eq!(response.status, status, "GET {path}");
    }
    let log = site.server.log();
    assert!(!log.contains("trapped"), "{log}");
}

#[test]
fn a_full_maildrop_filesystem_still_deletes_at_quit_and_a_read_only_one_loses_nothing() {
    if skipped("a_full_maildrop_filesystem...") {
        return;
    }
    let setup = PopSetup::new(Backend::Sqlite);
    // The mail moves onto a 1 MiB tmpfs mounted where the fixture made it.
    let mail = setup.mail_root();
    let saved = setup.personality.path().join("mail.saved");
    std::fs::rename(&mail, &saved).unwrap();
    let fs = Tmpfs::mount(&mail, "1m");
    run("cp", &["-a", &format!("{}/.", saved.display())], &mail);
    let server = setup.start("");

    // Full: pop writes nothing but unlinks at QUIT, which a full disk allows.
    fs.fill();
    let mut c = server.login("alice", "secret");
    assert_eq!(c.cmd("STAT"), "+OK 3 112");
    c.ok("RETR 3");
    assert_eq!(c.body(), ["Subject: three", "", "three"]);
    c.ok("DELE 3");
    assert_eq!(c.cmd("QUIT"), "+OK bye, 1 messages deleted");
    assert_eq!(
        server.setup.files("alice"),
        [NAMES[1], NAMES[0]].map(String::from)
    );

    // Read-only: the deletion fails, QUIT says so, and every message is still there.
    fs.remount("ro");
    let mut c = server.login_when_free("alice", "secret");
    c.ok("DELE 1");
    c.ok("DELE 2");
    let quit = c.cmd("QUIT");
    assert!(quit.starts_with("-ERR [SYS/TEMP]"), "{quit}");
    assert_eq!(server.setup.files("alice").len(), 2, "nothing lost");
    fs.remount("rw");
    let mut c = server.login_when_free("alice", "secret");
    assert_eq!(c.cmd("STAT"), "+OK 2 87");
    drop(c);
    // The server and the personality go before the mount they use.
    let crate::pop_fixture::PopServer { server, setup } = server;
    drop(server);
    drop(fs);
    drop(setup);
}

#[test]
fn a_full_compile_cache_is_a_warning_and_leaves_no_partial_file() {
    if skipped("a_full_compile_cache_is_a_warning...") {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(&cache.path().join("cache"), "64k");
    chmod(fs.path(), 0o700);
    let port = free_port();
    let personality = TestPersonality::new(&echo_c11n(port, ""));
    let cache_dir = fs.path().display().to_string();
    let mut server = Server::spawn(
        &["run"],
        personality.path(),
        &[("SERVERKIT_CACHE_DIR", &cache_dir)],
    );
    server.addr = ([127, 0, 0, 1], port).into();
    server.wait_for_log("serving", Duration::from_secs(60));
    server.client().echo("served without a cache");
    assert!(
        server.log().contains("could not cache the compiled"),
        "{}",
        server.log()
    );
    // The key fits (the directory is the cache's); the artifacts' directory is empty.
    let names = |dir: &Path| -> Vec<_> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(fs.path()), ["key", "uid-65534"]);
    let left = names(&fs.path().join("uid-65534"));
    assert!(left.is_empty(), "partial files left: {left:?}");
    drop(server);
    drop(personality);
}
