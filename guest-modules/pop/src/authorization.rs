//! The AUTHORIZATION state: USER/PASS and SASL PLAIN, the maildrop query, and opening the
//! maildrop under its exclusive lock.

use serverkit_sdk::auth;
use serverkit_sdk::config::{integer, text};
use serverkit_sdk::database::{self, Driver, Value};
use serverkit_sdk::log::{self, Level};
use serverkit_sdk::maildrop;

use crate::command::Command;
use crate::session::{Client, Line, Next};
use crate::transaction::Transaction;
use crate::{message, query};

/// The AUTHORIZATION state: the user name given so far.
#[derive(Default)]
pub struct Authorization {
    user: Option<String>,
}

impl Authorization {
    /// Runs until a login succeeds (`Some`) or the client leaves (`None`).
    pub fn run(mut self, client: &mut Client) -> Result<Option<Transaction>, String> {
        loop {
            let command = match client.next_command()? {
                Next::Command(Command::Quit) => {
                    client.reply("+OK bye")?;
                    return Ok(None);
                }
                Next::Command(command) => command,
                Next::Answered => continue,
                Next::Closed => return Ok(None),
            };
            let Some((user, password)) = self.credentials(client, command)? else {
                continue;
            };
            if let Some(transaction) = login(client, &user, &password)? {
                return Ok(Some(transaction));
            }
        }
    }

    /// Answers a command of this state; returns the credentials once PASS or AUTH gave
    /// them (still unchecked).
    fn credentials(
        &mut self,
        client: &mut Client,
        command: Command,
    ) -> Result<Option<(String, String)>, String> {
        match command {
            Command::Capa => client.capa(false)?,
            Command::User(_) | Command::Pass(_) | Command::Auth(Some(_), _)
                if client.login_needs_tls() =>
            {
                client.reply("-ERR [AUTH] plaintext login refused here: use STLS first")?
            }
            Command::Stls => {
                self.user = None;
                client.start_tls()?;
            }
            Command::Noop => client.reply("+OK")?,
            Command::User(user) => {
                self.user = Some(user);
                client.reply("+OK send PASS")?;
            }
            Command::Pass(password) => match self.user.take() {
                Some(user) => return Ok(Some((user, password))),
                None => client.reply("-ERR USER first")?,
            },
            Command::Auth(mechanism, initial) => return sasl_plain(client, mechanism, initial),
            _ => client.reply("-ERR not in the TRANSACTION state; log in first")?,
        }
        Ok(None)
    }
}

/// AUTH: lists mechanisms when bare; PLAIN with an initial response or after `+ `.
/// Returns the credentials, or `None` when it already answered.
fn sasl_plain(
    client: &mut Client,
    mechanism: Option<String>,
    initial: Option<String>,
) -> Result<Option<(String, String)>, String> {
    match mechanism.as_deref() {
        None => {
            client.send(b"+OK SASL mechanisms follow\r\nPLAIN\r\n.\r\n")?;
            return Ok(None);
        }
        Some("PLAIN") => {}
        Some(_) => {
            client.reply("-ERR unsupported SASL mechanism; try PLAIN")?;
            return Ok(None);
        }
    }
    let response = match initial {
        Some(r) => r,
        None => {
            client.reply("+ ")?;
            match client.next_line() {
                Line::Text(line) => line,
                Line::TooLong => String::from("!"),
                Line::Closed => return Err("closed during AUTH".into()),
            }
        }
    };
    if response == "*" {
        client.reply("-ERR AUTH cancelled")?;
        return Ok(None);
    }
    match plain_credentials(&response) {
        Some(credentials) => Ok(Some(credentials)),
        None => {
            client.reply("-ERR [AUTH] malformed PLAIN response")?;
            Ok(None)
        }
    }
}

/// The user name and password of a SASL PLAIN response (base64 of `authz\0user\0pass`,
/// or `=` for an empty one); `None` if malformed or authorizing as someone else.
pub fn plain_credentials(response: &str) -> Option<(String, String)> {
    let decoded = if response == "=" {
        Some(Vec::new())
    } else {
        base64(response)
    };
    let fields: Option<Vec<String>> = decoded.and_then(|d| {
        let parts: Vec<&[u8]> = d.split(|b| *b == 0).collect();
        (parts.len() == 3).then(|| {
            parts
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect()
        })
    });
    match fields.as_deref() {
        Some([authz, user, password]) if authz.is_empty() || authz == user => {
            Some((user.clone(), password.clone()))
        }
        _ => None,
    }
}

/// Looks the user up, checks the password and opens the maildrop. Answers the client in
/// every case; returns the transaction when the login succeeded.
fn login(client: &mut Client, user: &str, password: &str) -> Result<Option<Transaction>, String> {
    // The address's penalty comes first, for right and wrong passwords alike: a client
    // learns nothing sooner by giving up early.
    auth::attempt();
    let asked = std::time::Instant::now();
    let path = match lookup(user, password) {
        Ok(Some(path)) => {
            auth::succeeded();
            path
        }
        Ok(None) => {
            auth::failed();
            log::log(
                Level::Warn,
                &format!(
                    "failed login for `{}` from {}",
                    user.escape_debug(),
                    client.peer
                ),
            );
            // Counted from the credentials, not from the query's end: a query that costs
            // more for a known user (a password hash computed only for its row) must
            // not tell a wrong password from an unknown user.
            let delay = integer("auth_failure_delay_ms")
                .unwrap_or(2000)
                .clamp(0, 60_000);
            let delay = std::time::Duration::from_millis(delay as u64);
            std::thread::sleep(delay.saturating_sub(asked.elapsed()));
            client.reply("-ERR [AUTH] invalid user name or password")?;
            return Ok(None);
        }
        Err(temporary) => {
            // Not the client's fault, but an attempt all the same (a guesser must not
            // skip the penalty by making the database fail).
            auth::failed();
            log::log(
                Level::Error,
                &format!(
                    "maildrop lookup for `{}` failed: {temporary}",
                    user.escape_debug()
                ),
            );
            client.reply("-ERR [SYS/TEMP] user database unavailable, try again later")?;
            return Ok(None);
        }
    };
    let maildir = match maildrop::open("maildrop_root", &path) {
        Ok(m) => m,
        Err(maildrop::Error::InUse) => {
            client.reply("-ERR [IN-USE] maildrop already in use by another session")?;
            return Ok(None);
        }
        // The user database names a maildrop the host refuses (outside the root, a
        // symlink, missing): the operator's error to fix, not the client's password.
        Err(e) => {
            log::log(
                Level::Error,
                &format!(
                    "login of `{}` refused: maildrop `{}`: {}",
                    user.escape_debug(),
                    path.escape_debug(),
                    refusal(&e, &path)
                ),
            );
            client.reply("-ERR [SYS/TEMP] cannot open the maildrop")?;
            return Ok(None);
        }
    };
    match Transaction::open(maildir) {
        Ok(t) => {
            client.reply(&format!(
                "+OK {} ({} octets)",
                message::count(t.count()),
                t.octets()
            ))?;
            Ok(Some(t))
        }
        Err(e) => {
            log::log(
                Level::Error,
                &format!(
                    "login of `{}` failed: maildrop `{}`: {e}",
                    user.escape_debug(),
                    path.escape_debug()
                ),
            );
            client.reply("-ERR [SYS/TEMP] cannot read the maildrop")?;
            Ok(None)
        }
    }
}

/// Why the host refused to open maildrop `path`, for the log line: the contract's error
/// name, what it means, and the host's detail when it adds to the path.
fn refusal(error: &maildrop::Error, path: &str) -> String {
    let (name, meaning, detail) = match error {
        maildrop::Error::OutsideRoot(d) => ("outside-root", "it leaves maildrop_root", d),
        maildrop::Error::NotFound(d) => ("not-found", "no such Maildir", d),
        maildrop::Error::Io(d) => ("io", "the system refused", d),
        other => return format!("{other:?}"),
    };
    if detail.is_empty() || detail == path {
        format!("{name}: {meaning}")
    } else {
        format!("{name}: {meaning} ({})", detail.escape_debug())
    }
}

/// Runs the maildrop query and checks the password: `Ok(None)` when no row matched or
/// the password is wrong (a failed login). Without `%p` in the query, its second column
/// is the stored password, checked by the host in Dovecot's `{SCHEME}` syntax.
fn lookup(user: &str, password: &str) -> Result<Option<String>, String> {
    let pool = text("database").ok_or("no database option")?;
    let format = text("maildrop_query_format_string").ok_or("no query")?;
    let driver = database::driver_of(&pool).map_err(|e| format!("{e:?}"))?;
    let style = match driver {
        Driver::Postgres => query::Style::Dollar,
        Driver::Mysql | Driver::Sqlite => query::Style::Question,
    };
    let (sql, params) = query::compile(&format, style)?;
    let values: Vec<Value> = params
        .iter()
        .map(|p| match p {
            query::Param::User => Value::Text(user.to_string()),
            query::Param::Password => Value::Text(password.to_string()),
        })
        .collect();
    let rows = database::query(&pool, &sql, &values).map_err(|e| format!("{e:?}"))?;
    let row = rows.rows.first();
    let maildrop = row.and_then(|r| r.first()).and_then(text_of);
    if params.contains(&query::Param::Password) {
        // The database compared the password: a row is a match.
        return Ok(maildrop);
    }
    if row.is_some_and(|r| r.len() < 2) {
        return Err(
            "the maildrop query has no %p, so it must return the stored password as its second column"
                .into(),
        );
    }
    let stored = row.and_then(|r| r.get(1)).and_then(text_of);
    let scheme = text("default_password_scheme").unwrap_or_else(|| "CRYPT".into());
    // An unknown user (or a NULL password) costs the same check as a wrong password.
    let known = maildrop.is_some() && stored.is_some();
    let stored = if known { stored.as_deref() } else { None };
    match auth::check(stored, password, &scheme) {
        Ok(true) => Ok(maildrop),
        Ok(false) => Ok(None),
        // The host logged why (an unknown scheme, a cost above its caps); the client
        // sees a failed login, as for any password that does not check.
        Err(refusal) => {
            log::log(
                Level::Error,
                &format!(
                    "stored password of `{}` cannot be checked: {refusal:?}",
                    user.escape_debug()
                ),
            );
            Ok(None)
        }
    }
}

/// A column as text: NULL and the empty string are nothing.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Text(t) if !t.is_empty() => Some(t.clone()),
        Value::Bytes(b) if !b.is_empty() => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

/// Standard base64 (RFC 4648) with padding; `None` if malformed.
fn base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = text.trim_end_matches('=').as_bytes();
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for group in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in group.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let n = group.len() - 1;
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + n]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{plain_credentials, refusal};
    use serverkit_sdk::maildrop::Error;

    #[test]
    fn refusals_name_the_reason() {
        let path = "alice/../../..";
        assert_eq!(
            refusal(&Error::OutsideRoot(path.into()), path),
            "outside-root: it leaves maildrop_root"
        );
        assert_eq!(
            refusal(&Error::NotFound("symlink at alice".into()), path),
            "not-found: no such Maildir (symlink at alice)"
        );
    }

    #[test]
    fn plain_responses() {
        let ok = |u: &str, p: &str| Some((u.to_string(), p.to_string()));
        // "\0alice\0secret" and "alice\0alice\0secret"
        assert_eq!(
            plain_credentials("AGFsaWNlAHNlY3JldA=="),
            ok("alice", "secret")
        );
        assert_eq!(
            plain_credentials("YWxpY2UAYWxpY2UAc2VjcmV0"),
            ok("alice", "secret")
        );
        // "bob\0alice\0secret": authorizing as another user is refused.
        assert_eq!(plain_credentials("Ym9iAGFsaWNlAHNlY3JldA=="), None);
        for malformed in ["=", "", "A", "AGFsaWNl", "!!!!", "AGFsaWNlAHNlY3JldA="] {
            assert_eq!(plain_credentials(malformed), None, "{malformed:?}");
        }
    }
}
