//! Man pages and shell completions come from the binaries' own clap
//! definitions (`--generate-man DIR`, `--generate-completion SHELL`, what
//! scripts/gen-docs runs), so they say what --help says.

use std::fs;
use std::process::Command;

const BINS: [(&str, &str); 6] = [
    ("mail-inject", env!("CARGO_BIN_EXE_mail-inject")),
    ("mail-sync", env!("CARGO_BIN_EXE_mail-sync")),
    ("mail-index", env!("CARGO_BIN_EXE_mail-index")),
    ("mail-dissect", env!("CARGO_BIN_EXE_mail-dissect")),
    ("mail-bot", env!("CARGO_BIN_EXE_mail-bot")),
    ("mail-migrate", env!("CARGO_BIN_EXE_mail-migrate")),
];

#[test]
fn every_binary_writes_its_man_pages() {
    let dir = tempfile::tempdir().unwrap();
    for (name, exe) in BINS {
        let out = Command::new(exe)
            .arg("--generate-man")
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}: {out:?}");
        let page = fs::read_to_string(dir.path().join(format!("{name}.1"))).unwrap();
        assert!(page.contains(&format!(".TH {name} 1")), "{name}: no title");
        // The examples and the exit codes of --help are in it too.
        assert!(page.contains("Examples:"), "{name}: no examples");
        assert!(page.contains("Exit status:"), "{name}: no exit codes");
    }
    // A page for each subcommand as well, with its own examples.
    for sub in [
        "mail-bot-run",
        "mail-bot-watch",
        "mail-bot-selftest",
        "mail-bot-probe",
        "mail-index-new",
        "mail-index-add",
        "mail-index-search",
        "mail-index-tag",
        "mail-index-count",
    ] {
        let page = fs::read_to_string(dir.path().join(format!("{sub}.1"))).unwrap();
        assert!(page.contains(&format!(".TH {sub} 1")), "{sub}");
        assert!(page.contains("Examples:"), "{sub}: no examples");
        assert!(page.contains("Exit status:"), "{sub}: no exit codes");
    }
    let probe = fs::read_to_string(dir.path().join("mail-bot-probe.1")).unwrap();
    assert!(probe.contains("CRITICAL"), "probe's own exit codes");
}

#[test]
fn every_binary_prints_completions_for_the_usual_shells() {
    for (name, exe) in BINS {
        for (shell, marker) in [
            ("bash", format!("complete -F _{} ", name.replace('-', "__"))),
            ("zsh", format!("#compdef {name}")),
            ("fish", format!("complete -c {name} ")),
        ] {
            let out = Command::new(exe)
                .args(["--generate-completion", shell])
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{name} {shell}");
            let script = String::from_utf8(out.stdout).unwrap();
            assert!(script.contains(&marker), "{name} {shell}: no {marker:?}");
            assert!(script.contains("help"), "{name} {shell}: no options");
        }
    }
    let out = Command::new(BINS[3].1)
        .args(["--generate-completion", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "mail-dissect: tcsh: not a shell this knows (bash, zsh, fish, elvish, powershell)\n"
    );
}
