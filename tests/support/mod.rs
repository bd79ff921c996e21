//! Shared helpers for the integration tests: the mail-server rig's
//! settings from `scripts/mailserver env`, and a deliberately tiny SMTP and
//! IMAP client over rustls that checks the rig independently of mailbot's
//! own protocol code.
//!
//! Not a general client: it speaks just enough of each protocol for a test
//! to send one message and read messages back byte for byte.

#![allow(dead_code)]

pub mod own_rig;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// The rig's settings, read from the `MAILBOT_TEST_*` variables that
/// `scripts/mailserver env` prints.
#[derive(Debug, Clone)]
pub struct Rig {
    pub host: String,
    pub domain: String,
    pub smtp_port: u16,
    pub submission_port: u16,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub ca: PathBuf,
    pub users: [(String, String); 2],
    pub maildirs: [PathBuf; 2],
}

impl Rig {
    /// The rig from the environment. Without it the calling test is
    /// skipped, unless `MAILBOT_REQUIRE_RIG` is set (as `scripts/test`
    /// does), in which case a missing rig fails the test.
    pub fn from_env() -> Option<Rig> {
        let var = |n: &str| std::env::var(n).ok();
        if var("MAILBOT_TEST_HOST").is_none() {
            if var("MAILBOT_REQUIRE_RIG").is_some() {
                panic!(
                    "MAILBOT_REQUIRE_RIG is set but MAILBOT_TEST_HOST is not: start scripts/mailserver"
                );
            }
            eprintln!("skipped: no mail-server rig (scripts/test starts one)");
            return None;
        }
        Some(Rig::from_vars(var))
    }

    /// The rig described by `MAILBOT_TEST_*` values from `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Rig {
        let need = |n: &str| var(n).unwrap_or_else(|| panic!("{n} not set"));
        let port = |n: &str| {
            need(n)
                .parse::<u16>()
                .unwrap_or_else(|_| panic!("{n} is not a port"))
        };
        Rig {
            host: need("MAILBOT_TEST_HOST"),
            domain: need("MAILBOT_TEST_DOMAIN"),
            smtp_port: port("MAILBOT_TEST_SMTP_PORT"),
            submission_port: port("MAILBOT_TEST_SUBMISSION_PORT"),
            imap_port: port("MAILBOT_TEST_IMAP_PORT"),
            imaps_port: port("MAILBOT_TEST_IMAPS_PORT"),
            ca: PathBuf::from(need("MAILBOT_TEST_CA")),
            users: [
                (need("MAILBOT_TEST_USER1"), need("MAILBOT_TEST_PASS1")),
                (need("MAILBOT_TEST_USER2"), need("MAILBOT_TEST_PASS2")),
            ],
            maildirs: [
                PathBuf::from(need("MAILBOT_TEST_MAILDIR1")),
                PathBuf::from(need("MAILBOT_TEST_MAILDIR2")),
            ],
        }
    }

    /// `user@domain` for user 0 or 1.
    pub fn address(&self, which: usize) -> String {
        format!("{}@{}", self.users[which].0, self.domain)
    }

    /// A TLS client configuration that trusts only the rig's CA.
    pub fn tls_trusting_rig(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca).expect("read CA") {
            roots.add(cert.expect("parse CA")).expect("add CA");
        }
        tls_config(roots)
    }
}

/// A TLS client configuration with no trusted roots at all: any server
/// certificate fails verification, as for a client that does not know the
/// rig's CA.
pub fn tls_trusting_nobody() -> Arc<rustls::ClientConfig> {
    tls_config(rustls::RootCertStore::empty())
}

fn tls_config(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A line-oriented connection that starts in plain text and can switch to
/// TLS (STARTTLS) or start in TLS.
pub enum Conn {
    Plain(BufReader<TcpStream>),
    Tls(Box<BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>>),
}

impl Conn {
    pub fn plain(host: &str, port: u16) -> io::Result<Conn> {
        let tcp = TcpStream::connect((host, port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
        Ok(Conn::Plain(BufReader::new(tcp)))
    }

    pub fn tls(host: &str, port: u16, tls: Arc<rustls::ClientConfig>) -> io::Result<Conn> {
        Conn::plain(host, port)?.start_tls(host, tls)
    }

    /// Upgrades to TLS and completes the handshake, so a verification
    /// failure shows here rather than at the next read.
    pub fn start_tls(self, host: &str, tls: Arc<rustls::ClientConfig>) -> io::Result<Conn> {
        let Conn::Plain(reader) = self else {
            return Err(io::Error::other("already TLS"));
        };
        let tcp = reader.into_inner();
        let name = ServerName::try_from(host.to_string()).map_err(io::Error::other)?;
        let conn = rustls::ClientConnection::new(tls, name).map_err(io::Error::other)?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(Conn::Tls(Box::new(BufReader::new(stream))))
    }

    pub fn line(&mut self) -> io::Result<String> {
        let mut buf = Vec::new();
        let n = match self {
            Conn::Plain(r) => r.read_until(b'\n', &mut buf)?,
            Conn::Tls(r) => r.read_until(b'\n', &mut buf)?,
        };
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    pub fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        match self {
            Conn::Plain(r) => r.read_exact(buf),
            Conn::Tls(r) => r.read_exact(buf),
        }
    }

    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Conn::Plain(r) => {
                r.get_mut().write_all(data)?;
                r.get_mut().flush()
            }
            Conn::Tls(r) => {
                r.get_mut().write_all(data)?;
                r.get_mut().flush()
            }
        }
    }
}

/// Reads one SMTP reply (all its lines) and returns the code and the text.
pub fn smtp_reply(c: &mut Conn) -> io::Result<(u16, String)> {
    let mut text = String::new();
    loop {
        let line = c.line()?;
        text.push_str(&line);
        let code = line
            .get(..3)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad SMTP reply line {line:?}")))?;
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, text));
        }
    }
}

fn smtp_expect(c: &mut Conn, cmd: &str, want: u16) -> io::Result<String> {
    if !cmd.is_empty() {
        c.send(format!("{cmd}\r\n").as_bytes())?;
    }
    let (code, text) = smtp_reply(c)?;
    if code != want {
        return Err(io::Error::other(format!("{cmd:?}: got {text:?}")));
    }
    Ok(text)
}

/// The base64 of `data` (for AUTH PLAIN).
pub fn base64(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What happened to a submission attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Submitted {
    Accepted,
    AuthRefused(u16),
}

/// Sends `message` over the rig's submission port: EHLO, STARTTLS, EHLO,
/// AUTH PLAIN, MAIL, RCPT, DATA. Returns `AuthRefused` with the reply code
/// when the credentials are refused.
pub fn submit(
    rig: &Rig,
    tls: Arc<rustls::ClientConfig>,
    user: &str,
    password: &str,
    from: &str,
    to: &str,
    message: &[u8],
) -> io::Result<Submitted> {
    let mut c = Conn::plain(&rig.host, rig.submission_port)?;
    smtp_expect(&mut c, "", 220)?;
    smtp_expect(&mut c, "EHLO test.invalid", 250)?;
    smtp_expect(&mut c, "STARTTLS", 220)?;
    let mut c = c.start_tls("localhost", tls)?;
    let ehlo = smtp_expect(&mut c, "EHLO test.invalid", 250)?;
    if !ehlo.contains("AUTH") {
        return Err(io::Error::other(format!("no AUTH after STARTTLS: {ehlo}")));
    }
    let token = base64(format!("\0{user}\0{password}").as_bytes());
    c.send(format!("AUTH PLAIN {token}\r\n").as_bytes())?;
    let (code, _) = smtp_reply(&mut c)?;
    if code != 235 {
        return Ok(Submitted::AuthRefused(code));
    }
    smtp_expect(&mut c, &format!("MAIL FROM:<{from}>"), 250)?;
    smtp_expect(&mut c, &format!("RCPT TO:<{to}>"), 250)?;
    smtp_expect(&mut c, "DATA", 354)?;
    let mut data = Vec::new();
    for line in message.split_inclusive(|b| *b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        if body.first() == Some(&b'.') {
            data.push(b'.');
        }
        data.extend_from_slice(body);
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(b".\r\n");
    c.send(&data)?;
    smtp_expect(&mut c, "", 250)?;
    smtp_expect(&mut c, "QUIT", 221)?;
    Ok(Submitted::Accepted)
}

/// An IMAP session for tests: tagged commands, literals collected.
pub struct Imap {
    conn: Conn,
    tag: u32,
}

impl Imap {
    /// Connects with implicit TLS to the IMAPS port and reads the greeting.
    pub fn connect_tls(rig: &Rig, tls: Arc<rustls::ClientConfig>) -> io::Result<Imap> {
        let mut conn = Conn::plain(&rig.host, rig.imaps_port)?.start_tls("localhost", tls)?;
        let greeting = conn.line()?;
        if !greeting.starts_with("* OK") {
            return Err(io::Error::other(format!("greeting {greeting:?}")));
        }
        Ok(Imap { conn, tag: 0 })
    }

    /// Connects to the plain IMAP port and upgrades with STARTTLS.
    pub fn connect_starttls(rig: &Rig, tls: Arc<rustls::ClientConfig>) -> io::Result<Imap> {
        let mut conn = Conn::plain(&rig.host, rig.imap_port)?;
        let greeting = conn.line()?;
        if !greeting.starts_with("* OK") {
            return Err(io::Error::other(format!("greeting {greeting:?}")));
        }
        let mut plain = Imap { conn, tag: 0 };
        plain.command("STARTTLS")?;
        let conn = plain.conn.start_tls("localhost", tls)?;
        Ok(Imap {
            conn,
            tag: plain.tag,
        })
    }

    /// Sends a command and collects the untagged lines and literals up to
    /// its tagged reply. Returns (tagged status line, untagged text,
    /// literals in order).
    pub fn command(&mut self, cmd: &str) -> io::Result<(String, String, Vec<Vec<u8>>)> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.conn.send(format!("{tag} {cmd}\r\n").as_bytes())?;
        let mut untagged = String::new();
        let mut literals = Vec::new();
        loop {
            let line = self.conn.line()?;
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                return Ok((rest.trim_end().to_string(), untagged, literals));
            }
            untagged.push_str(&line);
            if let Some(n) = literal_length(&line) {
                let mut buf = vec![0; n];
                self.conn.read_exact(&mut buf)?;
                literals.push(buf);
            }
        }
    }

    /// LOGIN; returns whether the server said OK.
    pub fn login(&mut self, user: &str, password: &str) -> io::Result<bool> {
        let (status, _, _) = self.command(&format!("LOGIN \"{user}\" \"{password}\""))?;
        Ok(status.starts_with("OK"))
    }

    /// Every message of `mailbox` as the server holds it (`BODY.PEEK[]`).
    pub fn fetch_all(&mut self, mailbox: &str) -> io::Result<Vec<Vec<u8>>> {
        let (status, _, _) = self.command(&format!("SELECT \"{mailbox}\""))?;
        if !status.starts_with("OK") {
            return Err(io::Error::other(format!("SELECT: {status}")));
        }
        let (status, _, literals) = self.command("UID FETCH 1:* (BODY.PEEK[])")?;
        if !status.starts_with("OK") {
            return Err(io::Error::other(format!("FETCH: {status}")));
        }
        Ok(literals)
    }
}

fn literal_length(line: &str) -> Option<usize> {
    let body = line.trim_end().strip_suffix('}')?;
    let open = body.rfind('{')?;
    body[open + 1..].parse().ok()
}

/// A finished command's status and output, for assertion messages.
pub fn describe(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A small xorshift generator; the seed is printed so a failure can be
/// replayed with MAILBOT_TEST_SEED.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Rng {
        let seed = std::env::var("MAILBOT_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("seed {seed} (MAILBOT_TEST_SEED={seed} replays it)");
        Rng(seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Polls `check` every 100 ms until it returns `Some` or `secs` pass.
pub fn wait_for<T>(secs: u64, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, want) in cases {
            assert_eq!(super::base64(input.as_bytes()), want);
        }
    }
}
