//! Man pages and shell completions come from the binaries' own clap
//! definitions (`--generate-man DIR`, `--generate-completion SHELL`, what
//! scripts/gen-docs runs), so they say what --help says.

use std::fs;
use std::path::{Path, PathBuf};
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
        for section in [
            ".SH EXAMPLES",
            ".SH \"EXIT STATUS\"",
            ".SH ENVIRONMENT",
            ".SH FILES",
            ".SH \"SEE ALSO\"",
        ] {
            assert!(page.contains(section), "{name}: no {section}");
        }
        assert!(!page.contains(".SH EXTRA"), "{name}: examples under EXTRA");
        assert!(page.contains("mailbot\\-config(5)"), "{name}: SEE ALSO");
        // Every variable a flag reads is under ENVIRONMENT.
        let help = Command::new(exe).arg("--help").output().unwrap();
        let help = String::from_utf8(help.stdout).unwrap();
        for var in help.split(|c: char| !(c.is_ascii_uppercase() || c == '_')) {
            if var.starts_with("MAILBOT_") && var.len() > 8 {
                assert!(
                    page.contains(&format!(".B {}", var.replace('-', "\\-"))),
                    "{name}: {var} not under ENVIRONMENT"
                );
            }
        }
        // The examples read as --help shows them, line for line.
        assert_eq!(
            rendered_examples(&dir.path().join(format!("{name}.1"))),
            help_examples(&help),
            "{name}"
        );
    }
    // mail-migrate's passwords come from variables no flag names, and
    // its state from XDG_STATE_HOME.
    let migrate = fs::read_to_string(dir.path().join("mail-migrate.1")).unwrap();
    for var in [
        "MAILBOT_MIGRATE_FROM_PASSWORD\n",
        "MAILBOT_MIGRATE_TO_PASSWORD\n",
        "MAILBOT_MIGRATE_FROM_MASTER_PASSWORD\n",
        "MAILBOT_MIGRATE_TO_MASTER_PASSWORD\n",
        "XDG_STATE_HOME, HOME\n",
    ] {
        assert!(
            migrate.contains(&format!(".B {var}")),
            "mail-migrate: no {var:?}"
        );
    }
    assert!(migrate.contains("mailbot/migrate/SOURCE/DESTINATION.json"));
    let config = fs::read_to_string(dir.path().join("mailbot-config.5")).unwrap();
    assert!(
        config.contains("mail\\-migrate(1)"),
        "mailbot-config(5): SEE ALSO"
    );
    for section in [
        ".TH mailbot-config 5",
        ".SH \"ACCOUNTS\"",
        ".SH \"RULES\"",
        "password_command",
    ] {
        assert!(config.contains(section), "mailbot-config(5): no {section}");
    }
    let files = fs::read_to_string(dir.path().join("mail-bot.1")).unwrap();
    assert!(
        files.contains(".SH FILES") && files.contains("bot.jsonl"),
        "FILES"
    );
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
        assert!(page.contains(".SH EXAMPLES"), "{sub}: no examples");
        assert!(page.contains(".SH \"EXIT STATUS\""), "{sub}: no exit codes");
        let (bin, sub_name) = sub.rsplit_once('-').unwrap();
        let exe = BINS.iter().find(|(n, _)| *n == bin).unwrap().1;
        let help = Command::new(exe)
            .args([sub_name, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8(help.stdout).unwrap();
        assert_eq!(
            rendered_examples(&dir.path().join(format!("{sub}.1"))),
            help_examples(&help),
            "{sub}"
        );
    }
    let probe = fs::read_to_string(dir.path().join("mail-bot-probe.1")).unwrap();
    assert!(probe.contains("CRITICAL"), "probe's own exit codes");
}

/// The EXAMPLES section of a page as man(1) shows it, each line trimmed.
fn rendered_examples(page: &Path) -> Vec<String> {
    let out = Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANWIDTH", "200")
        .env("MAN_KEEP_FORMATTING", "")
        .output()
        .expect("man (scripts/test installs man-db)");
    assert_eq!(out.status.code(), Some(0), "man -l {}", page.display());
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .skip_while(|l| *l != "EXAMPLES")
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The lines of `--help` under "Examples:", each trimmed.
fn help_examples(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Examples:")
        .skip(1)
        .take_while(|l| !l.starts_with("Exit status"))
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// No command line of an example is wider than an 80-column terminal,
/// where clap would wrap it and break it for pasting; long ones are
/// folded with `\\`.
#[test]
fn help_example_commands_fit_the_terminal() {
    for (name, exe) in BINS {
        let help = Command::new(exe).arg("--help").output().unwrap();
        let help = String::from_utf8(help.stdout).unwrap();
        for line in help.lines().skip_while(|l| *l != "Examples:") {
            if line.starts_with("Exit status") {
                break;
            }
            if line.starts_with("  ") && !line.starts_with("   ") && !line.contains('#') {
                assert!(line.chars().count() <= 79, "{name}: {line:?}");
            }
        }
    }
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

/// Runs `script` in `shell` (`-c`) and returns its stdout; a shell that
/// is missing fails the test (scripts/test installs bash, zsh and fish).
fn shell(shell: &str, script: &str) -> String {
    let out = Command::new(shell)
        .arg("-c")
        .arg(script)
        .env("HOME", std::env::temp_dir())
        .output()
        .unwrap_or_else(|e| panic!("{shell}: {e} (scripts/test installs it)"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{shell} -c {script:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn completion_file(dir: &Path, exe: &str, shell: &str) -> PathBuf {
    let out = Command::new(exe)
        .args(["--generate-completion", shell])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let file = dir.join(format!(
        "{shell}-{}",
        Path::new(exe).file_name().unwrap().display()
    ));
    fs::write(&file, out.stdout).unwrap();
    file
}

/// What bash offers for `line` (the cursor at its end), through the
/// function `complete -p` names for the line's command, as bash calls it.
fn bash_completes(script: &Path, line: &str) -> Vec<String> {
    let words: Vec<&str> = if line.ends_with(' ') {
        line.split_whitespace().chain([""]).collect()
    } else {
        line.split_whitespace().collect()
    };
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        r#"source '{script}'
spec=$(complete -p {cmd})
fn=${{spec#*-F }}; fn=${{fn%% *}}
COMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}
"$fn" {cmd} "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
        script = script.display(),
        cmd = words[0],
        words = quoted.join(" "),
    );
    let mut got: Vec<String> = shell("bash", &program)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    got.sort();
    got
}

#[test]
fn bash_completes_the_flags_and_values_of_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let bot = completion_file(dir.path(), BINS[4].1, "bash");
    let index = completion_file(dir.path(), BINS[2].1, "bash");
    assert_eq!(bash_completes(&bot, "mail-bot run --d"), ["--dry-run"]);
    assert_eq!(
        bash_completes(&bot, "mail-bot ru"),
        ["run"],
        "subcommand names"
    );
    assert!(bash_completes(&bot, "mail-bot selftest --").contains(&"--wait".to_string()));
    assert_eq!(
        bash_completes(&index, "mail-index search --output "),
        ["files", "json", "messages"]
    );
    // A subcommand flag's value, after a global flag's value.
    assert_eq!(
        bash_completes(&bot, "mail-bot --account x selftest --wait "),
        ["idle", "poll"]
    );
    // Top level, as before.
    assert!(bash_completes(&index, "mail-index --ma").contains(&"--maildir".to_string()));
}

#[test]
fn zsh_and_fish_load_the_completions() {
    let dir = tempfile::tempdir().unwrap();
    for (name, exe) in BINS {
        let zsh = completion_file(dir.path(), exe, "zsh");
        let got = shell(
            "zsh",
            &format!(
                "autoload -Uz compinit && compinit -u -d {dump} && source {file} && print -r -- $_comps[{name}]",
                dump = dir.path().join("zcompdump").display(),
                file = zsh.display()
            ),
        );
        assert_eq!(got.trim(), format!("_{name}"), "zsh: {name}");
        let fish = completion_file(dir.path(), exe, "fish");
        let got = shell(
            "fish",
            &format!("source {}; complete -C '{name} --hel'", fish.display()),
        );
        assert!(got.starts_with("--help"), "fish: {name}: {got:?}");
    }
    // fish completes a subcommand's flags too.
    let fish = completion_file(dir.path(), BINS[4].1, "fish");
    let got = shell(
        "fish",
        &format!("source {}; complete -C 'mail-bot run --dr'", fish.display()),
    );
    assert!(got.starts_with("--dry-run"), "{got:?}");
}
