//! Directory URLs: the trailing-slash redirect, the default index, the autoindex listing;
//! and the constant response of the health check.

use percent_encoding::utf8_percent_encode;

use crate::autoindex::{self, HREF, Listed};
use crate::path::Target;
use crate::request::Request;
use crate::serve::{Answered, lookup_status};
use crate::session::Session;
use crate::settings::ListingFormat;
use serverkit_sdk::connection::SendKind;
use serverkit_sdk::filesystem::{EntryKind, FsError};

impl Session<'_> {
    pub(crate) fn is_health_check(&self, raw_target: &str) -> bool {
        let path = raw_target.split('?').next().unwrap_or("");
        self.settings.health_check.as_deref() == Some(path)
    }

    /// The constant response: `200 OK` with a fixed body.
    pub(crate) fn constant(&mut self, req: &Request, keep: bool, head_only: bool) -> Answered {
        const BODY: &[u8] = b"OK\n";
        let mut bytes = self
            .head(200)
            .field("Content-Type", "text/plain")
            .field("Cache-Control", "no-store")
            .finish(BODY.len() as u64, keep, req.minor);
        if !head_only {
            bytes.extend_from_slice(BODY);
        }
        self.io
            .send(self.conn, SendKind::ConstantResponse, &bytes)?;
        Ok((200, if head_only { 0 } else { BODY.len() as u64 }))
    }

    pub(crate) fn directory(
        &mut self,
        req: &Request,
        target: &Target,
        keep: bool,
        head_only: bool,
    ) -> Answered {
        if !target.trailing_slash {
            let mut location = format!("/{}/", encode_path(&target.path));
            if let Some(query) = &target.query {
                location = format!("{location}?{query}");
            }
            return self.simple_body(301, &[("Location", location)], keep, req.minor, !head_only);
        }
        let index = match target.path.as_str() {
            "" => self.settings.default_index.clone(),
            dir => format!("{dir}/{}", self.settings.default_index),
        };
        if let Ok((file, meta)) = self.root.open_with_metadata(&index)
            && meta.kind == EntryKind::File
        {
            return self.file(req, &index, &file, &meta, keep, head_only);
        }
        if !self.settings.autoindex {
            return self.simple_body(403, &[], keep, req.minor, !head_only);
        }
        self.listing(req, target, keep, head_only)
    }

    /// The autoindex listing of the directory at `target`, in `autoindex_format`.
    fn listing(&mut self, req: &Request, target: &Target, keep: bool, head_only: bool) -> Answered {
        let entries = match self.listed(&target.path) {
            Ok(entries) => entries,
            Err(e) => return self.simple_body(lookup_status(&e), &[], keep, req.minor, !head_only),
        };
        let (page, content_type) = match self.settings.autoindex_format {
            ListingFormat::Html => {
                let url = if target.path.is_empty() {
                    "/".to_string()
                } else {
                    format!("/{}/", target.path)
                };
                (autoindex::html(&url, &entries), "text/html; charset=utf-8")
            }
            ListingFormat::Json => (autoindex::json(&entries), "application/json"),
        };
        let mut bytes = self.head(200).field("Content-Type", content_type).finish(
            page.len() as u64,
            keep,
            req.minor,
        );
        if !head_only {
            bytes.extend_from_slice(page.as_bytes());
        }
        self.io.send(self.conn, SendKind::Autoindex, &bytes)?;
        Ok((200, if head_only { 0 } else { page.len() as u64 }))
    }

    /// The entries of the directory at `path` that a listing shows, sorted, each with its
    /// date and size (read by opening it: the contract's listing has names and kinds).
    fn listed(&self, path: &str) -> Result<Vec<Listed>, FsError> {
        let hidden = self.settings.hidden_files;
        let mut listed: Vec<Listed> = self
            .root
            .list_entries(path)?
            .into_iter()
            .filter(|e| autoindex::shown(e, hidden, path.is_empty()))
            .map(|e| {
                let full = if path.is_empty() {
                    e.name.clone()
                } else {
                    format!("{path}/{}", e.name)
                };
                let stat = self
                    .root
                    .open_with_metadata(&full)
                    .ok()
                    .map(|(_, meta)| (meta.modified_seconds, meta.size));
                Listed {
                    name: e.name,
                    directory: e.kind == EntryKind::Directory,
                    stat,
                }
            })
            .collect();
        autoindex::sort(&mut listed);
        Ok(listed)
    }
}

/// Each segment of `path` percent-encoded, `/` kept.
fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|s| utf8_percent_encode(s, HREF).to_string())
        .collect::<Vec<_>>()
        .join("/")
}
