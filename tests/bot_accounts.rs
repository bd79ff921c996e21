//! mail-bot on real-looking accounts (issue 11): two users on a rig of
//! this test's own (INBOX, Sent and Junk with their special use, old
//! mail), every account in one run, the right folders, from now on, the
//! `new` tag, replies that cannot loop, a dry run that changes nothing,
//! and a selftest that fails fast when IMAP is down. One rig, the
//! scenarios in turn.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};
use support::own_rig::OwnRig;
use support::{Rig, describe};

const BOT: &str = env!("CARGO_BIN_EXE_mail-bot");
const INJECT: &str = env!("CARGO_BIN_EXE_mail-inject");

fn token(what: &str) -> String {
    format!("{what}-{}", mailbot::compose::random_token(10))
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `[account.NAME]` for rig user `which`, its maildir in `home`.
fn account(rig: &Rig, name: &str, which: usize, home: &Path, extra: &str) -> String {
    format!(
        "[account.{name}]\naddress = \"{address}\"\n\
         smtp = \"smtp://{user}@{host}:{submission}\"\n\
         imap = \"imaps://{user}@{host}:{imaps}\"\n\
         password = \"{password}\"\nca_file = \"{ca}\"\nmaildir = \"{maildir}\"\n{extra}\n",
        address = rig.address(which),
        user = rig.users[which].0,
        password = rig.users[which].1,
        host = rig.host,
        submission = rig.submission_port,
        imaps = rig.imaps_port,
        ca = rig.ca.display(),
        maildir = home.join(name).display(),
    )
}

struct Bot {
    home: tempfile::TempDir,
    config: PathBuf,
}

impl Bot {
    fn new(text: &str) -> Bot {
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join("config.toml");
        let bot = Bot { home, config };
        bot.write(text);
        bot
    }

    fn write(&self, text: &str) {
        fs::write(&self.config, text).unwrap();
        fs::set_permissions(&self.config, fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn path(&self) -> &Path {
        self.home.path()
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BOT);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("MAILBOT_") {
                cmd.env_remove(&name);
            }
        }
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--home")
            .arg(self.path())
            .args(args)
            .env("HOME", self.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

/// Sends a message with a small PDF from rig user `from` to `to` through
/// submission (or appends it to `folder` over IMAP), and waits until the
/// server has it.
fn mail(rig: &Rig, from: usize, to: usize, subject: &str, folder: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("hw3.pdf");
    fs::write(&pdf, mailbot::bot::selftest::small_pdf(subject)).unwrap();
    let mut cmd = Command::new(INJECT);
    cmd.env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .env("MAILBOT_PASSWORD", &rig.users[from].1)
        .args(["-r", &rig.address(from), "-s", subject])
        .args(["--body-text", "see the PDF", "-a"])
        .arg(&pdf)
        .arg("--ca-file")
        .arg(&rig.ca);
    match folder {
        Some(f) => cmd
            .arg("--imap")
            .arg(format!(
                "imaps://{}@{}:{}",
                rig.users[from].0, rig.host, rig.imaps_port
            ))
            .args(["--folder", f]),
        None => cmd.arg("--smtp").arg(format!(
            "smtp://{}@{}:{}",
            rig.users[from].0, rig.host, rig.submission_port
        )),
    };
    let out = cmd.arg(rig.address(to)).output().unwrap();
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let (who, where_) = match folder {
        Some(f) => (from, Some(f)),
        None => (to, None),
    };
    support::wait_for(30, || {
        (server_count(rig, who, where_, subject) > 0).then_some(())
    })
    .unwrap_or_else(|| panic!("{subject} never reached the server"));
}

/// Server messages holding `needle` in user `who`'s `folder` (INBOX when
/// `None`).
fn server_count(rig: &Rig, who: usize, folder: Option<&str>, needle: &str) -> usize {
    let root = match folder {
        None => rig.maildirs[who].clone(),
        Some(f) => rig.maildirs[who].join(format!(".{f}")),
    };
    ["new", "cur"]
        .iter()
        .flat_map(|sub| fs::read_dir(root.join(sub)).into_iter().flatten().flatten())
        .filter(|e| {
            fs::read(e.path())
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .count()
}

/// sha256 of every file under `root`, by path.
fn tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = fs::read(&p) {
                out.insert(p, hex::encode(Sha256::digest(&b)));
            }
        }
    }
    out
}

#[test]
fn mail_bot_on_real_accounts() {
    if Rig::from_env().is_none() {
        return;
    }
    let own = OwnRig::start("bot-accounts.");
    let rig = own.rig();
    // Old mail, some of it in the folders a student has.
    mail(&rig, 0, 0, "old homework", None);
    mail(&rig, 0, 1, "my own hw3", Some("Sent"));
    mail(&rig, 1, 1, "cheap pills", Some("Junk"));
    from_now_on_every_account_and_the_new_tag(&rig);
    the_right_folders(&rig);
    replies_cannot_loop(&rig);
    dry_run_changes_nothing(&rig);
    the_readme_course_exercise_on_each_message(&rig);
    selftest_and_probe_fail_fast_when_imap_is_down(&rig);
    a_first_run_that_cannot_sync_records_no_baseline(&rig);
    a_match_of_star_takes_every_message(&rig);
}

/// Item 3: a first run whose sync fails (server down, a wrong password)
/// records no baseline of the empty local maildir; the first run that
/// syncs records the old mail, so none of it is ever acted on.
fn a_first_run_that_cannot_sync_records_no_baseline(rig: &Rig) {
    let bot = Bot::new("");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let good = account(rig, "alice", 0, bot.path(), "");
    let imaps = format!("{}:{}", rig.host, rig.imaps_port);
    let down = good.replace(&imaps, &format!("{}:{port}", rig.host));
    let wrong = good.replace(&rig.users[0].1, "wrong-password");
    for (config, want) in [(&down, 75), (&wrong, 77)] {
        bot.write(&format!("{config}{PRINT_PDFS}"));
        let out = bot.run(&["run"]);
        assert_eq!(code(&out), want, "{}", describe(&out));
        assert_eq!(stdout(&out), "", "{}", describe(&out));
    }
    bot.write(&format!("{good}{PRINT_PDFS}"));
    let out = bot.run(&["run"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(stdout(&out), "", "old mail acted on: {}", describe(&out));
    assert!(
        stderr(&out).contains("existing messages recorded"),
        "{}",
        describe(&out)
    );
    let out = bot.run(&["run"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(
        (stdout(&out).as_str(), stderr(&out).as_str()),
        ("", ""),
        "said once, nothing old acted on: {}",
        describe(&out)
    );
}

/// Item 7: `match = "*"` is notmuch's query for every message; it must
/// not be turned into one that matches none: it acts on what a query
/// for every message written otherwise acts on.
fn a_match_of_star_takes_every_message(rig: &Rig) {
    let acted = |query: &str| {
        let bot = Bot::new("");
        let log = bot.path().join("log");
        bot.write(&format!(
            "{}[[rule]]\nname = \"all\"\nmatch = \"{query}\"\n\
             run = \"sh -c 'echo $MAILBOT_FOLDER >> {log}'\"\n",
            account(
                rig,
                "bob",
                1,
                bot.path(),
                "since = \"2000-01-01\"\nfolders = [\"INBOX\"]"
            ),
            log = log.display()
        ));
        let out = bot.run(&["run"]);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        fs::read_to_string(&log).unwrap_or_default().lines().count()
    };
    let all = acted("not tag:never-given-zz");
    assert!(all > 0);
    assert_eq!(acted("*"), all);
}

/// The README's three-line course exercise, run as written (only the
/// address is the rig's), three times: each time it prints the command
/// for the PDF just sent, not an older one.
fn the_readme_course_exercise_on_each_message(rig: &Rig) {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let at = readme.find("The course exercise, in three lines").unwrap();
    let block = &readme[at..];
    let block = &block[block.find("```sh\n").unwrap() + 6..];
    let lines: Vec<&str> = block[..block.find("```").unwrap()].lines().collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join(".config/mailbot/config.toml");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    fs::write(
        &config,
        account(rig, "school", 0, &home.path().join("Mail"), ""),
    )
    .unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
    let bin = Path::new(INJECT).parent().unwrap().to_path_buf();
    let sh = |line: &str| {
        let line = line.replace("student@example.edu", &rig.address(0));
        let mut cmd = Command::new("/bin/sh");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("MAILBOT_") {
                cmd.env_remove(&name);
            }
        }
        cmd.args(["-c", &line])
            .current_dir(home.path())
            .env("HOME", home.path())
            .env_remove("XDG_CONFIG_HOME")
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // The mailbox as the student found it, synced once.
    let out = sh("mail-sync --account school");
    assert_eq!(code(&out), 0, "{}", describe(&out));
    for n in 1..=3 {
        let seed = token(&format!("exercise-{n}"));
        let pdf = mailbot::bot::selftest::small_pdf(&seed);
        fs::write(home.path().join("report.pdf"), &pdf).unwrap();
        // The PDF travels base64-encoded: count the messages instead.
        let before = server_count(rig, 0, None, "Subject: report");
        let out = sh(lines[0]);
        assert_eq!(code(&out), 0, "{n}: {}", describe(&out));
        support::wait_for(30, || {
            (server_count(rig, 0, None, "Subject: report") > before).then_some(())
        })
        .unwrap_or_else(|| panic!("{seed} never arrived"));
        for line in &lines[1..] {
            let out = sh(line);
            assert_eq!(code(&out), 0, "{n}: {line}: {}", describe(&out));
            if line.starts_with("mail-dissect") {
                let printed: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
                assert_eq!(printed.len(), 1, "{n}: {printed:?}");
                let file = printed[0].strip_prefix("lpr ").unwrap().trim_matches('\'');
                let got = fs::read(home.path().join(file)).unwrap();
                assert_eq!(got, pdf, "{n}: the command is for another PDF");
            }
        }
    }
}

const PRINT_PDFS: &str = "[[rule]]\nname = \"pdfs\"\nattachment = \"pdf\"\n\
    dissect = { out = \"~/pdfs\" }\nprint = \"lpr {}\"\n";

/// Items 1, 3, 4 and 8: one run covers both accounts; the first run acts
/// on no old mail and says so; new mail is acted on, its PDF printed
/// (not body.txt) and its `new` tag removed; a failing account is named
/// and the other goes on.
fn from_now_on_every_account_and_the_new_tag(rig: &Rig) {
    let bot = Bot::new("");
    let accounts = |bob_extra: &str| {
        format!(
            "{}{}{PRINT_PDFS}",
            account(rig, "alice", 0, bot.path(), ""),
            account(rig, "bob", 1, bot.path(), bob_extra)
        )
    };
    bot.write(&accounts(""));
    let out = bot.run(&["run"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(stdout(&out), "", "nothing old acted on: {}", describe(&out));
    let err = stderr(&out);
    for name in ["alice", "bob"] {
        assert!(
            err.contains(&format!("{name}: ")) && err.contains("existing messages recorded"),
            "{err}"
        );
    }
    // New mail for both: both are acted on, in one run.
    let (a, b) = (token("for-alice"), token("for-bob"));
    mail(rig, 1, 0, &a, None);
    mail(rig, 0, 1, &b, None);
    let out = bot.run(&["run"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(stderr(&out), "", "silent: {}", describe(&out));
    let printed: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    assert_eq!(printed.len(), 2, "{printed:?}");
    for line in &printed {
        assert!(
            line.starts_with("lpr ") && line.ends_with("hw3.pdf"),
            "{line}"
        );
    }
    // tag:new means "not handled yet": nothing is left with it.
    for name in ["alice", "bob"] {
        let out = Command::new(env!("CARGO_BIN_EXE_mail-index"))
            .arg("--maildir")
            .arg(bot.path().join(name))
            .args(["count", "tag:new"])
            .output()
            .unwrap();
        assert_eq!(stdout(&out).trim(), "0", "{name}: {}", describe(&out));
    }
    // --backfill acts on the old mail on purpose.
    let out = bot.run(&["--account", "alice", "run", "--backfill"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(stdout(&out).contains("lpr "), "{}", describe(&out));
    // bob's password goes wrong: he is named, alice goes on (exit 1).
    bot.write(&accounts("").replace(&rig.users[1].1, "wrong"));
    let c = token("still-alice");
    mail(rig, 1, 0, &c, None);
    let out = bot.run(&["run"]);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(stderr(&out).contains("bob: "), "{}", describe(&out));
    assert_eq!(stdout(&out).lines().count(), 1, "{}", describe(&out));
}

/// Item 2: rules act on INBOX by default; Sent and Junk (special use) are
/// synced but acted on only by a rule that names them; `folders` says
/// what is synced.
fn the_right_folders(rig: &Rig) {
    let bot = Bot::new("");
    let log = bot.path().join("log");
    bot.write(&format!(
        "{}\
         [[rule]]\nname = \"default\"\nattachment = \"application/pdf\"\n\
         run = \"sh -c 'echo default $MAILBOT_FOLDER >> {log}'\"\n\
         [[rule]]\nname = \"everywhere\"\nattachment = \"application/pdf\"\nfolder = \"*\"\n\
         run = \"sh -c 'echo everywhere $MAILBOT_FOLDER >> {log}'\"\n\
         [[rule]]\nname = \"sent\"\nattachment = \"application/pdf\"\nfolder = [\"Sent\"]\n\
         run = \"sh -c 'echo sent $MAILBOT_FOLDER >> {log}'\"\n",
        account(rig, "alice", 0, bot.path(), "since = \"2000-01-01\""),
        log = log.display()
    ));
    let out = bot.run(&["run"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let mut got: Vec<String> = fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    got.sort();
    got.dedup();
    assert!(got.contains(&"sent Sent".to_string()), "{got:?}");
    assert!(
        got.iter()
            .all(|l| l == "sent Sent" || l.ends_with(" INBOX")),
        "only INBOX, and Sent by name: {got:?}"
    );
    assert!(
        bot.path().join("alice/Sent/cur").is_dir() || bot.path().join("alice/Sent/new").is_dir()
    );
    // `folders` narrows what is synced.
    let bob = Bot::new("");
    bob.write(&format!(
        "{}{PRINT_PDFS}",
        account(rig, "bob", 1, bob.path(), "folders = [\"INBOX\"]")
    ));
    let out = bob.run(&["run"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(bob.path().join("bob/INBOX").is_dir());
    assert!(!bob.path().join("bob/Junk").exists(), "Junk was synced");
}

/// Item 6: two accounts with reply rules pointed at each other exchange
/// exactly one reply each; replies are automatic, with an empty envelope
/// sender.
fn replies_cannot_loop(rig: &Rig) {
    let bot = Bot::new("");
    let rule = "[[rule]]\nname = \"ack\"\nsubject = \"*ping*\"\nreply = { body = \"Got it.\" }\n";
    bot.write(&format!(
        "{}{}{rule}",
        account(rig, "alice", 0, bot.path(), ""),
        account(rig, "bob", 1, bot.path(), ""),
    ));
    assert_eq!(code(&bot.run(&["run"])), 0);
    let t = token("ping");
    mail(rig, 0, 1, &format!("{t} a2b"), None);
    mail(rig, 1, 0, &format!("{t} b2a"), None);
    // Each answers the other's message once, and leaves the other's reply
    // (which its rule matches too) unanswered: accounts run in turn, so a
    // reply may be seen in the same run or the next.
    let mut acted: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    let replies = |who: usize| server_count(rig, who, None, &format!("Re: {t}"));
    for round in 0..2 {
        let out = bot.run(&["run", "--json"]);
        assert_eq!(code(&out), 0, "round {round}: {}", describe(&out));
        for line in stdout(&out).lines() {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            let name = r["account"].as_str().unwrap().to_string();
            acted
                .entry(name)
                .or_default()
                .extend(r["acted"].as_array().unwrap().iter().cloned());
        }
        if round == 0 {
            support::wait_for(30, || (replies(0) == 1 && replies(1) == 1).then_some(()))
                .unwrap_or_else(|| panic!("replies: {} {}", replies(0), replies(1)));
        }
    }
    for (name, entries) in &acted {
        assert_eq!(entries.len(), 2, "{name}: {entries:?}");
        let skipped: Vec<&serde_json::Value> = entries
            .iter()
            .filter(|e| !e["skipped"].as_array().unwrap().is_empty())
            .collect();
        assert_eq!(skipped.len(), 1, "{name}: {entries:?}");
        let note = skipped[0]["skipped"][0].as_str().unwrap();
        assert!(note.contains("automatic"), "{note}");
    }
    assert_eq!((replies(0), replies(1)), (1, 1), "one reply each");
    for who in [0, 1] {
        for sub in ["new", "cur"] {
            for e in fs::read_dir(rig.maildirs[who].join(sub))
                .into_iter()
                .flatten()
                .flatten()
            {
                let text = String::from_utf8_lossy(&fs::read(e.path()).unwrap()).into_owned();
                if text.contains(&format!("Re: {t}")) {
                    assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
                    assert!(text.contains("Return-Path: <>"), "{text}");
                    assert!(text.contains("In-Reply-To: <"), "{text}");
                }
            }
        }
    }
}

/// Item 9: --dry-run fetches nothing, pushes no flag, writes no journal
/// line, no file, no tag — and says what each rule would do.
fn dry_run_changes_nothing(rig: &Rig) {
    let bot = Bot::new("");
    bot.write(&format!(
        "{}{PRINT_PDFS}",
        account(rig, "alice", 0, bot.path(), "")
    ));
    assert_eq!(code(&bot.run(&["run"])), 0);
    // One new message on the server, one new local file.
    let t = token("dry");
    mail(rig, 1, 0, &t, None);
    let local = bot.path().join("alice/INBOX");
    let delivered = Command::new(INJECT)
        .env("HOME", bot.path())
        .args(["-r", "x@example.org", "-s", "local dry", "-a"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dissect/invoice.pdf"))
        .args(["--body-text", "x", "--maildir"])
        .arg(&local)
        .arg("me@example.org")
        .output()
        .unwrap();
    assert_eq!(code(&delivered), 0, "{}", describe(&delivered));
    let before = (tree(bot.path()), tree(&rig.maildirs[0]));
    let out = bot.run(&["run", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        stdout(&out).contains("would dissect, print"),
        "{}",
        describe(&out)
    );
    let json = bot.run(&["run", "--dry-run", "--json"]);
    assert_eq!(code(&json), 0, "{}", describe(&json));
    let report: serde_json::Value =
        serde_json::from_str(stdout(&json).lines().next().unwrap()).unwrap();
    assert_eq!(report["acted"][0]["dry_run"], true, "{report}");
    assert_eq!(report["fetched"], 0, "{report}");
    let after = (tree(bot.path()), tree(&rig.maildirs[0]));
    assert_eq!(before, after, "a dry run changed something");
}

/// Item 10: with IMAP down and SMTP up, selftest fails at once with
/// IMAP's code and sends nothing; probe is CRITICAL with the cause; a
/// bad probe argument is UNKNOWN.
fn selftest_and_probe_fail_fast_when_imap_is_down(rig: &Rig) {
    let bot = Bot::new("");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let good = format!("{}:{}", rig.host, rig.imaps_port);
    bot.write(
        &account(rig, "alice", 0, bot.path(), "").replace(&good, &format!("{}:{port}", rig.host)),
    );
    let probes = server_count(rig, 0, None, "X-Mailbot-Selftest:");
    let started = std::time::Instant::now();
    let out = bot.run(&["selftest", "--timeout", "60"]);
    assert_eq!(code(&out), 75, "{}", describe(&out));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "did not fail at once"
    );
    let out = bot.run(&["probe", "--timeout", "60"]);
    assert_eq!(code(&out), 2, "{}", describe(&out));
    assert!(
        stdout(&out).starts_with("MAILBOT CRITICAL - "),
        "{}",
        describe(&out)
    );
    assert!(stdout(&out).contains("connect"), "{}", describe(&out));
    assert_eq!(
        server_count(rig, 0, None, "X-Mailbot-Selftest:"),
        probes,
        "a probe message was sent with IMAP down"
    );
    let out = bot.run(&["probe", "--warning", "abc"]);
    assert_eq!(code(&out), 3, "{}", describe(&out));
    assert!(
        stdout(&out).starts_with("MAILBOT UNKNOWN - "),
        "{}",
        describe(&out)
    );
}
