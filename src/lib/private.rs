//! Folders and files that hold mail or anything derived from it —
//! maildirs, `.mailbot`, the notmuch database, dissected files, outboxes
//! — are created for their owner only: folders 0700, files 0600. The
//! mode is given at creation, so there is no moment at which another user
//! could open them; a folder that already exists keeps the mode its owner
//! gave it.
//!
//! The binaries also narrow their umask ([`restrict_umask`]), so what
//! libnotmuch and Xapian create inside `.notmuch`, and what commands
//! started by mailbot write, is private as well.
//!
//! It does not change the mode of anything that already exists.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// The mode of folders mailbot creates.
pub const DIR_MODE: u32 = 0o700;

/// The mode of files mailbot creates.
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` and any missing parents, each 0700; folders that exist
/// are left as they are.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Creates the folder `path` (0700); its parent must exist, and an
/// existing `path` is an `AlreadyExists` error.
pub fn create_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new().mode(DIR_MODE).create(path)
}

/// Creates the new file `path` (0600) for writing; an existing one is an
/// `AlreadyExists` error.
pub fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Creates the empty marker file `path` (0600; Maildir++'s
/// `maildirfolder`); one that exists already is fine.
pub fn create_marker(path: &Path) -> io::Result<()> {
    match create_new(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Adds group and other to the process's umask, so that nothing the
/// process (or a library under it, or a command it starts) creates can
/// be read by anyone but its owner. Bits the user's umask already
/// removes stay removed. For binaries, at start, before any thread.
pub fn restrict_umask() {
    use rustix::fs::Mode;
    let old = rustix::process::umask(Mode::from_raw_mode(0o077));
    rustix::process::umask(old | Mode::from_raw_mode(0o077));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_folders_and_files_are_private_and_old_ones_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join("mine");
        fs::create_dir(&mine).unwrap();
        fs::set_permissions(&mine, fs::Permissions::from_mode(0o755)).unwrap();
        let deep = mine.join("a/b/c");
        create_dir_all(&deep).unwrap();
        assert_eq!(mode(&mine), 0o755);
        for p in [mine.join("a"), mine.join("a/b"), deep.clone()] {
            assert_eq!(mode(&p), 0o700, "{}", p.display());
        }
        create_dir_all(&deep).unwrap();
        create_dir(&deep.join("d")).unwrap();
        assert_eq!(mode(&deep.join("d")), 0o700);
        let f = deep.join("f");
        drop(create_new(&f).unwrap());
        assert_eq!(mode(&f), 0o600);
        assert_eq!(
            create_new(&f).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
    }
}
