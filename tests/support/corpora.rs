//! Where the test corpora are: the one way every corpus test finds them,
//! the integration tests (`#[path = "support/corpora.rs"] mod corpora;`)
//! and the library's unit tests (`crate::test_corpora`) alike.
//!
//! The corpora are real messages from other projects, a second test tier
//! that a plain clone does not have. They are read from `MAILBOT_CORPORA`,
//! else from `../shared/corpora` beside the checkout when it exists; never
//! copied into the repository. Without them a corpus test returns early
//! (skipped), unless `MAILBOT_REQUIRE_CORPORA` is set (as `.ci/run` does),
//! in which case it fails, as `MAILBOT_REQUIRE_RIG` does for the rig.

#![allow(dead_code)]

use std::path::PathBuf;

/// The corpora's folder, or `None` (the caller skips its test) when there
/// are none and they are not required. Panics when `MAILBOT_CORPORA`
/// names something that is not a folder, or when the corpora are missing
/// and `MAILBOT_REQUIRE_CORPORA` is set.
pub fn root() -> Option<PathBuf> {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = set("MAILBOT_CORPORA") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.is_dir(),
            "MAILBOT_CORPORA={}: not a folder",
            dir.display()
        );
        return Some(dir);
    }
    let beside = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpora"));
    if beside.is_dir() {
        return Some(beside);
    }
    if set("MAILBOT_REQUIRE_CORPORA").is_some_and(|v| v != "0") {
        panic!(
            "MAILBOT_REQUIRE_CORPORA is set but there are no corpora: set MAILBOT_CORPORA \
             or put them in {}",
            beside.display()
        );
    }
    eprintln!("skipped: no corpora (set MAILBOT_CORPORA)");
    None
}

/// `root()/rel`: one source or file of the corpora, or `None` as for
/// [`root`]. A required source that is missing fails.
pub fn path(rel: &str) -> Option<PathBuf> {
    let p = root()?.join(rel);
    assert!(
        p.exists(),
        "{}: missing from the corpora (is MAILBOT_CORPORA the right folder?)",
        p.display()
    );
    Some(p)
}
