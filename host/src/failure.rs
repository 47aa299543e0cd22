//! Exit codes a supervisor can act on, following DJB's tools: 100 for a permanent failure
//! (fix the configuration or the module first), 111 for a temporary one (retrying may work:
//! the port was still in use, say).

use std::io::ErrorKind;

/// Exit code for failures that will repeat until someone changes something.
pub const EXIT_PERMANENT: u8 = 100;

/// Exit code for failures that may go away by themselves.
pub const EXIT_TEMPORARY: u8 = 111;

/// The exit code for `error`: temporary when an operating-system error in its chain is of a
/// passing kind, permanent otherwise.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    let temporary = error
        .chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| {
            matches!(
                e.kind(),
                ErrorKind::AddrInUse
                    | ErrorKind::AddrNotAvailable
                    | ErrorKind::ConnectionRefused
                    | ErrorKind::TimedOut
                    | ErrorKind::Interrupted
                    | ErrorKind::WouldBlock
                    | ErrorKind::OutOfMemory
            )
        });
    if temporary {
        EXIT_TEMPORARY
    } else {
        EXIT_PERMANENT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn address_in_use_is_temporary() {
        let e = Err::<(), _>(std::io::Error::from(ErrorKind::AddrInUse))
            .context("failed to bind 0.0.0.0:110")
            .unwrap_err();
        assert_eq!(exit_code(&e), EXIT_TEMPORARY);
    }

    #[test]
    fn configuration_errors_are_permanent() {
        assert_eq!(exit_code(&anyhow::anyhow!("unknown key")), EXIT_PERMANENT);
        let e = Err::<(), _>(std::io::Error::from(ErrorKind::PermissionDenied))
            .context("failed to bind")
            .unwrap_err();
        assert_eq!(exit_code(&e), EXIT_PERMANENT);
    }
}
