//! scripts/install into temporary prefixes: every binary, the man pages,
//! the completions and the systemd user units land in their standard
//! places, work from there, and `--uninstall` takes exactly them away.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BOT: &str = env!("CARGO_BIN_EXE_mail-bot");

fn built() -> PathBuf {
    Path::new(BOT).parent().unwrap().to_path_buf()
}

fn install(home: &Path, args: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install");
    Command::new(script)
        .arg("--from")
        .arg(built())
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .unwrap()
}

fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir`, relative to it, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(items) = fs::read_dir(dir) else { return };
        for item in items.flatten() {
            let p = item.path();
            if p.is_dir() && !p.is_symlink() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The binaries of src/bin/, so a new one is expected without a list.
fn binaries() -> Vec<String> {
    let mut bins: Vec<String> = fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(str::to_string)
        })
        .filter(|n| n.starts_with("mail-"))
        .collect();
    bins.sort();
    bins
}

#[test]
fn a_prefix_gets_everything_in_its_place_and_uninstall_takes_it_away() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("usr-local");
    let out = install(
        tmp.path(),
        &["--prefix", prefix.to_str().unwrap(), "--sendmail"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let files = tree(&prefix);
    for bin in binaries() {
        let exe = prefix.join("bin").join(&bin);
        assert_eq!(
            fs::read(&exe).unwrap(),
            fs::read(built().join(&bin)).unwrap(),
            "{bin}"
        );
        assert_eq!(
            fs::metadata(&exe).unwrap().permissions().mode() & 0o777,
            0o755
        );
        for want in [
            format!("share/man/man1/{bin}.1"),
            format!("share/bash-completion/completions/{bin}"),
            format!("share/zsh/site-functions/_{bin}"),
            format!("share/fish/vendor_completions.d/{bin}.fish"),
        ] {
            assert!(files.contains(&want), "{want} not in {files:#?}");
        }
    }
    for want in [
        "share/man/man1/mail-bot-run.1",
        "share/man/man5/mailbot-config.5",
        "share/doc/mailbot/README.md",
        "lib/systemd/user/mail-bot.service",
        "lib/systemd/user/mail-bot.timer",
        "lib/systemd/user/mail-sync@.service",
        "sbin/sendmail",
    ] {
        assert!(files.iter().any(|f| f == want), "{want} not in {files:#?}");
    }
    // The man pages read from there.
    let man = Command::new("man")
        .arg("-M")
        .arg(prefix.join("share/man"))
        .args(["5", "mailbot-config"])
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&man.stdout).contains("ACCOUNTS"),
        "{}",
        show(&man)
    );
    // The units start the installed binaries.
    let service = fs::read_to_string(prefix.join("lib/systemd/user/mail-bot.service")).unwrap();
    assert!(
        service.contains(&format!("ExecStart={}/bin/mail-bot run", prefix.display())),
        "{service}"
    );
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(prefix.join("lib/systemd/user/mail-bot.service"))
        .arg(prefix.join("lib/systemd/user/mail-bot.timer"))
        .output();
    if let Ok(verify) = verify {
        assert_eq!(verify.status.code(), Some(0), "{}", show(&verify));
    }
    // The sendmail link is mail-inject.
    assert_eq!(
        fs::read_link(prefix.join("sbin/sendmail")).unwrap(),
        prefix.join("bin/mail-inject")
    );
    // Installing again changes nothing; then everything goes.
    let again = install(
        tmp.path(),
        &["--prefix", prefix.to_str().unwrap(), "--sendmail"],
    );
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
    assert_eq!(tree(&prefix), files);
    fs::write(prefix.join("bin/not-ours"), "x").unwrap();
    let out = install(
        tmp.path(),
        &["--prefix", prefix.to_str().unwrap(), "--uninstall"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(
        tree(&prefix),
        ["bin/not-ours"],
        "only what was not ours stays"
    );
}

#[test]
fn a_user_install_uses_the_per_user_places() {
    let home = tempfile::tempdir().unwrap();
    let local = home.path().join(".local");
    let out = install(home.path(), &["--prefix", local.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let files = tree(home.path());
    for want in [
        ".local/bin/mail-bot",
        ".local/share/man/man1/mail-bot.1",
        ".local/share/bash-completion/completions/mail-bot",
        ".local/share/zsh/site-functions/_mail-bot",
        ".config/fish/completions/mail-bot.fish",
        ".local/share/systemd/user/mail-bot.timer",
    ] {
        assert!(files.iter().any(|f| f == want), "{want} not in {files:#?}");
    }
    // A binary that a sendmail link would replace is left alone.
    let taken = home.path().join("sendmail");
    fs::write(&taken, "#!/bin/sh\n").unwrap();
    let out = install(
        home.path(),
        &[
            "--prefix",
            local.to_str().unwrap(),
            &format!("--sendmail={}", taken.display()),
        ],
    );
    assert_eq!(out.status.code(), Some(73), "{}", show(&out));
    assert_eq!(fs::read_to_string(&taken).unwrap(), "#!/bin/sh\n");
    let out = install(
        home.path(),
        &["--prefix", local.to_str().unwrap(), "--uninstall"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(tree(home.path()), ["sendmail"]);
}

#[test]
fn bad_arguments_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = install(tmp.path(), &["--frobnicate"]);
    assert_eq!(out.status.code(), Some(64), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "install: --frobnicate: unknown (see --help)\n"
    );
    let out = install(
        tmp.path(),
        &[
            "--prefix",
            tmp.path().join("p").to_str().unwrap(),
            "--uninstall",
        ],
    );
    assert_eq!(out.status.code(), Some(66), "{}", show(&out));
}
