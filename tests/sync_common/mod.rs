//! Helpers for the mail-sync tests: running the binary in a clean
//! environment against the rig, a small IMAP client of the tests' own
//! (over `support::Conn`, sharing no code with mailbot's) that reads the
//! server's messages with their UIDs and flags, putting files straight
//! into Dovecot's maildir, and reading the local maildir back.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};

use crate::support::{Conn, Rig};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mail-sync"))
}

/// A folder name no other test uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// mail-sync with HOME inside `home`, no MAILBOT_* settings of the
/// caller's, alice's password, the rig's CA, and `imaps://alice@...`.
pub fn sync(rig: &Rig, home: &Path, maildir: &Path) -> Command {
    sync_to(rig, home, maildir, &url(rig))
}

/// [`sync`] with another server URL (a proxy in front of the rig).
pub fn sync_to(rig: &Rig, home: &Path, maildir: &Path, url: &str) -> Command {
    let mut cmd = Command::new(bin());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MAILBOT_") {
            cmd.env_remove(&name);
        }
    }
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("MAILBOT_PASSWORD", &rig.users[0].1)
        .arg(url)
        .arg("--maildir")
        .arg(maildir)
        .arg("--ca-file")
        .arg(&rig.ca)
        .stdin(Stdio::null());
    cmd
}

/// `imaps://alice@HOST:PORT`.
pub fn url(rig: &Rig) -> String {
    format!("imaps://{}@{}:{}", rig.users[0].0, rig.host, rig.imaps_port)
}

/// Runs `cmd` to its end.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run mail-sync")
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub use crate::support::describe;

/// Runs and asserts exit 0 and an empty stderr; returns the stdout lines.
pub fn run_ok(cmd: &mut Command) -> Vec<PathBuf> {
    let out = run(cmd);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        out.stderr.is_empty(),
        "silent on success: {}",
        describe(&out)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect()
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The multiset of sha256 of `bodies`.
pub fn hashes<'a>(bodies: impl IntoIterator<Item = &'a [u8]>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for b in bodies {
        *out.entry(sha256(b)).or_insert(0) += 1;
    }
    out
}

/// A message as the server holds it.
#[derive(Debug, Clone)]
pub struct ServerMessage {
    pub uid: u32,
    pub flags: String,
    pub body: Vec<u8>,
}

/// A message file in the local maildir.
#[derive(Debug, Clone)]
pub struct LocalMessage {
    pub path: PathBuf,
    pub uid: Option<u32>,
    pub flags: String,
    pub body: Vec<u8>,
}

/// Every file in `folder`'s `new/` and `cur/`, with the UID and flags its
/// name carries.
pub fn local_messages(folder: &Path) -> Vec<LocalMessage> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(read) = std::fs::read_dir(folder.join(sub)) else {
            continue;
        };
        for item in read {
            let path = item.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let (unique, flags) = match name.rsplit_once(":2,") {
                Some((u, f)) => (u.to_string(), f.to_string()),
                None => (name.clone(), String::new()),
            };
            let uid = unique
                .split(',')
                .find_map(|f| f.strip_prefix("U="))
                .and_then(|u| u.parse().ok());
            out.push(LocalMessage {
                body: std::fs::read(&path).unwrap(),
                path,
                uid,
                flags,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// A tagged IMAP session as alice, over implicit TLS trusting the rig.
pub struct Server {
    conn: Conn,
    tag: u32,
}

/// One untagged response: its first line, the literal it announced (if
/// any) and the line that followed the literal.
#[derive(Debug, Clone)]
pub struct Untagged {
    pub line: String,
    pub literal: Option<Vec<u8>>,
    pub rest: String,
}

impl Server {
    pub fn login(rig: &Rig) -> Server {
        Server::login_as(rig, &rig.users[0].0, &rig.users[0].1)
    }

    /// A session as `user` (another user of the rig, or `user*master`).
    pub fn login_as(rig: &Rig, user: &str, password: &str) -> Server {
        let mut conn = Conn::plain(&rig.host, rig.imaps_port)
            .unwrap()
            .start_tls("localhost", rig.tls_trusting_rig())
            .unwrap();
        let greeting = conn.line().unwrap();
        assert!(greeting.starts_with("* OK"), "{greeting}");
        let mut s = Server { conn, tag: 0 };
        let (status, _) = s.command(&format!("LOGIN \"{user}\" \"{password}\""));
        assert!(status.starts_with("OK"), "login: {status}");
        s
    }

    /// Sends a command; returns the tagged status and the untagged
    /// responses.
    pub fn command(&mut self, cmd: &str) -> (String, Vec<Untagged>) {
        self.tag += 1;
        let tag = format!("s{}", self.tag);
        self.conn
            .send(format!("{tag} {cmd}\r\n").as_bytes())
            .unwrap();
        self.collect(&tag)
    }

    fn collect(&mut self, tag: &str) -> (String, Vec<Untagged>) {
        let mut out = Vec::new();
        loop {
            let line = self.conn.line().unwrap();
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                return (rest.trim_end().to_string(), out);
            }
            let mut u = Untagged {
                line: line.clone(),
                literal: None,
                rest: String::new(),
            };
            if let Some(n) = literal_length(&line) {
                let mut buf = vec![0; n];
                self.conn.read_exact(&mut buf).unwrap();
                u.literal = Some(buf);
                u.rest = self.conn.line().unwrap();
            }
            out.push(u);
        }
    }

    /// CREATE (a UTF-8 name).
    pub fn create(&mut self, name: &str) {
        let (status, _) = self.command(&format!("CREATE {}", mbox(name)));
        assert!(status.starts_with("OK"), "CREATE {name}: {status}");
    }

    /// DELETE (a UTF-8 name).
    pub fn delete(&mut self, name: &str) {
        let (status, _) = self.command(&format!("DELETE {}", mbox(name)));
        assert!(status.starts_with("OK"), "DELETE {name}: {status}");
    }

    /// APPENDs `message` with `flags` (e.g. `\Seen`); returns its UID.
    pub fn append(&mut self, name: &str, flags: &str, message: &[u8]) -> u32 {
        self.append_at(name, flags, None, message)
    }

    /// [`Server::append`] with an INTERNALDATE (`01-Jan-2001 10:00:00 +0100`).
    pub fn append_at(
        &mut self,
        name: &str,
        flags: &str,
        date: Option<&str>,
        message: &[u8],
    ) -> u32 {
        self.tag += 1;
        let tag = format!("s{}", self.tag);
        let date = date.map(|d| format!(" \"{d}\"")).unwrap_or_default();
        self.conn
            .send(
                format!(
                    "{tag} APPEND {} ({flags}){date} {{{}}}\r\n",
                    mbox(name),
                    message.len()
                )
                .as_bytes(),
            )
            .unwrap();
        let go = self.conn.line().unwrap();
        assert!(go.starts_with('+'), "APPEND: {go}");
        self.conn.send(message).unwrap();
        self.conn.send(b"\r\n").unwrap();
        let (status, _) = self.collect(&tag);
        assert!(status.starts_with("OK"), "APPEND: {status}");
        let uid = status
            .split("APPENDUID ")
            .nth(1)
            .and_then(|r| r.split([' ', ']']).nth(1))
            .and_then(|u| u.parse().ok());
        uid.expect("APPENDUID")
    }

    /// SELECTs; returns the UIDVALIDITY.
    pub fn select(&mut self, name: &str) -> u32 {
        let (status, untagged) = self.command(&format!("SELECT {}", mbox(name)));
        assert!(status.starts_with("OK"), "SELECT {name}: {status}");
        untagged
            .iter()
            .find_map(|u| {
                u.line
                    .split("[UIDVALIDITY ")
                    .nth(1)
                    .and_then(|r| r.split(']').next())
                    .and_then(|v| v.parse().ok())
            })
            .expect("UIDVALIDITY")
    }

    /// The folder's UIDNEXT (from STATUS).
    pub fn uidnext(&mut self, name: &str) -> u32 {
        let (status, untagged) = self.command(&format!("STATUS {} (UIDNEXT)", mbox(name)));
        assert!(status.starts_with("OK"), "STATUS {name}: {status}");
        untagged
            .iter()
            .find_map(|u| {
                u.line
                    .split("UIDNEXT ")
                    .nth(1)
                    .and_then(|r| r.split(')').next())
                    .and_then(|v| v.trim().parse().ok())
            })
            .expect("UIDNEXT")
    }

    /// Every message of the folder with its UID, flags and `BODY[]`.
    pub fn messages(&mut self, name: &str) -> Vec<ServerMessage> {
        self.select(name);
        let (status, untagged) = self.command("UID FETCH 1:* (UID FLAGS BODY.PEEK[])");
        assert!(status.starts_with("OK"), "FETCH: {status}");
        let mut out = Vec::new();
        for u in untagged {
            let Some(body) = u.literal else { continue };
            let text = format!("{} {}", u.line, u.rest);
            let uid = text
                .split("UID ")
                .nth(1)
                .and_then(|r| r.split([' ', ')']).next())
                .and_then(|v| v.parse().ok())
                .expect("UID in FETCH");
            let flags = text
                .split("FLAGS (")
                .nth(1)
                .and_then(|r| r.split(')').next())
                .unwrap_or("")
                .to_string();
            out.push(ServerMessage { uid, flags, body });
        }
        out.sort_by_key(|m| m.uid);
        out
    }

    /// UID STORE on one message of the folder.
    pub fn store(&mut self, name: &str, uid: u32, what: &str) {
        self.select(name);
        let (status, _) = self.command(&format!("UID STORE {uid} {what}"));
        assert!(status.starts_with("OK"), "STORE: {status}");
    }

    /// Marks one message \Deleted and expunges it.
    pub fn expunge(&mut self, name: &str, uid: u32) {
        self.store(name, uid, "+FLAGS.SILENT (\\Deleted)");
        let (status, _) = self.command(&format!("UID EXPUNGE {uid}"));
        assert!(status.starts_with("OK"), "EXPUNGE: {status}");
    }

    pub fn logout(mut self) {
        let _ = self.command("LOGOUT");
    }
}

/// A mailbox name quoted in modified UTF-7.
pub fn mbox(name: &str) -> String {
    format!("\"{}\"", mailbot::imap::encode_mailbox_name(name))
}

fn literal_length(line: &str) -> Option<usize> {
    let body = line.trim_end().strip_suffix('}')?;
    let open = body.rfind('{')?;
    body[open + 1..].parse().ok()
}

/// The server-side maildir directory of folder `name` (Dovecot's
/// Maildir++ layout, `.` as the delimiter, names in modified UTF-7).
pub fn server_dir(rig: &Rig, name: &str) -> PathBuf {
    rig.maildirs[0].join(format!(".{}", mailbot::imap::encode_mailbox_name(name)))
}

/// Puts messages straight into the server's maildir folder (owned by the
/// mail user, as Dovecot needs), where Dovecot finds them at the next
/// SELECT. Much faster than APPEND for thousands.
pub fn drop_into_server(rig: &Rig, name: &str, messages: &[Vec<u8>]) {
    let flagged: Vec<(Vec<u8>, &str)> = messages.iter().map(|m| (m.clone(), "")).collect();
    drop_into_server_with_flags(rig, name, &flagged);
}

/// [`drop_into_server`], each message with maildir flag letters.
pub fn drop_into_server_with_flags(rig: &Rig, name: &str, messages: &[(Vec<u8>, &str)]) {
    let dir = server_dir(rig, name).join("cur");
    let uid: u32 = std::env::var("MAILBOT_TEST_MAIL_UID")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let gid: u32 = std::env::var("MAILBOT_TEST_MAIL_GID")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    for (m, flags) in messages {
        let i = N.fetch_add(1, Ordering::Relaxed);
        let p = dir.join(format!(
            "1700000000.M{i}P{}.test:2,{flags}",
            std::process::id()
        ));
        std::fs::write(&p, m).unwrap();
        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[path = "../support/corpora.rs"]
mod corpora;

/// Messages from the corpora: every `.eml` (malformed ones, 8-bit headers
/// and bodies, bogus encodings, 1–2 MB attachments); `None` (the test is
/// skipped) when there are no corpora.
pub fn corpus_messages() -> Option<Vec<Vec<u8>>> {
    let root = corpora::root()?;
    let mut files = Vec::new();
    collect_eml(&root, &mut files);
    files.sort();
    assert!(files.len() > 200, "corpus missing under {}", root.display());
    Some(files.iter().map(|f| std::fs::read(f).unwrap()).collect())
}

fn collect_eml(dir: &Path, out: &mut Vec<PathBuf>) {
    for item in std::fs::read_dir(dir).unwrap() {
        let p = item.unwrap().path();
        if p.is_dir() {
            collect_eml(&p, out);
        } else if p.extension().is_some_and(|e| e == "eml") {
            out.push(p);
        }
    }
}

/// `n` generated messages of varied sizes (2 KB to 150 KB), quickly.
pub fn generated(tag: &str, n: usize) -> Vec<Vec<u8>> {
    let line = "The quick brown fox jumps over the lazy dog 0123456789 ~~~~~~~~~~\n";
    (0..n)
        .map(|i| {
            let size = [2_000, 5_000, 20_000, 60_000, 150_000][i % 5];
            let mut m = format!(
                "From: gen@mailbot.test\nTo: alice@mailbot.test\nSubject: {tag} {i}\nMessage-ID: <{tag}.{i}@mailbot.test>\n\n"
            )
            .into_bytes();
            while m.len() < size {
                m.extend_from_slice(format!("{i:06} ").as_bytes());
                m.extend_from_slice(line.as_bytes());
            }
            m
        })
        .collect()
}

/// What a maildir on Unix holds for a message the server sends: each
/// CRLF made LF, every other byte as it is (what Dovecot itself stores,
/// and mail-sync by default).
pub fn stored(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\r' && body.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(body[i]);
        i += 1;
    }
    out
}

/// The local files equal the server's messages as a Unix maildir stores
/// them ([`stored`]), or as sent for a file that was written locally and
/// uploaded (its bytes stay as they were): the same multiset of
/// messages, every UID once, and the same UIDs.
pub fn assert_same(server: &[ServerMessage], local: &[LocalMessage]) {
    let s = hashes(
        server
            .iter()
            .map(|m| stored(&m.body))
            .collect::<Vec<_>>()
            .iter()
            .map(Vec::as_slice),
    );
    let l = hashes(
        local
            .iter()
            .map(|m| stored(&m.body))
            .collect::<Vec<_>>()
            .iter()
            .map(Vec::as_slice),
    );
    assert_eq!(
        s.values().sum::<usize>(),
        l.values().sum::<usize>(),
        "message counts differ"
    );
    assert!(s == l, "the sha256 multisets differ");
    let mut uids: Vec<u32> = local
        .iter()
        .map(|m| m.uid.expect("a UID in every name"))
        .collect();
    uids.sort_unstable();
    let before = uids.len();
    uids.dedup();
    assert_eq!(uids.len(), before, "a UID named twice");
    let server_uids: Vec<u32> = server.iter().map(|m| m.uid).collect();
    assert_eq!(uids, server_uids, "UID sets differ");
    for m in local {
        let on_server = server.iter().find(|s| Some(s.uid) == m.uid).unwrap();
        assert!(
            stored(&on_server.body) == m.body || on_server.body == m.body,
            "{}: not the server's UID {}",
            m.path.display(),
            on_server.uid
        );
    }
}
