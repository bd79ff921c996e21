//! The schedulers' files in contrib/ run as written: the Kubernetes
//! Indexed Job's command for every completion index, and the systemd
//! template unit's ExecStart with its environment for every instance,
//! against two rigs (only the servers, paths and CA are put in for the
//! example ones). Together the shards move every mailbox exactly once.

mod migrate_common;
mod support;
mod sync_common;

use std::path::Path;
use std::process::Command;

use migrate_common::{Pair, message, write_private};
use support::describe;

fn contrib(path: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("contrib")
            .join(path),
    )
    .unwrap()
}

/// The users file of the test: users 1-4 of both rigs, with passwords.
fn users(pair: &Pair) -> std::path::PathBuf {
    let path = pair.home.path().join("users.csv");
    let mut text =
        String::from("source_user,destination_user,source_password,destination_password\n");
    for n in 1..=4 {
        let (su, sp) = Pair::user(&pair.source, n);
        let (du, dp) = Pair::user(&pair.destination, n);
        text.push_str(&format!("{su},{du},{sp},{dp}\n"));
    }
    write_private(&path, &text);
    path
}

fn fill(pair: &Pair, tag: &str) {
    for n in 1..=4 {
        let mut s = pair.src_login(n);
        for i in 0..3 {
            s.append(
                "INBOX",
                "\\Seen",
                &message(&format!("{tag}.{n}.{i}@x"), tag, 900),
            );
        }
    }
}

fn clean(cmd: &mut Command, pair: &Pair) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MAILBOT_") {
            cmd.env_remove(&name);
        }
    }
    cmd.env("HOME", pair.home.path())
        .env("MAILBOT_CA_FILE", &pair.ca);
}

#[test]
fn the_kubernetes_job_and_the_systemd_template_move_every_shard() {
    if !migrate_common::rigs_wanted() {
        return;
    }
    let pair = Pair::start("mig-contrib");
    let csv = users(&pair);
    let bin_dir = migrate_common::bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    // Kubernetes: the container's shell command, once per index.
    let job = contrib("kubernetes/mail-migrate-job.yaml");
    let completions: u32 = job
        .lines()
        .find_map(|l| l.trim().strip_prefix("completions:"))
        .and_then(|v| v.split('#').next())
        .and_then(|v| v.trim().parse().ok())
        .expect("completions");
    let args: String = {
        let start = job.find("- >-").expect("the folded command");
        job[start + 4..]
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("              "))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(
        args.contains(&format!("--shard \"$JOB_COMPLETION_INDEX/{completions}\"")),
        "{args}"
    );
    let state = pair.home.path().join("k8s-state");
    let script = args
        .replace("/etc/mail-migrate/users.csv", csv.to_str().unwrap())
        .replace("imaps://old-imap.example.org", &pair.source_url())
        .replace("imaps://new-imap.example.org", &pair.destination_url())
        .replace("/var/lib/mail-migrate", state.to_str().unwrap());
    fill(&pair, "k8s");
    let mut moved = Vec::new();
    for index in 0..completions {
        let mut cmd = Command::new("/bin/sh");
        clean(&mut cmd, &pair);
        let out = cmd
            .args(["-c", &script])
            .env("PATH", &path)
            .env("JOB_COMPLETION_INDEX", index.to_string())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "index {index}: {}",
            describe(&out)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(r["copied"], 3, "{r}");
            moved.push(r["mailbox"].as_str().unwrap().to_string());
        }
    }
    moved.sort();
    assert_eq!(moved, ["alice", "bob", "user3", "user4"]);

    // systemd: ExecStart with the unit's environment, %I and %S filled in
    // as systemd would for mail-migrate@I-4.
    let unit = contrib("systemd/mail-migrate@.service");
    let unit_dir = tempfile::tempdir().unwrap();
    let state = pair.home.path().join("systemd-state");
    let env_file = pair.home.path().join("migrate.env");
    std::fs::write(
        &env_file,
        format!(
            "MAILBOT_MIGRATE_FROM={}\nMAILBOT_MIGRATE_TO={}\n",
            pair.source_url(),
            pair.destination_url()
        ),
    )
    .unwrap();
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        let fake = unit_dir.path().join("mail-migrate@.service");
        std::fs::write(
            &fake,
            unit.replace(
                "/usr/bin/mail-migrate",
                migrate_common::bin().to_str().unwrap(),
            )
            .replace("/etc/mail-migrate/migrate.env", env_file.to_str().unwrap()),
        )
        .unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(unit_dir.path().join("mail-migrate@0-4.service"))
            .env(
                "SYSTEMD_UNIT_PATH",
                format!("{}:", unit_dir.path().display()),
            )
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !err.contains("mail-migrate@"),
            "systemd-analyze verify: {}",
            describe(&out)
        );
    }
    fill(&pair, "systemd");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let mut parts = exec.split_whitespace();
    assert_eq!(parts.next(), Some("/usr/bin/mail-migrate"));
    let exec_args: Vec<&str> = parts.collect();
    let mut moved = Vec::new();
    for shard in 0..4 {
        let mut cmd = Command::new(migrate_common::bin());
        clean(&mut cmd, &pair);
        for line in std::fs::read_to_string(&env_file).unwrap().lines() {
            let (k, v) = line.split_once('=').unwrap();
            cmd.env(k, v);
        }
        for line in unit.lines().filter_map(|l| l.strip_prefix("Environment=")) {
            let (k, v) = line.split_once('=').unwrap();
            let v = v
                .replace("%I", &format!("{shard}/4"))
                .replace("%S", state.to_str().unwrap())
                .replace("/etc/mail-migrate/users.csv", csv.to_str().unwrap());
            cmd.env(k, v);
        }
        let out = cmd.args(&exec_args).arg("--json").output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "shard {shard}: {}",
            describe(&out)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            // Its own state: the k8s messages are found, the new ones copied.
            assert_eq!(
                (r["copied"].as_u64(), r["found"].as_u64()),
                (Some(3), Some(3)),
                "{r}"
            );
            moved.push(r["mailbox"].as_str().unwrap().to_string());
        }
    }
    moved.sort();
    assert_eq!(moved, ["alice", "bob", "user3", "user4"]);
    for n in 1..=4 {
        assert_eq!(pair.dst_login(n).messages("INBOX").len(), 6, "user {n}");
    }
}
