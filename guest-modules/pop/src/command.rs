//! Parsing one command line into a [`Command`], with its arguments checked: a message
//! number is digits only, 1 or more, and fits the session's list.

/// A POP3 command with checked arguments. Message numbers are as given (1-based).
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Capa,
    Stls,
    User(String),
    Pass(String),
    Auth(Option<String>, Option<String>),
    Stat,
    List(Option<u64>),
    Retr(u64),
    Dele(u64),
    Noop,
    Rset,
    Top(u64, u64),
    Uidl(Option<u64>),
    Quit,
}

/// Why a line is not a command: the `-ERR` text.
pub type Refusal = String;

/// Parses `line`.
pub fn parse(line: &str) -> Result<Command, Refusal> {
    let (keyword, rest) = match line.split_once(' ') {
        Some((k, r)) => (k, Some(r)),
        None => (line, None),
    };
    let keyword = keyword.to_ascii_uppercase();
    let args: Vec<&str> = rest.map(|r| r.split(' ').collect()).unwrap_or_default();
    let arity = |n: usize| -> Result<(), Refusal> {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!("{keyword} takes {n} argument(s)"))
        }
    };
    Ok(match keyword.as_str() {
        "CAPA" => arity(0).map(|_| Command::Capa)?,
        "STLS" => arity(0).map(|_| Command::Stls)?,
        "USER" => {
            // The user name is everything after the space: some contain spaces.
            let user = rest.filter(|r| !r.is_empty()).ok_or("USER needs a name")?;
            Command::User(user.to_string())
        }
        "PASS" => Command::Pass(rest.ok_or("PASS needs a password")?.to_string()),
        "AUTH" => Command::Auth(
            args.first().map(|s| s.to_ascii_uppercase()),
            args.get(1).map(|s| s.to_string()),
        ),
        "STAT" => arity(0).map(|_| Command::Stat)?,
        "LIST" => Command::List(optional_number(&args)?),
        "UIDL" => Command::Uidl(optional_number(&args)?),
        "RETR" => arity(1).and_then(|_| number(args[0])).map(Command::Retr)?,
        "DELE" => arity(1).and_then(|_| number(args[0])).map(Command::Dele)?,
        "TOP" => {
            arity(2)?;
            let lines = args[1]
                .parse::<u64>()
                .ok()
                .filter(|_| args[1].bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("invalid line count: {}", args[1]))?;
            Command::Top(number(args[0])?, lines)
        }
        "NOOP" => arity(0).map(|_| Command::Noop)?,
        "RSET" => arity(0).map(|_| Command::Rset)?,
        "QUIT" => arity(0).map(|_| Command::Quit)?,
        _ => return Err(format!("unknown command: {}", printable(&keyword))),
    })
}

fn optional_number(args: &[&str]) -> Result<Option<u64>, Refusal> {
    match args {
        [] => Ok(None),
        [n] => number(n).map(Some),
        _ => Err("at most one message number".into()),
    }
}

/// A message number: digits only, at least 1. Too large to fit is "no such message".
fn number(arg: &str) -> Result<u64, Refusal> {
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid message number: {}", printable(arg)));
    }
    Ok(arg.parse::<u64>().unwrap_or(u64::MAX))
}

/// At most 40 printable characters of client input, for echoing it back safely.
fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(40)
        .collect()
}
