//! The outbox: messages that could not be sent now, kept for a later
//! `mail-inject --flush`.
//!
//! The outbox is a maildir whose files are exactly the messages, byte for
//! byte (no envelope header is added); each message's envelope sits next
//! to it in `envelopes/UNIQUE.json`, where UNIQUE is the message file's
//! unique name. The envelope is written (atomically) before the message
//! appears in `new/`, and removed only after the message, so a crash at
//! any point never leaves a visible message without its envelope. An
//! envelope whose message is gone is an already-sent leftover and is
//! cleaned up.
//!
//! Sending is the caller's job: remove a message only after the server
//! accepted it (250 to the data). A crash between that reply and the
//! removal sends that one message again at the next flush: at most one
//! duplicate, never a loss.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::exit::Exit;
use crate::maildir::{self, Maildir};
use crate::smtp::Envelope;

/// The outbox folder.
#[derive(Debug, Clone)]
pub struct Outbox {
    maildir: Maildir,
    envelopes: PathBuf,
}

/// A message waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// The message file.
    pub path: PathBuf,
    /// Its envelope file.
    pub envelope_path: PathBuf,
}

impl Outbox {
    /// Opens the outbox at `dir`, creating it (a maildir plus
    /// `envelopes/`) when missing.
    pub fn create(dir: &Path) -> Result<Outbox> {
        let maildir = Maildir::create(dir)?;
        let envelopes = dir.join("envelopes");
        crate::private::create_dir_all(&envelopes).map_err(|e| Error::writing(&envelopes, e))?;
        Ok(Outbox { maildir, envelopes })
    }

    /// The outbox folder.
    pub fn path(&self) -> &Path {
        self.maildir.path()
    }

    /// Puts `message` with its envelope into the outbox and returns the
    /// message's path.
    pub fn enqueue(&self, message: &[u8], envelope: &Envelope) -> Result<PathBuf> {
        let staged = self.maildir.stage(message)?;
        let unique = staged
            .tmp_path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let envelope_path = self.envelope_path(&unique);
        write_atomically(
            &envelope_path,
            &serde_json::to_vec(envelope).unwrap_or_default(),
        )?;
        match staged.commit() {
            Ok(path) => Ok(path),
            Err(e) => {
                let _ = fs::remove_file(&envelope_path);
                Err(e)
            }
        }
    }

    fn envelope_path(&self, unique: &str) -> PathBuf {
        self.envelopes.join(format!("{unique}.json"))
    }

    /// The queued messages, oldest first (by the time in their names,
    /// compared as numbers). Envelopes left over from messages already
    /// sent are removed on the way.
    pub fn list(&self) -> Result<Vec<Queued>> {
        let mut entries = self.maildir.list()?;
        entries.sort_by_cached_key(|e| maildir::delivery_order_key(&e.unique));
        let mut queued = Vec::new();
        let mut uniques = std::collections::HashSet::new();
        for entry in entries {
            uniques.insert(format!("{}.json", entry.unique));
            queued.push(Queued {
                envelope_path: self.envelope_path(&entry.unique),
                path: entry.path,
            });
        }
        let listing =
            fs::read_dir(&self.envelopes).map_err(|e| Error::reading(&self.envelopes, e))?;
        for item in listing.flatten() {
            let name = item.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") && !uniques.contains(&name) {
                let _ = fs::remove_file(item.path());
            }
        }
        Ok(queued)
    }

    /// The envelope stored with `queued`. A message without one cannot be
    /// sent: that is bad input (exit 65) naming the file.
    pub fn envelope(&self, queued: &Queued) -> Result<Envelope> {
        let bytes = fs::read(&queued.envelope_path).map_err(|e| {
            Error::new(
                ErrorKind::BadInput,
                queued.path.display().to_string(),
                "queued without its envelope file",
            )
            .with_source(e)
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::BadInput,
                queued.envelope_path.display().to_string(),
                "unreadable envelope",
            )
            .with_source(e)
        })
    }

    /// Takes the outbox's flush lock, so two flushes (two cron runs) never
    /// send the same message twice. Held until the returned file is
    /// dropped; another holder makes this a `Locked` error (exit 75).
    pub fn lock_for_flush(&self) -> Result<fs::File> {
        crate::lockfile::try_lock(
            &self.maildir.path().join("flush.lock"),
            &self.maildir.path().display().to_string(),
            "another flush of this outbox is running",
        )
    }

    /// Removes a sent message, then its envelope.
    pub fn remove(&self, queued: &Queued) -> Result<()> {
        fs::remove_file(&queued.path).map_err(|e| Error::writing(&queued.path, e))?;
        if let Some(dir) = queued.path.parent() {
            maildir::sync_dir(dir)?;
        }
        match fs::remove_file(&queued.envelope_path) {
            Ok(()) => maildir::sync_dir(&self.envelopes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::writing(&queued.envelope_path, e)),
        }
    }
}

/// What a flush did.
#[derive(Debug, Default)]
pub struct FlushReport {
    /// Messages sent and removed, with the server's reply.
    pub sent: Vec<(PathBuf, String)>,
    /// Messages that failed, with why; they stay in the outbox.
    pub failed: Vec<(PathBuf, Error)>,
    /// Messages still in the outbox afterwards.
    pub remaining: usize,
}

impl FlushReport {
    /// 0 when nothing remains; else the first failure's status (75 for
    /// a temporary one, the refusal's code for a permanent one).
    pub fn exit(&self) -> Exit {
        match self.failed.first() {
            Some((_, e)) => e.exit(),
            None if self.remaining > 0 => Exit::TempFail,
            None => Exit::Ok,
        }
    }
}

impl Outbox {
    /// Sends every queued message with `send` (which returns the server's
    /// reply to the data), removing each only after it was accepted.
    ///
    /// Holds the flush lock throughout. A temporary failure, or one that
    /// every later message would meet too (credentials, TLS, protocol,
    /// configuration), stops the flush; a message refused for good stays
    /// in the outbox and the flush goes on with the next.
    pub fn flush(
        &self,
        mut send: impl FnMut(&Envelope, &[u8]) -> Result<String>,
    ) -> Result<FlushReport> {
        let _lock = self.lock_for_flush()?;
        let queued = self.list()?;
        let mut report = FlushReport {
            remaining: queued.len(),
            ..FlushReport::default()
        };
        for item in queued {
            let outcome = self.envelope(&item).and_then(|envelope| {
                let bytes = fs::read(&item.path).map_err(|e| Error::reading(&item.path, e))?;
                send(&envelope, &bytes)
            });
            match outcome {
                Ok(reply) => {
                    self.remove(&item)?;
                    report.remaining -= 1;
                    report.sent.push((item.path, reply));
                }
                Err(e) => {
                    let stop = e.is_temporary()
                        || matches!(
                            e.kind(),
                            ErrorKind::Auth
                                | ErrorKind::Tls
                                | ErrorKind::Config
                                | ErrorKind::Protocol
                        );
                    report.failed.push((item.path, e));
                    if stop {
                        break;
                    }
                }
            }
        }
        Ok(report)
    }
}

/// Writes `path` through a temporary file, fsync and rename, and flushes
/// the directory: a reader sees the old state or all of the new.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", maildir::unique_name()));
    let result = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::writing(path, e));
    }
    maildir::sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            from: "a@x.test".into(),
            to: vec!["b@x.test".into(), "c@x.test".into()],
        }
    }

    #[test]
    fn queued_messages_are_exact_and_keep_their_envelope() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::create(&dir.path().join("outbox")).unwrap();
        let message = b"Subject: x\r\n\r\nbody\r\n";
        let path = outbox.enqueue(message, &envelope()).unwrap();
        assert_eq!(fs::read(&path).unwrap(), message);
        let list = outbox.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].path, path);
        assert_eq!(outbox.envelope(&list[0]).unwrap(), envelope());
        outbox.remove(&list[0]).unwrap();
        assert!(outbox.list().unwrap().is_empty());
        assert_eq!(
            fs::read_dir(dir.path().join("outbox/envelopes"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn flush_removes_what_was_accepted_and_stops_at_a_temporary_failure() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::create(dir.path()).unwrap();
        for body in ["1", "2-refused", "3", "4"] {
            outbox.enqueue(body.as_bytes(), &envelope()).unwrap();
        }
        let mut seen = Vec::new();
        let report = outbox
            .flush(|_, bytes| {
                seen.push(String::from_utf8_lossy(bytes).into_owned());
                match bytes {
                    b"2-refused" => Err(Error::new(ErrorKind::Refused, "smtp", "550")),
                    b"3" => Err(Error::new(ErrorKind::Temporary, "smtp", "421")),
                    _ => Ok("250 ok".into()),
                }
            })
            .unwrap();
        assert_eq!(seen, ["1", "2-refused", "3"]);
        assert_eq!(report.sent.len(), 1);
        assert_eq!(report.failed.len(), 2);
        assert_eq!(report.remaining, 3);
        assert_eq!(report.exit(), Exit::Unavailable);
        assert_eq!(outbox.list().unwrap().len(), 3);
        let report = outbox.flush(|_, _| Ok("250 ok".into())).unwrap();
        assert_eq!(
            (report.sent.len(), report.remaining, report.exit()),
            (3, 0, Exit::Ok)
        );
    }

    #[test]
    fn one_flush_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::create(dir.path()).unwrap();
        let held = outbox.lock_for_flush().unwrap();
        let err = outbox.lock_for_flush().unwrap_err();
        assert!(err.is_locked() && err.exit().code() == 75, "{err}");
        drop(held);
        outbox.lock_for_flush().unwrap();
    }

    #[test]
    fn leftover_envelopes_are_cleaned_and_missing_ones_reported() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::create(dir.path()).unwrap();
        let path = outbox.enqueue(b"x\r\n", &envelope()).unwrap();
        // A crash after removing the message, before its envelope.
        fs::remove_file(&path).unwrap();
        assert!(outbox.list().unwrap().is_empty());
        assert_eq!(
            fs::read_dir(dir.path().join("envelopes")).unwrap().count(),
            0
        );
        // A message dropped in by hand, with no envelope.
        Maildir::at(dir.path()).deliver(b"y\r\n").unwrap();
        let list = outbox.list().unwrap();
        assert_eq!(outbox.envelope(&list[0]).unwrap_err().exit().code(), 65);
    }
}
