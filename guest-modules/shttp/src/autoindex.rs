//! Directory listings ("autoindex"): an HTML page in nginx's shape, with percent-encoded
//! relative hrefs and HTML-escaped names, which wget `-r` and lftp `mirror` can follow.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use serverkit_sdk::filesystem::{DirEntry, EntryKind};

/// Bytes percent-encoded in an href: all but RFC 3986's unreserved characters.
pub const HREF: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Escapes `text` for HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The listing page of the directory at URL path `url_path` (decoded, ending in `/`).
/// Hidden entries (leading `.`), special files and names that are not exact UTF-8 are
/// left out; directories first, then files, each by name.
pub fn page(url_path: &str, mut entries: Vec<DirEntry>) -> String {
    entries.retain(|e| e.exact && !e.name.starts_with('.') && e.kind != EntryKind::Other);
    entries.sort_by(|a, b| {
        (a.kind != EntryKind::Directory, &a.name).cmp(&(b.kind != EntryKind::Directory, &b.name))
    });
    let title = escape(url_path);
    let mut html = format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n\
         <body>\n<h1>Index of {title}</h1><hr><pre>\n"
    );
    if url_path != "/" {
        html.push_str("<a href=\"../\">../</a>\n");
    }
    for entry in &entries {
        let slash = if entry.kind == EntryKind::Directory {
            "/"
        } else {
            ""
        };
        let href = utf8_percent_encode(&entry.name, HREF);
        // `:` is encoded too, so no name reads as a URL scheme.
        html.push_str(&format!(
            "<a href=\"{href}{slash}\">{}{slash}</a>\n",
            escape(&entry.name)
        ));
    }
    html.push_str("</pre><hr></body>\n</html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: EntryKind) -> DirEntry {
        DirEntry {
            name: name.into(),
            exact: true,
            kind,
        }
    }

    #[test]
    fn hrefs_are_encoded_and_names_escaped() {
        let html = page(
            "/sub/",
            vec![
                entry("a file & more.txt", EntryKind::File),
                entry("deeper", EntryKind::Directory),
                entry(".hidden", EntryKind::File),
                entry("<b>#?%.txt", EntryKind::File),
                entry("café", EntryKind::File),
            ],
        );
        assert!(html.contains("<a href=\"../\">../</a>"));
        assert!(html.contains("<a href=\"deeper/\">deeper/</a>"));
        assert!(html.contains("<a href=\"a%20file%20%26%20more.txt\">a file &amp; more.txt</a>"));
        assert!(html.contains("<a href=\"%3Cb%3E%23%3F%25.txt\">&lt;b&gt;#?%.txt</a>"));
        assert!(html.contains("<a href=\"caf%C3%A9\">café</a>"));
        assert!(!html.contains("hidden"));
        assert!(
            html.find("deeper").unwrap() < html.find("a%20file").unwrap(),
            "directories first"
        );
    }

    #[test]
    fn the_root_has_no_parent_link() {
        assert!(!page("/", vec![]).contains("../"));
    }
}
