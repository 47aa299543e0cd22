//! `connection.receive`: a read that waits for the client's bytes or a timeout, in one host
//! call. A keep-alive session waiting for its next request otherwise makes five (a read
//! that finds nothing, a timer, a poll, the timer's drop, the read that finds the bytes),
//! and host calls are most of what a small request costs.

use std::io;
use std::time::Duration;

use bytes::BytesMut;

use super::transport::Transport;
use super::{Activity, MAX_READ_BYTES};
use crate::contract::bindings::connection::ReceiveError;
use crate::meter::{Channel, CpuBudget, WaitChannels};

/// What a receive waits with.
pub(super) struct Receive<'a> {
    pub transport: &'a Transport,
    pub activity: &'a Activity,
    pub waits: &'a WaitChannels,
    pub cpu: &'a CpuBudget,
}

impl Receive<'_> {
    /// Up to `max` bytes, once some are there; marks the wait `between_requests` if asked.
    pub async fn run(
        &self,
        max: u64,
        timeout: Duration,
        between_requests: bool,
    ) -> Result<Vec<u8>, ReceiveError> {
        let max = (max as usize).clamp(1, MAX_READ_BYTES);
        // Bytes already there (a pipelined request) cost no timer.
        if let Some(done) = self.take(max) {
            return done;
        }
        let wait = async {
            loop {
                if between_requests {
                    self.activity.set_between_requests();
                }
                {
                    let _waiting = self.waits.enter(Channel::Recv);
                    self.transport.readable().await.map_err(failed)?;
                }
                if let Some(done) = self.take(max) {
                    return done;
                }
                // Readiness that finds nothing again and again must still let the
                // timeout, and the worker's other sessions, run.
                tokio::task::consume_budget().await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or(Err(ReceiveError::TimedOut))
    }

    /// What a non-blocking read of up to `max` bytes gives: `None` when nothing is there
    /// yet. The buffer lives only for the attempt, never across the wait: an idle
    /// keep-alive session holds no read buffer (16 KiB each for shttp's).
    fn take(&self, max: usize) -> Option<Result<Vec<u8>, ReceiveError>> {
        let mut buf = BytesMut::with_capacity(max);
        match self.transport.try_read_buf(&mut buf) {
            Ok(0) => Some(Err(ReceiveError::Closed)),
            Ok(n) => {
                self.activity.received();
                self.cpu.waited();
                buf.truncate(n);
                Some(Ok(buf.into()))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => Some(Err(failed(e))),
        }
    }
}

fn failed(e: io::Error) -> ReceiveError {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => ReceiveError::Closed,
        _ => ReceiveError::Failed(e.to_string()),
    }
}
