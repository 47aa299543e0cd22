//! "Did you mean": the nearest valid name to a misspelt one.

// The limits below keep a hostile or fuzzed file from making the checker slow: edit
// distance costs the product of the two lengths, once per candidate, and the word, the
// number of suggestions and (for `database` titles) the candidates all come from the
// file. Real names, real vocabularies and real typos stay far below them.

/// Names longer than this get no suggestion.
const MAX_SUGGEST_LEN: usize = 64;

/// Candidates compared per suggestion; those beyond are not considered.
const MAX_CANDIDATES: usize = 200;

/// Suggestions made per file; later errors get none. A file with more misspelt names
/// than this is not misspelt.
const MAX_SUGGESTIONS: usize = 100;

/// Makes suggestions within the per-file budget.
pub(crate) struct Suggester {
    left: usize,
}

impl Suggester {
    pub fn new() -> Suggester {
        Suggester {
            left: MAX_SUGGESTIONS,
        }
    }

    /// `did you mean `x`?`, if something is close and the budget is not spent.
    pub fn did_you_mean<'a>(
        &mut self,
        word: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Option<String> {
        self.left = self.left.checked_sub(1)?;
        nearest(word, candidates).map(|name| format!("did you mean `{name}`?"))
    }
}

/// The candidate closest to `word`, if any is close enough to be a likely typo.
///
/// Close means an edit distance (with transpositions, case ignored) of at most one for
/// names of up to four characters and two beyond, or a Jaro-Winkler similarity of at
/// least 0.88, which catches a dropped or extra word part (`bypass_syslog` for
/// `bypass_libc_syslog`). Among close candidates the smallest distance wins, then the
/// highest similarity, then the first given.
pub(crate) fn nearest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    if word.chars().count() > MAX_SUGGEST_LEN {
        return None;
    }
    let word = word.to_lowercase();
    let limit = if word.chars().count() <= 4 { 1 } else { 2 };
    let mut best: Option<(usize, f64, &'a str)> = None;
    for candidate in candidates.into_iter().take(MAX_CANDIDATES) {
        if candidate.chars().count() > MAX_SUGGEST_LEN {
            continue;
        }
        let lower = candidate.to_lowercase();
        let distance = strsim::osa_distance(&word, &lower);
        let similarity = strsim::jaro_winkler(&word, &lower);
        if distance > limit && similarity < 0.88 {
            continue;
        }
        let better = match best {
            None => true,
            Some((d, s, _)) => distance < d || (distance == d && similarity > s),
        };
        if better {
            best = Some((distance, similarity, candidate));
        }
    }
    best.map(|(_, _, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POP: [&str; 9] = [
        "database",
        "port",
        "address",
        "backlog",
        "min_sessions",
        "max_sessions",
        "max_threads",
        "min_threads",
        "maildrop_query_format_string",
    ];

    const CORE: [&str; 6] = [
        "identity",
        "executes_as_root",
        "uid",
        "gid",
        "bypass_libc_syslog",
        "libc_syslog_bypass_address",
    ];

    #[test]
    fn suggests_typos() {
        let cases = [
            ("prot", "port"),
            ("Port", "port"),
            ("adress", "address"),
            ("max_session", "max_sessions"),
            ("max_theads", "max_threads"),
            ("maildrop_query", "maildrop_query_format_string"),
            ("databse", "database"),
        ];
        for (typo, expected) in cases {
            assert_eq!(nearest(typo, POP), Some(expected), "{typo}");
        }
        let cases = [
            ("identiy", "identity"),
            ("uidd", "uid"),
            ("executes_as_rot", "executes_as_root"),
            ("bypass_syslog", "bypass_libc_syslog"),
            ("libc_syslog_address", "libc_syslog_bypass_address"),
        ];
        for (typo, expected) in cases {
            assert_eq!(nearest(typo, CORE), Some(expected), "{typo}");
        }
        assert_eq!(nearest("popp", ["database", "pop", "echo"]), Some("pop"));
    }

    #[test]
    fn suggests_nothing_far() {
        for word in ["hostname", "timeout", "x", "listen", "threads_max"] {
            assert_eq!(nearest(word, POP), None, "{word}");
        }
        assert_eq!(nearest("verbose", CORE), None);
        assert_eq!(nearest("anything", []), None);
    }

    #[test]
    fn the_budget_runs_out() {
        let mut suggester = Suggester::new();
        for _ in 0..MAX_SUGGESTIONS {
            assert!(suggester.did_you_mean("prot", POP).is_some());
        }
        assert_eq!(suggester.did_you_mean("prot", POP), None);
    }

    #[test]
    fn long_names_are_not_compared() {
        let long = "a".repeat(MAX_SUGGEST_LEN + 1);
        assert_eq!(nearest(&long, [long.as_str()]), None);
        assert_eq!(nearest("aaaa", [long.as_str()]), None);
    }
}
