//! Handing a message to a local sendmail program, as `sendmail -oi -f
//! FROM -- RCPT...` with the message on stdin, and reading its exit status
//! back as an error kind (sendmail speaks sysexits, as we do).
//!
//! It does not look for the program or run `sendmail -t`: the envelope
//! is always given on the command line.
//!
//! The other way round, [`parse_command_line`] reads sendmail's own
//! command line (`sendmail -t -i -f ADDR -F NAME -oem ...`), for
//! mail-inject run as `sendmail` by cron, mail(1) and scripts.

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

/// What sendmail's command line asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendmailCall {
    /// `-q` (with or without an interval): send the queue now.
    pub flush: bool,
    /// `-t`: recipients from the message's To, Cc and Bcc too.
    pub read_recipients: bool,
    /// `-f ADDR` or `-r ADDR`: the envelope sender.
    pub from: Option<String>,
    /// `-F NAME`: the sender's name, for a `From:` the message lacks.
    pub full_name: Option<String>,
    /// `-v`.
    pub verbose: bool,
    /// The recipients named on the command line.
    pub recipients: Vec<String>,
}

/// Reads sendmail's command line (without the program name), as cron
/// (`-i -FCronDaemon -B8BITMIME -oem root`, or `-FCronDaemon -i -odi -oem
/// -oi -t -f root`), mail(1) and scripts give it. Accepted and without
/// effect here, since the message is always read to its end and errors
/// are always reported on stderr and in the exit status: `-i`, `-oi`,
/// `-oe*`, `-od*`, `-o*`, `-B TYPE`, `-N DSN`, `-R RET`, `-V ID`, `-L TAG`,
/// `-h N`, `-O OPT=V`, `-X FILE`, `-C FILE`, `-n`, `-U`, `-G`, `-m`,
/// `-bm`. Other modes (`-bs`, `-bp`, `-bd`, ...) and unknown flags are
/// usage errors naming them.
pub fn parse_command_line<S: AsRef<str>>(args: &[S]) -> Result<SendmailCall> {
    let mut call = SendmailCall::default();
    let mut i = 0;
    let usage =
        |flag: &str, why: &str| Error::new(ErrorKind::Usage, flag.to_string(), why.to_string());
    while i < args.len() {
        let arg = args[i].as_ref();
        i += 1;
        if arg == "--" {
            call.recipients
                .extend(args[i..].iter().map(|a| a.as_ref().to_string()));
            break;
        }
        let Some(flag) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            call.recipients.push(arg.to_string());
            continue;
        };
        let letter = &flag[..1];
        let attached = &flag[1..];
        // A flag's value: the rest of the word, else the next word.
        let mut value = || -> Result<String> {
            if !attached.is_empty() {
                return Ok(attached.to_string());
            }
            let v = args
                .get(i)
                .map(|a| a.as_ref().to_string())
                .ok_or_else(|| usage(arg, "needs a value"))?;
            i += 1;
            Ok(v)
        };
        match letter {
            "t" if attached.is_empty() => call.read_recipients = true,
            "i" | "n" | "U" | "G" | "m" if attached.is_empty() => {}
            "v" if attached.is_empty() => call.verbose = true,
            "f" | "r" => call.from = Some(value()?),
            "F" => call.full_name = Some(value()?),
            "q" => call.flush = true,
            "o" => {
                // -oi, -oem, -odi ...; -o with a separate value is not sendmail's.
                if attached.is_empty() {
                    return Err(usage(arg, "needs an option letter (-oi, -oem, ...)"));
                }
            }
            "B" | "N" | "R" | "V" | "L" | "h" | "O" | "X" | "C" => {
                value()?;
            }
            "b" => match attached {
                "m" => {}
                _ => {
                    return Err(usage(
                        arg,
                        "mode not supported: mail-inject as sendmail sends (-bm) and flushes (-q)",
                    ));
                }
            },
            _ => return Err(usage(arg, "not a sendmail flag mail-inject knows")),
        }
    }
    Ok(call)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sendmail_command_lines_of_cron_mail_and_scripts() {
        // Debian's cron, cronie, bsd-mailx, a script.
        let debian =
            parse_command_line(&["-i", "-FCronDaemon", "-B8BITMIME", "-oem", "root"]).unwrap();
        assert_eq!(debian.full_name.as_deref(), Some("CronDaemon"));
        assert_eq!(debian.recipients, ["root"]);
        assert!(!debian.read_recipients);
        let cronie = parse_command_line(&[
            "-FCronDaemon",
            "-i",
            "-odi",
            "-oem",
            "-oi",
            "-t",
            "-f",
            "root",
        ])
        .unwrap();
        assert!(cronie.read_recipients);
        assert_eq!(cronie.from.as_deref(), Some("root"));
        assert!(cronie.recipients.is_empty());
        let mailx = parse_command_line(&["-i", "--", "a@x.test", "-b@x.test"]).unwrap();
        assert_eq!(mailx.recipients, ["a@x.test", "-b@x.test"]);
        let script =
            parse_command_line(&["-t", "-fme@x.test", "-F", "Me Too", "-B", "8BITMIME"]).unwrap();
        assert_eq!(script.from.as_deref(), Some("me@x.test"));
        assert_eq!(script.full_name.as_deref(), Some("Me Too"));
        assert!(parse_command_line(&["-q"]).unwrap().flush);
        assert!(parse_command_line(&["-q30m"]).unwrap().flush);
        for bad in [&["-bs"][..], &["-bp"], &["-x"], &["-f"], &["-o"]] {
            let err = parse_command_line(bad).unwrap_err();
            assert_eq!(err.exit().code(), 64, "{bad:?}");
        }
    }

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
