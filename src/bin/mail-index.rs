//! mail-index: the notmuch index of a maildir. `new` scans like
//! `notmuch new`, `add` indexes exactly the files given, `search`, `count`
//! and `tag` work on notmuch queries; the database is `MAILDIR/.notmuch`,
//! which the notmuch CLI, emacs and neomutt read too.
//!
//! Thin: flags → the maildir (flag, variable or the account's) →
//! `mailbot::index` → paths, ids or JSON on stdout.

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use mailbot::cli::{self, AccountArgs, LogArgs, PathOutput, ProcessEnv, after_help, finish};
use mailbot::config::{Account, expand_tilde};
use mailbot::error::{Error, ErrorKind};
use mailbot::exit::Exit;
use mailbot::index::{self, Index, IndexOptions, TagChange};

const PROGRAM: &str = "mail-index";

const EXAMPLES: &str = "  mail-index --maildir ~/Mail new
      Index what is new in ~/Mail (the database is ~/Mail/.notmuch), drop
      what is gone; silent unless -v or something failed.
  mail-sync --account school | mail-index --account school add --stdin
      Index exactly the files mail-sync fetched, no scan.
  mail-index search --output files 'tag:new and attachment:pdf' | mail-dissect --stdin --pdf
      The files of new messages with a PDF, dissected.
  mail-index search --output json from:alice@example.org
      One JSON object per message: id, thread, files, tags, date, from, subject.
  mail-index tag +done -new -- 'tag:new and from:billing@example.com'
      Tag changes, then the query after --; +flagged renames the file to :2,F.
  mail-index count tag:unread
  mail-index --maildir ~/Mail notmuch-config > ~/.notmuch-config; notmuch search tag:new
      The same database through the notmuch CLI (and emacs, neomutt).";

const NEW_EXAMPLES: &str = "  mail-index --maildir ~/Mail new
      Index what is new in ~/Mail (the database is ~/Mail/.notmuch), drop
      what is gone; silent unless -v or something failed.
  mail-index --maildir ~/Mail new --tag inbox --tag unread
      New messages get these tags instead of `new`.";

const REBUILD_EXAMPLES: &str = "  mail-index --maildir ~/Mail rebuild
      After \"the notmuch database is damaged\" (exit 65): a new ~/Mail/.notmuch
      from the files, tags from their flags (unread, flagged, replied, ...);
      the damaged one is kept in ~/Mail/.mailbot/damaged-notmuch.";

const ADD_EXAMPLES: &str = "  mail-sync --account school | mail-index --account school add --stdin
      Index exactly the files mail-sync fetched, no scan.
  find ~/Mail/INBOX/new -type f -print0 | mail-index --maildir ~/Mail add --stdin -0
  mail-index --maildir ~/Mail add ~/Mail/INBOX/new/1700000000.M1P2Q3.host";

const SEARCH_EXAMPLES: &str =
    "  mail-index search --output files 'tag:new and attachment:pdf' | mail-dissect --stdin --pdf
      The files of new messages with a PDF, dissected.
  mail-index search --output json from:alice@example.org
      One JSON object per message: id, thread, files, tags, date, from, subject.
  mail-index search --output messages date:yesterday..";

const TAG_EXAMPLES: &str = "  mail-index tag +done -new -- 'tag:new and from:billing@example.com'
      Tag changes, then the query after --.
  mail-index tag +flagged -- id:1234@example.org
      With flag sync (the default), the file is renamed to :2,F too.";

const NOTMUCH_CONFIG_EXAMPLES: &str =
    "  mail-index --maildir ~/Mail notmuch-config > ~/.notmuch-config
      Once: the notmuch CLI (and emacs, neomutt) then read ~/Mail/.notmuch
      and tag new mail as mail-index does.
  mail-index --maildir ~/Mail/school notmuch-config > ~/school.notmuch-config
  NOTMUCH_CONFIG=~/school.notmuch-config notmuch search tag:new
      One maildir of several, ~/.notmuch-config left as it is.";

const COUNT_EXAMPLES: &str = "  mail-index count tag:unread
  mail-index count
      Every message in the database.";

/// The notmuch index of a maildir: scan it, index given files, search,
/// count and tag with notmuch queries. The database is MAILDIR/.notmuch,
/// the one the notmuch CLI, emacs and neomutt read.
#[derive(Debug, Parser)]
#[command(name = PROGRAM, version, after_help = after_help(EXAMPLES))]
struct Args {
    /// The maildir [default: the account's maildir from the configuration].
    #[arg(long, env = "MAILBOT_MAILDIR", value_name = "DIR", global = true)]
    maildir: Option<PathBuf>,
    /// Configuration file, for an account's maildir [default: $XDG_CONFIG_HOME/mailbot/config.toml].
    #[arg(long, env = "MAILBOT_CONFIG", value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Account from the configuration file.
    #[arg(long, env = "MAILBOT_ACCOUNT", value_name = "NAME", global = true)]
    account: Option<String>,
    /// Tag for new messages, repeatable or comma-separated; replaces the
    /// default "new" (--tag '' for none).
    #[arg(
        long = "tag",
        value_name = "TAG",
        env = "MAILBOT_INDEX_TAGS",
        value_delimiter = ',',
        global = true
    )]
    tags: Option<Vec<String>>,
    /// Do not keep maildir flags and tags in step (notmuch's
    /// maildir.synchronize_flags = false).
    #[arg(long, env = "MAILBOT_INDEX_NO_SYNC_FLAGS", global = true)]
    no_sync_flags: bool,
    #[command(flatten)]
    log: LogArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Index new files under the maildir and drop the ones that are gone,
    /// as `notmuch new` does (renamed files keep their tags).
    #[command(after_help = after_help(NEW_EXAMPLES))]
    New {
        /// Print a JSON summary on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Make the database again from the maildir, for when it is damaged:
    /// the old one goes to MAILDIR/.mailbot/damaged-notmuch, every message
    /// is indexed with the tags of its maildir flags (none gets "new").
    #[command(after_help = after_help(REBUILD_EXAMPLES))]
    Rebuild {
        /// Print a JSON summary on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Index exactly these files, no scan. Silent on success.
    #[command(after_help = after_help(ADD_EXAMPLES))]
    Add {
        /// Message files.
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Read paths from stdin, one per line (NUL-separated with -0),
        /// indexing them as they come.
        #[arg(long)]
        stdin: bool,
        /// NUL instead of newline between paths on stdin.
        #[arg(short = '0', long = "null")]
        null: bool,
    },
    /// Print the messages matching a notmuch query, newest first.
    #[command(after_help = after_help(SEARCH_EXAMPLES))]
    Search {
        /// The query (notmuch's syntax; words are joined with spaces).
        #[arg(value_name = "QUERY", required = true, allow_hyphen_values = true)]
        query: Vec<String>,
        /// What to print per message.
        #[arg(long, value_enum, default_value_t = Output::Files)]
        output: Output,
        /// NUL instead of newline after each path or id.
        #[arg(short = '0', long = "null")]
        null: bool,
    },
    /// Add (+tag) and remove (-tag) tags on the messages matching a query:
    /// `tag +a -b -- QUERY`. With flag sync, files are renamed to match.
    #[command(after_help = after_help(TAG_EXAMPLES))]
    Tag {
        /// Tag changes, then `--` and the query.
        #[arg(
            value_name = "+TAG|-TAG ... -- QUERY",
            required = true,
            allow_hyphen_values = true,
            trailing_var_arg = true
        )]
        words: Vec<String>,
    },
    /// Print a notmuch configuration file for this database (its one line
    /// database.path; new.tags, new.ignore and maildir.synchronize_flags are
    /// in the database), creating the database when missing.
    #[command(name = "notmuch-config", after_help = after_help(NOTMUCH_CONFIG_EXAMPLES))]
    NotmuchConfig,
    /// Print how many messages match a notmuch query [default: all].
    #[command(after_help = after_help(COUNT_EXAMPLES))]
    Count {
        /// The query.
        #[arg(value_name = "QUERY", allow_hyphen_values = true)]
        query: Vec<String>,
    },
}

/// What `search` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    /// Every file of every message, one path per line.
    Files,
    /// The Message-IDs (without `id:` and angle brackets).
    Messages,
    /// One JSON object per message.
    Json,
}

fn main() -> ExitCode {
    let args: Args = match cli::parse_args() {
        Ok(a) => a,
        Err(code) => return code,
    };
    args.log.init(PROGRAM);
    index::install_panic_filter();
    finish(PROGRAM, run(args))
}

fn run(args: Args) -> anyhow::Result<Exit> {
    let maildir = maildir(&args)?;
    let options = IndexOptions {
        new_tags: match &args.tags {
            None => IndexOptions::default().new_tags,
            Some(tags) => tags.iter().filter(|t| !t.is_empty()).cloned().collect(),
        },
        synchronize_flags: !args.no_sync_flags,
    };
    match args.command {
        Command::New { json } => new(&maildir, options, json, false, &args.log),
        Command::Rebuild { json } => new(&maildir, options, json, true, &args.log),
        Command::Add { paths, stdin, null } => add(&maildir, options, paths, stdin, null),
        Command::Search {
            query,
            output,
            null,
        } => search(&maildir, &query.join(" "), output, null),
        Command::Count { query } => {
            let index = Index::open_read_only(&maildir)?;
            let query = if query.is_empty() {
                "*".to_string()
            } else {
                query.join(" ")
            };
            let n = index.count(&query)?;
            let mut out = PathOutput::stdout(false);
            out.line(&n.to_string()).context("stdout")?;
            out.flush().context("stdout")?;
            Ok(Exit::Ok)
        }
        Command::Tag { words } => tag(&maildir, options, &words),
        Command::NotmuchConfig => {
            // Opened once for writing, so the settings are in the database.
            Index::open(&maildir, options)?.close()?;
            let mut out = PathOutput::stdout(false);
            for line in index::notmuch_config(&maildir)?.lines() {
                out.line(line).context("stdout")?;
            }
            out.flush().context("stdout")?;
            Ok(Exit::Ok)
        }
    }
}

/// The maildir: `--maildir` or `MAILBOT_MAILDIR`, else the account's.
fn maildir(args: &Args) -> anyhow::Result<PathBuf> {
    let env = ProcessEnv::capture();
    if let Some(dir) = &args.maildir {
        return Ok(expand_tilde(dir, env.home.as_deref()));
    }
    let account = AccountArgs {
        config: args.config.clone(),
        account: args.account.clone(),
        ..AccountArgs::default()
    }
    .resolve(&env, &Account::default())?;
    account.account.maildir.ok_or_else(|| {
        Error::new(
            ErrorKind::Usage,
            "maildir",
            "none given: use --maildir DIR, MAILBOT_MAILDIR, or maildir = \"...\" in the account's configuration",
        )
        .into()
    })
}

/// `new`, or with `rebuild` the same scan into a database made again.
fn new(
    maildir: &Path,
    options: IndexOptions,
    json: bool,
    rebuild: bool,
    log: &LogArgs,
) -> anyhow::Result<Exit> {
    let bar = (io::stderr().is_terminal() && !log.quiet).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{prefix} {wide_bar} {pos}/{len} files {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_prefix("indexing");
        bar
    });
    let mut progress = |done: usize, total: usize| {
        if let Some(bar) = &bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    };
    let outcome = if rebuild {
        Index::rebuild(maildir, options, &mut progress)
    } else {
        Index::open(maildir, options)
            .and_then(|mut index| index.scan(&mut progress).map(|report| (index, report)))
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let (index, report) = outcome?;
    index.close()?;
    for (path, reason) in &report.failed {
        eprintln!("{PROGRAM}: {}: {reason}", path.display());
    }
    for path in &report.not_mail {
        tracing::info!("{}: not a mail message, ignored", path.display());
    }
    tracing::info!(
        "{} added, {} removed, {} renamed, {} copies of known messages, {} failed, {} not mail",
        report.added,
        report.removed,
        report.renamed,
        report.duplicate_id,
        report.failed.len(),
        report.not_mail.len()
    );
    if json {
        let mut out = PathOutput::stdout(false);
        out.line(&serde_json::to_string(&report)?)
            .context("stdout")?;
        out.flush().context("stdout")?;
    }
    Ok(if report.failed.is_empty() {
        Exit::Ok
    } else {
        Exit::Partial
    })
}

/// How long `add --stdin` waits for more paths before it closes the
/// database.
const IDLE_CLOSE: Duration = Duration::from_millis(300);

/// How long `add --stdin` waits for another writer to finish before it
/// gives up with exit 75, when more paths come in.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// Opens the database again for a later batch of `add --stdin`, waiting
/// up to [`LOCK_WAIT`] for another writer: a long-running pipeline should
/// not end because a mail reader tagged a message at that moment.
fn reopen(maildir: &Path, options: &IndexOptions) -> anyhow::Result<Index> {
    let start = std::time::Instant::now();
    loop {
        match Index::open(maildir, options.clone()) {
            Err(e) if e.is_locked() && start.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(200));
            }
            other => return Ok(other?),
        }
    }
}

/// How many waiting stdin paths are indexed together.
const STDIN_BATCH: usize = 1000;

fn add(
    maildir: &Path,
    options: IndexOptions,
    paths: Vec<PathBuf>,
    stdin: bool,
    null: bool,
) -> anyhow::Result<Exit> {
    if paths.is_empty() && !stdin {
        return Err(Error::new(ErrorKind::Usage, "", "no files: give paths, or --stdin").into());
    }
    let mut tally = Tally::new();
    if !stdin {
        let mut index = Index::open(maildir, options.clone())?;
        tally.add(&mut index, &paths)?;
        index.close()?;
    } else {
        // A maildir that is not there yet is the producer's to make
        // (`mail-sync --account A | mail-index --account A add --stdin`
        // on a new account): the database is opened at the first path.
        let index = if paths.is_empty() && !maildir.exists() {
            None
        } else {
            let mut index = Index::open(maildir, options.clone())?;
            tally.add(&mut index, &paths)?;
            Some(index)
        };
        // Paths are indexed as they come (`mail-sync --watch` never ends
        // its output). When none has come for a moment the database is
        // closed, so what was indexed is on disk and searchable, and other
        // writers (notmuch tag from a mail reader, mail-index new from
        // cron) are not locked out while the producer is idle.
        let rx = cli::stdin_paths(null);
        let mut open = index;
        loop {
            let first = if open.is_some() {
                match rx.recv_timeout(IDLE_CLOSE) {
                    Ok(p) => p,
                    Err(RecvTimeoutError::Timeout) => {
                        if let Some(index) = open.take() {
                            index.close()?;
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(p) => p,
                    Err(_) => break,
                }
            };
            let mut batch = vec![first?];
            while batch.len() < STDIN_BATCH {
                match rx.try_recv() {
                    Ok(p) => batch.push(p?),
                    Err(_) => break,
                }
            }
            let index = match &mut open {
                Some(index) => index,
                None => open.insert(reopen(maildir, &options)?),
            };
            tally.add(index, &batch)?;
        }
        if let Some(index) = open {
            index.close()?;
        }
    }
    tracing::info!(
        "{} added, {} already indexed, {} copies of known messages, {} failed",
        tally.added,
        tally.already,
        tally.duplicates,
        tally.failed
    );
    Ok(tally.status)
}

/// The outcome of `add` so far.
#[derive(Debug)]
struct Tally {
    added: usize,
    already: usize,
    duplicates: usize,
    failed: usize,
    status: Exit,
}

impl Tally {
    fn new() -> Self {
        Tally {
            added: 0,
            already: 0,
            duplicates: 0,
            failed: 0,
            status: Exit::Ok,
        }
    }

    fn add(&mut self, index: &mut Index, paths: &[PathBuf]) -> anyhow::Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        let report = index.add(paths)?;
        self.added += report.added.len();
        self.already += report.already_indexed.len();
        self.duplicates += report.duplicate_id.len();
        self.failed += report.failed.len();
        for (_, err) in report.failed {
            let code = match err.kind() {
                ErrorKind::InputMissing => Exit::NoInput,
                _ => Exit::Partial,
            };
            cli::report(PROGRAM, &anyhow::Error::new(err));
            self.status = self.status.worse(code);
        }
        Ok(())
    }
}

fn search(maildir: &Path, query: &str, output: Output, null: bool) -> anyhow::Result<Exit> {
    let index = Index::open_read_only(maildir)?;
    let hits = index.search(query)?;
    let mut out = PathOutput::stdout(null);
    for hit in &hits {
        match output {
            Output::Files => {
                for file in &hit.files {
                    out.path(file).context("stdout")?;
                }
            }
            Output::Messages => out.path(Path::new(&hit.message_id)).context("stdout")?,
            Output::Json => out.line(&serde_json::to_string(hit)?).context("stdout")?,
        }
    }
    out.flush().context("stdout")?;
    Ok(Exit::Ok)
}

fn tag(maildir: &Path, options: IndexOptions, words: &[String]) -> anyhow::Result<Exit> {
    let (changes, query) = split_tag_words(words)?;
    let mut index = Index::open(maildir, options)?;
    let n = index.tag(&query, &changes)?;
    index.close()?;
    tracing::info!("{n} messages matched");
    Ok(Exit::Ok)
}

/// `+a -b -- QUERY...` (or, as notmuch allows, `+a -b QUERY...`) into the
/// changes and the query.
fn split_tag_words(words: &[String]) -> anyhow::Result<(Vec<TagChange>, String)> {
    let mut changes = Vec::new();
    let mut rest = words;
    while let Some((first, tail)) = rest.split_first() {
        if first == "--" {
            rest = tail;
            break;
        }
        match TagChange::parse(first) {
            Some(c) => changes.push(c),
            None if first.starts_with(['+', '-']) => {
                return Err(Error::new(
                    ErrorKind::Usage,
                    first.as_str(),
                    "not a tag change (+TAG or -TAG)",
                )
                .into());
            }
            None => break,
        }
        rest = tail;
    }
    if changes.is_empty() {
        return Err(Error::new(
            ErrorKind::Usage,
            "",
            "no tag changes: give +TAG or -TAG before the query",
        )
        .into());
    }
    if rest.is_empty() {
        return Err(Error::new(
            ErrorKind::Usage,
            "",
            "no query after the tag changes (use '*' for every message)",
        )
        .into());
    }
    Ok((changes, rest.join(" ")))
}
