//! Reading IMAP server responses (RFC 3501 section 7, with the CONDSTORE,
//! QRESYNC and UIDPLUS additions) from a buffered stream: tagged and
//! untagged status lines with their `[CODE ...]`, untagged data as a tree
//! of atoms, strings and parenthesised lists, and continuation requests.
//!
//! Literals (`{n}` followed by n bytes) are handed to a [`Literals`] sink
//! with the bytes still on the wire, so a message body can go straight to
//! a file through the reader's fixed buffer: memory does not grow with
//! message size. The default sink keeps small literals in memory.
//!
//! It does not interpret responses (the session does) and does not write
//! to the server.

use std::io::{self, BufRead, Read};

use crate::error::{Error, ErrorKind, Result};

/// The largest literal the in-memory sink accepts: mailbox names, header
/// fields and the like. Message bodies go to a file sink instead.
pub const MAX_MEMORY_LITERAL: u64 = 16 * 1024 * 1024;

/// The most bytes outside literals one response may hold (a `SEARCH`
/// answer over a huge mailbox is the longest a sane server sends).
const MAX_RESPONSE_TEXT: usize = 64 * 1024 * 1024;

/// One item of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An atom: a keyword, a number, a flag (`\Seen`), a section
    /// (`BODY[HEADER.FIELDS (MESSAGE-ID)]`), a sequence set (`1:4,7`).
    Atom(String),
    /// A quoted string or a literal kept in memory.
    String(Vec<u8>),
    /// `NIL`.
    Nil,
    /// A parenthesised list.
    List(Vec<Value>),
    /// A literal of this many bytes that a sink kept elsewhere.
    Stored(u64),
}

impl Value {
    /// The atom's text, if this is an atom.
    pub fn atom(&self) -> Option<&str> {
        match self {
            Value::Atom(a) => Some(a),
            _ => None,
        }
    }

    /// The value as a number, if it is an atom made of digits.
    pub fn number(&self) -> Option<u64> {
        let a = self.atom()?;
        if a.is_empty() || !a.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        a.parse().ok()
    }

    /// The bytes of a string, or of an atom (IMAP's `astring`).
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Value::String(b) => Some(b),
            Value::Atom(a) => Some(a.as_bytes()),
            _ => None,
        }
    }

    /// The list's items, if this is a list.
    pub fn list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
}

/// The status word of a status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Success.
    Ok,
    /// Failure of the operation.
    No,
    /// The command was not understood.
    Bad,
    /// The server is closing the connection.
    Bye,
    /// Already authenticated (greeting only).
    Preauth,
}

impl Status {
    fn parse(word: &str) -> Option<Status> {
        Some(match word.to_ascii_uppercase().as_str() {
            "OK" => Status::Ok,
            "NO" => Status::No,
            "BAD" => Status::Bad,
            "BYE" => Status::Bye,
            "PREAUTH" => Status::Preauth,
            _ => return None,
        })
    }

    /// The word as the server writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::Bye => "BYE",
            Status::Preauth => "PREAUTH",
        }
    }
}

/// One complete server response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// A status response: tagged (`a1 OK ...`) or untagged (`* BYE ...`).
    Status {
        /// The command's tag; `None` for `*`.
        tag: Option<String>,
        /// OK, NO, BAD, BYE or PREAUTH.
        status: Status,
        /// The response code in brackets, as its items (`UIDVALIDITY`,
        /// `123`), when there is one.
        code: Option<Vec<Value>>,
        /// The human-readable rest of the line.
        text: String,
    },
    /// Untagged data: `* 3 FETCH (...)` is `[3, FETCH, (...)]`.
    Data(Vec<Value>),
    /// A continuation request (`+ ...`), with its text.
    Continue(String),
}

impl Response {
    /// The response code's name, upper-cased (`UIDVALIDITY`), if any.
    pub fn code_name(&self) -> Option<String> {
        match self {
            Response::Status { code: Some(c), .. } => {
                c.first().and_then(Value::atom).map(str::to_ascii_uppercase)
            }
            _ => None,
        }
    }

    /// `STATUS [CODE] text` as one line for error messages.
    pub fn describe(&self) -> String {
        match self {
            Response::Status {
                status, code, text, ..
            } => {
                let code = code
                    .as_ref()
                    .map(|c| format!("[{}] ", render(c)))
                    .unwrap_or_default();
                format!("{} {code}{text}", status.as_str())
            }
            Response::Data(items) => render(items),
            Response::Continue(text) => format!("+ {text}"),
        }
    }
}

/// Items back in IMAP syntax (roughly: strings quoted, lists in
/// parentheses), for messages.
pub fn render(items: &[Value]) -> String {
    let mut out = Vec::new();
    for item in items {
        out.push(match item {
            Value::Atom(a) => a.clone(),
            Value::String(b) => format!("{:?}", String::from_utf8_lossy(b)),
            Value::Nil => "NIL".into(),
            Value::List(l) => format!("({})", render(l)),
            Value::Stored(n) => format!("{{{n}}}"),
        });
    }
    out.join(" ")
}

/// Where literals go while a response is read.
pub trait Literals {
    /// Takes a literal of `len` bytes from `data` (which yields exactly
    /// those bytes) and returns what stands for it in the response.
    /// `key` is the atom just before the literal in its list (`BODY[]`
    /// in a FETCH response), if any. Bytes the sink leaves unread are
    /// skipped. `object` names the server, for errors from `data`.
    fn literal(
        &mut self,
        key: Option<&str>,
        len: u64,
        data: &mut dyn BufRead,
        object: &str,
    ) -> Result<Value>;

    /// [`Literals::literal`] with every item of its list read so far
    /// (`UID 17 BODY[]` in a FETCH response), for a sink that needs to
    /// know which message a body belongs to before it reads the bytes.
    /// The default passes on the last atom as the key.
    fn literal_in(
        &mut self,
        before: &[Value],
        len: u64,
        data: &mut dyn BufRead,
        object: &str,
    ) -> Result<Value> {
        let key = before.last().and_then(Value::atom);
        self.literal(key, len, data, object)
    }
}

/// The default sink: every literal in memory, up to
/// [`MAX_MEMORY_LITERAL`] bytes.
#[derive(Debug, Default)]
pub struct InMemory;

impl Literals for InMemory {
    fn literal(
        &mut self,
        _key: Option<&str>,
        len: u64,
        data: &mut dyn BufRead,
        object: &str,
    ) -> Result<Value> {
        read_literal_to_memory(len, data, object)
    }
}

/// Reads a whole literal into memory, refusing one over
/// [`MAX_MEMORY_LITERAL`].
pub fn read_literal_to_memory(len: u64, data: &mut dyn BufRead, object: &str) -> Result<Value> {
    if len > MAX_MEMORY_LITERAL {
        return Err(Error::new(
            ErrorKind::Protocol,
            object,
            format!("a literal of {len} bytes where a short string was expected"),
        ));
    }
    let mut buf = Vec::with_capacity(len as usize);
    data.read_to_end(&mut buf)
        .map_err(|e| wire_error(object, e))?;
    if (buf.len() as u64) < len {
        return Err(closed(object));
    }
    Ok(Value::String(buf))
}

/// Passes the `len` bytes of a literal from `data` to `each`, chunk by
/// chunk as they arrive, without holding more than one buffer's worth.
/// The connection ending first is `Temporary` (exit 75).
pub fn stream_literal(
    len: u64,
    data: &mut dyn BufRead,
    object: &str,
    each: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut left = len;
    while left > 0 {
        let buf = data.fill_buf().map_err(|e| wire_error(object, e))?;
        if buf.is_empty() {
            return Err(closed(object));
        }
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        each(&buf[..n])?;
        data.consume(n);
        left -= n as u64;
    }
    Ok(())
}

/// The error for a failed read or write on the connection: TLS errors
/// are `Tls` (exit 76), timeouts and the rest `Temporary` (exit 75).
pub fn wire_error(object: &str, e: io::Error) -> Error {
    if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
        return Error::new(ErrorKind::Tls, object, "TLS error").with_source(e);
    }
    if crate::tls::is_timeout(&e) {
        return crate::tls::timed_out(object, None);
    }
    let why = match e.kind() {
        io::ErrorKind::UnexpectedEof => "connection closed by the server",
        _ => "connection lost",
    };
    Error::new(ErrorKind::Temporary, object, why).with_source(e)
}

fn closed(object: &str) -> Error {
    Error::new(
        ErrorKind::Temporary,
        object,
        "connection closed by the server",
    )
}

fn garbage(object: &str, why: impl Into<String>) -> Error {
    Error::new(ErrorKind::Protocol, object, why.into())
}

/// Reads one response from `r`. Literals go to `sink`.
pub fn read_response<R: BufRead>(
    r: &mut R,
    sink: &mut dyn Literals,
    object: &str,
) -> Result<Response> {
    let mut p = Parser {
        r,
        object,
        text_bytes: 0,
        deferred: None,
    };
    let response = p.response(sink)?;
    match p.deferred {
        Some(e) => Err(e),
        None => Ok(response),
    }
}

/// Whether an error leaves the connection unusable (network, TLS, a
/// server that broke the protocol, refused credentials), as opposed to
/// a local failure (a file that could not be written) after which the
/// session can go on.
pub fn breaks_session(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Temporary | ErrorKind::Tls | ErrorKind::Protocol | ErrorKind::Auth
    )
}

struct Parser<'a, R: BufRead> {
    r: &'a mut R,
    object: &'a str,
    text_bytes: usize,
    /// A local failure of the sink: reported once the response has been
    /// read to its end, so the stream stays in step.
    deferred: Option<Error>,
}

impl<R: BufRead> Parser<'_, R> {
    fn peek(&mut self) -> Result<u8> {
        let buf = self.r.fill_buf().map_err(|e| wire_error(self.object, e))?;
        match buf.first() {
            Some(b) => Ok(*b),
            None => Err(closed(self.object)),
        }
    }

    fn bump(&mut self) -> Result<u8> {
        let b = self.peek()?;
        self.r.consume(1);
        self.text_bytes += 1;
        if self.text_bytes > MAX_RESPONSE_TEXT {
            return Err(garbage(self.object, "response too long"));
        }
        Ok(b)
    }

    fn skip_spaces(&mut self) -> Result<()> {
        while self.peek()? == b' ' {
            self.bump()?;
        }
        Ok(())
    }

    /// Consumes the line end (CRLF, or a bare LF from a lax server).
    fn end_of_line(&mut self) -> Result<()> {
        self.skip_spaces()?;
        match self.bump()? {
            b'\n' => Ok(()),
            b'\r' if self.bump()? == b'\n' => Ok(()),
            other => Err(garbage(
                self.object,
                format!("unexpected {:?} where the line should end", other as char),
            )),
        }
    }

    /// The rest of the line as text (line end consumed, not included).
    fn rest_of_line(&mut self) -> Result<String> {
        let mut out = Vec::new();
        loop {
            match self.bump()? {
                b'\n' => break,
                b => out.push(b),
            }
        }
        if out.last() == Some(&b'\r') {
            out.pop();
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn response(&mut self, sink: &mut dyn Literals) -> Result<Response> {
        let first = self.peek()?;
        if first == b'+' {
            self.bump()?;
            let text = self.rest_of_line()?;
            return Ok(Response::Continue(text.trim_start().to_string()));
        }
        let tag = self.atom(false)?;
        if tag.is_empty() {
            return Err(garbage(
                self.object,
                format!("response starts with {:?}", first as char),
            ));
        }
        if self.peek()? != b' ' {
            return Err(garbage(self.object, format!("bad response after {tag:?}")));
        }
        self.skip_spaces()?;
        let untagged = tag == "*";
        // A status word is followed by a space or the line end; `* 3
        // EXISTS` and `* LIST ...` are data, whose first item is read here.
        let word = self.atom(false)?;
        if let Some(status) = Status::parse(&word) {
            return self.status_rest(if untagged { None } else { Some(tag) }, status);
        }
        if !untagged {
            return Err(garbage(
                self.object,
                format!("tagged response {tag} without OK, NO or BAD"),
            ));
        }
        let mut items = Vec::new();
        if !word.is_empty() {
            items.push(if word.eq_ignore_ascii_case("NIL") {
                Value::Nil
            } else {
                Value::Atom(word)
            });
        }
        items.extend(self.items(sink, None)?);
        Ok(Response::Data(items))
    }

    fn status_rest(&mut self, tag: Option<String>, status: Status) -> Result<Response> {
        self.skip_spaces()?;
        let mut code = None;
        if self.peek()? == b'[' {
            self.bump()?;
            let items = self.items(&mut InMemory, Some(b']'))?;
            code = Some(items);
        }
        let text = self.rest_of_line()?.trim().to_string();
        Ok(Response::Status {
            tag,
            status,
            code,
            text,
        })
    }

    /// Items up to the end of the line (`close` None) or up to and
    /// including `close` (`)` or `]`).
    fn items(&mut self, sink: &mut dyn Literals, close: Option<u8>) -> Result<Vec<Value>> {
        let mut items: Vec<Value> = Vec::new();
        loop {
            self.skip_spaces()?;
            let b = self.peek()?;
            if Some(b) == close {
                self.bump()?;
                return Ok(items);
            }
            match b {
                b'\r' | b'\n' => {
                    if close.is_some() {
                        return Err(garbage(self.object, "line ends inside a list"));
                    }
                    self.end_of_line()?;
                    return Ok(items);
                }
                b'(' => {
                    self.bump()?;
                    let inner = self.items(sink, Some(b')'))?;
                    items.push(Value::List(inner));
                }
                b')' | b']' => {
                    return Err(garbage(self.object, format!("unbalanced {:?}", b as char)));
                }
                b'"' => {
                    let s = self.quoted()?;
                    items.push(Value::String(s));
                }
                b'{' | b'~' => {
                    let v = self.literal(sink, &items)?;
                    items.push(v);
                }
                _ => {
                    let a = self.atom(close == Some(b']'))?;
                    if a.is_empty() {
                        return Err(garbage(self.object, format!("unexpected {:?}", b as char)));
                    }
                    if a.eq_ignore_ascii_case("NIL") {
                        items.push(Value::Nil);
                    } else {
                        items.push(Value::Atom(a));
                    }
                }
            }
        }
    }

    /// An atom. A `[` inside it opens a section that runs to the
    /// matching `]` whatever it holds (`BODY[HEADER.FIELDS (A B)]`), and
    /// a `<` after the section an origin (`BODY[]<0>`). In a response
    /// code (`in_code`), a bare `]` ends the atom.
    fn atom(&mut self, in_code: bool) -> Result<String> {
        let mut out = Vec::new();
        let mut depth = 0usize;
        loop {
            let b = self.peek()?;
            if depth > 0 {
                if b == b'\r' || b == b'\n' {
                    return Err(garbage(self.object, "line ends inside a section"));
                }
                if b == b'[' {
                    depth += 1;
                } else if b == b']' {
                    depth -= 1;
                }
                out.push(self.bump()?);
                continue;
            }
            match b {
                b' ' | b'(' | b')' | b'"' | b'{' | b'\r' | b'\n' => break,
                b']' if in_code => break,
                b'[' => {
                    depth += 1;
                    out.push(self.bump()?);
                }
                _ => out.push(self.bump()?),
            }
        }
        String::from_utf8(out).map_err(|_| garbage(self.object, "an atom that is not UTF-8"))
    }

    fn quoted(&mut self) -> Result<Vec<u8>> {
        self.bump()?;
        let mut out = Vec::new();
        loop {
            match self.bump()? {
                b'"' => return Ok(out),
                b'\\' => out.push(self.bump()?),
                b'\r' | b'\n' => {
                    return Err(garbage(self.object, "line ends inside a quoted string"));
                }
                b => out.push(b),
            }
        }
    }

    fn literal(&mut self, sink: &mut dyn Literals, before: &[Value]) -> Result<Value> {
        if self.peek()? == b'~' {
            // literal8 (RFC 3516): same shape.
            self.bump()?;
        }
        self.bump()?; // {
        let mut digits = String::new();
        loop {
            match self.bump()? {
                b'}' => break,
                b'+' => {}
                b if b.is_ascii_digit() && digits.len() < 20 => digits.push(b as char),
                _ => return Err(garbage(self.object, "bad literal length")),
            }
        }
        let len: u64 = digits
            .parse()
            .map_err(|_| garbage(self.object, "bad literal length"))?;
        match self.bump()? {
            b'\n' => {}
            b'\r' if self.bump()? == b'\n' => {}
            _ => return Err(garbage(self.object, "no line end after a literal's length")),
        }
        let mut data = (&mut *self.r).take(len);
        let value = match sink.literal_in(before, len, &mut data, self.object) {
            Ok(v) => v,
            Err(e) if breaks_session(&e) => return Err(e),
            Err(e) => {
                if self.deferred.is_none() {
                    self.deferred = Some(e);
                }
                Value::Nil
            }
        };
        // Whatever the sink left is skipped, so the stream stays in step.
        let left = io::copy(&mut data, &mut io::sink()).map_err(|e| wire_error(self.object, e))?;
        let _ = left;
        if data.limit() > 0 {
            return Err(closed(self.object));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> Response {
        let mut r = io::BufReader::with_capacity(7, text);
        read_response(&mut r, &mut InMemory, "test").unwrap()
    }

    fn parse_err(text: &[u8]) -> Error {
        let mut r = io::BufReader::new(text);
        read_response(&mut r, &mut InMemory, "test").unwrap_err()
    }

    fn atom(a: &str) -> Value {
        Value::Atom(a.into())
    }

    fn string(s: &str) -> Value {
        Value::String(s.as_bytes().to_vec())
    }

    #[test]
    fn status_lines_with_and_without_codes() {
        let cases: Vec<(&[u8], Response)> = vec![
            (
                b"a1 OK [READ-WRITE] Select completed.\r\n",
                Response::Status {
                    tag: Some("a1".into()),
                    status: Status::Ok,
                    code: Some(vec![atom("READ-WRITE")]),
                    text: "Select completed.".into(),
                },
            ),
            (
                b"* OK [PERMANENTFLAGS (\\Answered \\Seen \\*)] Flags permitted.\r\n",
                Response::Status {
                    tag: None,
                    status: Status::Ok,
                    code: Some(vec![
                        atom("PERMANENTFLAGS"),
                        Value::List(vec![atom("\\Answered"), atom("\\Seen"), atom("\\*")]),
                    ]),
                    text: "Flags permitted.".into(),
                },
            ),
            (
                b"a2 OK [APPENDUID 38505 3955] APPEND completed\r\n",
                Response::Status {
                    tag: Some("a2".into()),
                    status: Status::Ok,
                    code: Some(vec![atom("APPENDUID"), atom("38505"), atom("3955")]),
                    text: "APPEND completed".into(),
                },
            ),
            (
                b"a3 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
                Response::Status {
                    tag: Some("a3".into()),
                    status: Status::No,
                    code: Some(vec![atom("AUTHENTICATIONFAILED")]),
                    text: "Authentication failed.".into(),
                },
            ),
            (
                b"* BYE server shutting down (really) \"now\n",
                Response::Status {
                    tag: None,
                    status: Status::Bye,
                    code: None,
                    text: "server shutting down (really) \"now".into(),
                },
            ),
            (
                b"a4 BAD\r\n",
                Response::Status {
                    tag: Some("a4".into()),
                    status: Status::Bad,
                    code: None,
                    text: String::new(),
                },
            ),
            (b"+ Ready\r\n", Response::Continue("Ready".into())),
            (b"+\r\n", Response::Continue(String::new())),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), want, "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn data_with_literals_quoted_strings_nil_and_nested_lists() {
        let r = parse(
            b"* 12 FETCH (UID 7 FLAGS (\\Seen $Label1) RFC822.SIZE 11 \
              BODY[] {11}\r\nab\r\n\"()\r\n{x INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" \
              ENVELOPE (NIL \"a \\\"q\\\" \\\\ b\" ((\"n\" NIL \"u\" \"h\")) NIL))\r\n",
        );
        assert_eq!(
            r,
            Response::Data(vec![
                atom("12"),
                atom("FETCH"),
                Value::List(vec![
                    atom("UID"),
                    atom("7"),
                    atom("FLAGS"),
                    Value::List(vec![atom("\\Seen"), atom("$Label1")]),
                    atom("RFC822.SIZE"),
                    atom("11"),
                    atom("BODY[]"),
                    Value::String(b"ab\r\n\"()\r\n{x".to_vec()),
                    atom("INTERNALDATE"),
                    string("17-Jul-1996 02:44:25 -0700"),
                    atom("ENVELOPE"),
                    Value::List(vec![
                        Value::Nil,
                        string("a \"q\" \\ b"),
                        Value::List(vec![Value::List(vec![
                            string("n"),
                            Value::Nil,
                            string("u"),
                            string("h"),
                        ])]),
                        Value::Nil,
                    ]),
                ]),
            ])
        );
    }

    #[test]
    fn sections_with_spaces_and_origins_are_one_atom() {
        let r = parse(
            b"* 1 FETCH (UID 3 BODY[HEADER.FIELDS (MESSAGE-ID)] {5}\r\nM: x\n BODY[]<0> \"\")\r\n",
        );
        let Response::Data(items) = r else { panic!() };
        let fetch = items[2].list().unwrap();
        assert_eq!(fetch[2], atom("BODY[HEADER.FIELDS (MESSAGE-ID)]"));
        assert_eq!(fetch[3], string("M: x\n"));
        assert_eq!(fetch[4], atom("BODY[]<0>"));
        assert_eq!(fetch[5], string(""));
    }

    #[test]
    fn vanished_earlier_and_modseq() {
        let r = parse(b"* VANISHED (EARLIER) 41,43:116,118\r\n");
        assert_eq!(
            r,
            Response::Data(vec![
                atom("VANISHED"),
                Value::List(vec![atom("EARLIER")]),
                atom("41,43:116,118"),
            ])
        );
        let r = parse(b"* 5 FETCH (UID 9 FLAGS () MODSEQ (12121231000))\r\n");
        let Response::Data(items) = r else { panic!() };
        let fetch = items[2].list().unwrap();
        assert_eq!(fetch[3], Value::List(vec![]));
        assert_eq!(fetch[5].list().unwrap()[0].number(), Some(12121231000));
    }

    #[test]
    fn list_names_as_atom_quoted_and_literal() {
        let r = parse(b"* LIST (\\HasNoChildren) \".\" Re&AOc-us.Factures\r\n");
        assert_eq!(
            r,
            Response::Data(vec![
                atom("LIST"),
                Value::List(vec![atom("\\HasNoChildren")]),
                string("."),
                atom("Re&AOc-us.Factures"),
            ])
        );
        let r = parse(b"* LIST () NIL {7}\r\nA \"b\" c\r\n");
        assert_eq!(
            r,
            Response::Data(vec![
                atom("LIST"),
                Value::List(vec![]),
                Value::Nil,
                string("A \"b\" c"),
            ])
        );
    }

    #[test]
    fn literal_goes_to_the_sink_with_its_key() {
        struct Count(Vec<(Option<String>, u64)>);
        impl Literals for Count {
            fn literal(
                &mut self,
                key: Option<&str>,
                len: u64,
                data: &mut dyn BufRead,
                _object: &str,
            ) -> Result<Value> {
                // Reads only part of it: the parser must skip the rest.
                let mut two = [0u8; 2];
                data.read_exact(&mut two).unwrap();
                self.0.push((key.map(str::to_string), len));
                Ok(Value::Stored(len))
            }
        }
        let mut sink = Count(Vec::new());
        let text = b"* 1 FETCH (BODY[] {6}\r\nabcdef UID 4)\r\n* 2 EXISTS\r\n";
        let mut r = io::BufReader::with_capacity(3, &text[..]);
        let first = read_response(&mut r, &mut sink, "t").unwrap();
        let second = read_response(&mut r, &mut sink, "t").unwrap();
        assert_eq!(sink.0, vec![(Some("BODY[]".into()), 6)]);
        assert_eq!(
            first,
            Response::Data(vec![
                atom("1"),
                atom("FETCH"),
                Value::List(vec![
                    atom("BODY[]"),
                    Value::Stored(6),
                    atom("UID"),
                    atom("4")
                ]),
            ])
        );
        assert_eq!(second, Response::Data(vec![atom("2"), atom("EXISTS")]));
    }

    #[test]
    fn a_local_sink_failure_is_reported_after_the_whole_response() {
        struct Full;
        impl Literals for Full {
            fn literal(
                &mut self,
                _key: Option<&str>,
                _len: u64,
                _data: &mut dyn BufRead,
                _object: &str,
            ) -> Result<Value> {
                Err(Error::new(ErrorKind::CannotCreate, "/m/tmp/x", "disk full"))
            }
        }
        let text = b"* 1 FETCH (BODY[] {3}\r\nabc UID 4)\r\n* 2 EXISTS\r\n";
        let mut r = io::BufReader::new(&text[..]);
        let err = read_response(&mut r, &mut Full, "t").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CannotCreate);
        assert!(!breaks_session(&err));
        let next = read_response(&mut r, &mut Full, "t").unwrap();
        assert_eq!(next, Response::Data(vec![atom("2"), atom("EXISTS")]));
    }

    #[test]
    fn truncated_and_malformed_input() {
        // The connection ends mid-literal or mid-line: temporary.
        for text in [
            &b"* 1 FETCH (BODY[] {10}\r\nabc"[..],
            b"* 1 FETCH (UID 4",
            b"",
        ] {
            assert_eq!(parse_err(text).kind(), ErrorKind::Temporary);
        }
        // Garbage: a protocol error.
        for text in [
            &b"* 1 FETCH (UID 4))\r\n"[..],
            b"a1 FETCH done\r\n",
            b"* 1 FETCH (BODY[] {1x}\r\n",
            b"* LIST \"unterminated\r\n",
            b")\r\n",
        ] {
            assert_eq!(
                parse_err(text).kind(),
                ErrorKind::Protocol,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn oversized_in_memory_literal_is_refused() {
        let text = format!("* LIST () \".\" {{{}}}\r\n", MAX_MEMORY_LITERAL + 1);
        assert_eq!(parse_err(text.as_bytes()).kind(), ErrorKind::Protocol);
    }
}
