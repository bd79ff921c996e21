//! The outbox against a real server that goes away: with its own rig
//! (so the shared one is not disturbed), the server is stopped, the
//! message is queued with exit 75, the server comes back and `--flush`
//! delivers it exactly once.

mod inject_common;
mod support;

use std::path::PathBuf;
use std::process::Command;

use inject_common::{code, describe, inject, messages_containing, run, unique};
use support::own_rig::OwnRig;

#[test]
fn stopped_server_queues_with_75_and_flush_delivers_exactly_once() {
    // Runs where the shared rig runs (scripts/test): it needs root and
    // the Postfix and Dovecot packages that starting a rig installs.
    if support::Rig::from_env().is_none() {
        return;
    }
    let rig = OwnRig::start("inject-queue-rig.");
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
