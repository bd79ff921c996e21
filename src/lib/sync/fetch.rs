//! Fetching whole messages into a folder: one pipelined `UID FETCH` per
//! share of the missing UIDs, each body streamed into `tmp/` and renamed
//! into place by the thread that owns the state, with a checkpoint every
//! few hundred messages.
//!
//! A large fetch is shared between the session at hand and helper
//! connections (two in all by default): the server encrypts each
//! connection's stream on its own core, which is where a first sync
//! spends its time. UIDs are dealt out in blocks, so what is still
//! missing after a crash stays near the lowest missing UID. A helper that
//! cannot connect or fails leaves its share to the main session.
//!
//! It does not decide what to fetch (see `folder`).

use std::path::Path;
use std::sync::mpsc;

use super::local::{BodySink, LocalFolder, LocalMessage, Staged};
use super::names::{Unique, bits_from_imap, letters};
use super::state::FolderState;
use super::{Event, FolderReport, NewMessage, Options, Tuning};
use crate::error::{Error, ErrorKind, Result};
use crate::imap::{Fetch, Session, UidSet, Value, breaks_session};
use crate::maildir::LineEnds;

/// Messages fetched between two state checkpoints.
pub const CHECKPOINT_EVERY: usize = 500;

/// Longest sequence set per command (servers limit line length).
pub const SET_CHUNK: usize = 4000;

/// Below this many messages one connection does it all.
const SHARE_FROM: u64 = 100;

/// UIDs dealt to each connection in turn.
const BLOCK: usize = 256;

/// Connections used for a large fetch unless [`Tuning`] says otherwise.
const DEFAULT_CONNECTIONS: usize = 2;

/// What a connection's fetch hands over.
#[derive(Debug)]
enum Delivery {
    /// A body, written to `tmp/`.
    Body {
        uid: u32,
        flags: Vec<String>,
        staged: Staged,
    },
    /// The server answered for this UID without a body.
    NoBody(u32),
    /// A command over these UIDs completed: those not answered are gone.
    Done(UidSet),
    /// A helper ended (with its error, if it failed).
    Finished(Option<Error>),
}

/// Everything placing a message touches.
pub(super) struct Placer<'a> {
    pub root: &'a Path,
    pub state_path: &'a Path,
    pub folder: &'a str,
    pub object: String,
    pub st: &'a mut FolderState,
    pub files: &'a mut LocalFolder,
    pub report: &'a mut FolderReport,
    pub checkpoint_uidnext: u32,
    pub checkpoint_modseq: u64,
    pub dirty: &'a mut bool,
    pub problems: &'a mut Vec<String>,
    pub on_new: &'a mut dyn FnMut(&NewMessage),
    pub on_event: &'a mut dyn FnMut(Event<'_>),
    pub tuning: &'a Tuning,
    /// What is still to come; its lowest UID bounds what a checkpoint
    /// may claim.
    pub pending: UidSet,
    /// Asked for but sent without a body: still to fetch.
    pub no_body: UidSet,
    pub since_checkpoint: usize,
}

impl Placer<'_> {
    fn take(&mut self, d: Delivery) -> Result<()> {
        match d {
            Delivery::Body { uid, flags, staged } => self.place(uid, &flags, staged),
            Delivery::NoBody(uid) => {
                self.problems.push(format!(
                    "{}: UID {uid}: the server sent no body",
                    self.object
                ));
                self.no_body.insert(uid);
                Ok(())
            }
            Delivery::Done(asked) => {
                let mut left = UidSet::default();
                for &(lo, hi) in self.pending.ranges() {
                    for uid in lo..=hi {
                        if !asked.contains(uid) || self.no_body.contains(uid) {
                            left.insert(uid);
                        }
                    }
                }
                self.pending = left;
                Ok(())
            }
            Delivery::Finished(_) => Ok(()),
        }
    }

    fn place(&mut self, uid: u32, flags: &[String], staged: Staged) -> Result<()> {
        if !self.pending.contains(uid) || self.files.by_uid.contains_key(&uid) {
            staged.discard();
            return Ok(());
        }
        let bits = bits_from_imap(flags);
        let size = staged.size;
        let path = staged.place(self.root, uid, &letters(bits))?;
        *self.dirty = true;
        self.st.messages.insert(uid, bits);
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let (unique, separator, letters) = crate::maildir::parse_name(&name);
        self.files.by_uid.insert(
            uid,
            LocalMessage {
                in_cur: bits != 0,
                separator,
                unique: Unique::parse(&unique),
                flags: letters,
                path: path.clone(),
            },
        );
        self.pending = without(&self.pending, uid);
        self.report.fetched += 1;
        (self.on_new)(&NewMessage {
            folder: self.folder.to_string(),
            path,
            uid,
        });
        (self.on_event)(Event::Fetched { bytes: size });
        self.tuning.check_stop()?;
        self.since_checkpoint += 1;
        if self.since_checkpoint >= CHECKPOINT_EVERY {
            self.since_checkpoint = 0;
            let uidnext = match self.pending.ranges().first() {
                Some(&(lowest, _)) => self.checkpoint_uidnext.min(lowest),
                None => self.checkpoint_uidnext,
            };
            super::folder::checkpoint(
                self.root,
                self.state_path,
                self.st,
                uidnext,
                self.checkpoint_modseq,
            )?;
            *self.dirty = false;
        }
        Ok(())
    }
}

/// Fetches `set` into the folder: over `session` alone, or shared with
/// helper connections when it is large. Local failures and refusals
/// end up in `placer.problems` and leave `placer.pending` non-empty;
/// an error that breaks the main session is returned.
pub(super) fn fetch(
    session: &mut Session,
    options: &Options,
    tuning: &Tuning,
    raw_mailbox: &str,
    set: &UidSet,
    placer: &mut Placer<'_>,
) -> Result<()> {
    let connections = match tuning.connections {
        0 => DEFAULT_CONNECTIONS,
        n => n,
    };
    let shares = if set.len() >= SHARE_FROM && connections > 1 {
        deal(set, connections)
    } else {
        vec![set.clone()]
    };
    let (mine, theirs) = shares
        .split_first()
        .map(|(m, t)| (m.clone(), t.to_vec()))
        .unwrap_or_default();
    let root = placer.root.to_path_buf();
    let mut helpers_failed = false;
    let outcome = std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = mpsc::channel::<Delivery>();
        for share in theirs.iter().filter(|s| !s.is_empty()) {
            let tx = tx.clone();
            let root = root.clone();
            scope.spawn(move || {
                let result = helper(options, tuning, raw_mailbox, &root, share, &tx);
                let _ = tx.send(Delivery::Finished(result.err()));
            });
        }
        drop(tx);
        let mut helper_error = None;
        let mut drain = |placer: &mut Placer<'_>, block: bool| -> Result<bool> {
            loop {
                let d = if block {
                    match rx.recv() {
                        Ok(d) => d,
                        Err(_) => return Ok(false),
                    }
                } else {
                    match rx.try_recv() {
                        Ok(d) => d,
                        Err(mpsc::TryRecvError::Empty) => return Ok(true),
                        Err(mpsc::TryRecvError::Disconnected) => return Ok(false),
                    }
                };
                if let Delivery::Finished(Some(e)) = &d {
                    tracing::info!("a helper connection failed: {}", crate::error::chain(e));
                    helper_error.get_or_insert(());
                }
                placer.take(d)?;
            }
        };
        let own = fetch_share(session, &root, options.line_ends, &mine, &mut |d| {
            placer.take(d)?;
            drain(placer, false).map(|_| ())
        });
        // What the helpers still send is placed whatever happened here.
        let rest = drain(placer, true);
        helpers_failed = helper_error.is_some();
        own?;
        rest.map(|_| ())
    });
    match outcome {
        Ok(()) => {}
        Err(e) if breaks_session(&e) => return Err(e),
        Err(e) => {
            placer.problems.push(crate::error::chain(&e));
            return Ok(());
        }
    }
    // A helper's share it did not finish: fetched here.
    if helpers_failed && !placer.pending.is_empty() {
        let left: UidSet = placer
            .pending
            .iter()
            .filter(|u| !placer.no_body.contains(*u))
            .collect();
        let result = fetch_share(session, &root, options.line_ends, &left, &mut |d| {
            placer.take(d)
        });
        match result {
            Ok(()) => {}
            Err(e) if breaks_session(&e) => return Err(e),
            Err(e) => placer.problems.push(crate::error::chain(&e)),
        }
    }
    Ok(())
}

/// A helper connection: its own session on the folder (read-only), its
/// share fetched, every body handed to the main thread.
fn helper(
    options: &Options,
    tuning: &Tuning,
    raw_mailbox: &str,
    root: &Path,
    share: &UidSet,
    tx: &mpsc::Sender<Delivery>,
) -> Result<()> {
    let mut session = super::connect(options, tuning)?;
    session.examine(raw_mailbox)?;
    let result = fetch_share(&mut session, root, options.line_ends, share, &mut |d| {
        tx.send(d).map_err(|_| {
            // The main thread stopped: dropping the connection is the
            // quickest way out of a FETCH.
            Error::new(ErrorKind::Temporary, "helper", "no longer wanted")
        })
    });
    if result.is_ok() {
        session.logout();
    }
    result
}

/// Fetches `share` over `session`, bodies into `root/tmp/`, everything
/// handed to `deliver` as it arrives.
fn fetch_share(
    session: &mut Session,
    root: &Path,
    line_ends: LineEnds,
    share: &UidSet,
    deliver: &mut dyn FnMut(Delivery) -> Result<()>,
) -> Result<()> {
    let mut sink = BodySink::new(root, line_ends);
    for chunk in share.to_chunks(SET_CHUNK) {
        let result = session.uid_fetch(
            &chunk,
            "(UID FLAGS RFC822.SIZE BODY.PEEK[])",
            None,
            &mut sink,
            &mut |sink: &mut BodySink, f: Fetch| {
                let Some(uid) = f.uid else {
                    if let Some(s) = sink.staged.take() {
                        s.discard();
                    }
                    return Ok(());
                };
                match &f.body {
                    Some(Value::String(bytes)) => sink.stage_bytes(bytes)?,
                    Some(Value::Stored(_)) => {}
                    Some(_) => return deliver(Delivery::NoBody(uid)),
                    // A flag update from elsewhere, not our answer.
                    None => return Ok(()),
                }
                match sink.staged.take() {
                    Some(staged) => deliver(Delivery::Body {
                        uid,
                        flags: f.flags.unwrap_or_default(),
                        staged,
                    }),
                    None => Ok(()),
                }
            },
        );
        if let Some(s) = sink.staged.take() {
            s.discard();
        }
        result?;
        deliver(Delivery::Done(UidSet::parse(&chunk).unwrap_or_default()))?;
    }
    Ok(())
}

/// `set` dealt into `n` shares, blocks of [`BLOCK`] UIDs in turn.
fn deal(set: &UidSet, n: usize) -> Vec<UidSet> {
    let mut shares = vec![UidSet::default(); n];
    for (i, uid) in set.iter().enumerate() {
        shares[(i / BLOCK) % n].insert(uid);
    }
    shares
}

/// `set` without `uid`.
pub(super) fn without(set: &UidSet, uid: u32) -> UidSet {
    let mut out = UidSet::default();
    for &(lo, hi) in set.ranges() {
        if uid < lo || uid > hi {
            out.insert_range(lo, hi);
        } else {
            if uid > lo {
                out.insert_range(lo, uid - 1);
            }
            if uid < hi {
                out.insert_range(uid + 1, hi);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_a_uid_splits_its_range() {
        let set = UidSet::parse("1:5,9").unwrap();
        assert_eq!(without(&set, 1).to_string(), "2:5,9");
        assert_eq!(without(&set, 3).to_string(), "1:2,4:5,9");
        assert_eq!(without(&set, 9).to_string(), "1:5");
        assert_eq!(without(&set, 7).to_string(), "1:5,9");
    }

    #[test]
    fn shares_take_blocks_in_turn() {
        let set = UidSet::parse("1:600,1000").unwrap();
        let shares = deal(&set, 2);
        assert_eq!(shares[0].to_string(), "1:256,513:600,1000");
        assert_eq!(shares[1].to_string(), "257:512");
        let mut back = UidSet::default();
        for s in &shares {
            back.extend(s);
        }
        assert_eq!(back, set);
        assert_eq!(deal(&set, 1)[0], set);
    }
}
