//! Stderr lines through a queue, written by one thread, so no thread that logs ever waits
//! for the reader of stderr. Under daemontools that reader is multilog: when it stalls
//! (a full disk, a stopped logger) or falls behind (a module logging as fast as its budget
//! lets it), a direct `write(2)` blocks on the full pipe, and with it every worker of
//! every module, the reload thread and the signal thread, all of which log.
//!
//! Until [`LineQueue::start`] (after the privilege drop, which needs the process to be
//! one thread) lines are written directly, in order. After it, a line that would take the
//! queue past [`MAX_QUEUED_BYTES`] is dropped and counted (the report's `Log lines
//! dropped` line). [`LineQueue::flush`] waits for what is queued, at exit.
//!
//! A module's lines, written under its [`LogShare`] (`super::owner`), may hold at most
//! [`MAX_QUEUED_BYTES_PER_OWNER`] of the queue: a module flooding the log while the reader
//! lags loses its own lines, not the host's or other modules'.
//!
//! The writer batches what is waiting into one `write(2)` and flushes whenever the queue
//! is empty, so a line is never held back behind an idle queue.

use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use super::owner::{self, LogShare};

/// The most bytes of lines waiting for the writer: what it defends is host memory while
/// the reader of stderr does not read.
pub const MAX_QUEUED_BYTES: usize = 8 << 20;

/// The most bytes of one owner's lines waiting: a quarter of the queue, so it takes four
/// modules flooding at once to crowd out the host's lines and everyone else's.
pub const MAX_QUEUED_BYTES_PER_OWNER: usize = MAX_QUEUED_BYTES / 4;

/// Bytes of the writer's batch: what it hands `write(2)` at most at once.
const WRITE_BATCH_BYTES: usize = 64 << 10;

enum Message {
    Line(Vec<u8>, Option<Arc<LogShare>>),
    /// Answered once everything sent before it is written.
    Flush(SyncSender<()>),
}

/// The queue in front of one output (stderr in the server).
pub struct LineQueue {
    sender: Sender<Message>,
    receiver: Mutex<Option<Receiver<Message>>>,
    output: Mutex<Option<Box<dyn Write + Send>>>,
    started: AtomicBool,
    queued_bytes: Arc<AtomicUsize>,
    dropped: AtomicU64,
}

impl LineQueue {
    /// A queue in front of `output`, writing directly until started.
    pub fn new(output: Box<dyn Write + Send>) -> Self {
        let (sender, receiver) = mpsc::channel();
        LineQueue {
            sender,
            receiver: Mutex::new(Some(receiver)),
            output: Mutex::new(Some(output)),
            started: AtomicBool::new(false),
            queued_bytes: Arc::default(),
            dropped: AtomicU64::new(0),
        }
    }

    /// Starts the writer thread; from now on lines are queued. Once only.
    pub fn start(&self) -> Result<()> {
        let receiver = self
            .receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let output = self.output.lock().unwrap_or_else(|p| p.into_inner()).take();
        let (Some(receiver), Some(mut output)) = (receiver, output) else {
            return Ok(());
        };
        let queued = self.queued_bytes.clone();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_lines(&receiver, &mut output, &queued))
            .context("failed to start the log writer thread")?;
        self.started.store(true, Ordering::Release);
        Ok(())
    }

    /// Writes `line` (one event, its newline included), or queues it, or drops it if the
    /// queue holds [`MAX_QUEUED_BYTES`] already.
    pub fn push(&self, line: Vec<u8>) {
        self.send(line, false);
    }

    /// Like [`LineQueue::push`], but never dropped: the status report, which the operator
    /// asked for.
    pub fn push_always(&self, text: Vec<u8>) {
        self.send(text, true);
    }

    fn send(&self, line: Vec<u8>, always: bool) {
        let owner = if always { None } else { owner::current() };
        if !self.started.load(Ordering::Acquire)
            && let Some(output) = self
                .output
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
        {
            let _ = output.write_all(&line);
            return;
        }
        let len = line.len();
        if let Some(share) = &owner
            && !share.take(&share.stderr_bytes, len, MAX_QUEUED_BYTES_PER_OWNER)
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let before = self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        if !always && before + len > MAX_QUEUED_BYTES {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if let Some(share) = &owner {
                share.stderr_bytes.fetch_sub(len, Ordering::Relaxed);
                share.count_dropped();
            }
            return;
        }
        if let Err(mpsc::SendError(Message::Line(_, owner))) =
            self.sender.send(Message::Line(line, owner))
        {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            if let Some(share) = owner {
                share.stderr_bytes.fetch_sub(len, Ordering::Relaxed);
            }
        }
    }

    /// Waits until every line queued so far is written (at exit). Returns at once before
    /// the writer started.
    pub fn flush(&self) {
        if !self.started.load(Ordering::Acquire) {
            return;
        }
        let (done, written) = mpsc::sync_channel(1);
        if self.sender.send(Message::Flush(done)).is_ok() {
            let _ = written.recv();
        }
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The writer thread: lines in order, batched into `output` while more are waiting, each
/// line's bytes given back to the queue's and its owner's counts once it is batched.
fn write_lines(
    receiver: &Receiver<Message>,
    output: &mut Box<dyn Write + Send>,
    queued: &AtomicUsize,
) {
    let mut batch = BufWriter::with_capacity(WRITE_BATCH_BYTES, output);
    loop {
        let message = match receiver.try_recv() {
            Ok(message) => message,
            Err(TryRecvError::Empty) => {
                // Nothing to tell a failed write to but the log itself.
                let _ = batch.flush();
                match receiver.recv() {
                    Ok(message) => message,
                    Err(_) => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        match message {
            Message::Line(line, owner) => {
                let _ = batch.write_all(&line);
                queued.fetch_sub(line.len(), Ordering::Relaxed);
                if let Some(share) = owner {
                    share.stderr_bytes.fetch_sub(line.len(), Ordering::Relaxed);
                }
            }
            Message::Flush(done) => {
                let _ = batch.flush();
                let _ = done.send(());
            }
        }
    }
    let _ = batch.flush();
}

/// One event's bytes, queued when the formatter is done with it.
pub struct QueuedLine<'a> {
    queue: &'a LineQueue,
    line: Vec<u8>,
}

impl Write for QueuedLine<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for QueuedLine<'_> {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.queue.push(std::mem::take(&mut self.line));
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for &'static LineQueue {
    type Writer = QueuedLine<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        QueuedLine {
            queue: self,
            line: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output that blocks every write until released, like a pipe nobody reads.
    #[derive(Clone, Default)]
    struct Stalled {
        written: Arc<Mutex<Vec<u8>>>,
        open: Arc<(Mutex<bool>, std::sync::Condvar)>,
    }

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (open, changed) = &*self.open;
            let mut open = open.lock().unwrap();
            while !*open {
                open = changed.wait(open).unwrap();
            }
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_reader_costs_lines_never_a_wait() {
        let output = Stalled::default();
        let queue = LineQueue::new(Box::new(output.clone()));
        *output.open.0.lock().unwrap() = true;
        queue.push(b"before the start, written at once\n".to_vec());
        assert_eq!(output.written.lock().unwrap().len(), 34);
        *output.open.0.lock().unwrap() = false;
        queue.start().unwrap();
        let line = vec![b'x'; 1 << 20];
        let started = std::time::Instant::now();
        for _ in 0..20 {
            queue.push(line.clone());
        }
        // The writer holds one line in its stalled write; the queue holds the rest up to
        // its bound; everything past that is dropped, and nobody waited.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(queue.dropped() >= 20 - 1 - (MAX_QUEUED_BYTES >> 20) as u64);
        queue.push_always(b"the report\n".to_vec());
        let (open, changed) = &*output.open;
        *open.lock().unwrap() = true;
        changed.notify_all();
        queue.flush();
        let written = output.written.lock().unwrap();
        assert!(
            written.ends_with(b"the report\n"),
            "in order, the report last"
        );
        assert_eq!(
            written.len(),
            34 + (20 - queue.dropped() as usize) * (1 << 20) + 11
        );
    }

    #[test]
    fn an_owner_flooding_a_stalled_queue_loses_only_its_own_lines() {
        let output = Stalled::default();
        let queue = LineQueue::new(Box::new(output.clone()));
        queue.start().unwrap();
        let flooder = Arc::new(LogShare::default());
        let line = vec![b'x'; 64 << 10];
        owner::as_owner(&flooder, || {
            for _ in 0..(MAX_QUEUED_BYTES >> 16) {
                queue.push(line.clone());
            }
        });
        let flooded = flooder.dropped();
        assert!(
            flooded >= ((MAX_QUEUED_BYTES - MAX_QUEUED_BYTES_PER_OWNER) >> 16) as u64 - 1,
            "{flooded} dropped"
        );
        assert_eq!(queue.dropped(), flooded, "only the flooder's lines");
        let other = Arc::new(LogShare::default());
        owner::as_owner(&other, || queue.push(b"another module\n".to_vec()));
        queue.push(b"the host\n".to_vec());
        assert_eq!(other.dropped(), 0);
        assert_eq!(queue.dropped(), flooded);
        let (open, changed) = &*output.open;
        *open.lock().unwrap() = true;
        changed.notify_all();
        queue.flush();
        let written = output.written.lock().unwrap();
        assert!(written.ends_with(b"another module\nthe host\n"));
        assert_eq!(
            flooder.stderr_bytes.load(Ordering::Relaxed),
            0,
            "all given back"
        );
        assert_eq!(queue.queued_bytes.load(Ordering::Relaxed), 0);
    }
}
