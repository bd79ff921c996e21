//! mail-migrate: moving mailboxes from one IMAP server to another, each
//! message byte for byte with its flags, keywords and INTERNALDATE, every
//! folder mapped (namespace prefix, delimiter, special use, excludes and
//! renames) and subscriptions kept.
//!
//! A pass over a mailbox pair ([`migrate_mailbox`]) is incremental,
//! resumable and idempotent: the state of the pair ([`state`]) says which
//! source message became which destination message, and what both sides
//! looked like; a folder neither side changed costs one STATUS answer
//! (one LIST-STATUS for all of them). Messages are streamed from the
//! source's FETCH straight into the destination's APPEND (LITERAL+,
//! MULTIAPPEND batches), never stored locally and never held whole in
//! memory; a big folder is shared between several connection pairs.
//! Killed at any moment, the next pass finds what was copied but not yet
//! recorded by Message-ID and size (then sha256) among the destination's
//! unrecorded messages, so nothing is copied twice and nothing skipped.
//!
//! [`run`] moves many mailboxes on `jobs` threads with at most
//! `max_connections` sessions per server; one mailbox failing (login
//! refused, over quota) does not stop the others. [`verify`] compares
//! both sides of every folder; [`plan`] measures what there is to move.
//!
//! It never reads the environment or the terminal: the binary hands in
//! credentials (secrets or the commands that print them) and options.

mod copy;
pub mod folders;
pub mod state;
pub mod users;
mod verify;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Secret;
use crate::error::{Error, ErrorKind, Result};
use crate::exit::Exit;
use crate::imap::{ImapUrl, Login, PlainAs, Session};
use crate::smtp::Auth;
use crate::tls::TlsOptions;

pub use folders::Mapping;
pub use users::{SecretSource, Shard, UserRow};
pub use verify::{FolderPlan, FolderVerdict, MailboxPlan, MailboxVerdict};

/// How a side logs in for one mailbox.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// LOGIN as the user.
    Password {
        /// The mailbox's login name.
        user: String,
        /// The user's password.
        secret: SecretSource,
    },
    /// LOGIN as `user` + separator + `master` with the master's password
    /// (Dovecot's master users: `alice*admin`).
    Master {
        /// The mailbox's login name.
        user: String,
        /// The master user.
        master: String,
        /// What joins them (Dovecot's `auth_master_user_separator`).
        separator: String,
        /// The master user's password.
        secret: SecretSource,
    },
    /// SASL PLAIN as `admin` with `user` as the authorisation identity.
    PlainAs {
        /// The mailbox's login name (authorisation identity).
        user: String,
        /// The administrator who authenticates.
        admin: String,
        /// The administrator's password.
        secret: SecretSource,
    },
    /// AUTHENTICATE XOAUTH2 with a token from a command (`{user}` in it
    /// is replaced by the shell-quoted user).
    OAuth2 {
        /// The mailbox's login name.
        user: String,
        /// The command printing an access token.
        token_command: String,
    },
}

impl Credentials {
    /// The mailbox user these open.
    pub fn user(&self) -> &str {
        match self {
            Credentials::Password { user, .. }
            | Credentials::Master { user, .. }
            | Credentials::PlainAs { user, .. }
            | Credentials::OAuth2 { user, .. } => user,
        }
    }

    /// The login, secrets fetched now (a command runs once per mailbox).
    fn resolve(&self, object: &str) -> Result<Resolved> {
        let what = format!("{object}: password command");
        Ok(match self {
            Credentials::Password { user, secret } => Resolved::Auth(Auth::Password {
                user: user.clone(),
                password: secret.resolve(&what)?,
            }),
            Credentials::Master {
                user,
                master,
                separator,
                secret,
            } => Resolved::Auth(Auth::Password {
                user: format!("{user}{separator}{master}"),
                password: secret.resolve(&what)?,
            }),
            Credentials::PlainAs {
                user,
                admin,
                secret,
            } => Resolved::Plain(PlainAs {
                authzid: user.clone(),
                user: admin.clone(),
                password: secret.resolve(&what)?,
            }),
            Credentials::OAuth2 {
                user,
                token_command,
            } => {
                let command = token_command.replace("{user}", &crate::shell::quote(user));
                Resolved::Auth(Auth::OAuth2 {
                    user: user.clone(),
                    token: crate::config::secret_from_command(
                        &command,
                        &format!("{object}: token command"),
                    )?,
                })
            }
        })
    }
}

/// A login with its secret at hand.
#[derive(Debug, Clone)]
enum Resolved {
    Auth(Auth),
    Plain(PlainAs),
}

impl Login for Resolved {
    fn log_in(&self, session: &mut Session) -> Result<()> {
        match self {
            Resolved::Auth(a) => a.log_in(session),
            Resolved::Plain(p) => p.log_in(session),
        }
    }
}

/// One side of a mailbox pair.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The server.
    pub url: ImapUrl,
    /// How to log in.
    pub credentials: Credentials,
}

impl Endpoint {
    /// `user@host:port`, as state files and reports name the side.
    pub fn name(&self) -> String {
        format!(
            "{}@{}:{}",
            self.credentials.user(),
            self.url.host,
            self.url.port
        )
    }
}

/// One mailbox to move.
#[derive(Debug, Clone)]
pub struct Job {
    /// What reports call it (the source user).
    pub name: String,
    /// Where it is.
    pub source: Endpoint,
    /// Where it goes.
    pub destination: Endpoint,
}

/// How to move.
#[derive(Debug, Clone)]
pub struct Options {
    /// Trust for the source servers.
    pub source_tls: TlsOptions,
    /// Trust for the destination servers.
    pub destination_tls: TlsOptions,
    /// Where the state of each mailbox pair is kept.
    pub state_dir: PathBuf,
    /// Folder selection and naming.
    pub mapping: Mapping,
    /// Mirror deletions: destination copies of messages gone from the
    /// source are expunged.
    pub delete: bool,
    /// Connection pairs one mailbox may use (a big folder is shared).
    pub connections: usize,
    /// Mailboxes moved at once.
    pub jobs: usize,
    /// Sessions per server at most, over all jobs (0: no limit).
    pub max_connections: usize,
    /// Network timeout for each read and write.
    pub timeout: Duration,
    /// Extensions not to use (`MULTIAPPEND`, `LITERAL+`, `CONDSTORE`,
    /// `LIST-STATUS`, `UIDPLUS`, ...).
    pub disable_extensions: Vec<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            source_tls: TlsOptions::default(),
            destination_tls: TlsOptions::default(),
            state_dir: PathBuf::from("."),
            mapping: Mapping {
                by_special_use: true,
                ..Mapping::default()
            },
            delete: false,
            connections: 2,
            jobs: 1,
            max_connections: 0,
            timeout: Duration::from_secs(60),
            disable_extensions: Vec::new(),
        }
    }
}

/// A message the destination would not take, or that could not be read.
#[derive(Debug, Clone, Serialize)]
pub struct FailedMessage {
    /// Its source UID.
    pub uid: u32,
    /// Its size.
    pub size: u64,
    /// Its Message-ID, when it has one.
    pub message_id: Option<String>,
    /// Why.
    pub error: String,
}

/// What a pass did to one folder pair.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FolderReport {
    /// The source folder.
    pub source: String,
    /// The destination folder.
    pub destination: String,
    /// Messages copied.
    pub copied: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Messages found already on the destination (not copied again).
    pub found: u64,
    /// Destination messages whose flags were brought in line.
    pub flags_updated: u64,
    /// Destination messages expunged (`--delete`).
    pub deleted: u64,
    /// Exact copies an interrupted pass left behind, removed.
    pub duplicates_removed: u64,
    /// Whether neither side had changed since the last pass.
    pub unchanged: bool,
    /// Messages that did not go.
    pub failed_messages: Vec<FailedMessage>,
    /// Why the folder failed as a whole, if it did.
    pub error: Option<String>,
}

/// What a pass did to one mailbox.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MailboxReport {
    /// The mailbox (the job's name).
    pub mailbox: String,
    /// `user@host:port` of the source.
    pub source: String,
    /// `user@host:port` of the destination.
    pub destination: String,
    /// Per folder pair.
    pub folders: Vec<FolderReport>,
    /// Messages copied, in all folders.
    pub copied: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Messages found already there.
    pub found: u64,
    /// Flag updates.
    pub flags_updated: u64,
    /// Expunged on the destination.
    pub deleted: u64,
    /// Messages that did not go.
    pub failed: u64,
    /// Subscriptions added on the destination.
    pub subscribed: u64,
    /// Wall time of the pass.
    pub seconds: f64,
    /// Why the mailbox failed, if it did.
    pub error: Option<String>,
    /// The exit status this mailbox alone would give.
    pub exit: u8,
    #[serde(skip)]
    kind: Option<ErrorKind>,
}

impl MailboxReport {
    /// The exit status this mailbox alone gives: its error's, 1 when
    /// messages or folders failed, else 0.
    pub fn exit_status(&self) -> Exit {
        match self.kind {
            Some(k) => Error::new(k, "", "").exit(),
            None if self.failed > 0 || self.folders.iter().any(|f| f.error.is_some()) => {
                Exit::Partial
            }
            None => Exit::Ok,
        }
    }

    /// Whether the mailbox failed as a whole for a reason that may pass.
    pub fn is_temporary(&self) -> bool {
        matches!(self.kind, Some(ErrorKind::Temporary | ErrorKind::Locked))
    }

    fn fail(&mut self, e: &Error) {
        self.error = Some(crate::error::chain(e));
        self.kind = Some(e.kind());
    }

    fn finish(&mut self, started: Instant) {
        self.seconds = started.elapsed().as_secs_f64();
        for f in &self.folders {
            self.copied += f.copied;
            self.bytes += f.bytes;
            self.found += f.found;
            self.flags_updated += f.flags_updated;
            self.deleted += f.deleted;
            self.failed += f.failed_messages.len() as u64;
        }
        self.exit = self.exit_status().code();
    }
}

/// The exit status of a run over many mailboxes: 0 when all went; the
/// shared status when every one failed the same way (75 when all failed
/// for reasons that may pass); otherwise 1 when any failed.
pub fn overall_exit(reports: &[MailboxReport]) -> Exit {
    let exits: Vec<Exit> = reports.iter().map(MailboxReport::exit_status).collect();
    if exits.iter().all(|e| *e == Exit::Ok) {
        return Exit::Ok;
    }
    let all_failed = reports.iter().all(|r| r.kind.is_some());
    if all_failed {
        if reports.iter().all(MailboxReport::is_temporary) {
            return Exit::TempFail;
        }
        if exits.windows(2).all(|w| w[0] == w[1]) {
            return exits[0];
        }
    }
    Exit::Partial
}

/// Progress, for bars and JSON lines.
#[derive(Debug)]
pub enum Event<'a> {
    /// A mailbox's pass begins on job slot `slot`.
    Started {
        /// The mailbox.
        mailbox: &'a str,
        /// Which of the `jobs` runs it.
        slot: usize,
    },
    /// This many messages and bytes are about to be copied in a folder.
    Copying {
        /// The mailbox.
        mailbox: &'a str,
        /// The folder.
        folder: &'a str,
        /// Messages.
        messages: u64,
        /// Bytes.
        bytes: u64,
    },
    /// One message went.
    Copied {
        /// The mailbox.
        mailbox: &'a str,
        /// Its size.
        bytes: u64,
    },
    /// A mailbox is done (or failed).
    Done(&'a MailboxReport),
}

/// Sessions per server: a slot is taken before connecting and given
/// back when the session ends.
#[derive(Debug, Default)]
pub struct Limits {
    max: usize,
    used: Mutex<HashMap<String, usize>>,
    freed: Condvar,
}

/// A taken connection slot; given back when dropped.
#[derive(Debug)]
struct Slot<'a> {
    limits: &'a Limits,
    server: String,
}

impl Limits {
    /// At most `max` sessions per server (0: no limit).
    pub fn new(max: usize) -> Limits {
        Limits {
            max,
            ..Limits::default()
        }
    }

    /// A slot for `server`; waits for one when `wait`, else `None` when
    /// all are taken.
    fn take(&self, server: &str, wait: bool) -> Option<Slot<'_>> {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let n = used.entry(server.to_string()).or_insert(0);
            if self.max == 0 || *n < self.max {
                *n += 1;
                return Some(Slot {
                    limits: self,
                    server: server.to_string(),
                });
            }
            if !wait {
                return None;
            }
            used = self.freed.wait(used).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut used = self.limits.used.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = used.get_mut(&self.server) {
            *n = n.saturating_sub(1);
        }
        self.limits.freed.notify_all();
    }
}

/// The TLS configurations of a run, built once.
#[derive(Debug, Clone)]
pub struct Trust {
    source: Arc<rustls::ClientConfig>,
    destination: Arc<rustls::ClientConfig>,
    plaintext_source: bool,
    plaintext_destination: bool,
}

impl Trust {
    /// From the options (a bad CA file is a configuration error, 78).
    pub fn new(options: &Options) -> Result<Trust> {
        Ok(Trust {
            source: crate::tls::client_config(&options.source_tls)?,
            destination: crate::tls::client_config(&options.destination_tls)?,
            plaintext_source: options.source_tls.allow_plaintext_auth,
            plaintext_destination: options.destination_tls.allow_plaintext_auth,
        })
    }
}

/// A logged-in side: its session, its login (for more sessions) and the
/// slot it holds.
struct Side<'a> {
    session: Session,
    _slot: Slot<'a>,
}

/// What opens sessions for one mailbox.
struct Opener<'a> {
    job: &'a Job,
    options: &'a Options,
    trust: &'a Trust,
    limits: &'a Limits,
    source_login: Resolved,
    destination_login: Resolved,
}

impl<'a> Opener<'a> {
    fn new(
        job: &'a Job,
        options: &'a Options,
        trust: &'a Trust,
        limits: &'a Limits,
    ) -> Result<Self> {
        let source_login = job
            .source
            .credentials
            .resolve(&format!("{} (source)", job.name))?;
        let destination_login = job
            .destination
            .credentials
            .resolve(&format!("{} (destination)", job.name))?;
        Ok(Opener {
            job,
            options,
            trust,
            limits,
            source_login,
            destination_login,
        })
    }

    fn open(&self, source: bool, wait: bool) -> Result<Option<Side<'a>>> {
        let (endpoint, config, login, plaintext) = if source {
            (
                &self.job.source,
                &self.trust.source,
                &self.source_login,
                self.trust.plaintext_source,
            )
        } else {
            (
                &self.job.destination,
                &self.trust.destination,
                &self.destination_login,
                self.trust.plaintext_destination,
            )
        };
        let Some(slot) = self.limits.take(&endpoint.url.display(), wait) else {
            return Ok(None);
        };
        let mut session = Session::connect(
            &endpoint.url,
            config,
            login,
            self.options.timeout,
            plaintext,
        )?;
        session.disable_capabilities(&self.options.disable_extensions);
        Ok(Some(Side {
            session,
            _slot: slot,
        }))
    }

    /// A source and a destination session, waiting for slots.
    fn pair(&self) -> Result<(Side<'a>, Side<'a>)> {
        let source = self.open(true, true)?.expect("waited for a slot");
        let destination = self.open(false, true)?.expect("waited for a slot");
        Ok((source, destination))
    }

    /// Another pair when slots are free now, else `None`.
    fn spare_pair(&self) -> Result<Option<(Side<'a>, Side<'a>)>> {
        let Some(source) = self.open(true, false)? else {
            return Ok(None);
        };
        let Some(destination) = self.open(false, false)? else {
            return Ok(None);
        };
        Ok(Some((source, destination)))
    }
}

/// One pass over one mailbox pair: every folder mapped, created where
/// missing, copied, flags brought in line, subscriptions added. The
/// report says what happened, failures included; it never panics on a
/// server's behaviour.
pub fn migrate_mailbox(
    job: &Job,
    options: &Options,
    trust: &Trust,
    limits: &Limits,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> MailboxReport {
    let started = Instant::now();
    let mut report = MailboxReport {
        mailbox: job.name.clone(),
        source: job.source.name(),
        destination: job.destination.name(),
        ..MailboxReport::default()
    };
    if let Err(e) = copy::mailbox_pass(job, options, trust, limits, on_event, &mut report) {
        report.fail(&e);
    }
    report.finish(started);
    report
}

/// Moves every job, `options.jobs` at a time, calling `on_event` from
/// the worker threads; returns the reports in the jobs' order.
pub fn run(
    jobs: &[Job],
    options: &Options,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Vec<MailboxReport>> {
    let trust = Trust::new(options)?;
    let limits = Limits::new(options.max_connections);
    for_each_job(jobs, options.jobs, on_event, &|job| {
        let report = migrate_mailbox(job, options, &trust, &limits, on_event);
        on_event(Event::Done(&report));
        report
    })
}

/// Runs `work` over `jobs` on `threads` worker threads, each job once,
/// in order of taking; the results come back in the jobs' order.
fn for_each_job<T: Send>(
    jobs: &[Job],
    threads: usize,
    on_event: &(dyn Fn(Event<'_>) + Sync),
    work: &(dyn Fn(&Job) -> T + Sync),
) -> Result<Vec<T>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for slot in 0..threads.max(1).min(jobs.len().max(1)) {
            let next = &next;
            let results = &results;
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(job) = jobs.get(i) else { break };
                    on_event(Event::Started {
                        mailbox: &job.name,
                        slot,
                    });
                    let out = work(job);
                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(out);
                }
            });
        }
    });
    Ok(results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect())
}

/// Compares both sides of every folder pair of every job (read-only):
/// message counts, the multisets of (Message-ID, size) and, with
/// `hashes`, of sha256, and each message's flags.
pub fn verify(
    jobs: &[Job],
    options: &Options,
    hashes: bool,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Vec<MailboxVerdict>> {
    let trust = Trust::new(options)?;
    let limits = Limits::new(options.max_connections);
    for_each_job(jobs, options.jobs, on_event, &|job| {
        verify::verify_mailbox(job, options, &trust, &limits, hashes)
    })
}

/// What there is to move (read-only): per mailbox, folders with message
/// counts and sizes, and what the state says is already on the
/// destination.
pub fn plan(
    jobs: &[Job],
    options: &Options,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Vec<MailboxPlan>> {
    let trust = Trust::new(options)?;
    let limits = Limits::new(options.max_connections);
    for_each_job(jobs, options.jobs, on_event, &|job| {
        verify::plan_mailbox(job, options, &trust, &limits)
    })
}

/// A password given directly.
pub fn given(secret: Secret) -> SecretSource {
    SecretSource::Given(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(kind: Option<ErrorKind>, failed: u64) -> MailboxReport {
        MailboxReport {
            kind,
            failed,
            ..MailboxReport::default()
        }
    }

    #[test]
    fn the_run_exit_follows_the_mailboxes() {
        use ErrorKind::*;
        type Mailboxes<'a> = &'a [(Option<ErrorKind>, u64)];
        let cases: [(Mailboxes<'_>, u8); 7] = [
            (&[(None, 0), (None, 0)], 0),
            (&[(None, 0), (Some(Auth), 0)], 1),
            (&[(None, 1), (None, 0)], 1),
            (&[(Some(Temporary), 0), (Some(Locked), 0)], 75),
            (&[(Some(Temporary), 0), (Some(Auth), 0)], 1),
            (&[(Some(Auth), 0)], 77),
            (&[(Some(Temporary), 0), (None, 0)], 1),
        ];
        for (mailboxes, want) in cases {
            let reports: Vec<MailboxReport> =
                mailboxes.iter().map(|(k, f)| report(*k, *f)).collect();
            assert_eq!(overall_exit(&reports).code(), want, "{mailboxes:?}");
        }
    }

    #[test]
    fn logins_are_built_from_their_secrets() {
        let oauth = Credentials::OAuth2 {
            user: "o'neil@example.org".into(),
            token_command: "printf 'token-for-%s' {user}".into(),
        };
        match oauth.resolve("m").unwrap() {
            Resolved::Auth(Auth::OAuth2 { user, token }) => {
                assert_eq!(user, "o'neil@example.org");
                assert_eq!(token.expose(), "token-for-o'neil@example.org");
            }
            other => panic!("{other:?}"),
        }
        let master = Credentials::Master {
            user: "alice".into(),
            master: "admin".into(),
            separator: "*".into(),
            secret: SecretSource::Command("echo pw".into()),
        };
        match master.resolve("m").unwrap() {
            Resolved::Auth(Auth::Password { user, password }) => {
                assert_eq!((user.as_str(), password.expose()), ("alice*admin", "pw"));
            }
            other => panic!("{other:?}"),
        }
        let plain = Credentials::PlainAs {
            user: "alice".into(),
            admin: "admin".into(),
            secret: given(Secret::new("pw".into())),
        };
        match plain.resolve("m").unwrap() {
            Resolved::Plain(p) => {
                assert_eq!((p.authzid.as_str(), p.user.as_str()), ("alice", "admin"))
            }
            other => panic!("{other:?}"),
        }
        let failing = Credentials::Password {
            user: "bob".into(),
            secret: SecretSource::Command("exit 3".into()),
        };
        assert_eq!(failing.resolve("bob").unwrap_err().exit().code(), 78);
    }

    #[test]
    fn slots_are_limited_per_server_and_given_back() {
        let limits = Limits::new(2);
        let a = limits.take("s", false).unwrap();
        let _b = limits.take("s", false).unwrap();
        assert!(limits.take("s", false).is_none());
        let _other = limits.take("t", false).unwrap();
        drop(a);
        assert!(limits.take("s", false).is_some());
    }
}
