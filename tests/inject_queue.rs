//! The outbox against a real server that goes away: with its own rig
//! (so the shared one is not disturbed), the server is stopped, the
//! message is queued with exit 75, the server comes back and `--flush`
//! delivers it exactly once.

mod inject_common;
mod support;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use inject_common::{code, describe, inject, messages_containing, run, unique};

/// A rig of scripts/mailserver in its own folder, stopped when dropped.
struct OwnRig {
    dir: PathBuf,
    _keep: tempfile::TempDir,
    vars: HashMap<String, String>,
}

fn mailserver(args: &[&str]) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mailserver");
    let mut cmd = Command::new(script);
    // Ports of the shared rig must not be reused for this one.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MAILBOT_TEST_") {
            cmd.env_remove(&name);
        }
    }
    cmd.args(args).output().expect("run scripts/mailserver")
}

impl OwnRig {
    fn start() -> OwnRig {
        let keep = tempfile::Builder::new()
            .prefix("inject-queue-rig.")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(keep.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = keep.path().join("rig");
        let mut rig = OwnRig {
            dir,
            _keep: keep,
            vars: HashMap::new(),
        };
        rig.up();
        let env = mailserver(&["env", rig.dir.to_str().unwrap()]);
        for line in String::from_utf8_lossy(&env.stdout).lines() {
            if let Some((name, value)) =
                line.strip_prefix("export ").and_then(|l| l.split_once('='))
            {
                rig.vars
                    .insert(name.to_string(), value.trim_matches('\'').to_string());
            }
        }
        rig
    }

    fn up(&self) {
        let out = mailserver(&["start", self.dir.to_str().unwrap()]);
        assert!(out.status.success(), "mailserver start: {}", describe(&out));
    }

    fn down(&self) {
        let out = mailserver(&["stop", self.dir.to_str().unwrap()]);
        assert!(out.status.success(), "mailserver stop: {}", describe(&out));
    }

    fn var(&self, name: &str) -> &str {
        self.vars
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing"))
    }
}

impl Drop for OwnRig {
    fn drop(&mut self) {
        let _ = mailserver(&["stop", self.dir.to_str().unwrap()]);
    }
}

#[test]
fn stopped_server_queues_with_75_and_flush_delivers_exactly_once() {
    // Runs where the shared rig runs (scripts/test): it needs root and
    // the Postfix and Dovecot packages that starting a rig installs.
    if support::Rig::from_env().is_none() {
        return;
    }
    let rig = OwnRig::start();
    let home = tempfile::tempdir().unwrap();
    let queue = home.path().join("outbox");
    let url = format!(
        "smtp://{}@{}:{}",
        rig.var("MAILBOT_TEST_USER1"),
        rig.var("MAILBOT_TEST_HOST"),
        rig.var("MAILBOT_TEST_SUBMISSION_PORT")
    );
    let with_account = |cmd: &mut Command| {
        cmd.env("MAILBOT_PASSWORD", rig.var("MAILBOT_TEST_PASS1"))
            .args(["--smtp", &url, "--ca-file", rig.var("MAILBOT_TEST_CA")])
            .args(["--retry-wait", "0", "--queue"])
            .arg(&queue);
    };
    let subject = unique("queued while down");
    rig.down();

    let mut cmd = inject(home.path());
    with_account(&mut cmd);
    cmd.args(["-r", rig.var("MAILBOT_TEST_ADDR1"), "-s", &subject])
        .arg(rig.var("MAILBOT_TEST_ADDR2"));
    let out = run(&mut cmd, b"kept in the outbox\n");
    assert_eq!(code(&out), 75, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot connect") && err.contains("queued as"),
        "{err}"
    );
    assert_eq!(messages_containing(&queue, &subject).len(), 1);

    // Still down: flush keeps it and says 75.
    let mut flush = inject(home.path());
    with_account(&mut flush);
    flush.arg("--flush");
    let out = run(&mut flush, b"");
    assert_eq!(code(&out), 75, "{}", describe(&out));
    assert_eq!(messages_containing(&queue, &subject).len(), 1);

    rig.up();
    let out = run(&mut flush, b"");
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(messages_containing(&queue, &subject).is_empty());
    let inbox = PathBuf::from(rig.var("MAILBOT_TEST_MAILDIR2"));
    support::wait_for(20, || {
        (!messages_containing(&inbox, &subject).is_empty()).then_some(())
    })
    .expect("the flushed message did not arrive");

    // A second flush has nothing to do; nothing arrives twice.
    let out = run(&mut flush, b"");
    assert_eq!(code(&out), 0, "{}", describe(&out));
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(
        messages_containing(&inbox, &subject).len(),
        1,
        "delivered exactly once"
    );
}
