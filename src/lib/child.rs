//! Every program mailbot starts — a rule's `run` command, `mail-dissect
//! --exec`, a sendmail program, a `password_command` — is started here:
//! without the secrets of mailbot's own environment, in a process group
//! of its own, and waited for with a time limit, after which the whole
//! group is killed.
//!
//! The commands run on untrusted mail, so what they inherit matters:
//! `MAILBOT_PASSWORD`, `MAILBOT_PASSWORD_COMMAND`, `MAILBOT_OAUTH2_*` and
//! every variable whose name says it holds a secret (see
//! [`is_secret_variable`]) are left out. The inherited environment is
//! looked at only for the names to leave out; no setting is taken from it.
//!
//! It does not run a shell (callers split their templates), and it does
//! not give children a terminal of their own.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};

/// How long a rule's command or `--exec` may run by default.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// How long a `password_command` or `oauth2_token_command` may take by
/// default.
pub const DEFAULT_SECRET_TIMEOUT: Duration = Duration::from_secs(30);

/// After the time limit, how long the group has between SIGTERM and
/// SIGKILL.
const GRACE: Duration = Duration::from_secs(2);

/// Whether an environment variable of this name holds, or leads to, a
/// secret: mailbot's own `MAILBOT_PASSWORD*` and `MAILBOT_OAUTH2*`, and
/// any name containing `PASSWORD`, `PASSWD`, `PASSPHRASE`, `SECRET`,
/// `TOKEN`, `CREDENTIAL`, `API_KEY`, `APIKEY`, `PRIVATE_KEY` or
/// `ACCESS_KEY` (`SSHPASS`, `*_PASS` and `*_PWD` too), in any case.
pub fn is_secret_variable(name: &OsStr) -> bool {
    let name = name.to_string_lossy().to_ascii_uppercase();
    const WORDS: &[&str] = &[
        "PASSWORD",
        "PASSWD",
        "PASSPHRASE",
        "SECRET",
        "TOKEN",
        "CREDENTIAL",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "ACCESS_KEY",
    ];
    name.starts_with("MAILBOT_PASSWORD")
        || name.starts_with("MAILBOT_OAUTH2")
        || WORDS.iter().any(|w| name.contains(w))
        || name == "SSHPASS"
        || name.ends_with("_PASS")
        || name.ends_with("_PWD")
}

/// A command for `program` that inherits mailbot's environment without
/// its secrets and runs in a process group of its own.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if is_secret_variable(&name) {
            cmd.env_remove(&name);
        }
    }
    cmd.process_group(0);
    cmd
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited (or was killed by someone else) with this status.
    Exited(ExitStatus),
    /// It ran past its time limit and was killed with its process group.
    TimedOut(Duration),
}

impl Ended {
    /// The exit status; a timeout is a `Temporary` error (the command may
    /// finish in time at the next try) naming `object`.
    pub fn status(self, object: &str) -> Result<ExitStatus> {
        match self {
            Ended::Exited(status) => Ok(status),
            Ended::TimedOut(limit) => Err(Error::new(
                ErrorKind::Temporary,
                object,
                format!(
                    "still running after {}; killed with its process group",
                    describe_duration(limit)
                ),
            )),
        }
    }
}

/// Starts `cmd` (made by [`command`]) and waits for it at most `timeout`,
/// after which it is killed with its process group. A program that
/// cannot be started is `Refused` when it does not exist or may not be
/// run, else `Temporary`. `object` names the command in errors.
pub fn run(cmd: &mut Command, timeout: Duration, object: &str) -> Result<Ended> {
    let mut child = spawn(cmd, object)?;
    wait(&mut child, timeout, object)
}

/// [`run`] with `input` written to the command's stdin (from a thread of
/// its own, so a command that does not read cannot hold us past the time
/// limit). Also returns the error of that write, if any: a command that
/// exits before reading everything is for the caller to judge.
pub fn run_with_input(
    cmd: &mut Command,
    input: &[u8],
    timeout: Duration,
    object: &str,
) -> Result<(Ended, Option<std::io::Error>)> {
    cmd.stdin(Stdio::piped());
    let mut child = spawn(cmd, object)?;
    let writer = child.stdin.take().map(|mut stdin| {
        let data = input.to_vec();
        std::thread::spawn(move || stdin.write_all(&data).and_then(|()| stdin.flush()))
    });
    let ended = wait(&mut child, timeout, object)?;
    // The group has ended, so the pipe's other end is closed and the
    // writer cannot block any more (unless a process left the group).
    let written = writer
        .and_then(|w| join_within(w, GRACE))
        .and_then(|r| r.err());
    Ok((ended, written))
}

/// [`run`], returning what the command printed on stdout (at most
/// `limit` bytes are kept). Its stderr is mailbot's.
pub fn output(
    cmd: &mut Command,
    timeout: Duration,
    limit: usize,
    object: &str,
) -> Result<(Ended, Vec<u8>)> {
    cmd.stdout(Stdio::piped());
    let mut child = spawn(cmd, object)?;
    let reader = child.stdout.take().map(|stdout| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.take(limit as u64).read_to_end(&mut buf);
            buf
        })
    });
    let ended = wait(&mut child, timeout, object)?;
    // A process that left the group could hold the pipe open: the reader
    // is not waited for long.
    let out = reader
        .and_then(|r| join_within(r, GRACE))
        .unwrap_or_default();
    Ok((ended, out))
}

fn spawn(cmd: &mut Command, object: &str) -> Result<Child> {
    cmd.spawn().map_err(|e| {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                ErrorKind::Refused
            }
            _ => ErrorKind::Temporary,
        };
        Error::new(kind, object, "cannot run").with_source(e)
    })
}

fn wait(child: &mut Child, timeout: Duration, object: &str) -> Result<Ended> {
    match wait_until(child, Instant::now() + timeout, object)? {
        Some(status) => Ok(Ended::Exited(status)),
        None => {
            kill_group(child, object);
            Ok(Ended::TimedOut(timeout))
        }
    }
}

/// Waits for `child` until `deadline`; `None` when it is still running.
/// The wait backs off from 1 ms to 50 ms between looks.
fn wait_until(child: &mut Child, deadline: Instant, object: &str) -> Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Some(status)),
            Ok(None) => {}
            Err(e) => {
                return Err(Error::new(ErrorKind::Temporary, object, "lost").with_source(e));
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// SIGTERM to the group, SIGKILL after [`GRACE`], and the child reaped.
fn kill_group(child: &mut Child, object: &str) {
    use rustix::process::{Pid, Signal, kill_process_group};
    let Some(pid) = i32::try_from(child.id()).ok().and_then(Pid::from_raw) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    let _ = kill_process_group(pid, Signal::TERM);
    let ended = wait_until(child, Instant::now() + GRACE, object)
        .ok()
        .flatten()
        .is_some();
    // The group may outlive its leader: kill what is left either way.
    let _ = kill_process_group(pid, Signal::KILL);
    if !ended {
        let _ = child.wait();
    }
}

fn join_within<T: Send + 'static>(
    handle: std::thread::JoinHandle<T>,
    limit: Duration,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    while !handle.is_finished() {
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    handle.join().ok()
}

/// `30 s`, `10 min`, `1.5 s`: a duration for messages.
pub fn describe_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 60.0 && d.as_secs().is_multiple_of(60) && d.subsec_nanos() == 0 {
        format!("{} min", d.as_secs() / 60)
    } else if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{secs:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_variables_are_recognised() {
        for name in [
            "MAILBOT_PASSWORD",
            "MAILBOT_PASSWORD_COMMAND",
            "MAILBOT_OAUTH2_TOKEN",
            "MAILBOT_OAUTH2_TOKEN_COMMAND",
            "mailbot_password",
            "PGPASSWORD",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "SSHPASS",
            "SMTP_PASS",
            "MYSQL_PWD",
            "OPENAI_API_KEY",
        ] {
            assert!(is_secret_variable(OsStr::new(name)), "{name}");
        }
        for name in [
            "PATH",
            "HOME",
            "PWD",
            "OLDPWD",
            "LANG",
            "MAILBOT_CONFIG",
            "MAILBOT_MESSAGE",
            "SSH_AUTH_SOCK",
            "XAUTHORITY",
        ] {
            assert!(!is_secret_variable(OsStr::new(name)), "{name}");
        }
    }

    #[test]
    fn a_command_that_runs_too_long_is_killed_with_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // The shell leaves a grandchild behind it in the same group.
        let mut cmd = command("sh");
        cmd.arg("-c")
            .arg("sleep 300 & echo $! > \"$1\"; wait")
            .arg("sh")
            .arg(&pid_file);
        let ended = run(&mut cmd, Duration::from_millis(300), "sleeper").unwrap();
        assert_eq!(ended, Ended::TimedOut(Duration::from_millis(300)));
        let err = ended.status("sleeper").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Temporary);
        assert!(err.to_string().contains("killed"), "{err}");
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SIGKILL has been sent to the group; the grandchild is gone once
        // init has reaped it.
        let gone = (0..200).any(|_| {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat"));
            let gone = match state {
                Err(_) => true,
                Ok(s) => s.split_whitespace().nth(2) == Some("Z"),
            };
            if !gone {
                std::thread::sleep(Duration::from_millis(50));
            }
            gone
        });
        assert!(gone, "grandchild {pid} still alive");
    }

    #[test]
    fn output_and_input() {
        let (ended, out) = output(
            command("sh").arg("-c").arg("echo hello"),
            Duration::from_secs(30),
            100,
            "echo",
        )
        .unwrap();
        assert!(ended.status("echo").unwrap().success());
        assert_eq!(out, b"hello\n");
        let (ended, err) = run_with_input(
            command("sh").arg("-c").arg("test \"$(cat)\" = abc"),
            b"abc",
            Duration::from_secs(30),
            "cat",
        )
        .unwrap();
        assert!(ended.status("cat").unwrap().success() && err.is_none());
        let err = run(
            &mut command("/nonexistent/program"),
            Duration::from_secs(5),
            "x",
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Refused);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(describe_duration(Duration::from_secs(30)), "30 s");
        assert_eq!(describe_duration(Duration::from_secs(600)), "10 min");
        assert_eq!(describe_duration(Duration::from_millis(1500)), "1.5 s");
    }
}
