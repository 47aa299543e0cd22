//! Answering one request: method, target, then a file (conditionals, ranges, sendfile by
//! the host); directories are in `directory.rs`.

use std::borrow::Cow;

use crate::conditional::{self, Conditions, Decision, Validators};
use crate::io::Disconnected;
use crate::mime;
use crate::path;
use crate::range::{self, Ranges};
use crate::request::Request;
use crate::response::{Head, http_date};
use crate::session::Session;
use crate::settings::HiddenFiles;
use serverkit_sdk::connection::SendKind;
use serverkit_sdk::filesystem::{self, EntryKind, File, FsError, Metadata};

/// The name in a `Host` value, without its port (`[::1]:80` gives `[::1]`).
fn host_name(host: &str) -> &str {
    match host.find(']') {
        Some(end) => &host[..=end],
        None => host.split(':').next().unwrap_or(host),
    }
}

/// Largest `mime_types` file read.
const MAX_MIME_TYPES_BYTES: u64 = 1024 * 1024;

/// The status and body bytes of an answer; `Err` if the connection broke.
pub type Answered = Result<(u16, u64), Disconnected>;

/// Whether `method` is one shttp serves (GET and HEAD); any other is 405.
pub fn serves(method: &str) -> bool {
    matches!(method, "GET" | "HEAD")
}

impl Session<'_> {
    /// Answers `req`.
    pub fn answer(&mut self, req: &Request, keep: bool) -> Answered {
        if !serves(req.method()) {
            let allow = [("Allow", "GET, HEAD".to_string())];
            return self.simple(405, &allow, keep, req.minor);
        }
        let head_only = req.method() == "HEAD";
        let target = match path::parse(req.target()) {
            Ok(target) => target,
            Err(_) => return self.simple_body(400, &[], keep, req.minor, !head_only),
        };
        if self.is_health_check(req.target()) {
            return self.constant(req, keep, head_only);
        }
        if let Some(port) = self.settings.https_redirect
            && !self.conn.is_tls()
        {
            let host = req.header("host").map(host_name).unwrap_or("localhost");
            let location = format!("https://{host}:{port}{}", req.target());
            return self.simple_body(301, &[("Location", location)], keep, req.minor, !head_only);
        }
        if target.is_hidden() && self.settings.hidden_files == HiddenFiles::Deny {
            return self.simple_body(404, &[], keep, req.minor, !head_only);
        }
        match self.root.open_with_metadata(&target.path) {
            Ok((file, meta)) => match meta.kind {
                EntryKind::Directory => self.directory(req, &target, keep, head_only),
                EntryKind::File if !target.trailing_slash => {
                    self.file(req, &target.path, &file, &meta, keep, head_only)
                }
                _ => self.simple_body(404, &[], keep, req.minor, !head_only),
            },
            Err(e) => self.simple_body(lookup_status(&e), &[], keep, req.minor, !head_only),
        }
    }
    pub(crate) fn file(
        &mut self,
        req: &Request,
        name: &str,
        file: &File,
        meta: &Metadata,
        keep: bool,
        head_only: bool,
    ) -> Answered {
        let v = Validators::new(meta.modified_seconds, meta.size);
        let conditions = Conditions::of(req);
        let last_modified = http_date(meta.modified_seconds);
        match conditional::evaluate(&conditions, &v) {
            Decision::Proceed => {}
            Decision::PreconditionFailed => {
                return self.simple_body(412, &[], keep, req.minor, !head_only);
            }
            Decision::NotModified => {
                // Content-Length of a 304 is the length a 200 would have (RFC 9110 §8.6).
                let bytes = self
                    .file_head(304)
                    .field("Last-Modified", &last_modified)
                    .field("ETag", &v.etag)
                    .finish(meta.size, keep, req.minor);
                self.io.send(self.conn, SendKind::Headers, &bytes)?;
                return Ok((304, 0));
            }
        }
        let content_type = self.content_type(name);
        let ranges = match req.header("range") {
            Some(header) if !head_only && conditional::range_allowed(&conditions, &v) => {
                range::resolve(header, meta.size)
            }
            _ => Ranges::Whole,
        };
        let head = match &ranges {
            Ranges::Whole => self.file_head(200),
            Ranges::Parts(_) => self.file_head(206),
            Ranges::Unsatisfiable => self.head(416),
        }
        .field("Last-Modified", &last_modified)
        .field("ETag", &v.etag)
        .field("Accept-Ranges", "bytes");
        match ranges {
            Ranges::Whole => {
                let head = head
                    .field("Content-Type", &*content_type)
                    .finish(meta.size, keep, req.minor);
                if head_only {
                    self.io.send(self.conn, SendKind::Headers, &head)?;
                    return Ok((200, 0));
                }
                self.send_file(head, file, 0, meta.size)
                    .map(|()| (200, meta.size))
            }
            Ranges::Unsatisfiable => {
                let range = [("Content-Range", format!("bytes */{}", meta.size))];
                self.simple(416, &range, keep, req.minor)
            }
            Ranges::Parts(parts) if parts.len() == 1 => {
                let (offset, length) = parts[0];
                let head = head
                    .field("Content-Type", &*content_type)
                    .field("Content-Range", content_range(offset, length, meta.size))
                    .finish(length, keep, req.minor);
                self.send_file(head, file, offset, length)
                    .map(|()| (206, length))
            }
            Ranges::Parts(parts) => self.multipart(
                head,
                file,
                meta.size,
                &content_type,
                &parts,
                keep,
                req.minor,
            ),
        }
    }

    /// The head of a file response that carries the file (or says it is unchanged): with
    /// `cache_control` when set.
    fn file_head(&self, status: u16) -> Head {
        let head = self.head(status);
        match &self.settings.cache_control {
            Some(value) => head.field("Cache-Control", value),
            None => head,
        }
    }

    /// Several ranges as `multipart/byteranges`, each part's bytes sent by the host.
    #[expect(
        clippy::too_many_arguments,
        reason = "one response's parts, all needed"
    )]
    fn multipart(
        &mut self,
        head: Head,
        file: &File,
        size: u64,
        content_type: &str,
        parts: &[(u64, u64)],
        keep: bool,
        minor: u8,
    ) -> Answered {
        let boundary = format!("shttp{:016x}", crate::io::Streams::now());
        let part_heads: Vec<String> = parts
            .iter()
            .map(|&(offset, length)| {
                format!(
                    "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: {}\r\n\r\n",
                    content_range(offset, length, size)
                )
            })
            .collect();
        let tail = format!("\r\n--{boundary}--\r\n");
        let total: u64 = parts.iter().map(|p| p.1).sum::<u64>()
            + part_heads.iter().map(|h| h.len() as u64).sum::<u64>()
            + tail.len() as u64;
        let mut first = head
            .field(
                "Content-Type",
                format!("multipart/byteranges; boundary={boundary}"),
            )
            .finish(total, keep, minor);
        for (part_head, &(offset, length)) in part_heads.iter().zip(parts) {
            first.extend_from_slice(part_head.as_bytes());
            self.send_file(std::mem::take(&mut first), file, offset, length)?;
        }
        self.send_file(tail.into_bytes(), file, 0, 0)?;
        Ok((206, total))
    }

    fn send_file(
        &mut self,
        head: Vec<u8>,
        file: &File,
        offset: u64,
        length: u64,
    ) -> Result<(), Disconnected> {
        self.conn
            .send_file(&head, file, offset, length)
            .map(|_| ())
            .map_err(|_| Disconnected)
    }

    /// The content type of `name`: from `mime_types` when set, else the built-in table.
    fn content_type(&mut self, name: &str) -> Cow<'static, str> {
        if self.settings.mime_types {
            let table = self.mime_table.get_or_insert_with(read_mime_types);
            if let Some(ty) = mime::from_mime_types(table, name) {
                return Cow::Owned(ty);
            }
        }
        Cow::Borrowed(mime::built_in(name))
    }
}

/// The `mime_types` file's text (empty if unreadable).
fn read_mime_types() -> String {
    let Some(file) = filesystem::granted_file("mime_types") else {
        return String::new();
    };
    let mut bytes = Vec::new();
    while (bytes.len() as u64) < MAX_MIME_TYPES_BYTES {
        match file.read(bytes.len() as u64, 64 * 1024) {
            Ok(chunk) if !chunk.is_empty() => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn content_range(offset: u64, length: u64, size: u64) -> String {
    format!("bytes {}-{}/{size}", offset, offset + length - 1)
}

/// The status for a failed lookup: nothing is said about what lies outside `doc_root`.
pub(crate) fn lookup_status(e: &FsError) -> u16 {
    match e {
        FsError::AccessDenied => 403,
        FsError::OsError(_) => 500,
        _ => 404,
    }
}
