//! A rig of scripts/mailserver of a test's own, in a temporary folder,
//! stopped when dropped: for tests that stop the servers or need
//! mailboxes no other test writes to.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{Rig, describe};

/// The rig and its `MAILBOT_TEST_*` settings.
pub struct OwnRig {
    dir: PathBuf,
    _keep: tempfile::TempDir,
    vars: HashMap<String, String>,
}

fn mailserver(args: &[&str]) -> Output {
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
    /// Starts a new rig (`prefix` names its folder under /tmp).
    pub fn start(prefix: &str) -> OwnRig {
        OwnRig::start_with(prefix, &[])
    }

    /// [`OwnRig::start`] with options of `scripts/mailserver start`
    /// (`--users 4`, `--master-user`, ...), which later starts keep.
    pub fn start_with(prefix: &str, options: &[&str]) -> OwnRig {
        let keep = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(keep.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = keep.path().join("rig");
        let mut rig = OwnRig {
            dir,
            _keep: keep,
            vars: HashMap::new(),
        };
        let mut args = vec!["start", rig.dir.to_str().unwrap()];
        args.extend_from_slice(options);
        let out = mailserver(&args);
        assert!(out.status.success(), "mailserver start: {}", describe(&out));
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

    /// Starts the servers (again).
    pub fn up(&self) {
        let out = mailserver(&["start", self.dir.to_str().unwrap()]);
        assert!(out.status.success(), "mailserver start: {}", describe(&out));
    }

    /// Stops the servers; the folder and its mail stay.
    pub fn down(&self) {
        let out = mailserver(&["stop", self.dir.to_str().unwrap()]);
        assert!(out.status.success(), "mailserver stop: {}", describe(&out));
    }

    /// One `MAILBOT_TEST_*` value.
    pub fn var(&self, name: &str) -> &str {
        self.vars
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    /// The settings as the shared rig's [`Rig`].
    pub fn rig(&self) -> Rig {
        Rig::from_vars(|n| self.vars.get(n).cloned())
    }
}

impl Drop for OwnRig {
    fn drop(&mut self) {
        let _ = mailserver(&["stop", self.dir.to_str().unwrap()]);
    }
}
