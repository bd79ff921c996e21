//! Appending many messages to one mailbox without a round trip each:
//! APPEND commands pipelined (with LITERAL+, the bytes follow the command
//! at once; without, after the server's go-ahead), or MULTIAPPEND
//! (RFC 3502) batches that the server stores in one transaction. Each
//! message comes from a reader of known length and goes to the wire in
//! 64 KiB pieces, so a 100 MB message costs no more memory than a small
//! one.
//!
//! Every message is known by an id the caller chooses; each command's
//! outcome (the UIDs APPENDUID gave, or the refusal) is reported for the
//! ids it carried, in the order the server answers. A MULTIAPPEND batch
//! succeeds or fails whole: the caller retries a refused batch one by
//! one to learn which message the server would not take.
//!
//! It does not retry, and does not decide what goes where.

use std::collections::VecDeque;
use std::io::Read;

use super::{Completion, InMemory, Response, Session, UidSet, Value, quote};
use crate::error::{Error, ErrorKind, Result};

/// What the server answered for the messages of one command.
#[derive(Debug)]
pub struct AppendOutcome {
    /// The ids of the messages the command carried, in order.
    pub ids: Vec<u64>,
    /// The UIDVALIDITY and the messages' UIDs in the same order (UIDPLUS),
    /// `None` when the server did not say, or the refusal.
    pub result: Result<Option<(u32, Vec<u32>)>>,
}

/// A MULTIAPPEND command still taking messages.
#[derive(Debug)]
struct Open {
    tag: String,
    ids: Vec<u64>,
    bytes: u64,
}

/// Pipelined appends to one mailbox; see the module documentation.
#[derive(Debug)]
pub struct AppendStream<'a> {
    session: &'a mut Session,
    raw: String,
    multi: bool,
    plus: bool,
    open: Option<Open>,
    outstanding: VecDeque<(String, Vec<u64>)>,
    outcomes: Vec<AppendOutcome>,
    /// Commands sent whose answer has not been read, at most.
    pub window: usize,
    /// Messages in one MULTIAPPEND command, at most.
    pub batch_messages: usize,
    /// Bytes in one MULTIAPPEND command before it is closed.
    pub batch_bytes: u64,
}

impl Session {
    /// Starts appending to the mailbox `raw` (wire-form name), as one
    /// MULTIAPPEND batch after another when `multi` and the server
    /// offers it, else as pipelined APPENDs.
    pub fn append_stream(&mut self, raw: &str, multi: bool) -> AppendStream<'_> {
        let multi = multi && self.has_capability("MULTIAPPEND");
        let plus = self.has_capability("LITERAL+");
        AppendStream {
            session: self,
            raw: raw.to_string(),
            multi,
            plus,
            open: None,
            outstanding: VecDeque::new(),
            outcomes: Vec::new(),
            window: 32,
            batch_messages: 64,
            batch_bytes: 8 << 20,
        }
    }
}

impl AppendStream<'_> {
    /// Whether messages go in MULTIAPPEND batches.
    pub fn is_multi(&self) -> bool {
        self.multi
    }

    /// The session's server, for errors.
    pub fn object(&self) -> &str {
        self.session.object()
    }

    /// Sends one message: `len` bytes from `data`, with `flags` and the
    /// internal date (`dd-Mon-yyyy hh:mm:ss +zzzz`). A refusal is an
    /// outcome, not an error; an error leaves the session unusable
    /// (`data` ending early among them: the server holds a message it
    /// was promised more of).
    pub fn push(
        &mut self,
        id: u64,
        flags: &[&str],
        date: Option<&str>,
        len: u64,
        data: &mut dyn Read,
    ) -> Result<()> {
        let marker = if self.plus { "+" } else { "" };
        let date = date.map(|d| format!(" {}", quote(d))).unwrap_or_default();
        let message = format!("({}){date} {{{len}{marker}}}\r\n", flags.join(" "));
        let tag = match &self.open {
            Some(open) => {
                self.session.write(format!(" {message}").as_bytes())?;
                open.tag.clone()
            }
            None => {
                self.session.tag += 1;
                let tag = format!("m{}", self.session.tag);
                self.session
                    .write(format!("{tag} APPEND {} {message}", quote(&self.raw)).as_bytes())?;
                self.open = Some(Open {
                    tag: tag.clone(),
                    ids: Vec::new(),
                    bytes: 0,
                });
                tag
            }
        };
        if let Some(open) = self.open.as_mut() {
            open.ids.push(id);
            open.bytes += len;
        }
        if !self.plus && !self.await_go_ahead(&tag)? {
            // Refused before the bytes: nothing of this command is stored.
            return Ok(());
        }
        self.copy_body(len, data)?;
        let full = self
            .open
            .as_ref()
            .is_some_and(|o| o.ids.len() >= self.batch_messages || o.bytes >= self.batch_bytes);
        if !self.multi || full {
            self.close_command()?;
        }
        while self.outstanding.len() > self.window {
            self.collect_one()?;
        }
        Ok(())
    }

    /// Ends the MULTIAPPEND command being filled, if any.
    pub fn close_command(&mut self) -> Result<()> {
        if let Some(open) = self.open.take() {
            self.session.write(b"\r\n")?;
            self.outstanding.push_back((open.tag, open.ids));
        }
        Ok(())
    }

    /// The outcomes read so far (taken).
    pub fn take_outcomes(&mut self) -> Vec<AppendOutcome> {
        std::mem::take(&mut self.outcomes)
    }

    /// Ends the last command and reads every answer still due; returns
    /// the outcomes not yet taken.
    pub fn finish(mut self) -> Result<Vec<AppendOutcome>> {
        self.close_command()?;
        while !self.outstanding.is_empty() {
            self.collect_one()?;
        }
        Ok(self.take_outcomes())
    }

    fn copy_body(&mut self, len: u64, data: &mut dyn Read) -> Result<()> {
        let object = self.session.object.clone();
        self.session.send_bytes(
            data,
            len,
            ErrorKind::Temporary,
            &object,
            "APPEND: the message ended early (its source went away)",
        )
    }

    /// Waits for the go-ahead to send the literal of command `tag`,
    /// reading the answers to earlier commands meanwhile. False when the
    /// command was refused instead (its outcome is recorded).
    fn await_go_ahead(&mut self, tag: &str) -> Result<bool> {
        loop {
            match self.session.read(&mut InMemory)? {
                Response::Continue(_) => return Ok(true),
                Response::Status {
                    tag: Some(t),
                    status,
                    code,
                    text,
                } if t == tag => {
                    let open = self.open.take();
                    let ids = open.map(|o| o.ids).unwrap_or_default();
                    let done = Completion { status, code, text };
                    let result = self.result_of(&done, ids.len());
                    self.outcomes.push(AppendOutcome { ids, result });
                    return Ok(false);
                }
                other => self.take_response(other)?,
            }
        }
    }

    /// Reads responses until one outstanding command completes.
    fn collect_one(&mut self) -> Result<()> {
        let before = self.outstanding.len();
        while self.outstanding.len() == before {
            let r = self.session.read(&mut InMemory)?;
            self.take_response(r)?;
        }
        Ok(())
    }

    /// One response while appends are in flight: a completion of an
    /// outstanding command is recorded; untagged data is passed over.
    fn take_response(&mut self, r: Response) -> Result<()> {
        match r {
            Response::Status {
                tag: Some(t),
                status,
                code,
                text,
            } => {
                let Some(at) = self.outstanding.iter().position(|(tag, _)| *tag == t) else {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        self.session.object.clone(),
                        format!("reply to a command never sent (tag {t})"),
                    ));
                };
                let (_, ids) = self.outstanding.remove(at).unwrap_or_default();
                let done = Completion { status, code, text };
                let result = self.result_of(&done, ids.len());
                self.outcomes.push(AppendOutcome { ids, result });
                Ok(())
            }
            Response::Continue(_) => Err(Error::new(
                ErrorKind::Protocol,
                self.session.object.clone(),
                "a go-ahead nobody asked for",
            )),
            other => {
                self.session.check_bye(&other, false)?;
                self.session.note_capabilities(&other);
                Ok(())
            }
        }
    }

    fn result_of(&self, done: &Completion, count: usize) -> Result<Option<(u32, Vec<u32>)>> {
        if !done.is_ok() {
            return Err(self.session.refusal("APPEND", &self.raw, done));
        }
        let code = done.code.as_deref().unwrap_or(&[]);
        let is_appenduid = code
            .first()
            .and_then(Value::atom)
            .is_some_and(|a| a.eq_ignore_ascii_case("APPENDUID"));
        if !is_appenduid {
            return Ok(None);
        }
        let validity = code
            .get(1)
            .and_then(Value::number)
            .and_then(|v| u32::try_from(v).ok());
        let uids: Option<Vec<u32>> = code
            .get(2)
            .and_then(Value::atom)
            .and_then(UidSet::parse)
            .map(|s| s.iter().collect());
        match (validity, uids) {
            (Some(v), Some(u)) if u.len() == count => Ok(Some((v, u))),
            _ => Ok(None),
        }
    }
}
