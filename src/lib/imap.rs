//! A synchronous IMAP4rev1 client on std and rustls, with the extensions
//! a sync tool needs: connect with implicit TLS (`imaps://`) or STARTTLS
//! (`imap://`, always required unless the URL says `?starttls=none`), log
//! in (LOGIN, or AUTHENTICATE XOAUTH2 with a token), CAPABILITY, ENABLE
//! (QRESYNC, CONDSTORE), LIST with modified UTF-7 names, SELECT with
//! CONDSTORE or QRESYNC, UID FETCH (whole ranges in one pipelined
//! command; bodies streamed to a [`Literals`] sink, never held in
//! memory), UID SEARCH, UID STORE, APPEND (UIDPLUS's APPENDUID, the message streamed from a
//! reader), UID EXPUNGE, IDLE and LOGOUT.
//!
//! Failures map onto exit codes through [`ErrorKind`]: a dropped
//! connection, a timeout or `BYE` is `Temporary` (75), a refused login
//! `Auth` (77), TLS `Tls` (76), a server that breaks the protocol
//! `Protocol` (76), a command the server refuses for this mailbox
//! `Refused` (69).
//!
//! It does not decide anything about synchronisation (see
//! [`crate::sync`]), does not pipeline independent commands and does
//! not cache mailbox state between SELECTs.

mod append;
mod listing;
mod response;
mod sasl;

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::compose::base64_encode;
use crate::error::{Error, ErrorKind, Result};
use crate::smtp::Auth;
use crate::tls::{self, Wire};

pub use append::{AppendOutcome, AppendStream};
pub use listing::{MailboxStatus, Namespace, status_of};
pub use response::{
    InMemory, Literals, MAX_MEMORY_LITERAL, Response, Status, Value, breaks_session,
    read_literal_to_memory, render, stream_literal, wire_error,
};
pub use sasl::{Login, PlainAs};

/// The read buffer under the parser: big enough that a body literal is
/// copied to its file in large writes, small enough not to matter.
const READ_BUFFER: usize = 256 * 1024;

/// A parsed `imaps://[user@]host[:993]` or
/// `imap://[user@]host[:143][?starttls=none]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// TLS from the first byte (`imaps://`) or STARTTLS (`imap://`).
    pub implicit_tls: bool,
    /// `imap://...?starttls=none`: no STARTTLS, cleartext throughout (a
    /// server on this machine); a login then needs
    /// `--allow-plaintext-auth`.
    pub plaintext: bool,
    /// Host name or address.
    pub host: String,
    /// Port: 993 or 143 unless given.
    pub port: u16,
    /// Login name from the URL, percent-decoded.
    pub user: Option<String>,
}

impl ImapUrl {
    /// Parses the URL; a password in it is refused, and errors never
    /// show it.
    pub fn parse(text: &str) -> Result<ImapUrl> {
        let parts = crate::url::parse(text, "imaps://HOST or imap://HOST (STARTTLS)")?;
        let bad = |why: &str| crate::url::usage(text, why);
        let (implicit_tls, default_port) = match parts.scheme.as_str() {
            "imaps" => (true, 993),
            "imap" => (false, 143),
            _ => return Err(bad("scheme must be imaps:// or imap:// (STARTTLS)")),
        };
        let mut plaintext = false;
        for pair in &parts.query {
            match pair.as_str() {
                "starttls=none" if !implicit_tls => plaintext = true,
                "starttls=required" if !implicit_tls => plaintext = false,
                _ => {
                    return Err(bad(&format!(
                        "unknown parameter {pair:?} (known for imap://: starttls=required, \
                         starttls=none)"
                    )));
                }
            }
        }
        Ok(ImapUrl {
            implicit_tls,
            plaintext,
            host: parts.host,
            port: parts.port.unwrap_or(default_port),
            user: parts.user,
        })
    }

    /// `scheme://host:port`, as errors name the server.
    pub fn display(&self) -> String {
        if self.host.contains(':') {
            format!("{}://[{}]:{}", self.scheme(), self.host, self.port)
        } else {
            format!("{}://{}:{}", self.scheme(), self.host, self.port)
        }
    }

    /// `imap` or `imaps`.
    pub fn scheme(&self) -> &'static str {
        if self.implicit_tls { "imaps" } else { "imap" }
    }

    /// The server and login name a secret is tied to; `user` stands in
    /// when the URL has none.
    pub fn endpoint(&self, user: Option<&str>) -> crate::url::Endpoint {
        crate::url::Endpoint::new(self.scheme(), self.user.as_deref(), &self.host, self.port)
            .with_default_user(user)
    }
}

/// The tagged reply that ends a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// OK, NO or BAD.
    pub status: Status,
    /// The response code, as its items.
    pub code: Option<Vec<Value>>,
    /// The text after the code.
    pub text: String,
}

impl Completion {
    /// Whether the command succeeded.
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    /// The response code's name, upper-cased.
    pub fn code_name(&self) -> Option<String> {
        self.code
            .as_ref()
            .and_then(|c| c.first())
            .and_then(Value::atom)
            .map(str::to_ascii_uppercase)
    }

    /// `NO [CODE] text`, for messages.
    pub fn describe(&self) -> String {
        let code = self
            .code
            .as_ref()
            .map(|c| format!("[{}] ", render(c)))
            .unwrap_or_default();
        format!("{} {code}{}", self.status.as_str(), self.text)
            .trim_end()
            .to_string()
    }
}

/// One argument of a command: text written as is, or a literal.
#[derive(Debug, Clone, Copy)]
enum Arg<'a> {
    Text(&'a str),
    Literal(&'a [u8]),
}

/// A mailbox from LIST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The name decoded from modified UTF-7 (the wire form when it does
    /// not decode).
    pub name: String,
    /// The name as the server sent it, for commands.
    pub raw: String,
    /// The hierarchy delimiter, if the server has one.
    pub delimiter: Option<char>,
    /// Attributes such as `\Noselect`, `\HasChildren`.
    pub attributes: Vec<String>,
}

impl Mailbox {
    /// The mailbox of an untagged `verb` (LIST, LSUB) response:
    /// `LIST (attributes) "delimiter" name`.
    fn from_list_response(items: &[Value], verb: &str) -> Option<Mailbox> {
        if items.len() < 4 || !items[0].atom()?.eq_ignore_ascii_case(verb) {
            return None;
        }
        let attributes = items[1]
            .list()
            .unwrap_or(&[])
            .iter()
            .filter_map(|v| v.atom().map(str::to_string))
            .collect();
        let delimiter = items[2]
            .bytes()
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.chars().next());
        let raw = String::from_utf8_lossy(items[3].bytes()?).into_owned();
        let name = if raw.eq_ignore_ascii_case("INBOX") {
            "INBOX".to_string()
        } else {
            decode_mailbox_name(&raw).unwrap_or_else(|| raw.clone())
        };
        Some(Mailbox {
            name,
            raw,
            delimiter,
            attributes,
        })
    }

    /// The special-use attribute (RFC 6154: `\Sent`, `\Trash`, ...), if
    /// the mailbox has one.
    pub fn special_use(&self) -> Option<&str> {
        const SPECIAL: [&str; 7] = [
            "\\All",
            "\\Archive",
            "\\Drafts",
            "\\Flagged",
            "\\Junk",
            "\\Sent",
            "\\Trash",
        ];
        self.attributes
            .iter()
            .find_map(|a| SPECIAL.iter().find(|s| s.eq_ignore_ascii_case(a)).copied())
    }

    /// Whether the mailbox can be selected (`\Noselect` and
    /// `\NonExistent` cannot).
    pub fn selectable(&self) -> bool {
        !self.attributes.iter().any(|a| {
            a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent")
        })
    }
}

/// How to SELECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectMode {
    /// Plain SELECT.
    Plain,
    /// `SELECT name (CONDSTORE)`: report HIGHESTMODSEQ.
    Condstore,
    /// `SELECT name (QRESYNC (uidvalidity modseq [known-uids]))`: also
    /// report what vanished and what changed since `modseq`.
    Qresync {
        /// UIDVALIDITY the client knows.
        uidvalidity: u32,
        /// The last HIGHESTMODSEQ the client synchronised to.
        modseq: u64,
        /// The UIDs the client knows, as a sequence set, if limited.
        known: Option<String>,
    },
}

/// What SELECT reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selected {
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// UIDNEXT, when the server sent it.
    pub uidnext: Option<u32>,
    /// Number of messages.
    pub exists: u32,
    /// HIGHESTMODSEQ (CONDSTORE), when the mailbox has mod-sequences.
    pub highestmodseq: Option<u64>,
    /// The mailbox is read-only.
    pub read_only: bool,
    /// QRESYNC: UIDs expunged since the client's modseq.
    pub vanished: UidSet,
    /// QRESYNC: messages whose flags changed since the client's modseq.
    pub changed: Vec<Fetch>,
}

/// One FETCH response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetch {
    /// Message sequence number.
    pub seq: u32,
    /// UID.
    pub uid: Option<u32>,
    /// FLAGS, as the server spells them.
    pub flags: Option<Vec<String>>,
    /// RFC822.SIZE.
    pub size: Option<u64>,
    /// MODSEQ.
    pub modseq: Option<u64>,
    /// INTERNALDATE, as the server wrote it (`17-Jul-1996 02:44:25 -0700`).
    pub internal_date: Option<String>,
    /// BODY[] (as the literal sink returned it).
    pub body: Option<Value>,
    /// BODY[HEADER...] (as the literal sink returned it).
    pub header: Option<Value>,
}

impl Fetch {
    fn parse(seq: u32, items: &[Value]) -> Fetch {
        let mut f = Fetch {
            seq,
            ..Fetch::default()
        };
        let mut i = 0;
        while i + 1 < items.len() {
            let key = items[i].atom().unwrap_or("").to_ascii_uppercase();
            let value = &items[i + 1];
            match key.as_str() {
                "UID" => f.uid = value.number().and_then(|n| u32::try_from(n).ok()),
                "FLAGS" => {
                    f.flags = value.list().map(|l| {
                        l.iter()
                            .filter_map(|v| v.atom().map(str::to_string))
                            .collect()
                    })
                }
                "RFC822.SIZE" => f.size = value.number(),
                "MODSEQ" => f.modseq = value.list().and_then(|l| l.first()).and_then(Value::number),
                "INTERNALDATE" => {
                    f.internal_date = value
                        .bytes()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                }
                k if k.starts_with("BODY[]") || k.starts_with("BINARY[]") => {
                    f.body = Some(value.clone())
                }
                k if k.starts_with("BODY[HEADER") => f.header = Some(value.clone()),
                _ => {}
            }
            i += 2;
        }
        f
    }
}

/// What ended an IDLE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleEnd {
    /// The server reported something (new mail, expunges, flags).
    Changed,
    /// `keep_going` said stop.
    Stopped,
    /// The longest allowed IDLE ran out; IDLE again.
    Expired,
}

/// An authenticated IMAP session.
#[derive(Debug)]
pub struct Session {
    wire: BufReader<Wire>,
    object: String,
    tag: u32,
    capabilities: Vec<String>,
    enabled: Vec<String>,
    timeout: Duration,
    /// The server announced new messages (`* n EXISTS`) since the last
    /// SELECT completed.
    grew: bool,
    /// Capabilities not to use.
    disabled: Vec<String>,
    /// [`Session::enable_once`] has run.
    enable_asked: bool,
}

impl Session {
    /// Connects, secures the connection and logs in (with an [`Auth`],
    /// or any other [`Login`]). An `imap://` server
    /// that does not offer STARTTLS is a TLS error (exit 76) — someone may
    /// have removed it — unless the URL says `?starttls=none`; a login
    /// without TLS needs `allow_plaintext_auth`. Certificate checks are
    /// `tls_config`'s business alone.
    pub fn connect(
        url: &ImapUrl,
        tls_config: &Arc<rustls::ClientConfig>,
        auth: &(impl Login + ?Sized),
        timeout: Duration,
        allow_plaintext_auth: bool,
    ) -> Result<Session> {
        Session::connect_then_configure(
            url,
            &mut || Ok(tls_config.clone()),
            auth,
            timeout,
            allow_plaintext_auth,
        )
    }

    /// [`Session::connect`] with the TLS configuration made only once the
    /// TCP connection is open: reading the system's certificate store
    /// then overlaps with the server starting its side of the session.
    pub fn connect_then_configure(
        url: &ImapUrl,
        make_tls_config: &mut dyn FnMut() -> Result<Arc<rustls::ClientConfig>>,
        auth: &(impl Login + ?Sized),
        timeout: Duration,
        allow_plaintext_auth: bool,
    ) -> Result<Session> {
        let object = url.display();
        let tcp = tls::connect_tcp(&url.host, url.port, timeout, &object)?;
        let tls_config = &make_tls_config()?;
        let wire = if url.implicit_tls {
            Wire::tls(
                tls::handshake(tcp, &url.host, tls_config, &object)?,
                READ_BUFFER,
            )
        } else {
            Wire::Plain(tcp)
        };
        let mut session = Session {
            wire: BufReader::with_capacity(READ_BUFFER, wire),
            object,
            tag: 0,
            capabilities: Vec::new(),
            enabled: Vec::new(),
            timeout,
            grew: false,
            disabled: Vec::new(),
            enable_asked: false,
        };
        let greeting = session.read(&mut InMemory)?;
        match &greeting {
            Response::Status {
                tag: None,
                status: Status::Ok | Status::Preauth,
                ..
            } => {}
            Response::Status {
                tag: None,
                status: Status::Bye,
                ..
            } => {
                return Err(Error::new(
                    ErrorKind::Temporary,
                    &session.object,
                    format!("server refused: {}", greeting.describe()),
                ));
            }
            other => {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    &session.object,
                    format!("bad greeting {:?}", other.describe()),
                ));
            }
        }
        session.note_capabilities(&greeting);
        if session.capabilities.is_empty() {
            session.capability()?;
        }
        let offers_starttls = session.has_capability("STARTTLS");
        if !url.implicit_tls && !url.plaintext && !offers_starttls {
            return Err(Error::new(
                ErrorKind::Tls,
                &session.object,
                "server does not offer STARTTLS (someone may have removed it; \
                 ?starttls=none in the URL logs in in cleartext)",
            ));
        }
        if !url.implicit_tls && !url.plaintext {
            let done = session.simple("STARTTLS")?;
            if !done.is_ok() {
                return Err(Error::new(
                    ErrorKind::Tls,
                    &session.object,
                    format!("STARTTLS refused ({})", done.describe()),
                ));
            }
            if !session.wire.buffer().is_empty() {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    &session.object,
                    "data after the STARTTLS reply",
                ));
            }
            let object = session.object.clone();
            session
                .wire
                .get_mut()
                .start_tls(&url.host, tls_config, &object, READ_BUFFER)?;
            // What the server said before TLS cannot be trusted.
            session.capabilities.clear();
        }
        if !matches!(
            greeting,
            Response::Status {
                status: Status::Preauth,
                ..
            }
        ) {
            if !session.wire.get_ref().is_tls() && !allow_plaintext_auth {
                return Err(Error::new(
                    ErrorKind::Tls,
                    &session.object,
                    "refusing to log in over a connection without TLS \
                     (--allow-plaintext-auth would allow it)",
                ));
            }
            auth.log_in(&mut session)?;
        }
        if session.capabilities.is_empty() {
            session.capability()?;
        }
        Ok(session)
    }

    pub(crate) fn login(&mut self, auth: &Auth) -> Result<()> {
        let done = match auth {
            Auth::Password { user, password } => {
                let user = astring(user);
                let password = astring(password.expose());
                self.execute(
                    &[
                        Arg::Text("LOGIN "),
                        user.arg(),
                        Arg::Text(" "),
                        password.arg(),
                    ],
                    &mut InMemory,
                    &mut |_| Ok(()),
                )?
            }
            Auth::OAuth2 { user, token } => {
                let blob = format!("user={user}\x01auth=Bearer {}\x01\x01", token.expose());
                let command = format!("AUTHENTICATE XOAUTH2 {}", base64_encode(blob.as_bytes()));
                self.simple(&command)?
            }
        };
        self.logged_in(&done)
    }

    /// The outcome of a login command: a refusal is `Auth` (77), a
    /// server that cannot check now `Temporary`, a BAD `Protocol`.
    fn logged_in(&self, done: &Completion) -> Result<()> {
        if done.is_ok() {
            return Ok(());
        }
        let kind = match (done.status, done.code_name().as_deref()) {
            (Status::No, Some("UNAVAILABLE")) => ErrorKind::Temporary,
            (Status::Bad, _) => ErrorKind::Protocol,
            _ => ErrorKind::Auth,
        };
        Err(Error::new(
            kind,
            &self.object,
            format!("authentication failed ({})", done.describe()),
        ))
    }

    /// The server, as `imaps://host:port`, for error messages.
    pub fn object(&self) -> &str {
        &self.object
    }

    /// The capabilities the server announced (upper-cased).
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    /// Whether the server announced `name` (case-insensitive).
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(name))
    }

    /// Forgets that the server offers these capabilities, so they are
    /// not used (a capability list the server sends later is filtered
    /// too).
    pub fn disable_capabilities(&mut self, names: &[String]) {
        self.disabled
            .extend(names.iter().map(|n| n.to_ascii_uppercase()));
        let disabled = &self.disabled;
        self.capabilities.retain(|c| !disabled.contains(c));
    }

    /// Whether `name` was enabled with ENABLE.
    pub fn is_enabled(&self, name: &str) -> bool {
        self.enabled.iter().any(|c| c.eq_ignore_ascii_case(name))
    }

    fn note_capabilities(&mut self, response: &Response) {
        let items = match response {
            Response::Status { code: Some(c), .. }
                if c.first()
                    .and_then(Value::atom)
                    .is_some_and(|a| a.eq_ignore_ascii_case("CAPABILITY")) =>
            {
                &c[1..]
            }
            Response::Data(items)
                if items
                    .first()
                    .and_then(Value::atom)
                    .is_some_and(|a| a.eq_ignore_ascii_case("CAPABILITY")) =>
            {
                &items[1..]
            }
            _ => return,
        };
        self.capabilities = items
            .iter()
            .filter_map(Value::atom)
            .map(str::to_ascii_uppercase)
            .filter(|c| !self.disabled.contains(c))
            .collect();
    }

    /// CAPABILITY: asks the server again.
    pub fn capability(&mut self) -> Result<()> {
        let done = self.simple("CAPABILITY")?;
        self.expect_ok("CAPABILITY", &done)
    }

    /// ENABLE the extensions of `names` the server offers; returns those
    /// it enabled.
    pub fn enable(&mut self, names: &[&str]) -> Result<Vec<String>> {
        let offered: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| self.has_capability(n))
            .collect();
        if offered.is_empty() || !self.has_capability("ENABLE") {
            return Ok(Vec::new());
        }
        let mut enabled = Vec::new();
        let done = self.execute(
            &[Arg::Text(&format!("ENABLE {}", offered.join(" ")))],
            &mut InMemory,
            &mut |r| {
                if let Response::Data(items) = &r
                    && items
                        .first()
                        .and_then(Value::atom)
                        .is_some_and(|a| a.eq_ignore_ascii_case("ENABLED"))
                {
                    enabled.extend(
                        items[1..]
                            .iter()
                            .filter_map(Value::atom)
                            .map(str::to_ascii_uppercase),
                    );
                }
                Ok(())
            },
        )?;
        self.expect_ok("ENABLE", &done)?;
        // QRESYNC implies CONDSTORE (RFC 7162 3.2.3).
        if enabled.iter().any(|e| e == "QRESYNC") && !enabled.iter().any(|e| e == "CONDSTORE") {
            enabled.push("CONDSTORE".into());
        }
        self.enabled.extend(enabled.iter().cloned());
        Ok(enabled)
    }

    /// [`Session::enable`], the first time it is called only: for a
    /// client that needs the extensions only once it selects a folder,
    /// and may not select any.
    pub fn enable_once(&mut self, names: &[&str]) -> Result<()> {
        if !self.enable_asked {
            self.enable_asked = true;
            self.enable(names)?;
        }
        Ok(())
    }

    /// LIST `reference` `pattern`: the mailboxes, names decoded.
    pub fn list(&mut self, reference: &str, pattern: &str) -> Result<Vec<Mailbox>> {
        let mut out = Vec::new();
        let command = format!("LIST {} {}", quote(reference), quote(pattern));
        let done = self.execute(&[Arg::Text(&command)], &mut InMemory, &mut |r| {
            if let Response::Data(items) = &r
                && let Some(m) = Mailbox::from_list_response(items, "LIST")
            {
                out.push(m);
            }
            Ok(())
        })?;
        self.expect_ok("LIST", &done)?;
        Ok(out)
    }

    /// CREATE a mailbox (name in its wire form).
    pub fn create(&mut self, raw: &str) -> Result<()> {
        let done = self.simple(&format!("CREATE {}", quote(raw)))?;
        if done.is_ok() || done.code_name().as_deref() == Some("ALREADYEXISTS") {
            return Ok(());
        }
        Err(self.refusal("CREATE", raw, &done))
    }

    /// EXAMINE a mailbox (name in its wire form): SELECT, read-only.
    pub fn examine(&mut self, raw: &str) -> Result<Selected> {
        self.open("EXAMINE", raw, &SelectMode::Plain)
    }

    /// SELECT a mailbox (name in its wire form).
    pub fn select(&mut self, raw: &str, mode: &SelectMode) -> Result<Selected> {
        self.open("SELECT", raw, mode)
    }

    fn open(&mut self, verb: &str, raw: &str, mode: &SelectMode) -> Result<Selected> {
        let modifier = match mode {
            SelectMode::Plain => String::new(),
            SelectMode::Condstore => " (CONDSTORE)".into(),
            SelectMode::Qresync {
                uidvalidity,
                modseq,
                known,
            } => match known {
                Some(k) => format!(" (QRESYNC ({uidvalidity} {modseq} {k}))"),
                None => format!(" (QRESYNC ({uidvalidity} {modseq}))"),
            },
        };
        let command = format!("{verb} {}{modifier}", quote(raw));
        let mut selected = Selected::default();
        let mut have_uidvalidity = false;
        let done = self.execute(&[Arg::Text(&command)], &mut InMemory, &mut |r| {
            match &r {
                Response::Status {
                    tag: None,
                    code: Some(code),
                    ..
                } => {
                    let name = code.first().and_then(Value::atom).unwrap_or("");
                    let number = code.get(1).and_then(Value::number);
                    match name.to_ascii_uppercase().as_str() {
                        "UIDVALIDITY" => {
                            selected.uidvalidity =
                                number.and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
                            have_uidvalidity = true;
                        }
                        "UIDNEXT" => selected.uidnext = number.and_then(|n| u32::try_from(n).ok()),
                        "HIGHESTMODSEQ" => selected.highestmodseq = number,
                        "NOMODSEQ" => selected.highestmodseq = None,
                        _ => {}
                    }
                }
                Response::Data(items) => {
                    let second = items.get(1).and_then(Value::atom).unwrap_or("");
                    if let Some(n) = items.first().and_then(Value::number) {
                        if second.eq_ignore_ascii_case("EXISTS") {
                            selected.exists = u32::try_from(n).unwrap_or(u32::MAX);
                        } else if second.eq_ignore_ascii_case("FETCH")
                            && let Some(list) = items.get(2).and_then(Value::list)
                        {
                            let seq = u32::try_from(n).unwrap_or(0);
                            selected.changed.push(Fetch::parse(seq, list));
                        }
                    } else if let Some(set) = vanished(items) {
                        selected.vanished.extend(&set);
                    }
                }
                _ => {}
            }
            Ok(())
        })?;
        if !done.is_ok() {
            return Err(self.refusal(verb, raw, &done));
        }
        self.grew = false;
        if done.code_name().as_deref() == Some("READ-ONLY") {
            selected.read_only = true;
        }
        if !have_uidvalidity {
            return Err(Error::new(
                ErrorKind::Protocol,
                &self.object,
                format!("{verb} {raw:?}: no UIDVALIDITY"),
            ));
        }
        Ok(selected)
    }

    /// UID FETCH `set` `items` [`(modifiers)`]: every FETCH response goes
    /// to `each` as it arrives (with the sink, which holds what it did
    /// with the response's literals). Returns the UIDs a `VANISHED`
    /// modifier reported. A refusal is `Refused` (the messages delivered
    /// to `each` before it stand). A local failure (from the sink or from
    /// `each`) stops the delivery; the rest of the answer is read and
    /// dropped, so the session stays usable, and the failure returned.
    pub fn uid_fetch<S: Literals>(
        &mut self,
        set: &str,
        items: &str,
        modifiers: Option<&str>,
        sink: &mut S,
        each: &mut dyn FnMut(&mut S, Fetch) -> Result<()>,
    ) -> Result<UidSet> {
        let command = match modifiers {
            Some(m) => format!("UID FETCH {set} {items} ({m})"),
            None => format!("UID FETCH {set} {items}"),
        };
        let tag = self.start(&command)?;
        let mut gone = UidSet::default();
        let mut failed: Option<Error> = None;
        loop {
            let step = match failed {
                None => self.next(&tag, sink, false),
                Some(_) => self.next(&tag, &mut Discard, false),
            };
            let r = match step {
                Ok(Step::Done(done)) => {
                    if let Some(e) = failed {
                        return Err(e);
                    }
                    if !done.is_ok() {
                        return Err(self.refusal("UID FETCH", set, &done));
                    }
                    return Ok(gone);
                }
                Ok(Step::Untagged(r)) => r,
                Err(e) if !breaks_session(&e) => {
                    failed.get_or_insert(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Response::Data(items) = &r else { continue };
            if let Some(set) = vanished(items) {
                gone.extend(&set);
                continue;
            }
            if let (Some(n), Some(kw), Some(list)) = (
                items.first().and_then(Value::number),
                items.get(1).and_then(Value::atom),
                items.get(2).and_then(Value::list),
            ) && kw.eq_ignore_ascii_case("FETCH")
                && failed.is_none()
            {
                let fetch = Fetch::parse(u32::try_from(n).unwrap_or(0), list);
                match each(sink, fetch) {
                    Ok(()) => {}
                    Err(e) if breaks_session(&e) => return Err(e),
                    Err(e) => failed = Some(e),
                }
            }
        }
    }

    /// UID SEARCH `criteria`: the matching UIDs (SEARCH or ESEARCH
    /// answers).
    pub fn uid_search(&mut self, criteria: &str) -> Result<UidSet> {
        let mut found = UidSet::default();
        let done = self.execute(
            &[Arg::Text(&format!("UID SEARCH {criteria}"))],
            &mut InMemory,
            &mut |r| {
                if let Response::Data(items) = &r {
                    let kw = items.first().and_then(Value::atom).unwrap_or("");
                    if kw.eq_ignore_ascii_case("SEARCH") {
                        for v in &items[1..] {
                            if let Some(n) = v.number().and_then(|n| u32::try_from(n).ok()) {
                                found.insert(n);
                            }
                        }
                    } else if kw.eq_ignore_ascii_case("ESEARCH") {
                        let mut i = 1;
                        while i < items.len() {
                            if items[i]
                                .atom()
                                .is_some_and(|a| a.eq_ignore_ascii_case("ALL"))
                                && let Some(set) = items
                                    .get(i + 1)
                                    .and_then(Value::atom)
                                    .and_then(UidSet::parse)
                            {
                                found.extend(&set);
                            }
                            i += 1;
                        }
                    }
                }
                Ok(())
            },
        )?;
        if !done.is_ok() {
            return Err(self.refusal("UID SEARCH", criteria, &done));
        }
        Ok(found)
    }

    /// UID STORE `set` `operation` (`+FLAGS.SILENT`, `-FLAGS.SILENT`)
    /// with `flags`.
    pub fn uid_store(&mut self, set: &str, operation: &str, flags: &[&str]) -> Result<()> {
        let command = format!("UID STORE {set} {operation} ({})", flags.join(" "));
        let done = self.execute(&[Arg::Text(&command)], &mut InMemory, &mut |_| Ok(()))?;
        if !done.is_ok() {
            return Err(self.refusal("UID STORE", set, &done));
        }
        Ok(())
    }

    /// UID EXPUNGE `set` (UIDPLUS): removes exactly these messages, if
    /// they carry `\Deleted`.
    pub fn uid_expunge(&mut self, set: &str) -> Result<()> {
        let done = self.simple(&format!("UID EXPUNGE {set}"))?;
        if !done.is_ok() {
            return Err(self.refusal("UID EXPUNGE", set, &done));
        }
        Ok(())
    }

    /// APPENDs `len` bytes from `data` to the mailbox (wire-form name)
    /// with `flags`, streaming them. Returns the UIDVALIDITY and UID the
    /// server gave the message (UIDPLUS), when it said. `data` yielding
    /// fewer bytes than `len` is an error after which the session is
    /// unusable.
    pub fn append_from(
        &mut self,
        raw: &str,
        flags: &[&str],
        data: &mut dyn Read,
        len: u64,
    ) -> Result<Option<(u32, u32)>> {
        self.tag += 1;
        let tag = format!("m{}", self.tag);
        let plus = self.has_capability("LITERAL+");
        let head = format!(
            "{tag} APPEND {} ({}) {{{len}{}}}\r\n",
            quote(raw),
            flags.join(" "),
            if plus { "+" } else { "" }
        );
        self.write(head.as_bytes())?;
        if !plus {
            // Wait for the go-ahead; a tagged NO here means no literal.
            if let Some(done) = self.await_continuation(&tag)? {
                return Err(self.refusal("APPEND", raw, &done));
            }
        }
        self.send_bytes(
            data,
            len,
            ErrorKind::InputMissing,
            raw,
            "APPEND: the message changed while it was sent",
        )?;
        self.write(b"\r\n")?;
        let done = self.finish(&tag, &mut InMemory, &mut |_| Ok(()), &mut VecDeque::new())?;
        if !done.is_ok() {
            return Err(self.refusal("APPEND", raw, &done));
        }
        let code = done.code.as_deref().unwrap_or(&[]);
        let is_appenduid = code
            .first()
            .and_then(Value::atom)
            .is_some_and(|a| a.eq_ignore_ascii_case("APPENDUID"));
        if is_appenduid
            && let (Some(v), Some(u)) = (
                code.get(1).and_then(Value::number),
                code.get(2).and_then(Value::number),
            )
            && let (Ok(v), Ok(u)) = (u32::try_from(v), u32::try_from(u))
        {
            return Ok(Some((v, u)));
        }
        Ok(None)
    }

    /// Writes `len` bytes from `data` to the server in 64 KiB pieces (a
    /// literal's bytes). `data` failing or ending early is an error of
    /// `kind` about `what` (`early` says why); the session is unusable
    /// after it, since the server was promised the rest.
    fn send_bytes(
        &mut self,
        data: &mut dyn Read,
        len: u64,
        kind: ErrorKind,
        what: &str,
        early: &str,
    ) -> Result<()> {
        let mut left = len;
        let mut buf = vec![0u8; 64 * 1024];
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match data.read(&mut buf[..want]) {
                Ok(0) => return Err(Error::new(kind, what, early)),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(kind, what, e)),
            };
            self.wire
                .get_mut()
                .write_all(&buf[..n])
                .map_err(|e| wire_error(&self.object, e))?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Appends `message` to `folder` (a UTF-8 name) with the `\Seen`
    /// flag, line ends made CRLF, creating the folder when the server
    /// answers `[TRYCREATE]` (as `mail-inject --imap` does).
    pub fn append(&mut self, folder: &str, message: &[u8]) -> Result<()> {
        let mailbox = encode_mailbox_name(folder);
        let data = crate::compose::to_crlf(message);
        let len = data.len() as u64;
        match self.append_from(&mailbox, &["\\Seen"], &mut &data[..], len) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::Refused && e.to_string().contains("[TRYCREATE]") => {
                self.create(&mailbox)?;
                self.append_from(&mailbox, &["\\Seen"], &mut &data[..], len)
                    .map(|_| ())
            }
            Err(e) => Err(e),
        }
    }

    /// NOOP: lets the server report changes; returns the untagged
    /// responses it sent.
    pub fn noop(&mut self) -> Result<Vec<Response>> {
        let mut seen = Vec::new();
        let done = self.execute(&[Arg::Text("NOOP")], &mut InMemory, &mut |r| {
            seen.push(r);
            Ok(())
        })?;
        self.expect_ok("NOOP", &done)?;
        Ok(seen)
    }

    /// IDLE on the selected mailbox until the server reports a change
    /// (EXISTS, EXPUNGE, VANISHED, FETCH), `keep_going()` turns false
    /// (asked every `tick`), or `longest` passes. Ends with DONE and its
    /// completion in every case.
    pub fn idle(
        &mut self,
        tick: Duration,
        longest: Duration,
        keep_going: &dyn Fn() -> bool,
    ) -> Result<IdleEnd> {
        // New mail announced during an earlier command: no need to wait.
        if std::mem::take(&mut self.grew) {
            return Ok(IdleEnd::Changed);
        }
        self.tag += 1;
        let tag = format!("m{}", self.tag);
        self.write(format!("{tag} IDLE\r\n").as_bytes())?;
        if let Some(done) = self.await_continuation(&tag)? {
            return Err(Error::new(
                ErrorKind::Protocol,
                &self.object,
                format!("IDLE refused ({})", done.describe()),
            ));
        }
        let started = Instant::now();
        let end = loop {
            if !keep_going() {
                break IdleEnd::Stopped;
            }
            if started.elapsed() >= longest {
                break IdleEnd::Expired;
            }
            if !self.wait_readable(tick)? {
                continue;
            }
            let r = self.read(&mut InMemory)?;
            self.check_bye(&r, false)?;
            if let Response::Data(items) = &r {
                // `* 5 EXISTS` names the event second, `* VANISHED 5` first.
                let at = usize::from(items.first().and_then(Value::number).is_some());
                let kw = items
                    .get(at)
                    .and_then(Value::atom)
                    .unwrap_or("")
                    .to_ascii_uppercase();
                if matches!(kw.as_str(), "EXISTS" | "EXPUNGE" | "FETCH" | "VANISHED") {
                    break IdleEnd::Changed;
                }
            }
        };
        self.write(b"DONE\r\n")?;
        let done = self.finish(&tag, &mut InMemory, &mut |_| Ok(()), &mut VecDeque::new())?;
        self.expect_ok("IDLE", &done)?;
        Ok(end)
    }

    /// Whether data arrives within `wait`. The connection's own timeout
    /// applies again afterwards.
    fn wait_readable(&mut self, wait: Duration) -> Result<bool> {
        if !self.wire.buffer().is_empty() {
            return Ok(true);
        }
        self.set_read_timeout(wait)?;
        let outcome = self.wire.fill_buf().map(|b| b.is_empty());
        self.set_read_timeout(self.timeout)?;
        match outcome {
            Ok(false) => Ok(true),
            Ok(true) => Err(Error::new(
                ErrorKind::Temporary,
                &self.object,
                "connection closed by the server",
            )),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(wire_error(&self.object, e)),
        }
    }

    fn set_read_timeout(&mut self, timeout: Duration) -> Result<()> {
        let Some(tcp) = self.wire.get_ref().tcp() else {
            return Ok(());
        };
        tcp.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(|e| wire_error(&self.object, e))
    }

    /// Says LOGOUT (errors ignored: the work is done).
    pub fn logout(mut self) {
        let _ = self.execute(&[Arg::Text("LOGOUT")], &mut InMemory, &mut |_| Ok(()));
    }

    /// Says LOGOUT and closes the connection without waiting for the
    /// server's answer: for when every command has had its answer and
    /// nothing more is to be learnt (errors ignored).
    pub fn logout_without_waiting(mut self) {
        let _ = self.start("LOGOUT");
    }

    fn expect_ok(&self, what: &str, done: &Completion) -> Result<()> {
        if done.is_ok() {
            return Ok(());
        }
        Err(Error::new(
            if done.status == Status::Bad {
                ErrorKind::Protocol
            } else {
                ErrorKind::Refused
            },
            &self.object,
            format!("{what} refused ({})", done.describe()),
        ))
    }

    /// The error for a refused command about `what` (a mailbox, a set).
    fn refusal(&self, command: &str, what: &str, done: &Completion) -> Error {
        let kind = match (done.status, done.code_name().as_deref()) {
            (Status::Bad, _) => ErrorKind::Protocol,
            (_, Some("OVERQUOTA" | "INUSE" | "UNAVAILABLE" | "SERVERBUG" | "LIMIT")) => {
                ErrorKind::Temporary
            }
            _ => ErrorKind::Refused,
        };
        let what = decode_mailbox_name(what).unwrap_or_else(|| what.to_string());
        Error::new(
            kind,
            &self.object,
            format!("{command} {what:?} refused ({})", done.describe()),
        )
    }

    fn simple(&mut self, command: &str) -> Result<Completion> {
        self.execute(&[Arg::Text(command)], &mut InMemory, &mut |_| Ok(()))
    }

    /// Sends one tagged command and reads up to its completion. Literal
    /// arguments go at once with LITERAL+, else after the server's
    /// continuation request. Untagged responses go to `on_untagged`
    /// (capabilities are noted first).
    fn execute(
        &mut self,
        args: &[Arg<'_>],
        sink: &mut dyn Literals,
        on_untagged: &mut dyn FnMut(Response) -> Result<()>,
    ) -> Result<Completion> {
        self.tag += 1;
        let tag = format!("m{}", self.tag);
        let plus = self.has_capability("LITERAL+");
        // Pieces to send after each continuation request.
        let mut pieces: VecDeque<Vec<u8>> = VecDeque::new();
        let mut current = format!("{tag} ").into_bytes();
        for arg in args {
            match arg {
                Arg::Text(t) => current.extend_from_slice(t.as_bytes()),
                Arg::Literal(bytes) if plus => {
                    current.extend_from_slice(format!("{{{}+}}\r\n", bytes.len()).as_bytes());
                    current.extend_from_slice(bytes);
                }
                Arg::Literal(bytes) => {
                    current.extend_from_slice(format!("{{{}}}\r\n", bytes.len()).as_bytes());
                    pieces.push_back(std::mem::take(&mut current));
                    current.extend_from_slice(bytes);
                }
            }
        }
        current.extend_from_slice(b"\r\n");
        pieces.push_back(current);
        let first = pieces.pop_front().unwrap_or_default();
        self.write(&first)?;
        let logout = matches!(args.first(), Some(Arg::Text(t)) if t.eq_ignore_ascii_case("LOGOUT"));
        self.finish_with(&tag, sink, on_untagged, &mut pieces, logout)
    }

    fn finish(
        &mut self,
        tag: &str,
        sink: &mut dyn Literals,
        on_untagged: &mut dyn FnMut(Response) -> Result<()>,
        pieces: &mut VecDeque<Vec<u8>>,
    ) -> Result<Completion> {
        self.finish_with(tag, sink, on_untagged, pieces, false)
    }

    fn finish_with(
        &mut self,
        tag: &str,
        sink: &mut dyn Literals,
        on_untagged: &mut dyn FnMut(Response) -> Result<()>,
        pieces: &mut VecDeque<Vec<u8>>,
        logout: bool,
    ) -> Result<Completion> {
        loop {
            match self.next(tag, sink, logout)? {
                Step::Done(done) => return Ok(done),
                Step::Untagged(Response::Continue(_)) => match pieces.pop_front() {
                    Some(piece) => self.write(&piece)?,
                    // A challenge with no answer (XOAUTH2 sends its
                    // error details this way): an empty line ends the
                    // exchange and brings the tagged NO.
                    None => self.write(b"\r\n")?,
                },
                Step::Untagged(other) => on_untagged(other)?,
            }
        }
    }

    /// Sends a command without literals; returns its tag.
    fn start(&mut self, command: &str) -> Result<String> {
        self.tag += 1;
        let tag = format!("m{}", self.tag);
        self.write(format!("{tag} {command}\r\n").as_bytes())?;
        Ok(tag)
    }

    /// Reads the next response of the command tagged `tag`: its
    /// completion, or an untagged response or continuation request
    /// (capabilities noted, BYE an error unless `logout`).
    fn next(&mut self, tag: &str, sink: &mut dyn Literals, logout: bool) -> Result<Step> {
        let r = self.read(sink)?;
        match r {
            Response::Status {
                tag: Some(t),
                status,
                code,
                text,
            } if t == tag => {
                let done = Completion { status, code, text };
                if let Some(c) = &done.code {
                    self.note_capabilities(&Response::Status {
                        tag: None,
                        status: done.status,
                        code: Some(c.clone()),
                        text: String::new(),
                    });
                }
                Ok(Step::Done(done))
            }
            Response::Status { tag: Some(t), .. } => Err(Error::new(
                ErrorKind::Protocol,
                &self.object,
                format!("reply to a command never sent (tag {t})"),
            )),
            other => {
                self.check_bye(&other, logout)?;
                self.note_capabilities(&other);
                if let Response::Data(items) = &other
                    && items.first().and_then(Value::number).is_some()
                    && items
                        .get(1)
                        .and_then(Value::atom)
                        .is_some_and(|a| a.eq_ignore_ascii_case("EXISTS"))
                {
                    self.grew = true;
                }
                Ok(Step::Untagged(other))
            }
        }
    }

    /// Reads until the server's `+` go-ahead for command `tag` (`None`)
    /// or its tagged completion, which refuses what was asked (`Some`).
    /// Other untagged responses are passed over; BYE is an error.
    fn await_continuation(&mut self, tag: &str) -> Result<Option<Completion>> {
        loop {
            match self.read(&mut InMemory)? {
                Response::Continue(_) => return Ok(None),
                Response::Status {
                    tag: Some(t),
                    status,
                    code,
                    text,
                } if t == tag => return Ok(Some(Completion { status, code, text })),
                other => self.check_bye(&other, false)?,
            }
        }
    }

    fn check_bye(&self, r: &Response, logout: bool) -> Result<()> {
        if let Response::Status {
            tag: None,
            status: Status::Bye,
            ..
        } = r
            && !logout
        {
            return Err(Error::new(
                ErrorKind::Temporary,
                &self.object,
                format!("server closed the session ({})", r.describe()),
            ));
        }
        Ok(())
    }

    fn read(&mut self, sink: &mut dyn Literals) -> Result<Response> {
        response::read_response(&mut self.wire, sink, &self.object)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let w = self.wire.get_mut();
        w.write_all(bytes)
            .and_then(|()| w.flush())
            .map_err(|e| wire_error(&self.object, e))
    }
}

/// One step of reading a command's answer.
#[derive(Debug)]
enum Step {
    Untagged(Response),
    Done(Completion),
}

/// A sink that reads literals and keeps nothing (to skip an answer).
#[derive(Debug)]
struct Discard;

impl Literals for Discard {
    fn literal(
        &mut self,
        _key: Option<&str>,
        _len: u64,
        data: &mut dyn BufRead,
        object: &str,
    ) -> Result<Value> {
        io::copy(data, &mut io::sink()).map_err(|e| wire_error(object, e))?;
        Ok(Value::Nil)
    }
}

/// The UIDs of an untagged `VANISHED [(EARLIER)] set`.
fn vanished(items: &[Value]) -> Option<UidSet> {
    if !items
        .first()
        .and_then(Value::atom)
        .is_some_and(|a| a.eq_ignore_ascii_case("VANISHED"))
    {
        return None;
    }
    items.last().and_then(Value::atom).and_then(UidSet::parse)
}

/// A string argument: quoted when it is short printable ASCII, else a
/// literal.
#[derive(Debug)]
enum AString {
    Quoted(String),
    Literal(Vec<u8>),
}

impl AString {
    fn arg(&self) -> Arg<'_> {
        match self {
            AString::Quoted(q) => Arg::Text(q),
            AString::Literal(b) => Arg::Literal(b),
        }
    }
}

fn astring(text: &str) -> AString {
    if text.len() < 1000 && text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        AString::Quoted(quote(text))
    } else {
        AString::Literal(text.as_bytes().to_vec())
    }
}

/// An IMAP quoted string (RFC 3501): only `"` and `\` need escaping;
/// callers pass no line breaks.
pub fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A set of UIDs kept as sorted, disjoint, non-adjacent ranges, with the
/// IMAP sequence-set syntax (`1:4,7,9:12`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UidSet {
    ranges: Vec<(u32, u32)>,
}

impl UidSet {
    /// Parses `1:4,7,9:*`-style text (`*` is taken as `u32::MAX`);
    /// `None` when it is not a sequence set.
    pub fn parse(text: &str) -> Option<UidSet> {
        let mut set = UidSet::default();
        for part in text.split(',') {
            let num = |s: &str| -> Option<u32> {
                if s == "*" {
                    Some(u32::MAX)
                } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                    s.parse().ok()
                } else {
                    None
                }
            };
            let (a, b) = match part.split_once(':') {
                Some((a, b)) => (num(a)?, num(b)?),
                None => {
                    let n = num(part)?;
                    (n, n)
                }
            };
            set.insert_range(a.min(b), a.max(b));
        }
        Some(set)
    }

    /// Adds one UID.
    pub fn insert(&mut self, uid: u32) {
        self.insert_range(uid, uid);
    }

    /// Adds `lo..=hi`.
    pub fn insert_range(&mut self, lo: u32, hi: u32) {
        if lo > hi {
            return;
        }
        // Fast path: appending in ascending order, as FETCH answers come.
        if let Some(last) = self.ranges.last_mut() {
            if lo > last.1 && lo - last.1 == 1 {
                last.1 = hi;
                return;
            }
            if lo > last.1 {
                self.ranges.push((lo, hi));
                return;
            }
        } else {
            self.ranges.push((lo, hi));
            return;
        }
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(self.ranges.len() + 1);
        let mut new = (lo, hi);
        let mut placed = false;
        for &(a, b) in &self.ranges {
            if b.saturating_add(1) < new.0 {
                merged.push((a, b));
            } else if new.1.saturating_add(1) < a {
                if !placed {
                    merged.push(new);
                    placed = true;
                }
                merged.push((a, b));
            } else {
                new = (new.0.min(a), new.1.max(b));
            }
        }
        if !placed {
            merged.push(new);
        }
        merged.sort_unstable();
        self.ranges = merged;
    }

    /// Adds every UID of `other`.
    pub fn extend(&mut self, other: &UidSet) {
        for &(a, b) in &other.ranges {
            self.insert_range(a, b);
        }
    }

    /// Whether `uid` is in the set.
    pub fn contains(&self, uid: u32) -> bool {
        let i = self.ranges.partition_point(|&(_, b)| b < uid);
        self.ranges.get(i).is_some_and(|&(a, _)| a <= uid)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many UIDs the set holds.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(|&(a, b)| u64::from(b - a) + 1).sum()
    }

    /// The ranges, ascending.
    pub fn ranges(&self) -> &[(u32, u32)] {
        &self.ranges
    }

    /// Every UID, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.ranges.iter().flat_map(|&(a, b)| a..=b)
    }

    /// The set in IMAP syntax; chunks of at most `max_len` characters
    /// when one command would grow too long (servers limit line length).
    pub fn to_chunks(&self, max_len: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        for &(a, b) in &self.ranges {
            let part = if a == b {
                a.to_string()
            } else {
                format!("{a}:{b}")
            };
            if !cur.is_empty() && cur.len() + part.len() + 1 > max_len {
                out.push(std::mem::take(&mut cur));
            }
            if !cur.is_empty() {
                cur.push(',');
            }
            cur.push_str(&part);
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }
}

impl std::fmt::Display for UidSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_chunks(usize::MAX).join(","))
    }
}

impl FromIterator<u32> for UidSet {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        let mut set = UidSet::default();
        for uid in iter {
            set.insert(uid);
        }
        set
    }
}

/// A mailbox name in IMAP's modified UTF-7 (RFC 3501 5.1.3): `&` as
/// `&-`, non-ASCII runs as `&` + modified base64 of UTF-16BE + `-`.
pub fn encode_mailbox_name(name: &str) -> String {
    let mut out = String::new();
    let mut run: Vec<u16> = Vec::new();
    let flush = |run: &mut Vec<u16>, out: &mut String| {
        if run.is_empty() {
            return;
        }
        let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
        let b64 = base64_encode(&bytes)
            .trim_end_matches('=')
            .replace('/', ",");
        out.push('&');
        out.push_str(&b64);
        out.push('-');
        run.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut run, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Decodes a modified UTF-7 mailbox name (RFC 3501 5.1.3). `None` when
/// it is not valid modified UTF-7: a raw non-ASCII byte, an unterminated
/// or badly padded `&...-` run, bad UTF-16, or a run that encodes only
/// printable ASCII (which must be written directly).
pub fn decode_mailbox_name(raw: &str) -> Option<String> {
    fn sextet(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b',' => 63,
            _ => return None,
        } as u32)
    }
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !(0x20..0x7f).contains(&b) {
            return None;
        }
        if b != b'&' {
            out.push(b as char);
            i += 1;
            continue;
        }
        let end = i + 1 + bytes[i + 1..].iter().position(|&c| c == b'-')?;
        let run = &bytes[i + 1..end];
        i = end + 1;
        if run.is_empty() {
            out.push('&');
            continue;
        }
        let mut bits = 0u32;
        let mut nbits = 0;
        let mut units = Vec::new();
        for &c in run {
            bits = (bits << 6) | sextet(c)?;
            nbits += 6;
            if nbits >= 16 {
                nbits -= 16;
                units.push((bits >> nbits) as u16);
                bits &= (1 << nbits) - 1;
            }
        }
        // Leftover bits are padding: fewer than 6, and zero.
        if nbits >= 6 || bits != 0 || units.is_empty() {
            return None;
        }
        let text = String::from_utf16(&units).ok()?;
        if text.chars().all(|c| (' '..='~').contains(&c)) {
            return None;
        }
        out.push_str(&text);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_names_in_modified_utf7() {
        let cases = [
            ("Sent", "Sent"),
            ("A&B", "A&-B"),
            ("Entw\u{fc}rfe", "Entw&APw-rfe"),
            ("\u{65e5}\u{672c}\u{8a9e}", "&ZeVnLIqe-"),
            ("Re\u{e7}us/Factures", "Re&AOc-us/Factures"),
            (
                "~peter/mail/\u{53f0}\u{5317}/\u{65e5}\u{672c}\u{8a9e}",
                "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
            ),
            ("\u{1f4e7} mail", "&2D3c5w- mail"),
        ];
        for (name, want) in cases {
            assert_eq!(encode_mailbox_name(name), want, "{name}");
            assert_eq!(decode_mailbox_name(want).as_deref(), Some(name), "{want}");
        }
    }

    #[test]
    fn bad_modified_utf7_does_not_decode() {
        for bad in [
            "Re&AOc",        // unterminated
            "&AGE-",         // encodes plain ASCII "a"
            "&AOc-&-\u{e9}", // raw non-ASCII
            "&A-",           // too short for one unit
            "&AOd-",         // non-zero padding bits
            "&2D0-",         // lone surrogate
            "&AO*-",         // not base64
        ] {
            assert_eq!(decode_mailbox_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn urls_parse() {
        let u = ImapUrl::parse("imaps://alice@h").unwrap();
        assert!(u.implicit_tls);
        assert_eq!((u.port, u.user.as_deref()), (993, Some("alice")));
        let u = ImapUrl::parse("imap://h:1143").unwrap();
        assert_eq!((u.implicit_tls, u.port), (false, 1143));
        assert_eq!(u.display(), "imap://h:1143");
        assert!(!u.plaintext);
        let u = ImapUrl::parse("imap://me%40x.test@h?starttls=none").unwrap();
        assert!(u.plaintext);
        assert_eq!(u.user.as_deref(), Some("me@x.test"));
        for bad in [
            "h",
            "http://h",
            "imaps://a:pw@h",
            "imap://h:x",
            "imaps://h?starttls=none",
            "imap://h?x=y",
        ] {
            assert_eq!(ImapUrl::parse(bad).unwrap_err().exit().code(), 64, "{bad}");
        }
    }

    #[test]
    fn quoting_escapes_quotes_and_backslashes() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert!(matches!(astring("pa\u{df}word"), AString::Literal(_)));
        assert!(matches!(astring("plain"), AString::Quoted(_)));
    }

    #[test]
    fn uid_sets() {
        let mut s = UidSet::default();
        for uid in [5, 1, 2, 3, 9, 7, 8, 4, 20] {
            s.insert(uid);
        }
        assert_eq!(s.to_string(), "1:5,7:9,20");
        assert_eq!(s.len(), 9);
        assert!(s.contains(8) && !s.contains(6) && !s.contains(21) && s.contains(1));
        let p = UidSet::parse("41,43:116,118,120:119").unwrap();
        assert_eq!(p.to_string(), "41,43:116,118:120");
        assert_eq!(UidSet::parse("1:x"), None);
        assert_eq!(UidSet::parse(""), None);
        let mut big = UidSet::default();
        big.insert_range(10, 20);
        big.insert_range(1, 30);
        assert_eq!(big.to_string(), "1:30");
        let chunks = UidSet::from_iter((1..100).step_by(2)).to_chunks(20);
        assert!(chunks.iter().all(|c| c.len() <= 20), "{chunks:?}");
        let back: Vec<u32> = chunks
            .iter()
            .flat_map(|c| UidSet::parse(c).unwrap().iter().collect::<Vec<_>>())
            .collect();
        assert_eq!(back, (1..100).step_by(2).collect::<Vec<_>>());
    }

    #[test]
    fn fetch_items_are_read() {
        let f = Fetch::parse(
            3,
            &[
                Value::Atom("UID".into()),
                Value::Atom("17".into()),
                Value::Atom("FLAGS".into()),
                Value::List(vec![Value::Atom("\\Seen".into())]),
                Value::Atom("MODSEQ".into()),
                Value::List(vec![Value::Atom("90".into())]),
                Value::Atom("RFC822.SIZE".into()),
                Value::Atom("44".into()),
                Value::Atom("BODY[]".into()),
                Value::Stored(44),
                Value::Atom("BODY[HEADER.FIELDS (MESSAGE-ID)]".into()),
                Value::String(b"Message-ID: <a@b>\r\n\r\n".to_vec()),
            ],
        );
        assert_eq!(f.uid, Some(17));
        assert_eq!(f.flags, Some(vec!["\\Seen".to_string()]));
        assert_eq!((f.size, f.modseq), (Some(44), Some(90)));
        assert_eq!(f.body, Some(Value::Stored(44)));
        assert!(f.header.is_some());
    }
}
