//! What a mailbox migration asks about folders besides LIST: the
//! personal NAMESPACE (prefix and delimiter), LSUB and SUBSCRIBE, and
//! STATUS, for one folder or for many in one round trip (LIST-STATUS,
//! RFC 5819, where offered; else every STATUS pipelined).
//!
//! It does not select anything: STATUS and LIST-STATUS leave the
//! selected mailbox as it was.

use std::collections::HashMap;

use super::{Arg, Completion, InMemory, Mailbox, Response, Session, Status, Value, quote};
use crate::error::{Error, ErrorKind, Result};

/// The personal namespace (RFC 2342): where a user's folders live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace {
    /// The prefix of every folder but INBOX (`""`, `"INBOX."`).
    pub prefix: String,
    /// The hierarchy delimiter.
    pub delimiter: Option<char>,
}

/// What STATUS reported about a mailbox (the items asked for, when the
/// server sent them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    /// MESSAGES.
    pub messages: Option<u32>,
    /// UIDNEXT.
    pub uidnext: Option<u32>,
    /// UIDVALIDITY.
    pub uidvalidity: Option<u32>,
    /// HIGHESTMODSEQ (CONDSTORE).
    pub highestmodseq: Option<u64>,
    /// SIZE (RFC 8438, STATUS=SIZE): the bytes of all messages.
    pub size: Option<u64>,
}

impl MailboxStatus {
    fn parse(items: &[Value]) -> MailboxStatus {
        let mut s = MailboxStatus::default();
        for pair in items.chunks(2) {
            let [key, value] = pair else { continue };
            let n = value.number();
            match key.atom().unwrap_or("").to_ascii_uppercase().as_str() {
                "MESSAGES" => s.messages = n.and_then(|n| u32::try_from(n).ok()),
                "UIDNEXT" => s.uidnext = n.and_then(|n| u32::try_from(n).ok()),
                "UIDVALIDITY" => s.uidvalidity = n.and_then(|n| u32::try_from(n).ok()),
                "HIGHESTMODSEQ" => s.highestmodseq = n,
                "SIZE" => s.size = n,
                _ => {}
            }
        }
        s
    }
}

/// `* STATUS name (items)`: the wire name and what it says.
fn status_response(items: &[Value]) -> Option<(String, MailboxStatus)> {
    if !items.first()?.atom()?.eq_ignore_ascii_case("STATUS") {
        return None;
    }
    let raw = String::from_utf8_lossy(items.get(1)?.bytes()?).into_owned();
    Some((raw, MailboxStatus::parse(items.get(2)?.list()?)))
}

/// Keys for matching a STATUS answer to the name asked about: INBOX in
/// any case is INBOX.
fn status_key(raw: &str) -> String {
    if raw.eq_ignore_ascii_case("INBOX") {
        "INBOX".into()
    } else {
        raw.to_string()
    }
}

/// The entry of `map` (from [`Session::list_with_status`]) for the folder
/// whose wire-form name is `raw`.
pub fn status_of<'a>(
    map: &'a HashMap<String, MailboxStatus>,
    raw: &str,
) -> Option<&'a MailboxStatus> {
    map.get(&status_key(raw))
}

impl Session {
    /// The first personal namespace; `None` when the server has no
    /// NAMESPACE command (then the prefix is empty and the delimiter
    /// LIST's).
    pub fn namespace(&mut self) -> Result<Option<Namespace>> {
        if !self.has_capability("NAMESPACE") {
            return Ok(None);
        }
        let mut found = None;
        let done = self.execute(&[Arg::Text("NAMESPACE")], &mut InMemory, &mut |r| {
            if let Response::Data(items) = &r
                && items
                    .first()
                    .and_then(Value::atom)
                    .is_some_and(|a| a.eq_ignore_ascii_case("NAMESPACE"))
                && let Some(first) = items
                    .get(1)
                    .and_then(Value::list)
                    .and_then(|l| l.first())
                    .and_then(Value::list)
            {
                let prefix = first
                    .first()
                    .and_then(Value::bytes)
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                let delimiter = first
                    .get(1)
                    .and_then(Value::bytes)
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .and_then(|s| s.chars().next());
                found = Some(Namespace { prefix, delimiter });
            }
            Ok(())
        })?;
        self.expect_ok("NAMESPACE", &done)?;
        Ok(found)
    }

    /// EXAMINE with CONDSTORE or QRESYNC parameters (see
    /// [`Session::select`]): read-only, and HIGHESTMODSEQ reported.
    pub fn examine_with(&mut self, raw: &str, mode: &super::SelectMode) -> Result<super::Selected> {
        self.open("EXAMINE", raw, mode)
    }

    /// LSUB "" "*": the subscribed folders.
    pub fn subscribed(&mut self) -> Result<Vec<Mailbox>> {
        let mut out = Vec::new();
        let done = self.execute(&[Arg::Text("LSUB \"\" \"*\"")], &mut InMemory, &mut |r| {
            if let Response::Data(items) = &r
                && let Some(m) = Mailbox::from_list_response(items, "LSUB")
            {
                out.push(m);
            }
            Ok(())
        })?;
        self.expect_ok("LSUB", &done)?;
        Ok(out)
    }

    /// SUBSCRIBE a folder (wire-form name).
    pub fn subscribe(&mut self, raw: &str) -> Result<()> {
        let done = self.simple(&format!("SUBSCRIBE {}", quote(raw)))?;
        if done.is_ok() {
            return Ok(());
        }
        Err(self.refusal("SUBSCRIBE", raw, &done))
    }

    /// STATUS of one folder (wire-form name) with `items`
    /// (`MESSAGES UIDNEXT ...`).
    pub fn status(&mut self, raw: &str, items: &str) -> Result<MailboxStatus> {
        let mut all = self.status_many(&[raw], items)?;
        all.pop().unwrap_or_else(|| {
            Err(Error::new(
                ErrorKind::Protocol,
                self.object.clone(),
                "no STATUS answer",
            ))
        })
    }

    /// STATUS of each folder of `raws`, all commands sent at once and the
    /// answers read after: one round trip however many folders. Each
    /// folder's own refusal is its entry's error.
    pub fn status_many(
        &mut self,
        raws: &[&str],
        items: &str,
    ) -> Result<Vec<Result<MailboxStatus>>> {
        let mut tags = Vec::with_capacity(raws.len());
        let mut batch = Vec::new();
        for raw in raws {
            self.tag += 1;
            let tag = format!("m{}", self.tag);
            batch
                .extend_from_slice(format!("{tag} STATUS {} ({items})\r\n", quote(raw)).as_bytes());
            tags.push(tag);
        }
        if !batch.is_empty() {
            self.write(&batch)?;
        }
        let mut answers: HashMap<String, MailboxStatus> = HashMap::new();
        let mut done: HashMap<String, Completion> = HashMap::new();
        while done.len() < tags.len() {
            match self.read(&mut InMemory)? {
                Response::Status {
                    tag: Some(t),
                    status,
                    code,
                    text,
                } => {
                    if !tags.contains(&t) {
                        return Err(Error::new(
                            ErrorKind::Protocol,
                            self.object.clone(),
                            format!("reply to a command never sent (tag {t})"),
                        ));
                    }
                    done.insert(t, Completion { status, code, text });
                }
                Response::Data(items) => {
                    if let Some((raw, s)) = status_response(&items) {
                        answers.insert(status_key(&raw), s);
                    }
                }
                other => self.check_bye(&other, false)?,
            }
        }
        Ok(raws
            .iter()
            .zip(&tags)
            .map(|(raw, tag)| {
                let completion = &done[tag];
                if !completion.is_ok() {
                    return Err(self.refusal("STATUS", raw, completion));
                }
                Ok(answers.remove(&status_key(raw)).unwrap_or_default())
            })
            .collect())
    }

    /// Every folder (LIST "" "*") with its special-use attributes, and the
    /// STATUS `items` of each selectable one: one LIST-STATUS command
    /// where the server offers it, else LIST and then [`Self::status_many`].
    /// A folder whose STATUS was refused has no entry in the map.
    pub fn list_with_status(
        &mut self,
        items: &str,
    ) -> Result<(Vec<Mailbox>, HashMap<String, MailboxStatus>)> {
        if !self.has_capability("LIST-STATUS") {
            let all = self.list("", "*")?;
            let raws: Vec<&str> = all
                .iter()
                .filter(|m| m.selectable())
                .map(|m| m.raw.as_str())
                .collect();
            let answers = self.status_many(&raws, items)?;
            let map = raws
                .iter()
                .zip(answers)
                .filter_map(|(raw, a)| a.ok().map(|s| (status_key(raw), s)))
                .collect();
            return Ok((all, map));
        }
        let special = if self.has_capability("SPECIAL-USE") {
            "SPECIAL-USE "
        } else {
            ""
        };
        let command = format!("LIST \"\" \"*\" RETURN ({special}STATUS ({items}))");
        let mut all = Vec::new();
        let mut map = HashMap::new();
        let done = self.execute(&[Arg::Text(&command)], &mut InMemory, &mut |r| {
            if let Response::Data(items) = &r {
                if let Some(m) = Mailbox::from_list_response(items, "LIST") {
                    all.push(m);
                } else if let Some((raw, s)) = status_response(items) {
                    map.insert(status_key(&raw), s);
                }
            }
            Ok(())
        })?;
        if done.status != Status::Ok {
            return Err(self.refusal("LIST", "*", &done));
        }
        Ok((all, map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_items_are_read() {
        let items = [
            Value::Atom("STATUS".into()),
            Value::String(b"Sent Items".to_vec()),
            Value::List(
                [
                    "MESSAGES",
                    "2",
                    "UIDNEXT",
                    "9",
                    "UIDVALIDITY",
                    "77",
                    "HIGHESTMODSEQ",
                    "12345678901",
                    "SIZE",
                    "8",
                ]
                .iter()
                .map(|a| Value::Atom(a.to_string()))
                .collect(),
            ),
        ];
        let (raw, s) = status_response(&items).unwrap();
        assert_eq!(raw, "Sent Items");
        assert_eq!(
            s,
            MailboxStatus {
                messages: Some(2),
                uidnext: Some(9),
                uidvalidity: Some(77),
                highestmodseq: Some(12_345_678_901),
                size: Some(8),
            }
        );
        assert_eq!(status_key("inbox"), "INBOX");
    }
}
