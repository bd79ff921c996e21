//! The library's error type: what failed (the object: a path, a URL, a
//! message), why, and which kind of failure it is, so binaries can choose
//! an exit code and callers can ask `is_temporary()` and the like.
//!
//! It does not format for the terminal or decide process status: the
//! binaries print it and [`crate::exit`] maps it.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::Path;

use crate::exit::Exit;

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What sort of failure happened; each kind has one exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request itself is wrong (flags that do not fit together).
    Usage,
    /// The data is bad: a malformed message, a bad address.
    BadInput,
    /// An input is missing or cannot be read.
    InputMissing,
    /// The other side refused for good (5xx, no such mailbox).
    Refused,
    /// An output file or folder cannot be created or written.
    CannotCreate,
    /// Worth retrying later: network down, 4xx, server busy.
    Temporary,
    /// Another run holds the lock; retry later.
    Locked,
    /// The other side broke the protocol.
    Protocol,
    /// TLS could not be established or the certificate did not verify.
    Tls,
    /// The credentials were refused.
    Auth,
    /// The configuration is wrong or unsafe.
    Config,
}

/// A failure with the object it concerns and its cause.
///
/// Displays as `object: detail`; the underlying cause, when there is one,
/// is its [`source`](StdError::source), so `{:#}` in anyhow prints the chain
/// on one line.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    object: String,
    detail: String,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl Error {
    /// A failure of `kind` concerning `object`, described by `detail`.
    pub fn new(kind: ErrorKind, object: impl Into<String>, detail: impl Into<String>) -> Self {
        Error {
            kind,
            object: object.into(),
            detail: detail.into(),
            source: None,
        }
    }

    /// An I/O failure concerning `object`, with the `io::Error` as its cause.
    ///
    /// The detail is the cause itself, so the line reads `object: cause`.
    pub fn io(kind: ErrorKind, object: impl Into<String>, cause: io::Error) -> Self {
        Error {
            kind,
            object: object.into(),
            detail: String::new(),
            source: Some(Box::new(cause)),
        }
    }

    /// A failure to read `path`: missing or unreadable input.
    pub fn reading(path: &Path, cause: io::Error) -> Self {
        Error::io(ErrorKind::InputMissing, path.display().to_string(), cause)
    }

    /// A failure to create or write `path`: output cannot be created.
    pub fn writing(path: &Path, cause: io::Error) -> Self {
        Error::io(ErrorKind::CannotCreate, path.display().to_string(), cause)
    }

    /// Attach an underlying cause.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The object the failure concerns (a path, a URL, a message id).
    pub fn object(&self) -> &str {
        &self.object
    }

    /// What went wrong with the object, without the cause.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The exit status this error means.
    pub fn exit(&self) -> Exit {
        self.kind.exit()
    }

    /// Worth retrying later (network, 4xx, lock held).
    pub fn is_temporary(&self) -> bool {
        matches!(self.kind, ErrorKind::Temporary | ErrorKind::Locked)
    }

    /// Refused for good; retrying will not help.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Refused | ErrorKind::BadInput | ErrorKind::Auth | ErrorKind::Config
        )
    }

    /// The credentials were refused.
    pub fn is_auth(&self) -> bool {
        self.kind == ErrorKind::Auth
    }

    /// TLS failed (handshake or certificate verification).
    pub fn is_tls(&self) -> bool {
        self.kind == ErrorKind::Tls
    }

    /// Another run holds the lock.
    pub fn is_locked(&self) -> bool {
        self.kind == ErrorKind::Locked
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.object.is_empty(), self.detail.is_empty()) {
            (true, true) => f.write_str("error"),
            (true, false) => f.write_str(&self.detail),
            (false, true) => f.write_str(&self.object),
            (false, false) => write!(f, "{}: {}", self.object, self.detail),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

/// An error and its causes on one line, `outer: inner: innermost`, as
/// the binaries print them.
pub fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        parts.push(e.to_string());
        cur = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_object_detail_and_chain() {
        let e = Error::new(
            ErrorKind::Auth,
            "smtp://mx.example.test:587",
            "authentication failed (535 5.7.8)",
        );
        assert_eq!(
            e.to_string(),
            "smtp://mx.example.test:587: authentication failed (535 5.7.8)"
        );
        let io = io::Error::new(io::ErrorKind::NotFound, "No such file or directory");
        let e = Error::reading(Path::new("/tmp/x.pdf"), io);
        assert_eq!(chain(&e), "/tmp/x.pdf: No such file or directory");
        assert_eq!(e.exit().code(), 66);
    }

    #[test]
    fn predicates_follow_the_kind() {
        let t = Error::new(ErrorKind::Temporary, "imap", "connection reset");
        assert!(t.is_temporary() && !t.is_permanent());
        let l = Error::new(ErrorKind::Locked, "maildir", "lock held");
        assert!(l.is_temporary() && l.is_locked());
        let a = Error::new(ErrorKind::Auth, "imap", "no");
        assert!(a.is_auth() && a.is_permanent() && !a.is_temporary());
        let s = Error::new(ErrorKind::Tls, "imap", "bad cert");
        assert!(s.is_tls());
        assert_eq!(s.exit().code(), 76);
    }
}
