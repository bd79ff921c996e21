//! Man pages from the binaries' clap definitions, with the sections a
//! Unix manual has and clap has no place for: EXAMPLES (verbatim, as
//! `--help` shows them, never reflowed or hyphenated), EXIT STATUS,
//! ENVIRONMENT (every variable the tool reads, taken from the flags' `env`
//! attributes), FILES and SEE ALSO; and `mailbot-config(5)`, the
//! configuration file's page.
//!
//! What clap knows (name, synopsis, description, options, subcommands)
//! is rendered by clap_mangen; this module adds the rest. It does not
//! install anything: `PROG --generate-man DIR` writes the pages into DIR
//! and scripts/install puts them in place.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use clap::Command;

/// The suite's tools, for SEE ALSO.
const SUITE: &[&str] = &[
    "mail-inject",
    "mail-sync",
    "mail-index",
    "mail-dissect",
    "mail-bot",
    "mail-migrate",
];

/// Writes `NAME.1` for the command and `NAME-SUB.1` for each subcommand
/// (not `help`), and `mailbot-config.5`, into `dir`. Returns the files.
pub fn write_pages(cmd: Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let top = cmd.get_name().to_string();
    let mut written = Vec::new();
    write_command(&cmd, &top, dir, &mut written)?;
    let config = dir.join("mailbot-config.5");
    std::fs::write(&config, config_page())?;
    written.push(config);
    Ok(written)
}

fn write_command(
    cmd: &Command,
    top: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_command(sub, top, dir, written)?;
    }
    let man = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    // No hyphenation and no justification anywhere: option names and
    // paths must read (and paste) as they are typed.
    page.extend_from_slice(b".nh\n.ad l\n");
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut page)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut page)?;
    }
    let name = man.get_filename();
    let name = name.trim_end_matches(".1");
    page.extend_from_slice(extra_sections(cmd, top, name).as_bytes());
    if cmd.get_version().is_some() {
        man.render_version_section(&mut page)?;
    }
    std::fs::write(&path, page)?;
    written.push(path);
    Ok(())
}

/// EXAMPLES, EXIT STATUS, ENVIRONMENT, FILES and SEE ALSO for `cmd`
/// (whose page is `name`; `top` is the binary).
fn extra_sections(cmd: &Command, top: &str, name: &str) -> String {
    let after = cmd
        .get_after_help()
        .map(|h| h.to_string())
        .unwrap_or_default();
    let (examples, status) = match after.find("\n\nExit status") {
        Some(at) => (&after[..at], &after[at + 2..]),
        None => (after.as_str(), ""),
    };
    let examples = examples.strip_prefix("Examples:\n").unwrap_or(examples);
    let mut out = String::new();
    if !examples.trim().is_empty() {
        out.push_str(".SH EXAMPLES\n.nf\n.RS 2\n");
        for line in examples.lines() {
            let _ = writeln!(out, "{}", escape(line.strip_prefix("  ").unwrap_or(line)));
        }
        out.push_str(".RE\n.fi\n");
    }
    let codes = exit_codes(status);
    if !codes.is_empty() {
        out.push_str(".SH \"EXIT STATUS\"\n");
        for (code, meaning) in codes {
            let _ = write!(out, ".TP\n.B {code}\n{}\n", escape(&meaning));
        }
    }
    let vars = environment(cmd);
    if !vars.is_empty() {
        out.push_str(".SH ENVIRONMENT\n");
        for (var, meaning) in vars {
            let _ = write!(out, ".TP\n.B {}\n{}\n", escape(&var), escape(&meaning));
        }
    }
    let files = files(cmd, top);
    if !files.is_empty() {
        out.push_str(".SH FILES\n");
        for (file, meaning) in files {
            let _ = write!(out, ".TP\n.I {}\n{}\n", escape(file), escape(meaning));
        }
    }
    out.push_str(".SH \"SEE ALSO\"\n");
    let _ = writeln!(out, "{}", escape(&see_also(top, name).join(", ")));
    out
}

/// `(code, meaning)` from the "Exit status:" table of `--help`; a line
/// that does not start with a code continues the meaning above it.
fn exit_codes(table: &str) -> Vec<(String, String)> {
    let mut codes: Vec<(String, String)> = Vec::new();
    for line in table.lines().skip(1) {
        let line = line.trim();
        let (first, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        if !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()) {
            codes.push((first.to_string(), rest.trim().to_string()));
        } else if let Some(last) = codes.last_mut()
            && !line.is_empty()
        {
            last.1.push(' ');
            last.1.push_str(line);
        }
    }
    codes
}

/// Every variable the command reads: each flag's `env`, the password
/// variable where accounts are resolved, and where the configuration and
/// the data folder are looked for.
fn environment(cmd: &Command) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for arg in cmd.get_arguments() {
        let Some(var) = arg.get_env() else { continue };
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let flag = arg
            .get_long()
            .map(|l| format!(" (as --{l})"))
            .unwrap_or_default();
        vars.push((
            var.to_string_lossy().into_owned(),
            format!("{}{flag}", help.trim_end_matches('.')),
        ));
    }
    let has = |id: &str| cmd.get_arguments().any(|a| a.get_id() == id);
    if has("password_command") {
        vars.push((
            "MAILBOT_PASSWORD".into(),
            "the password itself, for the account in use (after --password-command, before the \
             configuration file's)"
                .into(),
        ));
    }
    if has("from_password_command") {
        for (var, what) in [
            ("MAILBOT_MIGRATE_FROM_PASSWORD", "the source password"),
            ("MAILBOT_MIGRATE_TO_PASSWORD", "the destination password"),
            (
                "MAILBOT_MIGRATE_FROM_MASTER_PASSWORD",
                "the source administrator's password (--from-master)",
            ),
            (
                "MAILBOT_MIGRATE_TO_MASTER_PASSWORD",
                "the destination administrator's password (--to-master)",
            ),
        ] {
            vars.push((
                var.into(),
                format!("{what} itself, when no password command is given"),
            ));
        }
    }
    if has("state") {
        vars.push((
            "XDG_STATE_HOME, HOME".into(),
            "where the state folder is kept when --state is not given ($XDG_STATE_HOME/mailbot, \
             else ~/.local/state/mailbot)"
                .into(),
        ));
    }
    if has("config") {
        vars.push((
            "XDG_CONFIG_HOME, HOME".into(),
            "where the configuration file is looked for".into(),
        ));
        vars.push((
            "XDG_DATA_HOME".into(),
            "where default maildirs and mail-bot's home are kept ($XDG_DATA_HOME/mailbot, else \
             ~/.local/share/mailbot)"
                .into(),
        ));
    }
    vars.sort();
    vars.dedup_by(|a, b| a.0 == b.0);
    vars
}

/// The files a tool reads or writes, for its pages and its subcommands'.
fn files(cmd: &Command, top: &str) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    if cmd.get_arguments().any(|a| a.get_id() == "config") {
        out.push((
            "$XDG_CONFIG_HOME/mailbot/config.toml",
            "accounts and rules (see mailbot-config(5)); else ~/.config/mailbot/config.toml, or \
             --config FILE",
        ));
    }
    let own: &[(&str, &str)] = match top {
        "mail-inject" => &[
            (
                "QUEUE/new/, QUEUE/envelopes/UNIQUE.json",
                "the outbox (--queue): the exact messages kept after a temporary failure, each \
                 with its envelope; --flush sends them",
            ),
            (
                "$XDG_DATA_HOME/mailbot/outbox",
                "the outbox when invoked as sendmail and no --queue or MAILBOT_QUEUE is set",
            ),
        ],
        "mail-sync" => &[
            (
                "MAILDIR/.mailbot/sync/FOLDER.state",
                "per folder: UIDVALIDITY, HIGHESTMODSEQ, UIDNEXT and the flags last seen",
            ),
            (
                "MAILDIR/.mailbot/sync/unchanged.json",
                "per folder: the STATUS and directory times of the last run that found it in \
                 step; a folder still so is skipped",
            ),
            (
                "MAILDIR/.mailbot/lock",
                "held while a sync runs: a second one exits 75",
            ),
            ("MAILDIR/.notmuch", "the notmuch database --index adds to"),
        ],
        "mail-index" => &[(
            "MAILDIR/.notmuch",
            "the notmuch database, with MAILDIR as its mail root",
        )],
        "mail-dissect" => &[(
            "./dissected/SUBJECT-HASH/",
            "default output: a folder per message with its files, body.txt, body.html and \
             message.json",
        )],
        "mail-bot" => &[
            (
                "$XDG_DATA_HOME/mailbot",
                "the embedded default's home (--home): maildir, notmuch database, dissected files",
            ),
            (
                "MAILDIR/.mailbot/bot.jsonl",
                "the exactly-once journal: each message acted on, by sha256",
            ),
            (
                "MAILDIR/.mailbot/bot.lock",
                "held while a run works: a second one exits 75",
            ),
        ],
        "mail-migrate" => &[
            (
                "$XDG_STATE_HOME/mailbot/migrate/SOURCE/DESTINATION.json",
                "the state of each mailbox pair (--state DIR, else ~/.local/state/...): both \
                 sides' UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ and which source UID became which \
                 destination UID; a cache, rebuilt from the servers when lost",
            ),
            (
                "$XDG_STATE_HOME/mailbot/migrate/SOURCE/DESTINATION.json.lock",
                "held while a pair is moved: a second run on it exits 75",
            ),
            (
                "USERS.csv",
                "--users: source_user, destination_user and each side's password or password \
                 command; refused unless only its owner can read it",
            ),
        ],
        _ => &[],
    };
    out.extend_from_slice(own);
    out
}

/// The other pages to read: the binary's own page (for a subcommand),
/// the rest of the suite, the configuration page and the tools beside.
fn see_also(top: &str, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if name != top {
        out.push(format!("{top}(1)"));
    }
    out.extend(
        SUITE
            .iter()
            .filter(|t| **t != top)
            .map(|t| format!("{t}(1)")),
    );
    out.push("mailbot-config(5)".into());
    let beside: &[&str] = match top {
        "mail-inject" => &["sendmail(8)", "mailx(1)"],
        "mail-sync" => &["mbsync(1)", "offlineimap(1)"],
        "mail-index" => &["notmuch(1)", "notmuch-search-terms(7)"],
        "mail-dissect" => &["ripmime(1)", "munpack(1)"],
        "mail-bot" => &["crontab(5)", "systemd.timer(5)"],
        _ => &[],
    };
    out.extend(beside.iter().map(|s| s.to_string()));
    out
}

/// Text safe in roff: backslashes kept, `-` an ASCII hyphen-minus (so a
/// flag pasted from the page works), no line taken for a request.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    if text.starts_with('.') || text.starts_with('\'') {
        out.push_str("\\&");
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            _ => out.push(c),
        }
    }
    out
}

/// `mailbot-config(5)`, from a short markup: `# ` a section, `## ` a
/// subsection, four spaces a verbatim line, `- TERM: text` a tagged
/// paragraph, a blank line a new paragraph.
fn config_page() -> String {
    let mut out =
        String::from(".TH mailbot-config 5 \"\" \"mailbot\" \"File Formats\"\n.nh\n.ad l\n");
    let mut verbatim = false;
    for line in CONFIG_PAGE.lines() {
        if let Some(v) = line.strip_prefix("    ") {
            if !verbatim {
                out.push_str(".PP\n.nf\n.RS 4\n");
                verbatim = true;
            }
            out.push_str(&escape(v));
            out.push('\n');
            continue;
        }
        if verbatim {
            out.push_str(".RE\n.fi\n");
            verbatim = false;
        }
        if let Some(h) = line.strip_prefix("## ") {
            let _ = writeln!(out, ".SS \"{}\"", escape(h));
        } else if let Some(h) = line.strip_prefix("# ") {
            let _ = writeln!(out, ".SH \"{}\"", escape(h));
        } else if let Some(item) = line.strip_prefix("- ") {
            let (term, text) = item.split_once(": ").unwrap_or((item, ""));
            let _ = write!(out, ".TP\n.B {}\n{}\n", escape(term), escape(text));
        } else if line.is_empty() {
            out.push_str(".PP\n");
        } else {
            out.push_str(&escape(line));
            out.push('\n');
        }
    }
    if verbatim {
        out.push_str(".RE\n.fi\n");
    }
    out
}

const CONFIG_PAGE: &str = r#"# NAME
mailbot-config - the configuration file of the mailbot tools
# SYNOPSIS
$XDG_CONFIG_HOME/mailbot/config.toml (else ~/.config/mailbot/config.toml), or the file --config or MAILBOT_CONFIG names
# DESCRIPTION
An optional TOML file holding accounts, for the tools that talk to servers (mail-inject, mail-sync, mail-index, mail-bot), and rules, for mail-bot. One-shot use needs none: every setting also has a flag and a MAILBOT_* variable, and those override the file.
With one account it is used by default; with several, choose one with --account or MAILBOT_ACCOUNT. An unknown key is an error naming its line (exit 78).
# ACCOUNTS
One [account.NAME] table per account.
- address: the account's own mail address: the sender of what mail-inject and mail-bot send, and where mail-bot selftest sends its test file.
- user: the login name, when the URLs do not carry one.
- smtp: submission server: smtp://[USER@]HOST[:587] (STARTTLS required) or smtps://[USER@]HOST[:465].
- imap: mail store: imaps://[USER@]HOST[:993] or imap://[USER@]HOST[:143] (STARTTLS required).
- password_command: a command whose first output line is the password; run without a shell's help, with a timeout, its environment free of other secrets.
- password: the password itself. A file holding one is refused (exit 78) unless only its owner can read it (chmod 600).
- oauth2_token_command: a command printing an OAuth2 access token, for AUTH XOAUTH2.
- ca_file: a PEM file of CA certificates to trust for this account's servers.
- maildir: the local maildir (~ is the home folder); default $XDG_DATA_HOME/mailbot/NAME.
The password is taken, in order, from --password-command (MAILBOT_PASSWORD_COMMAND), MAILBOT_PASSWORD, then the account's password_command or password, and is sent only to that account's servers.
# RULES
[[rule]] tables, for mail-bot run and watch. A rule matches when every condition it gives holds; it then runs its actions in this order: dissect, print, run, reply, forward, tag, move. With no rules, one built-in rule applies: PDFs are dissected into HOME/dissected and lpr {} is printed for each.
## Conditions
- name: the rule's name, the exactly-once key (default rule-1, rule-2, ...).
- account: the account it applies to (default: every account).
- match: a notmuch query (notmuch-search-terms(7)), e.g. tag:new and attachment:pdf.
- from: a glob over the From addresses (or the whole field).
- to: a glob over To and Cc.
- subject: a glob over the decoded subject, case-insensitive.
- attachment: some part of this type; a list is fine, image/* too.
- folder: a glob over the folder (server name, / between levels).
## Actions
- dissect: { out = "~/pdfs", type = ["application/pdf"], flat = false }: write the message's files as mail-dissect would.
- print: "lpr -P office {}", or true with printer = "office": print one shell-quoted command per written file (or for the message file) on stdout.
- run: a command (argv, no shell) run once per written file, {} its path (added last when missing). Its environment holds MAILBOT_MESSAGE, MAILBOT_FILES, MAILBOT_FOLDER, MAILBOT_FROM, MAILBOT_TO, MAILBOT_SUBJECT, MAILBOT_MESSAGE_ID, MAILBOT_SHA256, MAILBOT_RULE and MAILBOT_ACCOUNT; a non-zero exit is a failure.
- reply: { body = "Received, thanks." }: a reply through the account's smtp.
- forward: { to = ["archive@example.edu"] }: a copy through the account's smtp.
- tag: ["+invoice", "-new"]: notmuch tags.
- move: "Archive": into another local folder.
- retries: failures before the message is tagged failed and given up (default 3).
# EXAMPLE
    [account.school]
    address = "student@example.edu"
    smtp = "smtp://student@smtp.example.edu:587"
    imap = "imaps://student@imap.example.edu"
    password_command = "pass show school"
    maildir = "~/Mail/school"

    [[rule]]
    account = "school"
    match = "tag:new and attachment:pdf"
    dissect = { out = "~/pdfs", type = ["application/pdf"] }
    print = "lpr -P office {}"
# FILES
- $XDG_CONFIG_HOME/mailbot/config.toml: this file.
- MAILDIR/.mailbot/bot.jsonl: mail-bot's journal of the messages each rule acted on.
# SEE ALSO
mail-inject(1), mail-sync(1), mail-index(1), mail-dissect(1), mail-bot(1), mail-migrate(1), notmuch-search-terms(7)
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_escapes_keep_flags_pasteable() {
        assert_eq!(
            escape("mail-bot run --dry-run"),
            "mail\\-bot run \\-\\-dry\\-run"
        );
        assert_eq!(escape(".notmuch"), "\\&.notmuch");
        assert_eq!(escape("a\\b"), "a\\eb");
    }

    #[test]
    fn exit_tables_become_code_meaning_pairs() {
        let table = "Exit status:\n    0  done\n   75  temporary: retry\n       later\n";
        assert_eq!(
            exit_codes(table),
            [
                ("0".to_string(), "done".to_string()),
                ("75".to_string(), "temporary: retry later".to_string())
            ]
        );
    }
}
