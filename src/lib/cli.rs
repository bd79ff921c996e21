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
    /// are shown by default, errors only with `-q`.
    pub fn init(&self) {
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
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(io::stderr)
            .without_time()
            .with_target(false)
            .try_init();
    }
}

/// The flags that choose an account and its credentials, shared by the
/// tools that talk to servers.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AccountArgs {
    /// Configuration file [default: $XDG_CONFIG_HOME/mailbot/config.toml].
    #[arg(long, global = true, env = "MAILBOT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Account from the configuration file.
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
    /// PEM file of CA certificates to trust instead of the system's.
    #[arg(long, global = true, env = "MAILBOT_CA_FILE", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify TLS certificates (only for tests; says so on stderr).
    #[arg(long, global = true, env = "MAILBOT_INSECURE")]
    pub insecure: bool,
}

/// An account as the program will use it: the config file's values with
/// flags and variables laid over them.
#[derive(Debug, Clone, Default)]
pub struct ResolvedAccount {
    /// The account's name in the configuration, if it came from there.
    pub name: Option<String>,
    /// The merged settings.
    pub account: Account,
    /// The whole configuration, when a file was read (rules live there).
    pub config: Option<Config>,
    /// Whether `--insecure` was given.
    pub insecure: bool,
    /// `--password-command` given as a flag or variable, which beats
    /// `MAILBOT_PASSWORD` and the file.
    password_command_flag: Option<String>,
    env_password: Option<Secret>,
}

impl AccountArgs {
    /// Reads the configuration (when there is one) and lays the flags over
    /// the chosen account. `over` carries the tool's own settings (URLs,
    /// maildir) that beat the file's.
    pub fn resolve(&self, env: &ProcessEnv, over: &Account) -> Result<ResolvedAccount> {
        let (path, required) = match &self.config {
            Some(p) => (Some(p.clone()), true),
            None => (
                config::default_path(env.xdg_config_home.as_deref(), env.home.as_deref()),
                false,
            ),
        };
        let config = match &path {
            Some(p) => Config::load(p, required)?,
            None => None,
        };
        let (name, base) = match &config {
            Some(c) => match c.select_account(self.account.as_deref())? {
                Some((n, a)) => (Some(n.to_string()), a.clone()),
                None => (None, Account::default()),
            },
            None => {
                if let Some(n) = &self.account {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!("account {n:?}"),
                        "no configuration file to find it in",
                    ));
                }
                (None, Account::default())
            }
        };
        let flags = Account {
            user: self.user.clone(),
            password_command: self.password_command.clone(),
            ca_file: self.ca_file.clone(),
            ..Account::default()
        };
        let account = base
            .overridden_by(&flags)
            .overridden_by(over)
            .with_home(env.home.as_deref());
        Ok(ResolvedAccount {
            name,
            account,
            config,
            insecure: self.insecure,
            password_command_flag: self.password_command.clone(),
            env_password: env.password.clone(),
        })
    }
}

impl ResolvedAccount {
    /// The password, in this order: `--password-command`
    /// (or `MAILBOT_PASSWORD_COMMAND`), `MAILBOT_PASSWORD`, then the
    /// account's `password_command` or `password` from the file.
    pub fn password(&self) -> Result<Option<Secret>> {
        if let Some(cmd) = &self.password_command_flag {
            return config::secret_from_command(cmd, "--password-command").map(Some);
        }
        if let Some(p) = &self.env_password {
            return Ok(Some(p.clone()));
        }
        self.account.password()
    }

    /// The credentials for a server: XOAUTH2 when a token command is set,
    /// else the password when there is a user (from the URL, else the
    /// account), else none. A user without a password is a configuration
    /// error (exit 78) naming `object`.
    pub fn credentials(&self, url_user: Option<&str>, object: &str) -> Result<Option<Auth>> {
        let user = url_user
            .map(str::to_string)
            .or_else(|| self.account.user.clone());
        Ok(match (&self.account.oauth2_token_command, user) {
            (Some(cmd), Some(user)) => Some(Auth::OAuth2 {
                user,
                token: config::secret_from_command(cmd, "--oauth2-token-command")?,
            }),
            (None, Some(user)) => {
                let password = self.password()?.ok_or_else(|| {
                    Error::new(
                        ErrorKind::Config,
                        object,
                        format!("no password for {user:?}: give --password-command, MAILBOT_PASSWORD or the account's password_command"),
                    )
                })?;
                Some(Auth::Password { user, password })
            }
            (Some(_), None) => {
                return Err(Error::new(
                    ErrorKind::Config,
                    object,
                    "XOAUTH2 needs a user: put it in the URL or give --user",
                ));
            }
            (None, None) => None,
        })
    }
}

/// Parses the command line; a usage error prints clap's message and gives
/// exit 64, `--help` and `--version` give 0.
pub fn parse_args<T: Parser>() -> std::result::Result<T, ExitCode> {
    parse_args_from(std::env::args_os())
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
    match T::try_parse_from(args) {
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
        let args = Demo::try_parse_from(["demo", "--user", "flag"]).unwrap();
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
        let mut env = env_with_config(dir.path(), "[account.s]\npassword = \"file\"\n", 0o600);
        let args = Demo::try_parse_from(["demo"]).unwrap();
        let r = args.account.resolve(&env, &Account::default()).unwrap();
        assert_eq!(r.password().unwrap().unwrap().expose(), "file");
        env.password = Some(Secret::new("env".into()));
        let r = args.account.resolve(&env, &Account::default()).unwrap();
        assert_eq!(r.password().unwrap().unwrap().expose(), "env");
        let args = Demo::try_parse_from(["demo", "--password-command", "echo cmd"]).unwrap();
        let r = args.account.resolve(&env, &Account::default()).unwrap();
        assert_eq!(r.password().unwrap().unwrap().expose(), "cmd");
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
