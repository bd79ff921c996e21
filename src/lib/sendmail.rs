//! Handing a message to a local sendmail program, as `sendmail -oi -f
//! FROM -- RCPT...` with the message on stdin, and reading its exit status
//! back as an error kind (sendmail speaks sysexits, as we do).
//!
//! It does not look for the program or run `sendmail -t`: the envelope
//! is always given on the command line.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::smtp::Envelope;

/// How long the sendmail program may take: it only has to queue the
/// message. After that it is killed with its process group (exit 75).
const TIMEOUT: Duration = Duration::from_secs(600);

/// Pipes `message` to `program -oi -f FROM -- RCPT...`, without
/// mailbot's secret variables in its environment ([`crate::child`]).
///
/// A program that cannot be started is `Refused` (exit 69); its own exit
/// status keeps its sysexits meaning ([`kind_for_status`]).
pub fn pipe(program: &Path, envelope: &Envelope, message: &[u8]) -> Result<()> {
    let object = program.display().to_string();
    let mut cmd = crate::child::command(program);
    cmd.arg("-oi")
        .arg("-f")
        .arg(&envelope.from)
        .arg("--")
        .args(&envelope.to);
    let (ended, written) = crate::child::run_with_input(&mut cmd, message, TIMEOUT, &object)?;
    let status = ended.status(&object)?;
    if !status.success() {
        return Err(Error::new(
            kind_for_status(status.code()),
            object,
            format!("failed ({status})"),
        ));
    }
    if let Some(e) = written {
        return Err(Error::new(
            ErrorKind::Temporary,
            object,
            "did not read the whole message",
        )
        .with_source(e));
    }
    Ok(())
}

/// The error kind a sendmail exit status means (sysexits); anything
/// unknown, or death by a signal, counts as a refusal.
pub fn kind_for_status(code: Option<i32>) -> ErrorKind {
    match code {
        Some(64) => ErrorKind::Usage,
        Some(65) => ErrorKind::BadInput,
        Some(66) => ErrorKind::InputMissing,
        Some(73) | Some(74) => ErrorKind::CannotCreate,
        Some(75) => ErrorKind::Temporary,
        Some(76) => ErrorKind::Protocol,
        Some(77) => ErrorKind::Auth,
        Some(78) => ErrorKind::Config,
        _ => ErrorKind::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_keep_their_sysexits_meaning() {
        let cases = [
            (Some(64), 64),
            (Some(65), 65),
            (Some(67), 69),
            (Some(69), 69),
            (Some(75), 75),
            (Some(77), 77),
            (Some(1), 69),
            (None, 69),
        ];
        for (status, exit) in cases {
            assert_eq!(kind_for_status(status).exit().code(), exit, "{status:?}");
        }
    }

    #[test]
    fn a_missing_program_is_69() {
        let envelope = Envelope {
            from: "a@x.test".into(),
            to: vec!["b@x.test".into()],
        };
        let err = pipe(Path::new("/nonexistent/sendmail"), &envelope, b"x").unwrap_err();
        assert_eq!(err.exit().code(), 69);
    }
}
