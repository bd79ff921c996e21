//! The record of the last complete scan, `DIR/.mailbot/index-folders.json`:
//! every folder the walk visited with the mtime it had when it was listed
//! (see [`super::walk`]), and the database it belongs to (its UUID), so a
//! database made again is scanned in full.
//!
//! It is a cache: written after the database has committed what the scan
//! found, read leniently (anything unreadable, or for another database, is
//! no record and the next scan lists everything), never a reason to fail.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::walk::Folders;
use crate::error::{Error, ErrorKind, Result};

/// The format's version; another version reads as no record.
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    version: u32,
    database: String,
    folders: Folders,
}

/// Where the record of `root`'s scans lives.
pub fn path(root: &Path) -> PathBuf {
    root.join(".mailbot").join("index-folders.json")
}

/// The folders of the last scan of the database `uuid`; empty when there
/// is no usable record.
pub fn load(root: &Path, uuid: &str) -> Folders {
    let Ok(text) = fs::read(path(root)) else {
        return Folders::new();
    };
    match serde_json::from_slice::<Record>(&text) {
        Ok(r) if r.version == VERSION && r.database == uuid => r.folders,
        _ => Folders::new(),
    }
}

/// Writes the record (temporary file, rename); the folders with an mtime
/// of `None` are listed again next time.
pub fn save(root: &Path, uuid: &str, folders: &Folders) -> Result<()> {
    let file = path(root);
    let dir = file.parent().unwrap_or(root);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::writing(dir, e))?;
    let record = Record {
        version: VERSION,
        database: uuid.to_string(),
        folders: folders.clone(),
    };
    let text = serde_json::to_vec(&record).map_err(|e| {
        Error::new(
            ErrorKind::CannotCreate,
            file.display().to_string(),
            e.to_string(),
        )
    })?;
    let tmp = file.with_extension("json.tmp");
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&text))
        .and_then(|()| fs::rename(&tmp, &file));
    written.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::writing(&file, e)
    })
}

/// Forgets the record (the next scan lists every folder).
pub fn remove(root: &Path) {
    let _ = fs::remove_file(path(root));
}
