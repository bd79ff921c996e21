//! mail-migrate killed (-9) at random moments of a pass over a mailbox
//! big enough to be shared between two connection pairs, then run again:
//! a pass that ends leaves no message twice on the destination, and the
//! last one leaves it equal to the source. The seed is printed;
//! MAILBOT_TEST_SEED replays it.

mod migrate_common;
mod support;
mod sync_common;

use std::collections::BTreeMap;
use std::time::Duration;

use migrate_common::{Pair, code, run};
use support::{Rng, describe};
use sync_common::{generated, sha256};

fn hashes(pair: &Pair, source: bool, folder: &str) -> BTreeMap<String, usize> {
    let mut s = if source {
        pair.src_login(1)
    } else {
        pair.dst_login(1)
    };
    let mut out = BTreeMap::new();
    for m in s.messages(folder) {
        *out.entry(sha256(&m.body)).or_insert(0) += 1;
    }
    out
}

#[test]
fn killed_at_random_moments_a_migration_ends_equal_without_duplicates() {
    if !migrate_common::rigs_wanted() {
        return;
    }
    let pair = Pair::start("mig-kill");
    let mut rng = Rng::new();
    let folders = [("INBOX", "INBOX", 400), ("INBOX.Archive", "Archive", 200)];
    let mut s = pair.src_login(1);
    for (from, _, n) in folders {
        if from != "INBOX" {
            s.create(from);
        }
        for (i, m) in generated(&format!("kill-{from}"), n).iter().enumerate() {
            let flags = ["\\Seen", "", "\\Flagged $Work"][i % 3];
            s.append(from, flags, m);
        }
    }
    let want: Vec<BTreeMap<String, usize>> = folders
        .iter()
        .map(|(f, _, _)| hashes(&pair, true, f))
        .collect();
    let no_more_than_the_source = |round: usize| {
        let mut d = pair.dst_login(1);
        let have = migrate_common::folders(&mut d);
        for ((_, to, _), want) in folders.iter().zip(&want) {
            if !have.iter().any(|h| h == to) {
                continue;
            }
            for (h, n) in hashes(&pair, false, to) {
                let allowed = want.get(&h).copied().unwrap_or(0);
                assert!(
                    n <= allowed,
                    "round {round}: {to}: a message {n} times (source has {allowed})"
                );
            }
        }
    };
    for round in 0..8 {
        let wait = 20 + rng.below(350);
        let mut child = pair
            .migrate_users(&[(1, 1)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(wait));
        let finished = child.try_wait().unwrap().is_some();
        if !finished {
            child.kill().unwrap();
        }
        child.wait().unwrap();
        eprintln!(
            "round {round}: killed after {wait} ms{}",
            if finished { " (had finished)" } else { "" }
        );
        // A pass that ran to its end leaves no message twice, even when
        // the one before died with a command the server carried out
        // after this one had looked (its copies are found and removed).
        if finished {
            no_more_than_the_source(round);
        }
    }
    let out = run(pair.migrate_users(&[(1, 1)]).arg("--json"));
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let removed = String::from_utf8_lossy(&out.stdout)
        .matches("\"duplicates_removed\":")
        .count();
    eprintln!(
        "last pass: {removed} folder reports; late copies removed: {}",
        String::from_utf8_lossy(&out.stdout)
            .split("\"duplicates_removed\":")
            .skip(1)
            .filter_map(|r| r.split(',').next()?.parse::<u64>().ok())
            .sum::<u64>()
    );
    no_more_than_the_source(99);
    for ((_, to, _), want) in folders.iter().zip(&want) {
        assert_eq!(
            &hashes(&pair, false, to),
            want,
            "{to} differs from the source"
        );
    }
    let verify = run(pair.migrate_users(&[(1, 1)]).arg("--verify"));
    assert_eq!(code(&verify), 0, "{}", describe(&verify));
    // And a pass after that copies nothing.
    let again = run(pair.migrate_users(&[(1, 1)]).arg("--json"));
    assert_eq!(code(&again), 0, "{}", describe(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("\"copied\":0,"),
        "{}",
        describe(&again)
    );
}
