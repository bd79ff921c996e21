//! Every `sh` example of README.md and every example of each binary's
//! `--help` runs here as written, against a mail-server rig of its own:
//! only the host names, ports, user names and the CA are put in for the
//! rig's (see [`localize`]). Each example runs in a fresh HOME, from that
//! HOME, with the built binaries first on PATH, and must exit 0; where it
//! promises an outcome (a file, a printed command, a message on the
//! server) that is checked too.
//!
//! Marking examples. In README.md, one or more comments right above a
//! ```` ```sh ```` fence (or above a plain fence, for `crontab`):
//!
//! - `<!-- example: skip (REASON) -->`: not run; kept to the few that
//!   install into /usr, need another kind of server, or stay running.
//! - `<!-- example: needs NAME -->`: a precondition the harness sets up
//!   first; NAME is one of [`Setup`]'s: `inbox-mail` (a message with a
//!   PDF in alice's INBOX on the server), `local-mail [DIR]` (that
//!   message in the maildir DIR, default `~/Mail`, indexed by `mail-index
//!   new`), `mbox FILE` (an mbox of two such messages at FILE, relative
//!   to HOME), `installed` (`scripts/install` as a user, into `~/.local`).
//! - `<!-- example: creates GLOB -->`: a file matching GLOB (relative to
//!   HOME) exists afterwards.
//! - `<!-- example: prints TEXT -->`: TEXT is in the block's stdout.
//! - `<!-- example: delivers SUBJECT to USER -->`: a message with that
//!   subject reaches the rig user's (`alice`, `bob`) server maildir.
//! - `<!-- example: crontab -->`: each line is a crontab entry; its
//!   command runs as cron runs it (`env -i`, `PATH=/usr/bin:/bin`,
//!   `/bin/sh`).
//! - `<!-- example: repeat 3 ... -->`: the course exercise, run three
//!   times in one HOME; each run must act on the message it just sent.
//!
//! The same directives for `--help` examples are in [`HELP`], keyed by
//! the start of the command.
//!
//! Every working folder holds `note.txt`, `report.pdf`, `syllabus.pdf`,
//! `invoice.pdf` and `message.eml` (from alice to alice, with `report.pdf` attached),
//! the files the examples name. `pass` and `lpr` are stand-ins on PATH:
//! `pass` prints alice's password, `lpr` records its arguments.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::own_rig::OwnRig;
use support::{Rig, describe};

const BINS: [(&str, &str); 6] = [
    ("mail-inject", env!("CARGO_BIN_EXE_mail-inject")),
    ("mail-sync", env!("CARGO_BIN_EXE_mail-sync")),
    ("mail-index", env!("CARGO_BIN_EXE_mail-index")),
    ("mail-dissect", env!("CARGO_BIN_EXE_mail-dissect")),
    ("mail-bot", env!("CARGO_BIN_EXE_mail-bot")),
    ("mail-migrate", env!("CARGO_BIN_EXE_mail-migrate")),
];

/// Directives for `--help` examples: (binary, start of the command,
/// directive), as README.md's comments give them.
const HELP: &[(&str, &str, &str)] = &[
    (
        "mail-inject",
        "mail-inject --raw -t --smtp smtps://",
        "skip (implicit TLS: the rig has no port 465; tests/inject_rig.rs covers smtps)",
    ),
    (
        "mail-inject",
        "mail-inject --raw --mbox",
        "needs mbox Takeout/Mail/All mail.mbox",
    ),
    (
        "mail-dissect",
        "mail-dissect --pdf --out pdfs 'All mail.mbox'",
        "needs mbox All mail.mbox",
    ),
    ("mail-sync", "mail-sync", "needs inbox-mail"),
    (
        "mail-sync",
        "mail-sync imaps://me@mail.example.org --maildir ~/Mail --watch",
        "skip (stays running; tests/sync_rig.rs covers --watch)",
    ),
    ("mail-sync", "*/10 * * * *", "needs installed"),
    (
        "mail-index",
        "mail-index --maildir ~/Mail",
        "needs local-mail",
    ),
    ("mail-index", "find ~/Mail", "needs local-mail"),
    (
        "mail-index",
        "mail-index --maildir ~/Mail/school",
        "needs local-mail Mail/school",
    ),
    (
        "mail-index",
        "mail-index search",
        "needs local-mail Mail/school",
    ),
    (
        "mail-index",
        "mail-index tag",
        "needs local-mail Mail/school",
    ),
    (
        "mail-index",
        "mail-index count",
        "needs local-mail Mail/school",
    ),
    ("mail-index", "mail-sync", "needs inbox-mail"),
    (
        "mail-dissect",
        "mail-dissect -r",
        "needs local-mail Maildir",
    ),
    ("mail-dissect", "find Maildir", "needs local-mail Maildir"),
    ("mail-bot", "mail-bot --account school", "needs inbox-mail"),
    ("mail-bot", "*/5 * * * *", "needs installed"),
    (
        "mail-bot",
        "mail-bot watch",
        "skip (stays running; tests/bot_rig.rs covers watch)",
    ),
    (
        "mail-bot",
        "mail-bot --account school watch",
        "skip (stays running; tests/bot_rig.rs covers watch)",
    ),
    (
        "mail-migrate",
        "",
        "skip (needs two servers with master users; tests/migrate_rig.rs runs these)",
    ),
];

/// One example: where it is written, its command lines, its directives.
#[derive(Debug, Clone)]
struct Example {
    origin: String,
    commands: Vec<String>,
    directives: Vec<String>,
}

impl Example {
    fn directive(&self, word: &str) -> Option<&str> {
        self.directives.iter().find_map(|d| {
            d.strip_prefix(word)
                .filter(|rest| rest.is_empty() || rest.starts_with(' '))
                .map(str::trim)
        })
    }

    fn all(&self, word: &str) -> Vec<&str> {
        self.directives
            .iter()
            .filter_map(|d| d.strip_prefix(word).map(str::trim))
            .collect()
    }
}

/// Splits shell lines into commands: a command goes on while its line
/// ends with `\`, `|` or `&&`; comment lines are dropped.
fn commands(lines: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in lines {
        if current.is_empty() && (line.trim().is_empty() || line.trim_start().starts_with('#')) {
            continue;
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(line);
        let end = line.trim_end();
        if !(end.ends_with('\\') || end.ends_with('|') || end.ends_with("&&")) {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The ```` ```sh ```` blocks of README.md and the blocks marked
/// `crontab`, with the directives above them.
fn readme_examples() -> Vec<Example> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let text = fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i];
        if !fence.starts_with("```") {
            i += 1;
            continue;
        }
        let end = i
            + 1
            + lines[i + 1..]
                .iter()
                .position(|l| l.starts_with("```"))
                .expect("unclosed fence");
        let mut directives = Vec::new();
        let mut j = i;
        while j > 0 {
            let Some(d) = lines[j - 1]
                .trim()
                .strip_prefix("<!-- example:")
                .and_then(|d| d.strip_suffix("-->"))
            else {
                break;
            };
            directives.insert(0, d.trim().to_string());
            j -= 1;
        }
        let crontab = directives.iter().any(|d| d == "crontab");
        if fence == "```sh" || crontab {
            out.push(Example {
                origin: format!("README.md:{}", i + 1),
                commands: commands(&lines[i + 1..end]),
                directives,
            });
        } else {
            assert!(
                directives.is_empty(),
                "README.md:{}: example directives above a block that is not sh",
                i + 1
            );
        }
        i = end + 1;
    }
    out
}

/// The examples of `exe --help` and of each subcommand's `--help`:
/// commands start at a two-space indent and go on over lines that end
/// with `\\`; the indented lines after a command describe it. Commands
/// with no description between them are one example.
fn help_examples(name: &str, exe: &str) -> Vec<Example> {
    let help = |args: &[&str]| {
        let out = Command::new(exe).args(args).arg("--help").output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let top = help(&[]);
    let subcommands: Vec<String> = top
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|s| *s != "help")
        .map(str::to_string)
        .collect();
    let mut out: Vec<Example> = Vec::new();
    for (origin, text) in std::iter::once((format!("{name} --help"), top.clone())).chain(
        subcommands
            .iter()
            .map(|sub| (format!("{name} {sub} --help"), help(&[sub.as_str()]))),
    ) {
        let mut continued = false;
        let mut grouping = false;
        for line in text
            .lines()
            .skip_while(|l| *l != "Examples:")
            .skip(1)
            .take_while(|l| !l.starts_with("Exit status"))
        {
            if continued {
                let command = out.last_mut().unwrap().commands.last_mut().unwrap();
                command.push('\n');
                command.push_str(line);
            } else if line.starts_with("  ")
                && !line.starts_with("   ")
                && !line.trim_start().starts_with('#')
            {
                let command = line.trim().to_string();
                let mut directives: Vec<String> = HELP
                    .iter()
                    .filter(|(bin, start, _)| *bin == name && command.starts_with(start))
                    .map(|(_, _, d)| d.to_string())
                    .collect();
                if cron_command(&command).is_some() {
                    directives.push("crontab".to_string());
                }
                if grouping {
                    let last = out.last_mut().unwrap();
                    last.origin.push_str(" + ...");
                    last.commands.push(command);
                    for d in directives {
                        if !last.directives.contains(&d) {
                            last.directives.push(d);
                        }
                    }
                } else {
                    out.push(Example {
                        origin: format!("{origin}: {command}"),
                        commands: vec![command],
                        directives,
                    });
                }
                grouping = true;
            } else {
                grouping = false;
                continue;
            }
            continued = line.trim_end().ends_with('\\');
        }
    }
    assert!(!out.is_empty(), "{name} --help has no examples");
    out
}

/// The command of a crontab entry (`*/5 * * * * CMD`), if it is one.
fn cron_command(line: &str) -> Option<&str> {
    let mut rest = line.trim();
    for _ in 0..5 {
        let (field, tail) = rest.split_once(' ')?;
        if !field
            .chars()
            .all(|c| c.is_ascii_digit() || "*/,-".contains(c))
        {
            return None;
        }
        rest = tail.trim_start();
    }
    Some(rest)
}

/// The example with the rig's names in: `mail.example.org` URLs become
/// the rig's host and ports with alice as the user, and the addresses
/// the examples send to become the rig's users. Nothing else changes.
fn localize(command: &str, rig: &Rig) -> String {
    let alice = rig.address(0);
    let bob = rig.address(1);
    let smtp = format!(
        "smtp://{}@{}:{}",
        rig.users[0].0, rig.host, rig.submission_port
    );
    let imaps = format!("imaps://{}@{}:{}", rig.users[0].0, rig.host, rig.imaps_port);
    let mut s = command.to_string();
    for (from, to) in [
        ("smtp://me@mail.example.org:587", smtp.as_str()),
        ("smtp://me@mail.example.org", smtp.as_str()),
        ("imaps://me@mail.example.org", imaps.as_str()),
        ("me@example.org", alice.as_str()),
        ("student@example.edu", alice.as_str()),
        ("ann@example.org", alice.as_str()),
        ("bob@example.org", bob.as_str()),
    ] {
        s = s.replace(from, to);
    }
    s
}

/// A fresh HOME for one example, with its working files, stand-ins and
/// a configuration whose `school` account is alice on the rig.
struct Home {
    dir: tempfile::TempDir,
    rig: Rig,
    tools: PathBuf,
}

fn bin_dir() -> PathBuf {
    Path::new(BINS[0].1).parent().unwrap().to_path_buf()
}

impl Home {
    fn new(rig: &Rig) -> Home {
        let dir = tempfile::Builder::new()
            .prefix("mailbot-example")
            .tempdir()
            .unwrap();
        let home = Home {
            tools: dir.path().join(".stand-ins"),
            dir,
            rig: rig.clone(),
        };
        let path = home.path();
        fs::create_dir_all(&home.tools).unwrap();
        let secret = home.tools.join("secret");
        fs::write(&secret, format!("{}\n", rig.users[0].1)).unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
        let script = |name: &str, body: String| {
            let file = home.tools.join(name);
            fs::write(&file, format!("#!/bin/sh\n{body}\n")).unwrap();
            fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).unwrap();
        };
        script("pass", format!("exec cat '{}'", secret.display()));
        script(
            "lpr",
            format!("echo \"$*\" >> '{}'", path.join("lpr.log").display()),
        );
        fs::write(path.join("note.txt"), "The monthly report is attached.\n").unwrap();
        fs::write(path.join("report.pdf"), pdf("report")).unwrap();
        fs::write(path.join("syllabus.pdf"), pdf("syllabus")).unwrap();
        fs::write(path.join("invoice.pdf"), pdf("invoice")).unwrap();
        let config = path.join(".config/mailbot/config.toml");
        fs::create_dir_all(config.parent().unwrap()).unwrap();
        fs::write(
            &config,
            format!(
                r#"# examples/config.toml's school account, on the rig
[account.school]
address = "{address}"
smtp = "smtp://{user}@{host}:{submission}"
imap = "imaps://{user}@{host}:{imaps}"
password_command = "{pass} show school"
ca_file = "{ca}"
maildir = "~/Mail/school"
folders = ["INBOX"]
since = "2024-09-01"

[[rule]]
name = "homework"
account = "school"
match = "tag:new and attachment:pdf"
attachment = "pdf"
dissect = {{ out = "~/pdfs", type = ["application/pdf"] }}
print = "lpr -P office {{}}"
"#,
                address = rig.address(0),
                user = rig.users[0].0,
                host = rig.host,
                submission = rig.submission_port,
                imaps = rig.imaps_port,
                pass = home.tools.join("pass").display(),
                ca = rig.ca.display(),
            ),
        )
        .unwrap();
        let out = home.sh(&format!(
            "mail-inject -r {a} -s 'Invoice 7' --body-text 'attached' -a report.pdf \
             -o message.eml {a}",
            a = rig.address(0)
        ));
        assert_eq!(
            out.status.code(),
            Some(0),
            "message.eml: {}",
            describe(&out)
        );
        home
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The environment of an example: HOME and PATH, the rig's CA, no
    /// MAILBOT_* or XDG_* settings of the caller.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .current_dir(self.path())
            .env("HOME", self.path())
            .env("USER", &self.rig.users[0].0)
            .env("LOGNAME", &self.rig.users[0].0)
            .env(
                "PATH",
                format!(
                    "{}:{}:/usr/local/bin:/usr/bin:/bin",
                    self.tools.display(),
                    bin_dir().display()
                ),
            )
            .env("SSL_CERT_FILE", &self.rig.ca)
            .env("LANG", "C.UTF-8");
        cmd
    }

    /// Runs `script` with bash (`-o pipefail`, so a failure anywhere in
    /// a pipeline counts), killed after a minute.
    fn sh(&self, script: &str) -> Output {
        self.command("timeout")
            .args(["-k", "5", "60", "bash", "-o", "pipefail", "-c", script])
            .output()
            .unwrap()
    }

    /// Runs `command` as cron runs a crontab entry's command.
    fn cron(&self, command: &str) -> Output {
        let home = self.path().display().to_string();
        Command::new("timeout")
            .args(["-k", "5", "60", "env", "-i"])
            .arg(format!("HOME={home}"))
            .arg(format!("LOGNAME={}", self.rig.users[0].0))
            .arg("SHELL=/bin/sh")
            .arg("PATH=/usr/bin:/bin")
            .args(["/bin/sh", "-c", command])
            .current_dir(self.path())
            .output()
            .unwrap()
    }

    fn setup(&self, need: &str) {
        let (name, arg) = need.split_once(' ').unwrap_or((need, ""));
        match name {
            "inbox-mail" => {
                let message = fs::read(self.path().join("message.eml")).unwrap();
                submit_and_wait(&self.rig, &message);
            }
            "local-mail" => {
                let dir = if arg.is_empty() { "Mail" } else { arg };
                let root = self.path().join(dir);
                for sub in ["new", "cur", "tmp"] {
                    fs::create_dir_all(root.join("INBOX").join(sub)).unwrap();
                }
                fs::copy(
                    self.path().join("message.eml"),
                    root.join("INBOX/new/1700000000.M1P2Q3.host"),
                )
                .unwrap();
                let out = self.sh(&format!("mail-index --maildir {dir} new"));
                assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
            }
            "mbox" => {
                // message.eml twice (two messages), as an export has them.
                let file = self.path().join(arg);
                fs::create_dir_all(file.parent().unwrap()).unwrap();
                let message = fs::read_to_string(self.path().join("message.eml")).unwrap();
                let message = message.replace("\r\n", "\n");
                let mut mbox = String::new();
                for n in 1..=2 {
                    mbox.push_str("From alice@mailbot.test Mon Jan  1 10:00:00 2024\n");
                    mbox.push_str(
                        &message.replace("Subject: Invoice 7", &format!("Subject: Invoice {n}")),
                    );
                    mbox.push('\n');
                }
                fs::write(&file, mbox).unwrap();
            }
            "installed" => {
                let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install");
                let out = self
                    .command(script.to_str().unwrap())
                    .arg("--prefix")
                    .arg(self.path().join(".local"))
                    .arg("--from")
                    .arg(bin_dir())
                    .output()
                    .unwrap();
                assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
            }
            other => panic!("unknown precondition {other:?}"),
        }
    }
}

/// A small valid PDF whose text names `what`.
fn pdf(what: &str) -> Vec<u8> {
    let content = format!("BT /F1 12 Tf 20 100 Td ({what}) Tj ET");
    mailbot::bot::selftest::pdf_from_objects(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>".to_vec(),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        )
        .into_bytes(),
    ])
}

/// The files of alice's server maildir (`new` and `cur`).
fn server_messages(rig: &Rig) -> BTreeSet<PathBuf> {
    ["new", "cur"]
        .iter()
        .flat_map(|sub| {
            fs::read_dir(rig.maildirs[0].join(sub))
                .into_iter()
                .flatten()
        })
        .map(|e| e.unwrap().path())
        .collect()
}

/// Waits (20 s at most) until alice's INBOX holds more than `before`.
fn wait_for_delivery(rig: &Rig, before: usize) {
    support::wait_for(20, || (server_messages(rig).len() > before).then_some(()))
        .expect("message not delivered to alice within 20 s");
}

fn submit_and_wait(rig: &Rig, message: &[u8]) {
    let before = server_messages(rig).len();
    let (user, pass) = &rig.users[0];
    let sent = support::submit(
        rig,
        rig.tls_trusting_rig(),
        user,
        pass,
        &rig.address(0),
        &rig.address(0),
        message,
    )
    .expect("submission");
    assert_eq!(sent, support::Submitted::Accepted);
    wait_for_delivery(rig, before);
}

/// Files under `dir` whose path relative to it matches `glob` (`*`
/// within one name).
fn matching(dir: &Path, glob: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    let parts: Vec<&str> = glob.split('/').collect();
    files
        .into_iter()
        .filter(|f| {
            let rel: Vec<String> = f
                .strip_prefix(dir)
                .unwrap()
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            rel.len() == parts.len() && rel.iter().zip(&parts).all(|(n, g)| glob_match(g, n))
        })
        .collect()
}

fn glob_match(glob: &str, name: &str) -> bool {
    match glob.split_once('*') {
        None => glob == name,
        Some((head, tail)) => {
            name.starts_with(head)
                && (0..=name.len() - head.len()).any(|i| {
                    name.is_char_boundary(head.len() + i)
                        && glob_match(tail, &name[head.len() + i..])
                })
        }
    }
}

/// Runs one example in a fresh HOME; returns what went wrong, if
/// anything.
fn run_example(rig: &Rig, example: &Example) -> Result<(), String> {
    let home = Home::new(rig);
    for need in example.all("needs") {
        home.setup(need);
    }
    let crontab = example.directive("crontab").is_some();
    let mut stdout = String::new();
    for command in &example.commands {
        let command = localize(command, rig);
        let out = if crontab {
            home.cron(cron_command(&command).expect("a crontab entry"))
        } else {
            home.sh(&command)
        };
        if out.status.code() != Some(0) {
            return Err(format!("{command}\n{}", describe(&out)));
        }
        stdout.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    for glob in example.all("creates") {
        if matching(home.path(), glob).is_empty() {
            return Err(format!("no file {glob} afterwards"));
        }
    }
    for spec in example.all("delivers") {
        let (subject, user) = spec.rsplit_once(" to ").expect("delivers SUBJECT to USER");
        let which = rig
            .users
            .iter()
            .position(|(u, _)| u == user)
            .unwrap_or_else(|| panic!("{}: no rig user {user}", example.origin));
        let want = format!("Subject: {subject}");
        let found = support::wait_for(20, || {
            ["new", "cur"]
                .iter()
                .flat_map(|sub| {
                    fs::read_dir(rig.maildirs[which].join(sub))
                        .into_iter()
                        .flatten()
                })
                .map(|e| e.unwrap().path())
                .any(|f| fs::read_to_string(&f).is_ok_and(|m| m.lines().any(|l| l == want)))
                .then_some(())
        });
        if found.is_none() {
            return Err(format!("no message {want:?} reached {user} within 20 s"));
        }
    }
    for text in example.all("prints") {
        if !stdout.contains(text) {
            return Err(format!("{text:?} not printed; stdout:\n{stdout}"));
        }
    }
    Ok(())
}

/// Runs every example that is not skipped, a few at once (each has its
/// own HOME; they only add mail to the server); fails naming each that
/// did not work.
fn run_all(rig: &Rig, examples: &[Example]) {
    let todo: Vec<&Example> = examples
        .iter()
        .filter(|e| e.directive("skip").is_none() && e.directive("repeat").is_none())
        .collect();
    assert!(!todo.is_empty(), "no example ran");
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(example) = todo.get(i) else { break };
                    let start = std::time::Instant::now();
                    let result = run_example(rig, example);
                    eprintln!("{:.1} s  {}", start.elapsed().as_secs_f64(), example.origin);
                    if let Err(why) = result {
                        failed
                            .lock()
                            .unwrap()
                            .push(format!("{}:\n{why}", example.origin));
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap();
    assert!(
        failed.is_empty(),
        "{} of {} examples failed:\n\n{}",
        failed.len(),
        todo.len(),
        failed.join("\n\n")
    );
}

/// A rig of this test's own, so the server state each example sees and
/// leaves is its own; `None` (test skipped) without the shared rig's
/// settings, as every rig test does.
fn own_rig(prefix: &str) -> Option<OwnRig> {
    Rig::from_env()?;
    Some(OwnRig::start(prefix))
}

#[test]
fn readme_examples_work_as_written() {
    let Some(own) = own_rig("mailbot-ex-readme") else {
        return;
    };
    run_all(&own.rig(), &readme_examples());
}

#[test]
fn help_examples_work_as_written() {
    let Some(own) = own_rig("mailbot-ex-help") else {
        return;
    };
    let examples: Vec<Example> = BINS
        .iter()
        .flat_map(|(name, exe)| help_examples(name, exe))
        .collect();
    run_all(&own.rig(), &examples);
}

/// The course exercise, literally: its three lines run three times, a
/// new message each time, and each run fetches and acts on exactly the
/// message it sent.
#[test]
fn the_course_exercise_works_for_every_new_message() {
    let Some(own) = own_rig("mailbot-ex-course") else {
        return;
    };
    let rig = own.rig();
    let examples = readme_examples();
    let exercise = examples
        .iter()
        .find(|e| e.directive("repeat").is_some())
        .expect("README.md: the course exercise (example: repeat 3)");
    let times: usize = exercise
        .directive("repeat")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(exercise.commands.len(), 3, "{exercise:?}");
    let home = Home::new(&rig);
    let report = fs::read(home.path().join("report.pdf")).unwrap();
    let mut seen_files = BTreeSet::new();
    let mut seen_pdfs = BTreeSet::new();
    for run in 1..=times {
        let before = server_messages(&rig).len();
        let send = localize(&exercise.commands[0], &rig);
        let out = home.sh(&send);
        assert_eq!(
            out.status.code(),
            Some(0),
            "run {run}: {send}\n{}",
            describe(&out)
        );
        wait_for_delivery(&rig, before);
        // "run it again if the message is not there yet"
        let fetch = localize(&exercise.commands[1], &rig);
        let fetched = support::wait_for(20, || {
            let out = home.sh(&fetch);
            assert_eq!(
                out.status.code(),
                Some(0),
                "run {run}: {fetch}\n{}",
                describe(&out)
            );
            let list = fs::read_to_string(home.path().join("fetched.txt")).unwrap();
            (!list.trim().is_empty()).then_some(list)
        })
        .expect("nothing fetched in 20 s");
        let paths: Vec<&str> = fetched.lines().collect();
        assert_eq!(paths.len(), 1, "run {run}: fetched {fetched}");
        assert!(
            seen_files.insert(paths[0].to_string()),
            "run {run}: {} was fetched before",
            paths[0]
        );
        let dissect = localize(&exercise.commands[2], &rig);
        let out = home.sh(&dissect);
        assert_eq!(
            out.status.code(),
            Some(0),
            "run {run}: {dissect}\n{}",
            describe(&out)
        );
        let printed = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = printed.lines().collect();
        assert_eq!(lines.len(), 1, "run {run}: one print command: {printed}");
        let pdf = lines[0]
            .strip_prefix("lpr ")
            .map(|l| l.trim_matches('\''))
            .unwrap_or_else(|| panic!("run {run}: {printed}"));
        let pdf = home.path().join(pdf);
        assert_eq!(
            fs::read(&pdf).unwrap(),
            report,
            "run {run}: {}",
            pdf.display()
        );
        assert!(
            seen_pdfs.insert(pdf.clone()),
            "run {run}: {} is an earlier message's",
            pdf.display()
        );
    }
}

/// The parsers of this harness, on text of the shapes they read.
#[test]
fn examples_are_found_and_split_as_written() {
    assert_eq!(
        commands(&[
            "# comment",
            "a --x \\",
            "    --y |",
            "    b",
            "c  # trailing",
            ""
        ]),
        vec!["a --x \\\n    --y |\n    b", "c  # trailing"]
    );
    assert_eq!(
        cron_command("*/5 * * * * $HOME/.local/bin/mail-bot run"),
        Some("$HOME/.local/bin/mail-bot run")
    );
    assert_eq!(cron_command("mail-bot run --dry-run -v 1 2"), None);
    assert!(glob_match(
        "dissected/*/report.pdf",
        "dissected/*/report.pdf"
    ));
    assert!(glob_match("a*c", "abbc") && !glob_match("a*c", "abb"));
    let readme = readme_examples();
    assert!(readme.len() >= 10, "{readme:?}");
    for example in readme.iter().chain(
        BINS.iter()
            .flat_map(|(n, e)| help_examples(n, e))
            .collect::<Vec<_>>()
            .iter(),
    ) {
        for d in &example.directives {
            let word = d.split(' ').next().unwrap();
            assert!(
                [
                    "skip", "needs", "creates", "prints", "delivers", "crontab", "repeat",
                ]
                .contains(&word),
                "{}: unknown directive {d:?}",
                example.origin
            );
            if word == "skip" {
                assert!(
                    d.contains('(') && d.ends_with(')'),
                    "{}: a skip says why: {d:?}",
                    example.origin
                );
            }
        }
    }
}

/// The units README.md shows are contrib/systemd's, as scripts/install
/// writes them under ~/.local (`%h/.local/bin` for `/usr/bin`).
#[test]
fn the_readme_units_are_the_installed_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme.find("```ini\n").expect("README.md: the units") + 7;
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    let (service, timer) = block
        .strip_prefix("# mail-bot.service\n")
        .and_then(|b| b.split_once("# mail-bot.timer\n"))
        .expect("# mail-bot.service ... # mail-bot.timer");
    let settings = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.replace("/usr/bin/", "%h/.local/bin/"))
            .collect()
    };
    for (shown, file) in [(service, "mail-bot.service"), (timer, "mail-bot.timer")] {
        let unit = fs::read_to_string(root.join("contrib/systemd").join(file)).unwrap();
        let unit = settings(&unit);
        let shown = settings(shown);
        // The README leaves out the timer's [Unit] section.
        let unit: Vec<String> = if file.ends_with(".timer") {
            unit.into_iter().skip_while(|l| l != "[Timer]").collect()
        } else {
            unit
        };
        assert_eq!(shown, unit, "README.md vs contrib/systemd/{file}");
    }
}
