//! The read-only modes: `--verify` compares both sides of every folder
//! pair (message counts, the multiset of (Message-ID, size), each
//! message's flags, and with `hashes` the multiset of sha256), and
//! `--plan` measures what there is to move (folders, messages, bytes, and
//! what the state says is already across).
//!
//! Neither writes to a server or to the state.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::copy::{Meta, mailbox_lists, status_items};
use super::state;
use super::{Job, Limits, Opener, Options, Trust};
use crate::error::{Result, chain};
use crate::exit::Exit;
use crate::imap::{Fetch, InMemory, SelectMode, Session};

/// How one folder pair compares.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FolderVerdict {
    /// The source folder.
    pub source: String,
    /// The destination folder.
    pub destination: String,
    /// Messages on the source.
    pub source_messages: u64,
    /// Messages on the destination.
    pub destination_messages: u64,
    /// Source messages with no counterpart on the destination.
    pub missing: u64,
    /// Destination messages with no counterpart on the source (mail
    /// delivered there, or kept without `--delete`).
    pub extra: u64,
    /// Messages present on both sides whose flags differ.
    pub flags_differ: u64,
    /// Whether sha256 multisets were compared too.
    pub hashed: bool,
    /// A few Message-IDs (or sizes) of missing messages, to look for.
    pub missing_examples: Vec<String>,
    /// Nothing missing, no flags differing.
    pub equal: bool,
    /// Why the folder could not be compared, if so.
    pub error: Option<String>,
}

/// How one mailbox compares.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MailboxVerdict {
    /// The mailbox.
    pub mailbox: String,
    /// `user@host:port` of the source.
    pub source: String,
    /// `user@host:port` of the destination.
    pub destination: String,
    /// Per folder pair.
    pub folders: Vec<FolderVerdict>,
    /// Every folder equal and nothing failed.
    pub equal: bool,
    /// Why the mailbox could not be compared, if so.
    pub error: Option<String>,
    /// The exit status this mailbox alone would give.
    pub exit: u8,
}

/// What one folder holds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FolderPlan {
    /// The source folder.
    pub source: String,
    /// Where it goes.
    pub destination: String,
    /// Messages.
    pub messages: u64,
    /// Bytes.
    pub bytes: u64,
    /// Messages the state records as already copied.
    pub copied: u64,
}

/// What one mailbox holds and what is left to move.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MailboxPlan {
    /// The mailbox.
    pub mailbox: String,
    /// Per folder.
    pub folders: Vec<FolderPlan>,
    /// Messages in all folders.
    pub messages: u64,
    /// Bytes in all folders.
    pub bytes: u64,
    /// Messages not yet across (by the state).
    pub remaining_messages: u64,
    /// Their estimated bytes.
    pub remaining_bytes: u64,
    /// Bytes per second the last copying pass of this pair measured.
    pub measured_rate: Option<f64>,
    /// Why the mailbox could not be measured, if so.
    pub error: Option<String>,
    /// The exit status this mailbox alone would give.
    pub exit: u8,
}

/// Size, flags and Message-ID of every message of the selected folder.
fn all_meta(session: &mut Session, exists: u32) -> Result<Vec<Meta>> {
    let mut out = Vec::new();
    if exists == 0 {
        return Ok(out);
    }
    session.uid_fetch(
        "1:*",
        "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
        None,
        &mut InMemory,
        &mut |_, f: Fetch| {
            if let (Some(uid), Some(size)) = (f.uid, f.size) {
                let message_id = match &f.header {
                    Some(crate::imap::Value::String(h)) => crate::sync::local::message_id(h),
                    _ => None,
                };
                out.push(Meta {
                    uid,
                    size,
                    flags: f.flags.unwrap_or_default(),
                    date: None,
                    message_id,
                });
            }
            Ok(())
        },
    )?;
    Ok(out)
}

/// Compares one folder's two sides' messages.
fn compare(source: &[Meta], destination: &[Meta], verdict: &mut FolderVerdict) {
    type Key = (Option<String>, u64);
    let group = |side: &[Meta]| {
        let mut g: BTreeMap<Key, Vec<Vec<String>>> = BTreeMap::new();
        for m in side {
            g.entry((m.message_id.clone(), m.size))
                .or_default()
                .push(super::copy::storable(&m.flags));
        }
        for v in g.values_mut() {
            v.sort();
        }
        g
    };
    let s = group(source);
    let d = group(destination);
    for (key, sf) in &s {
        let df = d.get(key).map(Vec::as_slice).unwrap_or(&[]);
        if sf.len() > df.len() {
            verdict.missing += (sf.len() - df.len()) as u64;
            if verdict.missing_examples.len() < 5 {
                verdict.missing_examples.push(match &key.0 {
                    Some(id) => format!("{id} ({} bytes)", key.1),
                    None => format!("no Message-ID ({} bytes)", key.1),
                });
            }
        }
        // Flags are compared as multisets within a key: of the messages
        // present on both sides, those whose flag set has no twin.
        let mut left: Vec<&Vec<String>> = df.iter().collect();
        let mut same = 0;
        for f in sf {
            if let Some(i) = left.iter().position(|x| *x == f) {
                left.remove(i);
                same += 1;
            }
        }
        let paired = sf.len().min(df.len());
        verdict.flags_differ += paired.saturating_sub(same) as u64;
    }
    for (key, df) in &d {
        let sn = s.get(key).map_or(0, Vec::len);
        if df.len() > sn {
            verdict.extra += (df.len() - sn) as u64;
        }
    }
}

/// sha256 multiset of the selected folder.
fn hash_multiset(session: &mut Session, exists: u32) -> Result<HashMap<[u8; 32], u64>> {
    let mut out = HashMap::new();
    if exists == 0 {
        return Ok(out);
    }
    let mut sink = crate::sync::local::HashSink { last: None };
    session.uid_fetch(
        "1:*",
        "(UID BODY.PEEK[])",
        None,
        &mut sink,
        &mut |sink: &mut crate::sync::local::HashSink, _f: Fetch| {
            if let Some(h) = sink.last.take() {
                *out.entry(h).or_insert(0) += 1;
            }
            Ok(())
        },
    )?;
    Ok(out)
}

pub(super) fn verify_mailbox(
    job: &Job,
    options: &Options,
    trust: &Trust,
    limits: &Limits,
    hashes: bool,
) -> MailboxVerdict {
    let mut v = MailboxVerdict {
        mailbox: job.name.clone(),
        source: job.source.name(),
        destination: job.destination.name(),
        ..MailboxVerdict::default()
    };
    let outcome = (|| -> Result<()> {
        let opener = Opener::new(job, options, trust, limits)?;
        let (mut src, mut dst) = opener.pair()?;
        let lists = mailbox_lists(&mut src.session, &mut dst.session, options)?;
        for pair in &lists.pairs {
            let mut fv = FolderVerdict {
                source: pair.source.name.clone(),
                destination: pair.destination.clone(),
                hashed: hashes,
                ..FolderVerdict::default()
            };
            let r = (|| -> Result<()> {
                let sel = src.session.examine(&pair.source.raw)?;
                let smeta = all_meta(&mut src.session, sel.exists)?;
                fv.source_messages = smeta.len() as u64;
                let Some(existing) = &pair.existing else {
                    fv.missing = fv.source_messages;
                    return Ok(());
                };
                let dsel = dst.session.examine(&existing.raw)?;
                let dmeta = all_meta(&mut dst.session, dsel.exists)?;
                fv.destination_messages = dmeta.len() as u64;
                compare(&smeta, &dmeta, &mut fv);
                if hashes {
                    let sh = hash_multiset(&mut src.session, sel.exists)?;
                    let dh = hash_multiset(&mut dst.session, dsel.exists)?;
                    let by_hash: u64 = sh
                        .iter()
                        .map(|(h, n)| n.saturating_sub(*dh.get(h).unwrap_or(&0)))
                        .sum();
                    fv.missing = fv.missing.max(by_hash);
                }
                Ok(())
            })();
            if let Err(e) = r {
                fv.error = Some(chain(&e));
            }
            fv.equal = fv.error.is_none() && fv.missing == 0 && fv.flags_differ == 0;
            v.folders.push(fv);
        }
        src.session.logout();
        dst.session.logout();
        Ok(())
    })();
    let exit = match &outcome {
        Err(e) => {
            v.error = Some(chain(e));
            e.exit()
        }
        Ok(()) if v.folders.iter().all(|f| f.equal) => Exit::Ok,
        Ok(()) => Exit::Partial,
    };
    v.equal = exit == Exit::Ok;
    v.exit = exit.code();
    v
}

pub(super) fn plan_mailbox(
    job: &Job,
    options: &Options,
    trust: &Trust,
    limits: &Limits,
) -> MailboxPlan {
    let mut plan = MailboxPlan {
        mailbox: job.name.clone(),
        ..MailboxPlan::default()
    };
    let state_path = state::path_for(
        &options.state_dir,
        &job.source.name(),
        &job.destination.name(),
    );
    let st = state::load(&state_path).ok().flatten().unwrap_or_default();
    plan.measured_rate = st
        .last_rate
        .filter(|(_, secs)| *secs > 0.0)
        .map(|(bytes, secs)| bytes as f64 / secs);
    let outcome = (|| -> Result<()> {
        let opener = Opener::new(job, options, trust, limits)?;
        let (mut src, mut dst) = opener.pair()?;
        let with_size = src.session.has_capability("STATUS=SIZE");
        let items = if with_size {
            format!("{} SIZE", status_items(&src.session))
        } else {
            status_items(&src.session).to_string()
        };
        let lists = mailbox_lists(&mut src.session, &mut dst.session, options)?;
        let raws: Vec<&str> = lists.pairs.iter().map(|p| p.source.raw.as_str()).collect();
        let statuses = src.session.status_many(&raws, &items)?;
        for (pair, status) in lists.pairs.iter().zip(statuses) {
            let status = status?;
            let messages = u64::from(status.messages.unwrap_or(0));
            let bytes = match status.size {
                Some(b) => b,
                None if messages == 0 => 0,
                None => {
                    src.session
                        .examine_with(&pair.source.raw, &SelectMode::Plain)?;
                    let mut sum = 0;
                    src.session.uid_fetch(
                        "1:*",
                        "(UID RFC822.SIZE)",
                        None,
                        &mut InMemory,
                        &mut |_, f: Fetch| {
                            sum += f.size.unwrap_or(0);
                            Ok(())
                        },
                    )?;
                    sum
                }
            };
            let copied = st
                .folders
                .get(&pair.source.name)
                .filter(|f| Some(f.source_side.uidvalidity) == status.uidvalidity)
                .map_or(0, |f| f.pairs.len() as u64)
                .min(messages);
            plan.messages += messages;
            plan.bytes += bytes;
            plan.remaining_messages += messages - copied;
            plan.remaining_bytes += (bytes * (messages - copied))
                .checked_div(messages)
                .unwrap_or(0);
            plan.folders.push(FolderPlan {
                source: pair.source.name.clone(),
                destination: pair.destination.clone(),
                messages,
                bytes,
                copied,
            });
        }
        src.session.logout();
        dst.session.logout();
        Ok(())
    })();
    if let Err(e) = outcome {
        plan.error = Some(chain(&e));
        plan.exit = e.exit().code();
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: Option<&str>, size: u64, flags: &[&str]) -> Meta {
        Meta {
            uid: 0,
            size,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            date: None,
            message_id: id.map(str::to_string),
        }
    }

    #[test]
    fn missing_extra_and_flags_are_counted() {
        let s = [
            meta(Some("<a>"), 10, &["\\Seen"]),
            meta(Some("<a>"), 10, &[]),
            meta(Some("<b>"), 20, &["\\Flagged", "\\Recent"]),
            meta(None, 30, &[]),
        ];
        let d = [
            meta(Some("<a>"), 10, &["\\Seen"]),
            meta(Some("<b>"), 20, &["\\Flagged"]),
            meta(None, 30, &["\\Seen"]),
            meta(Some("<c>"), 5, &[]),
        ];
        let mut v = FolderVerdict::default();
        compare(&s, &d, &mut v);
        assert_eq!((v.missing, v.extra, v.flags_differ), (1, 1, 1));
        assert_eq!(v.missing_examples, vec!["<a> (10 bytes)".to_string()]);
        let mut same = FolderVerdict::default();
        compare(&s, &s, &mut same);
        assert_eq!((same.missing, same.extra, same.flags_differ), (0, 0, 0));
    }
}
