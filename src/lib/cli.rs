//! The plumbing every binary shares: flags common to all tools, logging to
//! stderr, account resolution from flags, `MAILBOT_*` variables and the
//! config file, and the end of `main` that turns an outcome into an exit
//! status and a one-line message.
//!
//! The rest of the library never reads the environment; this module reads
//! it only through clap's `env` attributes and [`ProcessEnv::capture`],
//! which binaries call once at start.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use crate::config::{self, Account, Config, Secret};
use crate::error::{Error, ErrorKind, Result};
use crate::exit::{self, Exit};
use crate::smtp::Auth;
use crate::url::Endpoint;

/// What binaries take from the process environment besides their flags.
#[derive(Debug, Clone, Default)]
pub struct ProcessEnv {
    /// `$HOME`.
    pub home: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME`.
    pub xdg_config_home: Option<PathBuf>,
    /// `$XDG_DATA_HOME`.
    pub xdg_data_home: Option<PathBuf>,
    /// `$MAILBOT_PASSWORD`.
    pub password: Option<Secret>,
}

impl ProcessEnv {
    /// Reads the variables above from the process environment.
    pub fn capture() -> Self {
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        ProcessEnv {
            home: path("HOME"),
            xdg_config_home: path("XDG_CONFIG_HOME"),
            xdg_data_home: path("XDG_DATA_HOME"),
            password: std::env::var("MAILBOT_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty())
                .map(Secret::new),
        }
    }

    /// `$XDG_DATA_HOME/mailbot`, else `~/.local/share/mailbot`: where the
    /// embedded default keeps its maildir and index.
    pub fn data_dir(&self) -> Option<PathBuf> {
        let base = match &self.xdg_data_home {
            Some(x) if x.is_absolute() => x.clone(),
            _ => self.home.as_ref()?.join(".local/share"),
        };
        Some(base.join("mailbot"))
    }
}

/// `-v`, `-q` and the log filter, flattened into every binary's flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LogArgs {
    /// Say more on stderr (-v: a summary and each step, -vv: debugging).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Say nothing on stderr but errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log filter in tracing's syntax (e.g. `mailbot=debug`); overrides -v/-q.
    #[arg(long, env = "MAILBOT_LOG", value_name = "FILTER", global = true)]
    pub log: Option<String>,
}

impl LogArgs {
    /// Starts logging to stderr at the level the flags ask for. Warnings
    /// are shown by default, errors only with `-q`. Each line starts with
    /// `program` as every other message does: `mail-sync: warning: ...`.
    pub fn init(&self, program: &'static str) {
        let default = match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "warn",
            (false, 1) => "info",
            (false, 2) => "debug",
            (false, _) => "trace",
        };
        let filter = self
            .log
            .as_deref()
            .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
            .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default));
        let ansi = colour_on_stderr(std::env::var_os("NO_COLOR").as_deref());
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi)
            .with_writer(io::stderr)
            .event_format(Prefixed { program, ansi })
            .try_init();
    }
}

/// The shape of a log line: `program: level: message`, the level word
/// (none for `info`) in colour when `ansi`.
struct Prefixed {
    program: &'static str,
    ansi: bool,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for Prefixed
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use tracing::Level;
        let (word, colour) = match *event.metadata().level() {
            Level::ERROR => ("error: ", "31"),
            Level::WARN => ("warning: ", "33"),
            Level::INFO => ("", ""),
            Level::DEBUG => ("debug: ", "34"),
            Level::TRACE => ("trace: ", "35"),
        };
        write!(writer, "{}: ", self.program)?;
        match (word, self.ansi) {
            ("", _) => {}
            (w, true) => write!(writer, "\x1b[{colour}m{w}\x1b[0m")?,
            (w, false) => write!(writer, "{w}")?,
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Whether log lines on stderr may carry ANSI colour: only when stderr is
/// a terminal and `NO_COLOR` is unset or empty (no-color.org).
pub fn colour_on_stderr(no_color: Option<&std::ffi::OsStr>) -> bool {
    use std::io::IsTerminal;
    no_color.is_none_or(|v| v.is_empty()) && io::stderr().is_terminal()
}

/// The flags that choose an account and its credentials, shared by the
/// tools that talk to servers.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AccountArgs {
    /// Configuration file [default: $XDG_CONFIG_HOME/mailbot/config.toml].
    #[arg(long, global = true, env = "MAILBOT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Account from the configuration file. Without it, the account whose
    /// own URL the command line names (or the only one, when it names no
    /// server).
    #[arg(long, global = true, env = "MAILBOT_ACCOUNT", value_name = "NAME")]
    pub account: Option<String>,
    /// Login name, when the URL does not carry one.
    #[arg(long, global = true, env = "MAILBOT_USER", value_name = "USER")]
    pub user: Option<String>,
    /// Command whose first output line is the password (the password itself
    /// can come from MAILBOT_PASSWORD; never from the command line).
    #[arg(
        long,
        global = true,
        env = "MAILBOT_PASSWORD_COMMAND",
        value_name = "CMD"
    )]
    pub password_command: Option<String>,
    /// Seconds a password or token command may take before it is killed
    /// (exit 78).
    #[arg(
        long,
        global = true,
        env = "MAILBOT_SECRET_TIMEOUT",
        value_name = "SECS",
        default_value_t = 30.0
    )]
    pub secret_timeout: f64,
    /// PEM file of CA certificates to trust besides the system's store
    /// (SSL_CERT_FILE, SSL_CERT_DIR, /etc/ssl/certs); repeatable.
    #[arg(
        long = "ca-file",
        global = true,
        env = "MAILBOT_CA_FILE",
        value_name = "PEM",
        value_delimiter = ':'
    )]
    pub ca_file: Vec<PathBuf>,
    /// PEM file of the only CA certificates to trust: the system's store is
    /// not used; repeatable.
    #[arg(
        long = "only-ca-file",
        global = true,
        env = "MAILBOT_ONLY_CA_FILE",
        value_name = "PEM",
        value_delimiter = ':'
    )]
    pub only_ca_file: Vec<PathBuf>,
    /// Do not verify TLS certificates (only for tests; says so on stderr).
    /// STARTTLS stays required and credentials still need TLS.
    #[arg(long, global = true, env = "MAILBOT_INSECURE")]
    pub insecure: bool,
    /// DANGEROUS: send the password or token over a connection without TLS,
    /// where anyone on the way can read it. Only a URL with
    /// ?starttls=none (or SMTP's ?starttls=opportunistic, on a server that
    /// offers no STARTTLS) has such a connection.
    #[arg(long, global = true, env = "MAILBOT_ALLOW_PLAINTEXT_AUTH")]
    pub allow_plaintext_auth: bool,
}

/// Secrets given for this one invocation (flags and `MAILBOT_*`
/// variables), which go to whatever server the invocation names.
#[derive(Debug, Clone, Default)]
struct ExplicitSecrets {
    password_command: Option<String>,
    oauth2_token_command: Option<String>,
    password: Option<Secret>,
}

/// An account as the program will use it: the config file's values with
/// flags and variables laid over them.
///
/// The account's own secrets (`password`, `password_command`,
/// `oauth2_token_command` from the file) are kept apart and go only to
/// the account's own servers: [`ResolvedAccount::credentials`].
#[derive(Debug, Clone, Default)]
pub struct ResolvedAccount {
    /// The account's name in the configuration, if it came from there.
    pub name: Option<String>,
    /// The merged settings, without any secret.
    pub account: Account,
    /// The whole configuration, when a file was read (rules live there).
    pub config: Option<Config>,
    /// Whether `--insecure` was given.
    pub insecure: bool,
    /// Whether `--allow-plaintext-auth` was given.
    pub allow_plaintext_auth: bool,
    /// How long a password or token command may take.
    pub secret_timeout: std::time::Duration,
    /// The account as the file has it (`~` expanded): its secrets and the
    /// URLs they belong to.
    own: Option<Account>,
    explicit: ExplicitSecrets,
}

impl AccountArgs {
    /// Reads the configuration file, once: `--config` (which must exist),
    /// else the default path (which need not). `None` when there is none.
    pub fn load_config(&self, env: &ProcessEnv) -> Result<Option<Config>> {
        let (path, required) = match &self.config {
            Some(p) => (Some(p.clone()), true),
            None => (
                config::default_path(env.xdg_config_home.as_deref(), env.home.as_deref()),
                false,
            ),
        };
        match &path {
            Some(p) => Config::load(p, required),
            None => Ok(None),
        }
    }

    /// The path of the configuration file (named or default), for errors.
    pub fn config_path(&self, env: &ProcessEnv) -> PathBuf {
        self.config.clone().unwrap_or_else(|| {
            config::default_path(env.xdg_config_home.as_deref(), env.home.as_deref())
                .unwrap_or_default()
        })
    }

    /// Reads the configuration (when there is one) and lays the flags over
    /// the chosen account. `over` carries the tool's own settings (URLs,
    /// maildir, a token command) that beat the file's.
    pub fn resolve(&self, env: &ProcessEnv, over: &Account) -> Result<ResolvedAccount> {
        let config = self.load_config(env)?;
        self.resolve_in(env, config, over)
    }

    /// [`AccountArgs::resolve`] with the configuration already read.
    ///
    /// The account is the one `--account` names; else the one whose own
    /// `smtp` or `imap` URL is a URL of `over` (same scheme, user, host
    /// and port); else, when `over` names no server, the only account. A
    /// server on the command line that is no account's own gets no
    /// account: that is one-shot use.
    pub fn resolve_in(
        &self,
        env: &ProcessEnv,
        config: Option<Config>,
        over: &Account,
    ) -> Result<ResolvedAccount> {
        let chosen = match &config {
            Some(c) => self.choose(c, over)?,
            None => {
                if let Some(n) = &self.account {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!("account {n:?}"),
                        "no configuration file to find it in",
                    ));
                }
                None
            }
        };
        let (name, own) = match chosen {
            Some((n, a)) => (Some(n), Some(a.with_home(env.home.as_deref()))),
            None => (None, None),
        };
        let flags = Account {
            user: self.user.clone(),
            ca_file: self.ca_file.clone(),
            only_ca_file: self.only_ca_file.clone(),
            ..Account::default()
        };
        let mut account = own
            .clone()
            .unwrap_or_default()
            .overridden_by(&flags)
            .overridden_by(over)
            .with_home(env.home.as_deref());
        account.password = None;
        account.password_command = None;
        account.oauth2_token_command = None;
        Ok(ResolvedAccount {
            name,
            account,
            config,
            insecure: self.insecure,
            allow_plaintext_auth: self.allow_plaintext_auth,
            secret_timeout: seconds(self.secret_timeout, config::DEFAULT_SECRET_TIMEOUT),
            own,
            explicit: ExplicitSecrets {
                password_command: self.password_command.clone(),
                oauth2_token_command: over.oauth2_token_command.clone(),
                password: over
                    .password
                    .clone()
                    .map(Secret::new)
                    .or_else(|| env.password.clone()),
            },
        })
    }

    fn choose(&self, config: &Config, over: &Account) -> Result<Option<(String, Account)>> {
        if let Some(n) = &self.account {
            let picked = config.select_account(Some(n))?;
            return Ok(picked.map(|(k, a)| (k.to_string(), a.clone())));
        }
        let named = own_endpoints(over, self.user.as_deref());
        if named.is_empty() {
            let picked = config.select_account(None)?;
            return Ok(picked.map(|(k, a)| (k.to_string(), a.clone())));
        }
        let matching: Vec<(&String, &Account)> = config
            .account
            .iter()
            .filter(|(_, a)| {
                let user = self.user.as_deref().or(a.user.as_deref());
                let mine = own_endpoints(a, a.user.as_deref());
                own_endpoints(over, user).iter().any(|e| mine.contains(e))
            })
            .collect();
        match matching.as_slice() {
            [] => Ok(None),
            [(k, a)] => Ok(Some(((*k).clone(), (*a).clone()))),
            many => Err(Error::new(
                ErrorKind::Config,
                "account",
                format!(
                    "the server on the command line is the account of {}; choose one with --account",
                    many.iter()
                        .map(|(k, _)| k.as_str())
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            )),
        }
    }
}

/// The endpoints of an account's `smtp` and `imap` URLs (those that
/// parse), with `user` for a URL without one.
fn own_endpoints(account: &Account, user: Option<&str>) -> Vec<Endpoint> {
    let mut out = Vec::new();
    if let Some(Ok(u)) = account.smtp.as_deref().map(crate::smtp::SmtpUrl::parse) {
        out.push(u.endpoint(user));
    }
    if let Some(Ok(u)) = account.imap.as_deref().map(crate::imap::ImapUrl::parse) {
        out.push(u.endpoint(user));
    }
    out
}

/// `secs` as a duration (`default` when it is not a usable number).
pub fn seconds(secs: f64, default: std::time::Duration) -> std::time::Duration {
    if secs.is_finite() && secs > 0.0 {
        std::time::Duration::try_from_secs_f64(secs).unwrap_or(default)
    } else {
        default
    }
}

impl ResolvedAccount {
    /// How servers are verified: the account's and the flags' CA files
    /// (adding to the system's store, or alone with `--only-ca-file`),
    /// `--insecure` and `--allow-plaintext-auth`.
    pub fn tls_options(&self) -> crate::tls::TlsOptions {
        let only = !self.account.only_ca_file.is_empty();
        crate::tls::TlsOptions {
            ca_files: self
                .account
                .ca_file
                .iter()
                .chain(&self.account.only_ca_file)
                .cloned()
                .collect(),
            ca_files_only: only,
            insecure: self.insecure,
            allow_plaintext_auth: self.allow_plaintext_auth,
        }
    }

    /// The login name for a URL without one: `--user`, else the account's.
    pub fn default_user(&self) -> Option<&str> {
        self.account.user.as_deref()
    }

    /// Whether `endpoint` is one of the account's own servers (its `smtp`
    /// or `imap` URL: same scheme, user, host and port).
    pub fn is_own(&self, endpoint: &Endpoint) -> bool {
        self.own
            .as_ref()
            .is_some_and(|a| own_endpoints(a, a.user.as_deref()).contains(endpoint))
    }

    /// The credentials for the server `endpoint` (its user already
    /// defaulted, see [`ImapUrl::endpoint`](crate::imap::ImapUrl::endpoint)),
    /// in this order: `--oauth2-token-command`, `--password-command`,
    /// `MAILBOT_PASSWORD` (given for this invocation, so they go to the
    /// server it names); then, only when `endpoint` is the account's own
    /// server, the account's `oauth2_token_command`, `password_command` or
    /// `password`. No user and no secret: no credentials. A user without a
    /// secret is a configuration error (exit 78) naming `object`; another
    /// account's secret is never used.
    pub fn credentials(&self, endpoint: &Endpoint, object: &str) -> Result<Option<Auth>> {
        let timeout = self.secret_timeout;
        let user = endpoint.user.clone();
        let token = |cmd: &str, what: &str| -> Result<Auth> {
            let user = user.clone().ok_or_else(|| {
                Error::new(
                    ErrorKind::Config,
                    object,
                    "XOAUTH2 needs a user: put it in the URL or give --user",
                )
            })?;
            Ok(Auth::OAuth2 {
                user,
                token: config::secret_from_command_within(cmd, what, timeout)?,
            })
        };
        let with_password = |password: Secret| -> Option<Auth> {
            user.clone().map(|user| Auth::Password { user, password })
        };
        let e = &self.explicit;
        if let Some(cmd) = &e.oauth2_token_command {
            return token(cmd, "--oauth2-token-command").map(Some);
        }
        if let Some(cmd) = &e.password_command {
            if user.is_none() {
                return Ok(None);
            }
            let p = config::secret_from_command_within(cmd, "--password-command", timeout)?;
            return Ok(with_password(p));
        }
        if let Some(p) = &e.password {
            return Ok(with_password(p.clone()));
        }
        let own = self.own.as_ref().filter(|_| self.is_own(endpoint));
        if let Some(own) = own {
            if let Some(cmd) = &own.oauth2_token_command {
                return token(cmd, "oauth2_token_command").map(Some);
            }
            if user.is_some()
                && let Some(p) = own.password_within(timeout)?
            {
                return Ok(with_password(p));
            }
        }
        let Some(user) = &user else {
            return Ok(None);
        };
        let whose = match (&self.name, &self.own) {
            (Some(n), Some(a))
                if a.password.is_some()
                    || a.password_command.is_some()
                    || a.oauth2_token_command.is_some() =>
            {
                format!(
                    " (the account {n:?}'s password goes only to its own servers, not to {})",
                    Endpoint {
                        user: None,
                        ..endpoint.clone()
                    }
                )
            }
            _ => String::new(),
        };
        Err(Error::new(
            ErrorKind::Config,
            object,
            format!(
                "no password for {user}@{}: give --password-command or MAILBOT_PASSWORD{whose}",
                endpoint.host
            ),
        ))
    }
}

/// Parses the command line; a usage error prints clap's message and gives
/// exit 64, `--help` and `--version` give 0.
///
/// Every binary starts here, so this is also where the process's umask is
/// narrowed ([`crate::private::restrict_umask`]): whatever the user's
/// umask, nothing a mailbot tool creates — a maildir, the notmuch
/// database, a dissected file — is readable by group or others.
pub fn parse_args<T: Parser>() -> std::result::Result<T, ExitCode> {
    let parsed = parse_args_from(std::env::args_os())?;
    crate::private::restrict_umask();
    Ok(parsed)
}

/// [`parse_args`] over explicit arguments.
///
/// Two hidden forms serve packagers (`scripts/gen-docs` uses them):
/// `PROG --generate-man DIR` writes the man pages (one per subcommand
/// too) into DIR, and `PROG --generate-completion SHELL` prints the
/// completion script for bash, zsh, fish, elvish or powershell.
pub fn parse_args_from<T, I>(args: I) -> std::result::Result<T, ExitCode>
where
    T: Parser,
    I: IntoIterator,
    I::Item: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if let [_, flag, value] = args.as_slice()
        && let Some(flag) = flag.to_str()
        && flag.starts_with("--generate-")
    {
        return Err(generate::<T>(flag, value));
    }
    let parsed = without_empty_env(T::command())
        .try_get_matches_from(args)
        .and_then(|mut matches| T::from_arg_matches_mut(&mut matches));
    match parsed {
        Ok(t) => Ok(t),
        Err(e) => {
            let code = if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            };
            let _ = e.print();
            Err(code.into())
        }
    }
}

/// The command with every setting whose variable is set but empty
/// (`MAILBOT_CA_FILE=`) read as if the variable were unset, as a shell
/// user means it, in subcommands too.
fn without_empty_env(cmd: clap::Command) -> clap::Command {
    let empty: Vec<clap::Id> = cmd
        .get_arguments()
        .filter(|a| {
            a.get_env()
                .and_then(std::env::var_os)
                .is_some_and(|v| v.is_empty())
        })
        .map(|a| a.get_id().clone())
        .collect();
    let mut cmd = cmd;
    for id in empty {
        cmd = cmd.mut_arg(id, |a| a.env(None::<&str>));
    }
    let subcommands: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in subcommands {
        cmd = cmd.mut_subcommand(name, without_empty_env);
    }
    cmd
}

/// Writes man pages or a completion script (see [`parse_args_from`]).
fn generate<T: Parser>(flag: &str, value: &std::ffi::OsStr) -> ExitCode {
    let mut cmd = T::command();
    let name = cmd.get_name().to_string();
    let outcome: std::result::Result<(), (Exit, String)> = match flag {
        "--generate-man" => {
            let dir = Path::new(value);
            std::fs::create_dir_all(dir)
                .and_then(|()| crate::manpage::write_pages(cmd, dir))
                .map(drop)
                .map_err(|e| (Exit::CantCreate, format!("{}: {e}", dir.display())))
        }
        "--generate-completion" => {
            let shell = value
                .to_str()
                .and_then(|v| v.parse::<clap_complete::Shell>().ok());
            match shell {
                Some(shell) => {
                    let mut script = Vec::new();
                    clap_complete::generate(shell, &mut cmd, &name, &mut script);
                    if shell == clap_complete::Shell::Bash {
                        script = repair_bash_completion(&String::from_utf8_lossy(&script), &name)
                            .into_bytes();
                    }
                    io::stdout()
                        .write_all(&script)
                        .map_err(|e| (Exit::CantCreate, format!("stdout: {e}")))
                }
                None => Err((
                    Exit::Usage,
                    format!(
                        "{}: not a shell this knows (bash, zsh, fish, elvish, powershell)",
                        value.to_string_lossy()
                    ),
                )),
            }
        }
        other => Err((
            Exit::Usage,
            format!("{other}: unknown (--generate-man DIR, --generate-completion SHELL)"),
        )),
    };
    match outcome {
        Ok(()) => Exit::Ok.into(),
        Err((code, message)) => {
            let _ = writeln!(io::stderr().lock(), "{name}: {message}");
            code.into()
        }
    }
}

/// Makes clap_complete's bash script complete subcommands of a binary
/// whose name has a dash (every `mail-*`). clap_complete 4.6 (up to
/// 4.6.12 at least) builds the state it dispatches on from the name with
/// `-` made `__` (`mail__bot__subcmd__run`), but labels the matching case
/// arms after making every `-` of the whole path the subcommand separator
/// (`mail__subcmd__bot__subcmd__run`), so no arm matched and a
/// subcommand's flags and values completed nothing; the arms' word
/// positions were off by the same count. Each such arm gets the label the
/// dispatch builds and its position back.
pub fn repair_bash_completion(script: &str, bin_name: &str) -> String {
    const SEP: &str = "__subcmd__";
    let wrong = bin_name.replace('-', SEP);
    let right = bin_name.replace('-', "__");
    if wrong == right {
        return script.to_string();
    }
    let mut out = String::with_capacity(script.len());
    let mut level: Option<usize> = None;
    for line in script.split_inclusive('\n') {
        let trimmed = line.trim();
        let arm = trimmed
            .strip_suffix(')')
            .filter(|l| *l == wrong || l.starts_with(&format!("{wrong}{SEP}")));
        if let Some(label) = arm {
            let label = label.replacen(&wrong, &right, 1);
            level = Some(label.matches(SEP).count() + 1);
            out.push_str(&line.replacen(&wrong, &right, 1));
            continue;
        }
        if let Some(n) = level
            && let Some(at) = line.find("${COMP_CWORD} -eq ")
        {
            let start = at + "${COMP_CWORD} -eq ".len();
            let digits = line[start..].bytes().take_while(u8::is_ascii_digit).count();
            out.push_str(&line[..start]);
            out.push_str(&n.to_string());
            out.push_str(&line[start + digits..]);
            level = None;
            continue;
        }
        out.push_str(line);
    }
    out
}

/// Prints one error line `program: object: cause: cause` on stderr.
pub fn report(program: &str, err: &anyhow::Error) {
    let _ = writeln!(io::stderr().lock(), "{program}: {err:#}");
}

/// The end of every `main`: success gives its status; an error is printed
/// as one line and mapped to its exit status, except a broken pipe on
/// stdout, which for a filter is a normal way to end (status 0, silent).
pub fn finish(program: &str, outcome: anyhow::Result<Exit>) -> ExitCode {
    match outcome {
        Ok(exit) => exit.into(),
        Err(err) => {
            let chain: &(dyn std::error::Error + 'static) = err.as_ref();
            if exit::is_broken_pipe(chain) {
                return Exit::Ok.into();
            }
            report(program, &err);
            exit::exit_for(chain).into()
        }
    }
}

/// The text after the flags in `--help`: the tool's examples, then the
/// exit-status table. Command lines longer than [`HELP_WIDTH`] are
/// folded with `\` continuations, so that clap, which wraps the text at
/// the terminal's width, never breaks a command in the middle: what is
/// shown pastes as it is.
pub fn after_help(examples: &str) -> String {
    format!(
        "Examples:\n{}\n\n{}",
        fold_commands(examples.trim_end()),
        Exit::help_table().trim_end()
    )
}

/// The widest line of an example in `--help` (an 80-column terminal).
pub const HELP_WIDTH: usize = 79;

/// Folds the command lines of `examples` (indented two spaces, not `#`
/// comments, or continuing a line that ends in `\`) at spaces outside
/// quotes, so each line fits in [`HELP_WIDTH`].
fn fold_commands(examples: &str) -> String {
    let mut out = String::with_capacity(examples.len());
    let mut continued = false;
    for line in examples.lines() {
        let command = continued
            || (line.starts_with("  ")
                && !line.starts_with("   ")
                && !line.trim_start().starts_with('#'));
        continued = command && line.ends_with('\\');
        if !command || line.chars().count() <= HELP_WIDTH {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let indent = if line.starts_with("      ") {
            "      "
        } else {
            "  "
        };
        let mut rest = line.trim_start().to_string();
        let mut first = true;
        loop {
            let lead = if first { indent } else { "      " };
            let room = HELP_WIDTH - lead.len();
            if rest.chars().count() <= room {
                out.push_str(lead);
                out.push_str(&rest);
                out.push('\n');
                break;
            }
            // The last unquoted space that leaves room for " \", best
            // one before a flag, so no flag is parted from its value.
            let (mut cut, mut before_flag) = (None, None);
            let mut quote: Option<char> = None;
            for (i, c) in rest.char_indices() {
                if rest[..i].chars().count() + 2 > room {
                    break;
                }
                match (quote, c) {
                    (None, '\'' | '"') => quote = Some(c),
                    (Some(q), c) if c == q => quote = None,
                    (None, ' ') if i > 0 => {
                        cut = Some(i);
                        if matches!(rest[i + 1..].chars().next(), Some('-' | '<' | '|')) {
                            before_flag = Some(i);
                        }
                    }
                    _ => {}
                }
            }
            let cut = before_flag.filter(|b| *b > room / 2).or(cut);
            let Some(cut) = cut else {
                // One word longer than the line: leave it whole.
                out.push_str(lead);
                out.push_str(&rest);
                out.push('\n');
                break;
            };
            out.push_str(lead);
            out.push_str(rest[..cut].trim_end());
            out.push_str(" \\\n");
            rest = rest[cut..].trim_start().to_string();
            first = false;
        }
    }
    out.trim_end_matches('\n').to_string()
}

/// Writes item paths to stdout, one per line or NUL-terminated with `-0`.
/// Write errors (a closed pipe) are returned so `main` can end quietly.
#[derive(Debug)]
pub struct PathOutput<W: Write> {
    out: W,
    terminator: u8,
}

impl PathOutput<io::BufWriter<io::Stdout>> {
    /// Paths to stdout.
    pub fn stdout(nul: bool) -> Self {
        PathOutput::new(io::BufWriter::new(io::stdout()), nul)
    }
}

impl<W: Write> PathOutput<W> {
    /// Paths to `out`.
    pub fn new(out: W, nul: bool) -> Self {
        PathOutput {
            out,
            terminator: if nul { 0 } else { b'\n' },
        }
    }

    /// Writes one path (its raw bytes: non-UTF-8 names survive).
    pub fn path(&mut self, path: &Path) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        self.out.write_all(path.as_os_str().as_bytes())?;
        self.out.write_all(&[self.terminator])
    }

    /// Writes one line of text (a JSON object, a command).
    pub fn line(&mut self, text: &str) -> io::Result<()> {
        self.out.write_all(text.as_bytes())?;
        self.out.write_all(b"\n")
    }

    /// Flushes, so a pipeline sees each item as it is done.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Paths read from stdin on their own thread, one per line (NUL with
/// `-0`; a CR before the newline is dropped, empty lines are skipped),
/// sent as they arrive, so a producer that never ends (`mail-sync
/// --watch`) is followed as it goes. A read error is sent last.
pub fn stdin_paths(null: bool) -> std::sync::mpsc::Receiver<Result<PathBuf>> {
    use std::io::BufRead;
    use std::os::unix::ffi::OsStringExt;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let sep = if null { 0 } else { b'\n' };
        for chunk in io::stdin().lock().split(sep) {
            let item = match chunk {
                Ok(mut chunk) => {
                    if !null && chunk.last() == Some(&b'\r') {
                        chunk.pop();
                    }
                    if chunk.is_empty() {
                        continue;
                    }
                    Ok(PathBuf::from(std::ffi::OsString::from_vec(chunk)))
                }
                Err(e) => Err(Error::io(ErrorKind::InputMissing, "stdin", e)),
            };
            let stop = item.is_err();
            if tx.send(item).is_err() || stop {
                break;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[derive(Debug, Parser)]
    struct Demo {
        #[command(flatten)]
        log: LogArgs,
        #[command(flatten)]
        account: AccountArgs,
    }

    fn env_with_config(dir: &Path, text: &str, mode: u32) -> ProcessEnv {
        let cfg = dir.join("mailbot/config.toml");
        fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        fs::write(&cfg, text).unwrap();
        fs::set_permissions(&cfg, fs::Permissions::from_mode(mode)).unwrap();
        ProcessEnv {
            home: Some(PathBuf::from("/home/u")),
            xdg_config_home: Some(dir.to_path_buf()),
            ..ProcessEnv::default()
        }
    }

    #[test]
    fn usage_errors_are_64_and_help_is_0() {
        let code = parse_args_from::<Demo, _>(["demo", "--no-such-flag"]).unwrap_err();
        assert_eq!(format!("{code:?}"), format!("{:?}", ExitCode::from(64)));
        let code = parse_args_from::<Demo, _>(["demo", "--help"]).unwrap_err();
        assert_eq!(format!("{code:?}"), format!("{:?}", ExitCode::from(0)));
    }

    #[test]
    fn flags_beat_the_file_and_tool_settings_beat_both() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_with_config(
            dir.path(),
            "[account.s]\nuser = \"file\"\nsmtp = \"smtp://a\"\nmaildir = \"~/Mail\"\n",
            0o644,
        );
        let args = Demo::try_parse_from(["demo", "--account", "s", "--user", "flag"]).unwrap();
        let over = Account {
            smtp: Some("smtps://b".into()),
            ..Account::default()
        };
        let r = args.account.resolve(&env, &over).unwrap();
        assert_eq!(r.name.as_deref(), Some("s"));
        assert_eq!(r.account.user.as_deref(), Some("flag"));
        assert_eq!(r.account.smtp.as_deref(), Some("smtps://b"));
        assert_eq!(r.account.maildir, Some(PathBuf::from("/home/u/Mail")));
    }

    #[test]
    fn no_config_is_fine_for_one_shot_use() {
        let dir = tempfile::tempdir().unwrap();
        let env = ProcessEnv {
            xdg_config_home: Some(dir.path().to_path_buf()),
            ..ProcessEnv::default()
        };
        let args = Demo::try_parse_from(["demo"]).unwrap();
        let r = args.account.resolve(&env, &Account::default()).unwrap();
        assert!(r.config.is_none() && r.name.is_none());
        let args = Demo::try_parse_from(["demo", "--account", "x"]).unwrap();
        let err = args.account.resolve(&env, &Account::default()).unwrap_err();
        assert_eq!(err.exit().code(), 78);
    }

    #[test]
    fn readable_password_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_with_config(dir.path(), "[account.s]\npassword = \"pw\"\n", 0o640);
        let args = Demo::try_parse_from(["demo"]).unwrap();
        let err = args.account.resolve(&env, &Account::default()).unwrap_err();
        assert_eq!(err.exit().code(), 78);
    }

    #[test]
    fn password_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let mut env = env_with_config(
            dir.path(),
            "[account.s]\nimap = \"imaps://u@h\"\npassword = \"file\"\n",
            0o600,
        );
        let own = Endpoint::new("imaps", Some("u"), "h", 993);
        let password = |r: &ResolvedAccount| match r.credentials(&own, "h").unwrap() {
            Some(Auth::Password { password, .. }) => password.expose().to_string(),
            other => panic!("{other:?}"),
        };
        let args = Demo::try_parse_from(["demo"]).unwrap();
        let r = args.account.resolve(&env, &Account::default()).unwrap();
        assert_eq!(password(&r), "file");
        env.password = Some(Secret::new("env".into()));
        let r = args.account.resolve(&env, &Account::default()).unwrap();
        assert_eq!(password(&r), "env");
        let args = Demo::try_parse_from(["demo", "--password-command", "echo cmd"]).unwrap();
        let r = args.account.resolve(&env, &Account::default()).unwrap();
        assert_eq!(password(&r), "cmd");
    }

    #[test]
    fn an_accounts_secret_goes_only_to_its_own_servers() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_with_config(
            dir.path(),
            "[account.alice]\nimap = \"imaps://alice@h\"\nsmtp = \"smtp://alice@h\"\n\
             password = \"alices\"\n\
             [account.carol]\nimap = \"imaps://carol@h:1993\"\npassword_command = \"echo carols\"\n",
            0o600,
        );
        let args = Demo::try_parse_from(["demo", "--account", "alice"]).unwrap();
        let r = args.account.resolve(&env, &Account::default()).unwrap();
        for own in [
            Endpoint::new("imaps", Some("alice"), "H", 993),
            Endpoint::new("smtp", Some("alice"), "h", 587),
        ] {
            assert!(matches!(
                r.credentials(&own, "x").unwrap(),
                Some(Auth::Password { .. })
            ));
        }
        for foreign in [
            Endpoint::new("imaps", Some("bob"), "h", 993),
            Endpoint::new("imaps", Some("alice"), "other", 993),
            Endpoint::new("imaps", Some("alice"), "h", 1993),
            Endpoint::new("imap", Some("alice"), "h", 993),
        ] {
            let err = r.credentials(&foreign, "x").unwrap_err();
            assert_eq!(err.exit().code(), 78);
            assert!(err.to_string().contains("no password for"), "{err}");
            assert!(!err.to_string().contains("alices"), "{err}");
        }
        // No --account: the account whose URL the command line names, else
        // none at all.
        let args = Demo::try_parse_from(["demo"]).unwrap();
        let over = |url: &str| Account {
            imap: Some(url.into()),
            ..Account::default()
        };
        let r = args
            .account
            .resolve(&env, &over("imaps://carol@h:1993"))
            .unwrap();
        assert_eq!(r.name.as_deref(), Some("carol"));
        let own = Endpoint::new("imaps", Some("carol"), "h", 1993);
        assert!(r.credentials(&own, "x").unwrap().is_some());
        let r = args.account.resolve(&env, &over("imaps://bob@h")).unwrap();
        assert_eq!(r.name, None);
        let bob = Endpoint::new("imaps", Some("bob"), "h", 993);
        assert_eq!(r.credentials(&bob, "x").unwrap_err().exit().code(), 78);
    }
    #[test]
    fn broken_pipe_finishes_quietly() {
        let err = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe));
        let code = finish("t", Err(err.context("writing stdout")));
        assert_eq!(format!("{code:?}"), format!("{:?}", ExitCode::from(0)));
        let err = anyhow::Error::new(Error::new(ErrorKind::Auth, "imap://h", "refused"));
        let code = finish("t", Err(err));
        assert_eq!(format!("{code:?}"), format!("{:?}", ExitCode::from(77)));
    }

    #[test]
    fn path_output_terminators() {
        let mut buf = Vec::new();
        {
            let mut out = PathOutput::new(&mut buf, true);
            out.path(Path::new("a b")).unwrap();
            out.path(Path::new("c\nd")).unwrap();
        }
        assert_eq!(buf, b"a b\0c\nd\0");
    }

    #[test]
    fn long_example_commands_fold_where_the_shell_allows() {
        let long = "  echo 'backup done' | mail-inject -r cron@example.org -s 'a b c' --maildir ~/Mail/inbox me@example.org";
        let text = fold_commands(&format!(
            "  # a comment that is long enough to pass the width of the help text, and more\n{long}\n      A description."
        ));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("  # a comment"), "comments stay whole");
        assert_eq!(
            lines[1],
            "  echo 'backup done' | mail-inject -r cron@example.org -s 'a b c' \\"
        );
        assert_eq!(lines[2], "      --maildir ~/Mail/inbox me@example.org");
        assert_eq!(lines[3], "      A description.");
        assert!(
            lines
                .iter()
                .all(|l| l.chars().count() <= HELP_WIDTH || l.contains("# a"))
        );
        // Joined again, the command is the one given.
        assert_eq!(
            format!(
                "{} {}",
                lines[1].trim_end_matches('\\').trim(),
                lines[2].trim()
            ),
            long.trim()
        );
    }

    #[test]
    fn help_ends_with_exit_table() {
        let text = after_help("  mail-x a b\n");
        assert!(text.starts_with("Examples:\n  mail-x a b\n\nExit status:\n"));
        assert!(text.contains(" 75  temporary"));
    }
}
