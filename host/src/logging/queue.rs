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

use super::owner::{self, LogShare, OwnerLimits};

/// The most bytes of lines waiting for the writer: what it defends is host memory while
/// the reader of stderr does not read.
pub const MAX_QUEUED_BYTES: usize = 8 << 20;

/// The most bytes of one owner's (a module's) lines waiting: a quarter of the queue.
pub const MAX_QUEUED_BYTES_PER_OWNER: usize = MAX_QUEUED_BYTES / 4;

/// The most bytes of all owners' lines waiting: the last quarter is the host's own.
pub const MAX_QUEUED_BYTES_ALL_OWNERS: usize = MAX_QUEUED_BYTES / 4 * 3;

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
    counts: Arc<Counts>,
}

/// What the queue holds and has dropped; shared with the writer, which gives back.
struct Counts {
    /// Bytes of waiting lines (their allocations' capacity: what the host pays).
    queued_bytes: AtomicUsize,
    owners: OwnerLimits,
    dropped: AtomicU64,
}

impl Counts {
    /// Gives back a line of `len` bytes once it left the queue, or never entered it.
    fn release(&self, len: usize, owner: Option<&LogShare>) {
        self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
        if let Some(share) = owner {
            self.owners.give_back(share, len);
        }
    }
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
            counts: Arc::new(Counts {
                queued_bytes: AtomicUsize::new(0),
                owners: OwnerLimits::new(
                    MAX_QUEUED_BYTES_PER_OWNER,
                    MAX_QUEUED_BYTES_ALL_OWNERS,
                    |share| &share.stderr_bytes,
                ),
                dropped: AtomicU64::new(0),
            }),
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
        let counts = self.counts.clone();
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_lines(&receiver, &mut output, &counts))
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
        let counts = &self.counts;
        let len = line.capacity();
        if let Some(share) = &owner
            && !counts.owners.take(share, len)
        {
            counts.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let before = counts.queued_bytes.fetch_add(len, Ordering::Relaxed);
        if !always && before + len > MAX_QUEUED_BYTES {
            counts.release(len, owner.as_deref());
            counts.dropped.fetch_add(1, Ordering::Relaxed);
            if let Some(share) = &owner {
                share.count_dropped();
            }
            return;
        }
        if let Err(mpsc::SendError(Message::Line(_, owner))) =
            self.sender.send(Message::Line(line, owner))
        {
            counts.release(len, owner.as_deref());
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

    /// Lines dropped because the queue, or their owner's part of it, was full, or
    /// because writing them failed.
    pub fn dropped(&self) -> u64 {
        self.counts.dropped.load(Ordering::Relaxed)
    }
}

/// The writer thread: lines in order, batched into `output` while more are waiting, each
/// line's bytes given back to the queue's and its owner's counts once it is batched. A
/// line whose write fails (stderr closed) is counted dropped: nothing else can be told.
fn write_lines(receiver: &Receiver<Message>, output: &mut Box<dyn Write + Send>, counts: &Counts) {
    let mut batch = BufWriter::with_capacity(WRITE_BATCH_BYTES, output);
    loop {
        let message = match receiver.try_recv() {
            Ok(message) => message,
            Err(TryRecvError::Empty) => {
                // A failed flush keeps its bytes; the next line's write fails and counts.
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
                if batch.write_all(&line).is_err() {
                    counts.dropped.fetch_add(1, Ordering::Relaxed);
                }
                counts.release(line.capacity(), owner.as_deref());
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
    fn owners_flooding_a_stalled_queue_lose_only_their_own_lines() {
        let output = Stalled::default();
        let queue = LineQueue::new(Box::new(output.clone()));
        queue.start().unwrap();
        let line = vec![b'x'; 64 << 10];
        let lines_in = |bytes: usize| (bytes >> 16) as u64;
        let flooder = Arc::new(LogShare::default());
        owner::as_owner(&flooder, || {
            for _ in 0..lines_in(MAX_QUEUED_BYTES) {
                queue.push(line.clone());
            }
        });
        // The writer may hold one line in its stalled write.
        let flooded = flooder.dropped();
        assert!(flooded >= lines_in(MAX_QUEUED_BYTES - MAX_QUEUED_BYTES_PER_OWNER) - 1);
        assert_eq!(queue.dropped(), flooded, "only the flooder's lines");
        let other = Arc::new(LogShare::default());
        owner::as_owner(&other, || queue.push(b"another module\n".to_vec()));
        assert_eq!(other.dropped(), 0);
        // Three more flooders: all owners together keep to three quarters.
        let more: Vec<_> = (0..3).map(|_| Arc::new(LogShare::default())).collect();
        for share in &more {
            owner::as_owner(share, || {
                for _ in 0..lines_in(MAX_QUEUED_BYTES_PER_OWNER) {
                    queue.push(line.clone());
                }
            });
        }
        assert!(more[2].dropped() > 0, "the owners' part was full");
        queue.push(b"the host\n".to_vec());
        let dropped = queue.dropped();
        assert_eq!(
            dropped,
            flooded + more.iter().map(|s| s.dropped()).sum::<u64>(),
            "the host's line was queued"
        );
        let (open, changed) = &*output.open;
        *open.lock().unwrap() = true;
        changed.notify_all();
        queue.flush();
        let written = output.written.lock().unwrap();
        assert!(written.ends_with(b"the host\n"));
        assert!(String::from_utf8_lossy(&written).contains("another module\n"));
        for share in more.iter().chain([&flooder, &other]) {
            assert_eq!(share.stderr_bytes.load(Ordering::Relaxed), 0, "given back");
        }
        assert_eq!(queue.counts.queued_bytes.load(Ordering::Relaxed), 0);
    }
}
