//! mail-sync: IMAP ⇄ maildir, incremental, byte-faithful, crash-safe.
//!
//! Thin: flags → a checked plan → `mailbot::sync::run` (or `watch`) →
//! the paths of new local messages on stdout as they arrive, one JSON
//! object per folder with `--json`.

use std::cell::RefCell;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use mailbot::cli::{self, AccountArgs, LogArgs, PathOutput, ProcessEnv, ResolvedAccount};
use mailbot::config::Account;
use mailbot::error::{Error, ErrorKind};
use mailbot::exit::Exit;
use mailbot::imap::ImapUrl;
use mailbot::index::{Index, IndexOptions};
use mailbot::maildir::LineEnds;
use mailbot::smtp::Auth;
use mailbot::sync::{
    self, Direction, Event, Expunge, FolderReport, Layout, NewMessage, Options, Tuning,
};

const PROGRAM: &str = "mail-sync";

const EXAMPLES: &str =
    "  mail-sync imaps://me@mail.example.org --maildir ~/Mail --password-command 'pass mail'
      Every folder into ~/Mail (INBOX → ~/Mail/INBOX); new messages' paths on stdout.
  mail-sync imaps://me@mail.example.org --maildir ~/Mail | mail-dissect --stdin --pdf
      The PDFs of whatever just arrived.
  mail-sync --account school --folder INBOX --folder 'Lists.*' --json
      Some folders of a configured account; one JSON object per folder.
  mail-sync imaps://me@mail.example.org --maildir ~/Mail --both --expunge to-local
      Upload new local messages too; remove local copies of what the server expunged.
  mail-sync imaps://me@mail.example.org --maildir ~/Mail --watch
      Stay connected (IDLE on INBOX) and print each new message's path as it comes.
  */10 * * * * $HOME/.local/bin/mail-sync --account school -q >/dev/null
      From cron, with the full path (cron's PATH is /usr/bin:/bin): -q
      keeps stderr to errors, and the new paths (stdout) are dropped, so
      cron mails only failures; exit 75 means try again later.";

/// How folders are laid out locally, for `--layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LayoutArg {
    /// INBOX → DIR/INBOX, A.B → DIR/A/B.
    Verbatim,
    /// INBOX → DIR, A.B → DIR/.A.B.
    #[value(name = "maildir++")]
    MaildirPlusPlus,
}

/// How fetched messages store their line ends, for `--line-ends`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LineEndsArg {
    /// Each CRLF made LF, as Dovecot, mbsync and offlineimap store mail.
    Lf,
    /// As the server sends them.
    Crlf,
}

/// Which deletions propagate, for `--expunge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExpungeArg {
    /// None.
    Never,
    /// Messages expunged on the server are removed locally.
    ToLocal,
    /// Messages deleted locally are expunged on the server.
    ToServer,
    /// Both.
    Both,
}

/// Sync IMAP folders with a local maildir: new messages as the server has
/// them (each CRLF stored as LF unless --line-ends crlf), flags both ways,
/// deletions only as --expunge says; the paths of new local messages on
/// stdout.
#[derive(Debug, Parser)]
#[command(name = PROGRAM, version, after_help = cli::after_help(EXAMPLES))]
struct Args {
    /// The server: imaps://[USER@]HOST[:993] or imap://[USER@]HOST[:143] (STARTTLS)
    /// [default: the account's imap].
    #[arg(value_name = "URL", env = "MAILBOT_IMAP")]
    url: Option<String>,
    /// The local maildir [default: the account's maildir, else
    /// $XDG_DATA_HOME/mailbot/<account or USER@HOST>].
    #[arg(long, env = "MAILBOT_MAILDIR", value_name = "DIR")]
    maildir: Option<PathBuf>,
    /// Sync only folders matching PATTERN (`*` anything, `%` anything but
    /// the hierarchy delimiter); repeatable [default: all].
    #[arg(
        long = "folder",
        value_name = "PATTERN",
        env = "MAILBOT_SYNC_FOLDERS",
        value_delimiter = ','
    )]
    folders: Vec<String>,
    /// Local layout of the folders.
    #[arg(
        long,
        value_enum,
        default_value = "verbatim",
        env = "MAILBOT_SYNC_LAYOUT"
    )]
    layout: LayoutArg,
    /// Upload new local messages instead of fetching new server ones. A
    /// local folder with messages to upload that the server lacks is
    /// created there first.
    #[arg(long, env = "MAILBOT_SYNC_PUSH", conflicts_with = "both")]
    push: bool,
    /// Fetch new server messages and upload new local ones (creating
    /// server folders as --push does).
    #[arg(long, env = "MAILBOT_SYNC_BOTH")]
    both: bool,
    /// Which deletions propagate.
    #[arg(
        long,
        value_enum,
        default_value = "never",
        value_name = "WHICH",
        env = "MAILBOT_SYNC_EXPUNGE"
    )]
    expunge: ExpungeArg,
    /// Line ends of fetched messages: lf stores each CRLF the server sends
    /// as LF (the Unix convention), crlf keeps them [default: the
    /// account's line_ends, else lf].
    #[arg(long, value_enum, value_name = "WHICH", env = "MAILBOT_SYNC_LINE_ENDS")]
    line_ends: Option<LineEndsArg>,
    /// After the pass, stay connected and fetch new mail as it arrives (IDLE).
    #[arg(long, env = "MAILBOT_SYNC_WATCH")]
    watch: bool,
    /// The folder --watch waits on.
    #[arg(
        long,
        value_name = "FOLDER",
        default_value = "INBOX",
        env = "MAILBOT_SYNC_IDLE_FOLDER"
    )]
    idle_folder: String,
    /// Bring the notmuch database in the maildir (DIR/.notmuch, created
    /// when missing) up to date with the whole maildir when the sync is
    /// done, as `mail-index new` does: this run's messages and those an
    /// earlier run left unindexed. With --watch, also each folder's new
    /// messages as it is done.
    #[arg(long, env = "MAILBOT_SYNC_INDEX")]
    index: bool,
    /// Tags for newly indexed messages (with --index); repeatable.
    #[arg(
        long = "tag",
        value_name = "TAG",
        default_value = "new",
        requires = "index"
    )]
    tags: Vec<String>,
    /// NUL instead of newline after each path.
    #[arg(short = '0', long = "null")]
    null: bool,
    /// One JSON object per folder (counts and error) instead of paths.
    #[arg(long)]
    json: bool,
    /// Network timeout in seconds.
    #[arg(
        long,
        default_value_t = 60.0,
        value_name = "SECS",
        env = "MAILBOT_SYNC_TIMEOUT"
    )]
    timeout: f64,
    /// Do not use this IMAP extension even if the server offers it
    /// (QRESYNC, CONDSTORE, UIDPLUS, LITERAL+, LIST-STATUS), for a server whose
    /// implementation is broken; repeatable.
    #[arg(
        long = "disable-extension",
        value_name = "NAME",
        env = "MAILBOT_SYNC_DISABLE_EXTENSIONS",
        value_delimiter = ','
    )]
    disable_extensions: Vec<String>,
    /// Connections a large fetch (100 messages or more) is shared
    /// between; the server encrypts each on its own core.
    #[arg(
        long,
        default_value_t = 2,
        value_name = "N",
        value_parser = clap::value_parser!(u16).range(1..=16),
        env = "MAILBOT_SYNC_CONNECTIONS"
    )]
    connections: u16,
    /// Command whose first output line is an OAuth2 access token (AUTHENTICATE XOAUTH2).
    #[arg(long, env = "MAILBOT_OAUTH2_TOKEN_COMMAND", value_name = "CMD")]
    oauth2_token_command: Option<String>,
    #[command(flatten)]
    account: AccountArgs,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    let args = match cli::parse_args::<Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    args.log.init(PROGRAM);
    mailbot::index::install_panic_filter();
    cli::finish(PROGRAM, run(&args))
}

/// What the run does, checked.
#[derive(Debug)]
struct Plan {
    options: Options,
    tuning: Tuning,
    watch: Option<String>,
    index: Option<IndexOptions>,
    null: bool,
    json: bool,
    verbose: bool,
    progress: bool,
}

fn plan(args: &Args) -> anyhow::Result<Plan> {
    let env = ProcessEnv::capture();
    let over = Account {
        imap: args.url.clone(),
        maildir: args.maildir.clone(),
        oauth2_token_command: args.oauth2_token_command.clone(),
        ..Account::default()
    };
    let account = args.account.resolve(&env, &over)?;
    if account.insecure {
        eprintln!("{PROGRAM}: warning: TLS certificates are not verified (--insecure)");
    }
    let Some(url) = &account.account.imap else {
        return Err(Error::new(
            ErrorKind::Usage,
            "URL",
            "no server: give imaps://USER@HOST (or MAILBOT_IMAP, or --account with an imap URL)",
        )
        .into());
    };
    let url = ImapUrl::parse(url)?;
    let auth = credentials(&account, &url)?;
    let maildir = match &account.account.maildir {
        Some(dir) => dir.clone(),
        None => {
            let name = account
                .name
                .clone()
                .unwrap_or_else(|| format!("{}@{}", auth_user(&auth), url.host));
            env.data_dir()
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::Usage,
                        "--maildir",
                        "no maildir: give --maildir DIR (HOME and XDG_DATA_HOME are unset)",
                    )
                })?
                .join(name)
        }
    };
    let options = Options {
        url,
        auth,
        tls: account.tls_options(),
        maildir,
        // --folder (or MAILBOT_SYNC_FOLDERS), else the account's `folders`.
        folders: match args.folders.iter().any(|f| !f.is_empty()) {
            true => args
                .folders
                .iter()
                .filter(|f| !f.is_empty())
                .cloned()
                .collect(),
            false => account.account.folders.clone(),
        },
        layout: match args.layout {
            LayoutArg::Verbatim => Layout::Verbatim,
            LayoutArg::MaildirPlusPlus => Layout::MaildirPlusPlus,
        },
        direction: match (args.push, args.both) {
            (_, true) => Direction::Both,
            (true, false) => Direction::Push,
            (false, false) => Direction::Pull,
        },
        expunge: match args.expunge {
            ExpungeArg::Never => Expunge::Never,
            ExpungeArg::ToLocal => Expunge::ToLocal,
            ExpungeArg::ToServer => Expunge::ToServer,
            ExpungeArg::Both => Expunge::Both,
        },
        timeout: Duration::try_from_secs_f64(args.timeout.max(0.001))
            .unwrap_or(Duration::from_secs(60)),
        line_ends: match args.line_ends {
            Some(LineEndsArg::Lf) => LineEnds::Lf,
            Some(LineEndsArg::Crlf) => LineEnds::Crlf,
            None => account.account.line_ends.unwrap_or_default(),
        },
    };
    Ok(Plan {
        options,
        tuning: Tuning {
            disable_extensions: args.disable_extensions.clone(),
            connections: usize::from(args.connections),
            poll_every: None,
            stop: None,
        },
        watch: args.watch.then(|| args.idle_folder.clone()),
        index: args.index.then(|| IndexOptions {
            new_tags: args.tags.clone(),
            ..IndexOptions::default()
        }),
        null: args.null,
        json: args.json,
        verbose: args.log.verbose > 0,
        progress: !args.log.quiet && !args.json && io::stderr().is_terminal(),
    })
}

fn auth_user(auth: &Auth) -> &str {
    match auth {
        Auth::Password { user, .. } | Auth::OAuth2 { user, .. } => user,
    }
}

/// XOAUTH2 when a token command is set, else the password; a login
/// name is required.
fn credentials(account: &ResolvedAccount, url: &ImapUrl) -> anyhow::Result<Auth> {
    let object = url.display();
    account
        .credentials(&url.endpoint(account.default_user()), &object)?
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                object,
                "no login name: put it in the URL (imaps://USER@HOST) or give --user",
            )
            .into()
        })
}

fn run(args: &Args) -> anyhow::Result<Exit> {
    let mut plan = plan(args)?;
    let stop = Arc::new(AtomicBool::new(false));
    plan.tuning.stop = Some(stop.clone());
    let plan = plan;
    let mut out = PathOutput::stdout(plan.null);
    // With --watch and --index, the paths written since the last folder
    // finished: what goes to the index when a folder is done.
    let pending: RefCell<Vec<PathBuf>> = RefCell::new(Vec::new());
    let mut write_error: Option<io::Error> = None;
    let mut on_new = |m: &NewMessage| {
        if plan.index.is_some() && plan.watch.is_some() {
            pending.borrow_mut().push(m.path.clone());
        }
        if plan.json || write_error.is_some() {
            return;
        }
        // Flushed per path, so a pipeline sees each message at once.
        if let Err(e) = out.path(&m.path).and_then(|()| out.flush()) {
            write_error = Some(e);
            // The reader is gone: stop before the state says more than was
            // reported, so the next run reports the rest.
            stop.store(true, Ordering::Relaxed);
        }
    };
    let mut index_failed = false;
    if let (Some(options), Some(_)) = (&plan.index, &plan.watch) {
        // What earlier runs fetched and did not index, before watching.
        index_failed |= !catch_up(&plan.options.maildir, options)?;
    }
    let mut json_out = PathOutput::stdout(false);
    let mut progress = Progress::new(plan.progress);
    let mut index_error: Option<Error> = None;
    let mut on_event = |event: Event<'_>| {
        progress.event(&event);
        if let Event::FolderDone(report) = event {
            tell(&plan, report);
            if plan.json
                && let Ok(line) = serde_json::to_string(report)
            {
                let _ = json_out.line(&line).and_then(|()| json_out.flush());
            }
            if let (Some(options), Some(_)) = (&plan.index, &plan.watch) {
                let paths = std::mem::take(&mut *pending.borrow_mut());
                if !paths.is_empty() && index_error.is_none() {
                    match index_paths(&plan.options.maildir, options, &paths) {
                        Ok(all) => index_failed |= !all,
                        Err(e) => index_error = Some(e),
                    }
                }
            }
        }
    };
    let outcome = match &plan.watch {
        None => sync::run_tuned(&plan.options, &plan.tuning, &mut on_new, &mut on_event),
        Some(folder) => sync::watch_tuned(
            &plan.options,
            &plan.tuning,
            folder,
            &mut on_new,
            &mut on_event,
            &|| !stop.load(Ordering::Relaxed),
        ),
    };
    progress.clear();
    if let Some(e) = write_error {
        return Err(Error::io(ErrorKind::CannotCreate, "stdout", e).into());
    }
    // Without --watch, --index brings the index up to date with the whole
    // maildir once the sync is done: this run's messages and those an
    // earlier run left unindexed (a plain mail-sync, one that was killed).
    // Also after a failed sync, for what it did fetch; not when another
    // run holds the maildir (it indexes when it is done).
    if let (Some(options), None) = (&plan.index, &plan.watch) {
        let worth_it = match &outcome {
            Ok(_) => true,
            Err(e) => !e.is_locked() && plan.options.maildir.is_dir(),
        };
        if worth_it {
            match catch_up(&plan.options.maildir, options) {
                Ok(all) => index_failed |= !all,
                Err(e) if outcome.is_ok() => index_error = Some(e),
                // The sync's own failure is the one to exit with.
                Err(e) => cli::report(PROGRAM, &anyhow::Error::new(e)),
            }
        }
    }
    let report = outcome?;
    if let Some(e) = index_error {
        // The messages are safe in the maildir; `mail-index new` catches up.
        return Err(e.into());
    }
    let exit = report.exit();
    Ok(if index_failed {
        exit.worse(Exit::Partial)
    } else {
        exit
    })
}

/// Brings the index of `maildir` up to date with all of it, as `mail-index
/// new` does (only folders that changed since its last scan are listed).
/// Files that fail are named on stderr and make the result false; a
/// failure of the database itself is an error.
fn catch_up(maildir: &Path, options: &IndexOptions) -> Result<bool, Error> {
    let mut index = Index::open(maildir, options.clone())?;
    let report = index.scan(&mut |_, _| {})?;
    index.close()?;
    for (path, reason) in &report.failed {
        eprintln!("{PROGRAM}: {}: not indexed: {reason}", path.display());
    }
    for path in &report.not_mail {
        tracing::info!("{}: not indexed: not a mail message", path.display());
    }
    Ok(report.failed.is_empty())
}

/// Indexes `paths`; files that fail are named on stderr and make the
/// result false. A failure of the database itself is an error.
fn index_paths(maildir: &Path, options: &IndexOptions, paths: &[PathBuf]) -> Result<bool, Error> {
    let mut index = Index::open(maildir, options.clone())?;
    let report = index.add(paths)?;
    index.close()?;
    let mut all = true;
    for (path, e) in &report.failed {
        // As notmuch new: a file with no header fields is skipped with a note.
        if mailbot::index::is_not_mail(e) {
            tracing::info!("{}: not indexed: {e}", path.display());
            continue;
        }
        eprintln!("{PROGRAM}: {}: not indexed: {e}", path.display());
        all = false;
    }
    Ok(all)
}

/// Per-folder lines on stderr: errors always, counts with -v.
fn tell(plan: &Plan, report: &FolderReport) {
    if let Some(e) = &report.error {
        eprintln!("{PROGRAM}: {}: {e}", report.folder);
    } else if plan.verbose {
        eprintln!(
            "{PROGRAM}: {}: {} fetched, {} uploaded, flags {} pulled / {} pushed, {} removed here, {} expunged there",
            report.folder,
            report.fetched,
            report.uploaded,
            report.flags_pulled,
            report.flags_pushed,
            report.removed_local,
            report.expunged_server
        );
    }
}

/// A progress bar per folder, only on a terminal.
struct Progress {
    on: bool,
    bar: Option<ProgressBar>,
    folder: String,
}

impl Progress {
    fn new(on: bool) -> Self {
        Progress {
            on,
            bar: None,
            folder: String::new(),
        }
    }

    fn event(&mut self, event: &Event<'_>) {
        if !self.on {
            return;
        }
        match event {
            Event::FolderStarted { folder } => self.folder = folder.to_string(),
            Event::Fetching { count, .. } => {
                let bar = ProgressBar::new(*count);
                if let Ok(style) =
                    ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta} left)")
                {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_message(self.folder.clone());
                self.bar = Some(bar);
            }
            Event::Fetched { .. } => {
                if let Some(b) = &self.bar {
                    b.inc(1);
                }
            }
            Event::FolderDone(_) => self.clear(),
        }
    }

    fn clear(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn push_and_both_exclude_each_other() {
        assert!(Args::try_parse_from(["mail-sync", "imaps://h", "--push", "--both"]).is_err());
        let a = Args::try_parse_from(["mail-sync", "imaps://h", "--layout", "maildir++"]).unwrap();
        assert_eq!(a.layout, LayoutArg::MaildirPlusPlus);
        let a = Args::try_parse_from(["mail-sync", "imaps://h", "--expunge", "to-local"]).unwrap();
        assert_eq!(a.expunge, ExpungeArg::ToLocal);
    }
}
