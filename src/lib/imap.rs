//! A deliberately small synchronous IMAP4rev1 client, enough for
//! `mail-inject --imap URL --folder NAME`: connect with implicit TLS
//! (`imaps://`) or STARTTLS (`imap://`, required), log in (LOGIN, or
//! AUTHENTICATE XOAUTH2 with a token), APPEND one message as a literal
//! (creating the folder when the server says TRYCREATE), LOGOUT.
//!
//! It does not select, fetch, search or IDLE, and it does not parse
//! literals in responses: mail-sync will grow it (or replace it with
//! async-imap) when it needs those.

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use crate::compose::base64_encode;
use crate::error::{Error, ErrorKind, Result};
use crate::smtp::Auth;
use crate::tls::{self, Wire};

/// A parsed `imaps://[user@]host[:993]` or `imap://[user@]host[:143]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// TLS from the first byte (`imaps://`) or STARTTLS (`imap://`).
    pub implicit_tls: bool,
    /// Host name or address.
    pub host: String,
    /// Port: 993 or 143 unless given.
    pub port: u16,
    /// Login name from the URL.
    pub user: Option<String>,
}

impl ImapUrl {
    /// Parses the URL; a password in it is refused.
    pub fn parse(text: &str) -> Result<ImapUrl> {
        let bad =
            |why: &str| Error::new(ErrorKind::Usage, format!("URL {text:?}"), why.to_string());
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| bad("expected imaps://HOST or imap://HOST (STARTTLS)"))?;
        let (implicit_tls, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "imaps" => (true, 993),
            "imap" => (false, 143),
            _ => return Err(bad("scheme must be imaps:// or imap:// (STARTTLS)")),
        };
        let rest = rest.trim_end_matches('/');
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, _)) if u.contains(':') => {
                return Err(bad(
                    "a password in the URL is refused; use --password-command or MAILBOT_PASSWORD",
                ));
            }
            Some((u, h)) => (Some(u.replace("%40", "@")), h),
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad("bad port"))?),
            None => (hostport, default_port),
        };
        if host.is_empty() || host.contains('/') {
            return Err(bad("bad host"));
        }
        Ok(ImapUrl {
            implicit_tls,
            host: host.to_string(),
            port,
            user: user.filter(|u| !u.is_empty()),
        })
    }

    /// `scheme://host:port`, as errors name the server.
    pub fn display(&self) -> String {
        let scheme = if self.implicit_tls { "imaps" } else { "imap" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }
}

/// An authenticated IMAP session.
#[derive(Debug)]
pub struct Session {
    wire: BufReader<Wire>,
    object: String,
    tag: u32,
}

/// A tagged completion: `OK`, `NO` or `BAD` and the rest of the line.
#[derive(Debug)]
struct Done {
    status: String,
    text: String,
}

impl Session {
    /// Connects, secures the connection and logs in. With `insecure`,
    /// an `imap://` server that does not offer STARTTLS is used in
    /// cleartext (tests only); otherwise that is a TLS error (exit 76).
    pub fn connect(
        url: &ImapUrl,
        tls_config: &Arc<rustls::ClientConfig>,
        auth: &Auth,
        timeout: Duration,
        insecure: bool,
    ) -> Result<Session> {
        let object = url.display();
        let tcp = tls::connect_tcp(&url.host, url.port, timeout, &object)?;
        let wire = if url.implicit_tls {
            Wire::Tls(Box::new(tls::handshake(
                tcp, &url.host, tls_config, &object,
            )?))
        } else {
            Wire::Plain(tcp)
        };
        let mut session = Session {
            wire: BufReader::new(wire),
            object,
            tag: 0,
        };
        let greeting = session.line()?;
        if greeting.starts_with("* BYE") {
            return Err(Error::new(
                ErrorKind::Temporary,
                &session.object,
                format!("server refused: {greeting}"),
            ));
        }
        if !greeting.starts_with("* OK") && !greeting.starts_with("* PREAUTH") {
            return Err(Error::new(
                ErrorKind::Protocol,
                &session.object,
                format!("bad greeting {greeting:?}"),
            ));
        }
        let offers_starttls = if greeting.to_ascii_uppercase().contains("[CAPABILITY ") {
            greeting.to_ascii_uppercase().contains(" STARTTLS")
        } else {
            let (done, untagged) = session.command_collecting("CAPABILITY")?;
            done.status == "OK" && untagged.to_ascii_uppercase().contains(" STARTTLS")
        };
        if !url.implicit_tls && !offers_starttls && !insecure {
            return Err(Error::new(
                ErrorKind::Tls,
                &session.object,
                "server does not offer STARTTLS",
            ));
        }
        if !url.implicit_tls && offers_starttls {
            let done = session.command("STARTTLS", &[])?;
            if done.status != "OK" {
                return Err(Error::new(
                    ErrorKind::Tls,
                    &session.object,
                    format!("STARTTLS refused ({} {})", done.status, done.text),
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
                .start_tls(&url.host, tls_config, &object)?;
        }
        let done = match auth {
            Auth::Password { user, password } => session.command(
                &format!("LOGIN {} {}", quote(user), quote(password.expose())),
                &[],
            )?,
            Auth::OAuth2 { user, token } => {
                let blob = format!("user={user}\x01auth=Bearer {}\x01\x01", token.expose());
                session.command(
                    &format!("AUTHENTICATE XOAUTH2 {}", base64_encode(blob.as_bytes())),
                    &[],
                )?
            }
        };
        if done.status != "OK" {
            return Err(Error::new(
                ErrorKind::Auth,
                &session.object,
                format!("authentication failed ({} {})", done.status, done.text),
            ));
        }
        Ok(session)
    }

    /// Appends `message` to `folder` with the `\Seen` flag, creating the
    /// folder when the server answers `[TRYCREATE]`.
    pub fn append(&mut self, folder: &str, message: &[u8]) -> Result<()> {
        let mailbox = quote(&encode_mailbox_name(folder));
        let mut done = self.append_once(&mailbox, message)?;
        if done.status == "NO" && done.text.to_ascii_uppercase().starts_with("[TRYCREATE]") {
            let created = self.command(&format!("CREATE {mailbox}"), &[])?;
            if created.status != "OK" {
                return Err(self.refusal("CREATE", folder, &created));
            }
            done = self.append_once(&mailbox, message)?;
        }
        if done.status != "OK" {
            return Err(self.refusal("APPEND", folder, &done));
        }
        Ok(())
    }

    fn append_once(&mut self, mailbox: &str, message: &[u8]) -> Result<Done> {
        let data = crate::compose::to_crlf(message);
        self.command(
            &format!("APPEND {mailbox} (\\Seen) {{{}}}", data.len()),
            &data,
        )
    }

    fn refusal(&self, what: &str, folder: &str, done: &Done) -> Error {
        let upper = done.text.to_ascii_uppercase();
        let kind = if done.status == "BAD" {
            ErrorKind::Protocol
        } else if upper.starts_with("[OVERQUOTA]")
            || upper.starts_with("[INUSE]")
            || upper.starts_with("[UNAVAILABLE]")
        {
            ErrorKind::Temporary
        } else {
            ErrorKind::Refused
        };
        Error::new(
            kind,
            &self.object,
            format!(
                "{what} to {folder:?} refused ({} {})",
                done.status, done.text
            ),
        )
    }

    /// Says LOGOUT (errors ignored: the work is done).
    pub fn logout(mut self) {
        let _ = self.command("LOGOUT", &[]);
    }

    /// Sends a tagged command without a literal and returns its
    /// completion with the untagged lines that came before it.
    fn command_collecting(&mut self, command: &str) -> Result<(Done, String)> {
        self.tag += 1;
        let tag = format!("m{}", self.tag);
        self.write(format!("{tag} {command}\r\n").as_bytes())?;
        let mut untagged = String::new();
        loop {
            let line = self.line()?;
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                let (status, text) = rest.split_once(' ').unwrap_or((rest, ""));
                let done = Done {
                    status: status.to_ascii_uppercase(),
                    text: text.to_string(),
                };
                return Ok((done, untagged));
            }
            untagged.push_str(&line);
            untagged.push('\n');
        }
    }

    /// Sends a tagged command; `literal` (when not empty) goes after the
    /// server's continuation request. Returns the tagged completion.
    fn command(&mut self, command: &str, literal: &[u8]) -> Result<Done> {
        self.tag += 1;
        let tag = format!("m{}", self.tag);
        self.write(format!("{tag} {command}\r\n").as_bytes())?;
        let mut literal_sent = literal.is_empty();
        loop {
            let line = self.line()?;
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                let (status, text) = rest.split_once(' ').unwrap_or((rest, ""));
                return Ok(Done {
                    status: status.to_ascii_uppercase(),
                    text: text.to_string(),
                });
            }
            if line.starts_with('+') && !literal_sent {
                self.write(literal)?;
                self.write(b"\r\n")?;
                literal_sent = true;
            } else if line.starts_with('+') {
                // A challenge we have no answer to (XOAUTH2 sends its
                // error details this way): an empty line ends the
                // exchange and brings the tagged NO.
                self.write(b"\r\n")?;
            } else if line.starts_with("* BYE") && !command.starts_with("LOGOUT") {
                return Err(Error::new(
                    ErrorKind::Temporary,
                    &self.object,
                    format!("server closed the session ({line})"),
                ));
            }
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let w = self.wire.get_mut();
        w.write_all(bytes).and_then(|()| w.flush()).map_err(|e| {
            Error::new(ErrorKind::Temporary, &self.object, "connection lost").with_source(e)
        })
    }

    fn line(&mut self) -> Result<String> {
        let mut buf = Vec::new();
        match self
            .wire
            .by_ref()
            .take(64 * 1024)
            .read_until(b'\n', &mut buf)
        {
            Ok(0) => Err(Error::new(
                ErrorKind::Temporary,
                &self.object,
                "connection closed by the server",
            )),
            Ok(_) => Ok(String::from_utf8_lossy(&buf)
                .trim_end_matches(['\r', '\n'])
                .to_string()),
            Err(e) => {
                let kind = if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
                    ErrorKind::Tls
                } else {
                    ErrorKind::Temporary
                };
                Err(Error::new(kind, &self.object, "connection lost").with_source(e))
            }
        }
    }
}

/// An IMAP quoted string (RFC 3501), or a literal-free equivalent: only
/// `"` and `\` need escaping; line breaks cannot occur in our inputs.
fn quote(text: &str) -> String {
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
        ];
        for (name, want) in cases {
            assert_eq!(encode_mailbox_name(name), want, "{name}");
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
        for bad in ["h", "http://h", "imaps://a:pw@h", "imap://h:x"] {
            assert_eq!(ImapUrl::parse(bad).unwrap_err().exit().code(), 64, "{bad}");
        }
    }

    #[test]
    fn quoting_escapes_quotes_and_backslashes() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
