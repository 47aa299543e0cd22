//! Whose lines these are: a module's log events (its `log` calls, stdout and stderr, its
//! sessions' ends) are written under its [`LogShare`] ([`as_owner`]), and each queue in
//! front of a slow output (stderr's [`super::queue`], syslog's) lets one share hold only
//! part of it. A module flooding the log while the output lags then loses its own lines,
//! not the host's or other modules'.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// One owner's part of the log's queues (a module's), and its lines dropped for want of
/// it.
#[derive(Debug, Default)]
pub struct LogShare {
    /// Bytes of its lines waiting for stderr's writer.
    pub(super) stderr_bytes: AtomicUsize,
    /// Its entries waiting for the syslog sender.
    pub(super) syslog_entries: AtomicUsize,
    dropped: AtomicU64,
}

impl LogShare {
    /// Its lines dropped because its share of a queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Takes `amount` of `counter` (one of its own) if that leaves it at most `most`;
    /// else counts a dropped line.
    pub(super) fn take(&self, counter: &AtomicUsize, amount: usize, most: usize) -> bool {
        let before = counter.fetch_add(amount, Ordering::Relaxed);
        if before + amount <= most {
            return true;
        }
        counter.fetch_sub(amount, Ordering::Relaxed);
        self.count_dropped();
        false
    }

    pub(super) fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

thread_local! {
    /// The share the lines this thread writes now are charged to ([`as_owner`]).
    static OWNER: RefCell<Option<Arc<LogShare>>> = const { RefCell::new(None) };
}

/// Runs `log` with every line it writes charged to `share`. Events are formatted and
/// queued on the thread that emits them, so a thread-local reaches the queues.
pub fn as_owner<R>(share: &Arc<LogShare>, log: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<LogShare>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            OWNER.with(|owner| *owner.borrow_mut() = previous);
        }
    }
    let _restore = Restore(OWNER.with(|owner| owner.borrow_mut().replace(share.clone())));
    log()
}

/// The share this thread's lines are charged to now, if any.
pub(super) fn current() -> Option<Arc<LogShare>> {
    OWNER.with(|owner| owner.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_is_set_only_inside_as_owner_and_nests() {
        let (outer, inner) = (Arc::new(LogShare::default()), Arc::new(LogShare::default()));
        assert!(current().is_none());
        as_owner(&outer, || {
            assert!(Arc::ptr_eq(&current().unwrap(), &outer));
            as_owner(&inner, || assert!(Arc::ptr_eq(&current().unwrap(), &inner)));
            assert!(Arc::ptr_eq(&current().unwrap(), &outer));
        });
        assert!(current().is_none());
    }
}
