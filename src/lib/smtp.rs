//! A small synchronous SMTP submission client (RFC 5321, 3207, 4954):
//! `smtp://` with STARTTLS, `smtps://` with implicit TLS, AUTH PLAIN,
//! LOGIN and XOAUTH2, MAIL/RCPT pipelined when offered, and one session
//! reused for many messages.
//!
//! Its point is the reply handling: every server reply decides the
//! outcome through [`kind_for_reply`] (2xx sent, 4xx or a lost connection
//! temporary, 5xx refused, 5xx on the data bad input, auth codes auth,
//! TLS failures TLS), and every error names the server and quotes the
//! reply. [`Sender`] adds retries with backoff and reconnects.
//!
//! It does not queue, resolve MX records, or do DSN/SMTPUTF8/CHUNKING.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::compose::base64_encode;
use crate::config::Secret;
use crate::error::{Error, ErrorKind, Result};
use crate::tls::{self, Wire};

/// Bytes read from the server at a time: replies are short.
const READ_BUFFER: usize = 16 * 1024;

/// The SMTP envelope: who the message is from and every recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The reverse path (`MAIL FROM`); empty for a bounce.
    pub from: String,
    /// The forward paths (`RCPT TO`), in order, without duplicates.
    pub to: Vec<String>,
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtp://`: plain connection upgraded with STARTTLS; `required`
    /// unless `?starttls=opportunistic`.
    StartTls {
        /// Fail when the server does not offer STARTTLS.
        required: bool,
    },
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://...?starttls=none`: cleartext throughout (a relay on this
    /// machine); credentials are then sent only with
    /// `--allow-plaintext-auth`.
    Plain,
}

/// A parsed `smtp://[user@]host[:port][?starttls=opportunistic|none]` or
/// `smtps://[user@]host[:port]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    /// STARTTLS or implicit TLS.
    pub security: Security,
    /// Host name or address (without brackets).
    pub host: String,
    /// Port: 587 for `smtp://`, 465 for `smtps://` unless given.
    pub port: u16,
    /// Login name from the URL, percent-decoded.
    pub user: Option<String>,
}

impl SmtpUrl {
    /// Parses a URL. A password in the URL is refused (secrets never go
    /// on the command line), and errors never show it.
    pub fn parse(text: &str) -> Result<SmtpUrl> {
        let parts = crate::url::parse(text, "smtp://HOST[:PORT] or smtps://HOST[:PORT]")?;
        let bad = |why: &str| crate::url::usage(text, why);
        let (mut security, default_port) = match parts.scheme.as_str() {
            "smtp" => (Security::StartTls { required: true }, 587),
            "smtps" => (Security::Implicit, 465),
            _ => return Err(bad("scheme must be smtp:// (STARTTLS) or smtps:// (TLS)")),
        };
        for pair in &parts.query {
            match pair.as_str() {
                "starttls=opportunistic" if security != Security::Implicit => {
                    security = Security::StartTls { required: false }
                }
                "starttls=none" if security != Security::Implicit => security = Security::Plain,
                "starttls=required" if security != Security::Implicit => {}
                _ => {
                    return Err(bad(&format!(
                        "unknown parameter {pair:?} (known for smtp://: starttls=required, \
                         starttls=opportunistic, starttls=none)"
                    )));
                }
            }
        }
        Ok(SmtpUrl {
            security,
            host: parts.host,
            port: parts.port.unwrap_or(default_port),
            user: parts.user,
        })
    }

    /// `scheme://host:port`, as errors name the server (no user).
    pub fn display(&self) -> String {
        let scheme = self.scheme();
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    /// `smtp` or `smtps`.
    pub fn scheme(&self) -> &'static str {
        match self.security {
            Security::Implicit => "smtps",
            Security::StartTls { .. } | Security::Plain => "smtp",
        }
    }

    /// The server and login name a secret is tied to; `user` stands in
    /// when the URL has none.
    pub fn endpoint(&self, user: Option<&str>) -> crate::url::Endpoint {
        crate::url::Endpoint::new(self.scheme(), self.user.as_deref(), &self.host, self.port)
            .with_default_user(user)
    }
}

/// Credentials for AUTH.
#[derive(Debug, Clone)]
pub enum Auth {
    /// AUTH PLAIN (or LOGIN when PLAIN is not offered).
    Password {
        /// Login name.
        user: String,
        /// Password.
        password: Secret,
    },
    /// AUTH XOAUTH2 with a bearer token.
    OAuth2 {
        /// Login name (the mailbox address, usually).
        user: String,
        /// Access token.
        token: Secret,
    },
}

/// Everything a session needs besides the URL.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The TLS configuration ([`tls::client_config`]).
    pub tls: Arc<rustls::ClientConfig>,
    /// `--allow-plaintext-auth`: credentials may be sent over a
    /// connection without TLS (only a `?starttls=none` or
    /// `?starttls=opportunistic` URL can have one). Certificate checks
    /// (`--insecure`) have nothing to do with it.
    pub allow_plaintext_auth: bool,
    /// The name we give in EHLO.
    pub helo: String,
    /// Credentials, when the server wants them.
    pub auth: Option<Auth>,
    /// Connect, read and write timeout.
    pub timeout: Duration,
}

/// One SMTP reply: the code and its text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text of each line, after the code and separator.
    pub lines: Vec<String>,
}

impl Reply {
    /// The enhanced status code (RFC 3463) at the start of the text, as
    /// (class, subject, detail).
    pub fn enhanced(&self) -> Option<(u16, u16, u16)> {
        let first = self.lines.first()?.split(' ').next()?;
        let mut parts = first.split('.').map(|p| p.parse::<u16>().ok());
        let (a, b, c) = (parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some((a, b, c))
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.code)?;
        for line in &self.lines {
            if !line.is_empty() {
                write!(f, " {line}")?;
            }
        }
        Ok(())
    }
}

/// Where in the dialogue a reply came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The server's greeting.
    Greeting,
    /// EHLO / HELO.
    Hello,
    /// STARTTLS.
    StartTls,
    /// AUTH and its challenges.
    Auth,
    /// MAIL FROM.
    MailFrom,
    /// RCPT TO.
    RcptTo,
    /// DATA (before the content).
    Data,
    /// The reply to the content's final dot.
    DataEnd,
}

/// The kind of failure an unwanted reply means at `stage`:
/// 4xx temporary; 530/534/535/538 (or any 5xx to AUTH) authentication;
/// 552 or 5.3.4 (too big), and 5.6.x or 5.7.1 after the data, bad input
/// (the server rejects the content itself); 5xx to STARTTLS TLS; any
/// other 5xx refused; codes outside 4xx/5xx a protocol error.
pub fn kind_for_reply(stage: Stage, reply: &Reply) -> ErrorKind {
    let enhanced = reply.enhanced();
    match reply.code {
        400..=499 => ErrorKind::Temporary,
        530 | 534 | 535 | 538 => ErrorKind::Auth,
        500..=599 if stage == Stage::Auth => ErrorKind::Auth,
        500..=599 if stage == Stage::StartTls => ErrorKind::Tls,
        552 if matches!(stage, Stage::DataEnd | Stage::MailFrom) => ErrorKind::BadInput,
        500..=599 if matches!(enhanced, Some((5, 3, 4))) => ErrorKind::BadInput,
        500..=599
            if stage == Stage::DataEnd && matches!(enhanced, Some((5, 6, _)) | Some((5, 7, 1))) =>
        {
            ErrorKind::BadInput
        }
        500..=599 => ErrorKind::Refused,
        _ => ErrorKind::Protocol,
    }
}

/// What EHLO said the server can do.
#[derive(Debug, Clone, Default)]
struct Extensions {
    starttls: bool,
    pipelining: bool,
    eight_bit: bool,
    size: bool,
    auth: Vec<String>,
}

impl Extensions {
    fn from_reply(reply: &Reply) -> Extensions {
        let mut ext = Extensions::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "STARTTLS" => ext.starttls = true,
                "PIPELINING" => ext.pipelining = true,
                "8BITMIME" => ext.eight_bit = true,
                "SIZE" => ext.size = true,
                "AUTH" => ext.auth.extend(words.map(|w| w.to_ascii_uppercase())),
                _ => {}
            }
        }
        ext
    }
}

/// An open SMTP session, greeted, secured and authenticated.
pub struct Session {
    wire: BufReader<Wire>,
    object: String,
    ext: Extensions,
    /// False once the dialogue is out of step (a lost connection, a
    /// reply we did not expect): the session must not be reused.
    usable: bool,
    /// Messages sent on this session.
    sent: usize,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("server", &self.object)
            .field("usable", &self.usable)
            .field("sent", &self.sent)
            .finish()
    }
}

impl Session {
    /// Connects, reads the greeting, says EHLO, secures the connection as
    /// the URL asks and authenticates when credentials are given.
    pub fn connect(url: &SmtpUrl, settings: &Settings) -> Result<Session> {
        let object = url.display();
        let tcp = tls::connect_tcp(&url.host, url.port, settings.timeout, &object)?;
        let (wire, tls_on) = match url.security {
            Security::Implicit => (
                Wire::tls(
                    tls::handshake(tcp, &url.host, &settings.tls, &object)?,
                    READ_BUFFER,
                ),
                true,
            ),
            Security::StartTls { .. } | Security::Plain => (Wire::Plain(tcp), false),
        };
        let mut session = Session {
            wire: BufReader::with_capacity(READ_BUFFER, wire),
            object,
            ext: Extensions::default(),
            usable: true,
            sent: 0,
        };
        session.expect(Stage::Greeting, &[220], "server refused the connection")?;
        session.hello(&settings.helo)?;
        let mut secured = tls_on;
        if let Security::StartTls { required } = url.security {
            if session.ext.starttls {
                session.command(b"STARTTLS\r\n")?;
                session.expect(Stage::StartTls, &[220], "STARTTLS refused")?;
                if !session.wire.buffer().is_empty() {
                    // Anything sent before the handshake could be injected.
                    return Err(session.protocol("data after the STARTTLS reply"));
                }
                let object = session.object.clone();
                session
                    .wire
                    .get_mut()
                    .start_tls(&url.host, &settings.tls, &object, READ_BUFFER)?;
                secured = true;
                session.hello(&settings.helo)?;
            } else if required {
                // Whatever --insecure says: a server that does not offer
                // STARTTLS may be an attacker who removed it.
                return Err(Error::new(
                    ErrorKind::Tls,
                    &session.object,
                    "server does not offer STARTTLS (someone may have removed it; \
                     ?starttls=none in the URL sends in cleartext)",
                ));
            }
        }
        if let Some(auth) = &settings.auth {
            if !secured && !settings.allow_plaintext_auth {
                return Err(Error::new(
                    ErrorKind::Tls,
                    &session.object,
                    "refusing to send credentials over a connection without TLS \
                     (--allow-plaintext-auth would allow it)",
                ));
            }
            session.authenticate(auth)?;
        }
        Ok(session)
    }

    /// Whether another message may be sent on this session.
    pub fn is_usable(&self) -> bool {
        self.usable
    }

    /// How many messages this session has sent.
    pub fn sent(&self) -> usize {
        self.sent
    }

    fn hello(&mut self, helo: &str) -> Result<()> {
        self.command(format!("EHLO {helo}\r\n").as_bytes())?;
        let reply = self.read_reply(Stage::Hello)?;
        if reply.code == 250 {
            self.ext = Extensions::from_reply(&reply);
            return Ok(());
        }
        // A server from before ESMTP: plain HELO, no extensions.
        self.command(format!("HELO {helo}\r\n").as_bytes())?;
        self.expect(Stage::Hello, &[250], "HELO refused")?;
        self.ext = Extensions::default();
        Ok(())
    }

    fn authenticate(&mut self, auth: &Auth) -> Result<()> {
        let offered = |m: &str| self.ext.auth.iter().any(|a| a == m);
        match auth {
            Auth::OAuth2 { user, token } => {
                let blob = format!("user={user}\x01auth=Bearer {}\x01\x01", token.expose());
                self.command(
                    format!("AUTH XOAUTH2 {}\r\n", base64_encode(blob.as_bytes())).as_bytes(),
                )?;
                let reply = self.read_reply(Stage::Auth)?;
                if reply.code == 334 {
                    // The server's error details come as a challenge;
                    // an empty answer gets the final (failure) reply.
                    self.command(b"\r\n")?;
                    let fin = self.read_reply(Stage::Auth)?;
                    return Err(self.reply_error(Stage::Auth, &fin, "authentication failed"));
                }
                self.check(Stage::Auth, &reply, &[235], "authentication failed")
            }
            Auth::Password { user, password } => {
                if self.ext.auth.is_empty() {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        &self.object,
                        "server offers no AUTH mechanism on this connection",
                    ));
                }
                if !offered("PLAIN") && offered("LOGIN") {
                    self.command(b"AUTH LOGIN\r\n")?;
                    self.expect(Stage::Auth, &[334], "authentication failed")?;
                    self.command(format!("{}\r\n", base64_encode(user.as_bytes())).as_bytes())?;
                    self.expect(Stage::Auth, &[334], "authentication failed")?;
                    self.command(
                        format!("{}\r\n", base64_encode(password.expose().as_bytes())).as_bytes(),
                    )?;
                } else {
                    let token = format!("\0{user}\0{}", password.expose());
                    self.command(
                        format!("AUTH PLAIN {}\r\n", base64_encode(token.as_bytes())).as_bytes(),
                    )?;
                }
                self.expect(Stage::Auth, &[235], "authentication failed")
            }
        }
    }

    /// Sends one message and returns the server's reply to its data.
    ///
    /// Line ends are sent as CRLF and lines starting with a dot are
    /// stuffed. On a refusal before the data the session is reset and
    /// stays usable; on a lost connection or a reply out of step it is
    /// not ([`Session::is_usable`]).
    pub fn send(&mut self, envelope: &Envelope, message: &[u8]) -> Result<Reply> {
        if envelope.to.is_empty() {
            return Err(Error::new(ErrorKind::Usage, &self.object, "no recipients"));
        }
        let mut params = String::new();
        if self.ext.size {
            params.push_str(&format!(" SIZE={}", message.len()));
        }
        if self.ext.eight_bit && !message.is_ascii() {
            params.push_str(" BODY=8BITMIME");
        }
        let mail = format!("MAIL FROM:<{}>{params}\r\n", envelope.from);
        let rcpts: Vec<String> = envelope
            .to
            .iter()
            .map(|r| format!("RCPT TO:<{r}>\r\n"))
            .collect();
        let result = if self.ext.pipelining {
            let mut batch = mail.into_bytes();
            for r in &rcpts {
                batch.extend_from_slice(r.as_bytes());
            }
            self.command(&batch)?;
            // Read every reply in order; when the connection ends early
            // (a 421 to MAIL, then close), the refusal already read is
            // the news, not the lost connection.
            let from_what = format!("sender <{}> refused", envelope.from);
            let mut checked: Result<()> = Ok(());
            let stages = std::iter::once((Stage::MailFrom, from_what, vec![250])).chain(
                envelope.to.iter().map(|r| {
                    (
                        Stage::RcptTo,
                        format!("recipient <{r}> refused"),
                        vec![250, 251],
                    )
                }),
            );
            for (stage, what, want) in stages {
                match self.read_reply(stage) {
                    Ok(reply) => {
                        if checked.is_ok() {
                            checked = self.check(stage, &reply, &want, &what);
                        }
                    }
                    Err(e) => {
                        return Err(match checked {
                            Err(first) => first,
                            Ok(()) => e,
                        });
                    }
                }
            }
            checked
        } else {
            self.command(mail.as_bytes())?;
            self.expect(
                Stage::MailFrom,
                &[250],
                &format!("sender <{}> refused", envelope.from),
            )
            .and_then(|()| {
                for (rcpt, line) in envelope.to.iter().zip(&rcpts) {
                    self.command(line.as_bytes())?;
                    self.expect(
                        Stage::RcptTo,
                        &[250, 251],
                        &format!("recipient <{rcpt}> refused"),
                    )?;
                }
                Ok(())
            })
        };
        if let Err(e) = result {
            self.reset();
            return Err(e);
        }
        self.command(b"DATA\r\n")?;
        if let Err(e) = self.expect(Stage::Data, &[354], "DATA refused") {
            self.reset();
            return Err(e);
        }
        let data = dot_stuff(message);
        self.write_all(&data)?;
        let reply = self.read_reply(Stage::DataEnd)?;
        self.check(Stage::DataEnd, &reply, &[250], "message refused")?;
        self.sent += 1;
        Ok(reply)
    }

    /// Says QUIT and closes (errors ignored: the mail is already sent).
    pub fn quit(mut self) {
        if self.usable {
            let _ = self.command(b"QUIT\r\n");
            let _ = self.read_reply(Stage::Hello);
        }
    }

    fn reset(&mut self) {
        if !self.usable {
            return;
        }
        let ok = self.command(b"RSET\r\n").is_ok()
            && matches!(self.read_reply(Stage::Hello), Ok(r) if r.code == 250);
        if !ok {
            self.usable = false;
        }
    }

    fn command(&mut self, bytes: &[u8]) -> Result<()> {
        self.write_all(bytes)
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let w = self.wire.get_mut();
        if let Err(e) = w.write_all(bytes).and_then(|()| w.flush()) {
            self.usable = false;
            if crate::tls::is_timeout(&e) {
                let limit = self
                    .wire
                    .get_ref()
                    .tcp()
                    .and_then(|t| t.write_timeout().ok().flatten());
                return Err(crate::tls::timed_out(&self.object, limit));
            }
            return Err(
                Error::new(ErrorKind::Temporary, &self.object, "connection lost").with_source(e),
            );
        }
        Ok(())
    }

    fn read_reply(&mut self, stage: Stage) -> Result<Reply> {
        let mut lines = Vec::new();
        let mut code = 0;
        loop {
            let mut line = Vec::new();
            let read = self.wire.by_ref().take(4096).read_until(b'\n', &mut line);
            match read {
                Ok(0) => {
                    self.usable = false;
                    let what = match stage {
                        Stage::DataEnd => {
                            "connection closed after the data, before the server's reply"
                        }
                        _ => "connection closed by the server",
                    };
                    return Err(Error::new(ErrorKind::Temporary, &self.object, what));
                }
                Ok(_) => {}
                Err(e) => {
                    self.usable = false;
                    if crate::tls::is_timeout(&e) {
                        let limit = self
                            .wire
                            .get_ref()
                            .tcp()
                            .and_then(|t| t.read_timeout().ok().flatten());
                        return Err(crate::tls::timed_out(&self.object, limit));
                    }
                    let kind = if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
                        ErrorKind::Tls
                    } else {
                        ErrorKind::Temporary
                    };
                    return Err(Error::new(kind, &self.object, "connection lost").with_source(e));
                }
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            let this: Option<u16> = text.get(..3).and_then(|c| c.parse().ok());
            let sep = text.as_bytes().get(3).copied();
            let Some(this) =
                this.filter(|c| (200..600).contains(c) && matches!(sep, None | Some(b' ' | b'-')))
            else {
                return Err(self.protocol(&format!("malformed reply line {text:?}")));
            };
            if code != 0 && this != code {
                return Err(self.protocol("reply code changed within a reply"));
            }
            code = this;
            lines.push(text.get(4..).unwrap_or("").to_string());
            if sep != Some(b'-') {
                break;
            }
            if lines.len() > 1000 {
                return Err(self.protocol("reply too long"));
            }
        }
        let reply = Reply { code, lines };
        if code == 421 {
            // The server is closing the session.
            self.usable = false;
        }
        Ok(reply)
    }

    fn expect(&mut self, stage: Stage, want: &[u16], what: &str) -> Result<()> {
        let reply = self.read_reply(stage)?;
        self.check(stage, &reply, want, what)
    }

    fn check(&mut self, stage: Stage, reply: &Reply, want: &[u16], what: &str) -> Result<()> {
        if want.contains(&reply.code) {
            return Ok(());
        }
        Err(self.reply_error(stage, reply, what))
    }

    fn reply_error(&mut self, stage: Stage, reply: &Reply, what: &str) -> Error {
        let kind = kind_for_reply(stage, reply);
        if kind == ErrorKind::Protocol {
            self.usable = false;
        }
        Error::new(kind, &self.object, format!("{what} ({reply})"))
    }

    fn protocol(&mut self, what: &str) -> Error {
        self.usable = false;
        Error::new(ErrorKind::Protocol, &self.object, what.to_string())
    }
}

/// The message as DATA sends it: CRLF line ends, leading dots doubled,
/// and the final `.` line.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 50 + 8);
    let mut at_line_start = true;
    let mut i = 0;
    while i < message.len() {
        let b = message[i];
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        match b {
            b'\r' if message.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
                at_line_start = true;
            }
            b'\r' | b'\n' => {
                out.extend_from_slice(b"\r\n");
                at_line_start = true;
            }
            _ => {
                out.push(b);
                at_line_start = false;
            }
        }
        i += 1;
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// How often and how patiently to retry a temporary failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts after the first.
    pub retries: u32,
    /// The first wait; each later wait doubles it.
    pub wait: Duration,
}

/// Sends messages to one server over one session, connecting lazily,
/// reconnecting when the server closed the session, and retrying
/// temporary failures with backoff.
#[derive(Debug)]
pub struct Sender {
    url: SmtpUrl,
    settings: Settings,
    retry: Retry,
    session: Option<Session>,
    /// Connections opened so far.
    pub connections: usize,
}

impl Sender {
    /// A sender for `url`; nothing is connected yet.
    pub fn new(url: SmtpUrl, settings: Settings, retry: Retry) -> Sender {
        Sender {
            url,
            settings,
            retry,
            session: None,
            connections: 0,
        }
    }

    /// The server as errors name it.
    pub fn server(&self) -> String {
        self.url.display()
    }

    /// Sends one message. Temporary failures are retried (reconnecting)
    /// up to the retry count, waiting `wait`, `2 wait`, `4 wait` ...; a
    /// reused session that turns out closed is replaced at once without
    /// using up an attempt. Other failures return at once.
    pub fn send(&mut self, envelope: &Envelope, message: &[u8]) -> Result<Reply> {
        let mut attempt = 0;
        let mut free_reconnect = true;
        loop {
            let reused = self.session.as_ref().is_some_and(|s| s.sent() > 0);
            let result = self.try_send(envelope, message);
            match result {
                Ok(reply) => return Ok(reply),
                Err(e) if e.is_temporary() => {
                    let stale = reused
                        && free_reconnect
                        && !self.session.as_ref().is_some_and(Session::is_usable);
                    self.drop_session();
                    if stale {
                        free_reconnect = false;
                        tracing::debug!("{}: session closed; reconnecting", self.url.display());
                        continue;
                    }
                    if attempt >= self.retry.retries {
                        return Err(e);
                    }
                    let wait = self.retry.wait.saturating_mul(1 << attempt.min(16));
                    tracing::info!("{e:#}; retrying in {:?}", wait);
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                Err(e) => {
                    if !self.session.as_ref().is_some_and(Session::is_usable) {
                        self.drop_session();
                    }
                    return Err(e);
                }
            }
        }
    }

    fn try_send(&mut self, envelope: &Envelope, message: &[u8]) -> Result<Reply> {
        if self.session.as_ref().is_some_and(|s| !s.is_usable()) {
            self.session = None;
        }
        if self.session.is_none() {
            self.connections += 1;
            self.session = Some(Session::connect(&self.url, &self.settings)?);
        }
        match &mut self.session {
            Some(s) => s.send(envelope, message),
            None => unreachable!(),
        }
    }

    fn drop_session(&mut self) {
        if let Some(s) = self.session.take()
            && s.is_usable()
        {
            s.quit();
        }
    }

    /// Ends the session politely.
    pub fn finish(mut self) {
        if let Some(s) = self.session.take() {
            s.quit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, text: &str) -> Reply {
        Reply {
            code,
            lines: vec![text.to_string()],
        }
    }

    #[test]
    fn replies_map_to_kinds() {
        use ErrorKind::{Auth as AuthFailed, BadInput, Protocol, Refused, Temporary, Tls};
        use Stage::*;
        let cases = [
            (Greeting, 421, "4.3.2 Service shutting down", Temporary),
            (Greeting, 554, "5.3.2 no service", Refused),
            (Auth, 535, "5.7.8 Error: authentication failed", AuthFailed),
            (
                Auth,
                454,
                "4.7.0 Temporary authentication failure",
                Temporary,
            ),
            (Auth, 504, "5.5.4 Unrecognized mechanism", AuthFailed),
            (MailFrom, 530, "5.7.0 Authentication required", AuthFailed),
            (
                MailFrom,
                552,
                "5.3.4 Message size exceeds fixed limit",
                BadInput,
            ),
            (MailFrom, 553, "5.7.1 Sender address rejected", Refused),
            (
                RcptTo,
                550,
                "5.1.1 Recipient address rejected: User unknown",
                Refused,
            ),
            (RcptTo, 554, "5.7.1 Relay access denied", Refused),
            (RcptTo, 450, "4.2.0 Greylisted", Temporary),
            (Data, 554, "5.5.1 Error: no valid recipients", Refused),
            (DataEnd, 554, "5.6.0 Message content rejected", BadInput),
            (DataEnd, 550, "5.7.1 Content refused: virus", BadInput),
            (DataEnd, 552, "5.2.2 Mailbox full", BadInput),
            (DataEnd, 554, "5.7.0 Policy rejection", Refused),
            (
                DataEnd,
                451,
                "4.3.0 Error: queue file write error",
                Temporary,
            ),
            (StartTls, 554, "5.7.0 TLS not available", Tls),
            (Hello, 250, "ok", Protocol),
        ];
        for (stage, code, text, want) in cases {
            assert_eq!(
                kind_for_reply(stage, &reply(code, text)),
                want,
                "{stage:?} {code} {text}"
            );
        }
    }

    #[test]
    fn exit_codes_of_reply_kinds() {
        let cases = [
            (Stage::Auth, 535, 77),
            (Stage::RcptTo, 550, 69),
            (Stage::DataEnd, 554, 69),
            (Stage::DataEnd, 552, 65),
            (Stage::MailFrom, 421, 75),
        ];
        for (stage, code, exit) in cases {
            let kind = kind_for_reply(stage, &reply(code, ""));
            assert_eq!(kind.exit().code(), exit, "{stage:?} {code}");
        }
    }

    #[test]
    fn urls_parse() {
        let u = SmtpUrl::parse("smtp://alice%40x.test@mail.x.test").unwrap();
        assert_eq!(u.security, Security::StartTls { required: true });
        assert_eq!((u.host.as_str(), u.port), ("mail.x.test", 587));
        assert_eq!(u.user.as_deref(), Some("alice@x.test"));
        assert_eq!(u.display(), "smtp://mail.x.test:587");
        let u = SmtpUrl::parse("smtps://h:2465/").unwrap();
        assert_eq!((u.security, u.port), (Security::Implicit, 2465));
        let u = SmtpUrl::parse("smtp://127.0.0.1:25?starttls=opportunistic").unwrap();
        assert_eq!(u.security, Security::StartTls { required: false });
        let u = SmtpUrl::parse("smtp://[::1]:25").unwrap();
        assert_eq!(u.display(), "smtp://[::1]:25");
        let u = SmtpUrl::parse("smtp://h:25?starttls=none").unwrap();
        assert_eq!(
            (u.security, u.display()),
            (Security::Plain, "smtp://h:25".into())
        );
        for bad in [
            "mail.x.test",
            "http://h",
            "smtp://u:pw@h",
            "smtp://h:port",
            "smtp://h?x=y",
            "smtps://h?starttls=opportunistic",
            "smtps://h?starttls=none",
            "smtp://",
        ] {
            assert_eq!(SmtpUrl::parse(bad).unwrap_err().exit().code(), 64, "{bad}");
        }
    }

    #[test]
    fn data_is_dot_stuffed_with_crlf() {
        let cases: [(&[u8], &[u8]); 4] = [
            (b"a\n.b\n", b"a\r\n..b\r\n.\r\n"),
            (b".\r\nx", b"..\r\nx\r\n.\r\n"),
            (b"", b".\r\n"),
            (b"a\rb\r\n", b"a\r\nb\r\n.\r\n"),
        ];
        for (input, want) in cases {
            assert_eq!(dot_stuff(input), want);
        }
    }

    #[test]
    fn enhanced_codes_parse() {
        assert_eq!(reply(550, "5.1.1 <x>: unknown").enhanced(), Some((5, 1, 1)));
        assert_eq!(reply(550, "no code").enhanced(), None);
        assert_eq!(reply(250, "").to_string(), "250");
        assert_eq!(
            reply(535, "5.7.8 Error: x").to_string(),
            "535 5.7.8 Error: x"
        );
    }
}
