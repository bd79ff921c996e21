//! Helpers for the mail-migrate tests: a source and a destination rig
//! of scripts/mailserver of the test's own (different delimiter, prefix
//! and special-use names, a master user, a size limit), the binary run in
//! a clean environment, and snapshots of folders through the tests' own
//! IMAP client (`sync_common::Server`), which shares no code with
//! mailbot's.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::Rig;
use crate::support::own_rig::OwnRig;
use crate::sync_common::{Server, sha256};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mail-migrate"))
}

/// Whether rig tests run here (they start rigs of their own; the shared
/// rig's presence says the machine can).
pub fn rigs_wanted() -> bool {
    Rig::from_env().is_some()
}

/// A source like an older system (namespace prefix `INBOX.`, `.` as the
/// delimiter, Exchange-style special-use names) and a destination like a
/// newer one (`/`, no prefix, a 1 MB message size limit); both with four
/// users and a master user.
pub struct Pair {
    pub source: OwnRig,
    pub destination: OwnRig,
    pub ca: PathBuf,
    pub home: tempfile::TempDir,
}

impl Pair {
    pub fn start(name: &str) -> Pair {
        let source = OwnRig::start_with(
            &format!("{name}-src"),
            &[
                "--users",
                "4",
                "--prefix",
                "INBOX.",
                "--special-use",
                "Sent Items=\\Sent",
                "--special-use",
                "Deleted Items=\\Trash",
                "--master-user",
            ],
        );
        let destination = OwnRig::start_with(
            &format!("{name}-dst"),
            &[
                "--users",
                "4",
                "--delimiter",
                "/",
                "--max-mail-size",
                "1000000",
                "--master-user",
            ],
        );
        let home = tempfile::tempdir().unwrap();
        let ca = home.path().join("cas.pem");
        let mut pem = std::fs::read(source.var("MAILBOT_TEST_CA")).unwrap();
        pem.extend(std::fs::read(destination.var("MAILBOT_TEST_CA")).unwrap());
        std::fs::write(&ca, pem).unwrap();
        Pair {
            source,
            destination,
            ca,
            home,
        }
    }

    /// Login name and password of user `n` (1-based) on a rig.
    pub fn user(rig: &OwnRig, n: usize) -> (String, String) {
        (
            rig.var(&format!("MAILBOT_TEST_USER{n}")).to_string(),
            rig.var(&format!("MAILBOT_TEST_PASS{n}")).to_string(),
        )
    }

    pub fn src_login(&self, n: usize) -> Server {
        let (u, p) = Pair::user(&self.source, n);
        Server::login_as(&self.source.rig(), &u, &p)
    }

    pub fn dst_login(&self, n: usize) -> Server {
        let (u, p) = Pair::user(&self.destination, n);
        Server::login_as(&self.destination.rig(), &u, &p)
    }

    pub fn source_url(&self) -> String {
        format!(
            "imaps://127.0.0.1:{}",
            self.source.var("MAILBOT_TEST_IMAPS_PORT")
        )
    }

    pub fn destination_url(&self) -> String {
        format!(
            "imaps://127.0.0.1:{}",
            self.destination.var("MAILBOT_TEST_IMAPS_PORT")
        )
    }

    /// mail-migrate with HOME in the test's folder, the state in it, both
    /// rigs' CAs, and no MAILBOT_* of the caller's.
    pub fn migrate(&self) -> Command {
        let mut cmd = Command::new(bin());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("MAILBOT_") {
                cmd.env_remove(&name);
            }
        }
        cmd.env("HOME", self.home.path())
            .env("XDG_STATE_HOME", self.home.path().join("state"))
            .arg("--ca-file")
            .arg(&self.ca)
            .stdin(Stdio::null());
        cmd
    }

    /// [`Pair::migrate`] over a users file of `rows` (source n, destination n,
    /// with passwords), mode 0600.
    pub fn migrate_users(&self, rows: &[(usize, usize)]) -> Command {
        let path = self.home.path().join("users.csv");
        let mut text =
            String::from("source_user,destination_user,source_password,destination_password\n");
        for (s, d) in rows {
            let (su, sp) = Pair::user(&self.source, *s);
            let (du, dp) = Pair::user(&self.destination, *d);
            text.push_str(&format!("{su},{du},{sp},{dp}\n"));
        }
        write_private(&path, &text);
        let mut cmd = self.migrate();
        cmd.arg("--users")
            .arg(&path)
            .arg("--from")
            .arg(self.source_url())
            .arg("--to")
            .arg(self.destination_url());
        cmd
    }
}

pub fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run mail-migrate")
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// The JSON lines of stdout.
pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// One message as a test compares it: sha256 of its bytes, its flags
/// (sorted, without \Recent), its INTERNALDATE.
pub type Snapshot = BTreeMap<(String, String, String), usize>;

/// The folders of a session's account (decoded names).
pub fn folders(server: &mut Server) -> Vec<String> {
    let (status, lines) = server.command("LIST \"\" \"*\"");
    assert!(status.starts_with("OK"), "LIST: {status}");
    let mut out = Vec::new();
    for u in lines {
        let line = u.line.trim_end();
        if !line.starts_with("* LIST")
            || line.contains("\\Noselect")
            || line.contains("\\NonExistent")
        {
            continue;
        }
        let raw = match &u.literal {
            Some(l) => String::from_utf8_lossy(l).into_owned(),
            None => {
                let name = line.rsplit_once(") ").unwrap().1;
                let name = name.split_once(' ').map_or(name, |(_, n)| n);
                name.trim_matches('"').replace("\\\"", "\"")
            }
        };
        out.push(mailbot::imap::decode_mailbox_name(&raw).unwrap_or(raw));
    }
    out.sort();
    out
}

/// The folders subscribed.
pub fn subscribed(server: &mut Server) -> Vec<String> {
    let (status, lines) = server.command("LSUB \"\" \"*\"");
    assert!(status.starts_with("OK"), "LSUB: {status}");
    let mut out: Vec<String> = lines
        .iter()
        .filter_map(|u| {
            let line = u.line.trim_end();
            let name = line.rsplit_once("\" ")?.1.trim_matches('"');
            Some(mailbot::imap::decode_mailbox_name(name).unwrap_or(name.to_string()))
        })
        .collect();
    out.sort();
    out
}

/// Every message of a folder as [`Snapshot`] entries.
pub fn snapshot(server: &mut Server, folder: &str) -> Snapshot {
    let messages = server.messages(folder);
    let (status, lines) = server.command("UID FETCH 1:* (UID INTERNALDATE)");
    assert!(status.starts_with("OK"), "FETCH: {status}");
    let mut dates = BTreeMap::new();
    for u in lines {
        let l = &u.line;
        let uid: Option<u32> = l
            .split("UID ")
            .nth(1)
            .and_then(|r| r.split([' ', ')']).next())
            .and_then(|v| v.parse().ok());
        let date = l
            .split("INTERNALDATE \"")
            .nth(1)
            .and_then(|r| r.split('"').next());
        if let (Some(uid), Some(date)) = (uid, date) {
            dates.insert(uid, date.to_string());
        }
    }
    let mut out = Snapshot::new();
    for m in messages {
        let mut flags: Vec<&str> = m
            .flags
            .split_whitespace()
            .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
            .collect();
        flags.sort_unstable();
        let key = (
            sha256(&m.body),
            flags.join(" "),
            dates.get(&m.uid).cloned().unwrap_or_default(),
        );
        *out.entry(key).or_insert(0) += 1;
    }
    out
}

/// A message of about `size` bytes with this Message-ID (none when empty).
pub fn message(id: &str, subject: &str, size: usize) -> Vec<u8> {
    let mut m = String::from("From: Ren\u{e9}e <renee@old.example>\r\nTo: alice@old.example\r\n");
    m.push_str(&format!("Subject: {subject}\r\n"));
    if !id.is_empty() {
        m.push_str(&format!("Message-ID: <{id}>\r\n"));
    }
    m.push_str("Date: Sun, 14 Mar 1999 08:30:00 -0500\r\n\r\n");
    let mut bytes = m.into_bytes();
    let mut i = 0;
    while bytes.len() < size {
        bytes.extend_from_slice(format!("{i:06} line of text, caf\u{e9} \u{2603}\r\n").as_bytes());
        i += 1;
    }
    bytes
}
