//! mail-inject: compose a MIME message (mailx-style flags, attachments) or
//! take a finished one, and inject it into one or more targets: SMTP
//! submission, a sendmail program, a maildir, a file or stdout. Also
//! sends a JSONL batch over one SMTP session, and flushes the outbox of
//! messages that could not be sent earlier.

use std::ffi::{OsStr, OsString};
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde_json::json;

use mailbot::batch;
use mailbot::cli::{self, AccountArgs, LogArgs, ProcessEnv, ResolvedAccount};
use mailbot::compose::{self, Address, Attachment, Composed, Draft, Pins};
use mailbot::config::Account;
use mailbot::error::{Error, ErrorKind, chain};
use mailbot::exit::Exit;
use mailbot::imap::{self, ImapUrl};
use mailbot::maildir::Maildir;
use mailbot::queue::{self, Outbox};
use mailbot::sendmail;
use mailbot::smtp::{Envelope, Retry, Sender, Settings, SmtpUrl};
use mailbot::tls;

const PROGRAM: &str = "mail-inject";

const EXAMPLES: &str = "  # A PDF to yourself over submission (STARTTLS + AUTH), body from a file:
  mail-inject --smtp smtp://me@mail.example.org:587 \\
      --password-command 'pass mail' -r me@example.org -s 'Monthly report' \\
      -a report.pdf --body note.txt me@example.org

  # Compose reproducibly and print the message instead of sending it:
  mail-inject -r a@example.org -s Hello --body-text 'Hi there' --date @0 \\
      --message-id 1@example.org --boundary b1 -o - b@example.org

  # Deliver straight into a local maildir (prints the new file's path):
  echo 'backup done' | mail-inject -r cron@example.org -s 'backup' \\
      --maildir ~/Mail/inbox me@example.org

  # Keep what cannot be sent now; send it later from cron:
  mail-inject --smtp smtp://me@mail.example.org \\
      --queue ~/.local/share/mailbot/outbox -s hi me@example.org < note.txt
  mail-inject --flush --queue ~/.local/share/mailbot/outbox \\
      --smtp smtp://me@mail.example.org

  # A finished message, recipients from its To/Cc/Bcc (Bcc is removed):
  mail-inject --raw -t --smtp smtps://me@mail.example.org < message.eml

  # Every message of an mbox into a maildir (a re-run adds only new ones):
  mail-inject --raw --mbox 'Takeout/Mail/All mail.mbox' --maildir ~/Mail/takeout";

/// Compose a MIME message and inject it: SMTP, sendmail, maildir, file.
#[derive(Debug, Parser)]
#[command(name = PROGRAM, version, after_help = cli::after_help(EXAMPLES))]
struct Args {
    /// Recipients (To:); each may be a comma-separated list.
    #[arg(value_name = "RCPT")]
    recipients: Vec<String>,

    /// Subject.
    #[arg(short, long, value_name = "TEXT", help_heading = "Compose")]
    subject: Option<String>,
    /// Attach a file; `FILE;type=T/S;name=N` overrides type and name; `-` (or
    /// `-;name=N`) is stdin, the body then comes from --body or --body-text. Repeatable.
    #[arg(
        short = 'a',
        long = "attach",
        value_name = "FILE",
        allow_hyphen_values = true,
        help_heading = "Compose"
    )]
    attach: Vec<OsString>,
    /// Show a file inline in the HTML (Content-ID: its name, or `FILE;cid=ID`). Repeatable.
    #[arg(long, value_name = "FILE", help_heading = "Compose")]
    inline: Vec<OsString>,
    /// Carbon copy (Cc:). Repeatable.
    #[arg(short = 'c', long, value_name = "ADDR", help_heading = "Compose")]
    cc: Vec<String>,
    /// Blind copy: envelope only, never written into the message. Repeatable.
    #[arg(short = 'b', long, value_name = "ADDR", help_heading = "Compose")]
    bcc: Vec<String>,
    /// Sender (From: and the envelope) [default: the account's address, else USER@HOST].
    #[arg(
        short = 'r',
        long = "from",
        env = "MAILBOT_FROM",
        value_name = "ADDR",
        help_heading = "Compose"
    )]
    from: Option<String>,
    /// Reply-To:.
    #[arg(long, value_name = "ADDR", help_heading = "Compose")]
    reply_to: Vec<String>,
    /// In-Reply-To: and References: (a Message-ID).
    #[arg(long, value_name = "ID", help_heading = "Compose")]
    in_reply_to: Option<String>,
    /// Add a header 'Name: value' (no line breaks). Repeatable.
    #[arg(
        short = 'H',
        long = "header",
        value_name = "HEADER",
        help_heading = "Compose"
    )]
    headers: Vec<String>,
    /// Body text from a file [default: stdin when it is not a terminal].
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "body_text",
        help_heading = "Compose"
    )]
    body: Option<PathBuf>,
    /// Body text given here.
    #[arg(long, value_name = "TEXT", help_heading = "Compose")]
    body_text: Option<String>,
    /// An HTML alternative of the body (multipart/alternative).
    #[arg(long, value_name = "FILE", help_heading = "Compose")]
    html: Option<PathBuf>,
    /// Pin the Date: (RFC 5322 text, or @SECONDS since the epoch).
    #[arg(long, value_name = "DATE", help_heading = "Compose")]
    date: Option<String>,
    /// Pin the Message-ID.
    #[arg(long, value_name = "ID", help_heading = "Compose")]
    message_id: Option<String>,
    /// Pin the MIME boundary (nested ones become 1.B, 2.B ...).
    #[arg(long, value_name = "B", help_heading = "Compose")]
    boundary: Option<String>,
    /// Send a finished message from stdin unchanged (except Bcc:, which is removed).
    #[arg(long, help_heading = "Compose", conflicts_with_all = ["subject", "attach", "inline", "cc", "html", "body", "body_text", "headers", "reply_to", "in_reply_to", "date", "message_id", "boundary"])]
    raw: bool,
    /// With --raw and --maildir: deliver every message of this mbox
    /// (mboxo, mboxrd, mboxcl, mboxcl2; - for stdin) into the maildir,
    /// each as it was before it went into the mbox (no From_ line, >From
    /// unquoted, LF line ends), printing the new files' paths. A message
    /// already delivered from an mbox before (the same bytes) is not
    /// delivered again.
    #[arg(
        long,
        value_name = "FILE",
        requires_all = ["raw", "maildir"],
        conflicts_with_all = ["output", "sendmail", "read_recipients", "recipients"],
        help_heading = "Compose"
    )]
    mbox: Option<PathBuf>,
    /// With --mbox: how it delimits messages and quotes From lines (as
    /// mail-dissect --mbox-format).
    #[arg(
        long,
        value_name = "FORMAT",
        default_value = "auto",
        requires = "mbox",
        value_parser = ["auto", "mboxo", "mboxrd", "mboxcl", "mboxcl2"],
        help_heading = "Compose"
    )]
    mbox_format: String,
    /// With --raw: recipients from the To:, Cc: and Bcc: headers too (as sendmail -t).
    #[arg(
        short = 't',
        long = "read-recipients",
        requires = "raw",
        help_heading = "Compose"
    )]
    read_recipients: bool,

    /// Send over SMTP: smtp://[USER@]HOST[:587] (STARTTLS) or smtps://[USER@]HOST[:465].
    #[arg(
        long,
        env = "MAILBOT_SMTP",
        value_name = "URL",
        help_heading = "Targets"
    )]
    smtp: Option<String>,
    /// Pipe to a sendmail program (--sendmail=PATH): PATH -oi -f FROM -- RCPT...
    #[arg(long, value_name = "PATH", num_args = 0..=1, require_equals = true, default_missing_value = "/usr/sbin/sendmail", help_heading = "Targets")]
    sendmail: Option<PathBuf>,
    /// Deliver into this maildir (created when missing); prints the new file's path.
    #[arg(long, value_name = "DIR", help_heading = "Targets")]
    maildir: Option<PathBuf>,
    /// Append a copy over IMAP: imaps://[USER@]HOST[:993] or imap://[USER@]HOST[:143] (STARTTLS).
    #[arg(
        long,
        env = "MAILBOT_IMAP",
        value_name = "URL",
        help_heading = "Targets"
    )]
    imap: Option<String>,
    /// The folder --imap appends to (created when missing).
    #[arg(
        long,
        default_value = "Sent",
        value_name = "NAME",
        requires = "imap",
        help_heading = "Targets"
    )]
    folder: String,
    /// Write the message to FILE (atomically), or to stdout with '-'.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        help_heading = "Targets"
    )]
    output: Option<PathBuf>,

    /// Outbox maildir: a message that cannot be sent now (exit 75) is kept here.
    #[arg(
        long,
        env = "MAILBOT_QUEUE",
        value_name = "DIR",
        help_heading = "Queue and batch"
    )]
    queue: Option<PathBuf>,
    /// Send every message of the --queue outbox, removing each once the server accepted it.
    #[arg(long, requires = "queue", help_heading = "Queue and batch")]
    flush: bool,
    /// Send one message per JSON line over one SMTP session ('-': stdin).
    ///
    /// Each line is an object with these keys (only a recipient is needed;
    /// an unknown key is an error, so a typo drops nothing):
    #[arg(long, value_name = "FILE.jsonl", conflicts_with_all = ["raw", "flush", "batch_csv"], help_heading = "Queue and batch",
          long_help = batch_help())]
    batch: Option<PathBuf>,
    /// Send one message per row of a CSV file over one SMTP session.
    ///
    /// The first row names the columns: to (needed), cc, bcc, from, subject,
    /// body, attachments (FILE specs separated by |); any other column is a
    /// field. -s and --body/--body-text are templates for rows without a
    /// subject or body: {name} is the row's name column ({{ and }} are
    /// braces). -a files go to every message.
    #[arg(long, value_name = "FILE.csv", conflicts_with_all = ["raw", "flush"], help_heading = "Queue and batch")]
    batch_csv: Option<PathBuf>,
    /// Retries after a temporary failure (4xx, connection lost).
    #[arg(
        long,
        default_value_t = 2,
        value_name = "N",
        help_heading = "Queue and batch"
    )]
    retries: u32,
    /// First wait before a retry, in seconds; doubles each time.
    #[arg(
        long,
        default_value_t = 1.0,
        value_name = "SECS",
        help_heading = "Queue and batch"
    )]
    retry_wait: f64,
    /// Network timeout in seconds.
    #[arg(
        long,
        default_value_t = 60.0,
        value_name = "SECS",
        help_heading = "Queue and batch"
    )]
    timeout: f64,

    /// Command whose first output line is an OAuth2 access token (AUTH XOAUTH2).
    #[arg(long, env = "MAILBOT_OAUTH2_TOKEN_COMMAND", value_name = "CMD")]
    oauth2_token_command: Option<String>,
    /// Print a JSON summary on stdout (batch: one line per message).
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    account: AccountArgs,
    #[command(flatten)]
    log: LogArgs,

    /// Run as sendmail: a message queued is a message accepted.
    #[arg(skip)]
    sendmail_compat: bool,
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let invoked_as = argv
        .first()
        .map(|a| {
            Path::new(a)
                .file_name()
                .unwrap_or(a.as_os_str())
                .to_os_string()
        })
        .unwrap_or_default();
    if invoked_as == "sendmail" || argv.get(1).is_some_and(|a| a == "--sendmail-compat") {
        let skip = if invoked_as == "sendmail" { 1 } else { 2 };
        return cli::finish(PROGRAM, sendmail_compat(&argv[skip..]));
    }
    let args = match cli::parse_args::<Args>() {
        Ok(a) => a,
        Err(code) => return code,
    };
    args.log.init(PROGRAM);
    cli::finish(PROGRAM, run(&args))
}

// ------------------------------------------------------------ sendmail

/// mail-inject run as `sendmail` (a symlink, as `scripts/install
/// --sendmail` makes) or with `--sendmail-compat`: sendmail's command
/// line ([`sendmail::parse_command_line`]), the message on stdin, sent
/// through the configured account's smtp (flags' variables apply:
/// MAILBOT_SMTP, MAILBOT_ACCOUNT, ...). When the server cannot take it
/// now, it goes to the outbox (MAILBOT_QUEUE, else
/// $XDG_DATA_HOME/mailbot/outbox) and the exit is 0, as sendmail's when
/// it queues; `sendmail -q` sends the outbox. A bare local name (cron's
/// `root`) as sender or recipient stands for the account's own address.
fn sendmail_compat(argv: &[OsString]) -> anyhow::Result<Exit> {
    let words: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let call = sendmail::parse_command_line(&words)?;
    // The flags' variables (MAILBOT_SMTP, MAILBOT_QUEUE, MAILBOT_CONFIG...).
    let mut args = Args::try_parse_from(["sendmail", "--raw"])
        .map_err(|e| Error::new(ErrorKind::Usage, "environment", e.to_string()))?;
    args.log.verbose = u8::from(call.verbose);
    args.log.init(PROGRAM);
    // As parse_args does for the other entry: nothing created is readable
    // by others, whatever the caller's umask.
    mailbot::private::restrict_umask();
    args.sendmail_compat = true;
    let env = ProcessEnv::capture();
    if args.queue.is_none() {
        args.queue = env.data_dir().map(|d| d.join("outbox"));
    }
    let over = Account {
        smtp: args.smtp.clone(),
        oauth2_token_command: args.oauth2_token_command.clone(),
        ..Account::default()
    };
    let account = args.account.resolve(&env, &over)?;
    if account.account.smtp.is_none() {
        return Err(Error::new(
            ErrorKind::Config,
            "sendmail",
            "no SMTP server to send through: set MAILBOT_SMTP or an account's smtp in the configuration",
        )
        .into());
    }
    if call.flush {
        args.flush = true;
        return flush(&args, &account);
    }
    let own = account
        .account
        .address
        .clone()
        .or_else(|| default_from(&account));
    let local = |name: &str| -> anyhow::Result<Address> {
        match &own {
            Some(a) => Ok(Address::parse(a)?),
            None => Err(Error::new(
                ErrorKind::Config,
                format!("address {name:?}"),
                "a local name, and the account has no address to stand for it",
            )
            .into()),
        }
    };
    // Addresses as sendmail takes them: lists, and bare local names.
    let lenient = |text: &str| -> anyhow::Result<Vec<Address>> {
        if let Ok(list) = compose::parse_address_list(text) {
            return Ok(list);
        }
        let mut out = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let bare = item.split(['(', '<']).next().unwrap_or(item).trim();
            if item.contains('@') {
                out.push(Address::parse(item)?);
            } else if !bare.is_empty()
                && bare
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-+".contains(c))
            {
                out.push(local(bare)?);
            } else {
                out.push(Address::parse(item)?);
            }
        }
        Ok(out)
    };
    let original = read_stdin()?;
    let mut to: Vec<String> = Vec::new();
    let mut add = |list: Vec<Address>| {
        for a in list {
            if !to.iter().any(|t| t.eq_ignore_ascii_case(&a.email)) {
                to.push(a.email);
            }
        }
    };
    for r in &call.recipients {
        add(lenient(r)?);
    }
    if call.read_recipients {
        let (fields, _) = compose::header_fields(&original);
        for (name, value) in &fields {
            if ["to", "cc", "bcc"]
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n))
            {
                add(lenient(value)?);
            }
        }
    }
    let sender = match call.from.as_deref().filter(|f| f.contains('@')) {
        Some(f) => Address::parse(f)?,
        None => match &own {
            Some(a) => Address::parse(a)?,
            None => {
                return Err(
                    Error::new(ErrorKind::Usage, "sender", "none known: give -f ADDRESS").into(),
                );
            }
        },
    };
    let author = Address {
        name: call.full_name.clone(),
        email: sender.email.clone(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let bytes = compose::add_missing_headers(
        &compose::strip_bcc(&original),
        &author,
        &compose::format_date(now),
        &host_name(),
    );
    let message = Composed {
        message_id: compose::message_id_of(&bytes),
        bytes,
        envelope: Envelope {
            from: sender.email,
            to,
        },
    };
    let url = account.account.smtp.clone().unwrap_or_default();
    let targets = [Target::Smtp(SmtpUrl::parse(&url)?)];
    inject(&args, &account, &targets, &message)
}

fn run(args: &Args) -> anyhow::Result<Exit> {
    let env = ProcessEnv::capture();
    let over = Account {
        smtp: args.smtp.clone(),
        oauth2_token_command: args.oauth2_token_command.clone(),
        ..Account::default()
    };
    let account = args.account.resolve(&env, &over)?;
    if account.insecure {
        eprintln!("{PROGRAM}: warning: TLS certificates are not verified (--insecure)");
    }
    if args.flush {
        return flush(args, &account);
    }
    if let Some(batch) = &args.batch {
        return run_batch(args, &account, batch, jsonl_items(args, &account, batch)?);
    }
    if let Some(csv) = &args.batch_csv {
        return run_batch(args, &account, csv, csv_items(args, &account, csv)?);
    }
    if let Some(mbox) = &args.mbox {
        return deliver_mbox(args, mbox);
    }
    let targets = targets(args, &account)?;
    let message = build_message(args, &account)?;
    if args.log.verbose > 0
        && let Some(id) = &message.message_id
    {
        eprintln!("{PROGRAM}: Message-ID {id}");
    }
    inject(args, &account, &targets, &message)
}

// ------------------------------------------------------------- targets

#[derive(Debug)]
enum Target {
    Output(PathBuf),
    Maildir(PathBuf),
    Smtp(SmtpUrl),
    Sendmail(PathBuf),
    Imap(ImapUrl, String),
}

impl Target {
    fn name(&self) -> String {
        match self {
            Target::Output(p) if p.as_os_str() == "-" => "stdout".into(),
            Target::Output(p) => p.display().to_string(),
            Target::Maildir(p) => p.display().to_string(),
            Target::Smtp(u) => u.display(),
            Target::Sendmail(p) => p.display().to_string(),
            Target::Imap(u, folder) => format!("{}/{folder}", u.display()),
        }
    }

    fn needs_envelope(&self) -> bool {
        matches!(self, Target::Smtp(_) | Target::Sendmail(_))
    }
}

fn targets(args: &Args, account: &ResolvedAccount) -> anyhow::Result<Vec<Target>> {
    let mut out = Vec::new();
    if let Some(p) = &args.output {
        out.push(Target::Output(p.clone()));
    }
    if let Some(p) = &args.maildir {
        out.push(Target::Maildir(p.clone()));
    }
    // The account's smtp (flag, variable or file) is the target when no
    // other was named; an explicit --smtp always is.
    if let Some(url) = &account.account.smtp
        && (args.smtp.is_some() || out.is_empty() && args.sendmail.is_none())
    {
        out.push(Target::Smtp(SmtpUrl::parse(url)?));
    }
    if let Some(p) = &args.sendmail {
        out.push(Target::Sendmail(p.clone()));
    }
    if let Some(url) = &args.imap {
        out.push(Target::Imap(ImapUrl::parse(url)?, args.folder.clone()));
    }
    if out.is_empty() {
        return Err(Error::new(
            ErrorKind::Usage,
            "target",
            "nowhere to send the message: give --smtp URL, --sendmail, --maildir DIR, --imap URL or -o FILE (- for stdout)",
        )
        .into());
    }
    if args.queue.is_some() && !out.iter().any(|t| matches!(t, Target::Smtp(_))) {
        return Err(Error::new(
            ErrorKind::Usage,
            "--queue",
            "keeps messages for SMTP: give --smtp URL too",
        )
        .into());
    }
    Ok(out)
}

// ------------------------------------------------------------- compose

fn default_from(account: &ResolvedAccount) -> Option<String> {
    if let Some(a) = &account.account.address {
        return Some(a.clone());
    }
    let user = std::env::var("LOGNAME")
        .or_else(|_| std::env::var("USER"))
        .ok()?;
    Some(format!("{user}@{}", host_name()))
}

fn host_name() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        "localhost".into()
    } else {
        host
    }
}

fn addresses(items: &[String]) -> anyhow::Result<Vec<Address>> {
    let mut out = Vec::new();
    for item in items {
        out.extend(compose::parse_address_list(item)?);
    }
    Ok(out)
}

fn read_text(path: &Path, what: &str) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::reading(path, e))?;
    String::from_utf8(bytes).map_err(|_| {
        Error::new(
            ErrorKind::BadInput,
            path.display().to_string(),
            format!("{what} is not UTF-8 text (attach it with -a instead)"),
        )
        .into()
    })
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io::stdin()
        .lock()
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(ErrorKind::InputMissing, "stdin", e))?;
    Ok(buf)
}

fn build_message(args: &Args, account: &ResolvedAccount) -> anyhow::Result<Composed> {
    let from = args.from.clone().or_else(|| default_from(account));
    if args.raw {
        return raw_message(args, from);
    }
    let stdin_attachments = args
        .attach
        .iter()
        .chain(&args.inline)
        .filter(|s| is_stdin_spec(s))
        .count();
    if stdin_attachments > 1 {
        return Err(Error::new(ErrorKind::Usage, "-a -", "stdin can be attached once only").into());
    }
    let text = match (&args.body, &args.body_text) {
        (Some(p), _) => read_text(p, "the body")?,
        (None, Some(t)) => t.clone(),
        (None, None) if io::stdin().is_terminal() || stdin_attachments > 0 => String::new(),
        (None, None) => String::from_utf8(read_stdin()?).map_err(|_| {
            Error::new(
                ErrorKind::BadInput,
                "stdin",
                "the body is not UTF-8 text (attach it with -a instead)",
            )
        })?,
    };
    let mut draft = Draft {
        from: from.as_deref().map(Address::parse).transpose()?,
        to: addresses(&args.recipients)?,
        cc: addresses(&args.cc)?,
        bcc: addresses(&args.bcc)?,
        reply_to: addresses(&args.reply_to)?,
        subject: args.subject.clone(),
        in_reply_to: args.in_reply_to.clone(),
        text,
        html: args
            .html
            .as_deref()
            .map(|p| read_text(p, "the HTML"))
            .transpose()?,
        ..Draft::default()
    };
    for h in &args.headers {
        draft.headers.push(compose::parse_user_header(h)?);
    }
    for spec in &args.inline {
        draft.inline.push(attachment(spec, true)?);
    }
    for spec in &args.attach {
        draft.attachments.push(attachment(spec, false)?);
    }
    let pins = Pins {
        date: args.date.clone(),
        message_id: args.message_id.clone(),
        boundary: args.boundary.clone(),
        host: host_name(),
    };
    Ok(compose::compose(&draft, &pins)?)
}

/// `-` or `-;type=...;name=...`: the attachment is stdin.
fn is_stdin_spec(spec: &OsStr) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let bytes = spec.as_bytes();
    bytes == b"-" || bytes.starts_with(b"-;")
}

/// An attachment from a spec: a file, or stdin for `-` (named
/// `attachment.EXT` after its type unless `;name=` says otherwise).
fn attachment(spec: &OsStr, inline: bool) -> anyhow::Result<Attachment> {
    if !is_stdin_spec(spec) {
        return Ok(Attachment::from_spec(spec, inline)?);
    }
    use std::os::unix::ffi::OsStrExt;
    let params = String::from_utf8_lossy(&spec.as_bytes()[1..]).into_owned();
    let data = read_stdin()?;
    let kind = compose::sniff_type(&data, "");
    let name = match mime_guess::get_mime_extensions_str(&kind).and_then(|e| e.first()) {
        Some(ext) => format!("attachment.{ext}"),
        None => "attachment".to_string(),
    };
    Ok(Attachment::from_data(data, &name, &params, inline, spec)?)
}

fn raw_message(args: &Args, from: Option<String>) -> anyhow::Result<Composed> {
    let original = read_stdin()?;
    let (header_from, header_rcpts) = if args.read_recipients {
        compose::envelope_from_headers(&original)?
    } else {
        (
            compose::envelope_from_headers(&original)
                .map(|(f, _)| f)
                .unwrap_or(None),
            Vec::new(),
        )
    };
    let mut to: Vec<String> = Vec::new();
    for a in addresses(&args.recipients)?
        .into_iter()
        .chain(addresses(&args.bcc)?)
        .chain(header_rcpts)
    {
        if !to.iter().any(|t| t.eq_ignore_ascii_case(&a.email)) {
            to.push(a.email);
        }
    }
    let sender = match (args.from.as_deref(), header_from) {
        (Some(f), _) => Address::parse(f)?.email,
        (None, Some(h)) => h.email,
        (None, None) => match from {
            Some(f) => Address::parse(&f)?.email,
            None => String::new(),
        },
    };
    let bytes = compose::strip_bcc(&original);
    Ok(Composed {
        message_id: compose::message_id_of(&bytes),
        bytes,
        envelope: Envelope { from: sender, to },
    })
}

// ---------------------------------------------------------------- mbox

/// The tag of a maildir name that says which message an mbox delivery
/// was: `S` and the first 32 hex digits of the sha256 of its bytes.
const MBOX_TAG: &str = "S";

/// `--raw --mbox FILE --maildir DIR`: every message of the mbox into
/// DIR/new, read one at a time. A message whose bytes an earlier
/// delivery from an mbox already put there (in new/ or cur/) is left
/// out, so a re-run (or an export that overlaps the last one) adds only
/// what is new. A message that cannot be delivered is reported, and the
/// rest go on (exit 1).
fn deliver_mbox(args: &Args, path: &Path) -> anyhow::Result<Exit> {
    use sha2::{Digest, Sha256};
    let dir = args.maildir.as_deref().unwrap_or(Path::new("."));
    let format = mailbot::mbox::Format::from_name(&args.mbox_format).unwrap_or_default();
    let input: Box<dyn io::BufRead> = if path.as_os_str() == "-" {
        Box::new(io::BufReader::with_capacity(1 << 20, io::stdin()))
    } else {
        let file = std::fs::File::open(path).map_err(|e| Error::reading(path, e))?;
        Box::new(io::BufReader::with_capacity(1 << 20, file))
    };
    // Each message is written as given (already LF) and hashed as
    // written, so the name says what the file holds.
    let maildir = Maildir::create(dir)?.with_line_ends(mailbot::maildir::LineEnds::Crlf);
    let mut present = std::collections::HashSet::new();
    for entry in maildir.list()? {
        if let Some(tag) = mailbot::maildir::tag_of(&entry.unique, MBOX_TAG) {
            present.insert(tag.to_string());
        }
    }
    let mut out = cli::PathOutput::stdout(false);
    let mut exit = Exit::Ok;
    let (mut delivered, mut skipped) = (0usize, 0usize);
    let name = path.display().to_string();
    for message in mailbot::mbox::Reader::new(input, format) {
        let message = message.map_err(|e| Error::reading(path, e))?;
        let object = format!(
            "{name}: message {} (byte {})",
            message.number, message.offset
        );
        if message.bytes.iter().all(|b| b.is_ascii_whitespace()) {
            let e = Error::new(ErrorKind::BadInput, object, "not a message (it is empty)");
            cli::report(PROGRAM, &e.into());
            exit = exit.worse(Exit::Partial);
            continue;
        }
        let bytes = mailbot::maildir::crlf_to_lf(&message.bytes);
        let hash = hex::encode(Sha256::digest(&bytes));
        let tag = format!("{MBOX_TAG}{}", &hash[..32]);
        if !present.insert(tag.clone()) {
            skipped += 1;
            if args.json {
                out.line(&json!({"mbox": name, "message": message.number, "offset": message.offset, "status": "present"}).to_string())?;
            }
            continue;
        }
        match maildir.deliver_tagged(&bytes, &tag) {
            Ok(file) => {
                delivered += 1;
                if args.json {
                    out.line(&json!({"mbox": name, "message": message.number, "offset": message.offset, "status": "delivered", "path": file}).to_string())?;
                } else {
                    out.path(&file)?;
                }
            }
            Err(e) => {
                let e = anyhow::Error::from(e).context(object);
                cli::report(PROGRAM, &e);
                let code = if mailbot::exit::exit_for(e.as_ref()) == Exit::CantCreate {
                    Exit::CantCreate
                } else {
                    Exit::Partial
                };
                exit = exit.worse(code);
            }
        }
    }
    out.flush()?;
    if args.log.verbose > 0 {
        eprintln!("{PROGRAM}: {name}: {delivered} delivered, {skipped} already there");
    }
    Ok(exit)
}

// -------------------------------------------------------------- inject

fn tls_config(account: &ResolvedAccount) -> anyhow::Result<std::sync::Arc<rustls::ClientConfig>> {
    Ok(tls::client_config(&account.tls_options())?)
}

fn smtp_sender(args: &Args, account: &ResolvedAccount, url: SmtpUrl) -> anyhow::Result<Sender> {
    let auth = account.credentials(&url.endpoint(account.default_user()), &url.display())?;
    let tls = tls_config(account)?;
    let settings = Settings {
        tls,
        allow_plaintext_auth: account.allow_plaintext_auth,
        helo: host_name(),
        auth,
        timeout: seconds(args.timeout),
    };
    let retry = Retry {
        retries: args.retries,
        wait: seconds(args.retry_wait),
    };
    Ok(Sender::new(url, settings, retry))
}

fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::from_secs(60))
}

fn inject(
    args: &Args,
    account: &ResolvedAccount,
    targets: &[Target],
    message: &Composed,
) -> anyhow::Result<Exit> {
    if message.envelope.to.is_empty() && targets.iter().any(Target::needs_envelope) {
        return Err(Error::new(
            ErrorKind::Usage,
            "recipients",
            "none given: name at least one RCPT (or -c, -b; with --raw, -t)",
        )
        .into());
    }
    if message.envelope.from.is_empty() && targets.iter().any(Target::needs_envelope) {
        return Err(Error::new(ErrorKind::Usage, "sender", "none known: give -r ADDRESS").into());
    }
    let mut out = cli::PathOutput::stdout(false);
    let mut results = Vec::new();
    let mut exit = Exit::Ok;
    for target in targets {
        let name = target.name();
        let outcome: anyhow::Result<serde_json::Value> = match target {
            Target::Output(p) if p.as_os_str() == "-" => {
                let mut stdout = io::stdout().lock();
                stdout
                    .write_all(&message.bytes)
                    .and_then(|()| stdout.flush())
                    .map_err(|e| Error::io(ErrorKind::CannotCreate, "stdout", e))?;
                Ok(json!({"target": "stdout", "status": "written"}))
            }
            Target::Output(p) => queue::write_atomically(p, &message.bytes)
                .map(|()| json!({"target": name, "status": "written", "path": p}))
                .map_err(Into::into),
            Target::Maildir(dir) => Maildir::create(dir)
                .and_then(|md| md.deliver(&message.bytes))
                .map_err(anyhow::Error::from)
                .and_then(|path| {
                    out.path(&path).and_then(|()| out.flush())?;
                    Ok(json!({"target": name, "status": "delivered", "path": path}))
                }),
            Target::Smtp(url) => send_smtp(args, account, url.clone(), message),
            Target::Sendmail(path) => sendmail::pipe(path, &message.envelope, &message.bytes)
                .map_err(anyhow::Error::from)
                .map(|()| json!({"target": name, "status": "sent"})),
            Target::Imap(url, folder) => append_imap(args, account, url, folder, message)
                .map(|()| json!({"target": name, "status": "appended"})),
        };
        match outcome {
            Ok(value) => {
                if args.log.verbose > 0 {
                    let status = value["status"].as_str().unwrap_or("done");
                    let reply = value["reply"]
                        .as_str()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default();
                    eprintln!("{PROGRAM}: {name}: {status}{reply}");
                }
                results.push(value);
            }
            Err(err) if args.sendmail_compat && err.downcast_ref::<Queued>().is_some() => {
                // sendmail's promise is delivery, now or later: kept in the
                // outbox, the message is accepted (0), told only with -v.
                if args.log.verbose > 0 {
                    cli::report(PROGRAM, &err);
                }
            }
            Err(err) => {
                if mailbot::exit::is_broken_pipe(err.as_ref()) {
                    return Err(err);
                }
                let code = exit_of(&err);
                cli::report(PROGRAM, &err);
                exit = exit.worse(code);
                let queued = err
                    .downcast_ref::<Queued>()
                    .map(|q| q.path.display().to_string());
                results.push(json!({
                    "target": name,
                    "status": if queued.is_some() { "queued" } else { "failed" },
                    "exit": code.code(),
                    "error": format!("{err:#}"),
                    "path": queued,
                }));
            }
        }
    }
    if args.json {
        out.line(&json!({"message_id": message.message_id, "targets": results}).to_string())?;
        out.flush()?;
    }
    Ok(exit)
}

/// A temporary SMTP failure after which the message went into the outbox.
#[derive(Debug)]
struct Queued {
    path: PathBuf,
    cause: Error,
}

impl std::fmt::Display for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}; queued as {}",
            chain(&self.cause),
            self.path.display()
        )
    }
}

// The cause is part of the text, so it is not also a `source()`.
impl std::error::Error for Queued {}

/// The exit status an error means; a queued message keeps its cause's.
fn exit_of(err: &anyhow::Error) -> Exit {
    match err.downcast_ref::<Queued>() {
        Some(q) => q.cause.exit(),
        None => mailbot::exit::exit_for(err.as_ref()),
    }
}

fn send_smtp(
    args: &Args,
    account: &ResolvedAccount,
    url: SmtpUrl,
    message: &Composed,
) -> anyhow::Result<serde_json::Value> {
    let name = url.display();
    let mut sender = smtp_sender(args, account, url)?;
    match sender.send(&message.envelope, &message.bytes) {
        Ok(reply) => {
            sender.finish();
            Ok(json!({"target": name, "status": "sent", "reply": reply.to_string()}))
        }
        Err(e) if e.is_temporary() && args.queue.is_some() => {
            let dir = args.queue.as_deref().unwrap_or(Path::new("."));
            let path = Outbox::create(dir)?.enqueue(&message.bytes, &message.envelope)?;
            // Displayed as the cause plus where it was kept; the exit code
            // stays the cause's (75).
            Err(anyhow::Error::new(Queued { path, cause: e }))
        }
        Err(e) => Err(e.into()),
    }
}

fn append_imap(
    args: &Args,
    account: &ResolvedAccount,
    url: &ImapUrl,
    folder: &str,
    message: &Composed,
) -> anyhow::Result<()> {
    let auth = account
        .credentials(&url.endpoint(account.default_user()), &url.display())?
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Config,
                url.display(),
                "IMAP needs a user: put it in the URL or give --user",
            )
        })?;
    let mut session = imap::Session::connect(
        url,
        &tls_config(account)?,
        &auth,
        seconds(args.timeout),
        account.allow_plaintext_auth,
    )?;
    session.append(folder, &message.bytes)?;
    session.logout();
    Ok(())
}

// --------------------------------------------------------------- flush

fn flush(args: &Args, account: &ResolvedAccount) -> anyhow::Result<Exit> {
    let dir = args.queue.as_deref().unwrap_or(Path::new("."));
    let Some(url) = &account.account.smtp else {
        return Err(Error::new(
            ErrorKind::Usage,
            "--flush",
            "needs --smtp URL (or an account with smtp)",
        )
        .into());
    };
    let url = SmtpUrl::parse(url)?;
    let outbox = Outbox::create(dir)?;
    // Connects only when there is something to send.
    let mut sender: Option<Sender> = None;
    let report = outbox.flush(|envelope, bytes| {
        if sender.is_none() {
            sender = Some(
                smtp_sender(args, account, url.clone())
                    .map_err(|e| Error::new(ErrorKind::Config, url.display(), format!("{e:#}")))?,
            );
        }
        match &mut sender {
            Some(s) => s.send(envelope, bytes).map(|reply| reply.to_string()),
            None => unreachable!(),
        }
    })?;
    if let Some(s) = sender {
        s.finish();
    }
    if args.log.verbose > 0 {
        for (path, reply) in &report.sent {
            eprintln!("{PROGRAM}: {}: sent ({reply})", path.display());
        }
    }
    for (path, e) in &report.failed {
        eprintln!("{PROGRAM}: {}: {}", path.display(), chain(e));
    }
    if report.remaining > 0 {
        eprintln!(
            "{PROGRAM}: {}: {} sent, {} still queued",
            dir.display(),
            report.sent.len(),
            report.remaining
        );
    }
    Ok(report.exit())
}

// --------------------------------------------------------------- batch

/// The `--help` text of `--batch`: its first lines, then every key.
fn batch_help() -> String {
    format!(
        "Send one message per JSON line over one SMTP session ('-': stdin).\n\n\
         Each line is an object with these keys (only a recipient is needed; an \
         unknown key is an error, so a typo drops nothing):\n{}\n\
         e.g. {{\"to\":\"ann@example.org\",\"subject\":\"Grades\",\"attachments\":[\"ann.pdf\"]}}",
        batch::BATCH_KEYS
    )
}

/// One message of a batch to compose: its line (or row) number and its
/// draft, or why there is none.
type BatchItem = (usize, anyhow::Result<compose::Draft>);

fn batch_text(path: &Path) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        Ok(String::from_utf8_lossy(&read_stdin()?).into_owned())
    } else {
        read_text(path, "the batch")
    }
}

fn jsonl_items(
    args: &Args,
    account: &ResolvedAccount,
    path: &Path,
) -> anyhow::Result<Vec<BatchItem>> {
    let default_from = args.from.clone().or_else(|| default_from(account));
    Ok(batch_text(path)?
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            (
                index + 1,
                batch::draft_from_line(line, default_from.as_deref()).map_err(Into::into),
            )
        })
        .collect())
}

fn csv_items(
    args: &Args,
    account: &ResolvedAccount,
    path: &Path,
) -> anyhow::Result<Vec<BatchItem>> {
    let mut rows = batch::parse_csv(&batch_text(path)?)
        .map_err(|e| Error::new(e.kind(), path.display().to_string(), chain(&e)))?
        .into_iter();
    let Some((_, header)) = rows.next() else {
        return Ok(Vec::new());
    };
    let header: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    if !header
        .iter()
        .any(|h| matches!(h.as_str(), "to" | "cc" | "bcc"))
    {
        return Err(Error::new(
            ErrorKind::BadInput,
            format!("{}:1", path.display()),
            "the header row names no to, cc or bcc column",
        )
        .into());
    }
    let body = match (&args.body, &args.body_text) {
        (Some(p), _) => read_text(p, "the body")?,
        (None, Some(t)) => t.clone(),
        (None, None) => String::new(),
    };
    let mut attachments = Vec::new();
    for spec in &args.attach {
        attachments.push(attachment(spec, false)?);
    }
    let defaults = batch::RowDefaults {
        from: args.from.clone().or_else(|| default_from(account)),
        subject: args.subject.clone(),
        body,
        attachments,
    };
    Ok(rows
        .map(|(line, row)| {
            (
                line,
                batch::draft_from_row(&header, &row, &defaults).map_err(Into::into),
            )
        })
        .collect())
}

fn run_batch(
    args: &Args,
    account: &ResolvedAccount,
    path: &Path,
    items: Vec<BatchItem>,
) -> anyhow::Result<Exit> {
    let Some(url) = &account.account.smtp else {
        return Err(Error::new(
            ErrorKind::Usage,
            if args.batch_csv.is_some() {
                "--batch-csv"
            } else {
                "--batch"
            },
            "needs --smtp URL (or an account with smtp)",
        )
        .into());
    };
    let url = SmtpUrl::parse(url)?;
    let mut sender = smtp_sender(args, account, url)?;
    let outbox = args.queue.as_deref().map(Outbox::create).transpose()?;
    let mut out = cli::PathOutput::stdout(false);
    let (mut total, mut sent) = (0usize, 0usize);
    let mut codes: Vec<Exit> = Vec::new();
    // After a failure that every later message would meet too (bad
    // credentials, TLS), the rest are not tried.
    let mut fatal: Option<(ErrorKind, String)> = None;
    let pins = Pins {
        host: host_name(),
        ..Pins::default()
    };
    for (number, draft) in items {
        total += 1;
        let object = format!("{}:{number}", path.display());
        let mut message_id = None;
        let outcome: anyhow::Result<()> = match &fatal {
            Some((kind, why)) => Err(anyhow::anyhow!(Error::new(
                *kind,
                "",
                format!("not tried: {why}")
            ))),
            None => draft
                .and_then(|d| Ok(compose::compose(&d, &pins)?))
                .and_then(|m| {
                    message_id = m.message_id.clone();
                    match sender.send(&m.envelope, &m.bytes) {
                        Ok(_) => Ok(()),
                        Err(e) if e.is_temporary() && outbox.is_some() => {
                            let path = outbox
                                .as_ref()
                                .map(|o| o.enqueue(&m.bytes, &m.envelope))
                                .transpose()?
                                .unwrap_or_default();
                            Err(anyhow::Error::new(Queued { path, cause: e }))
                        }
                        Err(e) => {
                            if batch::fails_the_rest(e.kind()) {
                                fatal = Some((e.kind(), chain(&e)));
                            }
                            Err(e.into())
                        }
                    }
                }),
        };
        let result = match outcome {
            Ok(()) => {
                sent += 1;
                json!({"line": number, "status": "sent", "message_id": message_id})
            }
            Err(err) => {
                let code = exit_of(&err);
                codes.push(code);
                let queued = err
                    .downcast_ref::<Queued>()
                    .map(|q| q.path.display().to_string());
                if !args.json {
                    eprintln!("{PROGRAM}: {object}: {err:#}");
                }
                json!({
                    "line": number,
                    "status": if queued.is_some() { "queued" } else { "failed" },
                    "exit": code.code(),
                    "error": format!("{err:#}"),
                    "message_id": message_id,
                    "path": queued,
                })
            }
        };
        if args.json {
            out.line(&result.to_string())?;
            out.flush()?;
        }
    }
    sender.finish();
    if args.log.verbose > 0 {
        eprintln!("{PROGRAM}: {}: {sent} of {total} sent", path.display());
    }
    Ok(batch::overall_exit(sent, &codes))
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
    fn a_bare_sendmail_never_takes_a_recipient_for_its_path() {
        let args = Args::try_parse_from(["mail-inject", "--sendmail", "b@x.test"]).unwrap();
        assert_eq!(args.sendmail, Some(PathBuf::from("/usr/sbin/sendmail")));
        assert_eq!(args.recipients, ["b@x.test"]);
        let args = Args::try_parse_from(["mail-inject", "--sendmail=/bin/sm", "b@x.test"]).unwrap();
        assert_eq!(args.sendmail, Some(PathBuf::from("/bin/sm")));
    }
}
