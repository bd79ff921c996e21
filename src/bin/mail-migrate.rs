//! mail-migrate: move mailboxes from one IMAP server to another
//! (imapsync successor): incremental, resumable, verified.
//!
//! Thin: flags → a checked plan (jobs with their credentials, options) →
//! `mailbot::migrate::run`, `verify` or `plan` → one line per failure on
//! stderr, JSON lines with `--json`, bars on a terminal.

use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use clap::Parser;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use mailbot::cli::{self, LogArgs, ProcessEnv};
use mailbot::config::{self, Secret};
use mailbot::error::{Error, ErrorKind};
use mailbot::exit::Exit;
use mailbot::imap::ImapUrl;
use mailbot::migrate::{
    self, Credentials, Endpoint, Event, Job, MailboxPlan, MailboxReport, MailboxVerdict, Mapping,
    Options, SecretSource, Shard, users,
};
use mailbot::tls::TlsOptions;

const PROGRAM: &str = "mail-migrate";

const EXAMPLES: &str = "  MAILBOT_MIGRATE_FROM_PASSWORD=... MAILBOT_MIGRATE_TO_PASSWORD=... \\
    mail-migrate imaps://alice@old.example.org imaps://alice@new.example.org
      One mailbox, every folder; run it again: only what changed moves.
  mail-migrate --users users.csv --from imaps://old.example.org --to imaps://new.example.org --jobs 8
      Many mailboxes (users.csv: source_user,destination_user,source_password,destination_password;
      chmod 600), 8 at a time; failures are named and the others go on.
  mail-migrate --users users.csv --from imaps://old.example.org --from-master admin \\
      --from-master-password-command 'pass old/admin' --to imaps://new.example.org --to-master admin \\
      --to-master-password-command 'pass new/admin' --plan
      Inventory through admin logins (SASL PLAIN as admin for each user): folders, messages, sizes,
      and the time the copy will take.
  mail-migrate --users users.csv --from ... --to ... --verify --json
      Compare both sides of every folder: one JSON object per mailbox, then a summary line.
  parallel --pipe --header : -N 50 mail-migrate --users - --from ... --to ... < users.csv
      The CSV in slices of 50 users over GNU parallel (add --sshlogin to spread them over hosts).
  mail-migrate --users users.csv --from ... --to ... --shard \"$JOB_COMPLETION_INDEX/8\"
      Shard I of 8 (0-based): the same users every time, as a Kubernetes Indexed Job runs it.";

/// Move mailboxes between IMAP servers: every folder mapped, each
/// message byte for byte with its flags, keywords and INTERNALDATE;
/// incremental, resumable and idempotent passes; --verify and --plan.
#[derive(Debug, Parser)]
#[command(name = PROGRAM, version, after_help = cli::after_help(EXAMPLES))]
struct Args {
    /// The source mailbox: imaps://USER@HOST[:993] or imap://USER@HOST[:143] (STARTTLS).
    #[arg(value_name = "SOURCE", conflicts_with = "users")]
    source: Option<String>,
    /// The destination mailbox, as SOURCE.
    #[arg(value_name = "DESTINATION", requires = "source")]
    destination: Option<String>,
    /// A CSV of mailboxes (`-` for stdin): header row, then
    /// source_user[,destination_user][,source_password|source_password_command]
    /// [,destination_password|destination_password_command]. Refused
    /// unless mode 0600 when it holds passwords.
    #[arg(long, value_name = "FILE", env = "MAILBOT_MIGRATE_USERS")]
    users: Option<PathBuf>,
    /// The source server for --users: imaps://HOST[:PORT] or imap://HOST (STARTTLS).
    #[arg(
        long,
        value_name = "URL",
        env = "MAILBOT_MIGRATE_FROM",
        requires = "users"
    )]
    from: Option<String>,
    /// The destination server for --users.
    #[arg(
        long,
        value_name = "URL",
        env = "MAILBOT_MIGRATE_TO",
        requires = "users"
    )]
    to: Option<String>,
    /// Command printing the source password (one mailbox; or every
    /// --users row without its own).
    #[arg(
        long,
        value_name = "CMD",
        env = "MAILBOT_MIGRATE_FROM_PASSWORD_COMMAND"
    )]
    from_password_command: Option<String>,
    /// Command printing the destination password.
    #[arg(long, value_name = "CMD", env = "MAILBOT_MIGRATE_TO_PASSWORD_COMMAND")]
    to_password_command: Option<String>,
    /// Log in to the source as this administrator on each user's behalf
    /// (SASL PLAIN with the user as authorisation identity).
    #[arg(long, value_name = "USER", env = "MAILBOT_MIGRATE_FROM_MASTER")]
    from_master: Option<String>,
    /// The same for the destination.
    #[arg(long, value_name = "USER", env = "MAILBOT_MIGRATE_TO_MASTER")]
    to_master: Option<String>,
    /// Command printing the source administrator's password.
    #[arg(
        long,
        value_name = "CMD",
        env = "MAILBOT_MIGRATE_FROM_MASTER_PASSWORD_COMMAND",
        requires = "from_master"
    )]
    from_master_password_command: Option<String>,
    /// Command printing the destination administrator's password.
    #[arg(
        long,
        value_name = "CMD",
        env = "MAILBOT_MIGRATE_TO_MASTER_PASSWORD_COMMAND",
        requires = "to_master"
    )]
    to_master_password_command: Option<String>,
    /// Log in as USER<SEP>MASTER with LOGIN instead of SASL PLAIN
    /// (Dovecot's master users: `*`); for the source.
    #[arg(long, value_name = "SEP", requires = "from_master")]
    from_master_separator: Option<String>,
    /// The same for the destination.
    #[arg(long, value_name = "SEP", requires = "to_master")]
    to_master_separator: Option<String>,
    /// Command printing an OAuth2 access token for the source
    /// (AUTHENTICATE XOAUTH2); `{user}` in it stands for the user.
    #[arg(
        long,
        value_name = "CMD",
        env = "MAILBOT_MIGRATE_FROM_OAUTH2_TOKEN_COMMAND"
    )]
    from_oauth2_token_command: Option<String>,
    /// The same for the destination.
    #[arg(
        long,
        value_name = "CMD",
        env = "MAILBOT_MIGRATE_TO_OAUTH2_TOKEN_COMMAND"
    )]
    to_oauth2_token_command: Option<String>,
    /// PEM of CA certificates to trust on both sides, besides the
    /// system's store; repeatable.
    #[arg(
        long,
        value_name = "PEM",
        env = "MAILBOT_CA_FILE",
        value_delimiter = ':'
    )]
    ca_file: Vec<PathBuf>,
    /// PEM of CA certificates to trust for the source only; repeatable.
    #[arg(long, value_name = "PEM")]
    from_ca_file: Vec<PathBuf>,
    /// PEM of CA certificates to trust for the destination only; repeatable.
    #[arg(long, value_name = "PEM")]
    to_ca_file: Vec<PathBuf>,
    /// Do not verify TLS certificates (tests only; says so on stderr).
    /// STARTTLS stays required and credentials still need TLS.
    #[arg(long, env = "MAILBOT_INSECURE")]
    insecure: bool,
    /// DANGEROUS: send passwords and tokens over a connection without TLS
    /// (only a URL with ?starttls=none has one), where anyone on the way
    /// can read them.
    #[arg(long, env = "MAILBOT_ALLOW_PLAINTEXT_AUTH")]
    allow_plaintext_auth: bool,
    /// Only folders matching PATTERN (names with `/` between levels, no
    /// namespace prefix; `*` anything, `%` anything but `/`); repeatable.
    #[arg(long = "folder", value_name = "PATTERN")]
    folders: Vec<String>,
    /// Leave out folders matching PATTERN; repeatable.
    #[arg(long = "exclude", value_name = "PATTERN")]
    excludes: Vec<String>,
    /// Rename FROM=TO (a `*` in FROM takes any text that a `*` in TO
    /// repeats: 'Archive/*=Old/*'); repeatable, the first match applies.
    #[arg(long = "rename", value_name = "FROM=TO")]
    renames: Vec<String>,
    /// Do not map special-use folders (\Sent, \Trash, ...) by attribute.
    #[arg(long)]
    no_special_use: bool,
    /// Mirror deletions: expunge destination copies of messages the
    /// source no longer has (off by default).
    #[arg(long)]
    delete: bool,
    /// Compare both sides instead of copying (counts, Message-ID and
    /// size multisets, flags); exit 0 only when everything matches.
    #[arg(long, conflicts_with = "plan")]
    verify: bool,
    /// With --verify, compare the sha256 of every message too (reads
    /// every byte of both sides).
    #[arg(long)]
    verify_hashes: bool,
    /// Measure instead of copying (read-only): folders, messages and
    /// sizes per mailbox, what is left, and the time it will take.
    #[arg(long)]
    plan: bool,
    /// For --plan: MB/s one job moves, when no earlier pass measured it.
    #[arg(long, value_name = "MB_PER_S", default_value_t = 40.0)]
    rate: f64,
    /// One JSON object per mailbox on stdout.
    #[arg(long)]
    json: bool,
    /// Mailboxes moved at once.
    #[arg(short, long, value_name = "N", default_value_t = 1, env = "MAILBOT_MIGRATE_JOBS",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Sessions per server at most, over all jobs (0: no limit).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        env = "MAILBOT_MIGRATE_MAX_CONNECTIONS"
    )]
    max_connections: usize,
    /// Connection pairs one mailbox may use: a folder of 100 messages or
    /// more is shared between them.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=16))]
    connections: u16,
    /// Only shard I of N (0-based) of the --users rows, chosen by a hash
    /// of the source user: the same rows on every run.
    #[arg(long, value_name = "I/N", env = "MAILBOT_MIGRATE_SHARD")]
    shard: Option<String>,
    /// Where the state of each mailbox pair is kept [default:
    /// $XDG_STATE_HOME/mailbot/migrate, else ~/.local/state/mailbot/migrate].
    #[arg(long, value_name = "DIR", env = "MAILBOT_MIGRATE_STATE")]
    state: Option<PathBuf>,
    /// Network timeout in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    timeout: f64,
    /// Do not use this IMAP extension even if offered (MULTIAPPEND,
    /// LITERAL+, CONDSTORE, LIST-STATUS, UIDPLUS, SASL-IR); repeatable.
    #[arg(long = "disable-extension", value_name = "NAME", value_delimiter = ',')]
    disable_extensions: Vec<String>,
    #[command(flatten)]
    log: LogArgs,
}

fn main() -> ExitCode {
    let args = match cli::parse_args::<Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    args.log.init(PROGRAM);
    cli::finish(PROGRAM, run(&args))
}

fn usage(object: &str, why: impl Into<String>) -> anyhow::Error {
    Error::new(ErrorKind::Usage, object, why).into()
}

/// The secrets of one side that do not come from the CSV.
struct SideSecrets {
    password: Option<SecretSource>,
    master: Option<(String, SecretSource, Option<String>)>,
    oauth2: Option<String>,
}

impl SideSecrets {
    fn credentials(
        &self,
        user: &str,
        row_secret: Option<&SecretSource>,
        side: &str,
    ) -> anyhow::Result<Credentials> {
        if let Some(cmd) = &self.oauth2 {
            return Ok(Credentials::OAuth2 {
                user: user.to_string(),
                token_command: cmd.clone(),
            });
        }
        if let Some((admin, secret, separator)) = &self.master {
            return Ok(match separator {
                Some(sep) => Credentials::Master {
                    user: user.to_string(),
                    master: admin.clone(),
                    separator: sep.clone(),
                    secret: secret.clone(),
                },
                None => Credentials::PlainAs {
                    user: user.to_string(),
                    admin: admin.clone(),
                    secret: secret.clone(),
                },
            });
        }
        let secret = row_secret.or(self.password.as_ref()).cloned().ok_or_else(|| {
            anyhow::Error::from(Error::new(
                ErrorKind::Config,
                format!("{user} ({side})"),
                format!(
                    "no password: give a {side}_password_command column, --{}-password-command, \
                     MAILBOT_MIGRATE_{}_PASSWORD or --{}-master",
                    flag_side(side),
                    flag_side(side).to_uppercase(),
                    flag_side(side)
                ),
            ))
        })?;
        Ok(Credentials::Password {
            user: user.to_string(),
            secret,
        })
    }
}

fn flag_side(side: &str) -> &'static str {
    if side == "source" { "from" } else { "to" }
}

#[allow(clippy::too_many_arguments)]
fn side_secrets(
    password_command: &Option<String>,
    env_password: Option<String>,
    master: &Option<String>,
    master_command: &Option<String>,
    env_master_password: Option<String>,
    separator: &Option<String>,
    oauth2: &Option<String>,
    side: &str,
) -> anyhow::Result<SideSecrets> {
    let password = match (password_command, env_password) {
        (Some(c), _) => Some(SecretSource::Command(c.clone())),
        (None, Some(p)) => Some(SecretSource::Given(Secret::new(p))),
        (None, None) => None,
    };
    let master = match master {
        None => None,
        Some(admin) => {
            let secret = match (master_command, env_master_password) {
                (Some(c), _) => SecretSource::Command(c.clone()),
                (None, Some(p)) => SecretSource::Given(Secret::new(p)),
                (None, None) => {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!("--{}-master {admin}", flag_side(side)),
                        format!(
                            "no password for it: give --{0}-master-password-command or MAILBOT_MIGRATE_{1}_MASTER_PASSWORD",
                            flag_side(side),
                            flag_side(side).to_uppercase()
                        ),
                    )
                    .into());
                }
            };
            Some((admin.clone(), secret, separator.clone()))
        }
    };
    Ok(SideSecrets {
        password,
        master,
        oauth2: oauth2.clone(),
    })
}

fn env_secret(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A server URL for --users: no user part.
fn server_url(text: &str, flag: &str) -> anyhow::Result<ImapUrl> {
    let url = ImapUrl::parse(text)?;
    if url.user.is_some() {
        return Err(usage(
            &format!("{flag} {text}"),
            "the users come from --users: give the server only (imaps://HOST[:PORT])",
        ));
    }
    Ok(url)
}

/// What the run does, checked.
struct Plan {
    jobs: Vec<Job>,
    options: Options,
}

fn tls_options(args: &Args, side: &[PathBuf]) -> TlsOptions {
    TlsOptions {
        ca_files: args.ca_file.iter().chain(side).cloned().collect(),
        ca_files_only: false,
        insecure: args.insecure,
        allow_plaintext_auth: args.allow_plaintext_auth,
    }
}

fn plan(args: &Args) -> anyhow::Result<Plan> {
    let env = ProcessEnv::capture();
    if args.insecure {
        eprintln!("{PROGRAM}: warning: TLS certificates are not verified (--insecure)");
    }
    let from = side_secrets(
        &args.from_password_command,
        env_secret("MAILBOT_MIGRATE_FROM_PASSWORD"),
        &args.from_master,
        &args.from_master_password_command,
        env_secret("MAILBOT_MIGRATE_FROM_MASTER_PASSWORD"),
        &args.from_master_separator,
        &args.from_oauth2_token_command,
        "source",
    )?;
    let to = side_secrets(
        &args.to_password_command,
        env_secret("MAILBOT_MIGRATE_TO_PASSWORD"),
        &args.to_master,
        &args.to_master_password_command,
        env_secret("MAILBOT_MIGRATE_TO_MASTER_PASSWORD"),
        &args.to_master_separator,
        &args.to_oauth2_token_command,
        "destination",
    )?;
    let mut jobs = Vec::new();
    match (&args.source, &args.destination, &args.users) {
        (Some(s), Some(d), None) => {
            let source = ImapUrl::parse(s)?;
            let destination = ImapUrl::parse(d)?;
            let (Some(su), Some(du)) = (source.user.clone(), destination.user.clone()) else {
                return Err(usage(
                    "URL",
                    "both URLs need the user: imaps://USER@HOST (or use --users)",
                ));
            };
            if args.shard.is_some() {
                return Err(usage(
                    "--shard",
                    "shards split --users; one mailbox has none",
                ));
            }
            jobs.push(Job {
                name: su.clone(),
                source: Endpoint {
                    url: source,
                    credentials: from.credentials(&su, None, "source")?,
                },
                destination: Endpoint {
                    url: destination,
                    credentials: to.credentials(&du, None, "destination")?,
                },
            });
        }
        (None, None, Some(file)) => {
            let (Some(f), Some(t)) = (&args.from, &args.to) else {
                return Err(usage(
                    "--users",
                    "needs --from URL and --to URL (the servers)",
                ));
            };
            let from_url = server_url(f, "--from")?;
            let to_url = server_url(t, "--to")?;
            let rows = read_users(file)?;
            let shard = args.shard.as_deref().map(Shard::parse).transpose()?;
            for row in rows {
                if shard.is_some_and(|s| !s.holds(&row.source_user)) {
                    continue;
                }
                jobs.push(Job {
                    name: row.source_user.clone(),
                    source: Endpoint {
                        url: from_url.clone(),
                        credentials: from.credentials(
                            &row.source_user,
                            row.source_secret.as_ref(),
                            "source",
                        )?,
                    },
                    destination: Endpoint {
                        url: to_url.clone(),
                        credentials: to.credentials(
                            &row.destination_user,
                            row.destination_secret.as_ref(),
                            "destination",
                        )?,
                    },
                });
            }
        }
        (Some(_), None, _) => {
            return Err(usage("DESTINATION", "give both SOURCE and DESTINATION"));
        }
        _ => {
            return Err(usage(
                "mail-migrate",
                "give SOURCE DESTINATION, or --users FILE --from URL --to URL",
            ));
        }
    }
    let state_dir = match &args.state {
        Some(d) => d.clone(),
        None => {
            let base = match env::var_path("XDG_STATE_HOME") {
                Some(x) if x.is_absolute() => x,
                _ => env
                    .home
                    .clone()
                    .ok_or_else(|| {
                        usage(
                            "--state",
                            "no state folder: give --state DIR (HOME is unset)",
                        )
                    })?
                    .join(".local/state"),
            };
            base.join("mailbot/migrate")
        }
    };
    let mut renames = Vec::new();
    for r in &args.renames {
        renames.push(Mapping::parse_rename(r)?);
    }
    let options = Options {
        source_tls: tls_options(args, &args.from_ca_file),
        destination_tls: tls_options(args, &args.to_ca_file),
        state_dir,
        mapping: Mapping {
            include: args.folders.clone(),
            exclude: args.excludes.clone(),
            renames,
            by_special_use: !args.no_special_use,
        },
        delete: args.delete,
        connections: usize::from(args.connections),
        jobs: usize::from(args.jobs),
        max_connections: args.max_connections,
        timeout: Duration::try_from_secs_f64(args.timeout.max(0.001))
            .unwrap_or(Duration::from_secs(60)),
        disable_extensions: args
            .disable_extensions
            .iter()
            .map(|e| e.to_ascii_uppercase())
            .collect(),
    };
    Ok(Plan { jobs, options })
}

/// The rows of the users file (or stdin), its mode checked when it
/// holds passwords.
fn read_users(file: &PathBuf) -> anyhow::Result<Vec<users::UserRow>> {
    let origin = file.display().to_string();
    let text = if origin == "-" {
        let mut t = String::new();
        io::stdin()
            .read_to_string(&mut t)
            .map_err(|e| Error::io(ErrorKind::InputMissing, "stdin", e))?;
        t
    } else {
        std::fs::read_to_string(file).map_err(|e| Error::reading(file, e))?
    };
    let (rows, holds_passwords) = users::parse(&text, &origin)?;
    if holds_passwords && origin != "-" {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file)
            .map_err(|e| Error::reading(file, e))?
            .permissions()
            .mode();
        config::check_secret_mode(file, mode)?;
    }
    Ok(rows)
}

/// Reads a path variable (the binary's only other environment access).
mod env {
    pub fn var_path(name: &str) -> Option<std::path::PathBuf> {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
    }
}

fn run(args: &Args) -> anyhow::Result<Exit> {
    let plan = plan(args)?;
    if plan.jobs.is_empty() {
        return Ok(Exit::Ok);
    }
    let bars = Bars::new(
        !args.log.quiet && io::stderr().is_terminal() && !args.plan && !args.verify,
        plan.options.jobs.min(plan.jobs.len()),
    );
    let out = Mutex::new(io::stdout());
    if args.plan {
        let plans = migrate::plan(&plan.jobs, &plan.options, &|_| {})?;
        return print_plan(args, &plans, &plan.options);
    }
    if args.verify || args.verify_hashes {
        let verdicts = migrate::verify(&plan.jobs, &plan.options, args.verify_hashes, &|_| {})?;
        return print_verdicts(args, &verdicts);
    }
    let verbose = args.log.verbose > 0;
    let json = args.json;
    let on_event = |e: Event<'_>| {
        bars.event(&e);
        if let Event::Done(r) = e {
            tell(r, verbose, &bars);
            if json && let Ok(line) = serde_json::to_string(r) {
                let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
                let _ = writeln!(o, "{line}").and_then(|()| o.flush());
            }
        }
    };
    let reports = migrate::run(&plan.jobs, &plan.options, &on_event)?;
    bars.clear();
    Ok(migrate::overall_exit(&reports))
}

/// Lines on stderr for a finished mailbox: failures always, a summary with -v.
fn tell(r: &MailboxReport, verbose: bool, bars: &Bars) {
    let mut lines = Vec::new();
    if let Some(e) = &r.error {
        lines.push(format!("{PROGRAM}: {}: {e}", r.mailbox));
    }
    for f in &r.folders {
        if let Some(e) = &f.error {
            lines.push(format!("{PROGRAM}: {}: {}: {e}", r.mailbox, f.source));
        }
        for m in &f.failed_messages {
            lines.push(format!(
                "{PROGRAM}: {}: {}: UID {} ({} bytes{}): {}",
                r.mailbox,
                f.source,
                m.uid,
                m.size,
                m.message_id
                    .as_deref()
                    .map(|id| format!(", {id}"))
                    .unwrap_or_default(),
                m.error
            ));
        }
    }
    if verbose && r.error.is_none() {
        lines.push(format!(
            "{PROGRAM}: {}: {} copied ({} bytes), {} found already there, {} flag updates, {} deleted, {} failed, in {:.1} s",
            r.mailbox, r.copied, r.bytes, r.found, r.flags_updated, r.deleted, r.failed, r.seconds
        ));
    }
    for l in lines {
        bars.println(&l);
    }
}

fn print_verdicts(args: &Args, verdicts: &[MailboxVerdict]) -> anyhow::Result<Exit> {
    let mut out = io::stdout().lock();
    let mut differ = Vec::new();
    let mut folders = 0;
    let mut messages = 0;
    for v in verdicts {
        folders += v.folders.len();
        messages += v.folders.iter().map(|f| f.source_messages).sum::<u64>();
        if args.json {
            writeln!(out, "{}", serde_json::to_string(v)?)?;
        } else {
            if let Some(e) = &v.error {
                writeln!(out, "{}: cannot compare: {e}", v.mailbox)?;
            }
            for f in v.folders.iter().filter(|f| !f.equal) {
                writeln!(
                    out,
                    "{}: {} -> {}: {} missing, {} flags differ, {} extra{}{}",
                    v.mailbox,
                    f.source,
                    f.destination,
                    f.missing,
                    f.flags_differ,
                    f.extra,
                    if f.missing_examples.is_empty() {
                        String::new()
                    } else {
                        format!(" (e.g. {})", f.missing_examples.join(", "))
                    },
                    f.error
                        .as_deref()
                        .map(|e| format!("; {e}"))
                        .unwrap_or_default()
                )?;
            }
        }
        if !v.equal {
            differ.push(v.mailbox.clone());
        }
    }
    out.flush()?;
    let summary = if differ.is_empty() {
        format!(
            "verify: {} mailboxes, {folders} folders, {messages} messages: all equal",
            verdicts.len()
        )
    } else {
        format!(
            "verify: {} of {} mailboxes differ: {}",
            differ.len(),
            verdicts.len(),
            differ.join(", ")
        )
    };
    if args.json {
        eprintln!("{PROGRAM}: {summary}");
    } else {
        writeln!(out, "{summary}")?;
    }
    let exits: Vec<Exit> = verdicts
        .iter()
        .map(|v| {
            Exit::ALL
                .into_iter()
                .find(|e| e.code() == v.exit)
                .unwrap_or(Exit::Partial)
        })
        .collect();
    Ok(if exits.iter().all(|e| *e == Exit::Ok) {
        Exit::Ok
    } else if verdicts.iter().all(|v| v.error.is_some()) && exits.windows(2).all(|w| w[0] == w[1]) {
        exits[0]
    } else {
        Exit::Partial
    })
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}

fn print_plan(args: &Args, plans: &[MailboxPlan], options: &Options) -> anyhow::Result<Exit> {
    let mut out = io::stdout().lock();
    let mut measured: Vec<f64> = plans.iter().filter_map(|p| p.measured_rate).collect();
    measured.sort_by(f64::total_cmp);
    let rate = measured
        .get(measured.len() / 2)
        .copied()
        .unwrap_or(args.rate * 1e6);
    let (mut messages, mut bytes, mut rest_messages, mut rest_bytes) = (0, 0, 0, 0);
    let mut failed = Vec::new();
    if !args.json {
        writeln!(
            out,
            "{:<32} {:>7} {:>9} {:>10} {:>10}",
            "mailbox", "folders", "messages", "size", "left"
        )?;
    }
    for p in plans {
        messages += p.messages;
        bytes += p.bytes;
        rest_messages += p.remaining_messages;
        rest_bytes += p.remaining_bytes;
        if let Some(e) = &p.error {
            eprintln!("{PROGRAM}: {}: {e}", p.mailbox);
            failed.push(p.mailbox.clone());
        }
        if args.json {
            writeln!(out, "{}", serde_json::to_string(p)?)?;
        } else if p.error.is_none() {
            writeln!(
                out,
                "{:<32} {:>7} {:>9} {:>10} {:>10}",
                p.mailbox,
                p.folders.len(),
                p.messages,
                human(p.bytes),
                human(p.remaining_bytes)
            )?;
        }
    }
    let jobs = options.jobs.min(plans.len()).max(1);
    let seconds = rest_bytes as f64 / (rate * jobs as f64);
    let source = if measured.is_empty() {
        "assumed (--rate)"
    } else {
        "measured"
    };
    let summary = format!(
        "plan: {} mailboxes, {messages} messages, {}; left to copy: {rest_messages} messages, {}; \
         at {:.1} MB/s per job ({source}) with {jobs} jobs: about {}",
        plans.len(),
        human(bytes),
        human(rest_bytes),
        rate / 1e6,
        duration(seconds)
    );
    if args.json {
        eprintln!("{PROGRAM}: {summary}");
    } else {
        writeln!(out, "{summary}")?;
    }
    Ok(if failed.is_empty() {
        Exit::Ok
    } else {
        Exit::Partial
    })
}

fn duration(seconds: f64) -> String {
    let s = seconds.ceil() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// One progress bar per running job, only on a terminal.
struct Bars {
    multi: Option<MultiProgress>,
    bars: Vec<ProgressBar>,
    slot_of: Mutex<std::collections::HashMap<String, usize>>,
}

impl Bars {
    fn new(on: bool, jobs: usize) -> Bars {
        if !on {
            return Bars {
                multi: None,
                bars: Vec::new(),
                slot_of: Mutex::default(),
            };
        }
        let multi = MultiProgress::new();
        let bars = (0..jobs.max(1))
            .map(|_| {
                let b = multi.add(ProgressBar::new(0));
                if let Ok(style) = ProgressStyle::with_template(
                    "{msg:24} [{bar:30}] {pos}/{len} {binary_bytes_per_sec}",
                ) {
                    b.set_style(style.progress_chars("=> "));
                }
                b
            })
            .collect();
        Bars {
            multi: Some(multi),
            bars,
            slot_of: Mutex::default(),
        }
    }

    fn event(&self, e: &Event<'_>) {
        if self.multi.is_none() {
            return;
        }
        let mut slots = self.slot_of.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            Event::Started { mailbox, slot } => {
                slots.insert(mailbox.to_string(), *slot);
                if let Some(b) = self.bars.get(*slot) {
                    b.reset();
                    b.set_length(0);
                    b.set_message(mailbox.to_string());
                }
            }
            Event::Copying {
                mailbox, messages, ..
            } => {
                if let Some(b) = slots.get(*mailbox).and_then(|s| self.bars.get(*s)) {
                    b.inc_length(*messages);
                }
            }
            Event::Copied { mailbox, bytes: _ } => {
                if let Some(b) = slots.get(*mailbox).and_then(|s| self.bars.get(*s)) {
                    b.inc(1);
                }
            }
            Event::Done(_) => {}
        }
    }

    fn println(&self, line: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    fn clear(&self) {
        if let Some(m) = &self.multi {
            let _ = m.clear();
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
    fn one_mailbox_or_users() {
        assert!(Args::try_parse_from(["mail-migrate", "imaps://a@h", "imaps://b@h"]).is_ok());
        assert!(Args::try_parse_from(["mail-migrate", "imaps://a@h", "--users", "u.csv"]).is_err());
        assert!(Args::try_parse_from(["mail-migrate", "--from", "imaps://h"]).is_err());
        assert_eq!(duration(3725.0), "1h02m");
        assert_eq!(duration(59.2), "1m00s");
        assert_eq!(duration(12.0), "12s");
    }
}
