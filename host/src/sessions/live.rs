//! The live sessions of a module, for making room at `max_sessions`: when a new client
//! waits and every session is taken, the host ends the session that has waited longest
//! between requests (a keep-alive connection whose module said so with
//! `connection.between-requests`), as nginx closes idle keep-alive connections when it
//! runs short. Sessions in the middle of a request, and protocols that never say they are
//! between requests (POP3), are never ended this way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::capabilities::connection::Activity;

/// One live session, as the host sees it from outside.
#[derive(Debug)]
pub struct LiveSession {
    /// Its connection's activity: last byte, and whether it waits between requests.
    pub activity: Arc<Activity>,
    reclaim: Notify,
    reclaimed: AtomicBool,
}

impl LiveSession {
    /// Resolves once the host has chosen this session to make room.
    pub async fn reclaimed(&self) {
        self.reclaim.notified().await;
    }
}

/// A module's live sessions.
#[derive(Debug, Default)]
pub struct LiveSessions {
    sessions: Mutex<HashMap<u64, Arc<LiveSession>>>,
    next: AtomicU64,
}

/// A session's place among the live ones, given up when dropped.
#[must_use = "the session is listed only while its registration lives"]
pub struct Registration {
    live: Arc<LiveSessions>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.live.lock().remove(&self.id);
    }
}

impl LiveSessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<LiveSession>>> {
        // Every update is a single insert or remove.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lists a new session with its connection's `activity`.
    pub fn register(self: &Arc<Self>, activity: Arc<Activity>) -> (Registration, Arc<LiveSession>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let session = Arc::new(LiveSession {
            activity,
            reclaim: Notify::new(),
            reclaimed: AtomicBool::new(false),
        });
        self.lock().insert(id, session.clone());
        let registration = Registration {
            live: self.clone(),
            id,
        };
        (registration, session)
    }

    /// Ends the session that has waited longest between requests, if one does; how long
    /// it had waited.
    pub fn reclaim_longest_idle(&self) -> Option<Duration> {
        let sessions = self.lock();
        let longest = sessions
            .values()
            .filter(|s| s.activity.between_requests() && !s.reclaimed.load(Ordering::Relaxed))
            .max_by_key(|s| s.activity.idle_for())?;
        longest.reclaimed.store(true, Ordering::Relaxed);
        longest.reclaim.notify_one();
        Some(longest.activity.idle_for())
    }

    /// Sessions live now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is live.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_a_session_between_requests_is_reclaimed_the_longest_idle_first() {
        let live = Arc::new(LiveSessions::default());
        let busy = Activity::new();
        let (_a, _busy) = live.register(busy.clone());
        assert!(
            live.reclaim_longest_idle().is_none(),
            "nobody between requests"
        );
        let older = Activity::new();
        older.set_between_requests();
        let (_b, older_session) = live.register(older);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let newer = Activity::new();
        newer.set_between_requests();
        let (_c, newer_session) = live.register(newer);
        assert!(live.reclaim_longest_idle().is_some());
        tokio::time::timeout(Duration::from_secs(1), older_session.reclaimed())
            .await
            .expect("the longest idle is told");
        assert!(live.reclaim_longest_idle().is_some(), "then the next one");
        tokio::time::timeout(Duration::from_secs(1), newer_session.reclaimed())
            .await
            .expect("the newer one next");
        assert!(
            live.reclaim_longest_idle().is_none(),
            "none is chosen twice"
        );
        drop(_a);
        assert_eq!(live.len(), 2);
    }
}
