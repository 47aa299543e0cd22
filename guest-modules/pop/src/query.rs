//! The maildrop query format: ServerKit's `maildrop_query_format_string`, compiled into
//! SQL with placeholders and the list of values to bind, never spliced.
//!
//! `%u` is the user name and `%p` the password; `%%` is a literal `%`. A quoted string
//! (`'...'` or `"..."`) that contains a placeholder was the string-splicing habit of the
//! MySQL era: its quotes are dropped and its content kept as SQL, so
//! `password="PASSWORD(%p)"` becomes `password=PASSWORD(?)` and `"%u"` becomes `?`.
//! Quoted strings without placeholders are kept as written.

/// A value bound to a placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// The user name the client gave.
    User,
    /// The password the client gave.
    Password,
}

/// The driver's placeholder style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `?` (MySQL, SQLite).
    Question,
    /// `$1`, `$2`, ... (PostgreSQL).
    Dollar,
}

/// Compiles `format` into SQL and the parameters to bind, in order.
pub fn compile(format: &str, style: Style) -> Result<(String, Vec<Param>), String> {
    let mut sql = String::new();
    let mut params = Vec::new();
    let mut rest = format;
    while let Some(c) = rest.chars().next() {
        if c == '\'' || c == '"' {
            let end = closing(&rest[1..], c)
                .ok_or_else(|| format!("the quote {c} at `{rest}` is never closed"))?;
            let inner = &rest[1..1 + end];
            if inner.contains("%u") || inner.contains("%p") {
                substitute(inner, style, &mut sql, &mut params)?;
            } else {
                sql.push_str(&rest[..end + 2]);
            }
            rest = &rest[end + 2..];
        } else {
            let next = rest.find(['\'', '"']).unwrap_or(rest.len());
            substitute(&rest[..next], style, &mut sql, &mut params)?;
            rest = &rest[next..];
        }
    }
    if !params.contains(&Param::User) {
        return Err("it must contain %u, the user name".into());
    }
    Ok((sql, params))
}

/// Where the quoted string closes: the first `quote` not doubled (`''` is an escaped quote).
fn closing(s: &str, quote: char) -> Option<usize> {
    let bytes = s.as_bytes();
    let q = quote as u8;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == q {
            if bytes.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return Some(i);
        }
        i += 1;
    }
    None
}

fn substitute(
    text: &str,
    style: Style,
    sql: &mut String,
    params: &mut Vec<Param>,
) -> Result<(), String> {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            sql.push(c);
            continue;
        }
        let param = match chars.next() {
            Some('u') => Param::User,
            Some('p') => Param::Password,
            Some('%') => {
                sql.push('%');
                continue;
            }
            other => {
                return Err(format!(
                    "unknown placeholder `%{}`; use %u, %p or %%",
                    other.map(String::from).unwrap_or_default()
                ));
            }
        };
        params.push(param);
        match style {
            Style::Question => sql.push('?'),
            Style::Dollar => sql.push_str(&format!("${}", params.len())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_query_binds_both_values() {
        let seed = r#"select maildrop from EMailUsers where EMailUsers.password="PASSWORD(%p)" and EMailUsers.user="%u""#;
        let (sql, params) = compile(seed, Style::Question).unwrap();
        assert_eq!(
            sql,
            "select maildrop from EMailUsers where EMailUsers.password=PASSWORD(?) and EMailUsers.user=?"
        );
        assert_eq!(params, [Param::Password, Param::User]);
        let (sql, _) = compile(seed, Style::Dollar).unwrap();
        assert!(sql.ends_with("password=PASSWORD($1) and EMailUsers.user=$2"));
    }

    #[test]
    fn quotes_without_placeholders_and_percent_escapes_stay() {
        let (sql, params) = compile(
            "select m from t where u = %u and s = 'a%%b' and x like '100%%'",
            Style::Question,
        )
        .unwrap();
        assert_eq!(
            sql,
            "select m from t where u = ? and s = 'a%%b' and x like '100%%'"
        );
        assert_eq!(params, [Param::User]);
    }

    #[test]
    fn broken_formats_are_refused() {
        assert!(compile("select m from t where u = '%u", Style::Question).is_err());
        assert!(compile("select m from t where u = %x", Style::Question).is_err());
        assert!(compile("select m from t", Style::Question).is_err());
    }
}
