//! `Range: bytes=...` (RFC 9110 §14): parsing and resolving against a file's size.

/// Most ranges honoured in one request; beyond it the whole file is sent (200), which
/// defends against overlapping-range floods ("Apache killer").
pub const MAX_RANGES: usize = 16;

/// What a Range header asks of a file of a given size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranges {
    /// No usable Range header (absent, not `bytes`, malformed, too many): send it all.
    Whole,
    /// Satisfiable ranges as `(offset, length)`, in request order.
    Parts(Vec<(u64, u64)>),
    /// None of the ranges overlaps the file: 416.
    Unsatisfiable,
}

/// Resolves `header` against a file of `size` bytes.
pub fn resolve(header: &str, size: u64) -> Ranges {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ranges::Whole;
    };
    let mut parts = Vec::new();
    let mut count = 0;
    for item in spec.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        count += 1;
        if count > MAX_RANGES {
            return Ranges::Whole;
        }
        match one(item, size) {
            Some(Ok(part)) => parts.push(part),
            Some(Err(())) => {} // syntactically fine, outside the file
            None => return Ranges::Whole,
        }
    }
    match (count, parts.is_empty()) {
        (0, _) => Ranges::Whole,
        (_, true) => Ranges::Unsatisfiable,
        (_, false) => Ranges::Parts(parts),
    }
}

/// One `first-last`, `first-` or `-suffix`: `None` if malformed, `Err` if unsatisfiable.
fn one(item: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let (first, last) = item.split_once('-')?;
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    if first.is_empty() {
        let suffix = number(last)?;
        if suffix == 0 || size == 0 {
            return Some(Err(()));
        }
        let length = suffix.min(size);
        return Some(Ok((size - length, length)));
    }
    let first = number(first)?;
    let last = if last.is_empty() {
        None
    } else {
        Some(number(last)?)
    };
    if last.is_some_and(|l| l < first) {
        return None;
    }
    if first >= size {
        return Some(Err(()));
    }
    let last = last.map_or(size - 1, |l| l.min(size - 1));
    Some(Ok((first, last - first + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1_048_576;

    #[test]
    fn single_suffix_and_open_ranges() {
        assert_eq!(resolve("bytes=0-99", MIB), Ranges::Parts(vec![(0, 100)]));
        assert_eq!(
            resolve("bytes=-500", MIB),
            Ranges::Parts(vec![(MIB - 500, 500)])
        );
        assert_eq!(
            resolve("bytes=1048000-", MIB),
            Ranges::Parts(vec![(1_048_000, 576)])
        );
        assert_eq!(
            resolve("bytes=0-5000000", MIB),
            Ranges::Parts(vec![(0, MIB)])
        );
        assert_eq!(resolve("bytes=-5000000", 10), Ranges::Parts(vec![(0, 10)]));
    }

    #[test]
    fn several_ranges_keep_their_order() {
        assert_eq!(
            resolve("bytes=5-6, 0-1", 10),
            Ranges::Parts(vec![(5, 2), (0, 2)])
        );
        assert_eq!(resolve("bytes=0-1,20-30", 10), Ranges::Parts(vec![(0, 2)]));
    }

    #[test]
    fn past_the_end_is_unsatisfiable() {
        assert_eq!(resolve("bytes=2000000-", MIB), Ranges::Unsatisfiable);
        assert_eq!(resolve("bytes=-0", MIB), Ranges::Unsatisfiable);
        assert_eq!(resolve("bytes=0-", 0), Ranges::Unsatisfiable);
    }

    #[test]
    fn malformed_or_foreign_units_mean_the_whole_file() {
        for header in [
            "items=0-1",
            "bytes=",
            "bytes=a-b",
            "bytes=5-1",
            "bytes=1",
            "bytes=--1",
        ] {
            assert_eq!(resolve(header, 100), Ranges::Whole, "{header}");
        }
        let flood = vec!["0-1"; MAX_RANGES + 1].join(",");
        assert_eq!(resolve(&format!("bytes={flood}"), 100), Ranges::Whole);
    }
}
