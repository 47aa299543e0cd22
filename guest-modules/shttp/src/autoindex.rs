//! Directory listings ("autoindex") in nginx's two shapes: the HTML page (name, date and
//! size columns aligned as nginx aligns them; percent-encoded relative hrefs and
//! HTML-escaped names, which wget `-r` and lftp `mirror` follow) and the JSON array of
//! `autoindex_format json`.

use std::fmt::Write as _;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::path::WELL_KNOWN;
use crate::response::http_date;
use crate::settings::HiddenFiles;
use serverkit_sdk::filesystem::{DirEntry, EntryKind};

/// Bytes percent-encoded in an href: all but RFC 3986's unreserved characters.
pub const HREF: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Width of the name column in characters (nginx's `NGX_HTTP_AUTOINDEX_NAME_LEN`); a
/// longer name is cut to 47 characters and `..>`.
const NAME_COLUMN: usize = 50;

/// Width of the size column (nginx's `%19O`).
const SIZE_COLUMN: usize = 19;

/// Width of the date column, `02-Dec-2026 15:09`.
const DATE_COLUMN: usize = 17;

/// One listed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its name (exact UTF-8).
    pub name: String,
    /// Whether it is a directory (else a regular file).
    pub directory: bool,
    /// Modification time (seconds since the epoch) and size, when it could be opened.
    pub stat: Option<(i64, u64)>,
}

/// Whether `entry` of the directory is listed: files and directories whose names are
/// exact UTF-8, and, when `hidden_files` denies them, none starting with `.` but
/// `.well-known` at the root: a listing shows what a request would be served.
pub fn shown(entry: &DirEntry, hidden: HiddenFiles, at_root: bool) -> bool {
    entry.exact
        && entry.kind != EntryKind::Other
        && (hidden == HiddenFiles::Allow
            || !entry.name.starts_with('.')
            || (at_root && entry.name == WELL_KNOWN))
}

/// Directories first, then files, each by name (bytewise, as nginx).
pub fn sort(entries: &mut [Listed]) {
    entries.sort_by(|a, b| (!a.directory, &a.name).cmp(&(!b.directory, &b.name)));
}

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

/// The HTML page of the directory at URL path `url_path` (decoded, ending in `/`), for
/// `entries` already sorted.
pub fn html(url_path: &str, entries: &[Listed]) -> String {
    let title = escape(url_path);
    let mut html = format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n\
         <body>\n<h1>Index of {title}</h1><hr><pre>\n"
    );
    if url_path != "/" {
        html.push_str("<a href=\"../\">../</a>\n");
    }
    for entry in entries {
        html_line(&mut html, entry);
    }
    html.push_str("</pre><hr></body>\n</html>\n");
    html
}

/// One line of the page: link, padding to the name column, date, size.
fn html_line(out: &mut String, entry: &Listed) {
    let slash = if entry.directory { "/" } else { "" };
    // `:` is encoded too, so no name reads as a URL scheme.
    let href = utf8_percent_encode(&entry.name, HREF);
    let _ = write!(out, "<a href=\"{href}{slash}\">");
    let chars = entry.name.chars().count();
    if chars > NAME_COLUMN {
        let cut: String = entry.name.chars().take(NAME_COLUMN - 3).collect();
        let _ = write!(out, "{}..&gt;</a>", escape(&cut));
    } else {
        // As nginx: a directory's slash is shown when it still fits the column.
        let shown_slash = if entry.directory && chars < NAME_COLUMN {
            "/"
        } else {
            ""
        };
        let width = chars + shown_slash.len();
        let _ = write!(
            out,
            "{}{shown_slash}</a>{:pad$}",
            escape(&entry.name),
            "",
            pad = NAME_COLUMN - width
        );
    }
    let (date, size) = match entry.stat {
        Some((mtime, size)) => (listing_date(mtime), size.to_string()),
        None => ("-".to_string(), "-".to_string()),
    };
    let size = if entry.directory { "-" } else { &size };
    let _ = writeln!(out, " {date:<DATE_COLUMN$} {size:>SIZE_COLUMN$}");
}

/// `02-Dec-2026 15:09` (UTC), nginx's listing date, cut from the HTTP date
/// `Wed, 02 Dec 2026 15:09:45 GMT` (always this long: years are four digits).
fn listing_date(seconds: i64) -> String {
    let d = http_date(seconds);
    format!("{}-{}-{} {}", &d[5..7], &d[8..11], &d[12..16], &d[17..22])
}

/// The JSON array of `autoindex_format json`, for `entries` already sorted: `name`,
/// `type` (`file` or `directory`), `mtime` (an HTTP date) and, for files, `size`; an
/// entry that could not be opened has neither date nor size.
pub fn json(entries: &[Listed]) -> String {
    let mut out = String::from("[\n");
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(",\n");
        }
        let kind = if entry.directory { "directory" } else { "file" };
        let _ = write!(
            out,
            "{{ \"name\":\"{}\", \"type\":\"{kind}\"",
            json_escape(&entry.name)
        );
        if let Some((mtime, size)) = entry.stat {
            let _ = write!(out, ", \"mtime\":\"{}\"", http_date(mtime));
            if !entry.directory {
                let _ = write!(out, ", \"size\":{size}");
            }
        }
        out.push_str(" }");
    }
    if !entries.is_empty() {
        out.push('\n');
    }
    out.push_str("]\n");
    out
}

/// `text` as the inside of a JSON string (RFC 8259 §7).
fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
