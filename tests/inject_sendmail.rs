//! mail-inject as sendmail(8), against the real servers: invoked through
//! a `sendmail` symlink with cron's own command lines (Debian's cron and
//! cronie) and by bsd-mailx's `mail -s`, sending through the configured
//! account; with the server down the message waits in the outbox and
//! `sendmail -q` sends it.

mod inject_common;
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use inject_common::{bin, code, describe, messages_containing, run, unique};
use support::Rig;

/// A home with a `sendmail` link to mail-inject and a configuration whose
/// only account is alice on the rig (or an SMTP URL of the caller's).
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new(rig: &Rig, smtp: Option<&str>) -> Home {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(bin(), dir.path().join("sendmail")).unwrap();
        let config = dir.path().join("config/mailbot/config.toml");
        fs::create_dir_all(config.parent().unwrap()).unwrap();
        let smtp = smtp.map(str::to_string).unwrap_or_else(|| {
            format!(
                "smtp://{}@{}:{}",
                rig.users[0].0, rig.host, rig.submission_port
            )
        });
        fs::write(
            &config,
            format!(
                "[account.school]\naddress = \"{}\"\nsmtp = \"{smtp}\"\npassword = \"{}\"\nca_file = \"{}\"\n",
                rig.address(0),
                rig.users[0].1,
                rig.ca.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
        Home { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn sendmail(&self) -> PathBuf {
        self.path().join("sendmail")
    }

    fn outbox(&self) -> PathBuf {
        self.path().join("data/mailbot/outbox")
    }

    /// A command with this home and nothing of the caller's MAILBOT_*.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("MAILBOT_") {
                cmd.env_remove(&name);
            }
        }
        cmd.env("HOME", self.path())
            .env("XDG_CONFIG_HOME", self.path().join("config"))
            .env("XDG_DATA_HOME", self.path().join("data"))
            .env("PATH", "/usr/bin:/bin")
            .current_dir(self.path());
        cmd
    }
}

fn arrived(maildir: &Path, needle: &str) -> Vec<u8> {
    support::wait_for(20, || {
        messages_containing(maildir, needle)
            .into_iter()
            .next()
            .map(|(_, m)| m)
    })
    .unwrap_or_else(|| panic!("{needle:?} did not arrive in {}", maildir.display()))
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

#[test]
fn cron_command_lines_go_through_the_account() {
    let Some(rig) = Rig::from_env() else { return };
    let home = Home::new(&rig, None);
    // Debian's cron: sendmail -i -FCronDaemon -B8BITMIME -oem MAILTO, the
    // headers in the message, no Date or Message-ID; MAILTO unset is the
    // crontab's owner, a bare local name.
    let tag = unique("cron-debian");
    let message = format!(
        "From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@host> {tag}\nMIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n\nbackup done\n"
    );
    let out = run(
        home.command(&home.sendmail())
            .args(["-i", "-FCronDaemon", "-B8BITMIME", "-oem", "root"]),
        message.as_bytes(),
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "silent: {}",
        describe(&out)
    );
    let got = String::from_utf8(arrived(&rig.maildirs[0], &tag)).unwrap();
    assert!(got.contains("backup done"), "{got}");
    // Postfix qualifies the local name it was given: root@DOMAIN (Cron Daemon).
    assert!(
        header(&got, "From").is_some_and(|f| f.ends_with("(Cron Daemon)")),
        "{got}"
    );
    assert!(
        header(&got, "Date").is_some() && header(&got, "Message-ID").is_some(),
        "{got}"
    );

    // cronie: -FCronDaemon -i -odi -oem -oi -t -f root, recipients from To:.
    let tag = unique("cron-cronie");
    let message = format!("To: {}\nSubject: {tag}\n\nfrom cronie\n", rig.address(1));
    let out = run(
        home.command(&home.sendmail()).args([
            "-FCronDaemon",
            "-i",
            "-odi",
            "-oem",
            "-oi",
            "-t",
            "-f",
            "root",
        ]),
        message.as_bytes(),
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let got = String::from_utf8(arrived(&rig.maildirs[1], &tag)).unwrap();
    // The message had no From: -F names the account's address.
    assert_eq!(
        header(&got, "From"),
        Some(format!("CronDaemon <{}>", rig.address(0)).as_str()),
        "{got}"
    );

    // --sendmail-compat does the same without the link.
    let tag = unique("compat");
    let out = run(
        home.command(&bin()).args(["--sendmail-compat", "-t"]),
        format!("To: {}\nSubject: {tag}\n\nx\n", rig.address(1)).as_bytes(),
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    arrived(&rig.maildirs[1], &tag);

    // A mode it does not have is a usage error naming it.
    let out = run(home.command(&home.sendmail()).arg("-bs"), b"");
    assert_eq!(code(&out), 64, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("mail-inject: -bs: mode not supported"),
        "{}",
        describe(&out)
    );
}

#[test]
fn mail_s_from_bsd_mailx_is_sent() {
    let Some(rig) = Rig::from_env() else { return };
    let home = Home::new(&rig, None);
    let rc = home.path().join("mailrc");
    fs::write(&rc, format!("set sendmail={}\n", home.sendmail().display())).unwrap();
    let tag = unique("mailx");
    let out = run(
        home.command(Path::new("/usr/bin/bsd-mailx"))
            .env("MAILRC", &rc)
            .args(["-s", &tag, &rig.address(1)]),
        b"sent with mail(1)\n",
    );
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let got = String::from_utf8(arrived(&rig.maildirs[1], &tag)).unwrap();
    assert!(got.contains("sent with mail(1)"), "{got}");
}

#[test]
fn with_the_server_down_the_message_waits_and_sendmail_q_sends_it() {
    let Some(rig) = Rig::from_env() else { return };
    // Nothing listens on port 1: connection refused, a temporary failure.
    let down = Home::new(
        &rig,
        Some(&format!("smtp://{}@127.0.0.1:1", rig.users[0].0)),
    );
    let tag = unique("queued");
    let out = run(
        down.command(&down.sendmail())
            .args(["-i", "--", &rig.address(1)]),
        format!("Subject: {tag}\n\nlater\n").as_bytes(),
    );
    assert_eq!(code(&out), 0, "accepted for later: {}", describe(&out));
    assert!(out.stderr.is_empty(), "quiet: {}", describe(&out));
    assert_eq!(messages_containing(&down.outbox(), &tag).len(), 1);
    // The server back: the account's URL is the rig's again (its
    // password goes only to its own URL, so the file changes, not a flag).
    let up = Home::new(&rig, None);
    fs::copy(
        up.path().join("config/mailbot/config.toml"),
        down.path().join("config/mailbot/config.toml"),
    )
    .unwrap();
    let out = run(down.command(&down.sendmail()).arg("-q"), b"");
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(messages_containing(&down.outbox(), &tag).is_empty());
    let got = String::from_utf8(arrived(&rig.maildirs[1], &tag)).unwrap();
    assert!(got.contains("later"));
}
