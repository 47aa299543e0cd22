//! CPU a running instance may use, counted in epoch ticks of wasm execution. A session's
//! budget bounds the work between two waits for its client: every read of the client's
//! bytes, every wait for the client to send or take bytes, and every
//! [`STRETCH_BYTES`] the client took starts a new stretch, so a busy keep-alive connection
//! or a long answer to a client that keeps up is never cut off, while a runaway loop
//! (which waits for nothing and sends little) is interrupted once it has used
//! `session_cpu_ms`. An operator has no client: its budget refills with wall time
//! instead, at [`OPERATOR_REFILL_SHARE`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::engine::EPOCH_TICK;

/// Share of wall time an operator's budget refills at: an operator that works in bursts
/// (a report every few seconds) never runs out; one that spins runs out after about its
/// budget and is restarted with backoff.
pub const OPERATOR_REFILL_SHARE: u64 = 10;

/// Bytes taken by the client that start a new stretch, as a wait for the client does. A
/// session streaming a long answer (a RETR of a large message) to a client that keeps up
/// never waits for it, and each of its writes is taken at once: without this it was cut
/// mid-answer once the answer took `session_cpu_ms`. A loop that sends less than this
/// per `session_cpu_ms` is still cut. Bytes taken for a client that never reads count
/// too, up to the kernel's send buffer and the client's receive window (a few MiB with
/// Linux's defaults), so such a loop gets a few stretches more, then waits for the
/// client, using no CPU.
pub const STRETCH_BYTES: u64 = 1 << 20;

/// How a budget is given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refill {
    /// Whole again at every wait for the client ([`CpuBudget::waited`]) and every
    /// [`STRETCH_BYTES`] it took ([`CpuBudget::delivered`]).
    PerWait,
    /// One tick per [`OPERATOR_REFILL_SHARE`] ticks of wall time.
    WithTime,
}

/// One instance's CPU budget.
#[derive(Debug)]
pub struct CpuBudget {
    used: AtomicU64,
    /// Bytes the client took in this stretch (`PerWait`).
    delivered: AtomicU64,
    budget: u64,
    refill: Refill,
    /// Milliseconds after `start` at which the last tick was counted (`WithTime`).
    last_tick_ms: AtomicU64,
    start: Instant,
}

/// Epoch ticks in `budget`, at least one.
pub fn ticks(budget: Duration) -> u64 {
    (budget.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

impl CpuBudget {
    /// A budget of `budget` of wasm execution, refilled as `refill` says.
    pub fn new(budget: Duration, refill: Refill) -> Self {
        CpuBudget {
            used: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            budget: ticks(budget),
            refill,
            last_tick_ms: AtomicU64::new(0),
            start: Instant::now(),
        }
    }

    /// A budget that never runs out.
    pub fn unbounded() -> Self {
        CpuBudget {
            budget: u64::MAX,
            ..CpuBudget::new(Duration::ZERO, Refill::PerWait)
        }
    }

    /// Counts one tick of execution; true once the budget is spent.
    pub fn tick(&self) -> bool {
        if self.refill == Refill::WithTime {
            self.refill_with_time();
        }
        self.used.fetch_add(1, Ordering::Relaxed) + 1 > self.budget
    }

    /// The instance waited for its client: a new stretch begins (for `PerWait`).
    pub fn waited(&self) {
        if self.refill == Refill::PerWait {
            self.used.store(0, Ordering::Relaxed);
            self.delivered.store(0, Ordering::Relaxed);
        }
    }

    /// The client took `bytes` of the instance's answer: every [`STRETCH_BYTES`] of them
    /// begin a new stretch (for `PerWait`).
    pub fn delivered(&self, bytes: usize) {
        if self.refill == Refill::PerWait {
            let before = self.delivered.fetch_add(bytes as u64, Ordering::Relaxed);
            if before + bytes as u64 >= STRETCH_BYTES {
                self.waited();
            }
        }
    }

    /// Whether the budget is spent (read after an interrupt).
    pub fn spent(&self) -> bool {
        self.used.load(Ordering::Relaxed) > self.budget
    }

    fn refill_with_time(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        let last = self.last_tick_ms.swap(now, Ordering::Relaxed);
        let wall_ticks = now.saturating_sub(last) / EPOCH_TICK.as_millis() as u64;
        let back = wall_ticks / OPERATOR_REFILL_SHARE;
        if back > 0 {
            let _ = self
                .used
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                    Some(u.saturating_sub(back))
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_budget_is_spent_by_work_and_renewed_by_waits() {
        let cpu = CpuBudget::new(EPOCH_TICK * 3, Refill::PerWait);
        assert!(!cpu.tick() && !cpu.tick() && !cpu.tick());
        cpu.waited();
        assert!(
            !cpu.tick() && !cpu.tick() && !cpu.tick(),
            "a wait renews it"
        );
        assert!(cpu.tick(), "the fourth tick of one stretch is over");
        assert!(cpu.spent());
    }

    #[test]
    fn a_session_budget_is_renewed_by_each_stretch_of_bytes_its_client_took() {
        let cpu = CpuBudget::new(EPOCH_TICK * 2, Refill::PerWait);
        assert!(!cpu.tick() && !cpu.tick());
        cpu.delivered(STRETCH_BYTES as usize - 1);
        assert!(cpu.tick(), "one byte short of a stretch renews nothing");
        cpu.delivered(1);
        assert!(!cpu.tick() && !cpu.tick(), "a whole stretch renews it");
        cpu.delivered(STRETCH_BYTES as usize - 1);
        cpu.waited();
        cpu.delivered(1);
        assert!(!cpu.tick() && !cpu.tick());
        assert!(cpu.tick(), "a wait starts the count of bytes again");
    }

    #[test]
    fn an_operator_budget_is_not_renewed_by_waits() {
        let cpu = CpuBudget::new(EPOCH_TICK * 2, Refill::WithTime);
        assert!(!cpu.tick() && !cpu.tick());
        cpu.waited();
        assert!(cpu.tick(), "no wall time passed: still spent");
    }

    #[test]
    fn an_unbounded_budget_never_runs_out() {
        let cpu = CpuBudget::unbounded();
        assert!((0..1000).all(|_| !cpu.tick()));
    }
}
