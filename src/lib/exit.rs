//! The exit-code contract shared by every binary (sysexits, as sendmail,
//! msmtp and notmuch use them), and the one mapping from an error to a code.
//!
//! This module only decides numbers; it never exits. Binaries turn the
//! returned [`Exit`] into a process status.

use std::error::Error as StdError;
use std::io;

use crate::error::{Error, ErrorKind};

/// A process exit status with a meaning every mailbot binary agrees on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Exit {
    /// Done, also when there was nothing to do.
    Ok = 0,
    /// Partly done: some items failed, the rest went through.
    Partial = 1,
    /// The command line was wrong.
    Usage = 64,
    /// Bad input data: a malformed message, a bad address.
    DataErr = 65,
    /// An input is missing or unreadable.
    NoInput = 66,
    /// Refused for good: a 5xx reply, no such mailbox.
    Unavailable = 69,
    /// An output cannot be created.
    CantCreate = 73,
    /// Temporary failure: network down, 4xx, lock held. Retry later.
    TempFail = 75,
    /// Protocol error, or TLS verification failed.
    Protocol = 76,
    /// Authentication failed.
    NoPerm = 77,
    /// Configuration error.
    Config = 78,
}

impl Exit {
    /// Every code, in ascending order (for help texts and docs).
    pub const ALL: [Exit; 11] = [
        Exit::Ok,
        Exit::Partial,
        Exit::Usage,
        Exit::DataErr,
        Exit::NoInput,
        Exit::Unavailable,
        Exit::CantCreate,
        Exit::TempFail,
        Exit::Protocol,
        Exit::NoPerm,
        Exit::Config,
    ];

    /// The numeric status.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// One line saying what the code means, as the README and `--help` put it.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => "done (also when there was nothing to do)",
            Exit::Partial => "partly done: some items failed, the rest went through",
            Exit::Usage => "usage error",
            Exit::DataErr => "bad input data (malformed message, bad address)",
            Exit::NoInput => "input missing or unreadable",
            Exit::Unavailable => "refused for good (5xx, no such mailbox)",
            Exit::CantCreate => "cannot create output",
            Exit::TempFail => "temporary: network down, 4xx, lock held; retry later",
            Exit::Protocol => "protocol error, TLS verification failed",
            Exit::NoPerm => "authentication failed",
            Exit::Config => "configuration error",
        }
    }

    /// The exit-status table as text, for the end of every `--help`.
    pub fn help_table() -> String {
        let mut out = String::from("Exit status:\n");
        for exit in Exit::ALL {
            out.push_str(&format!("  {:>3}  {}\n", exit.code(), exit.meaning()));
        }
        out
    }

    /// The more serious of two outcomes, for tools that keep going past
    /// failures: any failure beats success; among failures the first kept.
    pub fn worse(self, other: Exit) -> Exit {
        if self == Exit::Ok { other } else { self }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

/// Maps any error to its exit status.
///
/// Walks the cause chain and uses the first mailbot [`Error`] found; an
/// `io::Error` with no mailbot error above it counts as an unreadable input
/// or unwritable output by its kind. Anything else is a failure of the
/// message at hand, which for a one-shot tool is bad data (65).
pub fn exit_for(err: &(dyn StdError + 'static)) -> Exit {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(ours) = e.downcast_ref::<Error>() {
            return ours.exit();
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            // An io::Error may wrap one of ours; its `source()` skips the
            // wrapped error itself, so look inside explicitly.
            if let Some(inner) = io.get_ref() {
                let inner: &(dyn StdError + 'static) = inner;
                if let Some(ours) = inner.downcast_ref::<Error>() {
                    return ours.exit();
                }
            }
            return exit_for_io(io);
        }
        current = e.source();
    }
    Exit::DataErr
}

/// True when the error is, somewhere in its chain, a broken pipe: the reader
/// of our stdout went away, which for a filter is a normal way to end.
pub fn is_broken_pipe(err: &(dyn StdError + 'static)) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::BrokenPipe
        {
            return true;
        }
        current = e.source();
    }
    false
}

fn exit_for_io(err: &io::Error) -> Exit {
    match err.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => Exit::NoInput,
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::TimedOut
        | io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock
        | io::ErrorKind::NotConnected
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::NetworkDown
        | io::ErrorKind::UnexpectedEof => Exit::TempFail,
        // A full disk, a read-only file system, a name taken and any
        // other failure: the output could not be made.
        _ => Exit::CantCreate,
    }
}

impl ErrorKind {
    /// The exit status this kind of failure means.
    pub fn exit(self) -> Exit {
        match self {
            ErrorKind::Usage => Exit::Usage,
            ErrorKind::BadInput => Exit::DataErr,
            ErrorKind::InputMissing => Exit::NoInput,
            ErrorKind::Refused => Exit::Unavailable,
            ErrorKind::CannotCreate => Exit::CantCreate,
            ErrorKind::Temporary | ErrorKind::Locked => Exit::TempFail,
            ErrorKind::Protocol | ErrorKind::Tls => Exit::Protocol,
            ErrorKind::Auth => Exit::NoPerm,
            ErrorKind::Config => Exit::Config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_design_table() {
        let table: Vec<(u8, Exit)> = Exit::ALL.iter().map(|e| (e.code(), *e)).collect();
        assert_eq!(
            table.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
            vec![0, 1, 64, 65, 66, 69, 73, 75, 76, 77, 78]
        );
    }

    #[test]
    fn kinds_map_to_codes() {
        let cases = [
            (ErrorKind::Usage, 64),
            (ErrorKind::BadInput, 65),
            (ErrorKind::InputMissing, 66),
            (ErrorKind::Refused, 69),
            (ErrorKind::CannotCreate, 73),
            (ErrorKind::Temporary, 75),
            (ErrorKind::Locked, 75),
            (ErrorKind::Protocol, 76),
            (ErrorKind::Tls, 76),
            (ErrorKind::Auth, 77),
            (ErrorKind::Config, 78),
        ];
        for (kind, code) in cases {
            assert_eq!(kind.exit().code(), code, "{kind:?}");
        }
    }

    #[test]
    fn chain_is_searched_for_our_error() {
        let inner = Error::new(ErrorKind::Auth, "smtp://h:587", "authentication failed");
        let wrapped = std::io::Error::other(inner);
        assert_eq!(exit_for(&wrapped), Exit::NoPerm);
    }

    #[test]
    fn plain_io_errors_map_by_kind() {
        let missing = io::Error::from(io::ErrorKind::NotFound);
        assert_eq!(exit_for(&missing), Exit::NoInput);
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(exit_for(&refused), Exit::TempFail);
        let full = io::Error::from(io::ErrorKind::StorageFull);
        assert_eq!(exit_for(&full), Exit::CantCreate);
    }

    #[test]
    fn broken_pipe_is_found_under_wrappers() {
        let pipe = io::Error::from(io::ErrorKind::BrokenPipe);
        let ours = Error::io(ErrorKind::CannotCreate, "stdout", pipe);
        assert!(is_broken_pipe(&ours));
        assert!(!is_broken_pipe(&io::Error::from(io::ErrorKind::NotFound)));
    }

    #[test]
    fn worse_keeps_the_first_failure() {
        assert_eq!(Exit::Ok.worse(Exit::Ok), Exit::Ok);
        assert_eq!(Exit::Ok.worse(Exit::NoInput), Exit::NoInput);
        assert_eq!(Exit::Partial.worse(Exit::NoInput), Exit::Partial);
    }
}
