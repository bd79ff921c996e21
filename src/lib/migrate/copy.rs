//! One pass over a mailbox pair, folder by folder: what changed on
//! either side since the state was written, which destination messages
//! already are copies of source messages (Message-ID and size, then
//! sha256 where that is ambiguous), flags brought in line, deletions
//! mirrored when asked, and the rest streamed across.
//!
//! Streaming: the source's `UID FETCH ... BODY.PEEK[]` answer is read by
//! a literal sink that starts an APPEND on the destination as each body
//! begins and copies its bytes through the reader's buffer, so no
//! message is ever stored locally or held whole. Destination answers are
//! read as they come (LITERAL+) or MULTIAPPEND batches are closed every
//! 64 messages or 8 MiB; a refused batch is sent again one message at a
//! time to find the one the server will not take.
//!
//! It does not list or map folders beyond calling [`super::folders`],
//! and keeps no state of its own beyond [`super::state`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use super::folders::{self, FolderPair, Naming};
use super::state::{self, FolderState, MailboxState, SideState};
use super::{
    Event, FailedMessage, FolderReport, Job, Limits, MailboxReport, Opener, Options, Side, Trust,
};
use crate::error::{Error, ErrorKind, Result, chain};
use crate::imap::{
    AppendOutcome, AppendStream, Fetch, InMemory, Literals, MailboxStatus, SelectMode, Session,
    UidSet, Value, breaks_session, encode_mailbox_name, read_literal_to_memory,
};
use crate::sync::local::{HashSink, message_id};

/// Below this many messages one connection pair copies a folder alone.
const SHARE_FROM: u64 = 100;

/// UIDs dealt to each connection pair in turn.
const BLOCK: usize = 128;

/// Messages copied between two state checkpoints.
const CHECKPOINT_EVERY: usize = 500;

/// Longest sequence set per command.
const SET_CHUNK: usize = 4000;

/// What the pass needs to know of a message on either side.
#[derive(Debug, Clone, Default)]
pub(super) struct Meta {
    pub uid: u32,
    pub size: u64,
    pub flags: Vec<String>,
    pub date: Option<String>,
    pub message_id: Option<String>,
}

/// The STATUS items asked of a side.
pub(super) fn status_items(session: &Session) -> &'static str {
    if session.has_capability("CONDSTORE") {
        "MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ"
    } else {
        "MESSAGES UIDNEXT UIDVALIDITY"
    }
}

/// Flags that can be stored: `\Recent` is the server's own.
pub(super) fn storable(flags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = flags
        .iter()
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

pub(super) fn mailbox_pass(
    job: &Job,
    options: &Options,
    trust: &Trust,
    limits: &Limits,
    on_event: &(dyn Fn(Event<'_>) + Sync),
    report: &mut MailboxReport,
) -> Result<()> {
    let state_path = state::path_for(
        &options.state_dir,
        &job.source.name(),
        &job.destination.name(),
    );
    let _lock = state::lock(&state_path, &job.name)?;
    let mut st = match state::load(&state_path) {
        Ok(s) => s.unwrap_or_default(),
        Err(why) => {
            tracing::warn!("{why}");
            MailboxState::default()
        }
    };
    let opener = Opener::new(job, options, trust, limits)?;
    let (mut src, mut dst) = opener.pair()?;
    let started = std::time::Instant::now();
    let Lists {
        pairs,
        src_status,
        dst_status,
    } = mailbox_lists(&mut src.session, &mut dst.session, options)?;
    let mut helpers: Vec<(Side<'_>, Side<'_>)> = Vec::new();
    let mut failure: Option<Error> = None;
    for pair in &pairs {
        let mut fr = FolderReport {
            source: pair.source.name.clone(),
            destination: pair.destination.clone(),
            ..FolderReport::default()
        };
        let mut fstate = st.folders.remove(&pair.source.name).unwrap_or_default();
        if fstate.destination != pair.destination {
            fstate = FolderState {
                destination: pair.destination.clone(),
                ..FolderState::default()
            };
        }
        let dst_raw = pair
            .existing
            .as_ref()
            .map(|m| m.raw.clone())
            .unwrap_or_else(|| encode_mailbox_name(&pair.destination));
        let mut ctx = Ctx {
            src: &mut src.session,
            dst: &mut dst.session,
            helpers: &mut helpers,
            opener: &opener,
            options,
            mailbox: &job.name,
            on_event,
        };
        let outcome = (|| -> Result<()> {
            if pair.existing.is_none() {
                ctx.dst.create(&dst_raw)?;
            }
            let save = |f: &FolderState| -> Result<()> {
                let mut whole = st.clone();
                whole.folders.insert(pair.source.name.clone(), f.clone());
                state::save(&state_path, &whole)
            };
            // A helper that failed may have left copies unrecorded: the
            // second round finds them like a rerun would.
            for round in 0..2 {
                let complete = folder_pass(
                    &mut ctx,
                    pair,
                    &dst_raw,
                    src_status.get(&status_key(&pair.source)),
                    if round == 0 && pair.existing.is_some() {
                        dst_status.get(&status_key_raw(&dst_raw))
                    } else {
                        None
                    },
                    &mut fstate,
                    &mut fr,
                    &save,
                )?;
                if complete {
                    break;
                }
            }
            Ok(())
        })();
        match outcome {
            Ok(()) => {}
            Err(e) if breaks_session(&e) => {
                fr.error = Some(chain(&e));
                failure = Some(e);
            }
            Err(e) => fr.error = Some(chain(&e)),
        }
        st.folders.insert(pair.source.name.clone(), fstate);
        report.folders.push(fr);
        if failure.is_some() {
            break;
        }
    }
    let copied: u64 = report.folders.iter().map(|f| f.bytes).sum();
    if copied > 0 {
        st.last_rate = Some((copied, started.elapsed().as_secs_f64()));
    }
    state::save(&state_path, &st)?;
    if let Some(e) = failure {
        return Err(e);
    }
    report.subscribed = subscribe(&mut src.session, &mut dst.session, &pairs)?;
    for (s, d) in helpers {
        s.session.logout();
        d.session.logout();
    }
    src.session.logout();
    dst.session.logout();
    Ok(())
}

/// Both sides' folders, paired, with each side's STATUS.
pub(super) struct Lists {
    pub pairs: Vec<FolderPair>,
    pub src_status: HashMap<String, MailboxStatus>,
    pub dst_status: HashMap<String, MailboxStatus>,
}

/// Lists both sides (one LIST-STATUS each where offered) and pairs the
/// folders as the options say.
pub(super) fn mailbox_lists(
    src: &mut Session,
    dst: &mut Session,
    options: &Options,
) -> Result<Lists> {
    let src_items = status_items(src);
    let dst_items = status_items(dst);
    let (src_list, src_status) = src.list_with_status(src_items)?;
    let (dst_list, dst_status) = dst.list_with_status(dst_items)?;
    let src_naming = Naming::of(src.namespace()?.as_ref(), &src_list);
    let dst_naming = Naming::of(dst.namespace()?.as_ref(), &dst_list);
    let pairs = folders::pair_folders(
        &options.mapping,
        &src_list,
        &src_naming,
        &dst_list,
        &dst_naming,
    );
    Ok(Lists {
        pairs,
        src_status,
        dst_status,
    })
}

fn status_key(m: &crate::imap::Mailbox) -> String {
    status_key_raw(&m.raw)
}

fn status_key_raw(raw: &str) -> String {
    if raw.eq_ignore_ascii_case("INBOX") {
        "INBOX".into()
    } else {
        raw.to_string()
    }
}

/// Subscribes on the destination the folders subscribed on the source.
fn subscribe(src: &mut Session, dst: &mut Session, pairs: &[FolderPair]) -> Result<u64> {
    let wanted: BTreeSet<&str> = {
        let subscribed: BTreeSet<String> = src.subscribed()?.into_iter().map(|m| m.name).collect();
        pairs
            .iter()
            .filter(|p| subscribed.contains(&p.source.name))
            .map(|p| p.destination.as_str())
            .collect()
    };
    if wanted.is_empty() {
        return Ok(0);
    }
    let have: BTreeSet<String> = dst.subscribed()?.into_iter().map(|m| m.name).collect();
    let mut added = 0;
    for name in wanted.into_iter().filter(|n| !have.contains(*n)) {
        dst.subscribe(&encode_mailbox_name(name))?;
        added += 1;
    }
    Ok(added)
}

/// Everything a folder pass touches.
struct Ctx<'c, 'a> {
    src: &'c mut Session,
    dst: &'c mut Session,
    helpers: &'c mut Vec<(Side<'a>, Side<'a>)>,
    opener: &'c Opener<'a>,
    options: &'c Options,
    mailbox: &'c str,
    on_event: &'c (dyn Fn(Event<'_>) + Sync),
}

/// Whether a side is as the state left it.
fn unchanged(side: &SideState, now: Option<&MailboxStatus>, modseq_needed: bool) -> bool {
    let Some(now) = now else { return false };
    side.uidvalidity != 0
        && now.uidvalidity == Some(side.uidvalidity)
        && now.uidnext == Some(side.uidnext)
        && now.messages == Some(side.messages)
        && (!modseq_needed
            || (side.highestmodseq != 0 && now.highestmodseq == Some(side.highestmodseq)))
}

/// One pass over a folder pair. False when a helper connection failed
/// and the pass should run again to find what it left unrecorded.
#[allow(clippy::too_many_arguments)]
fn folder_pass(
    ctx: &mut Ctx<'_, '_>,
    pair: &FolderPair,
    dst_raw: &str,
    src_now: Option<&MailboxStatus>,
    dst_now: Option<&MailboxStatus>,
    fstate: &mut FolderState,
    fr: &mut FolderReport,
    save: &dyn Fn(&FolderState) -> Result<()>,
) -> Result<bool> {
    if unchanged(&fstate.source_side, src_now, true)
        && unchanged(&fstate.destination_side, dst_now, false)
        && !(ctx.options.delete && fstate.kept_gone > 0)
        && !fstate.copying
        && !fstate.recheck
    {
        fr.unchanged = true;
        return Ok(true);
    }
    let src_raw = pair.source.raw.clone();
    let condstore = ctx.src.has_capability("CONDSTORE");
    let sel = ctx.src.examine_with(
        &src_raw,
        &if condstore {
            SelectMode::Condstore
        } else {
            SelectMode::Plain
        },
    )?;
    let dsel = ctx.dst.select(dst_raw, &SelectMode::Plain)?;
    if fstate.source_side.uidvalidity != sel.uidvalidity
        || fstate.destination_side.uidvalidity != dsel.uidvalidity
    {
        fstate.pairs.clear();
        fstate.flag_sets.clear();
        fstate.source_side = SideState::default();
    }
    let src_uids = if sel.exists == 0 {
        UidSet::default()
    } else {
        ctx.src.uid_search("ALL")?
    };
    let dst_uids = if dsel.exists == 0 {
        UidSet::default()
    } else {
        ctx.dst.uid_search("ALL")?
    };
    // Pairs whose copy is gone from the destination are copied again.
    let lost: Vec<u32> = fstate
        .pairs
        .iter()
        .filter(|(_, p)| !dst_uids.contains(p.to))
        .map(|(s, _)| *s)
        .collect();
    for s in lost {
        fstate.pairs.remove(&s);
    }
    // Pairs whose source is gone: expunged on the destination with
    // --delete, else kept (for a later pass with --delete).
    let gone: Vec<u32> = fstate
        .pairs
        .keys()
        .copied()
        .filter(|u| !src_uids.contains(*u))
        .collect();
    fstate.kept_gone = if ctx.options.delete {
        0
    } else {
        gone.len() as u64
    };
    if !gone.is_empty() && ctx.options.delete {
        {
            let set: UidSet = gone.iter().map(|u| fstate.pairs[u].to).collect();
            for chunk in set.to_chunks(SET_CHUNK) {
                ctx.dst.uid_store(&chunk, "+FLAGS.SILENT", &["\\Deleted"])?;
                if ctx.dst.has_capability("UIDPLUS") {
                    ctx.dst.uid_expunge(&chunk)?;
                }
            }
            if !ctx.dst.has_capability("UIDPLUS") {
                tracing::warn!(
                    "{}: {}: no UIDPLUS; {} messages marked \\Deleted, not expunged",
                    ctx.dst.object(),
                    pair.destination,
                    set.len()
                );
            }
            fr.deleted += set.len();
        }
        for u in gone {
            fstate.pairs.remove(&u);
        }
    }
    // A pass that died while copying may have left a command the server
    // carried out after the next pass had looked: exact copies of
    // messages that are paired already. They go, and nothing is lost.
    let recovering = fstate.copying;
    if recovering || fstate.recheck {
        fr.duplicates_removed += remove_duplicates(ctx.dst, fstate)?;
    }
    let dst_uids = if recovering || fstate.recheck {
        ctx.dst.uid_search("ALL")?
    } else {
        dst_uids
    };
    // What is new on the source, with what we need to copy it.
    let new: UidSet = src_uids
        .iter()
        .filter(|u| !fstate.pairs.contains_key(u))
        .collect();
    let mut metas = fetch_meta(ctx.src, &new)?;
    // Flag changes of the messages already paired.
    let paired: UidSet = fstate.pairs.keys().copied().collect();
    let since = (condstore && fstate.source_side.highestmodseq > 0)
        .then_some(fstate.source_side.highestmodseq);
    let changed = fetch_flags(ctx.src, &paired, since)?;
    let mut updates: BTreeMap<(Vec<String>, Vec<String>), UidSet> = BTreeMap::new();
    for (uid, now) in &changed {
        let Some(p) = fstate.pairs.get(uid).cloned() else {
            continue;
        };
        let now = storable(now);
        let base = fstate.flags_of(&p).to_vec();
        let add: Vec<String> = now.iter().filter(|f| !base.contains(f)).cloned().collect();
        let remove: Vec<String> = base.iter().filter(|f| !now.contains(f)).cloned().collect();
        if !add.is_empty() || !remove.is_empty() {
            updates.entry((add, remove)).or_default().insert(p.to);
        }
        fstate.record(*uid, p.to, &now);
    }
    // Destination messages no pair names: copies from an interrupted
    // pass, or mail that was there before.
    let named: BTreeSet<u32> = fstate.pairs.values().map(|p| p.to).collect();
    let unnamed: UidSet = dst_uids.iter().filter(|u| !named.contains(u)).collect();
    if !metas.is_empty() && !unnamed.is_empty() {
        let candidates = fetch_meta(ctx.dst, &unnamed)?;
        let wanted: Vec<&Meta> = metas.values().collect();
        let found = match_copies(ctx.src, ctx.dst, &wanted, &candidates)?;
        for (s, d) in found {
            let (Some(m), Some(c)) = (metas.remove(&s), candidates.get(&d)) else {
                continue;
            };
            let want = storable(&m.flags);
            let have = storable(&c.flags);
            let add: Vec<String> = want.iter().filter(|f| !have.contains(f)).cloned().collect();
            let remove: Vec<String> = have.iter().filter(|f| !want.contains(f)).cloned().collect();
            if !add.is_empty() || !remove.is_empty() {
                updates.entry((add, remove)).or_default().insert(d);
            }
            fstate.record(s, d, &want);
            fr.found += 1;
        }
    }
    for ((add, remove), set) in &updates {
        let add: Vec<&str> = add.iter().map(String::as_str).collect();
        let remove: Vec<&str> = remove.iter().map(String::as_str).collect();
        for chunk in set.to_chunks(SET_CHUNK) {
            if !add.is_empty() {
                ctx.dst.uid_store(&chunk, "+FLAGS.SILENT", &add)?;
            }
            if !remove.is_empty() {
                ctx.dst.uid_store(&chunk, "-FLAGS.SILENT", &remove)?;
            }
        }
        fr.flags_updated += set.len();
    }
    // The rest goes across.
    let to_copy: UidSet = metas.keys().copied().collect();
    let mut complete = true;
    let mut no_uid: Vec<u32> = Vec::new();
    if !to_copy.is_empty() {
        let bytes: u64 = metas.values().map(|m| m.size).sum();
        (ctx.on_event)(Event::Copying {
            mailbox: ctx.mailbox,
            folder: &pair.source.name,
            messages: to_copy.len(),
            bytes,
        });
        fstate.copying = true;
        save(fstate)?;
        let stop = AtomicBool::new(false);
        let mut since_checkpoint = 0usize;
        let mut save_error: Option<Error> = None;
        let mailbox = ctx.mailbox;
        let on_event = ctx.on_event;
        let mut deliver = |uid: u32, result: Result<Option<u32>>| {
            let Some(m) = metas.get(&uid) else { return };
            match result {
                Ok(to) => {
                    match to {
                        Some(to) => fstate.record(uid, to, &storable(&m.flags)),
                        None => no_uid.push(uid),
                    }
                    fr.copied += 1;
                    fr.bytes += m.size;
                    on_event(Event::Copied {
                        mailbox,
                        bytes: m.size,
                    });
                    since_checkpoint += 1;
                    if since_checkpoint >= CHECKPOINT_EVERY && save_error.is_none() {
                        since_checkpoint = 0;
                        if let Err(e) = save(fstate) {
                            save_error = Some(e);
                            stop.store(true, Ordering::SeqCst);
                        }
                    }
                }
                Err(e) => {
                    let text = chain(&e);
                    if text.contains("[OVERQUOTA]") {
                        // Every later message would be refused too.
                        stop.store(true, Ordering::SeqCst);
                    }
                    fr.failed_messages.push(FailedMessage {
                        uid,
                        size: m.size,
                        message_id: m.message_id.clone(),
                        error: text,
                    });
                }
            }
        };
        complete = copy_set(
            ctx,
            &src_raw,
            dst_raw,
            &metas,
            &to_copy,
            &stop,
            &mut deliver,
        )?;
        if let Some(e) = save_error {
            return Err(e);
        }
        if fr
            .failed_messages
            .iter()
            .any(|f| f.error.contains("[OVERQUOTA]"))
        {
            fr.error = Some(format!(
                "{}: {}: over quota; the rest of the folder was not copied",
                ctx.dst.object(),
                pair.destination
            ));
        }
    }
    // Without UIDPLUS the copies' UIDs are found as a rerun would.
    if !no_uid.is_empty() {
        let fresh: UidSet = ctx
            .dst
            .uid_search(&format!("UID {}:*", dsel.uidnext.unwrap_or(1).max(1)))?
            .iter()
            .collect();
        let candidates = fetch_meta(ctx.dst, &fresh)?;
        let wanted: Vec<&Meta> = no_uid.iter().filter_map(|u| metas.get(u)).collect();
        for (s, d) in match_copies(ctx.src, ctx.dst, &wanted, &candidates)? {
            if let Some(m) = metas.get(&s) {
                fstate.record(s, d, &storable(&m.flags));
            }
        }
    }
    if recovering {
        // What the dead pass's last command stored may have landed
        // while this one copied.
        fr.duplicates_removed += remove_duplicates(ctx.dst, fstate)?;
    }
    fstate.recheck = recovering;
    fstate.copying = false;
    let after = ctx.dst.status(dst_raw, "MESSAGES UIDNEXT UIDVALIDITY")?;
    fstate.source_side = SideState {
        uidvalidity: sel.uidvalidity,
        uidnext: sel.uidnext.unwrap_or(0),
        messages: sel.exists,
        highestmodseq: sel.highestmodseq.unwrap_or(0),
    };
    fstate.destination_side = SideState {
        uidvalidity: after.uidvalidity.unwrap_or(dsel.uidvalidity),
        uidnext: after.uidnext.unwrap_or(0),
        messages: after.messages.unwrap_or(0),
        highestmodseq: 0,
    };
    if !complete || !fr.failed_messages.is_empty() {
        // Not trusted: the next round (or pass) looks again, and tries
        // again what did not go.
        fstate.source_side = SideState::default();
    }
    save(fstate)?;
    Ok(complete)
}

/// Expunges from the selected destination folder every message no pair
/// names that is a byte-for-byte copy (same Message-ID, size and sha256)
/// of one a pair names; returns how many.
fn remove_duplicates(dst: &mut Session, fstate: &FolderState) -> Result<u64> {
    let all = dst.uid_search("ALL")?;
    let named: BTreeSet<u32> = fstate.pairs.values().map(|p| p.to).collect();
    let unnamed: UidSet = all.iter().filter(|u| !named.contains(u)).collect();
    if unnamed.is_empty() {
        return Ok(0);
    }
    let loose = fetch_meta(dst, &unnamed)?;
    let paired: UidSet = all.iter().filter(|u| named.contains(u)).collect();
    let kept = fetch_meta(dst, &paired)?;
    type Key = (Option<String>, u64);
    let mut by_key: HashMap<Key, Vec<u32>> = HashMap::new();
    for m in kept.values() {
        by_key
            .entry((m.message_id.clone(), m.size))
            .or_default()
            .push(m.uid);
    }
    let mut suspects = UidSet::default();
    for m in loose.values() {
        if let Some(twins) = by_key.get(&(m.message_id.clone(), m.size)) {
            suspects.insert(m.uid);
            for t in twins {
                suspects.insert(*t);
            }
        }
    }
    if suspects.is_empty() {
        return Ok(0);
    }
    let h = hashes(dst, &suspects)?;
    let kept_hashes: BTreeSet<[u8; 32]> = suspects
        .iter()
        .filter(|u| named.contains(u))
        .filter_map(|u| h.get(&u).copied())
        .collect();
    let doubles: UidSet = suspects
        .iter()
        .filter(|u| !named.contains(u))
        .filter(|u| h.get(u).is_some_and(|x| kept_hashes.contains(x)))
        .collect();
    if doubles.is_empty() {
        return Ok(0);
    }
    tracing::info!(
        "{}: {} late copies of an interrupted pass removed",
        dst.object(),
        doubles.len()
    );
    for chunk in doubles.to_chunks(SET_CHUNK) {
        dst.uid_store(&chunk, "+FLAGS.SILENT", &["\\Deleted"])?;
        if dst.has_capability("UIDPLUS") {
            dst.uid_expunge(&chunk)?;
        }
    }
    Ok(doubles.len())
}

/// UID, flags, size, INTERNALDATE and Message-ID of each message of `set`.
fn fetch_meta(session: &mut Session, set: &UidSet) -> Result<HashMap<u32, Meta>> {
    let mut out = HashMap::new();
    for chunk in set.to_chunks(SET_CHUNK) {
        session.uid_fetch(
            &chunk,
            "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
            None,
            &mut InMemory,
            &mut |_, f: Fetch| {
                if let (Some(uid), Some(size)) = (f.uid, f.size) {
                    let message_id = match &f.header {
                        Some(Value::String(h)) => message_id(h),
                        _ => None,
                    };
                    out.insert(
                        uid,
                        Meta {
                            uid,
                            size,
                            flags: f.flags.unwrap_or_default(),
                            date: f.internal_date,
                            message_id,
                        },
                    );
                }
                Ok(())
            },
        )?;
    }
    Ok(out)
}

/// The flags of the messages of `set` (those changed since `since`, with
/// CONDSTORE).
fn fetch_flags(
    session: &mut Session,
    set: &UidSet,
    since: Option<u64>,
) -> Result<HashMap<u32, Vec<String>>> {
    let mut out = HashMap::new();
    let modifier = since.map(|m| format!("CHANGEDSINCE {m}"));
    for chunk in set.to_chunks(SET_CHUNK) {
        session.uid_fetch(
            &chunk,
            "(UID FLAGS)",
            modifier.as_deref(),
            &mut InMemory,
            &mut |_, f: Fetch| {
                if let (Some(uid), Some(flags)) = (f.uid, f.flags) {
                    out.insert(uid, flags);
                }
                Ok(())
            },
        )?;
    }
    Ok(out)
}

/// The sha256 of each message of `set`.
fn hashes(session: &mut Session, set: &UidSet) -> Result<HashMap<u32, [u8; 32]>> {
    let mut out = HashMap::new();
    let mut sink = HashSink { last: None };
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

/// Which `wanted` source messages already have a copy among the
/// destination's `candidates`: the same Message-ID and size, one on each
/// side; where that is ambiguous (no Message-ID, or several with the
/// same), the same sha256. Each candidate serves once.
pub(super) fn match_copies(
    src: &mut Session,
    dst: &mut Session,
    wanted: &[&Meta],
    candidates: &HashMap<u32, Meta>,
) -> Result<Vec<(u32, u32)>> {
    type Key = (Option<String>, u64);
    let mut by_key: BTreeMap<Key, (Vec<u32>, Vec<u32>)> = BTreeMap::new();
    for m in wanted {
        by_key
            .entry((m.message_id.clone(), m.size))
            .or_default()
            .0
            .push(m.uid);
    }
    for c in candidates.values() {
        if let Some(e) = by_key.get_mut(&(c.message_id.clone(), c.size)) {
            e.1.push(c.uid);
        }
    }
    let mut found = Vec::new();
    let mut src_hash = UidSet::default();
    let mut dst_hash = UidSet::default();
    for ((id, _), (s, d)) in &by_key {
        if d.is_empty() {
            continue;
        }
        if id.is_some() && s.len() == 1 && d.len() == 1 {
            found.push((s[0], d[0]));
        } else {
            src_hash.extend(&s.iter().copied().collect());
            dst_hash.extend(&d.iter().copied().collect());
        }
    }
    if !src_hash.is_empty() {
        let sh = hashes(src, &src_hash)?;
        let dh = hashes(dst, &dst_hash)?;
        let mut free: HashMap<[u8; 32], Vec<u32>> = HashMap::new();
        for (u, h) in dh {
            free.entry(h).or_default().push(u);
        }
        for v in free.values_mut() {
            v.sort_unstable_by(|a, b| b.cmp(a));
        }
        let mut sorted: Vec<(u32, [u8; 32])> = sh.into_iter().collect();
        sorted.sort_unstable();
        for (u, h) in sorted {
            if let Some(d) = free.get_mut(&h).and_then(Vec::pop) {
                found.push((u, d));
            }
        }
    }
    Ok(found)
}

/// `set` dealt into `n` shares, blocks of [`BLOCK`] UIDs in turn.
fn deal(set: &UidSet, n: usize) -> Vec<UidSet> {
    let mut shares = vec![UidSet::default(); n.max(1)];
    for (i, uid) in set.iter().enumerate() {
        shares[(i / BLOCK) % n.max(1)].insert(uid);
    }
    shares
}

/// Copies `set` over the main pair and, when it is large, helper pairs
/// too; every message's outcome goes to `deliver` on this thread. False
/// when a helper failed (what it had sent may be on the destination
/// without its answer: the caller looks again).
fn copy_set(
    ctx: &mut Ctx<'_, '_>,
    src_raw: &str,
    dst_raw: &str,
    metas: &HashMap<u32, Meta>,
    set: &UidSet,
    stop: &AtomicBool,
    deliver: &mut dyn FnMut(u32, Result<Option<u32>>),
) -> Result<bool> {
    let multi = true;
    if set.len() >= SHARE_FROM {
        while ctx.helpers.len() + 1 < ctx.options.connections.max(1) {
            match ctx.opener.spare_pair() {
                Ok(Some(p)) => ctx.helpers.push(p),
                Ok(None) => break,
                Err(e) => {
                    tracing::info!("no helper connection: {}", chain(&e));
                    break;
                }
            }
        }
    }
    let n = if set.len() >= SHARE_FROM {
        ctx.helpers.len() + 1
    } else {
        1
    };
    let shares = deal(set, n);
    let (mine, theirs) = shares.split_first().expect("at least one share");
    let mut broken: Vec<usize> = Vec::new();
    let src = &mut *ctx.src;
    let dst = &mut *ctx.dst;
    let helpers = &mut *ctx.helpers;
    let outcome = std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = mpsc::channel::<(u32, Result<Option<u32>>)>();
        let mut handles = Vec::new();
        for (i, ((hs, hd), share)) in helpers.iter_mut().zip(theirs).enumerate() {
            if share.is_empty() {
                continue;
            }
            let tx = tx.clone();
            handles.push((
                i,
                scope.spawn(move || -> Result<()> {
                    hs.session.examine(src_raw)?;
                    copy_share(
                        &mut hs.session,
                        &mut hd.session,
                        dst_raw,
                        metas,
                        share,
                        multi,
                        stop,
                        &mut |u, r| {
                            let _ = tx.send((u, r));
                        },
                    )
                }),
            ));
        }
        drop(tx);
        let own = copy_share(src, dst, dst_raw, metas, mine, multi, stop, &mut |u, r| {
            deliver(u, r);
            while let Ok((u, r)) = rx.try_recv() {
                deliver(u, r);
            }
        });
        while let Ok((u, r)) = rx.recv() {
            deliver(u, r);
        }
        for (i, h) in handles {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::info!("a helper connection failed: {}", chain(&e));
                    broken.push(i);
                }
                Err(_) => broken.push(i),
            }
        }
        own
    });
    for i in broken.iter().rev() {
        ctx.helpers.remove(*i);
    }
    outcome?;
    Ok(broken.is_empty())
}

/// The sink that turns each source body into a destination APPEND.
struct CopySink<'s, 'm> {
    stream: AppendStream<'s>,
    metas: &'m HashMap<u32, Meta>,
    stop: &'m AtomicBool,
    sent: UidSet,
}

impl CopySink<'_, '_> {
    fn push(&mut self, uid: u32, len: u64, data: &mut dyn std::io::Read) -> Result<bool> {
        if self.stop.load(Ordering::SeqCst) || self.sent.contains(uid) {
            return Ok(false);
        }
        let Some(meta) = self.metas.get(&uid) else {
            return Ok(false);
        };
        let flags = storable(&meta.flags);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        self.stream
            .push(u64::from(uid), &flags, meta.date.as_deref(), len, data)?;
        self.sent.insert(uid);
        Ok(true)
    }
}

impl Literals for CopySink<'_, '_> {
    fn literal(
        &mut self,
        _key: Option<&str>,
        len: u64,
        data: &mut dyn BufRead,
        object: &str,
    ) -> Result<Value> {
        read_literal_to_memory(len, data, object)
    }

    fn literal_in(
        &mut self,
        before: &[Value],
        len: u64,
        data: &mut dyn BufRead,
        object: &str,
    ) -> Result<Value> {
        let is_body = before
            .last()
            .and_then(Value::atom)
            .and_then(|k| k.get(..6))
            .is_some_and(|k| k.eq_ignore_ascii_case("BODY[]"));
        if !is_body {
            return read_literal_to_memory(len, data, object);
        }
        let uid = before.chunks(2).find_map(|kv| match kv {
            [k, v] if k.atom().is_some_and(|a| a.eq_ignore_ascii_case("UID")) => {
                v.number().and_then(|n| u32::try_from(n).ok())
            }
            _ => None,
        });
        let Some(uid) = uid else {
            return Err(Error::new(
                ErrorKind::Protocol,
                object,
                "the server sends a message's body before its UID; mail-migrate needs the UID first",
            ));
        };
        self.push(uid, len, data)?;
        Ok(Value::Stored(len))
    }
}

/// Copies `share` over one connection pair (the source folder selected
/// on `src`), every outcome to `deliver`.
#[allow(clippy::too_many_arguments)]
fn copy_share(
    src: &mut Session,
    dst: &mut Session,
    dst_raw: &str,
    metas: &HashMap<u32, Meta>,
    share: &UidSet,
    multi: bool,
    stop: &AtomicBool,
    deliver: &mut dyn FnMut(u32, Result<Option<u32>>),
) -> Result<()> {
    let mut retry = UidSet::default();
    fn take(
        o: AppendOutcome,
        retry: &mut UidSet,
        deliver: &mut dyn FnMut(u32, Result<Option<u32>>),
    ) {
        let ids: Vec<u32> = o
            .ids
            .iter()
            .filter_map(|i| u32::try_from(*i).ok())
            .collect();
        match o.result {
            Ok(Some((_, uids))) => {
                for (s, d) in ids.iter().zip(uids) {
                    deliver(*s, Ok(Some(d)));
                }
            }
            Ok(None) => {
                for s in ids {
                    deliver(s, Ok(None));
                }
            }
            Err(e) if ids.len() > 1 => {
                tracing::debug!(
                    "a batch of {} refused ({}); one by one",
                    ids.len(),
                    chain(&e)
                );
                for s in ids {
                    retry.insert(s);
                }
            }
            Err(e) => {
                for s in ids {
                    deliver(s, Err(Error::new(e.kind(), e.object(), e.detail())));
                }
            }
        }
    }
    let mut sink = CopySink {
        stream: dst.append_stream(dst_raw, multi),
        metas,
        stop,
        sent: UidSet::default(),
    };
    for chunk in share.to_chunks(SET_CHUNK) {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        src.uid_fetch(
            &chunk,
            "(UID BODY.PEEK[])",
            None,
            &mut sink,
            &mut |sink: &mut CopySink<'_, '_>, f: Fetch| {
                let Some(uid) = f.uid else { return Ok(()) };
                match &f.body {
                    // A body short enough for a quoted string.
                    Some(Value::String(bytes)) => {
                        sink.push(uid, bytes.len() as u64, &mut &bytes[..])?;
                    }
                    Some(Value::Stored(_)) | None => {}
                    Some(_) => {
                        if metas.contains_key(&uid) && !sink.sent.contains(uid) {
                            sink.sent.insert(uid);
                            deliver(
                                uid,
                                Err(Error::new(
                                    ErrorKind::Refused,
                                    "source",
                                    format!("UID {uid}: the server sent no body"),
                                )),
                            );
                        }
                    }
                }
                for o in sink.stream.take_outcomes() {
                    take(o, &mut retry, deliver);
                }
                Ok(())
            },
        )?;
    }
    let CopySink { stream, .. } = sink;
    for o in stream.finish()? {
        take(o, &mut retry, deliver);
    }
    if !retry.is_empty() && !stop.load(Ordering::SeqCst) {
        copy_share(src, dst, dst_raw, metas, &retry, false, stop, deliver)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_take_blocks_in_turn() {
        let set = UidSet::parse("1:300").unwrap();
        let shares = deal(&set, 2);
        assert_eq!(shares[0].to_string(), "1:128,257:300");
        assert_eq!(shares[1].to_string(), "129:256");
        assert_eq!(deal(&set, 1)[0], set);
    }

    #[test]
    fn recent_is_never_stored() {
        let flags = vec![
            "\\Seen".into(),
            "\\Recent".into(),
            "$Label1".into(),
            "\\Seen".into(),
        ];
        assert_eq!(
            storable(&flags),
            vec!["$Label1".to_string(), "\\Seen".to_string()]
        );
        let side = SideState {
            uidvalidity: 7,
            uidnext: 10,
            messages: 3,
            highestmodseq: 44,
        };
        let now = MailboxStatus {
            messages: Some(3),
            uidnext: Some(10),
            uidvalidity: Some(7),
            highestmodseq: Some(44),
            size: None,
        };
        assert!(unchanged(&side, Some(&now), true));
        let moved = MailboxStatus {
            highestmodseq: Some(45),
            ..now.clone()
        };
        assert!(!unchanged(&side, Some(&moved), true));
        assert!(unchanged(&side, Some(&moved), false));
        assert!(!unchanged(&SideState::default(), Some(&now), false));
    }
}
