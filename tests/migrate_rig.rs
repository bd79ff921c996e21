//! mail-migrate against two real rigs (source and destination, each a
//! scripts/mailserver of the test's own): three mailboxes with nested,
//! non-ASCII and special-use folders, flags, keywords, old INTERNALDATEs,
//! 8-bit, malformed and Message-ID-less messages moved and verified
//! equal; a second pass that copies nothing; changes between passes;
//! a message the destination refuses; a wrong password for one user;
//! master-user logins; shards; GNU parallel with local workers.

mod migrate_common;
mod support;
mod sync_common;

use std::collections::BTreeSet;

use migrate_common::{
    Pair, code, folders, json_lines, message, run, snapshot, subscribed, write_private,
};
use support::describe;
use sync_common::Server;

const OLD: &str = "14-Mar-1999 08:30:00 -0500";

/// The source folders of every mailbox and where they must land.
const FOLDERS: [(&str, &str); 6] = [
    ("INBOX", "INBOX"),
    ("INBOX.Sent Items", "Sent"),
    ("INBOX.Deleted Items", "Trash"),
    ("INBOX.Re\u{e7}us", "Re\u{e7}us"),
    ("INBOX.Re\u{e7}us.Factures 2024", "Re\u{e7}us/Factures 2024"),
    ("INBOX.\u{65e5}\u{672c}\u{8a9e}", "\u{65e5}\u{672c}\u{8a9e}"),
];

/// Fills source user `n` with messages of every awkward kind.
fn fill(s: &mut Server, n: usize) {
    for (f, _) in &FOLDERS[1..] {
        s.create(f);
    }
    s.command(&format!(
        "SUBSCRIBE {}",
        sync_common::mbox("INBOX.Re\u{e7}us")
    ));
    let flags = [
        "\\Seen",
        "\\Flagged $Label1",
        "",
        "\\Answered \\Seen NonJunk",
        "\\Draft",
    ];
    let mut k = 0;
    for (f, _) in &FOLDERS {
        for i in 0..6 {
            k += 1;
            let m = message(
                &format!("u{n}.{k}@old.example"),
                &format!("{f} {i}"),
                500 + 700 * i,
            );
            let date = (i % 2 == 0).then_some(OLD);
            s.append_at(f, flags[i % flags.len()], date, &m);
        }
    }
    // 8-bit headers and body, no Message-ID, bare LF line ends, no body.
    s.append_at(
        "INBOX",
        "",
        Some(OLD),
        b"Subject: caf\xe9 \xff\r\nFrom: x\r\n\r\nbody \xe9\xe8\r\n",
    );
    s.append_at(
        "INBOX",
        "\\Seen",
        None,
        b"Subject: bare LF\nMessage-ID: <lf@x>\n\nline one\nline two\n",
    );
    s.append_at("INBOX", "", None, b"Subject: header only, no blank line");
    // Two different messages with the same Message-ID and size: only a
    // hash tells them apart.
    s.append_at(
        "INBOX",
        "",
        None,
        b"Message-ID: <twin@x>\r\nSubject: A\r\n\r\nbody one\r\n",
    );
    s.append_at(
        "INBOX",
        "",
        None,
        b"Message-ID: <twin@x>\r\nSubject: B\r\n\r\nbody two\r\n",
    );
}

/// Every source folder of user `s` is equal to its destination folder of
/// user `d`: bytes, flags, INTERNALDATE, as multisets.
fn assert_moved(pair: &Pair, s: usize, d: usize) {
    let mut src = pair.src_login(s);
    let mut dst = pair.dst_login(d);
    let dst_folders: BTreeSet<String> = folders(&mut dst).into_iter().collect();
    for (from, to) in FOLDERS {
        assert!(
            dst_folders.contains(to),
            "user {d}: no {to:?} in {dst_folders:?}"
        );
        let a = snapshot(&mut src, from);
        let b = snapshot(&mut dst, to);
        assert!(!a.is_empty(), "{from}: nothing to compare");
        assert_eq!(a, b, "user {s} -> {d}: {from} -> {to} differ");
    }
    assert!(
        subscribed(&mut dst).contains(&"Re\u{e7}us".to_string()),
        "subscription not carried"
    );
}

fn prepare(name: &str) -> Option<Pair> {
    if !migrate_common::rigs_wanted() {
        return None;
    }
    let pair = Pair::start(name);
    for n in 1..=4 {
        let mut d = pair.dst_login(n);
        d.create("Sent");
        d.create("Trash");
    }
    Some(pair)
}

#[test]
fn three_mailboxes_move_whole_and_passes_after_move_only_changes() {
    let Some(pair) = prepare("mig-move") else {
        return;
    };
    for n in 1..=3 {
        fill(&mut pair.src_login(n), n);
    }
    // user3 goes to user4 on the destination.
    let rows = [(1, 1), (2, 2), (3, 4)];
    let out = run(pair.migrate_users(&rows).args(["--jobs", "2", "--json"]));
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(out.stderr.is_empty(), "silent: {}", describe(&out));
    let reports = json_lines(&out);
    assert_eq!(reports.len(), 3);
    for r in &reports {
        assert_eq!(r["copied"], 41, "{r}");
        assert_eq!(r["exit"], 0);
    }
    for (s, d) in rows {
        assert_moved(&pair, s, d);
    }
    let verify = run(pair.migrate_users(&rows).args(["--verify", "--json"]));
    assert_eq!(code(&verify), 0, "{}", describe(&verify));
    assert!(json_lines(&verify).iter().all(|v| v["equal"] == true));
    assert!(
        String::from_utf8_lossy(&verify.stderr)
            .contains("3 mailboxes, 18 folders, 123 messages: all equal"),
        "{}",
        describe(&verify)
    );

    // A second pass copies nothing and touches nothing.
    let again = run(pair.migrate_users(&rows).arg("--json"));
    assert_eq!(code(&again), 0, "{}", describe(&again));
    for r in json_lines(&again) {
        assert_eq!(
            (r["copied"].as_u64(), r["flags_updated"].as_u64()),
            (Some(0), Some(0)),
            "{r}"
        );
        assert!(
            r["folders"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f["unchanged"] == true),
            "{r}"
        );
    }

    // Changes on the source between passes arrive.
    let mut s1 = pair.src_login(1);
    s1.append_at(
        "INBOX.Re\u{e7}us",
        "\\Seen",
        Some(OLD),
        &message("late@x", "late", 3000),
    );
    let inbox = s1.messages("INBOX");
    s1.store("INBOX", inbox[2].uid, "+FLAGS.SILENT (\\Flagged $Label2)");
    s1.store("INBOX", inbox[0].uid, "-FLAGS.SILENT (\\Seen)");
    let mut s2 = pair.src_login(2);
    let gone = s2.messages("INBOX")[1].clone();
    s2.expunge("INBOX", gone.uid);
    let out = run(pair.migrate_users(&rows).arg("--json"));
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let r = json_lines(&out);
    assert_eq!(
        (r[0]["copied"].as_u64(), r[0]["flags_updated"].as_u64()),
        (Some(1), Some(2)),
        "{}",
        r[0]
    );
    assert_moved(&pair, 1, 1);
    // Without --delete the destination keeps what the source expunged.
    let kept = pair.dst_login(2).messages("INBOX").len();
    assert_eq!(kept, 11);
    let out = run(pair.migrate_users(&rows).args(["--delete", "--json"]));
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(json_lines(&out)[1]["deleted"], 1);
    assert_moved(&pair, 2, 2);

    // --verify notices a message removed on the destination; a pass
    // brings it back.
    let mut d3 = pair.dst_login(4);
    let victim = d3.messages("Re\u{e7}us/Factures 2024")[3].uid;
    d3.expunge("Re\u{e7}us/Factures 2024", victim);
    let verify = run(pair.migrate_users(&rows).args(["--verify", "--json"]));
    assert_eq!(code(&verify), 1, "{}", describe(&verify));
    let verdicts = json_lines(&verify);
    let bad: Vec<&serde_json::Value> = verdicts.iter().filter(|v| v["equal"] == false).collect();
    assert_eq!(bad.len(), 1, "{verdicts:?}");
    assert_eq!(bad[0]["mailbox"], "user3");
    let folder = bad[0]["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["equal"] == false)
        .unwrap();
    assert_eq!(
        (folder["destination"].as_str(), folder["missing"].as_u64()),
        (Some("Re\u{e7}us/Factures 2024"), Some(1))
    );
    assert!(String::from_utf8_lossy(&verify.stderr).contains("1 of 3 mailboxes differ: user3"));
    let out = run(&mut pair.migrate_users(&rows));
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_moved(&pair, 3, 4);
    let verify = run(pair.migrate_users(&rows).arg("--verify"));
    assert_eq!(code(&verify), 0, "{}", describe(&verify));
}

#[test]
fn a_message_too_big_for_the_destination_is_named_and_the_rest_moves() {
    let Some(pair) = prepare("mig-big") else {
        return;
    };
    let mut s = pair.src_login(1);
    for i in 0..30 {
        s.append(
            "INBOX",
            "\\Seen",
            &message(&format!("m{i}@x"), "small", 2000),
        );
    }
    let big = message("big@x", "too big", 1_500_000);
    s.append("INBOX", "", &big);
    for i in 30..40 {
        s.append("INBOX", "", &message(&format!("m{i}@x"), "after", 2000));
    }
    let out = run(&mut pair.migrate_users(&[(1, 1)]));
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("alice: INBOX: UID 31 (")
            && err.contains("<big@x>")
            && err.contains("[LIMIT]"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let on_dst = pair.dst_login(1).messages("INBOX");
    assert_eq!(on_dst.len(), 40);
    assert!(on_dst.iter().all(|m| m.body != big));
    // The next pass tries it again and says so again; nothing else moves.
    let out = run(pair.migrate_users(&[(1, 1)]).arg("--json"));
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let r = &json_lines(&out)[0];
    assert_eq!(
        (r["copied"].as_u64(), r["failed"].as_u64()),
        (Some(0), Some(1)),
        "{r}"
    );
    // The same one message by one, without MULTIAPPEND and LITERAL+.
    let out = run(pair.migrate_users(&[(1, 1)]).args([
        "--disable-extension",
        "MULTIAPPEND,LITERAL+",
        "--json",
    ]));
    assert_eq!(code(&out), 1, "{}", describe(&out));
    assert_eq!(json_lines(&out)[0]["failed"], 1);
    assert_eq!(pair.dst_login(1).messages("INBOX").len(), 40);
}

#[test]
fn a_wrong_password_fails_that_user_only() {
    let Some(pair) = prepare("mig-auth") else {
        return;
    };
    for n in 1..=3 {
        let mut s = pair.src_login(n);
        for i in 0..5 {
            s.append("INBOX", "", &message(&format!("a{n}.{i}@x"), "hi", 1000));
        }
    }
    let path = pair.home.path().join("wrong.csv");
    let mut text = String::from("source_user,source_password,destination_password\n");
    for n in 1..=3 {
        let (u, p) = Pair::user(&pair.source, n);
        let (_, dp) = Pair::user(&pair.destination, n);
        let p = if n == 2 { "wrong".to_string() } else { p };
        text.push_str(&format!("{u},{p},{dp}\n"));
    }
    write_private(&path, &text);
    let users = |cmd: &mut std::process::Command| {
        cmd.arg("--users")
            .arg(&path)
            .arg("--from")
            .arg(pair.source_url())
            .arg("--to")
            .arg(pair.destination_url());
    };
    let mut cmd = pair.migrate();
    users(&mut cmd);
    let out = run(cmd.args(["--jobs", "3"]));
    assert_eq!(code(&out), 1, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("mail-migrate: bob: ") && err.contains("authentication failed"),
        "{err}"
    );
    assert!(!err.contains("wrong"), "a password on stderr: {err}");
    assert_eq!(pair.dst_login(1).messages("INBOX").len(), 5);
    assert_eq!(pair.dst_login(3).messages("INBOX").len(), 5);
    assert_eq!(pair.dst_login(2).messages("INBOX").len(), 0);
    // Every user failing the same way gives that way's code.
    let mut cmd = pair.migrate();
    users(&mut cmd);
    std::fs::write(
        &path,
        text.replace("alice,", "nobody,")
            .replace("user3,", "nobody3,"),
    )
    .unwrap();
    let out = run(&mut cmd);
    assert_eq!(code(&out), 77, "{}", describe(&out));
    // A users file with passwords that others can read is refused.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let mut cmd = pair.migrate();
    users(&mut cmd);
    let out = run(&mut cmd);
    assert_eq!(code(&out), 78, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chmod 600"),
        "{}",
        describe(&out)
    );
}

#[test]
fn master_users_shards_and_gnu_parallel() {
    let Some(pair) = prepare("mig-admin") else {
        return;
    };
    for n in 1..=4 {
        let mut s = pair.src_login(n);
        for i in 0..4 {
            s.append(
                "INBOX",
                "\\Seen",
                &message(&format!("p{n}.{i}@x"), "hi", 800),
            );
        }
    }
    let path = pair.home.path().join("names.csv");
    std::fs::write(
        &path,
        "source_user,destination_user\nalice,alice\nbob,bob\nuser3,user3\nuser4,user4\n",
    )
    .unwrap();
    let admin = |cmd: &mut std::process::Command| {
        cmd.arg("--from")
            .arg(pair.source_url())
            .arg("--to")
            .arg(pair.destination_url())
            .args([
                "--from-master",
                "master",
                "--to-master",
                "master",
                "--to-master-separator",
                "*",
            ])
            .env(
                "MAILBOT_MIGRATE_FROM_MASTER_PASSWORD",
                pair.source.var("MAILBOT_TEST_MASTER_PASS"),
            )
            .env(
                "MAILBOT_MIGRATE_TO_MASTER_PASSWORD",
                pair.destination.var("MAILBOT_TEST_MASTER_PASS"),
            );
    };
    // Shards: every user in exactly one of three, the same on a rerun.
    let mut seen = Vec::new();
    for i in 0..3 {
        let mut cmd = pair.migrate();
        admin(&mut cmd);
        let out = run(cmd.arg("--users").arg(&path).args([
            "--plan",
            "--json",
            "--shard",
            &format!("{i}/3"),
        ]));
        assert_eq!(code(&out), 0, "{}", describe(&out));
        let names: Vec<String> = json_lines(&out)
            .iter()
            .map(|p| p["mailbox"].as_str().unwrap().to_string())
            .collect();
        for p in json_lines(&out) {
            assert_eq!(p["messages"], 4, "{p}");
        }
        let mut cmd = pair.migrate();
        admin(&mut cmd);
        let again = run(cmd.arg("--users").arg(&path).args([
            "--plan",
            "--json",
            "--shard",
            &format!("{i}/3"),
        ]));
        let names_again: Vec<String> = json_lines(&again)
            .iter()
            .map(|p| p["mailbox"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, names_again);
        seen.extend(names);
    }
    seen.sort();
    assert_eq!(seen, ["alice", "bob", "user3", "user4"]);
    // SASL PLAIN as master on the source, LOGIN user*master on the
    // destination, two mailboxes per GNU parallel job from stdin.
    if std::process::Command::new("parallel")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("GNU parallel is missing (scripts/test installs it)");
    }
    let mut cmd = std::process::Command::new("parallel");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MAILBOT_") {
            cmd.env_remove(&name);
        }
    }
    cmd.env("HOME", pair.home.path())
        .env("XDG_STATE_HOME", pair.home.path().join("state"))
        .args([
            "--will-cite",
            "-q",
            "--pipe",
            "--header",
            ":",
            "-N",
            "2",
            "--jobs",
            "2",
        ])
        .arg(migrate_common::bin())
        .args(["--users", "-", "--ca-file"])
        .arg(&pair.ca);
    admin(&mut cmd);
    cmd.stdin(std::fs::File::open(&path).unwrap());
    let out = run(&mut cmd);
    assert_eq!(code(&out), 0, "{}", describe(&out));
    for n in 1..=4 {
        assert_eq!(pair.dst_login(n).messages("INBOX").len(), 4, "user {n}");
    }
    let mut cmd = pair.migrate();
    admin(&mut cmd);
    let verify = run(cmd.arg("--users").arg(&path).arg("--verify"));
    assert_eq!(code(&verify), 0, "{}", describe(&verify));
}
