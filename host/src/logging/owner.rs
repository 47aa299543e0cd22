//! Whose lines these are: a module's log events (its `log` calls, stdout and stderr, its
//! sessions' ends, the host's lines on its behalf) are written under its [`LogShare`]
//! ([`as_owner`], [`owned`]), and each queue in front of a slow output (stderr's
//! [`super::queue`], syslog's) lets one share hold only a quarter of it, and all shares
//! together three quarters ([`OwnerLimits`]). A module flooding the log while the output
//! lags then loses its own lines, not the host's or other modules'.

use std::cell::Cell;
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
    /// Its lines dropped because its share of a queue, or all owners' part, was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(super) fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// What one queue lets owners hold: each at most `per_owner`, all of them together at
/// most `all_owners`, so the host's own lines (reloads, failures, limits) always keep the
/// rest, however many modules flood.
pub(super) struct OwnerLimits {
    held: AtomicUsize,
    per_owner: usize,
    all_owners: usize,
    /// The share's counter for this queue.
    part: fn(&LogShare) -> &AtomicUsize,
}

impl OwnerLimits {
    pub(super) const fn new(
        per_owner: usize,
        all_owners: usize,
        part: fn(&LogShare) -> &AtomicUsize,
    ) -> Self {
        OwnerLimits {
            held: AtomicUsize::new(0),
            per_owner,
            all_owners,
            part,
        }
    }

    /// Charges `amount` to `share` and to all owners; if either would pass its bound,
    /// charges nothing, counts a dropped line to `share` and says no.
    pub(super) fn take(&self, share: &LogShare, amount: usize) -> bool {
        let part = (self.part)(share);
        if charge(part, amount, self.per_owner) {
            if charge(&self.held, amount, self.all_owners) {
                return true;
            }
            part.fetch_sub(amount, Ordering::Relaxed);
        }
        share.count_dropped();
        false
    }

    /// Gives back what [`OwnerLimits::take`] charged.
    pub(super) fn give_back(&self, share: &LogShare, amount: usize) {
        (self.part)(share).fetch_sub(amount, Ordering::Relaxed);
        self.held.fetch_sub(amount, Ordering::Relaxed);
    }
}

/// Adds `amount` to `counter` if that leaves it at most `most`.
fn charge(counter: &AtomicUsize, amount: usize, most: usize) -> bool {
    let before = counter.fetch_add(amount, Ordering::Relaxed);
    if before + amount <= most {
        return true;
    }
    counter.fetch_sub(amount, Ordering::Relaxed);
    false
}

thread_local! {
    /// The share the lines this thread writes now are charged to ([`as_owner`], [`owned`]).
    static OWNER: Cell<Option<Arc<LogShare>>> = const { Cell::new(None) };
}

/// Puts `share` as this thread's owner until dropped, then puts back the one before.
struct Turn<'a> {
    previous: Option<Arc<LogShare>>,
    /// Where the share goes back to when the turn ends (`None`: dropped).
    back: Option<&'a mut Option<Arc<LogShare>>>,
}

impl<'a> Turn<'a> {
    fn begin(share: Option<Arc<LogShare>>, back: Option<&'a mut Option<Arc<LogShare>>>) -> Self {
        // A thread being torn down has no owner to set; its lines go uncharged.
        let previous = OWNER.try_with(|owner| owner.replace(share)).ok().flatten();
        Turn { previous, back }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let ours = OWNER
            .try_with(|owner| owner.replace(previous))
            .ok()
            .flatten();
        if let Some(back) = self.back.as_mut() {
            **back = ours;
        }
    }
}

/// Runs `log` with every line it writes charged to `share`. Events are formatted and
/// queued on the thread that emits them, so a thread-local reaches the queues.
pub fn as_owner<R>(share: &Arc<LogShare>, log: impl FnOnce() -> R) -> R {
    let _turn = Turn::begin(Some(share.clone()), None);
    log()
}

/// Runs `work` (a module's session, operator or hook) with every line written while it
/// is polled charged to `share`: the host's lines on its behalf too (an `auth` refusal, a
/// limit hit). The share moves in and out of the thread-local at each poll, so polling
/// costs no reference count.
pub async fn owned<F: Future>(share: Arc<LogShare>, work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    let mut share = Some(share);
    std::future::poll_fn(move |cx| {
        let _turn = Turn::begin(share.take(), Some(&mut share));
        work.as_mut().poll(cx)
    })
    .await
}

/// The share this thread's lines are charged to now, if any: for work a module's task
/// hands to another task, which [`owned`] then charges to the same share.
pub fn current() -> Option<Arc<LogShare>> {
    OWNER
        .try_with(|owner| {
            let share = owner.take();
            let copy = share.clone();
            owner.set(share);
            copy
        })
        .ok()
        .flatten()
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

    #[test]
    fn an_owned_future_charges_only_its_polls_and_keeps_its_share() {
        let share = Arc::new(LogShare::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let owner_of = |share: &Arc<LogShare>| current().is_some_and(|c| Arc::ptr_eq(&c, share));
        let task = runtime.spawn(owned(share.clone(), {
            let share = share.clone();
            async move {
                log.lock().unwrap().push(owner_of(&share));
                let _ = rx.await;
                log.lock().unwrap().push(owner_of(&share));
            }
        }));
        runtime.block_on(async {
            tokio::task::yield_now().await;
            assert!(current().is_none(), "not between the task's polls");
            tx.send(()).unwrap();
            task.await.unwrap();
        });
        assert_eq!(*seen.lock().unwrap(), [true, true]);
        assert_eq!(
            Arc::strong_count(&share),
            1,
            "given back when the task ended"
        );
    }
}
