//! What mail-bot has done, so it does it once: an append-only journal in
//! `MAILDIR/.mailbot/bot.jsonl`, one JSON record per line.
//!
//! Messages are known by the sha256 of their bytes (the *key*), not by
//! Message-ID or file name: a flag rename, a move, a re-sync under a new
//! UIDVALIDITY or a second download of the same bytes is the same
//! message, while a sent copy that shares a Message-ID with the received
//! one is another. File names (the maildir unique part, before `:2,`)
//! are remembered with their key only to avoid reading a known file again.
//!
//! Records are buffered during a message and written with one `fsync`
//! when the message is finished, after its actions' output is on disk. A
//! crash between an action and that write repeats the action at the next
//! run (at least once, never lost); otherwise each rule acts once per key.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Record {
    /// A file was looked at; `key` is its content's sha256.
    Seen {
        /// The maildir unique name (before `:2,`).
        unique: String,
        /// sha256 of the bytes, hex.
        key: String,
    },
    /// `rule` finished its actions on `key`.
    Done {
        /// Message key.
        key: String,
        /// Rule name.
        rule: String,
    },
    /// `rule` failed on `key` (attempt `attempt`).
    Failed {
        /// Message key.
        key: String,
        /// Rule name.
        rule: String,
        /// 1 for the first failure.
        attempt: u32,
        /// The error, one line.
        error: String,
    },
    /// `rule` failed too often on `key` and will not try again.
    GaveUp {
        /// Message key.
        key: String,
        /// Rule name.
        rule: String,
    },
    /// The first run on the account recorded the `count` messages already
    /// there as seen, without acting on them.
    Baseline {
        /// Messages recorded.
        count: usize,
        /// When, in seconds since the epoch.
        at: i64,
    },
    /// An automatic reply went to `to` (an address, lower-cased).
    Replied {
        /// The recipient.
        to: String,
        /// When, in seconds since the epoch.
        at: i64,
    },
}

/// The journal, loaded.
#[derive(Debug)]
pub struct State {
    path: PathBuf,
    file: File,
    seen: HashMap<String, String>,
    done: HashSet<(String, String)>,
    failures: HashMap<(String, String), u32>,
    gave_up: HashSet<(String, String)>,
    replied: HashMap<String, i64>,
    /// Records read from the file.
    loaded: usize,
    buffer: Vec<u8>,
    /// False for a journal opened read-only ([`State::peek`]).
    writable: bool,
}

/// The folder of mailbot's own files inside a maildir.
pub fn state_dir(maildir: &Path) -> PathBuf {
    maildir.join(".mailbot")
}

/// Takes `DIR/bot.lock` without waiting. Held by another run: an error of
/// kind `Locked` (exit 75).
pub fn lock(dir: &Path) -> Result<File> {
    crate::private::create_dir_all(dir).map_err(|e| Error::writing(dir, e))?;
    let path = dir.join("bot.lock");
    crate::lockfile::try_lock(
        &path,
        &path.display().to_string(),
        "another mail-bot run holds this maildir",
    )
}

/// Takes `DIR/bot.lock`, waiting for another run to let go until
/// `deadline` (then `Locked`, exit 75).
pub fn lock_waiting(dir: &Path, deadline: std::time::Instant) -> Result<File> {
    loop {
        match lock(dir) {
            Err(e) if e.is_locked() && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

impl State {
    /// Opens (creating) `DIR/bot.jsonl`. A last line cut short by a crash
    /// is dropped; any other unreadable line is an error naming its line
    /// (state is never guessed).
    pub fn open(dir: &Path) -> Result<State> {
        crate::private::create_dir_all(dir).map_err(|e| Error::writing(dir, e))?;
        let path = dir.join("bot.jsonl");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::writing(&path, e))?;
        let mut state = State {
            path: path.clone(),
            file: file.try_clone().map_err(|e| Error::reading(&path, e))?,
            seen: HashMap::new(),
            done: HashSet::new(),
            failures: HashMap::new(),
            gave_up: HashSet::new(),
            replied: HashMap::new(),
            loaded: 0,
            buffer: Vec::new(),
            writable: true,
        };
        let mut reader = BufReader::new(&mut file);
        let mut line = Vec::new();
        let mut number = 0;
        let mut good_len: u64 = 0;
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| Error::reading(&path, e))?;
            if n == 0 {
                break;
            }
            number += 1;
            if line.last() != Some(&b'\n') {
                // Torn by a crash mid-write: nothing after it, drop it.
                tracing::warn!("{}: dropping a cut-off last line", path.display());
                break;
            }
            let record: Record = serde_json::from_slice(&line).map_err(|e| {
                Error::new(
                    ErrorKind::BadInput,
                    format!("{}:{number}", path.display()),
                    format!("unreadable journal line ({e}); move the file away to start afresh"),
                )
            })?;
            state.apply(record);
            state.loaded += 1;
            good_len += n as u64;
        }
        drop(reader);
        let len = file
            .seek(io::SeekFrom::End(0))
            .map_err(|e| Error::reading(&path, e))?;
        if len != good_len {
            file.set_len(good_len)
                .map_err(|e| Error::writing(&path, e))?;
        }
        Ok(state)
    }

    /// The journal of `dir` read without changing anything (for
    /// `--dry-run`): no folder or file is created, a torn last line is
    /// left as it is, and [`State::commit`] writes nothing.
    pub fn peek(dir: &Path) -> Result<State> {
        let path = dir.join("bot.jsonl");
        let mut state = State {
            path: path.clone(),
            file: match File::open("/dev/null") {
                Ok(f) => f,
                Err(e) => return Err(Error::reading(Path::new("/dev/null"), e)),
            },
            seen: HashMap::new(),
            done: HashSet::new(),
            failures: HashMap::new(),
            gave_up: HashSet::new(),
            replied: HashMap::new(),
            loaded: 0,
            buffer: Vec::new(),
            writable: false,
        };
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(state),
            Err(e) => return Err(Error::reading(&path, e)),
        };
        for line in text.split_inclusive(|b| *b == b'\n') {
            if line.last() != Some(&b'\n') {
                break;
            }
            if let Ok(record) = serde_json::from_slice::<Record>(line) {
                state.apply(record);
                state.loaded += 1;
            }
        }
        Ok(state)
    }

    /// True for an account mail-bot has never run on: the journal holds
    /// no record.
    pub fn is_fresh(&self) -> bool {
        self.loaded == 0 && self.buffer.is_empty()
    }

    /// When the last automatic reply to `to` went out.
    pub fn last_reply(&self, to: &str) -> Option<i64> {
        self.replied.get(&to.to_ascii_lowercase()).copied()
    }

    fn apply(&mut self, record: Record) {
        match record {
            Record::Baseline { .. } => {}
            Record::Replied { to, at } => {
                let e = self.replied.entry(to.to_ascii_lowercase()).or_insert(at);
                *e = (*e).max(at);
            }
            Record::Seen { unique, key } => {
                self.seen.insert(unique, key);
            }
            Record::Done { key, rule } => {
                self.failures.remove(&(key.clone(), rule.clone()));
                self.done.insert((key, rule));
            }
            Record::Failed {
                key, rule, attempt, ..
            } => {
                self.failures.insert((key, rule), attempt);
            }
            Record::GaveUp { key, rule } => {
                self.failures.remove(&(key.clone(), rule.clone()));
                self.gave_up.insert((key, rule));
            }
        }
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key remembered for a file's unique name.
    pub fn key_of(&self, unique: &str) -> Option<&str> {
        self.seen.get(unique).map(String::as_str)
    }

    /// True when `rule` is finished with `key`: done, or given up.
    pub fn is_finished(&self, key: &str, rule: &str) -> bool {
        let k = (key.to_string(), rule.to_string());
        self.done.contains(&k) || self.gave_up.contains(&k)
    }

    /// True when `rule` has acted on `key`.
    pub fn is_done(&self, key: &str, rule: &str) -> bool {
        self.done.contains(&(key.to_string(), rule.to_string()))
    }

    /// Failures so far of `rule` on `key`.
    pub fn attempts(&self, key: &str, rule: &str) -> u32 {
        self.failures
            .get(&(key.to_string(), rule.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Keys with a failed rule still to retry.
    pub fn pending_keys(&self) -> HashSet<String> {
        self.failures.keys().map(|(k, _)| k.clone()).collect()
    }

    /// Adds a record (kept in memory at once, on disk at [`State::commit`]).
    pub fn record(&mut self, record: Record) {
        if let Ok(mut line) = serde_json::to_vec(&record) {
            line.push(b'\n');
            self.buffer.extend_from_slice(&line);
        }
        self.apply(record);
    }

    /// Writes the buffered records and flushes them to disk.
    pub fn commit(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        if !self.writable {
            self.buffer.clear();
            return Ok(());
        }
        self.file
            .write_all(&self.buffer)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| Error::writing(&self.path, e))?;
        self.buffer.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn key(n: u8) -> String {
        format!("{n:064x}")
    }

    #[test]
    fn records_survive_a_reopen_and_failures_clear_when_done() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(dir.path()).unwrap();
        s.record(Record::Seen {
            unique: "1.M1P1Q1.h,U=3".into(),
            key: key(1),
        });
        s.record(Record::Failed {
            key: key(1),
            rule: "r".into(),
            attempt: 1,
            error: "boom".into(),
        });
        s.record(Record::Done {
            key: key(2),
            rule: "r".into(),
        });
        s.commit().unwrap();
        drop(s);
        let mut s = State::open(dir.path()).unwrap();
        assert_eq!(s.key_of("1.M1P1Q1.h,U=3"), Some(key(1).as_str()));
        assert_eq!(s.attempts(&key(1), "r"), 1);
        assert!(!s.is_finished(&key(1), "r"));
        assert!(s.is_done(&key(2), "r") && !s.is_done(&key(2), "other"));
        assert_eq!(s.pending_keys(), HashSet::from([key(1)]));
        s.record(Record::Done {
            key: key(1),
            rule: "r".into(),
        });
        s.commit().unwrap();
        let s = State::open(dir.path()).unwrap();
        assert!(s.pending_keys().is_empty() && s.is_done(&key(1), "r"));
    }

    #[test]
    fn uncommitted_records_are_not_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(dir.path()).unwrap();
        s.record(Record::Done {
            key: key(1),
            rule: "r".into(),
        });
        assert!(s.is_done(&key(1), "r"));
        drop(s);
        assert!(!State::open(dir.path()).unwrap().is_done(&key(1), "r"));
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_later_records_stay_readable() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(dir.path()).unwrap();
        s.record(Record::Done {
            key: key(1),
            rule: "r".into(),
        });
        s.commit().unwrap();
        let path = s.path().to_path_buf();
        drop(s);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"t\":\"done\",\"key\":\"ab").unwrap();
        drop(f);
        let mut s = State::open(dir.path()).unwrap();
        assert!(s.is_done(&key(1), "r"));
        s.record(Record::Done {
            key: key(3),
            rule: "r".into(),
        });
        s.commit().unwrap();
        let s = State::open(dir.path()).unwrap();
        assert!(s.is_done(&key(1), "r") && s.is_done(&key(3), "r"));
    }

    #[test]
    fn a_damaged_line_in_the_middle_is_an_error_not_a_guess() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("bot.jsonl"),
            b"garbage\n{\"t\":\"done\",\"key\":\"a\",\"rule\":\"r\"}\n",
        )
        .unwrap();
        let err = State::open(dir.path()).unwrap_err();
        assert_eq!(err.exit().code(), 65);
        assert!(err.to_string().contains("bot.jsonl:1"), "{err}");
    }

    #[test]
    fn one_run_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path()).unwrap();
        let err = lock(dir.path()).unwrap_err();
        assert_eq!(err.exit().code(), 75);
        drop(held);
        lock(dir.path()).unwrap();
    }
}
