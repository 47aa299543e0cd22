//! A guest's stdout and stderr: each line becomes one host log event, labelled with the
//! module, so a Rust guest's panic message lands in the log before its trap. Lines count
//! against the same `max_log_events` budget as `log` calls, and are charged to the
//! module's share of the stderr queue.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::{MAX_LOG_MESSAGE_BYTES, truncate, written};
use crate::logging::owner::as_owner;
use crate::meter::{ModuleMeter, log_event};

/// Which of the guest's output streams.
#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Where an instance's lines are counted: its module's meter and its own event count.
#[derive(Clone)]
pub struct LogBudget {
    /// The module's meter.
    pub meter: Arc<ModuleMeter>,
    /// The instance's events so far (shared with its `log` calls).
    pub events: Arc<AtomicU32>,
}

/// The factory WASI asks for a guest's stdout or stderr.
pub struct GuestLog {
    module: Arc<str>,
    stream: Stream,
    budget: LogBudget,
}

impl GuestLog {
    /// stdout, logged at `info`.
    pub fn stdout(module: &str, budget: LogBudget) -> Self {
        GuestLog {
            module: module.into(),
            stream: Stream::Stdout,
            budget,
        }
    }

    /// stderr, logged at `warn`.
    pub fn stderr(module: &str, budget: LogBudget) -> Self {
        GuestLog {
            module: module.into(),
            stream: Stream::Stderr,
            budget,
        }
    }

    fn lines(&self) -> LineLogger {
        LineLogger {
            module: self.module.clone(),
            stream: self.stream,
            partial: Vec::new(),
            budget: self.budget.clone(),
        }
    }
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.lines())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.lines())
    }
}

/// Splits written bytes into lines and logs each.
struct LineLogger {
    module: Arc<str>,
    stream: Stream,
    partial: Vec<u8>,
    budget: LogBudget,
}

impl LineLogger {
    fn accept(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.emit();
            } else if self.partial.len() < MAX_LOG_MESSAGE_BYTES {
                self.partial.push(b);
            }
        }
    }

    fn emit(&mut self) {
        let meter = &self.budget.meter;
        as_owner(&meter.log_queue, || {
            let event = log_event(meter, &self.budget.events);
            if !written(&self.module, meter, event) {
                return;
            }
            let text = String::from_utf8_lossy(&self.partial);
            let line = truncate(&text, MAX_LOG_MESSAGE_BYTES);
            let module = &*self.module;
            match self.stream {
                Stream::Stdout => tracing::info!(module, stream = "stdout", "{line}"),
                Stream::Stderr => tracing::warn!(module, stream = "stderr", "{line}"),
            }
        });
        self.partial.clear();
    }
}

impl Drop for LineLogger {
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            self.emit();
        }
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for LineLogger {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.accept(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_LOG_MESSAGE_BYTES)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineLogger {
    async fn ready(&mut self) {}
}

impl AsyncWrite for LineLogger {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.accept(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
