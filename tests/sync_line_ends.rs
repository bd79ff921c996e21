//! Every maildir writer stores Unix line ends: a message mail-sync fetches
//! is, byte for byte, the file Dovecot keeps for it in its own maildir on
//! the rig (8-bit text, NUL-free binary, bare CRs, malformed messages, one
//! through Postfix), with `S=` the file's size and `W=` the size on the
//! wire; `--line-ends crlf` (or the account's `line_ends`) keeps the
//! server's bytes, and such CRLF files are recognised by later runs, never
//! fetched again. mail-inject --maildir and mail-bot's selftest deliver
//! LF too.

mod support;
mod sync_common;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::Rig;
use sync_common::{
    Server, code, describe, drop_into_server, local_messages, run, run_ok, server_dir, stored,
    sync, unique,
};

/// The messages that make line-end handling go wrong, each a different way.
fn awkward_messages(tag: &str) -> Vec<Vec<u8>> {
    let mut binary: Vec<u8> = (1..=255u8).cycle().take(255 * 40).collect();
    // A pseudo-random NUL-free stretch, dense in CRs and LFs, large enough
    // to cross every read buffer at every offset.
    let mut x: u32 = 0x9e37_79b9;
    for _ in 0..600_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let byte = match x % 7 {
            0 => b'\r',
            1 => b'\n',
            _ => (x >> 8) as u8 | 1,
        };
        // Never a CR right before a line end (CR CR LF): Dovecot keeps
        // that CR in its file but sends the line end as a plain CRLF, so
        // no client can see it (the README says so).
        if byte == b'\n' && binary.ends_with(b"\r\r") {
            continue;
        }
        binary.push(byte);
    }
    let mut with_header =
        format!("From: bin@mailbot.test\r\nSubject: {tag} binary\r\n\r\n").into_bytes();
    with_header.extend_from_slice(&binary);
    vec![
        format!(
            "From: =?utf-8?q?J=C3=B6rg?= <j@mailbot.test>\r\nSubject: {tag} 8bit \u{e9}t\u{e9}\r\n\
             Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        )
        .into_bytes()
        .into_iter()
        .chain(b"caf\xe9 \xff\xfe \x80\x9f\r\nna\xefve\r\n".iter().copied())
        .collect(),
        with_header,
        format!(
            "From: cr@mailbot.test\r\nSubject: {tag} bare cr\r\n\r\na\rb\r\nc\r\r\rd\re\nf\r\n"
        )
        .into_bytes(),
        format!("Subject: {tag} lf only\n\nline\nline\n").into_bytes(),
        format!("Subject: {tag} no body separator and no final newline").into_bytes(),
        format!(
            "From: long@mailbot.test\r\nSubject: {tag} long line\r\n\r\n{}\r\n.\r\n..\r\nFrom x\r\n",
            "x".repeat(5000)
        )
        .into_bytes(),
        b"\r\n\r\n\r\n".to_vec(),
    ]
}

/// Dovecot's file for each UID of folder `name`, from its `dovecot-uidlist`.
fn dovecot_files(rig: &Rig, name: &str) -> HashMap<u32, PathBuf> {
    let dir = if name == "INBOX" {
        rig.maildirs[0].clone()
    } else {
        server_dir(rig, name)
    };
    let list = fs::read_to_string(dir.join("dovecot-uidlist")).unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    for sub in ["cur", "new"] {
        for entry in fs::read_dir(dir.join(sub)).unwrap() {
            files.push(entry.unwrap().path());
        }
    }
    let mut out = HashMap::new();
    for line in list.lines().skip(1) {
        let Some((head, base)) = line.split_once(':') else {
            continue;
        };
        let uid: u32 = head.split_whitespace().next().unwrap().parse().unwrap();
        if let Some(f) = files.iter().find(|f| {
            let n = f.file_name().unwrap().to_string_lossy();
            n == base || n.starts_with(&format!("{base}:"))
        }) {
            out.insert(uid, f.clone());
        }
    }
    out
}

/// A comma field (`S`, `W`) of a file name.
fn field(path: &Path, key: &str) -> Option<u64> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let unique = name.split(":2,").next().unwrap().to_string();
    unique
        .split(',')
        .find_map(|f| f.strip_prefix(&format!("{key}=")))
        .map(|v| v.parse().unwrap())
}

#[test]
fn fetched_files_are_the_files_dovecot_stores_and_crlf_files_are_kept() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let lf_dir = home.path().join("Mail");
    let crlf_dir = home.path().join("Crlf");
    let name = unique("sync-lines");
    let mut server = Server::login(&rig);
    server.create(&name);
    for m in awkward_messages(&name) {
        server.append(&name, "", &m);
    }
    // Stored by another program (as Postfix does): LF, a bare CR inside
    // a line; Dovecot serves it as it is, CRLF for LF.
    drop_into_server(
        &rig,
        &name,
        &[format!("From: p@mailbot.test\nSubject: {name} dropped\n\nkeep\rthis\n").into_bytes()],
    );
    // And one through Postfix itself, into INBOX.
    let subject = format!("{name} via postfix");
    let via_smtp = format!(
        "From: {}\r\nTo: {}\r\nSubject: {subject}\r\n\r\n\u{e9}t\u{e9}\r\nline\r\n",
        rig.address(0),
        rig.address(0)
    );
    let submitted = support::submit(
        &rig,
        rig.tls_trusting_rig(),
        &rig.users[0].0,
        &rig.users[0].1,
        &rig.address(0),
        &rig.address(0),
        via_smtp.as_bytes(),
    )
    .unwrap();
    assert_eq!(submitted, support::Submitted::Accepted);
    let in_inbox = support::wait_for(30, || {
        server
            .messages("INBOX")
            .into_iter()
            .find(|m| String::from_utf8_lossy(&m.body).contains(&subject))
    })
    .expect("the message through Postfix arrived");

    let mut cmd = sync(&rig, home.path(), &lf_dir);
    cmd.args(["--folder", &name, "--folder", "INBOX"]);
    run_ok(&mut cmd);
    let on_server: HashMap<u32, Vec<u8>> = server
        .messages(&name)
        .into_iter()
        .map(|m| (m.uid, m.body))
        .collect();
    let dovecot = dovecot_files(&rig, &name);
    let local = local_messages(&lf_dir.join(&name));
    assert_eq!(local.len(), awkward_messages(&name).len() + 1);
    for m in &local {
        let uid = m.uid.unwrap();
        let theirs = fs::read(&dovecot[&uid]).unwrap();
        assert!(
            m.body == theirs,
            "UID {uid}: {} differs from Dovecot's {}",
            m.path.display(),
            dovecot[&uid].display()
        );
        assert_eq!(
            field(&m.path, "S"),
            Some(m.body.len() as u64),
            "{}",
            m.path.display()
        );
        let wire = on_server[&uid].len() as u64;
        let want_w = (wire != m.body.len() as u64).then_some(wire);
        assert_eq!(field(&m.path, "W"), want_w, "{}", m.path.display());
    }
    let inbox_dovecot = dovecot_files(&rig, "INBOX");
    let mine = local_messages(&lf_dir.join("INBOX"))
        .into_iter()
        .find(|m| m.uid == Some(in_inbox.uid))
        .unwrap();
    assert_eq!(mine.body, fs::read(&inbox_dovecot[&in_inbox.uid]).unwrap());
    assert!(String::from_utf8_lossy(&mine.body).contains(&format!("\nSubject: {subject}\n")));

    // --line-ends crlf: the server's bytes exactly.
    let mut cmd = sync(&rig, home.path(), &crlf_dir);
    cmd.args(["--folder", &name, "--line-ends", "crlf"]);
    run_ok(&mut cmd);
    let kept = local_messages(&crlf_dir.join(&name));
    assert_eq!(kept.len(), on_server.len());
    for m in &kept {
        assert!(m.body == on_server[&m.uid.unwrap()], "{}", m.path.display());
        assert_eq!(field(&m.path, "W"), None, "{}", m.path.display());
    }

    // Later runs with LF line ends take the CRLF files for what they are:
    // nothing fetched, nothing changed; not even when the state is lost
    // and every file must be matched to the server again.
    let names = |dir: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = local_messages(&dir.join(&name))
            .into_iter()
            .map(|m| m.path)
            .collect();
        v.sort();
        v
    };
    let before = names(&crlf_dir);
    for lose_state in [false, true] {
        if lose_state {
            for dir in [&crlf_dir, &lf_dir] {
                fs::remove_dir_all(dir.join(".mailbot/sync")).unwrap();
            }
        }
        for dir in [&crlf_dir, &lf_dir] {
            let mut cmd = sync(&rig, home.path(), dir);
            cmd.args(["--folder", &name]);
            let out = run(&mut cmd);
            assert_eq!(code(&out), 0, "{}", describe(&out));
            assert!(out.stdout.is_empty(), "fetched again: {}", describe(&out));
        }
        assert_eq!(names(&crlf_dir), before);
        for m in local_messages(&crlf_dir.join(&name)) {
            assert!(m.body == on_server[&m.uid.unwrap()]);
        }
        for m in local_messages(&lf_dir.join(&name)) {
            assert!(m.body == stored(&on_server[&m.uid.unwrap()]));
        }
    }

    // The account's line_ends = "crlf" does what the flag does.
    let config = home.path().join("config.toml");
    fs::write(
        &config,
        format!(
            "[account.rig]\nimap = \"imaps://{}@{}:{}\"\nca_file = \"{}\"\nmaildir = \"{}\"\nline_ends = \"crlf\"\n",
            rig.users[0].0,
            rig.host,
            rig.imaps_port,
            rig.ca.display(),
            home.path().join("Account").display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(sync_common::bin());
    cmd.env("HOME", home.path())
        .env("MAILBOT_PASSWORD", &rig.users[0].1)
        .env_remove("MAILBOT_IMAP")
        .env_remove("MAILBOT_MAILDIR")
        .args(["--config"])
        .arg(&config)
        .args(["--account", "rig", "--folder", &name]);
    run_ok(&mut cmd);
    for m in local_messages(&home.path().join("Account").join(&name)) {
        assert!(m.body == on_server[&m.uid.unwrap()], "{}", m.path.display());
    }
    server.logout();
}

/// The other maildir writers: mail-inject --maildir and mail-bot's
/// selftest on the embedded default store LF, and what they store still
/// dissects into the very file that was sent.
#[test]
fn mail_inject_and_the_selftest_deliver_lf_line_ends() {
    let home = tempfile::tempdir().unwrap();
    let pdf = mailbot::bot::selftest::small_pdf("line-ends");
    let attachment = home.path().join("report.pdf");
    fs::write(&attachment, &pdf).unwrap();
    let inbox = home.path().join("Mail/inbox");
    let out = Command::new(env!("CARGO_BIN_EXE_mail-inject"))
        .args([
            "-r",
            "a@mailbot.test",
            "-s",
            "lines",
            "--body-text",
            "one\ntwo",
            "-a",
        ])
        .arg(&attachment)
        .arg("--maildir")
        .arg(&inbox)
        .arg("b@mailbot.test")
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let delivered = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let bytes = fs::read(&delivered).unwrap();
    assert!(!bytes.contains(&b'\r'), "a CR in {}", delivered.display());
    assert!(String::from_utf8_lossy(&bytes).contains("\nSubject: lines\n"));
    let dissected = home.path().join("dissected");
    let out = Command::new(env!("CARGO_BIN_EXE_mail-dissect"))
        .arg("--out")
        .arg(&dissected)
        .args(["--pdf"])
        .arg(&delivered)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let written = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert_eq!(fs::read(written).unwrap(), pdf);

    let bot_home = home.path().join("bot");
    let out = Command::new(env!("CARGO_BIN_EXE_mail-bot"))
        .arg("--home")
        .arg(&bot_home)
        .args(["selftest", "--json"])
        .env("HOME", &bot_home)
        .env("XDG_CONFIG_HOME", bot_home.join("no-config"))
        .env_remove("MAILBOT_CONFIG")
        .env_remove("MAILBOT_ACCOUNT")
        .env_remove("MAILBOT_HOME")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    let message = fs::read(report["message"].as_str().unwrap()).unwrap();
    assert!(!message.contains(&b'\r'), "{report}");
    assert_eq!(report["ok"], true);
}
