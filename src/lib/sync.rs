//! mail-sync: IMAP ⇄ maildir synchronisation that never loses or
//! duplicates a message, with per-folder state under `DIR/.mailbot/`.
//!
//! One pass ([`run`]) lists the server's folders, picks those the
//! patterns name, and syncs each into its local maildir folder: new
//! server messages are fetched byte for byte (one pipelined `UID FETCH`
//! over the whole missing range, each body streamed into `tmp/` and
//! renamed into `new/` or `cur/`), flags are merged both ways against the
//! flags both sides last agreed on, new local messages are uploaded with
//! `--push`, and deletions travel only as [`Expunge`] says. With
//! CONDSTORE/QRESYNC a pass over an unchanged folder costs a SELECT and
//! a directory listing. [`watch`] does a pass and then waits on one
//! folder with IDLE.
//!
//! Crash safety comes from the file names: each synced file carries its
//! UID and size (`…,U=17,S=2048:2,S`, see [`names`]), files appear in
//! `new/`/`cur/` only complete, and the state file ([`state`]) is only a
//! cache written after a `syncfs`, so whatever instant the process dies
//! at, the next pass rebuilds what it needs from the names and neither
//! loses nor fetches twice. A lost or corrupt state, or a new
//! UIDVALIDITY, makes the pass match local files to server messages by
//! Message-ID and size (content hash when that is ambiguous) instead of
//! downloading again.
//!
//! Files are the server's `BODY[]` with each CRLF made LF and nothing
//! else changed, as Dovecot, mbsync and offlineimap store mail on Unix
//! ([`crate::maildir::LineEnds`]; `Crlf` keeps the bytes as sent): a
//! local file equals the file Dovecot keeps for the message. Names carry
//! the local size (`S=`) and, when it differs, the size on the wire
//! (`W=`, as Dovecot writes it), so matching against the server needs no
//! read of the file. Uploads turn LF back into CRLF.
//!
//! This module does not index (mail-index does, from the paths
//! [`run`] reports), create server folders for local ones, or follow
//! server-side moves.

mod fetch;
mod folder;
pub mod local;
pub mod names;
pub mod state;
pub mod unchanged;

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::exit::Exit;
use crate::imap::{self, Mailbox, Session, breaks_session};
use unchanged::Unchanged;

/// How server folders map to local folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// The server's hierarchy as nested folders: `INBOX` → `DIR/INBOX`,
    /// `Lists.rust` → `DIR/Lists/rust`.
    #[default]
    Verbatim,
    /// Maildir++: `INBOX` → `DIR` itself, `Lists.rust` → `DIR/.Lists.rust`.
    MaildirPlusPlus,
}

/// Which way new messages travel (flags always go both ways).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Fetch new server messages.
    #[default]
    Pull,
    /// Upload new local messages (and fetch nothing).
    Push,
    /// Both.
    Both,
}

impl Direction {
    fn pulls(self) -> bool {
        matches!(self, Direction::Pull | Direction::Both)
    }

    fn pushes(self) -> bool {
        matches!(self, Direction::Push | Direction::Both)
    }
}

/// Which deletions propagate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expunge {
    /// None: a message deleted on one side stays on the other.
    #[default]
    Never,
    /// Messages expunged on the server are removed locally.
    ToLocal,
    /// Messages deleted locally are expunged on the server.
    ToServer,
    /// Both.
    Both,
}

impl Expunge {
    fn to_local(self) -> bool {
        matches!(self, Expunge::ToLocal | Expunge::Both)
    }

    fn to_server(self) -> bool {
        matches!(self, Expunge::ToServer | Expunge::Both)
    }
}

/// What to sync and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server.
    pub url: crate::imap::ImapUrl,
    /// The credentials.
    pub auth: crate::smtp::Auth,
    /// How to verify the server's certificate.
    pub tls: crate::tls::TlsOptions,
    /// The local maildir root.
    pub maildir: PathBuf,
    /// Folder patterns (`*` any text, `%` any text but the hierarchy
    /// delimiter, as in IMAP LIST); empty syncs every folder.
    pub folders: Vec<String>,
    /// The local layout.
    pub layout: Layout,
    /// Which way new messages travel.
    pub direction: Direction,
    /// Which deletions propagate.
    pub expunge: Expunge,
    /// Network timeout (connect, and each read and write).
    pub timeout: Duration,
    /// How fetched messages store their line ends: LF (each CRLF the
    /// server sends made LF, the default) or as sent.
    pub line_ends: crate::maildir::LineEnds,
}

/// A message that arrived in the local maildir.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The server folder's name (decoded UTF-8).
    pub folder: String,
    /// The file.
    pub path: PathBuf,
    /// The server UID.
    pub uid: u32,
}

/// What a pass did to one folder.
#[derive(Debug, Default, Clone, Serialize)]
pub struct FolderReport {
    /// The server folder's name.
    pub folder: String,
    /// The local folder.
    pub local: PathBuf,
    /// Messages fetched from the server.
    pub fetched: usize,
    /// Local messages uploaded.
    pub uploaded: usize,
    /// Messages whose local flags changed to follow the server.
    pub flags_pulled: usize,
    /// Messages whose server flags changed to follow the local ones.
    pub flags_pushed: usize,
    /// Local files removed because the server expunged them.
    pub removed_local: usize,
    /// Server messages expunged because they were deleted locally.
    pub expunged_server: usize,
    /// Why the folder failed, if it did.
    pub error: Option<String>,
    /// The folder's special use as the server's LIST gave it (RFC 6154:
    /// `\Sent`, `\Junk`, `\Trash`, `\Drafts`, ...), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub special_use: Option<String>,
}

impl FolderReport {
    /// A folder that failed before anything moved.
    fn failed(folder: String, local: PathBuf, error: String) -> FolderReport {
        FolderReport {
            folder,
            local,
            error: Some(error),
            ..FolderReport::default()
        }
    }

    fn add(&mut self, other: &FolderReport) {
        self.fetched += other.fetched;
        self.uploaded += other.uploaded;
        self.flags_pulled += other.flags_pulled;
        self.flags_pushed += other.flags_pushed;
        self.removed_local += other.removed_local;
        self.expunged_server += other.expunged_server;
        if other.error.is_some() {
            self.error.clone_from(&other.error);
        }
    }
}

/// What a pass did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    /// One entry per folder, in the order synced.
    pub folders: Vec<FolderReport>,
}

impl Report {
    /// 0 when every folder synced, 1 when some failed.
    pub fn exit(&self) -> Exit {
        if self.folders.iter().any(|f| f.error.is_some()) {
            Exit::Partial
        } else {
            Exit::Ok
        }
    }

    fn merge(&mut self, other: &FolderReport) {
        match self.folders.iter_mut().find(|f| f.folder == other.folder) {
            Some(f) => f.add(other),
            None => self.folders.push(other.clone()),
        }
    }
}

/// Settings beyond [`Options`] that few runs need.
#[derive(Debug, Clone, Default)]
pub struct Tuning {
    /// Extensions not to use even when the server offers them
    /// (`QRESYNC`, `CONDSTORE`, `UIDPLUS`, `LITERAL+`): for servers whose
    /// implementation is broken, and to exercise the fallbacks.
    pub disable_extensions: Vec<String>,
    /// Connections a large fetch is shared between (0: the default, 2).
    pub connections: usize,
    /// For [`watch_tuned`]: look at the folder this often on the open
    /// connection instead of waiting in IDLE. Dovecot holds an IDLE
    /// notification back about half a second to gather changes; a short
    /// poll sees new mail sooner, at the cost of a command each time.
    pub poll_every: Option<Duration>,
    /// Set by the caller when it can no longer take new messages (the
    /// reader of the printed paths went away): the pass stops after the
    /// message at hand, before any more state is written, so the next
    /// run reports again what this one placed after its last state.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Tuning {
    /// An error (that ends the pass) once [`Tuning::stop`] is set.
    fn check_stop(&self) -> Result<()> {
        match &self.stop {
            Some(flag) if flag.load(std::sync::atomic::Ordering::Relaxed) => Err(Error::new(
                ErrorKind::Temporary,
                "mail-sync",
                "stopped: new messages can no longer be reported",
            )),
            _ => Ok(()),
        }
    }
}

/// Progress, for a progress bar.
#[derive(Debug)]
pub enum Event<'a> {
    /// A folder's sync begins.
    FolderStarted {
        /// The server folder.
        folder: &'a str,
    },
    /// This many messages are about to be fetched.
    Fetching {
        /// The server folder.
        folder: &'a str,
        /// How many.
        count: u64,
    },
    /// One message was fetched.
    Fetched {
        /// Its size.
        bytes: u64,
    },
    /// A folder is done (or failed).
    FolderDone(&'a FolderReport),
}

/// Local folder for a server folder name under `layout` (INBOX →
/// DIR/INBOX in verbatim, DIR itself in maildir++). In verbatim, INBOX in
/// any case is the folder `DIR/INBOX`, or, when there is none, a folder
/// of that name in another case already there (`mail-inject --maildir
/// ~/Mail/inbox` makes `DIR/inbox`): the only look at the disk here.
///
/// Name parts that would break the maildir are escaped as `%XX`: a `/`
/// inside a part, a leading `.` (verbatim), a `.` anywhere in a part
/// (maildir++), a part named `tmp`, `new` or `cur`, control characters;
/// and in maildir++ the names `mailbot` and `notmuch`, whose dot folders
/// hold the sync state and the index.
pub fn local_folder(
    maildir: &Path,
    layout: Layout,
    server_name: &str,
    delimiter: Option<char>,
) -> PathBuf {
    let parts: Vec<&str> = match delimiter {
        Some(d) => server_name.split(d).collect(),
        None => vec![server_name],
    };
    let is_inbox = |p: &str| p.eq_ignore_ascii_case("INBOX");
    match layout {
        Layout::Verbatim => {
            let mut out = maildir.to_path_buf();
            for (i, part) in parts.iter().enumerate() {
                if i == 0 && is_inbox(part) {
                    out.push(inbox_dir_name(maildir));
                } else {
                    out.push(escape_part(part, false));
                }
            }
            out
        }
        Layout::MaildirPlusPlus => {
            if parts.len() == 1 && is_inbox(parts[0]) {
                return maildir.to_path_buf();
            }
            let joined: Vec<String> = parts
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    if i == 0 && is_inbox(p) {
                        "INBOX".to_string()
                    } else {
                        escape_part(p, true)
                    }
                })
                .collect();
            let mut name = joined.join(".");
            // Our state and notmuch's database live beside the folders.
            if matches!(name.as_str(), "mailbot" | "notmuch") {
                name = format!("%{:02X}{}", name.as_bytes()[0], &name[1..]);
            }
            maildir.join(format!(".{name}"))
        }
    }
}

/// The name of INBOX's folder in `maildir` (verbatim layout): `INBOX`,
/// unless only a folder of that name in another case exists.
fn inbox_dir_name(maildir: &Path) -> std::ffi::OsString {
    let standard = std::ffi::OsString::from("INBOX");
    if maildir.join("INBOX").is_dir() {
        return standard;
    }
    let Ok(entries) = fs::read_dir(maildir) else {
        return standard;
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name())
        .filter(|n| n.to_str().is_some_and(|n| n.eq_ignore_ascii_case("INBOX")))
        .min()
        .unwrap_or(standard)
}

fn escape_part(part: &str, dots: bool) -> String {
    if part.is_empty() {
        return "%".into();
    }
    if matches!(part, "tmp" | "new" | "cur") {
        return format!("%{:02X}{}", part.as_bytes()[0], &part[1..]);
    }
    let mut out = String::with_capacity(part.len());
    for (i, c) in part.chars().enumerate() {
        let escape = c == '/' || c.is_control() || (c == '.' && (dots || i == 0));
        if escape {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether a server folder name matches an IMAP LIST-style pattern:
/// `*` matches anything, `%` anything but the delimiter; INBOX in any
/// case.
pub fn folder_matches(pattern: &str, name: &str, delimiter: Option<char>) -> bool {
    let (p, n) = if name.len() >= 5
        && name[..5].eq_ignore_ascii_case("INBOX")
        && pattern.len() >= 5
        && pattern[..5].eq_ignore_ascii_case("INBOX")
    {
        (
            format!("INBOX{}", &pattern[5..]),
            format!("INBOX{}", &name[5..]),
        )
    } else {
        (pattern.to_string(), name.to_string())
    };
    let p: Vec<char> = p.chars().collect();
    let n: Vec<char> = n.chars().collect();
    // Dynamic programming over (pattern position, name position).
    let mut matches = vec![vec![false; n.len() + 1]; p.len() + 1];
    matches[p.len()][n.len()] = true;
    for i in (0..p.len()).rev() {
        for j in (0..=n.len()).rev() {
            matches[i][j] = match p[i] {
                '*' => matches[i + 1][j] || (j < n.len() && matches[i][j + 1]),
                '%' => {
                    matches[i + 1][j]
                        || (j < n.len() && Some(n[j]) != delimiter && matches[i][j + 1])
                }
                c => j < n.len() && n[j] == c && matches[i + 1][j + 1],
            };
        }
    }
    matches[0][0]
}

/// One sync pass. Holds DIR/.mailbot/lock for its duration (held →
/// ErrorKind::Locked, exit 75). `on_new` is called for each new local
/// message as soon as its file is in place.
pub fn run(options: &Options, on_new: &mut dyn FnMut(&NewMessage)) -> Result<Report> {
    run_tuned(options, &Tuning::default(), on_new, &mut |_| {})
}

/// [`run`] with [`Tuning`], reporting progress to `on_event`.
pub fn run_tuned(
    options: &Options,
    tuning: &Tuning,
    on_new: &mut dyn FnMut(&NewMessage),
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Report> {
    let _lock = lock(&options.maildir)?;
    let mut session = connect(options, tuning)?;
    let report = pass(&mut session, options, tuning, on_new, on_event)?;
    session.logout_without_waiting();
    Ok(report)
}

/// A pass, then stay connected on `folder` (normally INBOX) with IDLE and
/// fetch new mail as it arrives, calling `on_new`; re-issue IDLE before
/// 29 minutes; return Ok when `keep_going()` is false (checked at least
/// every second, so IDLE must use a short read timeout or DONE on a timer).
///
/// A lost connection is retried (waiting 1 s, doubling up to 5 minutes);
/// other failures end the watch with their error.
pub fn watch(
    options: &Options,
    folder: &str,
    on_new: &mut dyn FnMut(&NewMessage),
    keep_going: &dyn Fn() -> bool,
) -> Result<Report> {
    watch_tuned(
        options,
        &Tuning::default(),
        folder,
        on_new,
        &mut |_| {},
        keep_going,
    )
}

/// [`watch`] with [`Tuning`], reporting progress to `on_event`.
pub fn watch_tuned(
    options: &Options,
    tuning: &Tuning,
    folder: &str,
    on_new: &mut dyn FnMut(&NewMessage),
    on_event: &mut dyn FnMut(Event<'_>),
    keep_going: &dyn Fn() -> bool,
) -> Result<Report> {
    let _lock = lock(&options.maildir)?;
    let mut report = Report::default();
    let mut wait = Duration::from_secs(1);
    while keep_going() {
        let mut connected = false;
        match watch_session(
            options,
            tuning,
            folder,
            on_new,
            on_event,
            keep_going,
            &mut report,
            &mut connected,
        ) {
            Ok(()) => break,
            // The caller asked to stop: no reconnecting.
            Err(e) if tuning.check_stop().is_err() => return Err(e),
            Err(e) if e.kind() == ErrorKind::Temporary => {
                if connected {
                    wait = Duration::from_secs(1);
                }
                tracing::warn!(
                    "{}; reconnecting in {} s",
                    crate::error::chain(&e),
                    wait.as_secs()
                );
                let until = std::time::Instant::now() + wait;
                while keep_going() && std::time::Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(200));
                }
                wait = (wait * 2).min(Duration::from_secs(300));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(report)
}

/// How long one IDLE may last before it is renewed (servers drop an IDLE
/// after 30 minutes; RFC 2177 asks clients to renew before 29).
const IDLE_RENEW: Duration = Duration::from_secs(28 * 60);

#[allow(clippy::too_many_arguments)]
fn watch_session(
    options: &Options,
    tuning: &Tuning,
    folder: &str,
    on_new: &mut dyn FnMut(&NewMessage),
    on_event: &mut dyn FnMut(Event<'_>),
    keep_going: &dyn Fn() -> bool,
    report: &mut Report,
    connected: &mut bool,
) -> Result<()> {
    let mut session = connect(options, tuning)?;
    let first = pass(&mut session, options, tuning, on_new, on_event)?;
    *connected = true;
    for f in &first.folders {
        report.merge(f);
    }
    let mailbox = session
        .list("", &imap::encode_mailbox_name(folder))?
        .into_iter()
        .find(|m| m.selectable())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Refused,
                session.object().to_string(),
                format!("no folder {folder:?} to watch"),
            )
        })?;
    let local = local_folder(
        &options.maildir,
        options.layout,
        &mailbox.name,
        mailbox.delimiter,
    );
    loop {
        let done = folder::sync_folder(
            &mut session,
            options,
            tuning,
            &mailbox,
            &local,
            on_new,
            on_event,
        )?
        .report;
        report.merge(&done);
        on_event(Event::FolderDone(&done));
        if let Some(every) = tuning.poll_every {
            let until = std::time::Instant::now() + every;
            while std::time::Instant::now() < until && keep_going() {
                std::thread::sleep(every.min(Duration::from_millis(200)));
            }
            if !keep_going() {
                session.logout();
                return Ok(());
            }
            continue;
        }
        match session.idle(Duration::from_secs(1), IDLE_RENEW, keep_going)? {
            imap::IdleEnd::Changed | imap::IdleEnd::Expired => {}
            imap::IdleEnd::Stopped => {
                session.logout();
                return Ok(());
            }
        }
    }
}

/// Connects and logs in. QRESYNC is enabled by the first SELECT (a pass
/// where no folder changed selects none); the certificate store is read
/// while the server starts its side of the connection.
fn connect(options: &Options, tuning: &Tuning) -> Result<Session> {
    let mut session = Session::connect_then_configure(
        &options.url,
        &mut || crate::tls::client_config(&options.tls),
        &options.auth,
        options.timeout,
        options.tls.allow_plaintext_auth,
    )?;
    session.disable_capabilities(&tuning.disable_extensions);
    Ok(session)
}

/// Takes `DIR/.mailbot/lock` (creating the maildir and `.mailbot` when
/// missing); held until the file is dropped.
pub fn lock(maildir: &Path) -> Result<File> {
    let dir = maildir.join(".mailbot");
    crate::private::create_dir_all(&dir).map_err(|e| Error::writing(&dir, e))?;
    let path = dir.join("lock");
    crate::lockfile::try_lock(
        &path,
        &maildir.display().to_string(),
        &format!(
            "another mail-sync is running on this maildir ({} is held)",
            path.display()
        ),
    )
}

/// With `--push`/`--both`: the local folders no server folder maps to
/// that hold messages to upload are created on the server (as mbsync's
/// `Create Far` does), so their messages go up. A local name that does
/// not map back to exactly one server name is a failed report, not a
/// guess.
fn create_local_only_folders(
    session: &mut Session,
    options: &Options,
    all: &[Mailbox],
) -> Result<(Vec<Mailbox>, Vec<FolderReport>)> {
    let delimiter = all
        .iter()
        .find(|m| m.name == "INBOX")
        .or(all.first())
        .and_then(|m| m.delimiter);
    let mapped: std::collections::HashSet<PathBuf> = all
        .iter()
        .map(|m| local_folder(&options.maildir, options.layout, &m.name, m.delimiter))
        .collect();
    let mut created = Vec::new();
    let mut failed = Vec::new();
    let mut unmapped = Vec::new();
    for (local, parts) in local_folders(&options.maildir, options.layout) {
        if mapped.contains(&local) || !has_messages_to_upload(&local)? {
            continue;
        }
        let name = match (parts.len(), delimiter) {
            (1, _) => Some(parts[0].clone()),
            (_, Some(d)) => Some(parts.join(&d.to_string())),
            (_, None) => None,
        }
        .filter(|n| local_folder(&options.maildir, options.layout, n, delimiter) == local);
        let Some(name) = name else {
            // Patterns name server folders; one that has no name is only
            // worth a word when every folder is synced.
            if options.folders.is_empty() {
                unmapped.push(local);
            }
            continue;
        };
        if !options.folders.is_empty()
            && !options
                .folders
                .iter()
                .any(|p| folder_matches(p, &name, delimiter))
        {
            continue;
        }
        let raw = imap::encode_mailbox_name(&name);
        session.create(&raw)?;
        tracing::info!("{name}: created on the server for {}", local.display());
        match session
            .list("", &raw)?
            .into_iter()
            .find(|m| m.name == name && m.selectable())
        {
            Some(m) => created.push(m),
            None => failed.push(FolderReport::failed(
                name.clone(),
                local.clone(),
                format!(
                    "{}: created, but LIST does not show it as selectable",
                    session.object()
                ),
            )),
        }
    }
    note_unmapped(&options.maildir, &unmapped);
    Ok((created, failed))
}

/// Local folders with messages to upload whose server name cannot be
/// told from their path (a `%41` typed by hand, a second `inbox` beside
/// `INBOX`) are skipped. Each is reported once, as a warning, the first
/// run that finds it (then only with `-v`): `DIR/.mailbot/sync/unmapped`
/// lists those already reported. Nothing to fix on the server, so no
/// failure (exit 0).
fn note_unmapped(maildir: &Path, unmapped: &[PathBuf]) {
    let record = state::state_dir(maildir).join("unmapped");
    let told: std::collections::HashSet<String> = fs::read_to_string(&record)
        .map(|t| t.lines().map(str::to_string).collect())
        .unwrap_or_default();
    let mut now = Vec::new();
    for local in unmapped {
        let rel = local
            .strip_prefix(maildir)
            .unwrap_or(local)
            .to_string_lossy()
            .into_owned();
        let line = serde_json::to_string(&rel).unwrap_or_default();
        let why = "holds messages to upload, but no server folder name maps to it; skipped";
        if told.contains(&line) {
            tracing::info!("{}: {why}", local.display());
        } else {
            tracing::warn!(
                "{}: {why} (rename it to upload them; this is said once)",
                local.display()
            );
        }
        now.push(line);
    }
    if now.iter().collect::<std::collections::HashSet<_>>() != told.iter().collect() {
        let mut text = now.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        if let Err(e) = state::write_file(&record, text.as_bytes()) {
            tracing::warn!("{}", crate::error::chain(&e));
        }
    }
}

/// The local maildir folders under `maildir` (INBOX's among them in the
/// verbatim layout, where it is a folder like the others), each with the
/// parts of its name unescaped (see [`local_folder`]), in name order.
fn local_folders(maildir: &Path, layout: Layout) -> Vec<(PathBuf, Vec<String>)> {
    let is_maildir = |p: &Path| p.join("cur").is_dir() || p.join("new").is_dir();
    let mut out = Vec::new();
    match layout {
        Layout::MaildirPlusPlus => {
            for entry in sorted_dirs(maildir) {
                let Some(name) = entry.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let Some(rest) = name.strip_prefix('.') else {
                    continue;
                };
                if matches!(rest, "" | "." | "mailbot" | "notmuch") || !is_maildir(&entry) {
                    continue;
                }
                if let Some(parts) = rest.split('.').map(unescape_part).collect() {
                    out.push((entry, parts));
                }
            }
        }
        Layout::Verbatim => {
            let mut stack = vec![(maildir.to_path_buf(), Vec::<String>::new())];
            while let Some((dir, parts)) = stack.pop() {
                for entry in sorted_dirs(&dir).into_iter().rev() {
                    let Some(name) = entry.file_name().and_then(|n| n.to_str()) else {
                        continue;
                    };
                    // Hidden folders (.mailbot, .notmuch) and a maildir's
                    // own subfolders are no mail folders.
                    if name.starts_with('.') || matches!(name, "cur" | "new" | "tmp") {
                        continue;
                    }
                    let Some(part) = unescape_part(name) else {
                        continue;
                    };
                    let mut here = parts.clone();
                    here.push(part);
                    if is_maildir(&entry) {
                        out.push((entry.clone(), here.clone()));
                    }
                    stack.push((entry, here));
                }
            }
            out.sort();
        }
    }
    out
}

/// The subfolders of `dir`, sorted (none when it cannot be read).
fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

/// A name part with its `%XX` escapes decoded (`%` alone is the empty
/// part); None when the bytes are not UTF-8.
fn unescape_part(part: &str) -> Option<String> {
    if part == "%" {
        return Some(String::new());
    }
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = part.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Whether a local folder holds a message no server has seen (no `U=`).
fn has_messages_to_upload(folder: &Path) -> Result<bool> {
    Ok(crate::maildir::Maildir::at(folder)
        .list()?
        .iter()
        .any(|e| names::Unique::parse(&e.unique).uid.is_none()))
}

/// The folders to sync, INBOX first, and a failed report for each
/// wildcard-free pattern that names no folder.
fn chosen_folders(
    session: &Session,
    all: &[Mailbox],
    patterns: &[String],
) -> (Vec<Mailbox>, Vec<FolderReport>) {
    let mut chosen: Vec<Mailbox> = all
        .iter()
        .filter(|m| m.selectable())
        .filter(|m| {
            patterns.is_empty()
                || patterns
                    .iter()
                    .any(|p| folder_matches(p, &m.name, m.delimiter))
        })
        .cloned()
        .collect();
    chosen.sort_by(|a, b| {
        let inbox = |m: &Mailbox| !m.name.eq_ignore_ascii_case("INBOX");
        (inbox(a), &a.name).cmp(&(inbox(b), &b.name))
    });
    let mut missing = Vec::new();
    for p in patterns {
        if !p.contains(['*', '%']) && !all.iter().any(|m| folder_matches(p, &m.name, m.delimiter)) {
            missing.push(FolderReport::failed(
                p.clone(),
                PathBuf::new(),
                format!("{}: no such folder on the server", session.object()),
            ));
        }
    }
    (chosen, missing)
}

fn pass(
    session: &mut Session,
    options: &Options,
    tuning: &Tuning,
    on_new: &mut dyn FnMut(&NewMessage),
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Report> {
    // Every folder and its STATUS in one round trip (LIST-STATUS, else
    // STATUS pipelined): what tells an unchanged folder without a SELECT.
    let items = if session.has_capability("CONDSTORE") {
        "UIDVALIDITY UIDNEXT MESSAGES HIGHESTMODSEQ"
    } else {
        "UIDVALIDITY UIDNEXT MESSAGES"
    };
    let (all, statuses) = session.list_with_status(items)?;
    let mut unchanged = Unchanged::load(&options.maildir);
    let unchanged_before = unchanged.clone();
    let (mut mailboxes, mut missing) = chosen_folders(session, &all, &options.folders);
    if options.direction.pushes() {
        let (created, failed) = create_local_only_folders(session, options, &all)?;
        // A pattern naming a folder only created now named something.
        missing.retain(|m| {
            !created
                .iter()
                .any(|c| folder_matches(&m.folder, &c.name, c.delimiter))
        });
        mailboxes.extend(created);
        missing.extend(failed);
    }
    let mut report = Report::default();
    for m in missing {
        on_event(Event::FolderDone(&m));
        report.folders.push(m);
    }
    let mut taken: HashMap<PathBuf, String> = HashMap::new();
    for mailbox in &mailboxes {
        let local = local_folder(
            &options.maildir,
            options.layout,
            &mailbox.name,
            mailbox.delimiter,
        );
        let outcome = match taken.get(&local) {
            Some(other) => Err(Error::new(
                ErrorKind::BadInput,
                local.display().to_string(),
                format!("already the local folder of {other:?}"),
            )),
            None => {
                taken.insert(local.clone(), mailbox.name.clone());
                let status = imap::status_of(&statuses, &mailbox.raw);
                let pushes = options.direction.pushes();
                if unchanged.can_skip(&options.maildir, &mailbox.name, &local, status, pushes) {
                    tracing::debug!("{}: unchanged on both sides; not looked at", mailbox.name);
                    on_event(Event::FolderStarted {
                        folder: &mailbox.name,
                    });
                    Ok(FolderReport {
                        folder: mailbox.name.clone(),
                        local: local.clone(),
                        ..FolderReport::default()
                    })
                } else {
                    let done = folder::sync_folder(
                        session, options, tuning, mailbox, &local, on_new, on_event,
                    );
                    match &done {
                        Ok(folder::Outcome {
                            entry: Some(entry), ..
                        }) => {
                            unchanged
                                .folders
                                .insert(mailbox.name.clone(), entry.clone());
                        }
                        _ => {
                            unchanged.folders.remove(&mailbox.name);
                        }
                    }
                    done.map(|o| o.report)
                }
            }
        };
        let mut done = match outcome {
            Ok(r) => r,
            Err(e) if breaks_session(&e) => {
                save_unchanged(&options.maildir, &unchanged, &unchanged_before);
                return Err(e);
            }
            Err(e) => {
                FolderReport::failed(mailbox.name.clone(), local.clone(), crate::error::chain(&e))
            }
        };
        done.special_use = special_use(&mailbox.attributes);
        on_event(Event::FolderDone(&done));
        report.folders.push(done);
    }
    save_unchanged(&options.maildir, &unchanged, &unchanged_before);
    Ok(report)
}

/// Writes [`Unchanged`] when the pass changed it.
fn save_unchanged(maildir: &Path, now: &Unchanged, before: &Unchanged) {
    if now != before {
        now.save(maildir);
    }
}

/// The RFC 6154 special-use attribute among a LIST response's attributes.
fn special_use(attributes: &[String]) -> Option<String> {
    const USES: [&str; 7] = [
        "\\All",
        "\\Archive",
        "\\Drafts",
        "\\Flagged",
        "\\Junk",
        "\\Sent",
        "\\Trash",
    ];
    attributes.iter().find_map(|a| {
        USES.iter()
            .find(|u| u.eq_ignore_ascii_case(a))
            .map(|u| u.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_folders_in_both_layouts() {
        let root = Path::new("/m");
        let v = |name: &str, d: Option<char>| local_folder(root, Layout::Verbatim, name, d);
        let p = |name: &str, d: Option<char>| local_folder(root, Layout::MaildirPlusPlus, name, d);
        assert_eq!(v("INBOX", Some('.')), Path::new("/m/INBOX"));
        assert_eq!(v("inbox", Some('/')), Path::new("/m/INBOX"));
        assert_eq!(
            v("Re\u{e7}us.Factures", Some('.')),
            Path::new("/m/Re\u{e7}us/Factures")
        );
        assert_eq!(v("Lists/rust", Some('/')), Path::new("/m/Lists/rust"));
        assert_eq!(v("a/b", Some('.')), Path::new("/m/a%2Fb"));
        assert_eq!(v("INBOX.new", Some('.')), Path::new("/m/INBOX/%6Eew"));
        assert_eq!(v(".hidden", Some('/')), Path::new("/m/%2Ehidden"));
        assert_eq!(v("..", None), Path::new("/m/%2E."));
        assert_eq!(v("a..b", Some('.')), Path::new("/m/a/%/b"));
        assert_eq!(p("INBOX", Some('.')), Path::new("/m"));
        assert_eq!(
            p("Re\u{e7}us.Factures", Some('.')),
            Path::new("/m/.Re\u{e7}us.Factures")
        );
        assert_eq!(p("Lists/v1.2", Some('/')), Path::new("/m/.Lists.v1%2E2"));
        assert_eq!(p("INBOX/Sub", Some('/')), Path::new("/m/.INBOX.Sub"));
        assert_eq!(p("notmuch", Some('.')), Path::new("/m/.%6Eotmuch"));
        assert_eq!(p("mailbot", Some('.')), Path::new("/m/.%6Dailbot"));
        assert_eq!(p("mailbot.x", Some('.')), Path::new("/m/.mailbot.x"));
    }

    /// What `--push` reads back from local folder names is the server
    /// name they were made from, escapes and all.
    #[test]
    fn local_folder_names_map_back_to_server_names() {
        let cases: [(Layout, char, &[&str]); 3] = [
            (
                Layout::Verbatim,
                '.',
                &["Re\u{e7}us.Factures", "a/b", "INBOX.new", "a..b", "x.tmp"],
            ),
            (
                Layout::Verbatim,
                '/',
                &[".hidden", "Lists/rust", "INBOX/Sub"],
            ),
            (
                Layout::MaildirPlusPlus,
                '/',
                &["Lists/v1.2", "notmuch", "mailbot/x"],
            ),
        ];
        for (layout, d, names) in cases {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            for name in names {
                fs::create_dir_all(local_folder(root, layout, name, Some(d)).join("cur")).unwrap();
            }
            // The state folder and the index are no mail folders.
            fs::create_dir_all(root.join(".mailbot/sync")).unwrap();
            fs::create_dir_all(root.join(".notmuch/xapian")).unwrap();
            let mut found: Vec<String> = local_folders(root, layout)
                .into_iter()
                .map(|(_, parts)| parts.join(&d.to_string()))
                .collect();
            found.sort();
            let mut want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            want.sort();
            assert_eq!(found, want, "{layout:?} {d}");
        }
        // A folder made by hand with a literal `%XX` reads back as another
        // name, which does not map to it: --push reports it, never guesses.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("100%41");
        fs::create_dir_all(path.join("cur")).unwrap();
        let (listed, parts) = local_folders(dir.path(), Layout::Verbatim).remove(0);
        assert_eq!(
            (listed.as_path(), parts.as_slice()),
            (path.as_path(), &["100A".to_string()][..])
        );
        assert_ne!(
            local_folder(dir.path(), Layout::Verbatim, "100A", Some('/')),
            path
        );
    }

    #[test]
    fn patterns_like_imap_list() {
        let cases = [
            ("*", "INBOX", Some('.'), true),
            ("INBOX", "INBOX", Some('.'), true),
            ("inbox", "INBOX", Some('.'), true),
            ("inbox.*", "INBOX.x", Some('.'), true),
            ("Sent", "sent", Some('.'), false),
            ("%", "Lists.rust", Some('.'), false),
            ("Lists.%", "Lists.rust", Some('.'), true),
            ("Lists.%", "Lists.rust.old", Some('.'), false),
            ("Lists*", "Lists.rust.old", Some('.'), true),
            ("Re\u{e7}us*", "Re\u{e7}us.Factures", Some('.'), true),
            ("*Fact*", "Re\u{e7}us.Factures", Some('.'), true),
            ("", "x", None, false),
        ];
        for (pattern, name, d, want) in cases {
            assert_eq!(folder_matches(pattern, name, d), want, "{pattern} {name}");
        }
    }

    #[test]
    fn the_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path()).unwrap();
        let err = lock(dir.path()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Locked);
        assert_eq!(err.exit().code(), 75);
        assert!(err.to_string().contains(".mailbot/lock is held"), "{err}");
        drop(held);
        lock(dir.path()).unwrap();
    }
}
