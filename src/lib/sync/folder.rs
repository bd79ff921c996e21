//! One folder's sync: SELECT, learn what changed on the server (from
//! QRESYNC's answer to SELECT, CONDSTORE's CHANGEDSINCE, or every flag
//! when the server has neither), merge flags, apply deletions as the
//! expunge policy says, fetch what is missing, upload what is new, and
//! write the state.
//!
//! Without a trusted state (none, corrupt, or a new UIDVALIDITY) the
//! local files are matched to the server's messages by Message-ID and
//! size (sha256 where that is ambiguous) and renamed to the UIDs they
//! have now; only what has no local copy is downloaded.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::local::{self, HashSink, LocalFolder, LocalMessage};
use super::names::{
    DELETED_HERE, FLAG_MASK, FlagBits, Unique, bits_from_imap, imap_flags, merge, with_synced,
};
use super::state::{self, FolderState, PendingAppend};
use super::unchanged::{self, DirStamps};
use super::{Event, FolderReport, Layout, NewMessage, Options, Tuning};
use crate::error::{Error, Result};
use crate::imap::{Fetch, InMemory, Mailbox, SelectMode, Selected, Session, UidSet, Value};

use super::fetch::{self, Placer, SET_CHUNK};

/// What a folder's sync did, and the [`unchanged::Entry`] that lets the
/// next pass skip it when it left both sides in step and changed nothing
/// here.
pub(super) struct Outcome {
    pub report: FolderReport,
    pub entry: Option<unchanged::Entry>,
}

/// Syncs one server folder into `local` and returns what it did. Errors
/// that break the session are returned; the caller turns the others
/// into a failed folder and goes on.
pub(super) fn sync_folder(
    session: &mut Session,
    options: &Options,
    tuning: &Tuning,
    mailbox: &Mailbox,
    local: &Path,
    on_new: &mut dyn FnMut(&NewMessage),
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Outcome> {
    on_event(Event::FolderStarted {
        folder: &mailbox.name,
    });
    // Before the listing: a change made after it shows as a time that
    // differs at the end, and the folder is not taken for unchanged.
    let before = DirStamps::read(local);
    let rel = local
        .strip_prefix(&options.maildir)
        .unwrap_or(local)
        .to_string_lossy()
        .into_owned();
    let state_path = state::state_path(&options.maildir, &mailbox.name);
    let loaded = match state::load(&state_path) {
        Ok(s) => s,
        Err(why) => {
            tracing::warn!("{why}");
            None
        }
    };
    let mut loaded = loaded.filter(|s| s.folder == mailbox.name && s.local == rel);
    // Messages mail-bot moved out of the folder on purpose are deletions
    // on this side, however few files are left.
    if let Some(st) = loaded.as_mut() {
        let moved = state::apply_moved_out(st, &state::read_moved_out(&options.maildir));
        if moved > 0 {
            tracing::debug!("{}: {moved} messages were moved out", local.display());
        }
    }
    let files = local::scan(local)?;
    // Files a run placed after it last wrote the state (it was killed, or
    // its reader went away) may never have been reported: they are
    // reported again, before this run writes a state that lists them, so
    // every placed file is reported at least once.
    let unprinted: HashSet<String> = loaded
        .as_ref()
        .map(|st| {
            files
                .by_uid
                .iter()
                .filter(|(uid, _)| **uid >= st.uidnext && !st.messages.contains_key(uid))
                .map(|(_, m)| m.unique.base.clone())
                .collect()
        })
        .unwrap_or_default();
    if options.layout == Layout::MaildirPlusPlus && local != options.maildir {
        let marker = local.join("maildirfolder");
        if !marker.exists() {
            crate::private::create_marker(&marker).map_err(|e| Error::writing(&marker, e))?;
        }
    }
    for p in &files.unreadable_names {
        tracing::warn!("{}: name is not UTF-8; not synced", p.display());
    }
    for m in &files.duplicates {
        tracing::warn!(
            "{}: a second file for UID {}; not synced",
            m.path.display(),
            m.unique.uid.unwrap_or(0)
        );
    }

    session.enable_once(&["QRESYNC"])?;
    let qresync = session.is_enabled("QRESYNC");
    let condstore = qresync || session.has_capability("CONDSTORE");
    let mode = match &loaded {
        Some(st) if qresync && st.highestmodseq > 0 && st.uidvalidity != 0 => SelectMode::Qresync {
            uidvalidity: st.uidvalidity,
            modseq: st.highestmodseq,
            known: None,
        },
        _ if condstore => SelectMode::Condstore,
        _ => SelectMode::Plain,
    };
    let sel = session.select(&mailbox.raw, &mode)?;
    let mut job = Job {
        session,
        options,
        tuning,
        mailbox,
        root: local.to_path_buf(),
        state_path,
        report: FolderReport {
            folder: mailbox.name.clone(),
            local: local.to_path_buf(),
            ..FolderReport::default()
        },
        files,
        st: FolderState::default(),
        checkpoint_uidnext: 0,
        checkpoint_modseq: 0,
        dirty: false,
        fetch_incomplete: false,
        problems: Vec::new(),
        unprinted,
        saved: false,
        on_new,
        on_event,
    };
    let used_qresync = matches!(mode, SelectMode::Qresync { .. });
    let trusted = loaded.clone().filter(|st| {
        st.uidvalidity == sel.uidvalidity
            && sel
                .uidnext
                .is_none_or(|next| st.uidnext <= next && job.files.by_uid.keys().all(|u| *u < next))
    });
    // A folder emptied by hand (or removed) while the state lists
    // messages is taken for a wish to fetch again, never for deletions
    // to carry to the server.
    let emptied = job.files.all().next().is_none()
        && trusted
            .as_ref()
            .is_some_and(|st| st.messages.values().any(|b| b & DELETED_HERE == 0));
    if emptied {
        tracing::warn!(
            "{}: the local folder is empty; fetching every message again",
            local.display()
        );
    }
    let trusted = trusted.filter(|_| !emptied);
    match (trusted, &loaded) {
        (Some(st), _) => job.incremental(st, &sel, used_qresync)?,
        (None, Some(old)) if !emptied => {
            if old.uidvalidity != sel.uidvalidity {
                tracing::info!(
                    "{}: UIDVALIDITY changed ({} → {}); matching local files to the new UIDs",
                    mailbox.name,
                    old.uidvalidity,
                    sel.uidvalidity
                );
            } else {
                tracing::warn!(
                    "{}: local files name UIDs the server never gave; matching them again",
                    mailbox.name
                );
            }
            job.rematch(&sel)?
        }
        (None, _) => job.rematch(&sel)?,
    }
    if options.direction.pushes() {
        job.push(&sel)?;
    }
    job.report_unprinted()?;
    job.finish(&sel, loaded.as_ref())?;
    let entry = job.unchanged_entry(&sel, &before);
    if !job.problems.is_empty() {
        job.report.error = Some(job.problems.join("; "));
    }
    Ok(Outcome {
        report: job.report,
        entry,
    })
}

struct Job<'a> {
    session: &'a mut Session,
    options: &'a Options,
    tuning: &'a Tuning,
    mailbox: &'a Mailbox,
    root: PathBuf,
    state_path: PathBuf,
    report: FolderReport,
    files: LocalFolder,
    st: FolderState,
    /// What a checkpoint may claim: every UID below this was looked at,
    /// and changes since this modseq are still to be read again.
    checkpoint_uidnext: u32,
    checkpoint_modseq: u64,
    /// Something changed on disk since the last flush.
    dirty: bool,
    /// Some message to fetch did not arrive.
    fetch_incomplete: bool,
    /// Failures that did not stop the folder (reported, exit 1).
    problems: Vec<String>,
    /// The unique bases of files an earlier run placed and may not have
    /// reported (see [`Job::report_unprinted`]).
    unprinted: HashSet<String>,
    /// A state this run may build on is on disk (the trusted one loaded,
    /// or one written by this run): before that, nothing is fetched.
    saved: bool,
    on_new: &'a mut dyn FnMut(&NewMessage),
    on_event: &'a mut dyn FnMut(Event<'_>),
}

/// Which UIDs the server still has: all but those it said vanished
/// (QRESYNC), or exactly those listed.
#[derive(Debug)]
enum Presence {
    Vanished(UidSet),
    Present(UidSet),
}

impl Presence {
    fn is_gone(&self, uid: u32) -> bool {
        match self {
            Presence::Vanished(v) => v.contains(uid),
            Presence::Present(p) => !p.contains(uid),
        }
    }
}

/// What the server holds of one message, for matching.
#[derive(Debug, Clone)]
struct ServerMessage {
    uid: u32,
    bits: FlagBits,
    size: u64,
    id: Option<String>,
}

impl Job<'_> {
    fn can_write(&self, sel: &Selected) -> bool {
        !sel.read_only
    }

    /// Reports (to `on_new`) the files of [`Job::unprinted`] under the
    /// names they have now, once. Called before anything writes a state
    /// that lists them.
    fn report_unprinted(&mut self) -> Result<()> {
        if self.unprinted.is_empty() {
            return Ok(());
        }
        let mut again: Vec<(u32, PathBuf)> = self
            .files
            .by_uid
            .iter()
            .filter(|(_, m)| self.unprinted.contains(&m.unique.base))
            .map(|(uid, m)| (*uid, m.path.clone()))
            .collect();
        again.sort();
        self.unprinted.clear();
        tracing::debug!(
            "{}: {} files placed by an earlier run reported again",
            self.mailbox.name,
            again.len()
        );
        for (uid, path) in again {
            (self.on_new)(&NewMessage {
                folder: self.mailbox.name.clone(),
                path,
                uid,
            });
            self.tuning.check_stop()?;
        }
        Ok(())
    }

    /// The usual case: the state is trusted.
    fn incremental(&mut self, st: FolderState, sel: &Selected, used_qresync: bool) -> Result<()> {
        self.saved = true;
        self.checkpoint_uidnext = st.uidnext;
        self.checkpoint_modseq = st.highestmodseq;
        self.st = st;
        let (changed, presence) = self.server_changes(sel, used_qresync)?;

        // Files a killed run wrote after its last checkpoint: the names
        // say what they are; a file shorter than its S= is torn.
        let leftovers: Vec<u32> = self
            .files
            .by_uid
            .keys()
            .copied()
            .filter(|u| *u >= self.st.uidnext && !self.st.messages.contains_key(u))
            .collect();
        for uid in leftovers {
            let msg = &self.files.by_uid[&uid];
            let real = fs::metadata(&msg.path).map(|m| m.len()).ok();
            if msg.unique.size.is_some() && real != msg.unique.size {
                tracing::warn!(
                    "{}: {} bytes where the name says {}; fetching it again",
                    msg.path.display(),
                    real.unwrap_or(0),
                    msg.unique.size.unwrap_or(0)
                );
                let _ = fs::remove_file(&msg.path);
                self.files.by_uid.remove(&uid);
                self.dirty = true;
            } else {
                self.st.messages.insert(uid, msg.bits());
            }
        }

        // Expunged on the server: forget them; remove the local copy only
        // when asked to.
        let gone: Vec<u32> = self
            .st
            .messages
            .keys()
            .copied()
            .filter(|u| presence.is_gone(*u))
            .collect();
        for uid in gone {
            self.st.messages.remove(&uid);
            if self.options.expunge.to_local()
                && let Some(msg) = self.files.by_uid.remove(&uid)
            {
                fs::remove_file(&msg.path).map_err(|e| Error::writing(&msg.path, e))?;
                self.dirty = true;
                self.report.removed_local += 1;
            }
        }

        self.resolve_appends(sel)?;
        self.merge_flags(sel, &changed)?;

        if self.options.direction.pulls() {
            let to_fetch = self.missing_since(self.st.uidnext, sel)?;
            self.fetch(&to_fetch, sel)?;
        }
        Ok(())
    }

    /// UID → server flags for messages that changed since the state was
    /// written, and which UIDs the server still has.
    fn server_changes(
        &mut self,
        sel: &Selected,
        used_qresync: bool,
    ) -> Result<(HashMap<u32, FlagBits>, Presence)> {
        let mut changed = HashMap::new();
        let st = &self.st;
        if used_qresync && sel.highestmodseq.is_some() {
            for f in &sel.changed {
                if let (Some(uid), Some(flags)) = (f.uid, &f.flags) {
                    changed.insert(uid, bits_from_imap(flags));
                }
            }
            return Ok((changed, Presence::Vanished(sel.vanished.clone())));
        }
        if sel.exists == 0 {
            return Ok((changed, Presence::Present(UidSet::default())));
        }
        let unchanged = sel.highestmodseq.is_some()
            && sel.highestmodseq == Some(st.highestmodseq)
            && sel.uidnext == Some(st.uidnext)
            && sel.exists as usize == st.messages.len();
        if unchanged {
            return Ok((changed, Presence::Vanished(UidSet::default())));
        }
        let modifier = match sel.highestmodseq {
            Some(_) if st.highestmodseq > 0 => Some(format!("CHANGEDSINCE {}", st.highestmodseq)),
            _ => None,
        };
        self.session.uid_fetch(
            "1:*",
            "(UID FLAGS)",
            modifier.as_deref(),
            &mut InMemory,
            &mut |_, f: Fetch| {
                if let (Some(uid), Some(flags)) = (f.uid, &f.flags) {
                    changed.insert(uid, bits_from_imap(flags));
                }
                Ok(())
            },
        )?;
        let present = if modifier.is_some() {
            self.session.uid_search("ALL")?
        } else {
            changed.keys().copied().collect()
        };
        Ok((changed, Presence::Present(present)))
    }

    /// Three-way flag merge for every message in the state; deletions
    /// on the local side expunged on the server when asked to.
    fn merge_flags(&mut self, sel: &Selected, changed: &HashMap<u32, FlagBits>) -> Result<()> {
        let writable = self.can_write(sel);
        let mut add: BTreeMap<FlagBits, UidSet> = BTreeMap::new();
        let mut remove: BTreeMap<FlagBits, UidSet> = BTreeMap::new();
        let mut deleted_here = UidSet::default();
        let uids: Vec<(u32, FlagBits)> = self.st.messages.iter().map(|(u, b)| (*u, *b)).collect();
        for (uid, stored) in uids {
            let base = stored & FLAG_MASK;
            let server = changed.get(&uid).copied().unwrap_or(base);
            let Some(msg) = self.files.by_uid.get(&uid) else {
                // Deleted here: carried to the server when this run says
                // so, else remembered as a deletion on this side only.
                if stored & DELETED_HERE != 0 {
                    continue;
                }
                if self.options.expunge.to_server() {
                    deleted_here.insert(uid);
                } else {
                    self.st.messages.insert(uid, server | DELETED_HERE);
                }
                continue;
            };
            let here = msg.bits();
            let result = merge(base, here, server);
            if result != here {
                let flags = with_synced(&msg.flags, result);
                let renamed = local::rename(&self.root, msg, &msg.unique.clone(), &flags)?;
                self.files.by_uid.insert(uid, renamed);
                self.dirty = true;
                self.report.flags_pulled += 1;
            }
            let mut new_base = result;
            if result != server {
                if writable {
                    let plus = result & !server;
                    let minus = server & !result;
                    if plus != 0 {
                        add.entry(plus).or_default().insert(uid);
                    }
                    if minus != 0 {
                        remove.entry(minus).or_default().insert(uid);
                    }
                    self.report.flags_pushed += 1;
                } else {
                    // Cannot go up now: keep the local change pending.
                    new_base = server;
                }
            }
            self.st.messages.insert(uid, new_base);
        }
        for (bits, set) in &add {
            for chunk in set.to_chunks(SET_CHUNK) {
                self.session
                    .uid_store(&chunk, "+FLAGS.SILENT", &imap_flags(*bits))?;
            }
        }
        for (bits, set) in &remove {
            for chunk in set.to_chunks(SET_CHUNK) {
                self.session
                    .uid_store(&chunk, "-FLAGS.SILENT", &imap_flags(*bits))?;
            }
        }
        if !deleted_here.is_empty() && writable {
            if !self.session.has_capability("UIDPLUS") {
                self.problems.push(format!(
                    "{}: the server lacks UIDPLUS, so local deletions are not expunged there",
                    self.session.object()
                ));
            } else {
                for chunk in deleted_here.to_chunks(SET_CHUNK) {
                    self.session
                        .uid_store(&chunk, "+FLAGS.SILENT", &["\\Deleted"])?;
                    self.session.uid_expunge(&chunk)?;
                }
                for uid in deleted_here.iter() {
                    self.st.messages.remove(&uid);
                }
                self.report.expunged_server += deleted_here.len() as usize;
            }
        }
        Ok(())
    }

    /// The UIDs from `from` up to the server's UIDNEXT that have no local
    /// file and are not in the state.
    fn missing_since(&mut self, from: u32, sel: &Selected) -> Result<UidSet> {
        let mut out = UidSet::default();
        let from = from.max(1);
        let candidates: UidSet = match sel.uidnext {
            Some(next) if next > from => {
                let mut s = UidSet::default();
                s.insert_range(from, next - 1);
                s
            }
            Some(_) => return Ok(out),
            None if sel.exists == 0 => return Ok(out),
            None => {
                let found = self.session.uid_search(&format!("UID {from}:*"))?;
                found.iter().filter(|u| *u >= from).collect()
            }
        };
        // Walk the ranges, skipping UIDs we have; cheap however large.
        let have: BTreeSet<u32> = self
            .files
            .by_uid
            .keys()
            .chain(self.st.messages.keys())
            .copied()
            .filter(|u| *u >= from)
            .collect();
        for &(lo, hi) in candidates.ranges() {
            let mut start = lo;
            for &h in have.range(lo..=hi) {
                if h > start {
                    out.insert_range(start, h - 1);
                }
                start = h.saturating_add(1);
            }
            if start <= hi && start >= lo {
                out.insert_range(start, hi);
            }
        }
        Ok(out)
    }

    /// Fetches `set` (whole messages) into the folder.
    fn fetch(&mut self, set: &UidSet, _sel: &Selected) -> Result<()> {
        if set.is_empty() {
            return Ok(());
        }
        self.report_unprinted()?;
        // Files are placed only once a state is on disk that does not list
        // them: after a kill, the next run tells them from the others and
        // reports them (see `unprinted`).
        if !self.saved {
            self.checkpoint()?;
            self.saved = true;
        }
        (self.on_event)(Event::Fetching {
            folder: &self.mailbox.name,
            count: set.len(),
        });
        let object = self.session.object().to_string();
        let Job {
            session,
            options,
            tuning,
            mailbox,
            root,
            state_path,
            report,
            files,
            st,
            checkpoint_uidnext,
            checkpoint_modseq,
            dirty,
            problems,
            on_new,
            on_event,
            ..
        } = self;
        let mut placer = Placer {
            root,
            state_path,
            folder: &mailbox.name,
            object,
            st,
            files,
            report,
            checkpoint_uidnext: *checkpoint_uidnext,
            checkpoint_modseq: *checkpoint_modseq,
            dirty,
            problems,
            on_new: &mut **on_new,
            on_event: &mut **on_event,
            tuning,
            pending: set.clone(),
            no_body: UidSet::default(),
            since_checkpoint: 0,
        };
        let fetched = fetch::fetch(session, options, tuning, &mailbox.raw, set, &mut placer);
        let pending = placer.pending;
        if let Some(&(lowest, _)) = pending.ranges().first() {
            // Not all arrived (a refusal, a message with no body, a lost
            // connection): the next run asks again from here.
            self.checkpoint_uidnext = self.checkpoint_uidnext.min(lowest);
            self.fetch_incomplete = true;
        }
        if let Err(e) = fetched {
            // Everything placed so far was reported: say so in the state,
            // so the next run does not report it again. Not when the
            // reports themselves stopped (the reader went away).
            if self.tuning.check_stop().is_ok() && self.dirty {
                let _ = self.checkpoint();
            }
            return Err(e);
        }
        Ok(())
    }

    /// Flushes what was written, then writes the state as far as it is
    /// safe to claim (see [`checkpoint`]).
    fn checkpoint(&mut self) -> Result<()> {
        checkpoint(
            &self.root,
            &self.state_path,
            &self.st,
            self.checkpoint_uidnext,
            self.checkpoint_modseq,
        )?;
        self.dirty = false;
        Ok(())
    }

    /// Without a trusted state: match every local file to the server's
    /// messages, rename the matched ones to their UIDs, mark the rest
    /// that came from the server `U=0`, and fetch what has no local copy.
    fn rematch(&mut self, sel: &Selected) -> Result<()> {
        if self.files.all().next().is_none() {
            return self.first_sync(sel);
        }
        let mut server: Vec<ServerMessage> = Vec::new();
        if sel.exists > 0 {
            self.session.uid_fetch(
                "1:*",
                "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
                None,
                &mut InMemory,
                &mut |_, f: Fetch| {
                    if let (Some(uid), Some(size)) = (f.uid, f.size) {
                        let id = match &f.header {
                            Some(Value::String(h)) => local::message_id(h),
                            _ => None,
                        };
                        server.push(ServerMessage {
                            uid,
                            bits: bits_from_imap(f.flags.as_deref().unwrap_or(&[])),
                            size,
                            id,
                        });
                    }
                    Ok(())
                },
            )?;
        }
        let mut locals: Vec<LocalMessage> = Vec::new();
        let mut keys: Vec<(Option<String>, u64)> = Vec::new();
        for m in self.files.all() {
            let size = fs::metadata(&m.path)
                .map_err(|e| Error::reading(&m.path, e))?
                .len();
            // One of ours, shorter or longer than its name says: a write
            // torn by a crash of the machine. The server has it whole.
            if m.unique.uid.is_some() && m.unique.size.is_some_and(|s| s != size) {
                tracing::warn!(
                    "{}: {size} bytes where the name says {}; fetching it again",
                    m.path.display(),
                    m.unique.size.unwrap_or(0)
                );
                fs::remove_file(&m.path).map_err(|e| Error::writing(&m.path, e))?;
                self.dirty = true;
                continue;
            }
            let header = local::read_header(&m.path).map_err(|e| Error::reading(&m.path, e))?;
            // The size the server counts: W= (the file's with CRLF line
            // ends) when the name has it, else the file's own.
            keys.push((local::message_id(&header), m.unique.wire.unwrap_or(size)));
            locals.push(m.clone());
        }
        let mut matcher = Matcher::new(&server);
        // First by the bytes as they are, then (for files with bare LFs,
        // uploaded by an earlier --push) as APPEND sent them.
        let pairs = matcher.assign(self.session, &locals, &keys, false)?;
        let mut matched: Vec<Option<u32>> = pairs;
        let mut crlf_keys = keys.clone();
        let mut second: Vec<usize> = Vec::new();
        for (i, m) in locals.iter().enumerate() {
            if matched[i].is_none()
                && m.unique.wire.is_none()
                && local::has_bare_lf(&m.path).unwrap_or(false)
            {
                let (len, _) =
                    local::hash_file(&m.path, true).map_err(|e| Error::reading(&m.path, e))?;
                crlf_keys[i].1 = len;
                second.push(i);
            }
        }
        if !second.is_empty() {
            let subset: Vec<LocalMessage> = second.iter().map(|i| locals[*i].clone()).collect();
            let subkeys: Vec<(Option<String>, u64)> =
                second.iter().map(|i| crlf_keys[*i].clone()).collect();
            let found = matcher.assign(self.session, &subset, &subkeys, true)?;
            for (j, i) in second.iter().enumerate() {
                matched[*i] = found[j];
            }
        }
        // Last, the same Message-ID with sizes that disagree (a server whose
        // RFC822.SIZE is not the length of its BODY[]): compare contents.
        let leftovers: Vec<usize> = (0..locals.len())
            .filter(|i| matched[*i].is_none() && keys[*i].0.is_some())
            .collect();
        let ids: BTreeSet<&String> = leftovers
            .iter()
            .filter_map(|i| keys[*i].0.as_ref())
            .collect();
        let candidates: Vec<&ServerMessage> = server
            .iter()
            .filter(|s| !matcher.taken.contains(&s.uid))
            .filter(|s| s.id.as_ref().is_some_and(|id| ids.contains(id)))
            .collect();
        if !candidates.is_empty() {
            let hashes = self.server_hashes(candidates.iter().map(|s| s.uid))?;
            for i in leftovers {
                let path = &locals[i].path;
                let raw = local::hash_file(path, false)
                    .map_err(|e| Error::reading(path, e))?
                    .1;
                let crlf = local::hash_file(path, true)
                    .map_err(|e| Error::reading(path, e))?
                    .1;
                let hit = candidates.iter().find(|s| {
                    s.id == keys[i].0
                        && !matcher.taken.contains(&s.uid)
                        && hashes.get(&s.uid).is_some_and(|h| *h == raw || *h == crlf)
                });
                if let Some(s) = hit {
                    matcher.taken.insert(s.uid);
                    matched[i] = Some(s.uid);
                }
            }
        }

        let by_uid: HashMap<u32, &ServerMessage> = server.iter().map(|s| (s.uid, s)).collect();
        let mut st = self.fresh_state(sel);
        let mut add: BTreeMap<FlagBits, UidSet> = BTreeMap::new();
        let mut files = LocalFolder::default();
        let mut renamed = 0usize;
        for (m, found) in locals.iter().zip(&matched) {
            let size = fs::metadata(&m.path).map(|x| x.len()).ok();
            match found {
                Some(uid) => {
                    let srv = by_uid[uid];
                    // No base to merge against: a flag set on either side stays.
                    let bits = m.bits() | srv.bits;
                    let unique = Unique {
                        uid: Some(*uid),
                        size,
                        wire: size.filter(|s| *s != srv.size).map(|_| srv.size),
                        ..m.unique.clone()
                    };
                    let now = local::rename(&self.root, m, &unique, &with_synced(&m.flags, bits))?;
                    if now.path != m.path {
                        renamed += 1;
                        self.dirty = true;
                    }
                    if bits != srv.bits {
                        add.entry(bits & !srv.bits).or_default().insert(*uid);
                        self.report.flags_pushed += 1;
                    }
                    if bits != m.bits() {
                        self.report.flags_pulled += 1;
                    }
                    st.messages.insert(*uid, bits);
                    files.by_uid.insert(*uid, now);
                }
                None if m.unique.uid.is_some_and(|u| u != 0) => {
                    let unique = Unique {
                        uid: Some(0),
                        ..m.unique.clone()
                    };
                    let now = local::rename(&self.root, m, &unique, &m.flags)?;
                    renamed += 1;
                    self.dirty = true;
                    files.gone.push(now);
                }
                None if m.unique.uid == Some(0) => files.gone.push(m.clone()),
                None => files.without_uid.push(m.clone()),
            }
        }
        if renamed > 0 {
            tracing::info!(
                "{}: {renamed} local files renamed to their UIDs",
                self.mailbox.name
            );
        }
        self.files = files;
        self.st = st;
        if self.can_write(sel) {
            for (bits, set) in &add {
                for chunk in set.to_chunks(SET_CHUNK) {
                    self.session
                        .uid_store(&chunk, "+FLAGS.SILENT", &imap_flags(*bits))?;
                }
            }
        }
        let mut to_fetch = UidSet::default();
        for s in &server {
            if !self.st.messages.contains_key(&s.uid) {
                to_fetch.insert(s.uid);
            }
        }
        self.checkpoint_uidnext = self.st.uidnext;
        self.checkpoint_modseq = self.st.highestmodseq;
        if let Some(first) = to_fetch.ranges().first() {
            // Until fetched, the next run must still see them.
            self.checkpoint_uidnext = self.checkpoint_uidnext.min(first.0);
        }
        if self.options.direction.pulls() {
            self.fetch(&to_fetch, sel)?;
        }
        Ok(())
    }

    /// Nothing here yet: nothing to match, every message to fetch.
    fn first_sync(&mut self, sel: &Selected) -> Result<()> {
        self.st = self.fresh_state(sel);
        let to_fetch = if sel.exists == 0 {
            UidSet::default()
        } else {
            self.missing_since(1, sel)?
        };
        self.checkpoint_uidnext = match to_fetch.ranges().first() {
            Some(&(lo, _)) => lo,
            None => self.st.uidnext,
        };
        self.checkpoint_modseq = self.st.highestmodseq;
        if self.options.direction.pulls() {
            self.fetch(&to_fetch, sel)?;
        }
        Ok(())
    }

    /// A state with no messages yet for this folder as `sel` shows it.
    fn fresh_state(&self, sel: &Selected) -> FolderState {
        FolderState {
            folder: self.mailbox.name.clone(),
            local: self.st_local(),
            uidvalidity: sel.uidvalidity,
            highestmodseq: sel.highestmodseq.unwrap_or(0),
            uidnext: sel.uidnext.unwrap_or(0),
            ..FolderState::default()
        }
    }

    fn st_local(&self) -> String {
        self.root
            .strip_prefix(&self.options.maildir)
            .unwrap_or(&self.root)
            .to_string_lossy()
            .into_owned()
    }

    /// Uploads begun by an earlier run that did not see their end: find
    /// each on the server (a message at or above the UIDNEXT of then,
    /// with the same size and sha256) and give the local file its UID;
    /// an upload the server never got is forgotten (the file is still
    /// new and goes up again with `--push`).
    fn resolve_appends(&mut self, _sel: &Selected) -> Result<()> {
        if self.st.appends.is_empty() {
            return Ok(());
        }
        let appends = std::mem::take(&mut self.st.appends);
        let lowest = appends.iter().map(|a| a.uidnext).min().unwrap_or(1).max(1);
        let sizes: BTreeSet<u64> = appends.iter().map(|a| a.size).collect();
        let mut candidates: Vec<(u32, u64)> = Vec::new();
        self.session.uid_fetch(
            &format!("{lowest}:*"),
            "(UID RFC822.SIZE)",
            None,
            &mut InMemory,
            &mut |_, f: Fetch| {
                if let (Some(uid), Some(size)) = (f.uid, f.size)
                    && uid >= lowest
                    && sizes.contains(&size)
                {
                    candidates.push((uid, size));
                }
                Ok(())
            },
        )?;
        let hashes = self.server_hashes(candidates.iter().map(|c| c.0))?;
        let mut claimed: BTreeSet<u32> = BTreeSet::new();
        for a in appends {
            let Some(pos) = self
                .files
                .without_uid
                .iter()
                .position(|m| m.unique.render() == a.unique)
            else {
                continue;
            };
            let hit = candidates.iter().find(|(uid, size)| {
                *uid >= a.uidnext
                    && *size == a.size
                    && !claimed.contains(uid)
                    && !self.st.messages.contains_key(uid)
                    && !self.files.by_uid.contains_key(uid)
                    && hashes.get(uid).is_some_and(|h| hex::encode(h) == a.sha256)
            });
            if let Some((uid, _)) = hit {
                let uid = *uid;
                claimed.insert(uid);
                let msg = self.files.without_uid.remove(pos);
                let now = self.give_uid(&msg, uid, a.size)?;
                self.st.messages.insert(uid, now.bits());
                self.files.by_uid.insert(uid, now);
            }
        }
        Ok(())
    }

    /// sha256 of the server's BODY[] for each UID.
    fn server_hashes(&mut self, uids: impl Iterator<Item = u32>) -> Result<HashMap<u32, [u8; 32]>> {
        server_hashes(self.session, &uids.collect())
    }

    /// Names an uploaded file for `uid`, with its size and the size it
    /// had on the wire (`wire`, line ends made CRLF).
    fn give_uid(&mut self, msg: &LocalMessage, uid: u32, wire: u64) -> Result<LocalMessage> {
        let size = fs::metadata(&msg.path)
            .map_err(|e| Error::reading(&msg.path, e))?
            .len();
        let unique = Unique {
            uid: Some(uid),
            size: Some(size),
            wire: (wire != size).then_some(wire),
            ..msg.unique.clone()
        };
        self.dirty = true;
        local::rename(&self.root, msg, &unique, &msg.flags)
    }

    /// `--push`: APPEND every local file without a UID, then name it
    /// with the UID the server gave. The uploads are recorded in the
    /// state first, so a crash in between does not upload twice.
    fn push(&mut self, sel: &Selected) -> Result<()> {
        if self.files.without_uid.is_empty() {
            return Ok(());
        }
        self.report_unprinted()?;
        if !self.can_write(sel) {
            self.problems.push(format!(
                "{}: read-only; nothing uploaded",
                self.mailbox.name
            ));
            return Ok(());
        }
        let uidnext = sel.uidnext.unwrap_or(1);
        let mut plan: Vec<(LocalMessage, PendingAppend)> = Vec::new();
        for m in &self.files.without_uid {
            let (size, hash) =
                local::hash_file(&m.path, true).map_err(|e| Error::reading(&m.path, e))?;
            plan.push((
                m.clone(),
                PendingAppend {
                    uidnext,
                    size,
                    sha256: hex::encode(hash),
                    unique: m.unique.render(),
                },
            ));
        }
        self.st.appends = plan.iter().map(|(_, a)| a.clone()).collect();
        let final_uidnext = self.final_uidnext(sel);
        self.checkpoint_uidnext = final_uidnext;
        self.checkpoint_modseq = sel.highestmodseq.unwrap_or(0);
        self.checkpoint()?;
        for (m, a) in plan {
            let file = fs::File::open(&m.path).map_err(|e| Error::reading(&m.path, e))?;
            let mut reader = local::CrlfReader::new(file);
            let flags = imap_flags(m.bits());
            match self
                .session
                .append_from(&self.mailbox.raw, &flags, &mut reader, a.size)
            {
                Ok(Some((validity, uid)))
                    if validity == sel.uidvalidity && self.session.has_capability("UIDPLUS") =>
                {
                    let now = self.give_uid(&m, uid, a.size)?;
                    self.st.messages.insert(uid, now.bits());
                    self.files.without_uid.retain(|x| x.path != m.path);
                    self.files.by_uid.insert(uid, now);
                    self.st.appends.retain(|x| x.unique != a.unique);
                    self.report.uploaded += 1;
                }
                // Uploaded, but the server did not say where: the next
                // run finds it by its hash.
                Ok(_) => self.report.uploaded += 1,
                Err(e) if crate::imap::breaks_session(&e) => return Err(e),
                Err(e) => {
                    self.st.appends.retain(|x| x.unique != a.unique);
                    self.problems.push(format!(
                        "{}: {}",
                        m.path.display(),
                        crate::error::chain(&e)
                    ));
                }
            }
        }
        Ok(())
    }

    /// UIDNEXT the state may claim at the end: the server's when every
    /// message was fetched, else where fetching must resume.
    fn final_uidnext(&self, sel: &Selected) -> u32 {
        match sel.uidnext {
            Some(next) if self.options.direction.pulls() && !self.fetch_incomplete => next,
            Some(next) => next.min(self.checkpoint_uidnext),
            None => self.checkpoint_uidnext,
        }
    }

    /// The entry that lets the next pass skip this folder (see
    /// [`unchanged`]): only when nothing is left to do, nothing changed
    /// here during the pass (the directory times are those read before
    /// the listing), and those times were settled when read.
    fn unchanged_entry(&self, sel: &Selected, before: &DirStamps) -> Option<unchanged::Entry> {
        let highestmodseq = sel.highestmodseq.filter(|m| *m > 0)?;
        let uidnext = sel.uidnext?;
        let in_step = self.problems.is_empty()
            && !self.fetch_incomplete
            && self.st.appends.is_empty()
            && self.final_uidnext(sel) == uidnext
            && before.settled();
        if !in_step {
            return None;
        }
        let after = DirStamps::read(&self.root);
        if !after.same_times(before) {
            return None;
        }
        Some(unchanged::Entry {
            local: self.st_local(),
            uidvalidity: sel.uidvalidity,
            uidnext,
            highestmodseq,
            messages: sel.exists,
            state: unchanged::Stamp::of(&self.state_path)?,
            cur: after.cur?,
            new: after.new?,
            uploads_left: !self.files.without_uid.is_empty(),
        })
    }

    /// Flushes and writes the state when anything changed.
    fn finish(&mut self, sel: &Selected, loaded: Option<&FolderState>) -> Result<()> {
        let mut st = self.st.clone();
        st.folder = self.mailbox.name.clone();
        st.local = self.st_local();
        st.uidvalidity = sel.uidvalidity;
        st.highestmodseq = sel.highestmodseq.unwrap_or(0);
        st.uidnext = self.final_uidnext(sel);
        if Some(&st) == loaded && !self.dirty {
            return Ok(());
        }
        if self.dirty {
            local::flush_to_disk(&self.root)?;
            self.dirty = false;
        }
        state::save(&self.state_path, &st)?;
        self.st = st;
        Ok(())
    }
}

/// Flushes everything written under `root` to disk, then saves `st`
/// claiming no more than is safe: every UID below `uidnext` looked at,
/// and changes since `modseq` still to be read again.
/// sha256 of the server's BODY[] for each UID of `set`, streamed (never
/// a whole message in memory).
fn server_hashes(session: &mut Session, set: &UidSet) -> Result<HashMap<u32, [u8; 32]>> {
    let mut out = HashMap::new();
    let mut sink = HashSink::default();
    for chunk in set.to_chunks(SET_CHUNK) {
        session.uid_fetch(
            &chunk,
            "(UID BODY.PEEK[])",
            None,
            &mut sink,
            &mut |sink: &mut HashSink, f: Fetch| {
                if let (Some(uid), Some(h)) = (f.uid, sink.last.take()) {
                    out.insert(uid, h);
                }
                Ok(())
            },
        )?;
    }
    Ok(out)
}

pub(super) fn checkpoint(
    root: &Path,
    path: &Path,
    st: &FolderState,
    uidnext: u32,
    modseq: u64,
) -> Result<()> {
    local::flush_to_disk(root)?;
    let mut snapshot = st.clone();
    snapshot.uidnext = uidnext;
    snapshot.highestmodseq = modseq;
    state::save(path, &snapshot)
}

/// Pairs local files with server messages by (Message-ID, size), then
/// by sha256 where several share a key.
struct Matcher {
    by_key: HashMap<(Option<String>, u64), Vec<u32>>,
    taken: BTreeSet<u32>,
}

impl Matcher {
    fn new(server: &[ServerMessage]) -> Self {
        let mut by_key: HashMap<(Option<String>, u64), Vec<u32>> = HashMap::new();
        for s in server {
            by_key
                .entry((s.id.clone(), s.size))
                .or_default()
                .push(s.uid);
        }
        Matcher {
            by_key,
            taken: BTreeSet::new(),
        }
    }

    /// A UID for each local file (same order), or None. `crlf`: compare
    /// the files as APPEND would send them.
    fn assign(
        &mut self,
        session: &mut Session,
        locals: &[LocalMessage],
        keys: &[(Option<String>, u64)],
        crlf: bool,
    ) -> Result<Vec<Option<u32>>> {
        let mut out = vec![None; locals.len()];
        let mut groups: HashMap<&(Option<String>, u64), Vec<usize>> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            groups.entry(k).or_default().push(i);
        }
        let mut ambiguous: Vec<(Vec<usize>, Vec<u32>)> = Vec::new();
        for (key, idx) in groups {
            let Some(uids) = self.by_key.get(key) else {
                continue;
            };
            let free: Vec<u32> = uids
                .iter()
                .copied()
                .filter(|u| !self.taken.contains(u))
                .collect();
            if free.is_empty() {
                continue;
            }
            if free.len() == 1 && idx.len() == 1 {
                out[idx[0]] = Some(free[0]);
                self.taken.insert(free[0]);
            } else {
                ambiguous.push((idx, free));
            }
        }
        if ambiguous.is_empty() {
            return Ok(out);
        }
        // Hash both sides of every ambiguous group.
        let uids: UidSet = ambiguous
            .iter()
            .flat_map(|(_, u)| u.iter().copied())
            .collect();
        let server_hash = server_hashes(session, &uids)?;
        for (idx, free) in ambiguous {
            for i in idx {
                // A file whose name has W= was stored with LF line ends:
                // what the server sent is its CRLF form.
                let as_sent = crlf || locals[i].unique.wire.is_some();
                let (_, h) = local::hash_file(&locals[i].path, as_sent)
                    .map_err(|e| Error::reading(&locals[i].path, e))?;
                let hit = free
                    .iter()
                    .copied()
                    .find(|u| !self.taken.contains(u) && server_hash.get(u) == Some(&h));
                if let Some(u) = hit {
                    out[i] = Some(u);
                    self.taken.insert(u);
                }
            }
        }
        Ok(out)
    }
}
