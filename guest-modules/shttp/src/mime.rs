//! Content types by file extension: a built-in table of the common web types, or the
//! operator's `mime.types` file (Apache/nginx format: `type ext ext ...` per line).

/// Sent when no type is known, as nginx's `default_type`.
pub const DEFAULT_TYPE: &str = "application/octet-stream";

/// The built-in table, sorted by extension (binary search).
const BUILT_IN: &[(&str, &str)] = &[
    ("7z", "application/x-7z-compressed"),
    ("avif", "image/avif"),
    ("bin", "application/octet-stream"),
    ("bmp", "image/bmp"),
    ("css", "text/css; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("gif", "image/gif"),
    ("gz", "application/gzip"),
    ("htm", "text/html; charset=utf-8"),
    ("html", "text/html; charset=utf-8"),
    ("ico", "image/x-icon"),
    ("jpeg", "image/jpeg"),
    ("jpg", "image/jpeg"),
    ("js", "text/javascript; charset=utf-8"),
    ("json", "application/json"),
    ("md", "text/markdown; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("mp3", "audio/mpeg"),
    ("mp4", "video/mp4"),
    ("ogg", "audio/ogg"),
    ("otf", "font/otf"),
    ("pdf", "application/pdf"),
    ("png", "image/png"),
    ("svg", "image/svg+xml"),
    ("tar", "application/x-tar"),
    ("ttf", "font/ttf"),
    ("txt", "text/plain; charset=utf-8"),
    ("wasm", "application/wasm"),
    ("webm", "video/webm"),
    ("webp", "image/webp"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("xml", "application/xml"),
    ("zip", "application/zip"),
];

/// The extension of `path`'s last segment, as sent (compared without regard to case).
fn extension(path: &str) -> Option<&str> {
    let name = path.rsplit('/').next()?;
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then_some(ext)
}

/// The type of `path` from the built-in table.
pub fn built_in(path: &str) -> &'static str {
    extension(path)
        .and_then(|ext| {
            // The table's extensions are lowercase: compare with `ext` lowercased.
            let lowered = || ext.bytes().map(|b| b.to_ascii_lowercase());
            BUILT_IN
                .binary_search_by(|(e, _)| e.bytes().cmp(lowered()))
                .ok()
                .map(|i| BUILT_IN[i].1)
        })
        .unwrap_or(DEFAULT_TYPE)
}

/// The type of `path` from a `mime.types` text; `None` if it lists no such extension.
pub fn from_mime_types(table: &str, path: &str) -> Option<String> {
    let ext = extension(path)?;
    table.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        // nginx's own mime.types wraps entries in `types { ... }` with `;` terminators.
        let line = line.trim().trim_end_matches(';');
        let mut words = line.split_whitespace();
        let ty = words.next().filter(|t| t.contains('/'))?;
        words
            .any(|e| e.eq_ignore_ascii_case(ext))
            .then(|| ty.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_table_is_sorted_and_used() {
        assert!(BUILT_IN.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(built_in("a/index.HTML"), "text/html; charset=utf-8");
        assert_eq!(built_in("big.bin"), "application/octet-stream");
        assert_eq!(built_in("README"), DEFAULT_TYPE);
        assert_eq!(built_in(".profile"), DEFAULT_TYPE);
    }

    #[test]
    fn reads_mime_types_files() {
        let table = "# comment\ntext/html\t\thtml htm shtml\napplication/x-thing  thg\n    image/png png;\n";
        assert_eq!(
            from_mime_types(table, "a.shtml").as_deref(),
            Some("text/html")
        );
        assert_eq!(
            from_mime_types(table, "x.THG").as_deref(),
            Some("application/x-thing")
        );
        assert_eq!(
            from_mime_types(table, "p.png").as_deref(),
            Some("image/png")
        );
        assert_eq!(from_mime_types(table, "a.zzz"), None);
    }
}
