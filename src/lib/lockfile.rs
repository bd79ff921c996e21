//! Lock files: an exclusive `flock` taken without waiting, so a second
//! run finds out at once and can exit 75 (try later).

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

/// Opens (creating, mode 0600) and locks `path` without waiting; the lock
/// lasts as long as the returned file. Held elsewhere: an error of kind
/// `Locked` (exit 75) naming `object` with `held` as the reason.
pub fn try_lock(path: &Path, object: &str, held: &str) -> Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::writing(path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(Error::new(ErrorKind::Locked, object, held)),
        Err(fs::TryLockError::Error(e)) => Err(Error::writing(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_told_at_once_and_the_lock_ends_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = try_lock(&path, "thing", "busy").unwrap();
        let err = try_lock(&path, "thing", "busy").unwrap_err();
        assert_eq!(
            (err.exit().code(), err.to_string().as_str()),
            (75, "thing: busy")
        );
        drop(held);
        try_lock(&path, "thing", "busy").unwrap();
    }
}
