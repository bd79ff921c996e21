//! mail-sync when things go wrong: killed (-9) at random moments of a
//! large sync, the connection cut in the middle of a FETCH by a proxy in
//! front of the real Dovecot (the one fault the server will not produce
//! on demand), a corrupt state file, a torn message file, a reader of the
//! paths that went away, and an `--index` run killed before it indexed.
//! After each, the next run must end with the local folder equal to the
//! server's (nothing lost, nothing twice), every local file printed by
//! some run, and every one indexed.

mod support;
mod sync_common;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use support::{Rig, Rng};
use sync_common::{
    Server, assert_same, code, describe, drop_into_server, drop_into_server_with_flags, generated,
    local_messages, run, run_ok, sha256, stored, sync, unique,
};

/// What is local is a subset of the server: every file is the server's
/// message for the UID its name carries, each UID once.
fn assert_subset(server: &HashMap<u32, String>, folder: &Path, round: usize) {
    let mut seen = std::collections::BTreeSet::new();
    for m in local_messages(folder) {
        let uid = m
            .uid
            .unwrap_or_else(|| panic!("round {round}: no UID in {}", m.path.display()));
        assert!(seen.insert(uid), "round {round}: UID {uid} twice");
        assert_eq!(
            server.get(&uid),
            Some(&sha256(&m.body)),
            "round {round}: {} is not the server's UID {uid}",
            m.path.display()
        );
    }
}

/// Kills a sync at ten random moments (seed printed), then lets one run
/// to its end: the folder ends equal to the server, and the paths printed
/// by all the runs together name every local file (each killed run's
/// stdout read to its end), since a run reports again what a killed one
/// placed after its last state.
#[test]
fn killed_at_ten_random_moments_a_large_sync_ends_equal_to_the_server() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let name = unique("sync-kill");
    let mut server = Server::login(&rig);
    server.create(&name);
    let total = 2000;
    let messages: Vec<(Vec<u8>, &str)> = generated(&name, total)
        .into_iter()
        .enumerate()
        .map(|(i, m)| (m, ["", "S", "", "FS", "", "R"][i % 6]))
        .collect();
    drop_into_server_with_flags(&rig, &name, &messages);
    let on_server: HashMap<u32, String> = server
        .messages(&name)
        .iter()
        .map(|m| (m.uid, sha256(&stored(&m.body))))
        .collect();
    assert_eq!(on_server.len(), total);
    let folder = maildir.join(&name);
    let mut rng = Rng::new();
    let mut printed: HashSet<String> = HashSet::new();

    for round in 0..10 {
        let have = local_messages(&folder).len();
        let mut cmd = sync(&rig, home.path(), &maildir);
        cmd.args(["--folder", &name])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        if rng.below(3) == 0 || have == total {
            // At a moment in time: often before or during the login,
            // the LIST, the SELECT.
            std::thread::sleep(Duration::from_millis(rng.below(400)));
        } else {
            // After some messages arrived (the reader lags, so the
            // process is somewhere further on: writing, renaming, at a
            // checkpoint).
            let wait_for = 1 + rng.below((total - have) as u64 / 3);
            for _ in 0..wait_for {
                line.clear();
                if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                printed.insert(line.trim_end().to_string());
            }
            std::thread::sleep(Duration::from_micros(rng.below(5000)));
        }
        let _ = child.kill();
        let _ = child.wait();
        // What it wrote before it died is still in the pipe.
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        printed.extend(rest.lines().map(str::to_string));
        assert_subset(&on_server, &folder, round);
    }

    // The run after the last kill completes the folder.
    let mut cmd = sync(&rig, home.path(), &maildir);
    cmd.args(["--folder", &name]);
    let out = run(&mut cmd);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    printed.extend(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string),
    );
    let server_now = server.messages(&name);
    let local = local_messages(&folder);
    assert_same(&server_now, &local);
    // At least once: every local file was printed by some run.
    let never: Vec<String> = local
        .iter()
        .map(|m| m.path.display().to_string())
        .filter(|p| !printed.contains(p))
        .collect();
    assert!(
        never.is_empty(),
        "{} files never printed: {never:?}",
        never.len()
    );
    // Flags arrived with the messages.
    for m in &local {
        let s = server_now.iter().find(|s| Some(s.uid) == m.uid).unwrap();
        assert_eq!(
            m.flags.contains('S'),
            s.flags.contains("\\Seen"),
            "{}",
            m.path.display()
        );
        assert_eq!(
            m.flags.contains('F'),
            s.flags.contains("\\Flagged"),
            "{}",
            m.path.display()
        );
    }
    // Nothing left behind in tmp/.
    assert_eq!(fs::read_dir(folder.join("tmp")).unwrap().count(), 0);
    // And a run after that has nothing to do.
    let mut again = sync(&rig, home.path(), &maildir);
    again.args(["--folder", &name]);
    assert!(run_ok(&mut again).is_empty());
    server.logout();
}

/// A byte relay to the rig's IMAPS port that passes the TLS stream
/// through untouched, and cuts both sides once `cut_after` bytes came
/// from the server: a connection lost in the middle of a FETCH.
fn cutting_proxy(rig: &Rig, cut_after: usize) -> u16 {
    proxy(rig, move |_| cut_after)
}

/// The relay behind [`cutting_proxy`]; `cut` gives the byte limit for
/// the n-th connection (from 0).
fn proxy(rig: &Rig, cut: impl Fn(usize) -> usize + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = (rig.host.clone(), rig.imaps_port);
    std::thread::spawn(move || {
        for (n, client) in listener.incoming().flatten().enumerate() {
            let cut_after = cut(n);
            let Ok(server) = TcpStream::connect((target.0.as_str(), target.1)) else {
                continue;
            };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = c_in.read(&mut buf) {
                    if n == 0 || s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                let mut passed = 0;
                while let Ok(n) = s_in.read(&mut buf) {
                    let n = n.min(cut_after - passed);
                    if n == 0 || c_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    passed += n;
                }
                let _ = c_out.shutdown(Shutdown::Both);
                let _ = s_in.shutdown(Shutdown::Both);
            });
        }
    });
    port
}

#[test]
fn a_connection_cut_mid_fetch_is_75_and_the_next_run_completes() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let name = unique("sync-cut");
    let mut server = Server::login(&rig);
    server.create(&name);
    // About 2.8 MB; the cut comes after 1 MB.
    drop_into_server(&rig, &name, &generated(&name, 60));
    let port = cutting_proxy(&rig, 1_000_000);
    // Through the proxy: the certificate names localhost.
    let proxied = format!("imaps://{}@localhost:{port}", rig.users[0].0);
    let mut cut = sync_common::sync_to(&rig, home.path(), &maildir, &proxied);
    cut.args(["--folder", &name]);
    let out = run(&mut cut);
    assert_eq!(code(&out), 75, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("mail-sync: imaps://localhost:{port}: connection")),
        "{err}"
    );
    let folder = maildir.join(&name);
    let partial = local_messages(&folder).len();
    assert!(
        partial > 0 && partial < 60,
        "{partial} messages before the cut"
    );
    // What was printed is what arrived.
    let printed = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(printed, partial);

    let mut cmd = sync(&rig, home.path(), &maildir);
    cmd.args(["--folder", &name]);
    let rest = run_ok(&mut cmd);
    assert_eq!(rest.len(), 60 - partial, "only what was missing is fetched");
    assert_same(&server.messages(&name), &local_messages(&folder));
    assert_eq!(fs::read_dir(folder.join("tmp")).unwrap().count(), 0);
    server.logout();
}

#[test]
fn a_corrupt_state_and_a_torn_file_are_repaired_from_the_names() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let name = unique("sync-corrupt");
    let mut server = Server::login(&rig);
    server.create(&name);
    drop_into_server(&rig, &name, &generated(&name, 30));
    let base = || {
        let mut c = sync(&rig, home.path(), &maildir);
        c.args(["--folder", &name]);
        c
    };
    assert_eq!(run_ok(&mut base()).len(), 30);
    let folder = maildir.join(&name);
    let state = fs::read_dir(maildir.join(".mailbot/sync"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("sync-corrupt"))
        .expect("a state file");
    let text = fs::read_to_string(&state).unwrap();

    // Cut in half: the state is rebuilt from the names, nothing fetched.
    fs::write(&state, &text[..text.len() / 2]).unwrap();
    let out = run(&mut base());
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(out.stdout.is_empty(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("corrupt sync state"),
        "{}",
        describe(&out)
    );
    assert_same(&server.messages(&name), &local_messages(&folder));

    // A file shorter than its name says (a torn write) and garbage for a
    // state: that one message comes again, once.
    let victim = local_messages(&folder).remove(7);
    fs::write(&victim.path, &victim.body[..victim.body.len() / 3]).unwrap();
    fs::write(&state, b"\x00\xffnot a state").unwrap();
    let out = run(&mut base());
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let printed: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(printed.len(), 1, "{}", describe(&out));
    assert!(printed[0].contains(&format!(",U={},", victim.uid.unwrap())));
    assert_same(&server.messages(&name), &local_messages(&folder));
    assert!(run_ok(&mut base()).is_empty());
    server.logout();
}

#[test]
fn a_helper_connection_that_fails_leaves_its_share_to_the_main_one() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let name = unique("sync-helper");
    let mut server = Server::login(&rig);
    server.create(&name);
    drop_into_server(&rig, &name, &generated(&name, 300));
    // The first connection passes; every later one is closed at once.
    let port = proxy(&rig, |n| if n == 0 { usize::MAX } else { 0 });
    let proxied = format!("imaps://{}@localhost:{port}", rig.users[0].0);
    let mut cmd = sync_common::sync_to(&rig, home.path(), &maildir, &proxied);
    cmd.args(["--folder", &name, "--connections", "2"]);
    let printed = run_ok(&mut cmd);
    assert_eq!(printed.len(), 300);
    assert_same(
        &server.messages(&name),
        &local_messages(&maildir.join(&name)),
    );
    server.logout();
}

/// A reader that went away (a closed pipe, `| head -1`): the sync stops
/// after the message it could not report, quietly with 0, and the next
/// run reports that one and fetches the rest; nothing is placed that no
/// run reports.
#[test]
fn a_reader_that_went_away_stops_the_sync_and_the_next_run_reports_the_rest() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let name = unique("sync-epipe");
    let mut server = Server::login(&rig);
    server.create(&name);
    drop_into_server(&rig, &name, &generated(&name, 300));
    let folder = maildir.join(&name);
    // stdout is a pipe whose reader is already closed.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = sync(&rig, home.path(), &maildir);
    cmd.args(["--folder", &name]).stdout(Stdio::from(writer));
    let out = cmd.output().unwrap();
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(out.stderr.is_empty(), "{}", describe(&out));
    let placed = local_messages(&folder).len();
    assert!(
        (1..300).contains(&placed),
        "{placed} placed after the reader left"
    );
    let mut again = sync(&rig, home.path(), &maildir);
    again.args(["--folder", &name]);
    let printed: HashSet<String> = run_ok(&mut again)
        .into_iter()
        .map(|p| p.display().to_string())
        .collect();
    let local = local_messages(&folder);
    assert_same(&server.messages(&name), &local);
    for m in &local {
        assert!(
            printed.contains(&m.path.display().to_string()),
            "{}",
            m.path.display()
        );
    }
    server.logout();
}

/// `mail-sync --index` killed while it fetches (before it indexes): the
/// next `mail-sync --index` indexes what the killed run fetched too.
#[test]
fn what_a_killed_index_run_fetched_is_indexed_by_the_next() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Mail");
    let name = unique("sync-index-kill");
    let mut server = Server::login(&rig);
    server.create(&name);
    drop_into_server(&rig, &name, &generated(&name, 400));
    let folder = maildir.join(&name);
    let mut cmd = sync(&rig, home.path(), &maildir);
    cmd.args(["--folder", &name, "--index"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    // Some messages are in; indexing comes only after the last one.
    for _ in 0..50 {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "ended early");
    }
    let _ = child.kill();
    let _ = child.wait();
    let fetched = local_messages(&folder).len();
    assert!((50..400).contains(&fetched), "{fetched}");

    let mut again = sync(&rig, home.path(), &maildir);
    again.args(["--folder", &name, "--index"]);
    let out = run(&mut again);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let local: HashSet<String> = local_messages(&folder)
        .iter()
        .map(|m| m.path.display().to_string())
        .collect();
    assert_eq!(local.len(), 400);
    let indexed = index_files(home.path(), &maildir, "tag:new");
    let missing = local.difference(&indexed).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} local files not indexed as new",
        local.len()
    );
    assert_eq!(indexed.len(), local.len());
    server.logout();
}

/// The files the index of `maildir` lists for `query` (through mail-index).
fn index_files(home: &Path, maildir: &Path, query: &str) -> HashSet<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mail-index"))
        .arg("--maildir")
        .arg(maildir)
        .args(["search", "--output", "files", query])
        .env("HOME", home)
        .env_remove("MAILBOT_MAILDIR")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", describe(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}
