//! The optional TOML configuration: accounts (address, SMTP and IMAP URLs,
//! user, how to get the password, CA file, maildir) and the rules
//! `mail-bot` runs.
//!
//! The library never looks for the file or reads the environment: the
//! binaries find the path (`--config`, `MAILBOT_CONFIG`,
//! `$XDG_CONFIG_HOME/mailbot/config.toml`) and pass it in, with the home
//! directory used to expand `~`. A file that holds a password is refused
//! unless only its owner can read it.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Accounts by name (`[account.school]`).
    #[serde(default)]
    pub account: BTreeMap<String, Account>,
    /// `[[rule]]` tables, kept as written; `mail-bot` gives them meaning.
    #[serde(default)]
    pub rule: Vec<toml::Table>,
}

/// One mail account. Every field is optional in the file; flags and
/// `MAILBOT_*` variables fill or override them.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The account's own address (`student@example.edu`).
    pub address: Option<String>,
    /// Login name, when the URLs do not carry one.
    pub user: Option<String>,
    /// Submission URL: `smtp://user@host:587` (STARTTLS) or `smtps://host:465`.
    pub smtp: Option<String>,
    /// IMAP URL: `imaps://user@host` or `imap://host:143` (STARTTLS).
    pub imap: Option<String>,
    /// The password itself; allowed only in a file of mode 0600.
    pub password: Option<String>,
    /// A command whose first line of output is the password (`pass show x`).
    pub password_command: Option<String>,
    /// A command whose first line of output is an OAuth2 access token.
    pub oauth2_token_command: Option<String>,
    /// PEM files of CA certificates trusted besides the system's store
    /// (a path or a list).
    #[serde(default, deserialize_with = "one_or_many")]
    pub ca_file: Vec<PathBuf>,
    /// PEM files of the only CA certificates to trust: the system's store
    /// is then not used (a path or a list).
    #[serde(default, deserialize_with = "one_or_many")]
    pub only_ca_file: Vec<PathBuf>,
    /// The local maildir; `~` is expanded against the home directory.
    pub maildir: Option<PathBuf>,
    /// Folder patterns to sync (`["INBOX", "Lists.*"]`, as `mail-sync
    /// --folder`); every folder when empty.
    #[serde(default)]
    pub folders: Vec<String>,
    /// `YYYY-MM-DD`: mail-bot's first run on the account acts on mail
    /// dated from this day on (by default on none of the mail already
    /// there). A TOML date (`since = 2024-09-01`, unquoted) is taken too.
    #[serde(default, deserialize_with = "day")]
    pub since: Option<String>,
    /// How long a temporary failure (server down) lasts before mail-bot
    /// says so on stderr (seconds, or `30m`, `1h`, `2d`).
    #[serde(default, deserialize_with = "duration")]
    pub alert_after: Option<Duration>,
    /// The least time between two automatic replies to one sender.
    #[serde(default, deserialize_with = "duration")]
    pub reply_interval: Option<Duration>,
    /// How synced messages store their line ends: `"lf"` (the default,
    /// each CRLF made LF) or `"crlf"` (as the server sends them).
    pub line_ends: Option<crate::maildir::LineEnds>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("address", &self.address)
            .field("user", &self.user)
            .field("smtp", &self.smtp.as_deref().map(crate::url::redact))
            .field("imap", &self.imap.as_deref().map(crate::url::redact))
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("password_command", &self.password_command)
            .field("oauth2_token_command", &self.oauth2_token_command)
            .field("ca_file", &self.ca_file)
            .field("only_ca_file", &self.only_ca_file)
            .field("maildir", &self.maildir)
            .field("folders", &self.folders)
            .field("since", &self.since)
            .field("alert_after", &self.alert_after)
            .field("reply_interval", &self.reply_interval)
            .field("line_ends", &self.line_ends)
            .finish()
    }
}

/// The default location of the configuration file:
/// `$XDG_CONFIG_HOME/mailbot/config.toml`, else `~/.config/mailbot/config.toml`.
pub fn default_path(xdg_config_home: Option<&Path>, home: Option<&Path>) -> Option<PathBuf> {
    let base = match xdg_config_home {
        Some(x) if x.is_absolute() => x.to_path_buf(),
        _ => home?.join(".config"),
    };
    Some(base.join("mailbot").join("config.toml"))
}

/// Replaces a leading `~` or `~/` with `home`.
pub fn expand_tilde(path: &Path, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

impl Config {
    /// Parses configuration text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Config> {
        toml::from_str(text).map_err(|e| {
            let msg = e.message().to_string();
            let place = match e.span() {
                Some(span) => {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}: ")
                }
                None => String::new(),
            };
            Error::new(
                ErrorKind::Config,
                origin.display().to_string(),
                format!("{place}{msg}"),
            )
        })
    }

    /// Reads and checks the file at `path`.
    ///
    /// `required` says whether the user named the file; an unnamed default
    /// that does not exist is `Ok(None)` (no configuration is needed for
    /// one-shot use), a named one that does not exist is a configuration
    /// error. A file holding a password that others can read is refused.
    pub fn load(path: &Path, required: bool) -> Result<Option<Config>> {
        let object = || path.display().to_string();
        // Opened once and read once: `--config <(pass show mailbot)` is a
        // pipe that cannot be read twice, and the mode checked is the
        // mode of what was read.
        let mut file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !required => return Ok(None),
            Err(e) => return Err(Error::io(ErrorKind::Config, object(), e)),
        };
        let mut text = String::new();
        io::Read::read_to_string(&mut file, &mut text)
            .map_err(|e| Error::io(ErrorKind::Config, object(), e))?;
        let config = Config::parse(&text, path)?;
        if config.holds_password() {
            let mode = file
                .metadata()
                .map_err(|e| Error::io(ErrorKind::Config, object(), e))?
                .permissions()
                .mode();
            check_secret_mode(path, mode)?;
        }
        config.check_urls(path)?;
        Ok(Some(config))
    }

    /// Every account's `smtp` and `imap` must parse; a password in one is
    /// a configuration error (exit 78), shown without the password.
    fn check_urls(&self, origin: &Path) -> Result<()> {
        for (name, account) in &self.account {
            let object = || format!("{}: account {name:?}", origin.display());
            let as_config = |key: &str, e: Error| {
                Error::new(ErrorKind::Config, object(), format!("{key}: {e}"))
            };
            if let Some(u) = &account.smtp {
                crate::smtp::SmtpUrl::parse(u).map_err(|e| as_config("smtp", e))?;
            }
            if let Some(u) = &account.imap {
                crate::imap::ImapUrl::parse(u).map_err(|e| as_config("imap", e))?;
            }
            if let Some(d) = &account.since
                && parse_day(d).is_none()
            {
                return Err(Error::new(
                    ErrorKind::Config,
                    object(),
                    format!("since: {d:?} is not a day (write YYYY-MM-DD)"),
                ));
            }
        }
        Ok(())
    }

    /// True when any account has a `password` field.
    pub fn holds_password(&self) -> bool {
        self.account.values().any(|a| a.password.is_some())
    }

    /// The account called `name`; with no name, the only account when
    /// there is exactly one. `Ok(None)` when the file has no accounts and
    /// none was asked for.
    pub fn select_account(&self, name: Option<&str>) -> Result<Option<(&str, &Account)>> {
        match name {
            Some(n) => match self.account.get_key_value(n) {
                Some((k, a)) => Ok(Some((k.as_str(), a))),
                None => Err(Error::new(
                    ErrorKind::Config,
                    format!("account {n:?}"),
                    format!("not in the configuration (known: {})", self.account_names()),
                )),
            },
            None => match self.account.len() {
                0 => Ok(None),
                1 => Ok(self.account.iter().next().map(|(k, a)| (k.as_str(), a))),
                _ => Err(Error::new(
                    ErrorKind::Config,
                    "account",
                    format!(
                        "the configuration has several; choose one with --account (known: {})",
                        self.account_names()
                    ),
                )),
            },
        }
    }

    fn account_names(&self) -> String {
        if self.account.is_empty() {
            return "none".into();
        }
        self.account.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// Refuses a file that holds a secret when its mode lets group or others
/// read it.
pub fn check_secret_mode(path: &Path, mode: u32) -> Result<()> {
    if mode & 0o077 != 0 {
        return Err(Error::new(
            ErrorKind::Config,
            path.display().to_string(),
            format!(
                "holds a password but is readable by others (mode {:04o}); run: chmod 600 {}",
                mode & 0o7777,
                crate::shell::quote(&path.display().to_string())
            ),
        ));
    }
    Ok(())
}

impl Account {
    /// This account with every field set in `over` replacing its own.
    pub fn overridden_by(&self, over: &Account) -> Account {
        fn pick<T: Clone>(a: &Option<T>, b: &Option<T>) -> Option<T> {
            b.clone().or_else(|| a.clone())
        }
        Account {
            address: pick(&self.address, &over.address),
            user: pick(&self.user, &over.user),
            smtp: pick(&self.smtp, &over.smtp),
            imap: pick(&self.imap, &over.imap),
            password: pick(&self.password, &over.password),
            password_command: pick(&self.password_command, &over.password_command),
            oauth2_token_command: pick(&self.oauth2_token_command, &over.oauth2_token_command),
            ca_file: self.ca_file.iter().chain(&over.ca_file).cloned().collect(),
            only_ca_file: self
                .only_ca_file
                .iter()
                .chain(&over.only_ca_file)
                .cloned()
                .collect(),
            maildir: pick(&self.maildir, &over.maildir),
            folders: if over.folders.is_empty() {
                self.folders.clone()
            } else {
                over.folders.clone()
            },
            since: pick(&self.since, &over.since),
            alert_after: pick(&self.alert_after, &over.alert_after),
            reply_interval: pick(&self.reply_interval, &over.reply_interval),
            line_ends: pick(&self.line_ends, &over.line_ends),
        }
    }

    /// The account with `~` expanded in its paths.
    pub fn with_home(mut self, home: Option<&Path>) -> Account {
        for p in self.ca_file.iter_mut().chain(self.only_ca_file.iter_mut()) {
            *p = expand_tilde(p, home);
        }
        self.maildir = self.maildir.map(|p| expand_tilde(&p, home));
        self
    }

    /// The password: the `password` field when set, else the output of
    /// `password_command` (which may take [`DEFAULT_SECRET_TIMEOUT`]).
    /// `Ok(None)` when the account has neither.
    pub fn password(&self) -> Result<Option<Secret>> {
        self.password_within(DEFAULT_SECRET_TIMEOUT)
    }

    /// [`Account::password`] with `password_command` given `timeout`.
    pub fn password_within(&self, timeout: Duration) -> Result<Option<Secret>> {
        if let Some(p) = &self.password {
            return Ok(Some(Secret::new(p.clone())));
        }
        match &self.password_command {
            Some(cmd) => secret_from_command_within(cmd, "password_command", timeout).map(Some),
            None => Ok(None),
        }
    }
}

/// How long a password or token command may take unless told otherwise.
pub const DEFAULT_SECRET_TIMEOUT: Duration = crate::child::DEFAULT_SECRET_TIMEOUT;

/// A duration in the file: seconds as a number, or text with a unit
/// (`90s`, `30m`, `1h`, `7d`, `2w`).
pub fn parse_duration(value: &toml::Value) -> Option<Duration> {
    match value {
        toml::Value::Integer(n) if *n >= 0 => Some(Duration::from_secs(*n as u64)),
        toml::Value::Float(f) if *f >= 0.0 && f.is_finite() => Duration::try_from_secs_f64(*f).ok(),
        toml::Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit())?;
            let (n, unit) = s.split_at(split);
            let n: u64 = n.parse().ok()?;
            let unit = match unit.trim() {
                "s" => 1,
                "m" | "min" => 60,
                "h" => 3600,
                "d" => 86_400,
                "w" => 7 * 86_400,
                _ => return None,
            };
            Some(Duration::from_secs(n.checked_mul(unit)?))
        }
        _ => None,
    }
}

fn duration<'de, D>(deserializer: D) -> std::result::Result<Option<Duration>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value = toml::Value::deserialize(deserializer)?;
    parse_duration(&value).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "{value} is not a duration (seconds, or like \"30m\", \"1h\", \"7d\")"
        ))
    })
}

/// `since`: a string (checked with the rest of the file) or a TOML date,
/// which TOML writes without quotes; a date with a time is refused.
fn day<'de, D>(deserializer: D) -> std::result::Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    match toml::Value::deserialize(deserializer)? {
        toml::Value::String(s) => Ok(Some(s)),
        toml::Value::Datetime(d) if d.time.is_none() && d.offset.is_none() => {
            Ok(Some(d.to_string()))
        }
        other => Err(serde::de::Error::custom(format!(
            "{other} is not a day (write YYYY-MM-DD)"
        ))),
    }
}

/// `YYYY-MM-DD` as the first second of that day, UTC, in seconds since
/// the epoch.
pub fn parse_day(text: &str) -> Option<i64> {
    crate::bot::date::parse_day(text)
}

/// `ca_file = "a.pem"` or `ca_file = ["a.pem", "b.pem"]`.
fn one_or_many<'de, D>(deserializer: D) -> std::result::Result<Vec<PathBuf>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(PathBuf),
        Many(Vec<PathBuf>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(p) => vec![p],
        OneOrMany::Many(v) => v,
    })
}

/// A password or token: never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The value, for handing to an authenticator.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// Runs `command` with `sh -c` and returns the first line it prints, as
/// `password_command` and `oauth2_token_command` do, allowing it
/// [`DEFAULT_SECRET_TIMEOUT`]. `what` names the setting in errors.
pub fn secret_from_command(command: &str, what: &str) -> Result<Secret> {
    secret_from_command_within(command, what, DEFAULT_SECRET_TIMEOUT)
}

/// [`secret_from_command`] allowing the command `timeout`: one that takes
/// longer is killed with its process group and is a configuration error
/// (exit 78) naming the command. The command gets no stdin and none of
/// mailbot's secret variables ([`crate::child`]); its stderr is ours.
pub fn secret_from_command_within(command: &str, what: &str, timeout: Duration) -> Result<Secret> {
    let object = format!("{what} {command:?}");
    let mut cmd = crate::child::command("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    // A secret is one line; a command that prints megabytes is wrong.
    let (ended, stdout) = crate::child::output(&mut cmd, timeout, 64 * 1024, &object)
        .map_err(|e| Error::new(ErrorKind::Config, "", crate::error::chain(&e)))?;
    let status = match ended {
        crate::child::Ended::Exited(status) => status,
        crate::child::Ended::TimedOut(limit) => {
            return Err(Error::new(
                ErrorKind::Config,
                object,
                format!(
                    "no answer within {}; killed",
                    crate::child::describe_duration(limit)
                ),
            ));
        }
    };
    if !status.success() {
        return Err(Error::new(
            ErrorKind::Config,
            object,
            format!("command failed ({status})"),
        ));
    }
    let text = String::from_utf8(stdout).map_err(|_| {
        Error::new(
            ErrorKind::Config,
            object.clone(),
            "command printed non-UTF-8 output",
        )
    })?;
    let line = text.lines().next().unwrap_or("").to_string();
    if line.is_empty() {
        return Err(Error::new(
            ErrorKind::Config,
            object,
            "command printed nothing",
        ));
    }
    Ok(Secret::new(line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const SAMPLE: &str = r#"
[account.school]
address = "student@example.edu"
smtp = "smtp://student@smtp.example.edu:587"
imap = "imaps://student@imap.example.edu"
password_command = "echo s3cret; echo second-line"
ca_file = "/etc/ssl/private-ca.pem"
maildir = "~/Mail/school"

[[rule]]
account = "school"
match = "tag:new and attachment:pdf"
print = "lpr -P office {}"
"#;

    #[test]
    fn parses_the_design_example() {
        let c = Config::parse(SAMPLE, Path::new("c.toml")).unwrap();
        let (name, acct) = c.select_account(None).unwrap().unwrap();
        assert_eq!(name, "school");
        assert_eq!(acct.address.as_deref(), Some("student@example.edu"));
        assert_eq!(c.rule.len(), 1);
        let acct = acct.clone().with_home(Some(Path::new("/home/s")));
        assert_eq!(acct.maildir, Some(PathBuf::from("/home/s/Mail/school")));
        assert_eq!(acct.password().unwrap().unwrap().expose(), "s3cret");
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let err =
            Config::parse("[account.a]\nsmtp_url = \"x\"\n", Path::new("c.toml")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        let text = err.to_string();
        assert!(text.starts_with("c.toml: line 2: "), "{text}");
        assert!(text.contains("smtp_url"), "{text}");
    }

    #[test]
    fn since_is_a_day_quoted_or_as_a_toml_date() {
        for text in ["since = \"2024-09-01\"", "since = 2024-09-01"] {
            let c = Config::parse(&format!("[account.a]\n{text}\n"), Path::new("c")).unwrap();
            assert_eq!(
                c.account["a"].since.as_deref(),
                Some("2024-09-01"),
                "{text}"
            );
        }
        for text in [
            "since = 2024-09-01T10:00:00",
            "since = 2024-09-31",
            "since = 7",
            "since = \"soon\"",
        ] {
            let err = Config::parse(&format!("[account.a]\n{text}\n"), Path::new("c"))
                .and_then(|c| c.check_urls(Path::new("c")))
                .unwrap_err();
            assert_eq!(err.exit().code(), 78, "{text}");
            assert!(err.to_string().contains("day"), "{text}: {err}");
        }
    }

    #[test]
    fn account_selection() {
        let c = Config::parse("[account.a]\n[account.b]\n", Path::new("c")).unwrap();
        assert_eq!(c.select_account(None).unwrap_err().exit().code(), 78);
        assert_eq!(c.select_account(Some("b")).unwrap().unwrap().0, "b");
        let err = c.select_account(Some("zz")).unwrap_err();
        assert!(err.to_string().contains("known: a, b"), "{err}");
        let empty = Config::default();
        assert!(empty.select_account(None).unwrap().is_none());
    }

    #[test]
    fn password_file_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        fs::write(&path, "[account.a]\npassword = \"hunter2\"\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Config::load(&path, true).unwrap_err();
        assert_eq!(err.exit().code(), 78);
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(!err.to_string().contains("hunter2"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let c = Config::load(&path, true).unwrap().unwrap();
        assert!(c.holds_password());
        // No password in it: any mode is fine.
        fs::write(&path, "[account.a]\npassword_command = \"pass a\"\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Config::load(&path, true).unwrap().is_some());
    }

    #[test]
    fn missing_file_is_fine_unless_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.toml");
        assert!(Config::load(&path, false).unwrap().is_none());
        assert_eq!(Config::load(&path, true).unwrap_err().exit().code(), 78);
    }

    #[test]
    fn overrides_replace_only_what_is_set() {
        let base = Account {
            address: Some("a@x".into()),
            smtp: Some("smtp://x".into()),
            ..Account::default()
        };
        let over = Account {
            smtp: Some("smtps://y".into()),
            ..Account::default()
        };
        let merged = base.overridden_by(&over);
        assert_eq!(merged.address.as_deref(), Some("a@x"));
        assert_eq!(merged.smtp.as_deref(), Some("smtps://y"));
    }

    #[test]
    fn debug_hides_secrets() {
        let a = Account {
            password: Some("hunter2".into()),
            ..Account::default()
        };
        assert!(!format!("{a:?}").contains("hunter2"));
        assert!(!format!("{:?}", Secret::new("hunter2".into())).contains("hunter2"));
    }

    #[test]
    fn failing_password_command_is_a_config_error() {
        let a = Account {
            password_command: Some("exit 3".into()),
            ..Account::default()
        };
        assert_eq!(a.password().unwrap_err().exit().code(), 78);
    }

    #[test]
    fn a_hanging_password_command_is_killed_and_named() {
        let a = Account {
            password_command: Some("sleep 300".into()),
            ..Account::default()
        };
        let started = std::time::Instant::now();
        let err = a.password_within(Duration::from_millis(200)).unwrap_err();
        assert_eq!(err.exit().code(), 78);
        let text = err.to_string();
        assert!(
            text.contains("\"sleep 300\"") && text.contains("killed"),
            "{text}"
        );
        // Killed, not waited for: far below the command's 300 s.
        assert!(started.elapsed() < Duration::from_secs(60));
    }

    #[test]
    fn ca_files_are_a_path_or_a_list_and_urls_are_checked() {
        let c = Config::parse(
            "[account.a]\nca_file = \"~/a.pem\"\n[account.b]\nca_file = [\"x\", \"y\"]\nonly_ca_file = \"z\"\n",
            Path::new("c"),
        )
        .unwrap();
        assert_eq!(c.account["a"].ca_file, [PathBuf::from("~/a.pem")]);
        assert_eq!(c.account["b"].ca_file.len(), 2);
        assert_eq!(c.account["b"].only_ca_file, [PathBuf::from("z")]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        fs::write(&path, "[account.a]\nimap = \"imaps://alice:hunter2@h\"\n").unwrap();
        let err = Config::load(&path, true).unwrap_err();
        assert_eq!(err.exit().code(), 78);
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().contains("imaps://alice:***@h"), "{err}");
        let a = Account {
            imap: Some("imaps://alice:hunter2@h".into()),
            ..Account::default()
        };
        assert!(!format!("{a:?}").contains("hunter2"));
    }

    #[test]
    fn default_path_prefers_xdg() {
        assert_eq!(
            default_path(Some(Path::new("/x")), Some(Path::new("/h"))),
            Some(PathBuf::from("/x/mailbot/config.toml"))
        );
        assert_eq!(
            default_path(None, Some(Path::new("/h"))),
            Some(PathBuf::from("/h/.config/mailbot/config.toml"))
        );
        assert_eq!(
            default_path(Some(Path::new("relative")), Some(Path::new("/h"))),
            Some(PathBuf::from("/h/.config/mailbot/config.toml"))
        );
    }
}
