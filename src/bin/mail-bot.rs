//! mail-bot: the whole loop — sync, index, match rules, act — once per
//! message, from cron (`run`), continuously (`watch`), as the course
//! exercise in one command (`selftest`) or as a monitor (`probe`).
//!
//! Thin: flags and the configuration → accounts and rules →
//! `mailbot::bot`. Everything is composed through the library; no other
//! mailbot binary is run.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use mailbot::bot::engine::{self, Account, RunOptions, RunReport, Transport};
use mailbot::bot::rules::{self, Rule};
use mailbot::bot::selftest::{self, Wait};
use mailbot::cli::{self, AccountArgs, LogArgs, ProcessEnv, after_help, finish, parse_args};
use mailbot::config::Config;
use mailbot::error::{Error, ErrorKind};
use mailbot::exit::Exit;
use mailbot::imap::ImapUrl;
use mailbot::smtp::{self, SmtpUrl};
use mailbot::sync;
use mailbot::tls;

const PROGRAM: &str = "mail-bot";

const EXAMPLES: &str = "  mail-bot selftest
      With no configuration: a PDF is composed, delivered into the local
      maildir under $XDG_DATA_HOME/mailbot, indexed, dissected, checked
      against the original's sha256, and its print command shown.
  mail-bot run
      One pass for cron: sync every configured account, index the new
      messages, run the rules' actions on each message once. Silent when
      all went well; printed commands (print = ...) on stdout.
  mail-bot run --dry-run -v
      Which rule would act on which message, without acting.
  mail-bot --account school selftest --wait idle
      Send a PDF to yourself through the account's SMTP server and wait
      for it with IMAP IDLE; prints the round-trip time.
  mail-bot --account school probe --warning 30 --critical 120
      One status line and exit 0/1/2/3 for Nagios-style monitoring.
  */5 * * * * $HOME/.local/bin/mail-bot run
      The crontab line, with the full path (cron's PATH is /usr/bin:/bin;
      scripts/install puts it there for a user, /usr/local/bin for root):
      overlapping runs exit 75 quietly.";

const RUN_EXAMPLES: &str = "  mail-bot run
      One pass: sync every account, index the new messages, run the
      rules' actions on each message once. Silent when all went well.
  mail-bot run --dry-run -v
      Which rule would act on which message; nothing is done or recorded.
  mail-bot run --no-sync --json
      Only what is in the local maildirs; one JSON object per account.
  */5 * * * * $HOME/.local/bin/mail-bot run
      The crontab line, with the full path (cron's PATH is /usr/bin:/bin):
      a run that finds another one going exits 75 quietly.";

const WATCH_EXAMPLES: &str = "  mail-bot watch
      Acts on new mail as it arrives: IMAP IDLE for an account with a
      server, a look at a local-only maildir every second.
  mail-bot --account school watch -v
      One account, each step on stderr.
  mail-bot watch --interval 10
      A local-only maildir looked at every 10 seconds.";

const SELFTEST_EXAMPLES: &str = "  mail-bot selftest
      With no configuration: a generated PDF goes into the local maildir
      and comes back through index and dissect, checked by its sha256.
  mail-bot --account school selftest --wait poll
      Through the account's SMTP and IMAP servers; prints the round trip.
  mail-bot selftest --file invoice.pdf --json
      Your own file; one JSON object with every step's timing.";

const PROBE_EXAMPLES: &str = "  mail-bot --account school probe --warning 30 --critical 120
      OK when the file comes back within 30 s, WARNING within 120 s,
      CRITICAL later or never.
  mail-bot probe --timeout 20
      The embedded default, giving up after 20 seconds.";

/// The exit codes of `probe`, which follow the monitoring plugins'
/// convention rather than the suite's table.
const PROBE_STATUS: &str = "Exit status:
    0  OK: the file came back intact within --warning seconds
    1  WARNING: it came back, slower than --warning
    2  CRITICAL: slower than --critical, not back, or not intact
    3  UNKNOWN: the test could not run (configuration)
   64  usage error on the command line";

fn probe_help() -> String {
    format!("Examples:\n{PROBE_EXAMPLES}\n\n{PROBE_STATUS}")
}

/// The whole mail-processing loop: sync, index, match rules, act — once
/// per message.
#[derive(Debug, Parser)]
#[command(name = PROGRAM, version, after_help = after_help(EXAMPLES))]
struct Args {
    #[command(subcommand)]
    command: Cmd,
    /// Folder of the embedded default (maildir, index, dissected files)
    /// [default: $XDG_DATA_HOME/mailbot].
    #[arg(long, env = "MAILBOT_HOME", value_name = "DIR", global = true)]
    home: Option<PathBuf>,
    /// Sync only folders matching PATTERN (as mail-sync --folder);
    /// repeatable [default: the account's `folders`, else all]. Rules act
    /// on INBOX unless they name other folders.
    #[arg(
        long = "folder",
        value_name = "PATTERN",
        env = "MAILBOT_SYNC_FOLDERS",
        value_delimiter = ',',
        global = true
    )]
    folders: Vec<String>,
    #[command(flatten)]
    account: AccountArgs,
    #[command(flatten)]
    log: LogArgs,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// One pass over every account (for cron).
    #[command(after_help = after_help(RUN_EXAMPLES))]
    Run {
        /// Say what would be done; do nothing and record nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not sync; work on the local maildir as it is.
        #[arg(long)]
        no_sync: bool,
        /// One JSON object per account on stdout (printed commands inside).
        #[arg(long)]
        json: bool,
        /// Act on mail that is already there too (a first run otherwise
        /// only records it), dated DATE (YYYY-MM-DD) or later; all of it
        /// without DATE.
        #[arg(long, value_name = "DATE", num_args = 0..=1, default_missing_value = "all")]
        backfill: Option<String>,
    },
    /// Stay running: act on new mail as it arrives (IMAP IDLE; the local
    /// maildir is looked at every --interval seconds).
    #[command(after_help = after_help(WATCH_EXAMPLES))]
    Watch {
        /// Seconds between looks at a local-only maildir.
        #[arg(long, default_value_t = 1.0, value_name = "SECS")]
        interval: f64,
    },
    /// Send a file to yourself, wait for it, dissect it, check it.
    #[command(after_help = after_help(SELFTEST_EXAMPLES))]
    Selftest {
        #[command(flatten)]
        test: TestArgs,
        /// One JSON object on stdout instead of the steps.
        #[arg(long)]
        json: bool,
    },
    /// The selftest as a monitoring check: one status line, exit 0 OK,
    /// 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    #[command(after_help = probe_help())]
    Probe {
        #[command(flatten)]
        test: TestArgs,
        /// Round trip in seconds above which the status is WARNING.
        #[arg(long, default_value_t = 60.0, value_name = "SECS")]
        warning: f64,
        /// Round trip in seconds above which the status is CRITICAL.
        #[arg(long, default_value_t = 300.0, value_name = "SECS")]
        critical: f64,
    },
}

#[derive(Debug, Clone, clap::Args)]
struct TestArgs {
    /// The file to send [default: a small generated PDF].
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Seconds to wait for the message to come back.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    timeout: f64,
    /// How to notice the message arriving on the IMAP server.
    #[arg(long, value_enum, default_value_t = Wait::Idle)]
    wait: Wait,
    /// Where the received file is written [default: HOME/dissected].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The print command shown for the file ({} is its path).
    #[arg(long, default_value = "lpr {}", value_name = "TEMPLATE")]
    print_cmd: String,
}

fn main() -> ExitCode {
    // A monitoring plugin's usage error is UNKNOWN (3) with one status
    // line, not the suite's 64.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.iter().skip(1).any(|a| a == "probe")
        && let Err(e) = Args::try_parse_from(&argv)
        && e.use_stderr()
    {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("usage error");
        println!(
            "MAILBOT UNKNOWN - {}",
            first.strip_prefix("error: ").unwrap_or(first)
        );
        return ExitCode::from(3);
    }
    let args: Args = match parse_args() {
        Ok(a) => a,
        Err(code) => return code,
    };
    args.log.init(PROGRAM);
    mailbot::index::install_panic_filter();
    match &args.command {
        Cmd::Probe {
            test,
            warning,
            critical,
        } => probe(&args, test, *warning, *critical),
        _ => finish(PROGRAM, run(&args)),
    }
}

/// Accounts, rules and the home folder, as configured (or the embedded
/// default).
struct Setup {
    accounts: Vec<Account>,
    /// Accounts that could not be set up (no password, a bad URL): named
    /// in the run's errors; the others go on.
    broken: Vec<(String, anyhow::Error)>,
    rules: Vec<Rule>,
    home: PathBuf,
}

fn setup(args: &Args) -> anyhow::Result<Setup> {
    let env = ProcessEnv::capture();
    let home = match args.home.clone().or_else(|| env.data_dir()) {
        Some(h) => h,
        None => {
            return Err(Error::new(
                ErrorKind::Config,
                "home",
                "no --home, MAILBOT_HOME, XDG_DATA_HOME or HOME to keep the maildir in",
            )
            .into());
        }
    };
    // Read once: `--config <(...)` is a pipe.
    let config: Option<Config> = args.account.load_config(&env)?;
    let config_path = args.account.config_path(&env);
    let rules = match &config {
        Some(c) if !c.rule.is_empty() => {
            rules::parse_rules(&c.rule, env.home.as_deref(), &config_path)?
        }
        _ => vec![rules::default_rule(&home.join("dissected"))],
    };
    let names: Vec<String> = match (&config, &args.account.account) {
        (_, Some(one)) => vec![one.clone()],
        (Some(c), None) => c.account.keys().cloned().collect(),
        (None, None) => Vec::new(),
    };
    // Every rule is checked before anything runs.
    for rule in &rules {
        if let Some(a) = &rule.account
            && !config.as_ref().is_some_and(|c| c.account.contains_key(a))
        {
            return Err(Error::new(
                ErrorKind::Config,
                format!("{}: rule {:?}", config_path.display(), rule.name),
                format!("account: {a:?} is not in the configuration"),
            )
            .into());
        }
    }
    // A secret given for this invocation (MAILBOT_PASSWORD,
    // --password-command) belongs to one account: with several, none gets
    // it, each uses its own.
    let mut env_for_accounts = env.clone();
    let mut account_args = args.account.clone();
    if names.len() > 1 && (env.password.is_some() || account_args.password_command.is_some()) {
        tracing::warn!(
            "MAILBOT_PASSWORD and --password-command are not used with {} accounts: \
             each uses its own (or give --account NAME)",
            names.len()
        );
        env_for_accounts.password = None;
        account_args.password_command = None;
    }
    let mut accounts = Vec::new();
    let mut broken = Vec::new();
    for name in &names {
        let picked = AccountArgs {
            account: Some(name.clone()),
            ..account_args.clone()
        };
        let outcome = picked
            .resolve_in(&env_for_accounts, config.clone(), &Default::default())
            .map_err(anyhow::Error::from)
            .and_then(|resolved| account_from(name, &resolved, &env, &args.folders));
        match outcome {
            Ok(a) => accounts.push(a),
            Err(e) => broken.push((name.clone(), e)),
        }
    }
    if names.is_empty() {
        accounts.push(Account {
            name: "local".into(),
            maildir: home.join("maildir"),
            // The embedded default sends to itself; no real domain is involved.
            address: Some("mailbot@localhost".into()),
            layout: sync::Layout::Verbatim,
            sync: None,
            transport: None,
            since: None,
            alert_after: engine::DEFAULT_ALERT_AFTER,
            reply_interval: engine::DEFAULT_REPLY_INTERVAL,
            line_ends: Default::default(),
        });
    }
    Ok(Setup {
        accounts,
        broken,
        rules,
        home,
    })
}

fn account_from(
    name: &str,
    resolved: &cli::ResolvedAccount,
    env: &ProcessEnv,
    folders: &[String],
) -> anyhow::Result<Account> {
    let a = &resolved.account;
    let maildir = match &a.maildir {
        Some(m) => m.clone(),
        None => env.data_dir().map(|d| d.join(name)).ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                format!("account {name:?}"),
                "no maildir and no HOME to put one in",
            )
        })?,
    };
    let tls_options = resolved.tls_options();
    let timeout = Duration::from_secs(60);
    let sync = match &a.imap {
        Some(text) => {
            let url = ImapUrl::parse(text)?;
            let auth = resolved
                .credentials(&url.endpoint(resolved.default_user()), &url.display())?
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::Config,
                        url.display(),
                        "no user: put it in the URL (imaps://USER@host) or set user",
                    )
                })?;
            Some(sync::Options {
                url,
                auth,
                tls: tls_options.clone(),
                maildir: maildir.clone(),
                folders: if folders.is_empty() {
                    a.folders.clone()
                } else {
                    folders.to_vec()
                },
                layout: sync::Layout::Verbatim,
                direction: sync::Direction::Pull,
                expunge: sync::Expunge::Never,
                timeout,
                line_ends: a.line_ends.unwrap_or_default(),
            })
        }
        None => None,
    };
    let transport = match &a.smtp {
        Some(text) => {
            let url = SmtpUrl::parse(text)?;
            let auth =
                resolved.credentials(&url.endpoint(resolved.default_user()), &url.display())?;
            Some(Transport {
                settings: smtp::Settings {
                    tls: tls::client_config(&tls_options)?,
                    allow_plaintext_auth: resolved.allow_plaintext_auth,
                    helo: "localhost".into(),
                    auth,
                    timeout,
                },
                url,
            })
        }
        None => None,
    };
    Ok(Account {
        name: name.to_string(),
        maildir,
        address: a.address.clone(),
        layout: sync::Layout::Verbatim,
        sync,
        transport,
        since: a.since.as_deref().and_then(mailbot::config::parse_day),
        alert_after: a.alert_after.unwrap_or(engine::DEFAULT_ALERT_AFTER),
        reply_interval: a.reply_interval.unwrap_or(engine::DEFAULT_REPLY_INTERVAL),
        line_ends: a.line_ends.unwrap_or_default(),
    })
}

fn run(args: &Args) -> anyhow::Result<Exit> {
    let setup = setup(args)?;
    match &args.command {
        Cmd::Run {
            dry_run,
            no_sync,
            json,
            backfill,
        } => {
            let backfill = match backfill.as_deref() {
                None => None,
                Some("all") => Some(i64::MIN),
                Some(day) => Some(mailbot::config::parse_day(day).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Usage,
                        "--backfill",
                        format!("{day:?} is not a day (write YYYY-MM-DD)"),
                    )
                })?),
            };
            let options = RunOptions {
                dry_run: *dry_run,
                no_sync: *no_sync,
                backfill,
                ..RunOptions::default()
            };
            run_once(args, &setup, &options, *json)
        }
        Cmd::Watch { interval } => watch(args, &setup, *interval),
        Cmd::Selftest { test, json } => {
            let account = single(&setup)?;
            let options = test_options(test, &setup);
            let mut stdout = io::stdout().lock();
            let json = *json;
            let report = selftest::run(account, &setup.rules, &options, &mut |line| {
                if !json {
                    let _ = writeln!(stdout, "{line}");
                }
            })?;
            let mut stdout = io::stdout().lock();
            if json {
                writeln!(stdout, "{}", serde_json::to_string(&report)?)?;
            } else {
                writeln!(
                    stdout,
                    "ok: the file came back byte for byte in {:.0} ms",
                    report.latency_ms
                )?;
            }
            Ok(Exit::Ok)
        }
        Cmd::Probe { .. } => unreachable!("handled in main"),
    }
}

fn single(setup: &Setup) -> anyhow::Result<&Account> {
    if let ([], [(name, e)]) = (setup.accounts.as_slice(), setup.broken.as_slice()) {
        return Err(anyhow::anyhow!("{name}: {e:#}"));
    }
    match setup.accounts.as_slice() {
        [one] if setup.broken.is_empty() => Ok(one),
        many => Err(Error::new(
            ErrorKind::Usage,
            "account",
            format!(
                "{} accounts are configured; choose one with --account ({})",
                many.len(),
                many.iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .into()),
    }
}

fn test_options(test: &TestArgs, setup: &Setup) -> selftest::Options {
    selftest::Options {
        file: test.file.clone(),
        timeout: Duration::try_from_secs_f64(test.timeout.max(0.1))
            .unwrap_or(Duration::from_secs(60)),
        wait: test.wait,
        out: test
            .out
            .clone()
            .unwrap_or_else(|| setup.home.join("dissected")),
        print_template: test.print_cmd.clone(),
    }
}

fn run_once(args: &Args, setup: &Setup, options: &RunOptions, json: bool) -> anyhow::Result<Exit> {
    let mut codes = Vec::new();
    let mut done = 0;
    for (name, e) in &setup.broken {
        eprintln!("{PROGRAM}: {name}: {e:#}");
        codes.push(mailbot::exit::exit_for(e.as_ref()));
    }
    let mut sink = io::sink();
    let mut stdout = io::stdout();
    for account in &setup.accounts {
        let out: &mut dyn Write = if json { &mut sink } else { &mut stdout };
        match engine::run(account, &setup.rules, options, out) {
            Ok(report) => {
                tell(args, &report, json)?;
                match report.exit() {
                    Exit::Ok => done += 1,
                    code => codes.push(code),
                }
            }
            // Another run is at work: cron's next call will do it.
            Err(e) if e.is_locked() => {
                tracing::info!("{}: {e}", account.name);
                codes.push(Exit::TempFail);
            }
            Err(e) => {
                eprintln!("{PROGRAM}: {}: {}", account.name, mailbot::error::chain(&e));
                codes.push(e.exit());
            }
        }
    }
    // One account failing does not fail the others: 1 when some went
    // through, else the code all failures share (as --batch does).
    Ok(mailbot::batch::overall_exit(done, &codes))
}

/// Failures on stderr (a temporary one only once it has lasted longer
/// than the account's `alert_after`); the summary with -v; JSON with
/// --json.
fn tell(args: &Args, report: &RunReport, json: bool) -> anyhow::Result<()> {
    if let Some(n) = report.baseline
        && !report.acted.iter().any(|a| a.dry_run)
        && n > 0
    {
        eprintln!(
            "{PROGRAM}: {}: {} existing messages recorded; acting on new mail from now on \
             (--backfill acts on them)",
            report.account,
            thousands(n)
        );
    }
    if let Some(e) = &report.sync_error {
        if report.sync_locked || report.sync_quiet {
            tracing::info!("{}: sync: {e}", report.account);
        } else {
            eprintln!("{PROGRAM}: {}: sync: {e}", report.account);
        }
    }
    for a in &report.acted {
        if let Some(err) = &a.error {
            let what = if a.gave_up {
                format!("attempt {}, given up: tagged failed", a.attempt)
            } else {
                format!("attempt {}, will retry", a.attempt)
            };
            eprintln!(
                "{PROGRAM}: rule {:?}: {}: {err} ({what})",
                a.rule,
                a.path.display()
            );
        } else if a.dry_run && !json {
            println!(
                "would {} {} (rule {:?}{})",
                a.actions.join(", "),
                a.path.display(),
                a.rule,
                a.subject
                    .as_deref()
                    .map(|s| format!(", {s:?}"))
                    .unwrap_or_default()
            );
        }
        if args.log.verbose > 0 {
            for note in &a.skipped {
                eprintln!("{PROGRAM}: rule {:?}: {}: {note}", a.rule, a.path.display());
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string(report)?);
    }
    if args.log.verbose > 0 {
        eprintln!(
            "{PROGRAM}: {}: fetched {}, examined {}, acted {}, failed {}",
            report.account,
            report.fetched,
            report.examined,
            report.done(),
            report.failed()
        );
    }
    Ok(())
}

/// `2314` → `2,314`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn watch(args: &Args, setup: &Setup, interval: f64) -> anyhow::Result<Exit> {
    let interval =
        Duration::try_from_secs_f64(interval.max(0.05)).unwrap_or(Duration::from_secs(1));
    let worst = std::sync::Mutex::new(Exit::Ok);
    std::thread::scope(|scope| {
        for account in &setup.accounts {
            let worst = &worst;
            scope.spawn(move || {
                let outcome = watch_account(args, setup, account, interval);
                if let Err(e) = outcome {
                    cli::report(PROGRAM, &e);
                    let code = mailbot::exit::exit_for(e.as_ref());
                    if let Ok(mut w) = worst.lock() {
                        *w = w.worse(code);
                    }
                }
            });
        }
    });
    Ok(worst.into_inner().unwrap_or(Exit::Partial))
}

fn watch_account(
    args: &Args,
    setup: &Setup,
    account: &Account,
    interval: Duration,
) -> anyhow::Result<()> {
    let options = RunOptions::default();
    let pass = |no_sync: bool| -> anyhow::Result<()> {
        let mut stdout = io::stdout();
        let opts = RunOptions {
            no_sync,
            ..options.clone()
        };
        match engine::run(account, &setup.rules, &opts, &mut stdout) {
            Ok(report) => tell(args, &report, false),
            Err(e) if e.is_locked() => Ok(()),
            Err(e) => Err(e.into()),
        }
    };
    pass(false)?;
    match &account.sync {
        Some(sync_options) => loop {
            // New mail is handled once its folder's fetch is done, as a
            // batch, not one pass per message.
            let mut failure: Option<anyhow::Error> = None;
            let arrived = std::cell::Cell::new(false);
            let outcome = sync::watch_tuned(
                sync_options,
                &sync::Tuning::default(),
                "INBOX",
                &mut |_| arrived.set(true),
                &mut |event| {
                    if matches!(event, sync::Event::FolderDone(_))
                        && arrived.replace(false)
                        && let Err(e) = pass(true)
                    {
                        failure = Some(e);
                    }
                },
                &|| true,
            );
            if let Some(e) = failure {
                return Err(e);
            }
            match outcome {
                // Dropped connections and server trouble: wait, go on.
                Err(e) if e.is_temporary() => {
                    eprintln!("{PROGRAM}: {}: {e}; reconnecting in 10 s", account.name);
                    std::thread::sleep(Duration::from_secs(10));
                }
                Err(e) => return Err(e.into()),
                Ok(_) => return Ok(()),
            }
        },
        None => loop {
            let next = Instant::now() + interval;
            pass(true)?;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        },
    }
}

fn probe(args: &Args, test: &TestArgs, warning: f64, critical: f64) -> ExitCode {
    let outcome = setup(args).and_then(|setup| {
        let account = single(&setup)?.clone();
        let options = test_options(test, &setup);
        Ok(selftest::run(&account, &setup.rules, &options, &mut |_| {}))
    });
    let (status, line) = match outcome {
        Err(e) => (3, format!("MAILBOT UNKNOWN - {e:#}")),
        Ok(Err(e)) if matches!(e.kind(), ErrorKind::Config | ErrorKind::Usage) => {
            (3, format!("MAILBOT UNKNOWN - {e}"))
        }
        Ok(Err(e)) => (2, format!("MAILBOT CRITICAL - {e}")),
        Ok(Ok(r)) => {
            let secs = r.latency_ms / 1000.0;
            let (status, word) = if secs > critical {
                (2, "CRITICAL")
            } else if secs > warning {
                (1, "WARNING")
            } else {
                (0, "OK")
            };
            (
                status,
                format!(
                    "MAILBOT {word} - mail came back in {secs:.3} s via {} | latency={secs:.3}s;{warning};{critical};0",
                    r.route
                ),
            )
        }
    };
    println!("{line}");
    ExitCode::from(status)
}
