//! mailbot: the library behind the `mail-*` binaries.
//!
//! One module per domain noun. The binaries parse flags, call in here and
//! map errors to exit codes ([`exit`]); the library itself never exits and,
//! apart from the binaries' plumbing in [`cli`], never reads the
//! environment, config files it was not handed, or the terminal.

pub mod batch;
pub mod bot;
pub mod child;
pub mod cli;
pub mod compose;
pub mod config;
pub mod dissect;
pub mod error;
pub mod exit;
pub mod file_name;
pub mod imap;
pub mod index;
pub mod lockfile;
pub mod maildir;
pub mod manpage;
pub mod mbox;
pub mod migrate;
pub mod mime;
pub mod private;
pub mod queue;
pub mod sendmail;
pub mod shell;
pub mod smtp;
pub mod sync;
pub mod tls;
pub mod tnef;
pub mod url;
pub mod uuencode;

/// Where the test corpora are (the same file the integration tests use).
#[cfg(test)]
#[path = "../../tests/support/corpora.rs"]
mod test_corpora;

pub use error::{Error, ErrorKind, Result};
pub use exit::Exit;
