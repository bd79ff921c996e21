//! One pass of the loop for one account: sync, find the files not seen
//! before, index them, match them against the rules, act, and record what
//! was done (see [`super::state`] for the exactly-once contract).

use std::fs;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::rules::{Action, Rule, glob};
use super::state::{self, Record, State};
use crate::compose::{self, Address, Attachment, Draft, Pins};
use crate::dissect::{self, Dissection, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::exit::Exit;
use crate::index::{Index, IndexOptions, TagChange};
use crate::maildir::{self, Maildir};
use crate::smtp::{self, Envelope, Retry, Sender, SmtpUrl};
use crate::sync;

/// How to send replies and forwards (and the selftest's message).
#[derive(Debug, Clone)]
pub struct Transport {
    /// The submission server.
    pub url: SmtpUrl,
    /// TLS, credentials, timeout.
    pub settings: smtp::Settings,
}

impl Transport {
    /// Sends `message` to `envelope` with the usual retries.
    pub fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<()> {
        let mut sender = Sender::new(
            self.url.clone(),
            self.settings.clone(),
            Retry {
                retries: 2,
                wait: Duration::from_millis(500),
            },
        );
        sender.send(envelope, message)?;
        sender.finish();
        Ok(())
    }

    /// Sends `message` once, every wait on the server cut to what is left
    /// before `deadline` (the selftest's and probe's `--timeout`: a
    /// server that takes the connection and says nothing must not hold a
    /// monitoring check past its limit, as retries with the full network
    /// timeout would).
    pub fn send_before(
        &self,
        envelope: &Envelope,
        message: &[u8],
        deadline: Instant,
    ) -> Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut settings = self.settings.clone();
        settings.timeout = settings.timeout.min(left).max(Duration::from_millis(100));
        let mut sender = Sender::new(
            self.url.clone(),
            settings,
            Retry {
                retries: 0,
                wait: Duration::ZERO,
            },
        );
        sender.send(envelope, message)?;
        sender.finish();
        Ok(())
    }
}

/// One account as mail-bot sees it.
#[derive(Debug, Clone)]
pub struct Account {
    /// Its name in the configuration (`local` for the embedded default).
    pub name: String,
    /// The local maildir (the notmuch database lives in it).
    pub maildir: PathBuf,
    /// The account's own address.
    pub address: Option<String>,
    /// How server folders map onto local ones.
    pub layout: sync::Layout,
    /// Where to sync from; `None` for a local maildir only.
    pub sync: Option<sync::Options>,
    /// Where replies and forwards go; `None` when the account has no SMTP.
    pub transport: Option<Transport>,
    /// The first run acts on mail dated from then on (seconds since the
    /// epoch); `None`: on none of the mail already there.
    pub since: Option<i64>,
    /// How long a temporary sync failure stays quiet.
    pub alert_after: Duration,
    /// The least time between two automatic replies to one sender.
    pub reply_interval: Duration,
    /// How messages mail-bot itself puts into the local maildir store
    /// their line ends (the account's `line_ends`; the sync's own
    /// setting is in [`Account::sync`]).
    pub line_ends: crate::maildir::LineEnds,
}

/// How long a temporary failure (server down) is kept quiet by default.
pub const DEFAULT_ALERT_AFTER: Duration = Duration::from_secs(3600);

/// The least time between two replies to one sender by default, as
/// vacation(1).
pub const DEFAULT_REPLY_INTERVAL: Duration = Duration::from_secs(7 * 86_400);

/// The header that marks a message of `mail-bot selftest` or `probe`:
/// rules never act on one, whenever it arrives.
pub const PROBE_HEADER: &str = "X-Mailbot-Selftest";

/// The tag that means "not handled yet": mail-bot removes it once the
/// rules are done with a message.
pub const NEW_TAG: &str = "new";

impl Account {
    /// The local folder of the server folder `name`.
    pub fn folder(&self, name: &str) -> PathBuf {
        sync::local_folder(&self.maildir, self.layout, name, Some('/'))
    }
}

/// What a run may do.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Say what would be done; act on nothing and record nothing.
    pub dry_run: bool,
    /// Skip the sync step (the files are already local).
    pub no_sync: bool,
    /// Tags for newly indexed messages.
    pub index: IndexOptions,
    /// `--backfill [DATE]`: also act on mail already recorded (or that
    /// the first run would record), dated from then on; `i64::MIN` for
    /// all of it.
    pub backfill: Option<i64>,
}

/// One rule's outcome on one message.
#[derive(Debug, Clone, Serialize)]
pub struct Acted {
    /// The rule.
    pub rule: String,
    /// The message file (where it ended up after a move).
    pub path: PathBuf,
    /// sha256 of the message.
    pub key: String,
    /// Subject, for people reading the summary.
    pub subject: Option<String>,
    /// The actions, in order.
    pub actions: Vec<String>,
    /// Files written by dissect.
    pub files: Vec<PathBuf>,
    /// Commands printed.
    pub printed: Vec<String>,
    /// For a failure: the error; for a success: `None`.
    pub error: Option<String>,
    /// Failures so far (0 on success).
    pub attempt: u32,
    /// True when this failure was the last try: tagged `failed`.
    pub gave_up: bool,
    /// True for `--dry-run`: nothing was done.
    pub dry_run: bool,
    /// Why an action was left out on purpose (a reply to an automatic
    /// message, to a list, or too soon after the last one).
    pub skipped: Vec<String>,
}

/// What a run did for one account.
#[derive(Debug, Default, Serialize)]
pub struct RunReport {
    /// The account.
    pub account: String,
    /// Messages the sync step fetched.
    pub fetched: usize,
    /// Why the sync step failed, when it did (local files were still processed).
    pub sync_error: Option<String>,
    /// Exit code of the sync failure.
    #[serde(skip)]
    pub sync_exit: Option<Exit>,
    /// True when the sync failed only because another sync (a
    /// `mail-sync --watch`, a `mail-bot watch`) holds the maildir: not
    /// worth a line in cron's mail.
    #[serde(skip)]
    pub sync_locked: bool,
    /// True when the sync failure is temporary and has not lasted longer
    /// than the account's `alert_after`: not worth a line in cron's mail.
    #[serde(skip)]
    pub sync_quiet: bool,
    /// On the first run: how many messages already there were recorded as
    /// seen without being acted on.
    pub baseline: Option<usize>,
    /// Files looked at for the first time (or again, for a retry).
    pub examined: usize,
    /// Rules that acted (or failed) on a message.
    pub acted: Vec<Acted>,
}

impl RunReport {
    /// Successes.
    pub fn done(&self) -> usize {
        self.acted.iter().filter(|a| a.error.is_none()).count()
    }

    /// Failures (to be retried or given up).
    pub fn failed(&self) -> usize {
        self.acted.iter().filter(|a| a.error.is_some()).count()
    }

    /// 0 when all went well, 1 when an action failed, the sync failure's
    /// code when only the sync failed.
    pub fn exit(&self) -> Exit {
        let mut exit = Exit::Ok;
        if self.failed() > 0 {
            exit = Exit::Partial;
        }
        if let Some(e) = self.sync_exit {
            exit = exit.worse(e);
        }
        exit
    }
}

/// A message file found in the maildir.
#[derive(Debug, Clone)]
pub struct Found {
    /// The file.
    pub path: PathBuf,
    /// Its unique name (before `:2,`).
    pub unique: String,
    /// The folder, as a server name (`INBOX`, `Archive/2024`).
    pub folder: String,
}

/// Every message file of the maildir with its folder name. Skips
/// mailbot's and notmuch's own folders.
pub fn walk(maildir: &Path, layout: sync::Layout) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    walk_into(maildir, maildir, layout, &mut out)?;
    Ok(out)
}

fn walk_into(root: &Path, dir: &Path, layout: sync::Layout, out: &mut Vec<Found>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::reading(dir, e)),
    };
    let mut subdirs = Vec::new();
    let mut is_maildir = false;
    for entry in entries {
        let entry = entry.map_err(|e| Error::reading(dir, e))?;
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name();
        let name = name.to_string_lossy();
        match name.as_ref() {
            "cur" | "new" => is_maildir = true,
            "tmp" | ".mailbot" | ".notmuch" => {}
            n if n.starts_with('.') && layout == sync::Layout::Verbatim => {}
            _ => subdirs.push(entry.path()),
        }
    }
    if is_maildir {
        let folder = folder_name(root, dir, layout);
        let md = Maildir::at(dir);
        for entry in md.list()? {
            out.push(Found {
                path: entry.path,
                unique: entry.unique,
                folder: folder.clone(),
            });
        }
    }
    subdirs.sort();
    for sub in subdirs {
        walk_into(root, &sub, layout, out)?;
    }
    Ok(())
}

fn folder_name(root: &Path, dir: &Path, layout: sync::Layout) -> String {
    let rel = dir.strip_prefix(root).unwrap_or(dir);
    let rel = rel.to_string_lossy();
    match layout {
        sync::Layout::Verbatim => rel.into_owned(),
        sync::Layout::MaildirPlusPlus => {
            if rel.is_empty() {
                "INBOX".into()
            } else {
                rel.trim_start_matches('.').replace('.', "/")
            }
        }
    }
}

/// sha256 of `bytes`, hex: the key a message is known by.
pub fn content_key(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The rules that apply to `account`.
pub fn rules_for<'a>(rules: &'a [Rule], account: &str) -> Vec<&'a Rule> {
    rules
        .iter()
        .filter(|r| r.account.as_deref().is_none_or(|a| a == account))
        .collect()
}

/// Refuses rules this account cannot carry out (reply or forward without
/// SMTP), before anything is done: a configuration error (exit 78).
pub fn check_rules(account: &Account, rules: &[&Rule]) -> Result<()> {
    for rule in rules {
        for action in &rule.actions {
            if matches!(action, Action::Reply { .. } | Action::Forward { .. })
                && (account.transport.is_none() || account.address.is_none())
            {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("rule {:?}", rule.name),
                    format!(
                        "{} needs the account {:?} to have smtp and address",
                        action.word(),
                        account.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Runs one pass for `account`. `out` receives the printed commands (one
/// per line).
///
/// With `dry_run` nothing changes anywhere: no lock is taken, nothing is
/// fetched, the journal and the index are only read, no file is written;
/// the report says what each rule would do.
pub fn run(
    account: &Account,
    rules: &[Rule],
    options: &RunOptions,
    out: &mut dyn Write,
) -> Result<RunReport> {
    let dir = state::state_dir(&account.maildir);
    let _lock = if options.dry_run {
        None
    } else {
        Some(state::lock(&dir)?)
    };
    let mut report = RunReport {
        account: account.name.clone(),
        ..RunReport::default()
    };
    let rules = rules_for(rules, &account.name);
    check_rules(account, &rules)?;
    let mut sync_failed = false;
    if let (Some(sync_options), false) = (&account.sync, options.no_sync || options.dry_run) {
        let outcome = sync::run(sync_options, &mut |_| {});
        // A sync held by `mail-sync --watch` or `mail-bot watch` is not a
        // failure: that one fills the maildir, this run acts on it.
        sync_failed = matches!(&outcome, Err(e) if !e.is_locked());
        match &outcome {
            Ok(r) => {
                report.fetched = r.folders.iter().map(|f| f.fetched).sum();
                if let Err(e) = save_special_uses(&account.maildir, &r.folders) {
                    tracing::warn!("{e}");
                }
                if let Some(f) = r.folders.iter().find(|f| f.error.is_some()) {
                    report.sync_error = Some(format!(
                        "{}: {}",
                        f.folder,
                        f.error.clone().unwrap_or_default()
                    ));
                    report.sync_exit = Some(r.exit());
                }
            }
            Err(e) => {
                report.sync_exit = Some(e.exit());
                report.sync_locked = e.is_locked();
                report.sync_error = Some(e.to_string());
            }
        }
        let temporary = matches!(&outcome, Err(e) if e.kind() == ErrorKind::Temporary);
        report.sync_quiet = outage(&dir, temporary, account.alert_after);
    }
    let mut state = if options.dry_run {
        State::peek(&dir)?
    } else {
        State::open(&dir)?
    };
    let fresh = state.is_fresh();
    if fresh && sync_failed && options.backfill.is_none() {
        // The first run records the mail already on the server as seen.
        // Without a sync there is nothing to record: a baseline of what
        // happens to be local would make the next run, once the server
        // answers (or the password is fixed), act on all the old mail.
        return Ok(report);
    }
    let pending = state.pending_keys();
    let found = walk(&account.maildir, account.layout)?;
    let specials = special_uses(&account.maildir);
    let mut candidates: Vec<Found> = found
        .into_iter()
        .filter(|f| {
            options.backfill.is_some()
                || match state.key_of(&f.unique) {
                    None => true,
                    Some(k) => pending.contains(k),
                }
        })
        .collect();
    if let Some(since) = options.backfill {
        // On purpose: what is dated from then on, seen or not.
        candidates.retain(|f| dated_from(&f.path, since));
    } else if fresh {
        // The first run: the mail already there is recorded, not acted
        // on, unless it is dated from the account's `since` on.
        let (new, old): (Vec<Found>, Vec<Found>) = candidates
            .into_iter()
            .partition(|f| account.since.is_some_and(|s| dated_from(&f.path, s)));
        report.baseline = Some(old.len());
        if !options.dry_run {
            record_baseline(account, options, &mut state, &old)?;
        }
        candidates = new;
    }
    report.examined = candidates.len();
    if candidates.is_empty() {
        return Ok(report);
    }
    let index = if options.dry_run {
        Index::open_read_only(&account.maildir).ok()
    } else {
        let mut index = Index::open(&account.maildir, options.index.clone())?;
        let paths: Vec<PathBuf> = candidates.iter().map(|c| c.path.clone()).collect();
        let added = index.add(&paths)?;
        for (path, err) in &added.failed {
            tracing::warn!("{}: not indexed: {err}", path.display());
        }
        Some(index)
    };
    let mut worker = Worker {
        account,
        open_index: index,
        options,
        out,
        moved_out: None,
        specials,
    };
    for found in candidates {
        let acted = worker.message(&found, &rules, &mut state)?;
        let needs_disk = acted.iter().any(|a| a.error.is_none() && !a.dry_run);
        if needs_disk {
            for a in &acted {
                for f in &a.files {
                    if let Some(parent) = f.parent() {
                        dissect::sync_output(parent)?;
                        break;
                    }
                }
            }
        }
        if !options.dry_run {
            state.commit()?;
        }
        report.acted.extend(acted);
    }
    Ok(report)
}

/// Whether the message at `path` is dated `since` or later: its `Date:`,
/// else (no readable date) its file's modification time.
fn dated_from(path: &Path, since: i64) -> bool {
    if since == i64::MIN {
        return true;
    }
    let date = fs::read(path).ok().and_then(|bytes| {
        let block = crate::mime::header::split_header_block(&bytes);
        let value = block.headers.get_unfolded("date")?;
        super::date::parse_rfc5322(&String::from_utf8_lossy(&value))
    });
    let date = date.or_else(|| {
        let m = fs::metadata(path).ok()?.modified().ok()?;
        m.duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs() as i64)
    });
    date.is_some_and(|d| d >= since)
}

/// The first run's record of the mail already there: each file seen (by
/// its content's key), indexed without the `new` tag, and one baseline
/// record, written before any action.
fn record_baseline(
    account: &Account,
    options: &RunOptions,
    state: &mut State,
    old: &[Found],
) -> Result<()> {
    for f in old {
        let bytes = match fs::read(&f.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::reading(&f.path, e)),
        };
        state.record(Record::Seen {
            unique: f.unique.clone(),
            key: content_key(&bytes),
        });
    }
    state.record(Record::Baseline {
        count: old.len(),
        at: super::date::now(),
    });
    if !old.is_empty() {
        let quiet = IndexOptions {
            new_tags: Vec::new(),
            ..options.index.clone()
        };
        let mut index = Index::open(&account.maildir, quiet)?;
        let paths: Vec<PathBuf> = old.iter().map(|c| c.path.clone()).collect();
        index.add(&paths)?;
        // Tagged `new` by an earlier `mail-sync --index`: handled now.
        index.tag(
            &format!("tag:{NEW_TAG}"),
            &[TagChange::Remove(NEW_TAG.into())],
        )?;
        index.close()?;
    }
    state.commit()
}

/// Keeps the start of a temporary sync failure in `DIR/outage` (seconds
/// since the epoch) and forgets it after a good sync. True while the
/// failure has lasted no longer than `alert_after`.
fn outage(dir: &Path, temporary: bool, alert_after: Duration) -> bool {
    let path = dir.join("outage");
    if !temporary {
        let _ = fs::remove_file(&path);
        return false;
    }
    let now = super::date::now();
    let since = fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok());
    let since = match since {
        Some(s) => s,
        None => {
            if let Err(e) = crate::queue::write_atomically(&path, format!("{now}\n").as_bytes()) {
                tracing::warn!("{e}");
            }
            now
        }
    };
    now.saturating_sub(since) < alert_after.as_secs() as i64
}

/// `.mailbot/folders.json`: the special use the server gave each local
/// folder at the last sync, by the folder's path under the maildir.
fn save_special_uses(maildir: &Path, folders: &[sync::FolderReport]) -> Result<()> {
    let mut map = special_uses(maildir);
    for f in folders.iter().filter(|f| f.error.is_none()) {
        let rel = f.local.strip_prefix(maildir).unwrap_or(&f.local);
        let key = rel.to_string_lossy().into_owned();
        match &f.special_use {
            Some(u) => map.insert(key, u.clone()),
            None => map.remove(&key),
        };
    }
    let path = state::state_dir(maildir).join("folders.json");
    let text = serde_json::to_vec_pretty(&map).unwrap_or_default();
    crate::queue::write_atomically(&path, &text)
}

fn special_uses(maildir: &Path) -> std::collections::BTreeMap<String, String> {
    fs::read(state::state_dir(maildir).join("folders.json"))
        .ok()
        .and_then(|t| serde_json::from_slice(&t).ok())
        .unwrap_or_default()
}

/// Whether a folder is one of the special-use kind rules leave alone
/// unless they name it: `\Sent`, `\Junk`, `\Trash` or `\Drafts` as the
/// server said at the last sync, or by its name (the last level) when the
/// server said nothing (no SPECIAL-USE).
pub fn is_special_folder(server_use: Option<&str>, folder: &str) -> bool {
    if let Some(u) = server_use {
        return ["\\Sent", "\\Junk", "\\Trash", "\\Drafts"]
            .iter()
            .any(|s| s.eq_ignore_ascii_case(u));
    }
    let last = folder.rsplit(['/', '.']).next().unwrap_or(folder).trim();
    const NAMES: [&str; 14] = [
        "sent",
        "sent items",
        "sent messages",
        "sent mail",
        "junk",
        "junk e-mail",
        "junk email",
        "spam",
        "trash",
        "deleted items",
        "deleted messages",
        "bin",
        "drafts",
        "draft",
    ];
    NAMES.iter().any(|n| n.eq_ignore_ascii_case(last))
}

struct Worker<'a> {
    account: &'a Account,
    /// The database, open for writing; closed while a rule's command runs
    /// (the command may use notmuch itself) and opened again on demand.
    open_index: Option<Index>,
    options: &'a RunOptions,
    out: &'a mut dyn Write,
    /// Moves recorded for mail-sync, read on the first move of the pass.
    moved_out: Option<sync::state::MovedOutLog>,
    /// The special use of each local folder, from the last sync.
    specials: std::collections::BTreeMap<String, String>,
}

/// What the rules look at in a message.
struct Facts {
    bytes: Vec<u8>,
    key: String,
    dissection: Dissection,
    message_id: Option<String>,
}

impl Worker<'_> {
    fn index(&mut self) -> Result<&mut Index> {
        if self.open_index.is_none() {
            self.open_index = Some(if self.options.dry_run {
                Index::open_read_only(&self.account.maildir)?
            } else {
                Index::open(&self.account.maildir, self.options.index.clone())?
            });
        }
        Ok(self.open_index.as_mut().expect("opened above"))
    }

    /// Closes the database so that other writers (a rule's command
    /// running `notmuch tag`) are not kept waiting.
    fn release_index(&mut self) -> Result<()> {
        match self.open_index.take() {
            Some(index) => index.close(),
            None => Ok(()),
        }
    }

    fn message(&mut self, found: &Found, rules: &[&Rule], state: &mut State) -> Result<Vec<Acted>> {
        let bytes = match fs::read(&found.path) {
            Ok(b) => b,
            // Moved or expunged since the walk: the next run sees it where it is.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::reading(&found.path, e)),
        };
        let key = content_key(&bytes);
        if !self.options.dry_run {
            state.record(Record::Seen {
                unique: found.unique.clone(),
                key: key.clone(),
            });
        }
        let open: Vec<&Rule> = rules
            .iter()
            .copied()
            .filter(|r| !state.is_finished(&key, &r.name))
            .collect();
        if open.is_empty() {
            return Ok(Vec::new());
        }
        let block = crate::mime::header::split_header_block(&bytes);
        if block.headers.get(PROBE_HEADER).is_some() {
            // A selftest's or probe's own message, whenever it arrives.
            return Ok(Vec::new());
        }
        let dissection = dissect::dissect_bytes(&bytes, &dissect::Options::all());
        let message_id = dissection
            .headers
            .message_id
            .as_deref()
            .map(|m| {
                m.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
            .filter(|m| !m.is_empty());
        let facts = Facts {
            bytes,
            key,
            dissection,
            message_id,
        };
        let mut acted = Vec::new();
        let mut path = found.path.clone();
        for rule in open {
            if !self.matches(rule, found, &facts)? {
                continue;
            }
            let mut a = Acted {
                rule: rule.name.clone(),
                path: path.clone(),
                key: facts.key.clone(),
                subject: facts.dissection.headers.subject.clone(),
                actions: rule.actions.iter().map(|x| x.word().to_string()).collect(),
                files: Vec::new(),
                printed: Vec::new(),
                error: None,
                attempt: 0,
                gave_up: false,
                dry_run: self.options.dry_run,
                skipped: Vec::new(),
            };
            if self.options.dry_run {
                acted.push(a);
                continue;
            }
            match self.act(rule, found, &facts, &mut path, &mut a, state) {
                Ok(()) => {
                    a.path = path.clone();
                    state.record(Record::Done {
                        key: facts.key.clone(),
                        rule: rule.name.clone(),
                    });
                }
                Err(e) => {
                    let attempt = state.attempts(&facts.key, &rule.name) + 1;
                    a.error = Some(crate::error::chain(&e));
                    a.attempt = attempt;
                    state.record(Record::Failed {
                        key: facts.key.clone(),
                        rule: rule.name.clone(),
                        attempt,
                        error: a.error.clone().unwrap_or_default(),
                    });
                    if attempt >= rule.retries {
                        a.gave_up = true;
                        state.record(Record::GaveUp {
                            key: facts.key.clone(),
                            rule: rule.name.clone(),
                        });
                        if let Some(id) = &facts.message_id {
                            let failed = [TagChange::Add("failed".into())];
                            if let Err(e) = self.index().and_then(|i| i.tag(&id_query(id), &failed))
                            {
                                tracing::warn!("{}: not tagged failed: {e}", path.display());
                            }
                        }
                    }
                }
            }
            acted.push(a);
        }
        // Handled: every rule is done with it (or gave up, or did not
        // match). `tag:new` then means "not handled yet" for notmuch too.
        let settled = rules.iter().all(|r| {
            state.is_finished(&facts.key, &r.name) || state.attempts(&facts.key, &r.name) == 0
        });
        if !self.options.dry_run && settled {
            let id = match &facts.message_id {
                Some(id) => Some(id.clone()),
                None => self.index()?.message_id_of_file(&path)?,
            };
            if let Some(id) = id {
                let untag = [TagChange::Remove(NEW_TAG.into())];
                if let Err(e) = self.index().and_then(|i| i.tag(&id_query(&id), &untag)) {
                    tracing::warn!("{}: still tagged {NEW_TAG}: {e}", path.display());
                }
            }
        }
        Ok(acted)
    }

    fn matches(&mut self, rule: &Rule, found: &Found, facts: &Facts) -> Result<bool> {
        let h = &facts.dissection.headers;
        if !self.folder_wanted(rule, found) {
            return Ok(false);
        }
        if let Some(p) = &rule.from
            && !field_matches(p, h.from.as_deref())
        {
            return Ok(false);
        }
        if let Some(p) = &rule.to
            && !field_matches(p, h.to.as_deref())
            && !field_matches(p, h.cc.as_deref())
        {
            return Ok(false);
        }
        if let Some(p) = &rule.subject
            && !glob(p, h.subject.as_deref().unwrap_or(""))
        {
            return Ok(false);
        }
        if !rule.attachment.is_empty() {
            let wanted = dissect::Options {
                types: rule.attachment.clone(),
                ..dissect::Options::all()
            };
            let any = facts
                .dissection
                .attachments
                .iter()
                .any(|a| wanted.wants_type(&a.content_type));
            if !any {
                return Ok(false);
            }
        }
        if let Some(q) = &rule.query {
            // notmuch's id for this file: the Message-ID, or the name it
            // made up for a message without one.
            let Some(id) = self.index()?.message_id_of_file(&found.path)? else {
                return Ok(false);
            };
            // notmuch takes `*` for every message only as the whole query;
            // inside parentheses it would match nothing.
            let narrowed = if q.trim() == "*" {
                id_query(&id)
            } else {
                format!("({q}) and {}", id_query(&id))
            };
            if self.index()?.count(&narrowed)? == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether the rule's folders take the file's folder: any glob for an
    /// ordinary folder; only the folder's own name, written out, for a
    /// special-use one (Sent, Junk, Trash, Drafts).
    fn folder_wanted(&self, rule: &Rule, found: &Found) -> bool {
        let local = found.path.parent().and_then(Path::parent);
        let rel = local
            .and_then(|l| l.strip_prefix(&self.account.maildir).ok())
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_default();
        let server_use = self.specials.get(&rel).map(String::as_str);
        let special = is_special_folder(server_use, &found.folder);
        rule.folders.iter().any(|p| {
            if special {
                !p.contains(['*', '?', '[']) && p.eq_ignore_ascii_case(&found.folder)
            } else {
                glob(p, &found.folder)
            }
        })
    }

    fn act(
        &mut self,
        rule: &Rule,
        found: &Found,
        facts: &Facts,
        path: &mut PathBuf,
        acted: &mut Acted,
        state: &mut State,
    ) -> Result<()> {
        let mut files: Vec<PathBuf> = Vec::new();
        // After a dissect, print and run take its attachments (none when
        // it kept none); without one, the message file.
        let mut dissected = false;
        for action in &rule.actions {
            match action {
                Action::Dissect { out, types, flat } => {
                    let opts = dissect::Options {
                        types: types.clone(),
                        bodies: types.is_empty(),
                        ..dissect::Options::all()
                    };
                    let d = dissect::dissect_bytes(&facts.bytes, &opts);
                    crate::private::create_dir_all(out).map_err(|e| Error::writing(out, e))?;
                    let target = if *flat {
                        Target::Flat(out)
                    } else {
                        Target::PerMessage(out)
                    };
                    let written = dissect::write_dissection(&d, target)?;
                    acted
                        .files
                        .extend(written.files.iter().map(|f| f.path.clone()));
                    // What print and run are for: the attachments kept,
                    // not body.txt or message.json.
                    files.extend(
                        written
                            .files
                            .iter()
                            .filter(|f| f.role == "attachment")
                            .map(|f| f.path.clone()),
                    );
                    dissected = true;
                }
                Action::Print { template } => {
                    let targets = if dissected {
                        files.clone()
                    } else {
                        vec![path.clone()]
                    };
                    for f in targets {
                        let line = crate::shell::fill_template(template, &f.display().to_string());
                        writeln!(self.out, "{line}")
                            .and_then(|()| self.out.flush())
                            .map_err(|e| Error::writing(Path::new("stdout"), e))?;
                        acted.printed.push(line);
                    }
                }
                Action::Run { template } => {
                    self.release_index()?;
                    let written = dissected.then_some(files.as_slice());
                    self.run_command(rule, template, found, facts, path, written)?;
                }
                Action::Reply { body } => self.reply(facts, body, state, acted)?,
                Action::Forward { to } => self.forward(facts, to, acted)?,
                Action::Tag { changes } => {
                    let id = facts.message_id.as_ref().ok_or_else(|| {
                        Error::new(
                            ErrorKind::BadInput,
                            path.display().to_string(),
                            "no Message-ID, so no tags",
                        )
                    })?;
                    self.index()?.tag(&id_query(id), changes)?;
                    // Tags may have renamed the file (flags in step).
                    if !path.exists()
                        && let Some(now) = find_by_unique(path, &found.unique)
                    {
                        *path = now;
                    }
                }
                Action::Move { folder } => {
                    *path = self.move_file(path, &found.unique, folder)?;
                }
            }
        }
        Ok(())
    }

    fn run_command(
        &mut self,
        rule: &Rule,
        template: &str,
        found: &Found,
        facts: &Facts,
        path: &Path,
        dissected: Option<&[PathBuf]>,
    ) -> Result<()> {
        let files = dissected.unwrap_or_default();
        let targets = match dissected {
            Some(files) => files.to_vec(),
            None => vec![path.to_path_buf()],
        };
        let h = &facts.dissection.headers;
        let file_list = files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join("\n");
        for target in targets {
            let argv = crate::shell::split_template(template, &target.display().to_string())?;
            let Some((program, args)) = argv.split_first() else {
                continue;
            };
            let object = format!("rule {:?}: {program}", rule.name);
            let mut cmd = crate::child::command(program);
            cmd.args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::from(
                    std::io::stderr()
                        .as_fd()
                        .try_clone_to_owned()
                        .map_err(|e| Error::io(ErrorKind::CannotCreate, object.clone(), e))?,
                ))
                .env("MAILBOT_RULE", &rule.name)
                .env("MAILBOT_ACCOUNT", &self.account.name)
                .env("MAILBOT_MESSAGE", path)
                .env("MAILBOT_FOLDER", &found.folder)
                .env("MAILBOT_SHA256", &facts.key)
                .env("MAILBOT_FROM", h.from.as_deref().unwrap_or(""))
                .env("MAILBOT_TO", h.to.as_deref().unwrap_or(""))
                .env("MAILBOT_SUBJECT", h.subject.as_deref().unwrap_or(""))
                .env("MAILBOT_MESSAGE_ID", h.message_id.as_deref().unwrap_or(""))
                .env("MAILBOT_FILES", &file_list);
            // A command that hangs is killed, fails this action and is
            // tried again at the next run; it never holds the lock for good.
            let status = crate::child::run(&mut cmd, rule.timeout, &object)?.status(&object)?;
            if !status.success() {
                return Err(Error::new(
                    ErrorKind::Temporary,
                    object,
                    match status.code() {
                        Some(c) => format!("exited with {c}"),
                        None => "killed by a signal".into(),
                    },
                ));
            }
        }
        Ok(())
    }

    fn own_address(&self) -> Result<Address> {
        Address::parse(self.account.address.as_deref().unwrap_or_default())
    }

    /// Sends an automatic message (RFC 3834): `Auto-Submitted: how`, and
    /// an empty envelope sender, so that a bounce or an auto-reply to it
    /// never comes back to a robot.
    fn send_automatic(&self, draft: Draft, how: &str) -> Result<()> {
        let mut draft = draft;
        draft
            .headers
            .push(("Auto-Submitted".into(), how.to_string()));
        let mut composed = compose::compose(
            &draft,
            &Pins {
                host: "mailbot.invalid".into(),
                ..Pins::default()
            },
        )?;
        composed.envelope.from = String::new();
        let transport = self.account.transport.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                &self.account.name,
                "no smtp to send with",
            )
        })?;
        transport.send(&composed.envelope, &composed.bytes)
    }

    /// Why an automatic answer to this message could start a mail loop
    /// (RFC 3834 section 2), if it could: it is automatic itself, bulk or
    /// list mail, a bounce, from a robot's address, or from us.
    fn loop_risk(&self, facts: &Facts, to: &[Address]) -> Option<String> {
        let raw = &facts.dissection.headers.raw;
        let field = |name: &str| {
            raw.get_unfolded(name)
                .map(|v| String::from_utf8_lossy(&v).trim().to_string())
        };
        if let Some(v) = field("auto-submitted") {
            let word = v.split(';').next().unwrap_or("").trim();
            if !word.eq_ignore_ascii_case("no") {
                return Some(format!("it is automatic (Auto-Submitted: {v})"));
            }
        }
        if let Some(v) = field("precedence")
            && ["bulk", "list", "junk"].contains(&v.to_ascii_lowercase().as_str())
        {
            return Some(format!("it is bulk mail (Precedence: {v})"));
        }
        for list in ["list-id", "list-unsubscribe"] {
            if field(list).is_some() {
                return Some("it came through a mailing list".into());
            }
        }
        if let Some(rp) = field("return-path") {
            let addr = rp
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .trim();
            if addr.is_empty() {
                return Some("it is a bounce (empty Return-Path)".into());
            }
            if is_robot(addr) {
                return Some(format!("its return path is a robot's ({addr})"));
            }
        }
        let own = self
            .account
            .address
            .as_deref()
            .and_then(|a| Address::parse(a).ok());
        for a in to {
            if is_robot(&a.email) {
                return Some(format!("{} is a robot's address", a.email));
            }
            if own
                .as_ref()
                .is_some_and(|o| o.email.eq_ignore_ascii_case(&a.email))
            {
                return Some(format!("{} is our own address", a.email));
            }
        }
        None
    }

    fn reply(&self, facts: &Facts, body: &str, state: &mut State, acted: &mut Acted) -> Result<()> {
        let h = &facts.dissection.headers;
        let to_text = h
            .raw
            .get_unfolded("reply-to")
            .map(|v| String::from_utf8_lossy(&v).trim().to_string())
            .filter(|v| !v.is_empty())
            .or_else(|| h.from.clone())
            .ok_or_else(|| Error::new(ErrorKind::BadInput, "message", "no From to reply to"))?;
        let to = compose::parse_address_list(&to_text)?;
        if let Some(why) = self.loop_risk(facts, &to) {
            acted.skipped.push(format!("reply: not sent, {why}"));
            return Ok(());
        }
        let now = super::date::now();
        let interval = self.account.reply_interval.as_secs() as i64;
        for a in &to {
            if let Some(last) = state.last_reply(&a.email)
                && now.saturating_sub(last) < interval
            {
                acted.skipped.push(format!(
                    "reply: not sent, {} had one less than {} ago",
                    a.email,
                    crate::child::describe_duration(self.account.reply_interval)
                ));
                return Ok(());
            }
        }
        let subject = facts.dissection.headers.subject.clone().unwrap_or_default();
        let subject = if subject.to_ascii_lowercase().starts_with("re:") {
            subject
        } else {
            format!("Re: {subject}")
        };
        self.send_automatic(
            Draft {
                from: Some(self.own_address()?),
                to: to.clone(),
                subject: Some(subject),
                in_reply_to: facts.message_id.clone(),
                text: body.to_string(),
                ..Draft::default()
            },
            "auto-replied",
        )?;
        for a in &to {
            state.record(Record::Replied {
                to: a.email.to_ascii_lowercase(),
                at: now,
            });
        }
        Ok(())
    }

    fn forward(&self, facts: &Facts, to: &[String], acted: &mut Acted) -> Result<()> {
        let to = to
            .iter()
            .map(|a| Address::parse(a))
            .collect::<Result<Vec<_>>>()?;
        // The same guards as a reply: a forward of automatic mail to an
        // address that answers automatically is a loop too.
        if let Some(why) = self.loop_risk(facts, &[]) {
            acted.skipped.push(format!("forward: not sent, {why}"));
            return Ok(());
        }
        let subject = facts.dissection.headers.subject.clone().unwrap_or_default();
        self.send_automatic(
            Draft {
                from: Some(self.own_address()?),
                to,
                subject: Some(format!("Fwd: {subject}")),
                in_reply_to: facts.message_id.clone(),
                text: "The forwarded message is attached.\n".into(),
                attachments: vec![Attachment {
                    data: facts.bytes.clone(),
                    content_type: "message/rfc822".into(),
                    file_name: "forwarded.eml".into(),
                    content_id: None,
                }],
                ..Draft::default()
            },
            "auto-forwarded",
        )
    }

    fn move_file(&mut self, path: &Path, unique: &str, folder: &str) -> Result<PathBuf> {
        let target = Maildir::create(self.account.folder(folder))?;
        let sub = path
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .filter(|n| *n == "new")
            .unwrap_or("cur");
        let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            Error::new(
                ErrorKind::BadInput,
                path.display().to_string(),
                "no file name (or not UTF-8)",
            )
        })?;
        let source = path.parent().and_then(Path::parent);
        if source == Some(target.path()) {
            return Ok(path.to_path_buf());
        }
        // The server UID and size fields belong to the folder the file
        // came from: in another folder the message is a local one of its
        // own (which `mail-sync --push` would upload there).
        let mut fields = sync::names::Unique::parse(unique);
        let uid = fields.uid.take().filter(|u| *u > 0);
        fields.size = None;
        let dest_name = match name.strip_prefix(unique) {
            Some(rest) => format!("{}{rest}", fields.render()),
            None => name.to_string(),
        };
        let dest = target.path().join(sub).join(dest_name);
        if dest.exists() {
            return Err(Error::new(
                ErrorKind::CannotCreate,
                dest.display().to_string(),
                format!("already exists (moving {unique})"),
            ));
        }
        fs::rename(path, &dest).map_err(|e| Error::writing(&dest, e))?;
        if let Some(dir) = dest.parent() {
            maildir::sync_dir(dir)?;
        }
        if let Some(dir) = path.parent() {
            maildir::sync_dir(dir)?;
        }
        let index = self.index()?;
        index.add(std::slice::from_ref(&dest))?;
        index.forget(&[path.to_path_buf()])?;
        // Tell the sync state the message left on purpose, so the next
        // sync neither fetches it again (not even when every message of
        // the folder moved) nor expunges it on the server.
        if let (Some(uid), Some(source)) = (uid, source) {
            let log = self
                .moved_out
                .get_or_insert_with(|| sync::state::MovedOutLog::open(&self.account.maildir));
            match log.record(source, uid) {
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    "{}: moved, but not recorded for mail-sync ({e}); if its folder is \
                     now empty, the next sync fetches the folder again",
                    path.display()
                ),
            }
        }
        Ok(dest)
    }
}

/// An address robots send from (RFC 3834: never answer one).
fn is_robot(address: &str) -> bool {
    let local = address.split('@').next().unwrap_or("").to_ascii_lowercase();
    matches!(
        local.as_str(),
        "mailer-daemon" | "postmaster" | "noreply" | "no-reply" | "donotreply" | "do-not-reply"
    ) || local.starts_with("owner-")
        || local.ends_with("-request")
        || local.ends_with("-bounces")
}

/// A notmuch query for exactly one Message-ID.
pub fn id_query(id: &str) -> String {
    format!("id:\"{}\"", id.replace('"', "\"\""))
}

fn field_matches(pattern: &str, field: Option<&str>) -> bool {
    let Some(field) = field else {
        return false;
    };
    if glob(pattern, field.trim()) {
        return true;
    }
    match compose::parse_address_list(field) {
        Ok(list) => list.iter().any(|a| glob(pattern, &a.email)),
        Err(_) => false,
    }
}

/// Where a file whose flags changed lives now: the same unique name in
/// `cur/` or `new/` of the same folder.
fn find_by_unique(old: &Path, unique: &str) -> Option<PathBuf> {
    let folder = old.parent()?.parent()?;
    for sub in ["cur", "new"] {
        for entry in fs::read_dir(folder.join(sub)).ok()?.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if maildir::parse_name(&name).0 == unique {
                return Some(entry.path());
            }
        }
    }
    None
}
