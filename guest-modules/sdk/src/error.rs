//! [`Error`]: the one error type of the SDK's session helpers, so that `?` works across
//! I/O, stream, configuration and listener calls in a hook (which returns `String`).

use std::fmt;

use wasip2::io::streams::StreamError;

use crate::config::ConfigError;

/// Why a hook or a session helper failed, as the message the host logs. Every failure a
/// module meets converts into it with `?` (`std::io::Error`, a stream error, a
/// [`ConfigError`], a `String` or `&str`), and it converts into the `String` the hooks
/// return, so a hook body needs no `map_err`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
        }
    }

    /// The same error with `context` in front: `context: message`.
    pub fn context(self, context: impl fmt::Display) -> Self {
        Error::new(format!("{context}: {}", self.message))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::new(error.to_string())
    }
}

impl From<StreamError> for Error {
    fn from(error: StreamError) -> Self {
        match error {
            StreamError::Closed => Error::new("the connection is closed"),
            StreamError::LastOperationFailed(e) => {
                Error::new(format!("connection failed: {}", e.to_debug_string()))
            }
        }
    }
}

impl From<ConfigError> for Error {
    fn from(error: ConfigError) -> Self {
        Error::new(error.to_string())
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::new(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::new(message)
    }
}

/// Hooks return `Result<_, String>`: `?` on an [`Error`] turns it into its message.
impl From<Error> for String {
    fn from(error: Error) -> String {
        error.message
    }
}

#[cfg(test)]
mod tests {
    use super::Error;
    use crate::config::ConfigError;

    /// A module's own helper: `?` on an I/O error and on a configuration error.
    fn helper(step: u8) -> Result<(), Error> {
        match step {
            0 => Err(std::io::Error::other("disk on fire"))?,
            1 => Err(ConfigError {
                key: "port".into(),
                value: 70000,
            })?,
            _ => Err(Error::from("plain").context("step 2")),
        }
    }

    /// A hook: `?` on the helper's `Error` gives the hook's `String`.
    fn hook(step: u8) -> Result<(), String> {
        helper(step)?;
        Ok(())
    }

    #[test]
    fn question_mark_turns_every_error_into_the_hooks_string() {
        assert_eq!(hook(0), Err("disk on fire".to_string()));
        assert_eq!(hook(1), Err("port 70000 is out of range".to_string()));
        assert_eq!(hook(2), Err("step 2: plain".to_string()));
    }
}
