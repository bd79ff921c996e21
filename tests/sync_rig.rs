//! mail-sync against the real Dovecot of scripts/mailserver: what arrives
//! is compared byte for byte (sha256) with the server's `BODY[]` read by
//! the tests' own IMAP client; flags, uploads, deletions, a new
//! UIDVALIDITY, the refusals and IDLE are each checked on the server and
//! on disk. Every test works in folders of its own.

mod support;
mod sync_common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use support::Rig;
use sync_common::{
    Server, assert_same, code, corpus_messages, describe, drop_into_server, generated,
    local_messages, run, run_ok, stored, sync, unique,
};

/// Every file under `dir`'s maildir folders (new/ and cur/), recursively.
fn all_files(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    fn walk(d: &Path, out: &mut BTreeSet<PathBuf>) {
        let Ok(read) = fs::read_dir(d) else { return };
        for item in read {
            let p = item.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name == ".mailbot" || name == "tmp" {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            } else if p
                .parent()
                .and_then(|q| q.file_name())
                .is_some_and(|n| n == "new" || n == "cur")
            {
                out.insert(p);
            }
        }
    }
    walk(dir, &mut out);
    out
}

#[test]
fn corpus_arrives_byte_for_byte_in_two_folders_and_a_second_run_is_silent() {
    let Some(rig) = Rig::from_env() else { return };
    let Some(corpus) = corpus_messages() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let plain = unique("sync-corpus");
    let parent = format!("Re\u{e7}us-{}", unique("x"));
    let nested = format!("{parent}.Factures");
    let mut server = Server::login(&rig);
    server.create(&plain);
    server.create(&nested);
    let (first, second) = corpus.split_at(200);
    drop_into_server(&rig, &plain, first);
    drop_into_server(&rig, &nested, second);

    let mut cmd = sync(&rig, home.path(), &maildir);
    cmd.args(["--folder", &plain, "--folder", &format!("{parent}*")]);
    let printed = run_ok(&mut cmd);

    let plain_local = maildir.join(&plain);
    let nested_local = maildir.join(&parent).join("Factures");
    let plain_server = server.messages(&plain);
    let nested_server = server.messages(&nested);
    assert_eq!(plain_server.len(), 200);
    assert_eq!(nested_server.len(), corpus.len() - 200);
    assert_same(&plain_server, &local_messages(&plain_local));
    assert_same(&nested_server, &local_messages(&nested_local));

    // stdout: exactly the new files, each once.
    let printed_set: BTreeSet<PathBuf> = printed.iter().cloned().collect();
    assert_eq!(printed_set.len(), printed.len(), "a path printed twice");
    assert_eq!(printed_set, all_files(&maildir));
    assert_eq!(printed.len(), corpus.len());

    // Nothing new: nothing printed, nothing changed on disk.
    let before = all_files(&maildir);
    let mut again = sync(&rig, home.path(), &maildir);
    again.args(["--folder", &plain, "--folder", &format!("{parent}*")]);
    assert!(run_ok(&mut again).is_empty(), "a second run printed paths");
    assert_eq!(all_files(&maildir), before);

    // --json: one object per folder, all counts zero.
    again.arg("--json");
    let out = run(&mut again);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let reports: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 2, "{reports:?}");
    for r in &reports {
        assert_eq!(r["fetched"], 0, "{r}");
        assert_eq!(r["error"], serde_json::Value::Null, "{r}");
    }
    assert!(reports.iter().any(|r| r["folder"] == nested.as_str()));
    server.logout();
}

/// The local file of `uid` in `folder`.
fn local_of(folder: &Path, uid: u32) -> sync_common::LocalMessage {
    local_messages(folder)
        .into_iter()
        .find(|m| m.uid == Some(uid))
        .unwrap_or_else(|| panic!("no local file for UID {uid}"))
}

#[test]
fn flags_travel_both_ways_and_push_uploads_once() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let name = unique("sync-flags");
    let mut server = Server::login(&rig);
    server.create(&name);
    let uids: Vec<u32> = generated(&name, 5)
        .iter()
        .map(|m| server.append(&name, "", &mailbot::compose::to_crlf(m)))
        .collect();
    let folder = maildir.join(&name);
    let base = || {
        let mut c = sync(&rig, home.path(), &maildir);
        c.args(["--folder", &name]);
        c
    };
    assert_eq!(run_ok(&mut base()).len(), 5);

    // Server → local: \Flagged on one, \Answered on another while the
    // same message gets F locally (both survive).
    server.store(&name, uids[0], "+FLAGS (\\Flagged)");
    server.store(&name, uids[2], "+FLAGS (\\Answered)");
    let m2 = local_of(&folder, uids[2]);
    let cur = |m: &sync_common::LocalMessage, flags: &str| {
        let file = m.path.file_name().unwrap().to_string_lossy().into_owned();
        let unique = file.split(":2,").next().unwrap().to_string();
        folder.join("cur").join(format!("{unique}:2,{flags}"))
    };
    fs::rename(&m2.path, cur(&m2, "F")).unwrap();
    // Local → server: S added by renaming, as a mail reader does.
    let m1 = local_of(&folder, uids[1]);
    fs::rename(&m1.path, cur(&m1, "S")).unwrap();
    assert!(run_ok(&mut base()).is_empty());
    assert_eq!(local_of(&folder, uids[0]).flags, "F");
    assert_eq!(local_of(&folder, uids[2]).flags, "FR");
    let on_server = server.messages(&name);
    let flags_of = |uid: u32| {
        on_server
            .iter()
            .find(|m| m.uid == uid)
            .unwrap()
            .flags
            .clone()
    };
    assert!(
        flags_of(uids[1]).contains("\\Seen"),
        "{}",
        flags_of(uids[1])
    );
    assert!(
        flags_of(uids[2]).contains("\\Flagged") && flags_of(uids[2]).contains("\\Answered"),
        "{}",
        flags_of(uids[2])
    );

    // A flag cleared on the server is cleared locally.
    server.store(&name, uids[0], "-FLAGS (\\Flagged)");
    assert!(run_ok(&mut base()).is_empty());
    assert_eq!(local_of(&folder, uids[0]).flags, "");

    // A new local message (CRLF, and one with bare LFs) goes up with --push.
    let crlf = b"From: me@mailbot.test\r\nSubject: pushed crlf\r\nMessage-ID: <push-crlf@mailbot.test>\r\n\r\nbody\r\n".to_vec();
    let lf = b"From: me@mailbot.test\nSubject: pushed lf\n\nno Message-ID, bare LFs\n".to_vec();
    fs::write(folder.join("new/local-crlf"), &crlf).unwrap();
    fs::write(folder.join("cur/local-lf:2,S"), &lf).unwrap();
    let mut push = base();
    push.args(["--push", "--json"]);
    let out = run(&mut push);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["uploaded"], 2, "{report}");
    let on_server = server.messages(&name);
    assert_eq!(on_server.len(), 7);
    let up_crlf = on_server
        .iter()
        .find(|m| m.body == crlf)
        .expect("CRLF copy byte-equal");
    let up_lf = on_server
        .iter()
        .find(|m| m.body == mailbot::compose::to_crlf(&lf))
        .expect("LF copy with CRLF line ends");
    assert!(up_lf.flags.contains("\\Seen"), "{}", up_lf.flags);
    let local_crlf = local_of(&folder, up_crlf.uid);
    assert!(local_crlf.body == crlf && !local_crlf.path.ends_with("local-crlf"));
    assert!(
        local_of(&folder, up_lf.uid).body == lf,
        "the local bytes are kept"
    );

    // Pushed again: nothing goes up; a pull fetches nothing either.
    let out = run(&mut push);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["uploaded"], 0, "{report}");
    assert!(run_ok(&mut base()).is_empty());
    assert_eq!(server.messages(&name).len(), 7);
    assert_eq!(local_messages(&folder).len(), 7);
    server.logout();
}

#[test]
fn a_recreated_mailbox_with_a_new_uidvalidity_gives_no_duplicates() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let name = unique("sync-uidvalidity");
    let mut server = Server::login(&rig);
    server.create(&name);
    let mut messages = generated(&name, 12);
    // Two byte-identical copies, and two without Message-ID of equal size.
    messages.push(messages[3].clone());
    messages.push(b"From: a@mailbot.test\nSubject: no id one\n\nsame size A\n".to_vec());
    messages.push(b"From: a@mailbot.test\nSubject: no id two\n\nsame size B\n".to_vec());
    for (i, m) in messages.iter().enumerate() {
        server.append(
            &name,
            if i % 3 == 0 { "\\Seen" } else { "" },
            &mailbot::compose::to_crlf(m),
        );
    }
    let folder = maildir.join(&name);
    let base = || {
        let mut c = sync(&rig, home.path(), &maildir);
        c.args(["--folder", &name]);
        c
    };
    assert_eq!(run_ok(&mut base()).len(), messages.len());
    let before: Vec<Vec<u8>> = local_messages(&folder)
        .into_iter()
        .map(|m| m.body)
        .collect();

    // Deleted and created again, the same messages in reverse order.
    let old = server.messages(&name);
    let old_validity = server.select(&name);
    let _ = server.command("CLOSE");
    server.delete(&name);
    server.create(&name);
    for m in old.iter().rev() {
        let flags = if m.flags.contains("\\Seen") {
            "\\Seen"
        } else {
            ""
        };
        server.append(&name, flags, &m.body);
    }
    assert_ne!(
        server.select(&name),
        old_validity,
        "UIDVALIDITY did not change"
    );

    assert!(run_ok(&mut base()).is_empty(), "nothing is new");
    let now = local_messages(&folder);
    assert_eq!(now.len(), messages.len(), "no duplicates");
    assert_same(&server.messages(&name), &now);
    assert_eq!(
        sync_common::hashes(before.iter().map(Vec::as_slice)),
        sync_common::hashes(now.iter().map(|m| m.body.as_slice()))
    );
    server.logout();
}

#[test]
fn refusals_have_their_exit_codes() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");

    // Wrong password: 77, the password never printed.
    let mut cmd = sync(&rig, home.path(), &maildir);
    cmd.env("MAILBOT_PASSWORD", "wrong-secret");
    let out = run(&mut cmd);
    assert_eq!(code(&out), 77, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("mail-sync: imaps://"), "{err}");
    assert!(err.contains("authentication failed"), "{err}");
    assert!(!err.contains("wrong-secret"), "{err}");
    assert!(out.stdout.is_empty());

    // The rig's private CA is unknown without --ca-file: 76.
    let mut cmd = std::process::Command::new(sync_common::bin());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MAILBOT_") {
            cmd.env_remove(&name);
        }
    }
    cmd.env("HOME", home.path())
        .env("MAILBOT_PASSWORD", &rig.users[0].1)
        .arg(sync_common::url(&rig))
        .arg("--maildir")
        .arg(&maildir);
    let out = run(&mut cmd);
    assert_eq!(code(&out), 76, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("UnknownIssuer"),
        "{}",
        describe(&out)
    );

    // Another run holds the lock: 75, and nothing is touched.
    let name = unique("sync-lock");
    let mut server = Server::login(&rig);
    server.create(&name);
    server.append(
        &name,
        "",
        b"From: a@mailbot.test\r\nSubject: locked\r\n\r\nx\r\n",
    );
    fs::create_dir_all(maildir.join(".mailbot")).unwrap();
    let held = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(maildir.join(".mailbot/lock"))
        .unwrap();
    held.lock().unwrap();
    let mut cmd = sync(&rig, home.path(), &maildir);
    cmd.args(["--folder", &name]);
    let out = run(&mut cmd);
    assert_eq!(code(&out), 75, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another mail-sync is running"),
        "{}",
        describe(&out)
    );
    assert!(!maildir.join(&name).exists());
    drop(held);
    assert_eq!(run_ok(&mut cmd).len(), 1);

    // A folder that does not exist: that entry fails (exit 1), the others sync.
    let mut cmd = sync(&rig, home.path(), &maildir);
    cmd.args(["--folder", &name, "--folder", "no-such-folder-here"]);
    let out = run(&mut cmd);
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-folder-here: imaps://"),
        "{}",
        describe(&out)
    );
    server.logout();
}

#[test]
fn deletions_travel_only_as_expunge_says() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let name = unique("sync-expunge");
    let mut server = Server::login(&rig);
    server.create(&name);
    let uids: Vec<u32> = generated(&name, 5)
        .iter()
        .map(|m| server.append(&name, "", &mailbot::compose::to_crlf(m)))
        .collect();
    let folder = maildir.join(&name);
    let base = || {
        let mut c = sync(&rig, home.path(), &maildir);
        c.args(["--folder", &name]);
        c
    };
    run_ok(&mut base());
    let has = |uid: u32| local_messages(&folder).iter().any(|m| m.uid == Some(uid));

    // Expunged on the server, no --expunge: the local copy stays.
    server.expunge(&name, uids[0]);
    run_ok(&mut base());
    assert!(has(uids[0]));
    // With --expunge to-local: the local copy goes.
    server.expunge(&name, uids[1]);
    let mut to_local = base();
    to_local.args(["--expunge", "to-local"]);
    run_ok(&mut to_local);
    assert!(!has(uids[1]));
    assert!(has(uids[0]), "expunged before; not this run's to remove");

    // Deleted locally, no --expunge: the server keeps it, and it is not
    // fetched again.
    fs::remove_file(local_of(&folder, uids[2]).path).unwrap();
    assert!(run_ok(&mut base()).is_empty());
    assert!(server.messages(&name).iter().any(|m| m.uid == uids[2]));
    assert!(!has(uids[2]));
    // With --expunge to-server it goes on the server too.
    fs::remove_file(local_of(&folder, uids[3]).path).unwrap();
    let mut to_server = base();
    to_server.args(["--expunge", "to-server"]);
    run_ok(&mut to_server);
    let left: Vec<u32> = server.messages(&name).iter().map(|m| m.uid).collect();
    assert_eq!(left, vec![uids[2], uids[4]]);

    // A message that came and went between two runs leaves a gap in the
    // UIDs: nothing to fetch, and the state moves past it.
    let brief = server.append(
        &name,
        "",
        b"From: a@mailbot.test\r\nSubject: brief\r\n\r\nx\r\n",
    );
    server.expunge(&name, brief);
    assert!(run_ok(&mut base()).is_empty());
    let state = fs::read_to_string(maildir.join(format!(".mailbot/sync/{name}.state"))).unwrap();
    let next = server.uidnext(&name);
    assert!(state.contains(&format!("\nuidnext {next}\n")), "{state}");

    // The copy the server no longer has is never uploaded by --push.
    let mut push = base();
    push.arg("--both");
    assert!(run_ok(&mut push).is_empty());
    assert_eq!(server.messages(&name).len(), 2);
    server.logout();
}

#[test]
fn watch_prints_a_new_message_as_it_arrives() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let name = unique("sync-watch");
    let mut server = Server::login(&rig);
    server.create(&name);
    server.append(
        &name,
        "",
        b"From: a@mailbot.test\r\nSubject: before\r\n\r\nx\r\n",
    );
    let mut cmd = sync(&rig, home.path(), &maildir);
    cmd.args(["--folder", &name, "--watch", "--idle-folder", &name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the first pass printed nothing");
    // The pass is done once its message is printed; now one arrives.
    let message = b"From: a@mailbot.test\r\nSubject: while watching\r\n\r\narrived\r\n";
    let uid = server.append(&name, "", message);
    let second = rx.recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    let second = second.expect("the new message's path did not appear");
    assert_ne!(first, second);
    assert_eq!(fs::read(&second).unwrap(), stored(message));
    assert!(second.contains(&format!(",U={uid},")), "{second}");
    server.logout();
}

#[test]
fn maildir_plus_plus_layout() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let top = unique("sync-pp");
    let nested = format!("{top}.Sub");
    let mut server = Server::login(&rig);
    server.create(&nested);
    server.append(
        &nested,
        "\\Seen",
        b"From: a@mailbot.test\r\nSubject: nested\r\n\r\nx\r\n",
    );
    // INBOX is shared with other tests: only what it holds is compared.
    let marker = format!("From: a@mailbot.test\r\nSubject: {top}\r\n\r\ninbox\r\n");
    let inbox_uid = server.append("INBOX", "", marker.as_bytes());
    let mut cmd = sync(&rig, home.path(), &maildir);
    cmd.args([
        "--layout",
        "maildir++",
        "--folder",
        &format!("{top}*"),
        "--folder",
        "INBOX",
    ]);
    let printed = run_ok(&mut cmd);
    let sub = maildir.join(format!(".{top}.Sub"));
    assert!(sub.join("maildirfolder").exists());
    let here = local_messages(&sub);
    assert_eq!(here.len(), 1);
    assert_eq!(here[0].flags, "S");
    assert!(here[0].path.starts_with(sub.join("cur")));
    // INBOX is the maildir root itself.
    let inbox = server.messages("INBOX");
    let root = local_messages(&maildir);
    assert!(
        root.iter()
            .any(|m| m.uid == Some(inbox_uid) && m.body == stored(marker.as_bytes()))
    );
    for m in &root {
        let s = inbox
            .iter()
            .find(|s| Some(s.uid) == m.uid)
            .expect("on the server");
        assert!(stored(&s.body) == m.body, "{}", m.path.display());
    }
    assert_eq!(printed.len(), root.len() + 1);
    server.logout();
}

#[test]
fn without_qresync_condstore_and_uidplus_the_results_are_the_same() {
    let Some(rig) = Rig::from_env() else { return };
    // CONDSTORE alone (CHANGEDSINCE, then SEARCH for expunges), and
    // neither (every flag read each time).
    fallbacks(&rig, "QRESYNC");
    fallbacks(&rig, "QRESYNC,CONDSTORE");
}

fn fallbacks(rig: &Rig, disabled: &str) {
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let name = unique("sync-plain");
    let mut server = Server::login(rig);
    server.create(&name);
    let uids: Vec<u32> = generated(&name, 8)
        .iter()
        .map(|m| server.append(&name, "", &mailbot::compose::to_crlf(m)))
        .collect();
    let folder = maildir.join(&name);
    let plain = |extra: &[&str]| {
        let mut c = sync(rig, home.path(), &maildir);
        c.args(["--folder", &name, "--disable-extension", disabled]);
        c.args(extra);
        c
    };
    assert_eq!(run_ok(&mut plain(&[])).len(), 8);
    assert_same(&server.messages(&name), &local_messages(&folder));

    // Changes on both sides, an expunge, a new message and a gap.
    server.store(&name, uids[0], "+FLAGS (\\Flagged)");
    let m1 = local_of(&folder, uids[1]);
    let unique_part = m1
        .path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .split(":2,")
        .next()
        .unwrap()
        .to_string();
    fs::rename(
        &m1.path,
        folder.join("cur").join(format!("{unique_part}:2,S")),
    )
    .unwrap();
    server.expunge(&name, uids[2]);
    let newer = server.append(
        &name,
        "\\Seen",
        b"From: a@mailbot.test\r\nSubject: newer\r\n\r\nx\r\n",
    );
    let brief = server.append(
        &name,
        "",
        b"From: a@mailbot.test\r\nSubject: brief\r\n\r\ny\r\n",
    );
    server.expunge(&name, brief);
    let printed = run_ok(&mut plain(&["--expunge", "to-local"]));
    assert_eq!(printed.len(), 1);
    assert!(
        printed[0]
            .to_string_lossy()
            .contains(&format!(",U={newer},"))
    );
    assert_eq!(local_of(&folder, uids[0]).flags, "F");
    let on_server = server.messages(&name);
    assert!(
        on_server
            .iter()
            .find(|m| m.uid == uids[1])
            .unwrap()
            .flags
            .contains("\\Seen")
    );
    assert_same(&on_server, &local_messages(&folder));
    assert!(run_ok(&mut plain(&[])).is_empty());

    // Without UIDPLUS an upload's UID is unknown: the next run finds the
    // copy by its hash instead of fetching it as new.
    let mine = b"From: me@mailbot.test\r\nSubject: up without uidplus\r\n\r\nz\r\n";
    fs::write(folder.join("new/mine"), mine).unwrap();
    let out = run(&mut plain(&["--push", "--disable-extension", "UIDPLUS"]));
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(local_messages(&folder).iter().any(|m| m.uid.is_none()));
    assert!(
        run_ok(&mut plain(&[])).is_empty(),
        "the upload came back as new"
    );
    let on_server = server.messages(&name);
    assert_eq!(on_server.iter().filter(|m| m.body == mine).count(), 1);
    assert_same(&on_server, &local_messages(&folder));
    server.logout();
}

#[test]
fn an_account_from_the_configuration_and_the_default_maildir() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let name = unique("sync-account");
    let mut server = Server::login(&rig);
    server.create(&name);
    let message = b"From: a@mailbot.test\r\nSubject: configured\r\n\r\nx\r\n";
    server.append(&name, "", message);
    let clean = || {
        let mut cmd = std::process::Command::new(sync_common::bin());
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("MAILBOT_") {
                cmd.env_remove(&var);
            }
        }
        cmd.env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_DATA_HOME", home.path().join("data"));
        cmd
    };

    // The account names the server, the CA, the password command and
    // the maildir.
    let config = home.path().join("config/mailbot/config.toml");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    fs::write(
        &config,
        format!(
            "[account.rig]\nimap = \"{}\"\nca_file = \"{}\"\npassword_command = \"printf %s '{}'\"\nmaildir = \"~/Mail/rig\"\n",
            sync_common::url(&rig),
            rig.ca.display(),
            rig.users[0].1
        ),
    )
    .unwrap();
    let mut cmd = clean();
    cmd.args(["--account", "rig", "--folder", &name]);
    let printed = run_ok(&mut cmd);
    assert_eq!(printed.len(), 1);
    assert!(
        printed[0].starts_with(home.path().join("Mail/rig").join(&name)),
        "{printed:?}"
    );
    assert_eq!(fs::read(&printed[0]).unwrap(), stored(message));

    // No maildir anywhere: $XDG_DATA_HOME/mailbot/USER@HOST.
    fs::remove_file(&config).unwrap();
    let mut cmd = clean();
    cmd.env("MAILBOT_PASSWORD", &rig.users[0].1)
        .arg(sync_common::url(&rig))
        .arg("--ca-file")
        .arg(&rig.ca)
        .args(["--folder", &name]);
    let printed = run_ok(&mut cmd);
    let default = home
        .path()
        .join("data/mailbot")
        .join(format!("{}@{}", rig.users[0].0, rig.host))
        .join(&name);
    assert_eq!(printed.len(), 1);
    assert!(printed[0].starts_with(&default), "{printed:?}");

    // No server at all: a usage error.
    let out = run(&mut clean());
    assert_eq!(code(&out), 64, "{}", describe(&out));
    server.logout();
}

#[test]
fn a_local_folder_removed_by_hand_is_fetched_again_not_expunged() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let name = unique("sync-wiped");
    let mut server = Server::login(&rig);
    server.create(&name);
    for m in generated(&name, 3) {
        server.append(&name, "", &mailbot::compose::to_crlf(&m));
    }
    let mut cmd = sync(&rig, home.path(), &maildir);
    cmd.args(["--folder", &name, "--expunge", "to-server"]);
    assert_eq!(run_ok(&mut cmd).len(), 3);
    fs::remove_dir_all(maildir.join(&name)).unwrap();
    let out = run(&mut cmd);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    assert!(String::from_utf8_lossy(&out.stderr).contains("the local folder is empty"));
    assert_same(
        &server.messages(&name),
        &local_messages(&maildir.join(&name)),
    );
    server.logout();
}

#[test]
fn a_large_message_streams_to_disk_without_growing_memory() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let name = unique("sync-large");
    let mut server = Server::login(&rig);
    server.create(&name);
    // 48 MB: far more than every buffer mail-sync has together.
    let mut big = b"From: a@mailbot.test\nSubject: large\n\n".to_vec();
    let line: Vec<u8> = (0..76u8).map(|i| b'A' + i % 26).chain(*b"\n").collect();
    while big.len() < 48 << 20 {
        big.extend_from_slice(&line);
    }
    drop_into_server(&rig, &name, &[big]);
    let mut cmd = sync(&rig, home.path(), &maildir);
    cmd.args(["--folder", &name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(text) = fs::read_to_string(&status)
            && let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_same(
        &server.messages(&name),
        &local_messages(&maildir.join(&name)),
    );
    assert!(peak_kb > 0, "no memory reading");
    assert!(peak_kb < 32 * 1024, "peak {peak_kb} kB for a 48 MB message");
    server.logout();
}

/// Runs notmuch's own CLI on the database in `maildir`.
fn notmuch(home: &Path, maildir: &Path, args: &[&str]) -> String {
    let config = home.join("notmuch-config");
    fs::write(&config, format!("[database]\npath={}\n", maildir.display())).unwrap();
    let out = std::process::Command::new("notmuch")
        .args(args)
        .env("NOTMUCH_CONFIG", &config)
        .output()
        .unwrap();
    assert!(out.status.success(), "notmuch {args:?}: {}", describe(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn sync_with_index_then_mail_index_and_notmuch_agree() {
    let Some(rig) = Rig::from_env() else { return };
    let Some(corpus) = corpus_messages() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let folder = unique("sync-index");
    let mut server = Server::login(&rig);
    server.create(&folder);
    let mut messages: Vec<Vec<u8>> = corpus.iter().step_by(7).cloned().collect();
    messages.push(
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dissect/pdf-invoice.eml"))
            .unwrap(),
    );
    drop_into_server(&rig, &folder, &messages);

    let mut cmd = sync(&rig, home.path(), &maildir);
    cmd.args(["--folder", &folder, "--index"]);
    let printed = run_ok(&mut cmd);
    assert_eq!(printed.len(), messages.len());

    let index = std::process::Command::new(env!("CARGO_BIN_EXE_mail-index"))
        .arg("--maildir")
        .arg(&maildir)
        .args(["search", "--output", "files", "attachment:pdf"])
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(code(&index), 0, "{}", describe(&index));
    let ours: BTreeSet<String> = String::from_utf8(index.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let theirs: BTreeSet<String> = notmuch(
        home.path(),
        &maildir,
        &["search", "--output=files", "attachment:pdf"],
    )
    .lines()
    .map(str::to_string)
    .collect();
    assert!(!ours.is_empty(), "the invoice has a PDF");
    assert_eq!(ours, theirs);
    // Every fetched file is in the index, tagged new, except what
    // libnotmuch does not take for mail (notmuch new skips it too).
    let listed = |query: &str| -> BTreeSet<String> {
        notmuch(home.path(), &maildir, &["search", "--output=files", query])
            .lines()
            .map(str::to_string)
            .collect()
    };
    let printed: BTreeSet<String> = printed.iter().map(|p| p.display().to_string()).collect();
    let indexed = listed("tag:new");
    assert!(indexed.is_subset(&printed));
    let skipped: Vec<&String> = printed.difference(&indexed).collect();
    assert!(skipped.len() <= 5, "{skipped:?}");
    // notmuch new on a copy of the folder takes exactly the same files.
    let copy = home.path().join("Copy");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(maildir.join(&folder))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let config = home.path().join("copy-config");
    fs::write(
        &config,
        format!("[database]\npath={}\n[new]\ntags=new\n", copy.display()),
    )
    .unwrap();
    let run_notmuch = |args: &[&str]| {
        let out = std::process::Command::new("notmuch")
            .args(args)
            .env("NOTMUCH_CONFIG", &config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", describe(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    run_notmuch(&["new", "--quiet"]);
    let names = |set: &BTreeSet<String>, root: &Path| -> BTreeSet<String> {
        set.iter()
            .map(|p| {
                Path::new(p)
                    .strip_prefix(root)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect()
    };
    let by_notmuch: BTreeSet<String> = run_notmuch(&["search", "--output=files", "*"])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        names(&by_notmuch, &copy),
        names(&indexed, &maildir.join(&folder))
    );
    // Nothing new: nothing fetched or indexed twice.
    assert!(run_ok(&mut cmd).is_empty());
    assert_eq!(listed("*"), indexed);
    server.logout();
}

/// `--push` creates a server folder for a local-only folder that holds
/// messages to upload (nested, with a non-ASCII name), and uploads them;
/// a local-only folder with nothing to upload is left alone.
#[test]
fn push_creates_server_folders_for_local_only_ones() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let top = unique("local-only");
    // Dovecot's delimiter is `.`: the local folder top/Q1 é is the
    // server folder "top.Q1 é".
    let name = format!("{top}.Q1 é");
    let folder = maildir.join(&top).join("Q1 é");
    mailbot::maildir::Maildir::create(&folder).unwrap();
    let message =
        b"From: me@mailbot.test\r\nSubject: made here\r\nMessage-ID: <local-only@mailbot.test>\r\n\r\nbody\r\n";
    fs::write(folder.join("new/made-here"), message).unwrap();
    let empty = format!("{top}-empty");
    mailbot::maildir::Maildir::create(maildir.join(&empty)).unwrap();
    let push = || {
        let mut c = sync(&rig, home.path(), &maildir);
        c.args(["--push", "--json", "--folder", &format!("{top}*")]);
        c
    };
    let out = run(&mut push());
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["uploaded"], 1, "{report}");
    let mut server = Server::login(&rig);
    let on_server = server.messages(&name);
    assert_eq!(on_server.len(), 1);
    assert!(on_server[0].body == message, "uploaded byte for byte");
    // The local file now carries the server's UID.
    let local = local_messages(&folder);
    assert_eq!(local.len(), 1);
    assert_eq!(local[0].uid, Some(on_server[0].uid));
    let (status, listed) = server.command(&format!("LIST \"\" {}", sync_common::mbox(&empty)));
    assert!(status.starts_with("OK"), "{status}");
    assert!(
        listed.is_empty(),
        "an empty local folder was created: {}",
        listed[0].line
    );
    // Again: nothing to create, nothing to upload.
    let out = run(&mut push());
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["uploaded"], 0, "{report}");
    assert_eq!(server.messages(&name).len(), 1);
    // Named exactly with --folder: created, not reported missing.
    let exact = format!("{top}-exact");
    let exact_folder = maildir.join(&exact);
    mailbot::maildir::Maildir::create(&exact_folder).unwrap();
    fs::write(exact_folder.join("new/made-here"), message).unwrap();
    let mut one = sync(&rig, home.path(), &maildir);
    one.args(["--push", "--json", "--folder", &exact]);
    let out = run(&mut one);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["uploaded"], 1, "{report}");
    assert_eq!(server.messages(&exact).len(), 1);
    // Dovecot ends a session whose selected folder is deleted.
    server.select("INBOX");
    server.delete(&exact);
    server.delete(&name);
    server.logout();
}

/// A plain `mail-sync`, then later `mail-sync --index`: the index takes
/// the first run's messages too, not only what the second fetched.
#[test]
fn index_takes_what_an_earlier_plain_run_fetched() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let name = unique("sync-index-later");
    let mut server = Server::login(&rig);
    server.create(&name);
    drop_into_server(&rig, &name, &generated(&name, 20));
    let mut plain = sync(&rig, home.path(), &maildir);
    plain.args(["--folder", &name]);
    assert_eq!(run_ok(&mut plain).len(), 20);
    drop_into_server(&rig, &name, &generated(&format!("{name}-2"), 3));
    let mut indexing = sync(&rig, home.path(), &maildir);
    indexing.args(["--folder", &name, "--index"]);
    assert_eq!(run_ok(&mut indexing).len(), 3);
    let local: BTreeSet<String> = local_messages(&maildir.join(&name))
        .iter()
        .map(|m| m.path.display().to_string())
        .collect();
    let indexed: BTreeSet<String> = notmuch(
        home.path(),
        &maildir,
        &["search", "--output=files", "tag:new"],
    )
    .lines()
    .map(str::to_string)
    .collect();
    assert_eq!(local.len(), 23);
    assert_eq!(indexed, local);
    server.logout();
}

/// `mail-sync` as bob (whose account has few folders, so every folder
/// can be synced), into `maildir`.
fn sync_as_bob(rig: &Rig, home: &Path, maildir: &Path) -> std::process::Command {
    let url = format!("imaps://{}@{}:{}", rig.users[1].0, rig.host, rig.imaps_port);
    let mut cmd = sync_common::sync_to(rig, home, maildir, &url);
    cmd.env("MAILBOT_PASSWORD", &rig.users[1].1);
    cmd
}

/// A maildir where `mail-inject --maildir ~/Mail/inbox` delivered: that
/// folder is INBOX's (its message goes up with --both, INBOX's come into
/// it), and a folder whose name maps to no server name is skipped with
/// one warning, the first time only: never exit 1 on every run.
#[test]
fn an_inbox_from_mail_inject_is_inbox_and_an_unmappable_folder_is_said_once() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let subject = unique("injected-into-inbox");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mail-inject"))
        .args([
            "-r",
            &rig.address(1),
            "-s",
            &subject,
            "--body-text",
            "local",
        ])
        .arg("--maildir")
        .arg(maildir.join("inbox"))
        .arg(rig.address(1))
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let odd = maildir.join("100%41");
    mailbot::maildir::Maildir::create(&odd).unwrap();
    fs::write(odd.join("new/by-hand"), b"Subject: by hand\n\nx\n").unwrap();

    let both = || {
        let mut c = sync_as_bob(&rig, home.path(), &maildir);
        c.arg("--both");
        c
    };
    let out = run(&mut both());
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{}", describe(&out));
    assert!(err.contains("100%41") && err.contains("said once"), "{err}");
    // INBOX is the folder mail-inject made; nothing else was made for it.
    assert!(!maildir.join("INBOX").exists());
    let inbox = local_messages(&maildir.join("inbox"));
    let mine = inbox
        .iter()
        .find(|m| String::from_utf8_lossy(&m.body).contains(&subject))
        .expect("the injected message");
    let uid = mine.uid.expect("uploaded, so named with its UID");
    let mut imap = support::Imap::connect_tls(&rig, rig.tls_trusting_rig()).unwrap();
    assert!(imap.login(&rig.users[1].0, &rig.users[1].1).unwrap());
    let on_server = imap.fetch_all("INBOX").unwrap();
    assert_eq!(
        on_server
            .iter()
            .filter(|m| String::from_utf8_lossy(m).contains(&subject))
            .count(),
        1
    );
    assert!(
        inbox.len() >= on_server.len(),
        "INBOX came into ~/Mail/inbox"
    );
    // The next runs: silent, exit 0, the odd folder still skipped.
    run_ok(&mut both());
    assert_eq!(local_messages(&odd)[0].uid, None);
    assert_eq!(local_of(&maildir.join("inbox"), uid).body, mine.body);
}

/// `-q` keeps stderr to errors and the paths still go to stdout, which is
/// why the cron lines of the README and of --help send stdout to
/// /dev/null (item 10 of the README's promises: cron stays silent).
#[test]
fn quiet_keeps_stderr_to_errors_and_the_cron_lines_drop_the_paths() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let name = unique("sync-quiet");
    let mut server = Server::login(&rig);
    server.create(&name);
    drop_into_server(&rig, &name, &generated(&name, 3));
    let mut first = sync(&rig, home.path(), &maildir);
    first.args(["--folder", &name]);
    assert_eq!(run_ok(&mut first).len(), 3);
    // A warning without -q (a state that is no state) ...
    let state = maildir.join(".mailbot/sync").join(
        mailbot::sync::state::state_path(&maildir, &name)
            .file_name()
            .unwrap(),
    );
    fs::write(&state, b"garbage").unwrap();
    drop_into_server(&rig, &name, &generated(&format!("{name}-2"), 2));
    let mut quiet = sync(&rig, home.path(), &maildir);
    quiet.args(["--folder", &name, "-q"]);
    let out = run(&mut quiet);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    // ... is not said with -q, and the new paths are on stdout.
    assert!(out.stderr.is_empty(), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    // So every cron line shown sends stdout away.
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let help = std::process::Command::new(sync_common::bin())
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for (what, text) in [("README", &readme), ("--help", &help)] {
        let quiet_lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("mail-sync") && l.contains(" -q"))
            .collect();
        assert!(!quiet_lines.is_empty(), "{what}: no cron line");
        for line in quiet_lines {
            assert!(line.trim_end().ends_with("-q >/dev/null"), "{what}: {line}");
        }
    }
    server.logout();
}

/// Sets the times of `folder`'s cur/ and new/ ten seconds back, as if
/// the last change were that old (a pass trusts only settled times).
fn age(folder: &Path) {
    let then = std::time::SystemTime::now() - Duration::from_secs(10);
    for sub in ["cur", "new"] {
        fs::File::open(folder.join(sub))
            .unwrap()
            .set_modified(then)
            .unwrap();
    }
}

/// Whether a `-vv` run left `name` alone as unchanged.
fn skipped(out: &std::process::Output, name: &str) -> bool {
    String::from_utf8_lossy(&out.stderr).contains(&format!("{name}: unchanged on both sides"))
}

/// A pass over a folder whose STATUS and directory times are as the last
/// pass left them does not select or list it, and every kind of change
/// on either side still gets seen: a flag or an expunge or a new message
/// on the server, a flag, a new file or a deletion here, and a change in
/// the same clock tick as the pass that wrote the folder.
#[test]
fn an_unchanged_folder_is_skipped_and_every_change_still_seen() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let name = unique("sync-skip");
    let mut server = Server::login(&rig);
    server.create(&name);
    let uids: Vec<u32> = generated(&name, 4)
        .iter()
        .map(|m| server.append(&name, "", &mailbot::compose::to_crlf(m)))
        .collect();
    let folder = maildir.join(&name);
    let pass = |extra: &[&str]| {
        let mut c = sync(&rig, home.path(), &maildir);
        c.args(["--folder", &name, "-vv"]).args(extra);
        let out = run(&mut c);
        assert_eq!(code(&out), 0, "{}", describe(&out));
        out
    };
    let paths = |out: &std::process::Output| -> Vec<PathBuf> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(PathBuf::from)
            .collect()
    };
    // Settled: the first pass after the times are old records the
    // folder, the next skips it.
    let settle = || {
        age(&folder);
        let out = pass(&[]);
        assert!(!skipped(&out, &name), "{}", describe(&out));
        let out = pass(&[]);
        assert!(skipped(&out, &name), "{}", describe(&out));
        assert!(paths(&out).is_empty());
    };
    let out = pass(&[]);
    assert_eq!(paths(&out).len(), 4);
    // Written in this clock tick: a local change now, within the same
    // second as the fetch, is seen (the folder is not taken as settled).
    let m = local_of(&folder, uids[0]);
    let file = m.path.file_name().unwrap().to_string_lossy().into_owned();
    let base = file.split(":2,").next().unwrap().to_string();
    fs::rename(&m.path, folder.join("cur").join(format!("{base}:2,S"))).unwrap();
    let out = pass(&[]);
    assert!(!skipped(&out, &name));
    let flags = |server: &mut Server, uid: u32| {
        let all = server.messages(&name);
        all.iter()
            .find(|m| m.uid == uid)
            .map(|m| m.flags.clone())
            .unwrap_or_default()
    };
    let f = flags(&mut server, uids[0]);
    assert!(f.contains("\\Seen"), "{f}");

    // A flag set on the server (HIGHESTMODSEQ moves).
    settle();
    server.store(&name, uids[1], "+FLAGS (\\Flagged)");
    let out = pass(&[]);
    assert!(!skipped(&out, &name));
    assert_eq!(local_of(&folder, uids[1]).flags, "F");

    // A message expunged on the server (MESSAGES drops).
    settle();
    server.expunge(&name, uids[2]);
    let out = pass(&["--expunge", "to-local"]);
    assert!(!skipped(&out, &name));
    assert!(
        local_messages(&folder)
            .iter()
            .all(|m| m.uid != Some(uids[2]))
    );

    // A new message on the server (UIDNEXT moves).
    settle();
    let new_uid = server.append(
        &name,
        "",
        &mailbot::compose::to_crlf(&generated(&name, 1)[0]),
    );
    let out = pass(&[]);
    assert!(!skipped(&out, &name));
    assert_eq!(paths(&out).len(), 1);
    assert!(
        local_messages(&folder)
            .iter()
            .any(|m| m.uid == Some(new_uid))
    );

    // A flag changed here (cur/ changes).
    settle();
    let m = local_of(&folder, uids[3]);
    let file = m.path.file_name().unwrap().to_string_lossy().into_owned();
    let base = file.split(":2,").next().unwrap().to_string();
    fs::rename(&m.path, folder.join("cur").join(format!("{base}:2,FS"))).unwrap();
    let out = pass(&[]);
    assert!(!skipped(&out, &name));
    let f = flags(&mut server, uids[3]);
    assert!(f.contains("\\Seen") && f.contains("\\Flagged"), "{f}");

    // A new local file, seen by a pull (left alone), then by --push.
    settle();
    let body = b"From: me@mailbot.test\nSubject: made here\nMessage-ID: <skip-push@mailbot.test>\n\nbody\n";
    fs::write(folder.join("new/made-here"), body).unwrap();
    let before = server.messages(&name).len();
    let out = pass(&[]);
    assert!(!skipped(&out, &name));
    // The pull left it to upload: a later --push on the settled folder
    // still uploads it.
    age(&folder);
    pass(&[]);
    let out = pass(&["--push"]);
    assert!(!skipped(&out, &name), "{}", describe(&out));
    assert_eq!(server.messages(&name).len(), before + 1);

    // A file deleted here, carried to the server with --expunge to-server.
    settle();
    let gone = local_of(&folder, uids[1]);
    fs::remove_file(&gone.path).unwrap();
    let out = pass(&["--expunge", "to-server"]);
    assert!(!skipped(&out, &name));
    assert!(server.messages(&name).iter().all(|m| m.uid != uids[1]));
    settle();
    server.logout();
}
