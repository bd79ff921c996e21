//! mail-bot against real servers: Postfix submission (STARTTLS + AUTH)
//! and Dovecot IMAPS of a rig of its own, so no other test's mail is in
//! the mailbox. One rig, the scenarios in turn, each with its own local
//! maildir and subjects.

mod support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use support::own_rig::OwnRig;
use support::{Rig, Submitted, describe};

const BOT: &str = env!("CARGO_BIN_EXE_mail-bot");
const INJECT: &str = env!("CARGO_BIN_EXE_mail-inject");

fn json(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn token(what: &str) -> String {
    format!("{what}-{}", mailbot::compose::random_token(10))
}

/// A local home with a configuration for alice on the rig; `rules` is
/// appended to it.
struct Bot {
    home: tempfile::TempDir,
    config: PathBuf,
}

impl Bot {
    fn new(rig: &Rig, rules: &str) -> Bot {
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join("config.toml");
        fs::write(
            &config,
            format!(
                r#"[account.rig]
address = "{address}"
smtp = "smtp://{user}@{host}:{submission}"
imap = "imaps://{user}@{host}:{imaps}"
password = "{password}"
ca_file = "{ca}"
maildir = "{maildir}"
# These scenarios act on what is in the mailbox already, too.
since = "2000-01-01"
{rules}"#,
                address = rig.address(0),
                user = rig.users[0].0,
                password = rig.users[0].1,
                host = rig.host,
                submission = rig.submission_port,
                imaps = rig.imaps_port,
                ca = rig.ca.display(),
                maildir = home.path().join("maildir").display(),
            ),
        )
        .unwrap();
        fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
        Bot { home, config }
    }

    fn path(&self) -> &Path {
        self.home.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BOT);
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--home")
            .arg(self.path())
            .args(args)
            .env("HOME", self.path())
            .env_remove("MAILBOT_PASSWORD")
            .env_remove("MAILBOT_ACCOUNT")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }
}

/// Sends a small message from alice to alice through submission and
/// waits until Dovecot has it.
fn send(rig: &Rig, subject: &str) {
    let message = format!(
        "From: <{a}>\r\nTo: <{a}>\r\nSubject: {subject}\r\nMessage-ID: <{id}@test.invalid>\r\n\r\nHello {subject}\r\n",
        a = rig.address(0),
        id = mailbot::compose::random_token(16)
    );
    let sent = support::submit(
        rig,
        rig.tls_trusting_rig(),
        &rig.users[0].0,
        &rig.users[0].1,
        &rig.address(0),
        &rig.address(0),
        message.as_bytes(),
    )
    .unwrap();
    assert_eq!(sent, Submitted::Accepted);
    wait_on_server(rig, subject);
}

fn wait_on_server(rig: &Rig, needle: &str) {
    support::wait_for(30, || (server_count(rig, "", needle) > 0).then_some(()))
        .unwrap_or_else(|| panic!("{needle} never reached the server's INBOX"));
}

/// Messages holding `needle` in a server folder ("" is INBOX).
fn server_count(rig: &Rig, folder: &str, needle: &str) -> usize {
    let root = if folder.is_empty() {
        rig.maildirs[0].clone()
    } else {
        rig.maildirs[0].join(format!(".{folder}"))
    };
    let mut n = 0;
    for sub in ["new", "cur"] {
        for e in fs::read_dir(root.join(sub)).into_iter().flatten().flatten() {
            if fs::read(e.path())
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            {
                n += 1;
            }
        }
    }
    n
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_loop_through_postfix_and_dovecot() {
    if Rig::from_env().is_none() {
        return;
    }
    let own = OwnRig::start("bot-rig.");
    let rig = own.rig();
    selftest_round_trips_a_pdf_by_polling_and_by_idle(&rig);
    cron_runs_act_on_each_message_once_and_retry_failures(&rig);
    a_second_run_started_while_one_works_exits_75(&rig);
    the_sent_copy_and_the_received_copy_are_two_messages(&rig);
    watch_acts_on_new_mail_within_seconds(&rig);
    moving_every_message_out_of_inbox_fetches_none_again(&rig);
    wrong_password_is_77_and_an_unknown_ca_is_76(&rig);
}

/// Local files of a maildir folder.
fn local_files(folder: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["new", "cur"]
        .iter()
        .flat_map(|sub| {
            fs::read_dir(folder.join(sub))
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// A rule moves every INBOX message into a local Archive: the next run's
/// sync must not take the empty INBOX for one emptied by hand and fetch
/// everything again, and nothing is expunged on the server.
fn moving_every_message_out_of_inbox_fetches_none_again(rig: &Rig) {
    let tag = token("move-all");
    send(rig, &tag);
    let bot = Bot::new(rig, "[[rule]]\nfolder = \"INBOX\"\nmove = \"Archive\"\n");
    let on_server = local_files(&rig.maildirs[0]).len();
    // The selftests' own messages: rules never act on those.
    let probes = server_count(rig, "", "X-Mailbot-Selftest:");
    let out = bot.run(&["run", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let maildir = bot.path().join("maildir");
    let archived = local_files(&maildir.join("Archive"));
    let kept = local_files(&maildir.join("INBOX"));
    assert_eq!(kept.len(), probes, "only the probes stay: {kept:?}");
    assert_eq!(
        archived.len(),
        on_server - probes,
        "every other INBOX message archived"
    );
    for f in &archived {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(
            !name.contains(",U="),
            "{name}: a moved file keeps no UID of the folder it left"
        );
    }
    for round in 0..2 {
        let out = bot.run(&["run", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        assert_eq!(
            local_files(&maildir.join("INBOX")),
            kept,
            "run {round}: INBOX fetched again"
        );
        assert_eq!(local_files(&maildir.join("Archive")), archived);
        let report = &json(&out)[0];
        assert_eq!(report["acted"].as_array().unwrap().len(), 0, "{report}");
    }
    assert_eq!(
        server_count(rig, "", &tag),
        1,
        "the server keeps the message"
    );

    // The same under `watch`, where the watcher holds the sync lock while
    // the rules run: each new message is moved, and the next one's sync
    // (which finds INBOX empty again) fetches only that one.
    let mut child = bot
        .command(&["watch"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let inbox = maildir.join("INBOX");
    let archive = maildir.join("Archive");
    for n in 1..=2 {
        // Mail may come at any moment: during the first pass, between a
        // pass and IDLE, or in IDLE. The watcher must handle each.
        send(rig, &format!("{tag}-watch-{n}"));
        let settled = support::wait_for(30, || {
            (local_files(&archive).len() == archived.len() + n).then_some(())
        });
        if settled.is_none() {
            let _ = child.kill();
            panic!(
                "watch: message {n} never archived: {}",
                describe(&child.wait_with_output().unwrap())
            );
        }
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        local_files(&inbox),
        kept,
        "watch fetched INBOX again: {}",
        describe(&out)
    );
    assert_eq!(local_files(&archive).len(), archived.len() + 2);
}

fn selftest_round_trips_a_pdf_by_polling_and_by_idle(rig: &Rig) {
    let bot = Bot::new(rig, "");
    for wait in ["poll", "idle"] {
        let out = bot.run(&["selftest", "--wait", wait, "--timeout", "60", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{wait}: {}", describe(&out));
        let r = &json(&out)[0];
        assert_eq!(
            (r["ok"].as_bool(), r["route"].as_str()),
            (Some(true), Some("smtp+imap"))
        );
        assert_eq!(r["wait"], wait);
        let received = PathBuf::from(r["received"].as_str().unwrap());
        let bytes = fs::read(&received).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            r["sent_sha256"].as_str().unwrap()
        );
        // The local file is the server's message, fetched by mail-sync's code.
        let message = PathBuf::from(r["message"].as_str().unwrap());
        assert!(
            message.starts_with(bot.path().join("maildir/INBOX")),
            "{message:?}"
        );
        let id = r["message_id"].as_str().unwrap();
        assert_eq!(server_count(rig, "", id), 1, "one copy on the server");
        eprintln!("selftest --wait {wait}: {} ms", r["latency_ms"]);
    }
    // The probes are not mail for the rules: the default PDF rule skips them.
    let out = bot.run(&["run", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = &json(&out)[0];
    assert_eq!(report["acted"].as_array().unwrap().len(), 0, "{report}");
}

fn cron_runs_act_on_each_message_once_and_retry_failures(rig: &Rig) {
    let tag = token("cron");
    let bot_home = tempfile::tempdir().unwrap();
    let log = bot_home.path().join("log");
    let fail_once = bot_home.path().join("fail-once");
    fs::write(&fail_once, "").unwrap();
    let bot = Bot::new(
        rig,
        &format!(
            r#"
[[rule]]
name = "log"
subject = "*{tag}*"
run = "sh -c 'if [ -e {f} ]; then rm {f}; exit 9; fi; echo \"$MAILBOT_SHA256 $MAILBOT_SUBJECT\" >> {log}'"
"#,
            f = fail_once.display(),
            log = log.display()
        ),
    );
    send(rig, &format!("{tag} one"));
    // Run 1: the command fails; the message is not marked done.
    let out = bot.run(&["run"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("will retry"),
        "{}",
        describe(&out)
    );
    assert!(lines(&log).is_empty());
    // Run 2: retried and done.
    let out = bot.run(&["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(lines(&log).len(), 1);
    // New mail between runs.
    send(rig, &format!("{tag} two"));
    let out = bot.run(&["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    send(rig, &format!("{tag} three"));
    let out = bot.run(&["run", "-v"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = bot.run(&["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let got = lines(&log);
    let subjects: Vec<&str> = got.iter().map(|l| l.split_once(' ').unwrap().1).collect();
    assert_eq!(
        subjects,
        [
            format!("{tag} one"),
            format!("{tag} two"),
            format!("{tag} three")
        ],
        "each message once, in arrival order"
    );
}

fn a_second_run_started_while_one_works_exits_75(rig: &Rig) {
    let tag = token("overlap");
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    let release = dir.path().join("release");
    let bot = Bot::new(
        rig,
        &format!(
            r#"
[[rule]]
subject = "*{tag}*"
run = "sh -c 'touch {s}; while [ ! -e {r} ]; do sleep 0.05; done'"
"#,
            s = started.display(),
            r = release.display()
        ),
    );
    send(rig, &tag);
    let first = bot
        .command(&["run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    support::wait_for(60, || started.exists().then_some(())).expect("the first run never acted");
    let second = bot.run(&["run"]);
    assert_eq!(second.status.code(), Some(75), "{}", describe(&second));
    assert!(
        second.stderr.is_empty() && second.stdout.is_empty(),
        "quietly: {}",
        describe(&second)
    );
    fs::write(&release, "").unwrap();
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", describe(&first));
}

fn the_sent_copy_and_the_received_copy_are_two_messages(rig: &Rig) {
    let tag = token("sent-copy");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let bot = Bot::new(
        rig,
        &format!(
            r#"
[[rule]]
name = "received"
folder = "INBOX"
subject = "*{tag}*"
run = "sh -c 'echo \"received $MAILBOT_FOLDER $MAILBOT_MESSAGE_ID\" >> {log}'"

[[rule]]
name = "sent"
folder = "Sent"
subject = "*{tag}*"
run = "sh -c 'echo \"sent $MAILBOT_FOLDER $MAILBOT_MESSAGE_ID\" >> {log}'"
"#,
            log = log.display()
        ),
    );
    // One message, submitted and appended to Sent: the same Message-ID,
    // different bytes (the received copy has Received: lines).
    let out = Command::new(INJECT)
        .env("MAILBOT_PASSWORD", &rig.users[0].1)
        .env("HOME", dir.path())
        .args([
            "-r",
            &rig.address(0),
            "-s",
            &tag,
            "--body-text",
            "to myself",
            "--ca-file",
        ])
        .arg(&rig.ca)
        .arg("--smtp")
        .arg(format!(
            "smtp://{}@{}:{}",
            rig.users[0].0, rig.host, rig.submission_port
        ))
        .arg("--imap")
        .arg(format!(
            "imaps://{}@{}:{}",
            rig.users[0].0, rig.host, rig.imaps_port
        ))
        .args(["--folder", "Sent", &rig.address(0)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    wait_on_server(rig, &tag);
    assert_eq!(server_count(rig, "Sent", &tag), 1);
    let out = bot.run(&["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let mut got = lines(&log);
    got.sort();
    assert_eq!(got.len(), 2, "{got:?}");
    let ids: Vec<&str> = got.iter().map(|l| l.rsplit(' ').next().unwrap()).collect();
    assert_eq!(ids[0], ids[1], "the two copies share the Message-ID");
    assert!(
        got[0].starts_with("received INBOX ") && got[1].starts_with("sent Sent "),
        "{got:?}"
    );
    let out = bot.run(&["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(lines(&log).len(), 2, "nothing twice");
}

fn watch_acts_on_new_mail_within_seconds(rig: &Rig) {
    let tag = token("watch");
    let bot = Bot::new(
        rig,
        &format!("\n[[rule]]\nsubject = \"*{tag}*\"\nprint = \"seen {{}}\"\n"),
    );
    let mut child = bot
        .command(&["watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), line));
        }
    });
    // The first pass is over once the journal is written; then IDLE.
    // (Mail that came between the two would be fetched all the same.)
    let journal = bot.path().join("maildir/.mailbot/bot.jsonl");
    support::wait_for(60, || journal.exists().then_some(())).expect("watch never started");
    send(rig, &tag);
    let arrived = Instant::now();
    // Only IDLE wakes the watcher of a server account (it renews IDLE every
    // 28 minutes and never polls), so any answer within a minute is IDLE's
    // doing; the delay itself is a figure for scripts/bench, not an
    // assertion that a loaded machine could fail.
    let got = rx.recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let (when, line) = got.unwrap_or_else(|_| panic!("watch printed nothing: {}", describe(&out)));
    assert!(line.starts_with("seen "), "{line}");
    let path = PathBuf::from(line.trim_start_matches("seen ").trim_matches('\''));
    assert!(fs::read_to_string(&path).unwrap().contains(&tag));
    let delay = when.saturating_duration_since(arrived);
    eprintln!(
        "watch acted {} ms after the server had the message",
        delay.as_millis()
    );
}

fn wrong_password_is_77_and_an_unknown_ca_is_76(rig: &Rig) {
    let bot = Bot::new(rig, "");
    let text = fs::read_to_string(&bot.config).unwrap();
    fs::write(&bot.config, text.replace(&rig.users[0].1, "wrong-password")).unwrap();
    let out = bot.run(&["run"]);
    assert_eq!(out.status.code(), Some(77), "{}", describe(&out));
    let out = bot.run(&["probe", "--timeout", "10"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("MAILBOT CRITICAL - "),
        "{}",
        describe(&out)
    );
    let bot = Bot::new(rig, "");
    let text = fs::read_to_string(&bot.config).unwrap();
    let without_ca: String = text
        .lines()
        .filter(|l| !l.starts_with("ca_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&bot.config, without_ca).unwrap();
    let out = bot.run(&["run"]);
    assert_eq!(out.status.code(), Some(76), "{}", describe(&out));
}
