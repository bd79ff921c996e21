//! mail-bot on the embedded default (a local maildir and notmuch database,
//! no server): the real binaries in a temporary home, notmuch's own CLI
//! to check the index.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};

const BOT: &str = env!("CARGO_BIN_EXE_mail-bot");
const INJECT: &str = env!("CARGO_BIN_EXE_mail-inject");

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    /// A home mail-bot has run on once already: its first run records the
    /// mail already there without acting on it, so the mail these tests
    /// deliver afterwards is new mail.
    fn new() -> Home {
        let home = Home::fresh();
        let out = home.bot(&["run"], None);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        home
    }

    /// A home mail-bot has never run on.
    fn fresh() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn maildir(&self) -> PathBuf {
        self.path().join("maildir")
    }

    /// Runs mail-bot with this home and no configuration unless `config`.
    fn bot(&self, args: &[&str], config: Option<&Path>) -> Output {
        let mut cmd = Command::new(BOT);
        cmd.arg("--home").arg(self.path());
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd.args(args)
            .current_dir(self.path())
            .env("HOME", self.path())
            .env("XDG_CONFIG_HOME", self.path().join("no-config"))
            .env_remove("MAILBOT_CONFIG")
            .env_remove("MAILBOT_ACCOUNT")
            .env_remove("MAILBOT_HOME")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Delivers a message with a PDF (made from `seed`) into INBOX with
    /// mail-inject, as a local delivery would; returns the file and the
    /// PDF's bytes.
    fn deliver_pdf(&self, seed: &str, subject: &str) -> (PathBuf, Vec<u8>) {
        let pdf = mailbot::bot::selftest::small_pdf(seed);
        let file = self.path().join(format!("{seed}.pdf"));
        fs::write(&file, &pdf).unwrap();
        let out = Command::new(INJECT)
            .args([
                "-r",
                "ann@example.org",
                "-s",
                subject,
                "--body-text",
                "see attached",
                "-a",
            ])
            .arg(&file)
            .arg("--maildir")
            .arg(self.maildir().join("INBOX"))
            .arg("me@example.org")
            .env("HOME", self.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        (path, pdf)
    }

    fn notmuch(&self, args: &[&str]) -> String {
        let config = self.path().join("notmuch-config");
        fs::write(
            &config,
            format!("[database]\npath={}\n", self.maildir().display()),
        )
        .unwrap();
        let out = Command::new("notmuch")
            .args(args)
            .env("NOTMUCH_CONFIG", &config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "notmuch {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn config(&self, text: &str) -> PathBuf {
        let path = self.path().join("config.toml");
        fs::write(&path, text).unwrap();
        path
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn selftest_round_trips_the_pdf_and_a_second_run_acts_on_nothing() {
    let home = Home::new();
    let out = home.bot(&["selftest", "--json"], None);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let report = &json_lines(&out)[0];
    assert_eq!(report["ok"], true);
    assert_eq!(report["route"], "maildir");
    let received = PathBuf::from(report["received"].as_str().unwrap());
    assert!(
        received.starts_with(home.path().join("dissected")),
        "{received:?}"
    );
    let bytes = fs::read(&received).unwrap();
    assert_eq!(sha256(&bytes), report["sent_sha256"].as_str().unwrap());
    assert!(bytes.starts_with(b"%PDF-"));
    assert_eq!(
        report["print_command"].as_str().unwrap(),
        format!(
            "lpr {}",
            mailbot::shell::quote(&received.display().to_string())
        )
    );
    // The message is where a local delivery puts it, and notmuch's own
    // CLI finds it in the index mail-bot wrote.
    let message = PathBuf::from(report["message"].as_str().unwrap());
    assert!(
        message.starts_with(home.maildir().join("INBOX")),
        "{message:?}"
    );
    assert_eq!(home.notmuch(&["count", "--output=files", "*"]).trim(), "1");
    let id = report["message_id"]
        .as_str()
        .unwrap()
        .trim_matches(['<', '>']);
    assert_eq!(home.notmuch(&["count", &format!("id:{id}")]).trim(), "1");

    let out = home.bot(&["run", "--json"], None);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let summary = &json_lines(&out)[0];
    assert_eq!(summary["acted"].as_array().unwrap().len(), 0, "{summary}");
    assert_eq!(summary["examined"], 0);
}

#[test]
fn human_selftest_shows_every_step() {
    let home = Home::new();
    let out = home.bot(&["selftest"], None);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = stdout(&out);
    for step in [
        "composed <",
        "delivered into the local maildir",
        "indexed in",
        "equal to the original",
        "print with: lpr ",
        "ok: the file came back byte for byte",
    ] {
        assert!(text.contains(step), "missing {step:?} in:\n{text}");
    }
}

#[test]
fn run_acts_once_per_content_across_renames_copies_and_moves() {
    let home = Home::new();
    let (path, pdf) = home.deliver_pdf("first", "Invoice 1");
    let out = home.bot(&["run"], None);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    // The default rule: the PDF dissected, its print command on stdout.
    let lines: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 1, "{}", show(&out));
    let printed = lines[0].strip_prefix("lpr ").unwrap();
    let written = PathBuf::from(printed.trim_matches('\''));
    assert_eq!(fs::read(&written).unwrap(), pdf);
    assert!(out.stderr.is_empty(), "silent on success: {}", show(&out));

    // A flag rename (new/ → cur/ with :2,S) is the same message.
    let cur = path
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("cur")
        .join(format!(
            "{}:2,S",
            path.file_name().unwrap().to_string_lossy()
        ));
    fs::rename(&path, &cur).unwrap();
    let out = home.bot(&["run"], None);
    assert_eq!(
        (out.status.code(), stdout(&out)),
        (Some(0), String::new()),
        "{}",
        show(&out)
    );

    // The same bytes under another name in another folder: same message.
    let archive = home.maildir().join("Archive");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(archive.join(sub)).unwrap();
    }
    fs::copy(&cur, archive.join("cur/1700000000.copy.host:2,S")).unwrap();
    let out = home.bot(&["run"], None);
    assert_eq!(
        (out.status.code(), stdout(&out)),
        (Some(0), String::new()),
        "{}",
        show(&out)
    );

    // A copy sharing the Message-ID but not the bytes (a sent copy) is
    // another message and gets its own turn.
    let mut sent = fs::read(&cur).unwrap();
    sent.splice(0..0, b"X-Sent-Copy: yes\r\n".iter().copied());
    fs::write(
        home.maildir().join("INBOX/cur/1700000001.sent.host:2,S"),
        &sent,
    )
    .unwrap();
    let out = home.bot(&["run", "--json"], None);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let summary = &json_lines(&out)[0];
    let acted = summary["acted"].as_array().unwrap();
    assert_eq!(acted.len(), 1, "{summary}");
    assert_eq!(acted[0]["key"].as_str().unwrap(), sha256(&sent));

    // And nothing after that.
    let out = home.bot(&["run", "--json"], None);
    assert_eq!(json_lines(&out)[0]["acted"].as_array().unwrap().len(), 0);
}

#[test]
fn a_failing_command_is_retried_then_given_up_and_tagged_failed() {
    let home = Home::new();
    let marker = home.path().join("attempts");
    let config = home.config(&format!(
        r#"
[[rule]]
name = "flaky"
subject = "*report*"
run = "sh -c 'echo x >> {} && exit 3'"
retries = 2
"#,
        marker.display()
    ));
    home.deliver_pdf("r", "Weekly report");
    home.deliver_pdf("s", "Something else");
    let out = home.bot(&["run"], Some(&config));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rule \"flaky\"")
            && err.contains("exited with 3")
            && err.contains("will retry"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&marker).unwrap().lines().count(), 1);

    let out = home.bot(&["run"], Some(&config));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("given up: tagged failed"),
        "{}",
        show(&out)
    );
    assert_eq!(fs::read_to_string(&marker).unwrap().lines().count(), 2);
    assert_eq!(home.notmuch(&["count", "tag:failed"]).trim(), "1");

    let out = home.bot(&["run"], Some(&config));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        fs::read_to_string(&marker).unwrap().lines().count(),
        2,
        "never again"
    );
}

#[test]
fn a_command_that_fails_once_succeeds_on_the_next_run_and_sees_the_message() {
    let home = Home::new();
    let flag = home.path().join("fail-once");
    let seen = home.path().join("seen");
    fs::write(&flag, "").unwrap();
    let config = home.config(&format!(
        r#"
[[rule]]
name = "collect"
attachment = "application/pdf"
dissect = {{ out = "{out}", type = ["application/pdf"] }}
run = "sh -c 'if [ -e {flag} ]; then rm {flag}; exit 1; fi; printf \"%s|%s|%s\\n\" \"$MAILBOT_SUBJECT\" \"$1\" \"$MAILBOT_FOLDER\" >> {seen}' sh {{}}"
"#,
        out = home.path().join("pdfs").display(),
        flag = flag.display(),
        seen = seen.display()
    ));
    let (_, pdf) = home.deliver_pdf("c", "Scan from the copier");
    let out = home.bot(&["run"], Some(&config));
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(!seen.exists());
    let out = home.bot(&["run"], Some(&config));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let line = fs::read_to_string(&seen).unwrap();
    let fields: Vec<&str> = line.trim_end().split('|').collect();
    assert_eq!(fields[0], "Scan from the copier");
    assert_eq!(
        fs::read(fields[1]).unwrap(),
        pdf,
        "the command got the dissected PDF"
    );
    assert_eq!(fields[2], "INBOX");
    let out = home.bot(&["run"], Some(&config));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(fs::read_to_string(&seen).unwrap().lines().count(), 1);
}

#[test]
fn tag_and_move_actions_change_the_index_and_the_maildir() {
    let home = Home::new();
    let config = home.config(
        r#"
[[rule]]
name = "file-invoices"
match = "subject:invoice"
tag = ["+invoice", "-new"]
move = "Archive/Invoices"
"#,
    );
    let (path, _) = home.deliver_pdf("i", "Invoice 7");
    home.deliver_pdf("o", "Other");
    let out = home.bot(&["run", "--json"], Some(&config));
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let acted = json_lines(&out)[0]["acted"].as_array().unwrap().clone();
    assert_eq!(acted.len(), 1, "{acted:?}");
    let moved = PathBuf::from(acted[0]["path"].as_str().unwrap());
    assert!(!path.exists());
    assert!(
        moved.starts_with(home.maildir().join("Archive/Invoices")),
        "{moved:?}"
    );
    assert_eq!(
        fs::read(&moved).unwrap().len() as u64,
        fs::metadata(&moved).unwrap().len()
    );
    assert_eq!(home.notmuch(&["count", "tag:invoice"]).trim(), "1");
    assert_eq!(
        home.notmuch(&["count", "tag:invoice and tag:new"]).trim(),
        "0"
    );
    assert_eq!(
        home.notmuch(&["search", "--output=files", "tag:invoice"])
            .trim(),
        moved.display().to_string()
    );
    let out = home.bot(&["run", "--json"], Some(&config));
    assert_eq!(
        json_lines(&out)[0]["acted"].as_array().unwrap().len(),
        0,
        "{}",
        show(&out)
    );
}

#[test]
fn dry_run_says_what_it_would_do_and_changes_nothing() {
    let home = Home::new();
    home.deliver_pdf("d", "Dry");
    let out = home.bot(&["run", "--dry-run"], None);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        stdout(&out).starts_with("would dissect, print "),
        "{}",
        show(&out)
    );
    assert!(!home.path().join("dissected").exists());
    let out = home.bot(&["run"], None);
    assert!(stdout(&out).starts_with("lpr "), "{}", show(&out));
}

#[test]
fn an_overlapping_run_exits_75_quietly() {
    let home = Home::new();
    home.deliver_pdf("l", "Locked");
    let state = home.maildir().join(".mailbot");
    fs::create_dir_all(&state).unwrap();
    let held = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(state.join("bot.lock"))
        .unwrap();
    held.lock().unwrap();
    let out = home.bot(&["run"], None);
    assert_eq!(out.status.code(), Some(75), "{}", show(&out));
    assert!(
        out.stderr.is_empty() && out.stdout.is_empty(),
        "{}",
        show(&out)
    );
    drop(held);
    let out = home.bot(&["run"], None);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(stdout(&out).starts_with("lpr "));
}

#[test]
fn configuration_mistakes_are_78_and_name_the_rule() {
    let home = Home::new();
    let config = home.config("[[rule]]\nmatch = 'tag:new'\nprnt = true\n");
    let out = home.bot(&["run"], Some(&config));
    assert_eq!(out.status.code(), Some(78), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("mail-bot: ") && err.contains("rule 1: unknown key \"prnt\""),
        "{err}"
    );
    // Global flags may follow the subcommand too.
    let out = home.bot(&["run", "--config", config.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(78), "{}", show(&out));
    // A reply needs an account that can send.
    let config = home.config("[[rule]]\nreply = { body = 'thanks' }\n");
    let out = home.bot(&["run"], Some(&config));
    assert_eq!(out.status.code(), Some(78), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs the account"),
        "{}",
        show(&out)
    );
}

#[test]
fn probe_reports_ok_in_one_line_with_perfdata() {
    let home = Home::new();
    let out = home.bot(&["probe", "--warning", "30", "--critical", "60"], None);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let line = stdout(&out);
    assert_eq!(line.lines().count(), 1);
    assert!(
        line.starts_with("MAILBOT OK - mail came back in "),
        "{line}"
    );
    assert!(line.contains("| latency="), "{line}");
    // An impossible threshold turns the same round trip into WARNING.
    let out = home.bot(&["probe", "--warning", "0", "--critical", "60"], None);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(stdout(&out).starts_with("MAILBOT WARNING"));
    let bad = home.config("[[rule]]\nbogus = 1\n");
    let out = home.bot(&["probe"], Some(&bad));
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(stdout(&out).starts_with("MAILBOT UNKNOWN - "));
}

#[test]
fn watch_acts_on_a_local_delivery_while_it_runs() {
    let home = Home::new();
    let mut child = Command::new(BOT)
        .arg("--home")
        .arg(home.path())
        .args(["watch", "--interval", "0.2"])
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("no-config"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = line_reader(child.stdout.take().unwrap());
    let (_, pdf) = home.deliver_pdf("w", "Watched");
    // The print command is the last thing the watcher does for the
    // message: only once it is out is the watcher stopped (stopping it
    // when the PDF appeared raced the command line).
    let printed = lines.recv_timeout(std::time::Duration::from_secs(30)).ok();
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let printed = printed.unwrap_or_else(|| panic!("nothing printed: {}", show(&out)));
    let quoted = printed
        .strip_prefix("lpr ")
        .unwrap_or_else(|| panic!("not a print command: {printed:?}"));
    let found = PathBuf::from(quoted.trim_matches('\''));
    assert!(
        found.starts_with(home.path().join("dissected")),
        "{printed}"
    );
    assert_eq!(fs::read(&found).unwrap(), pdf, "{printed}");
}

/// The lines `stdout` gives, sent as they come from a thread of their own,
/// so a test can wait for one with a deadline.
fn line_reader(stdout: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// An account whose server nobody answers for (port 1): only the lock
/// and the local maildir decide what a run does.
fn far_account(home: &Home) -> PathBuf {
    let config = home.config(&format!(
        "[account.far]\naddress = \"me@example.org\"\nimap = \"imaps://me@127.0.0.1:1\"\npassword = \"x\"\nmaildir = \"{}\"\n",
        home.maildir().display()
    ));
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    config
}

/// Takes the maildir's sync lock, as a running watcher holds it.
fn hold_sync_lock(home: &Home) -> fs::File {
    let state = home.maildir().join(".mailbot");
    fs::create_dir_all(&state).unwrap();
    let held = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(state.join("lock"))
        .unwrap();
    held.lock().unwrap();
    held
}

#[test]
fn a_sync_held_by_a_watcher_is_75_without_a_word_and_local_mail_is_still_handled() {
    let home = Home::new();
    // An account whose server nobody answers for: only the lock decides.
    let config = far_account(&home);
    home.deliver_pdf("k", "Kept local");
    let held = hold_sync_lock(&home);
    let out = home.bot(&["run"], Some(&config));
    assert_eq!(out.status.code(), Some(75), "{}", show(&out));
    assert!(out.stderr.is_empty(), "quietly: {}", show(&out));
    assert!(
        stdout(&out).starts_with("lpr "),
        "local mail still handled: {}",
        show(&out)
    );
    drop(held);
    // Without the lock, an unreachable server is quiet too while the
    // outage is younger than alert_after (an hour by default)...
    let out = home.bot(&["run"], Some(&config));
    assert_eq!(out.status.code(), Some(75), "{}", show(&out));
    assert!(
        out.stderr.is_empty(),
        "a short outage is quiet: {}",
        show(&out)
    );
    // ...and worth a line on every run once it is older.
    let mut text = fs::read_to_string(&config).unwrap();
    text.push_str("alert_after = 0\n");
    fs::write(&config, text).unwrap();
    let out = home.bot(&["run"], Some(&config));
    assert_eq!(out.status.code(), Some(75), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("far: sync: "),
        "{}",
        show(&out)
    );
}

/// A first run whose sync is held by a watcher (which fills the maildir)
/// records the baseline from the local mail: a held sync is not a failed
/// one, which would leave the account without a baseline, and so acting
/// on nothing, for as long as the watcher runs.
#[test]
fn a_first_run_beside_a_watcher_records_the_baseline() {
    let home = Home::fresh();
    let config = far_account(&home);
    home.deliver_pdf("old", "Old mail");
    let held = hold_sync_lock(&home);
    let out = home.bot(&["run"], Some(&config));
    assert_eq!(out.status.code(), Some(75), "{}", show(&out));
    assert_eq!(stdout(&out), "", "old mail acted on: {}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 existing messages recorded"),
        "{}",
        show(&out)
    );
    home.deliver_pdf("new", "New mail");
    let out = home.bot(&["run"], Some(&config));
    assert_eq!(out.status.code(), Some(75), "{}", show(&out));
    assert_eq!(stdout(&out).lines().count(), 1, "{}", show(&out));
    assert!(stdout(&out).starts_with("lpr "), "{}", show(&out));
    drop(held);
}

#[test]
fn a_rule_command_may_use_notmuch_itself() {
    let home = Home::new();
    let nm_config = home.path().join("notmuch-config");
    fs::write(
        &nm_config,
        format!("[database]\npath={}\n", home.maildir().display()),
    )
    .unwrap();
    let config = home.config(&format!(
        "[[rule]]\nsubject = \"*tag me*\"\nrun = \"env NOTMUCH_CONFIG={} sh -c 'notmuch tag +touched -- tag:new' sh {{}}\"\n",
        nm_config.display()
    ));
    home.deliver_pdf("n", "Please tag me");
    // A bot that kept the database open for writing would leave notmuch
    // waiting for the lock for ever: give it a deadline instead.
    let mut child = Command::new(BOT)
        .arg("--home")
        .arg(home.path())
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("mail-bot run and notmuch tag waited on each other");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(home.notmuch(&["count", "tag:touched"]).trim(), "1");
}

/// Every subcommand's --help ends with examples and the exit codes it
/// uses (probe: the monitoring plugins' 0-3), and the examples that need
/// no server work as written on the embedded default.
#[test]
fn subcommand_help_has_examples_and_its_exit_codes() {
    let home = Home::new();
    for sub in ["run", "watch", "selftest", "probe"] {
        let out = home.bot(&[sub, "--help"], None);
        assert_eq!(out.status.code(), Some(0), "{sub} --help");
        let help = String::from_utf8(out.stdout).unwrap();
        let examples = help
            .split_once("Examples:\n")
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("{sub} --help has no examples:\n{help}"));
        assert!(
            examples.contains(&format!(" {sub}")),
            "{sub} --help: no example uses {sub}:\n{examples}"
        );
        let suite_table = help.contains("75  temporary");
        let probe_table = help.contains("2  CRITICAL");
        assert_eq!(
            (suite_table, probe_table),
            (sub != "probe", sub == "probe"),
            "{sub} --help: wrong exit table:\n{help}"
        );
    }
    for example in [
        &["run", "--dry-run", "-v"][..],
        &["run", "--no-sync", "--json"],
    ] {
        let out = home.bot(example, None);
        assert_eq!(
            out.status.code(),
            Some(0),
            "mail-bot {example:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The README's `sh`/plain block right after the paragraph that holds
/// `marker`.
fn readme_block(marker: &str) -> Vec<String> {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let at = readme
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not in README"));
    let rest = &readme[at..];
    let start = rest.find("```").unwrap();
    let body = &rest[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let end = body.find("```").unwrap();
    body[..end].lines().map(str::to_string).collect()
}

/// The README's crontab line runs as cron runs it: `env -i`, cron's
/// PATH, only HOME set — and is silent when all went well.
#[test]
fn the_readme_crontab_line_runs_under_crons_environment() {
    let lines = readme_block("From cron, every five minutes");
    let entry: Vec<&String> = lines.iter().filter(|l| l.starts_with("*/5 ")).collect();
    assert_eq!(entry.len(), 1, "{lines:?}");
    let command: String = entry[0]
        .split_whitespace()
        .skip(5)
        .collect::<Vec<_>>()
        .join(" ");
    let home = tempfile::tempdir().unwrap();
    let bin = home.path().join(".local/bin");
    fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(BOT, bin.join("mail-bot")).unwrap();
    for _ in 0..2 {
        let out = Command::new("env")
            .arg("-i")
            .arg(format!("HOME={}", home.path().display()))
            .args(["PATH=/usr/bin:/bin", "/bin/sh", "-c", &command])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{command}: {}", show(&out));
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "cron mails this: {}",
            show(&out)
        );
    }
    assert!(
        home.path()
            .join(".local/share/mailbot/maildir/.mailbot/bot.jsonl")
            .exists()
    );
}

/// examples/config.toml (a student's and a sysadmin's configuration)
/// loads, its rules check, and it is the example the README shows.
#[test]
fn the_example_configuration_loads_and_is_the_readmes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("examples/config.toml");
    let config = mailbot::config::Config::load(&path, true)
        .unwrap()
        .expect("the file is there");
    assert_eq!(config.account.keys().collect::<Vec<_>>(), ["ops", "school"]);
    let rules =
        mailbot::bot::rules::parse_rules(&config.rule, Some(Path::new("/home/u")), &path).unwrap();
    assert_eq!(rules.len(), 3);
    for r in &rules {
        let a = r.account.as_deref().unwrap();
        assert!(config.account.contains_key(a), "rule {}: {a}", r.name);
    }
    let school = &config.account["school"];
    assert_eq!(school.since.as_deref(), Some("2024-09-01"));
    assert_eq!(
        school.alert_after,
        Some(std::time::Duration::from_secs(7200))
    );
    assert_eq!(
        config.account["ops"].reply_interval,
        Some(std::time::Duration::from_secs(7 * 86_400))
    );
    let text = fs::read_to_string(&path).unwrap();
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains(&text),
        "the README's complete example is not examples/config.toml"
    );
}

/// The account's `line_ends` holds for what mail-bot itself delivers into
/// the local maildir (the selftest's message): LF by default, as every
/// other maildir writer, the CRLF of the composed message with `crlf`.
#[test]
fn the_selftest_delivers_with_the_accounts_line_ends() {
    for (line_ends, crlf) in [(None, false), (Some("crlf"), true), (Some("lf"), false)] {
        let home = Home::fresh();
        let config = home.path().join("config.toml");
        let mut text = format!(
            "[account.here]\naddress = \"me@localhost\"\nmaildir = \"{}\"\n",
            home.maildir().display()
        );
        if let Some(l) = line_ends {
            text.push_str(&format!("line_ends = \"{l}\"\n"));
        }
        fs::write(&config, text).unwrap();
        let out = home.bot(&["selftest", "--json"], Some(&config));
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let report = &json_lines(&out)[0];
        assert_eq!(report["route"], "maildir", "{report}");
        let message = fs::read(report["message"].as_str().unwrap()).unwrap();
        assert_eq!(
            message.windows(2).any(|w| w == b"\r\n"),
            crlf,
            "{line_ends:?}"
        );
        assert!(message.contains(&b'\n'));
    }
}
