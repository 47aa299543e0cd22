//! Moving from Dovecot (issue 14, item 7): a users table holding Dovecot's `{SCHEME}`
//! passwords, made by Dovecot's own `doveadm pw`, served unchanged. The maildrop query
//! has no `%p`; its second column is the stored password, which the host checks. Python's
//! poplib logs in with each scheme on SQLite, PostgreSQL and MariaDB; wrong passwords, an
//! unknown user and a planted hash above the cost caps are refused.

use std::process::Command;

use crate::pop_fixture::{Backend, PopSetup, database_available};

/// The password every user has (non-ASCII, as real ones are).
const PASSWORD: &str = "pässw0rd!";

/// The schemes a Dovecot site has in its tables (`doveadm pw -l`), one user each.
const SCHEMES: [&str; 13] = [
    "SHA512-CRYPT",
    "SHA256-CRYPT",
    "BLF-CRYPT",
    "ARGON2ID",
    "ARGON2I",
    "PBKDF2",
    "SSHA512",
    "SSHA256",
    "SSHA",
    "SHA512",
    "PLAIN-MD5",
    "PLAIN",
    "CRYPT",
];

/// `doveadm pw -s scheme`, or `None` (skipped loudly; CI requires it).
fn doveadm(scheme: &str) -> Option<String> {
    let out = match Command::new("doveadm")
        .args(["pw", "-s", scheme, "-p", PASSWORD])
        .output()
    {
        Ok(out) if out.status.success() => out,
        other => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "doveadm pw failed ({other:?}); CI=true requires dovecot-core (tools/test-packages.txt)"
            );
            eprintln!(
                "!!! SKIPPED: doveadm is not installed (dovecot-core, tools/test-packages.txt) !!!"
            );
            return None;
        }
    };
    Some(String::from_utf8(out.stdout).unwrap().trim().to_string())
}

#[test]
fn pop_dovecot_sqlite() {
    doveadm_hashes_log_in(Backend::Sqlite);
}

#[test]
fn pop_dovecot_postgres() {
    doveadm_hashes_log_in(Backend::Postgres);
}

#[test]
fn pop_dovecot_mysql() {
    doveadm_hashes_log_in(Backend::Mysql);
}

fn doveadm_hashes_log_in(backend: Backend) {
    if !database_available(backend) {
        return;
    }
    let mut users = Vec::new();
    for scheme in SCHEMES {
        let Some(hash) = doveadm(scheme) else { return };
        users.push((format!("u-{}", scheme.to_lowercase()), hash));
    }
    // A value without a prefix: `default_password_scheme = CRYPT` reads it (Dovecot's
    // default_pass_scheme).
    let bare = doveadm("SHA512-CRYPT").unwrap();
    users.push(("u-bare".into(), bare["{SHA512-CRYPT}".len()..].to_string()));
    // A planted row asking for bcrypt cost 31 (days of CPU): refused unchecked.
    let planted = doveadm("BLF-CRYPT").unwrap().replacen("$05$", "$31$", 1);
    users.push(("u-planted".into(), planted));

    let mut setup = PopSetup::new(backend);
    let table = format!("{}_extra", setup.table);
    let mut sql = format!(
        "CREATE TABLE {table} (username VARCHAR(64) PRIMARY KEY, password VARCHAR(255), maildrop VARCHAR(255));"
    );
    for (user, hash) in &users {
        sql.push_str(&format!(
            "INSERT INTO {table} VALUES ('{user}', '{hash}', '{user}/Maildir');"
        ));
        // A Maildir each: a login right after another's QUIT never meets its lock.
        for folder in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(setup.mail_root().join(user).join("Maildir").join(folder))
                .unwrap();
        }
    }
    setup.execute(&sql);
    // The query Dovecot's passdb would run: no %p, the password is the second column.
    setup.query = Some(format!(
        "select maildrop, password from {table} where username = '%u'"
    ));
    let server = setup.start("default_password_scheme = CRYPT");

    let script = r#"
import poplib, sys, json
port, password, users = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
def login(user, pw):
    p = poplib.POP3('127.0.0.1', port, timeout=30)
    try:
        p.user(user)
        p.pass_(pw)
        stat = p.stat()
        p.quit()
        return 'ok %s' % (stat,)
    except poplib.error_proto as e:
        return 'refused ' + e.args[0].decode()
for user in users:
    print(user, 'right', login(user, password))
    print(user, 'wrong', login(user, password + 'x'))
print('nobody right', login('nobody', password))
"#;
    let names: Vec<&str> = users.iter().map(|(u, _)| u.as_str()).collect();
    let out = Command::new(crate::http::python())
        .args([
            "-c",
            script,
            &server.setup.port.to_string(),
            PASSWORD,
            &format!("{names:?}"),
        ])
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refused = "refused -ERR [AUTH] invalid user name or password";
    for user in &names {
        let right = if *user == "u-planted" {
            refused.to_string()
        } else {
            "ok (0, 0)".to_string()
        };
        assert!(
            stdout.contains(&format!("{user} right {right}\n")),
            "{user}: {stdout}"
        );
        assert!(
            stdout.contains(&format!("{user} wrong {refused}\n")),
            "{user}: {stdout}"
        );
    }
    assert!(
        stdout.contains(&format!("nobody right {refused}")),
        "{stdout}"
    );
    let log = server.server.log();
    assert!(
        log.contains("stored password refused: bcrypt cost 31 (cap 13)"),
        "the planted hash is logged: {log}"
    );
}

/// An unknown user costs the same check as a wrong password: with no failure delay to
/// hide it, both wait for a bcrypt of cost 12 (the unknown user's against the last hash
/// checked), where an unchecked unknown user would be answered in a millisecond.
#[test]
fn pop_dovecot_unknown_user_costs_a_check() {
    let Some(_) = doveadm("PLAIN") else { return };
    let out = Command::new("doveadm")
        .args(["pw", "-s", "BLF-CRYPT", "-r", "12", "-p", PASSWORD])
        .output()
        .unwrap();
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut setup = PopSetup::new(Backend::Sqlite);
    setup.auth_failure_delay_ms = 0;
    let table = format!("{}_extra", setup.table);
    setup.execute(&format!(
        "CREATE TABLE {table} (username TEXT PRIMARY KEY, password TEXT, maildrop TEXT);\
         INSERT INTO {table} VALUES ('carol', '{hash}', 'bob/Maildir');"
    ));
    setup.query = Some(format!(
        "select maildrop, password from {table} where username = '%u'"
    ));
    let server = setup.start("");
    let time = |user: &str, password: &str| {
        let mut c = server.client();
        c.ok(&format!("USER {user}"));
        let asked = std::time::Instant::now();
        let reply = c.cmd(&format!("PASS {password}"));
        (reply, asked.elapsed())
    };
    let (reply, hash_cost) = time("carol", PASSWORD);
    assert!(reply.starts_with("+OK"), "{reply}");
    let median = |mut v: Vec<std::time::Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    for i in 0..5 {
        let (reply, took) = time(&format!("nobody{i}"), PASSWORD);
        assert!(reply.starts_with("-ERR [AUTH]"), "{reply}");
        unknown.push(took);
        let (reply, took) = time("carol", "wrong");
        assert!(reply.starts_with("-ERR [AUTH]"), "{reply}");
        wrong.push(took);
    }
    let (u, w) = (median(unknown), median(wrong));
    eprintln!(
        "bcrypt cost 12: login {hash_cost:?}; medians: unknown user {u:?}, wrong password {w:?}"
    );
    assert!(
        u >= hash_cost / 2,
        "the unknown user was not checked: {u:?} vs {hash_cost:?}"
    );
    assert!(
        u.abs_diff(w) < hash_cost / 3,
        "unknown {u:?}, wrong {w:?}, hash {hash_cost:?}"
    );
}
