//! What makes mailbot safe to point at a real mailbox (issue 10): a
//! secret goes only to the account it belongs to and never into a child's
//! environment or onto stderr; TLS trusts the system's store and `--ca-file`
//! adds to it; everything created is private whatever the umask; every
//! wait has a time limit; and the small things a hostile tester tries
//! (`NO_COLOR`, `--config <(...)`, empty variables).
//!
//! Server tests run against the shared rig (`scripts/mailserver`), local
//! ones in temporary folders. The fakes for what no real server does on
//! demand (a server without STARTTLS) are in `inject_fake.rs`.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{Rig, describe};

const BOT: &str = env!("CARGO_BIN_EXE_mail-bot");
const INJECT: &str = env!("CARGO_BIN_EXE_mail-inject");
const SYNC: &str = env!("CARGO_BIN_EXE_mail-sync");
const DISSECT: &str = env!("CARGO_BIN_EXE_mail-dissect");
const INDEX: &str = env!("CARGO_BIN_EXE_mail-index");
const MIGRATE: &str = env!("CARGO_BIN_EXE_mail-migrate");

/// A command for `bin` with HOME and the XDG folders inside `home` and
/// none of the caller's MAILBOT_* (or SSL_CERT_*) settings.
fn tool(bin: &str, home: &Path) -> Command {
    let mut cmd = Command::new(bin);
    for (name, _) in std::env::vars_os() {
        let n = name.to_string_lossy();
        if n.starts_with("MAILBOT_") || n.starts_with("SSL_CERT_") || n == "NO_COLOR" {
            cmd.env_remove(&name);
        }
    }
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd`, killing it after `secs` (a test must never hang): `None`
/// when it had to be killed.
fn run_within(cmd: &mut Command, secs: u64) -> Option<Output> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run(cmd: &mut Command) -> Output {
    run_within(cmd, 300).expect("still running after 300 s")
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write_private(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// alice's account on the rig, her password in the file.
fn alice_config(rig: &Rig, home: &Path, extra: &str) -> PathBuf {
    let path = home.join("config/mailbot/config.toml");
    write_private(
        &path,
        &format!(
            "[account.alice]\naddress = \"{addr}\"\n\
             imap = \"imaps://{user}@{host}:{imaps}\"\n\
             smtp = \"smtp://{user}@{host}:{submission}\"\n\
             password = \"{password}\"\nca_file = \"{ca}\"\nmaildir = \"{maildir}\"\n{extra}",
            addr = rig.address(0),
            user = rig.users[0].0,
            password = rig.users[0].1,
            host = rig.host,
            imaps = rig.imaps_port,
            submission = rig.submission_port,
            ca = rig.ca.display(),
            maildir = home.join("alice").display(),
        ),
    );
    path
}

// ------------------------------------------------------------- item 1

/// With alice's account in the configuration, a one-shot URL for bob
/// must not be given alice's password: Dovecot and Postfix would see
/// alice's secret sent as bob's. Without a secret of its own, bob gets
/// exit 78 "no password for bob@host".
#[test]
fn a_one_shot_url_never_borrows_an_accounts_password() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    alice_config(&rig, home.path(), "");
    let bob = &rig.users[1].0;
    let maildir = home.path().join("bob");
    let foreign_urls = [
        format!("imaps://{bob}@{}:{}", rig.host, rig.imaps_port),
        // alice herself, but on another port and scheme than her account's
        format!("imap://{}@{}:{}", rig.users[0].0, rig.host, rig.imap_port),
    ];
    for url in &foreign_urls {
        for account in [None, Some("alice")] {
            let mut cmd = tool(SYNC, home.path());
            cmd.arg(url).arg("--maildir").arg(&maildir);
            cmd.arg("--ca-file").arg(&rig.ca);
            if let Some(a) = account {
                cmd.args(["--account", a]);
            }
            let out = run(&mut cmd);
            assert_eq!(code(&out), 78, "{url} {account:?}: {}", describe(&out));
            assert!(
                stderr(&out).contains("no password for"),
                "{}",
                describe(&out)
            );
            assert!(!stderr(&out).contains(&rig.users[0].1));
        }
    }
    let mut cmd = tool(INJECT, home.path());
    cmd.args([
        "--smtp",
        &format!("smtp://{bob}@{}:{}", rig.host, rig.submission_port),
    ])
    .arg("--ca-file")
    .arg(&rig.ca)
    .args(["-r", &rig.address(1), "-s", "x", "--body-text", "x"])
    .arg(rig.address(1));
    let out = run(&mut cmd);
    assert_eq!(code(&out), 78, "{}", describe(&out));
    assert!(stderr(&out).contains(&format!("no password for {bob}@")));
    // bob's own secret, given for this invocation, is used for bob...
    let mut cmd = tool(SYNC, home.path());
    cmd.arg(&foreign_urls[0])
        .arg("--maildir")
        .arg(&maildir)
        .arg("--ca-file")
        .arg(&rig.ca)
        .args(["--folder", "INBOX"])
        .env("MAILBOT_PASSWORD", &rig.users[1].1);
    let out = run(&mut cmd);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    // ...and alice's own URL, named on the command line, is her account.
    let mut cmd = tool(SYNC, home.path());
    cmd.arg(format!(
        "imaps://{}@{}:{}",
        rig.users[0].0, rig.host, rig.imaps_port
    ))
    .args(["--folder", "INBOX"]);
    let out = run(&mut cmd);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(home.path().join("alice/INBOX").is_dir());
}

// ------------------------------------------------------------- item 2

/// A message with a PDF, as mail-inject composes it.
fn pdf_message(dir: &Path, subject: &str) -> PathBuf {
    let pdf = dir.join("report.pdf");
    fs::write(&pdf, mailbot::bot::selftest::small_pdf(subject)).unwrap();
    let eml = dir.join(format!("{subject}.eml"));
    let out = run(tool(INJECT, dir)
        .args(["-r", "me@example.org", "-s", subject, "-a"])
        .arg(&pdf)
        .args(["--body-text", "see the PDF", "-o"])
        .arg(&eml)
        .arg("me@example.org"));
    assert_eq!(code(&out), 0, "{}", describe(&out));
    eml
}

/// Delivers `message` into the INBOX of mail-bot's embedded default.
fn deliver_local(home: &Path, message: &Path) {
    let out = run(tool(INJECT, home)
        .args(["--raw", "--maildir"])
        .arg(home.join("mb/maildir/INBOX"))
        .stdin(fs::File::open(message).unwrap()));
    assert_eq!(code(&out), 0, "{}", describe(&out));
}

/// Secrets a user may well have in the environment mail-bot runs in.
const SECRETS: &[(&str, &str)] = &[
    ("MAILBOT_PASSWORD", "pw-in-env-1"),
    ("MAILBOT_PASSWORD_COMMAND", "echo pw-in-env-2"),
    ("MAILBOT_OAUTH2_TOKEN", "tok-in-env-3"),
    ("MAILBOT_OAUTH2_TOKEN_COMMAND", "echo tok-in-env-4"),
    ("GITHUB_TOKEN", "tok-in-env-5"),
    ("PGPASSWORD", "pw-in-env-6"),
];

fn assert_no_secret(text: &str) {
    for (name, value) in SECRETS {
        assert!(!text.contains(name), "{name} reached the child: {text}");
        assert!(!text.contains(value), "{value} reached the child: {text}");
    }
}

/// `run` actions, `--exec` commands and the sendmail program run on
/// untrusted mail: they get no secret of mailbot's environment.
#[test]
fn commands_get_no_secret_in_their_environment() {
    let home = tempfile::tempdir().unwrap();
    let eml = pdf_message(home.path(), "envdump");
    let dump = home.path().join("env.txt");
    let config = home.path().join("config/mailbot/config.toml");
    write_private(
        &config,
        &format!(
            "[[rule]]\nattachment = \"application/pdf\"\n\
             run = \"sh -c 'env > {}' sh {{}}\"\n",
            dump.display()
        ),
    );
    let bot = |args: &[&str]| {
        let mut cmd = tool(BOT, home.path());
        cmd.arg("--home").arg(home.path().join("mb")).args(args);
        for (k, v) in SECRETS {
            cmd.env(k, v);
        }
        cmd
    };
    // A first pass, then the message: acted on as new mail.
    assert_eq!(code(&run(&mut bot(&["run"]))), 0);
    deliver_local(home.path(), &eml);
    let out = run(&mut bot(&["run"]));
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let env = fs::read_to_string(&dump).expect("the rule ran");
    assert!(env.contains("MAILBOT_RULE=rule-1"), "{env}");
    assert!(env.contains("PATH="), "{env}");
    assert_no_secret(&env);

    // mail-dissect --exec
    let mut cmd = tool(DISSECT, home.path());
    cmd.arg("--out")
        .arg(home.path().join("out"))
        .args(["--pdf", "--exec", "sh -c env sh {}"])
        .arg(&eml);
    for (k, v) in SECRETS {
        cmd.env(k, v);
    }
    let out = run(&mut cmd);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let env = String::from_utf8_lossy(&out.stdout);
    assert!(env.contains("PATH="), "{env}");
    assert_no_secret(&env);

    // mail-inject --sendmail=PROGRAM
    let sendmail = home.path().join("sendmail");
    fs::write(
        &sendmail,
        format!("#!/bin/sh\ncat > /dev/null\nenv > {}\n", dump.display()),
    )
    .unwrap();
    fs::set_permissions(&sendmail, fs::Permissions::from_mode(0o700)).unwrap();
    let mut cmd = tool(INJECT, home.path());
    cmd.arg(format!("--sendmail={}", sendmail.display())).args([
        "-r",
        "me@example.org",
        "--body-text",
        "x",
        "you@example.org",
    ]);
    for (k, v) in SECRETS {
        cmd.env(k, v);
    }
    let out = run(&mut cmd);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let env = fs::read_to_string(&dump).unwrap();
    assert!(env.contains("PATH="), "{env}");
    assert_no_secret(&env);
}

// ------------------------------------------------------------- item 3

/// A password in a URL is refused — 64 on the command line, 78 in the
/// configuration — and never printed, by any tool.
#[test]
fn a_password_in_a_url_is_refused_and_never_printed() {
    let home = tempfile::tempdir().unwrap();
    let secret = "hunter2-in-url";
    let urls = [
        format!("imaps://alice:{secret}@127.0.0.1:1"),
        format!("imaps://alice:{secret}/x@127.0.0.1:1"),
        format!("alice:{secret}@127.0.0.1"),
    ];
    for url in &urls {
        let mut sync = tool(SYNC, home.path());
        sync.arg(url).arg("--maildir").arg(home.path().join("m"));
        let mut sync_env = tool(SYNC, home.path());
        sync_env
            .env("MAILBOT_IMAP", url)
            .arg("--maildir")
            .arg(home.path().join("m"));
        let mut inject = tool(INJECT, home.path());
        inject
            .args(["--smtp", &url.replace("imaps", "smtp")])
            .args(["-r", "a@example.org", "--body-text", "x", "b@example.org"]);
        let mut append = tool(INJECT, home.path());
        append.args(["--imap", url, "-o", "-"]).args([
            "-r",
            "a@example.org",
            "--body-text",
            "x",
            "b@example.org",
        ]);
        for cmd in [&mut sync, &mut sync_env, &mut inject, &mut append] {
            let out = run(cmd);
            assert_eq!(code(&out), 64, "{url}: {}", describe(&out));
            assert!(!stderr(&out).contains(secret), "{}", describe(&out));
            assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
        }
    }
    // From the configuration: 78, for every tool that reads it.
    for key in ["imap", "smtp"] {
        let config = home.path().join("config/mailbot/config.toml");
        let scheme = if key == "imap" { "imaps" } else { "smtps" };
        write_private(
            &config,
            &format!("[account.a]\n{key} = \"{scheme}://alice:{secret}@127.0.0.1:1\"\n"),
        );
        let mut bot = tool(BOT, home.path());
        bot.arg("--home").arg(home.path().join("mb")).arg("run");
        let mut sync = tool(SYNC, home.path());
        sync.args(["--account", "a", "--maildir"])
            .arg(home.path().join("m"));
        let mut inject = tool(INJECT, home.path());
        inject.args(["-r", "a@example.org", "--body-text", "x", "b@example.org"]);
        for cmd in [&mut bot, &mut sync, &mut inject] {
            let out = run(cmd);
            assert_eq!(code(&out), 78, "{key}: {}", describe(&out));
            assert!(stderr(&out).contains("password"), "{}", describe(&out));
            assert!(!stderr(&out).contains(secret), "{}", describe(&out));
        }
    }
}

// ------------------------------------------------------------- item 4

/// A password or token command that hangs is killed after
/// --secret-timeout and named (exit 78); it never blocks the tool.
#[test]
fn hanging_secret_commands_time_out_with_78() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config/mailbot/config.toml");
    write_private(
        &config,
        "[account.slow]\nimap = \"imaps://me@127.0.0.1:1\"\n\
         smtp = \"smtp://me@127.0.0.1:1\"\naddress = \"me@example.org\"\n\
         password_command = \"sleep 600\"\n",
    );
    let mut sync = tool(SYNC, home.path());
    sync.args(["--secret-timeout", "1", "--maildir"])
        .arg(home.path().join("m"));
    let mut inject = tool(INJECT, home.path());
    inject.args([
        "--secret-timeout",
        "1",
        "--body-text",
        "x",
        "you@example.org",
    ]);
    let mut bot = tool(BOT, home.path());
    bot.args(["--secret-timeout", "1", "--home"])
        .arg(home.path().join("mb"))
        .arg("run");
    let mut token = tool(SYNC, home.path());
    token
        .args(["imaps://me@127.0.0.1:1", "--maildir"])
        .arg(home.path().join("t"))
        .args(["--oauth2-token-command", "sleep 600"])
        .env("MAILBOT_SECRET_TIMEOUT", "1");
    for (what, cmd) in [
        ("mail-sync", &mut sync),
        ("mail-inject", &mut inject),
        ("mail-bot", &mut bot),
        ("token", &mut token),
    ] {
        let out = run_within(cmd, 120).unwrap_or_else(|| panic!("{what}: hung"));
        assert_eq!(code(&out), 78, "{what}: {}", describe(&out));
        let err = stderr(&out);
        assert!(err.contains("\"sleep 600\""), "{what}: {err}");
        assert!(err.contains("killed"), "{what}: {err}");
    }
}

/// A rule's `run` command that hangs is killed with its process group
/// after the rule's `timeout`: the action fails (exit 1) and is retried
/// by the next run, which is not locked out.
#[test]
fn a_hanging_rule_command_is_killed_and_retried() {
    let home = tempfile::tempdir().unwrap();
    let eml = pdf_message(home.path(), "hang");
    let pids = home.path().join("pids");
    let config = home.path().join("config/mailbot/config.toml");
    write_private(
        &config,
        &format!(
            "[[rule]]\nname = \"slow\"\nattachment = \"application/pdf\"\ntimeout = 1\n\
             run = \"sh -c 'sleep 600 & echo $! >> {}; wait' sh {{}}\"\n",
            pids.display()
        ),
    );
    let bot = || {
        let mut cmd = tool(BOT, home.path());
        cmd.arg("--home").arg(home.path().join("mb")).arg("run");
        cmd
    };
    assert_eq!(code(&run(&mut bot())), 0);
    deliver_local(home.path(), &eml);
    for attempt in 1..=2 {
        let out = run_within(&mut bot(), 120).expect("mail-bot run hung on the command");
        assert_eq!(code(&out), 1, "attempt {attempt}: {}", describe(&out));
        let err = stderr(&out);
        assert!(err.contains("killed"), "{err}");
        assert!(
            err.contains(&format!("attempt {attempt}, will retry")),
            "{err}"
        );
    }
    // Each sleeper was killed with its group, not left behind.
    let pids = fs::read_to_string(&pids).unwrap();
    assert_eq!(pids.lines().count(), 2, "{pids}");
    for pid in pids.lines() {
        let gone = support::wait_for(30, || {
            match fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => Some(()),
                Ok(s) if s.split_whitespace().nth(2) == Some("Z") => Some(()),
                Ok(_) => None,
            }
        });
        assert!(gone.is_some(), "sleep {pid} outlived its rule");
    }
    // --exec has a limit too.
    let out = run_within(
        tool(DISSECT, home.path())
            .arg("--out")
            .arg(home.path().join("out"))
            .args([
                "--pdf",
                "--exec",
                "sh -c 'sleep 600' sh {}",
                "--exec-timeout",
                "1",
            ])
            .arg(&eml),
        120,
    )
    .expect("mail-dissect hung on --exec");
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(stderr(&out).contains("killed"), "{}", describe(&out));
}

// ------------------------------------------------------------- item 6

/// The system's store is trusted by default: the rig's CA installed as
/// the system's (a temporary SSL_CERT_FILE or SSL_CERT_DIR) is enough.
/// `--ca-file` adds to that store; `--only-ca-file` replaces it.
#[test]
fn the_system_trust_store_is_used_and_ca_files_add_to_it() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let other_ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls/test-ca.pem");
    let cert_dir = home.path().join("certs");
    fs::create_dir(&cert_dir).unwrap();
    fs::copy(&rig.ca, cert_dir.join("rig.pem")).unwrap();
    let empty_dir = home.path().join("no-certs");
    fs::create_dir(&empty_dir).unwrap();
    let url = format!("imaps://{}@{}:{}", rig.users[0].0, rig.host, rig.imaps_port);
    let sync = |env: &[(&str, &Path)], args: &[&Path]| {
        let mut cmd = tool(SYNC, home.path());
        cmd.arg(&url)
            .arg("--maildir")
            .arg(home.path().join("m"))
            .args(["--folder", "INBOX"])
            .env("MAILBOT_PASSWORD", &rig.users[0].1);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(args);
        code(&run(&mut cmd))
    };
    let flag = |f: &'static str| Path::new(f);
    // The rig's CA as the system's, no flag: trusted.
    assert_eq!(sync(&[("SSL_CERT_FILE", &rig.ca)], &[]), 0);
    assert_eq!(sync(&[("SSL_CERT_DIR", &cert_dir)], &[]), 0);
    // A system store without it: not trusted.
    assert_eq!(sync(&[("SSL_CERT_FILE", &other_ca)], &[]), 76);
    assert_eq!(sync(&[("SSL_CERT_DIR", &empty_dir)], &[]), 76);
    // --ca-file adds: the system's CA still counts besides another file...
    assert_eq!(
        sync(
            &[("SSL_CERT_FILE", &rig.ca)],
            &[flag("--ca-file"), &other_ca]
        ),
        0
    );
    // (The file is tried first and the store read only when the file
    // does not vouch for the server; neither vouching is still refused.)
    assert_eq!(
        sync(
            &[("SSL_CERT_FILE", &other_ca)],
            &[flag("--ca-file"), &other_ca]
        ),
        76
    );
    // ...and the file's CA counts besides the system's.
    assert_eq!(
        sync(
            &[("SSL_CERT_FILE", &other_ca)],
            &[flag("--ca-file"), &rig.ca]
        ),
        0
    );
    // --only-ca-file replaces the store.
    assert_eq!(
        sync(
            &[("SSL_CERT_FILE", &rig.ca)],
            &[flag("--only-ca-file"), &other_ca]
        ),
        76
    );
    assert_eq!(
        sync(
            &[("SSL_CERT_FILE", &other_ca)],
            &[flag("--only-ca-file"), &rig.ca]
        ),
        0
    );
}

// ------------------------------------------------------------- item 7

/// Runs `bin args...` under `umask 022`.
fn with_umask_022(bin: &str, home: &Path) -> Command {
    let mut cmd = tool("/bin/sh", home);
    cmd.args(["-c", "umask 022; exec \"$@\"", "sh", bin]);
    cmd
}

/// Everything under `root` that group or others may read, except
/// `keep` (folders the user made).
fn not_private(root: &Path, keep: &[&Path]) -> Vec<String> {
    let out = Command::new("find")
        .arg(root)
        .args(["-perm", "/077"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !keep.iter().any(|k| Path::new(l) == *k))
        .map(str::to_string)
        .collect()
}

/// Whatever the umask, mailbot creates what holds mail or is derived
/// from it 0700/0600: maildirs, `.mailbot`, `.notmuch`, dissected files
/// and folders, outboxes, the --home tree. Folders the user made keep
/// their mode.
#[test]
fn everything_created_is_private_whatever_the_umask() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let root = home.path().join("made-by-the-user");
    fs::create_dir(&root).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
    let eml = pdf_message(home.path(), "private");
    fs::set_permissions(&eml, fs::Permissions::from_mode(0o600)).unwrap();
    // Something for mail-sync --index to fetch and index.
    let sent = support::submit(
        &rig,
        rig.tls_trusting_rig(),
        &rig.users[0].0,
        &rig.users[0].1,
        &rig.address(0),
        &rig.address(0),
        &fs::read(&eml).unwrap(),
    )
    .unwrap();
    assert_eq!(sent, support::Submitted::Accepted);
    let id = mailbot::compose::message_id_of(&fs::read(&eml).unwrap()).unwrap();
    support::wait_for(30, || {
        ["new", "cur"].iter().find_map(|sub| {
            fs::read_dir(rig.maildirs[0].join(sub))
                .ok()?
                .flatten()
                .any(|e| {
                    fs::read(e.path())
                        .is_ok_and(|b| b.windows(id.len()).any(|w| w == id.as_bytes()))
                })
                .then_some(())
        })
    })
    .expect("the message never reached alice's INBOX");
    let mut runs: Vec<(&str, Command)> = Vec::new();
    // mail-sync --index into a new maildir
    let mut c = with_umask_022(SYNC, home.path());
    c.arg(format!(
        "imaps://{}@{}:{}",
        rig.users[0].0, rig.host, rig.imaps_port
    ))
    .arg("--maildir")
    .arg(root.join("Mail"))
    .args(["--folder", "INBOX", "--index", "--ca-file"])
    .arg(&rig.ca)
    .env("MAILBOT_PASSWORD", &rig.users[0].1);
    runs.push(("mail-sync --index", c));
    // mail-bot's embedded default, with dissect rules into --out folders
    let config = home.path().join("config/mailbot/config.toml");
    write_private(
        &config,
        &format!(
            "[[rule]]\nname = \"tree\"\nattachment = \"application/pdf\"\n\
             dissect = {{ out = \"{0}/pdfs\" }}\n\
             [[rule]]\nname = \"flat\"\nattachment = \"application/pdf\"\n\
             dissect = {{ out = \"{0}/flat\", flat = true }}\n",
            root.display()
        ),
    );
    let mut c = with_umask_022(BOT, home.path());
    c.arg("--home").arg(root.join("home")).arg("selftest");
    runs.push(("mail-bot selftest", c));
    let mut c = with_umask_022(INJECT, home.path());
    c.args(["--raw", "--maildir"])
        .arg(root.join("home/maildir/INBOX"))
        .stdin(fs::File::open(&eml).unwrap());
    runs.push(("mail-inject --maildir", c));
    let mut c = with_umask_022(BOT, home.path());
    c.arg("--home").arg(root.join("home")).arg("run");
    runs.push(("mail-bot run", c));
    // mail-dissect, per message and flat
    let mut c = with_umask_022(DISSECT, home.path());
    c.arg("--out").arg(root.join("dissected")).arg(&eml);
    runs.push(("mail-dissect", c));
    let mut c = with_umask_022(DISSECT, home.path());
    c.arg("--flat").arg(root.join("flat-d")).arg(&eml);
    runs.push(("mail-dissect --flat", c));
    // an outbox, filled because the server is down
    let mut c = with_umask_022(INJECT, home.path());
    c.args(["--smtp", "smtps://127.0.0.1:1", "--retries", "0", "--queue"])
        .arg(root.join("outbox"))
        .args(["-r", "a@example.org", "--body-text", "x", "b@example.org"]);
    runs.push(("mail-inject --queue", c));
    // mail-index new on a maildir of its own
    let mut c = with_umask_022(INDEX, home.path());
    c.arg("--maildir").arg(root.join("home/maildir")).arg("new");
    runs.push(("mail-index new", c));
    for (what, mut cmd) in runs {
        let out = run(&mut cmd);
        let want = if what == "mail-inject --queue" { 75 } else { 0 };
        assert_eq!(code(&out), want, "{what}: {}", describe(&out));
    }
    for made in [
        "Mail/INBOX/cur",
        "Mail/.notmuch/xapian",
        "home/maildir/.mailbot/bot.jsonl",
        "home/dissected",
        "pdfs",
        "flat",
        "dissected",
        "flat-d",
        "outbox/envelopes",
    ] {
        assert!(root.join(made).exists(), "{made} was not made");
    }
    assert_eq!(not_private(&root, &[&root]), Vec::<String>::new());
    assert_eq!(
        fs::metadata(&root).unwrap().permissions().mode() & 0o777,
        0o755,
        "the user's own folder keeps its mode"
    );
}

// ------------------------------------------------------------- item 8

/// Log lines carry colour only on a terminal, and not with NO_COLOR.
#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let home = tempfile::tempdir().unwrap();
    // A journal cut short by a crash: mail-bot warns when it drops the line.
    let torn = || {
        let journal = home.path().join("mb/maildir/.mailbot/bot.jsonl");
        fs::create_dir_all(journal.parent().unwrap()).unwrap();
        fs::write(&journal, "{\"t\":\"seen\"").unwrap();
    };
    torn();
    let mut cmd = tool(BOT, home.path());
    cmd.arg("--home").arg(home.path().join("mb")).arg("run");
    let out = run(&mut cmd);
    assert!(stderr(&out).contains("cut-off"), "{}", describe(&out));
    assert!(!stderr(&out).contains('\x1b'), "{:?}", stderr(&out));
    // A warning is a line like every other message: the program first.
    let line = stderr(&out);
    let line = line.lines().find(|l| l.contains("cut-off")).unwrap();
    assert!(
        line.starts_with("mail-bot: warning: ") && line.ends_with("dropping a cut-off last line"),
        "{line:?}"
    );
    // On a terminal (script(1) gives it one): colour, unless NO_COLOR.
    for (no_color, want) in [(None, true), (Some("1"), false)] {
        torn();
        let mut cmd = tool("script", home.path());
        cmd.args(["-qfec"])
            .arg(format!(
                "{BOT} --home {} run",
                home.path().join("mb").display()
            ))
            .arg("/dev/null");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = run(&mut cmd);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("cut-off"), "{}", describe(&out));
        assert_eq!(
            text.contains('\x1b'),
            want,
            "NO_COLOR={no_color:?}: {text:?}"
        );
    }
}

// ------------------------------------------------------------- item 9

/// `--config <(cat file)` is a pipe: read once, it works.
#[test]
fn a_configuration_from_a_pipe_is_read_once() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("config.toml");
    write_private(
        &file,
        &format!(
            "[account.local]\nmaildir = \"{}\"\naddress = \"me@example.org\"\n\
             [[rule]]\nattachment = \"application/pdf\"\nprint = \"lpr {{}}\"\n",
            home.path().join("Mail").display()
        ),
    );
    for args in [["run", ""], ["selftest", "--json"]] {
        let mut cmd = tool("bash", home.path());
        cmd.args([
            "-c",
            &format!("exec {BOT} --config <(cat \"$1\") {} {}", args[0], args[1]),
            "bash",
        ])
        .arg(&file);
        let out = run(&mut cmd);
        assert_eq!(code(&out), 0, "{args:?}: {}", describe(&out));
    }
}

// ------------------------------------------------------------ item 10

/// Every `MAILBOT_*` variable a tool reads, from its --help.
fn variables(bin: &str, sub: &[&str]) -> Vec<String> {
    let out = Command::new(bin).args(sub).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut names: Vec<String> = text
        .split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split('=').next())
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    assert!(!names.is_empty(), "{bin}: {names:?}");
    names
}

/// A variable set but empty (`MAILBOT_CA_FILE=`) means unset, for every
/// variable of every tool: the same exit code and output as without it.
#[test]
fn empty_variables_mean_unset() {
    let home = tempfile::tempdir().unwrap();
    let eml = pdf_message(home.path(), "empty-env");
    let cases: Vec<(&str, Vec<&str>, Vec<String>)> = vec![
        (
            INJECT,
            vec![],
            [
                "-r",
                "a@example.org",
                "--body-text",
                "x",
                "--date",
                "@0",
                "--message-id",
                "1@example.org",
                "-o",
                "-",
                "b@example.org",
            ]
            .map(String::from)
            .to_vec(),
        ),
        (
            DISSECT,
            vec![],
            vec![
                "--out".into(),
                home.path().join("d").display().to_string(),
                eml.display().to_string(),
            ],
        ),
        (
            BOT,
            vec!["run"],
            vec![
                "--home".into(),
                home.path().join("mb").display().to_string(),
                "run".into(),
            ],
        ),
        (SYNC, vec![], vec![]),
        (
            INDEX,
            vec!["new"],
            vec![
                "--maildir".into(),
                home.path().join("mb/maildir").display().to_string(),
                "new".into(),
            ],
        ),
    ];
    for (bin, sub, args) in cases {
        let mut names = variables(bin, &[]);
        if !sub.is_empty() {
            names.extend(variables(bin, &sub));
        }
        let unset = run(tool(bin, home.path()).args(&args));
        let mut cmd = tool(bin, home.path());
        cmd.args(&args);
        for n in &names {
            cmd.env(n, "");
        }
        let empty = run(&mut cmd);
        assert_eq!(
            (code(&empty), &empty.stdout, stderr(&empty)),
            (code(&unset), &unset.stdout, stderr(&unset)),
            "{bin} with {names:?} empty:\n{}\nunset:\n{}",
            describe(&empty),
            describe(&unset)
        );
    }
}

/// A server that accepts the connection and then says nothing (a hung
/// daemon, a firewall that swallows packets) costs `--timeout`, not
/// forever: exit 75 and a line that says it timed out, for IMAP, IMAPS,
/// SMTP, SMTPS and mail-migrate, on the greeting and in the handshake.
#[test]
fn a_server_that_says_nothing_times_out_with_75() {
    let home = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let silent = |scheme: &str| format!("{scheme}://me@127.0.0.1:{port}");
    let mut runs: Vec<(String, Command)> = Vec::new();
    for scheme in ["imap", "imaps"] {
        let mut c = tool(SYNC, home.path());
        c.arg(silent(scheme))
            .arg("--maildir")
            .arg(home.path().join("m"))
            .args(["--timeout", "1"])
            .env("MAILBOT_PASSWORD", "x");
        runs.push((format!("mail-sync {scheme}"), c));
        let mut c = tool(MIGRATE, home.path());
        c.arg(silent(scheme))
            .arg(silent(scheme))
            .args(["--timeout", "1", "--state"])
            .arg(home.path().join("state"))
            .env("MAILBOT_MIGRATE_FROM_PASSWORD", "x")
            .env("MAILBOT_MIGRATE_TO_PASSWORD", "y");
        runs.push((format!("mail-migrate {scheme}"), c));
        // --plan and --verify as well: every mailbox failed for the same
        // passing reason, so the whole run is 75, not 1.
        for mode in ["--plan", "--verify"] {
            let mut c = tool(MIGRATE, home.path());
            c.arg(silent(scheme))
                .arg(silent(scheme))
                .args([mode, "--timeout", "1", "--state"])
                .arg(home.path().join("state"))
                .env("MAILBOT_MIGRATE_FROM_PASSWORD", "x")
                .env("MAILBOT_MIGRATE_TO_PASSWORD", "y");
            runs.push((format!("mail-migrate {mode} {scheme}"), c));
        }
    }
    for scheme in ["smtp", "smtps"] {
        let mut c = tool(INJECT, home.path());
        c.args([
            "--smtp",
            &silent(scheme),
            "--timeout",
            "1",
            "--retries",
            "0",
        ])
        .args(["-r", "a@example.org", "--body-text", "x", "b@example.org"])
        .env("MAILBOT_PASSWORD", "x");
        runs.push((format!("mail-inject {scheme}"), c));
    }
    for (what, mut cmd) in runs {
        let out = run_within(&mut cmd, 60).unwrap_or_else(|| panic!("{what}: hung"));
        assert_eq!(code(&out), 75, "{what}: {}", describe(&out));
        let err = stderr(&out);
        assert!(err.contains("timed out"), "{what}: {err}");
        assert!(!err.contains("os error"), "{what}: {err}");
    }
}

/// selftest's and probe's `--timeout` bound the whole round trip: an
/// SMTP server that takes the connection and says nothing fails the test
/// when the time is up (75; probe CRITICAL), not after the network
/// timeout of every retry (three minutes, while a monitor waits).
#[test]
fn selftest_and_probe_keep_their_timeout_with_a_silent_smtp_server() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let config = alice_config(&rig, home.path(), "");
    let text = fs::read_to_string(&config).unwrap().replace(
        &format!("{}:{}", rig.host, rig.submission_port),
        &format!("127.0.0.1:{port}"),
    );
    write_private(&config, &text);
    for (sub, want) in [("selftest", 75), ("probe", 2)] {
        let mut cmd = tool(BOT, home.path());
        cmd.arg("--home")
            .arg(home.path().join("mb"))
            .args([sub, "--timeout", "3"]);
        let out = run_within(&mut cmd, 60).unwrap_or_else(|| panic!("{sub} outlived --timeout"));
        assert_eq!(code(&out), want, "{sub}: {}", describe(&out));
        let text = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
        assert!(text.contains("timed out"), "{sub}: {text}");
    }
}
