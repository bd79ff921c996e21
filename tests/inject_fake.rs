//! mail-inject against a scripted fake SMTP server, only for what
//! Postfix will not do on demand: a 421 in mid-session, a connection
//! dropped after the data, a content refusal after the data, no STARTTLS,
//! a server that closes the session between messages.

mod inject_common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use inject_common::{code, describe, inject, run};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// 421 to MAIL FROM, then close.
    ShutdownAtMail,
    /// Read the whole data, then close without a reply.
    DropAfterData,
    /// Refuse the content after the data.
    RejectContent,
    /// Accept; after this many messages close the session silently.
    CloseAfter(usize),
    /// Accept everything.
    None,
    /// Offer only AUTH LOGIN (user "a", password "pw").
    LoginOnly,
}

struct Fake {
    port: u16,
    connections: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Every AUTH command line the server was sent.
    auths: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    /// `faults[i]` is the behaviour of the i-th connection (the last one
    /// repeats).
    fn start(faults: Vec<Fault>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let auths = Arc::new(Mutex::new(Vec::new()));
        let (c, r, a) = (connections.clone(), received.clone(), auths.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let n = c.fetch_add(1, Ordering::SeqCst);
                let fault = *faults.get(n).or(faults.last()).unwrap();
                let _ = serve(stream, fault, &r, &a);
            }
        });
        Fake {
            port,
            connections,
            received,
            auths,
        }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?starttls=opportunistic", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn received(&self) -> Vec<Vec<u8>> {
        self.received.lock().unwrap().clone()
    }

    fn auths(&self) -> Vec<String> {
        self.auths.lock().unwrap().clone()
    }
}

fn serve(
    stream: TcpStream,
    fault: Fault,
    received: &Mutex<Vec<Vec<u8>>>,
    auths: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    out.write_all(b"220 fake.test ESMTP\r\n")?;
    let mut sent = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        if verb == "AUTH" {
            auths.lock().unwrap().push(line.trim_end().to_string());
        }
        match verb.as_str() {
            "EHLO" if fault == Fault::LoginOnly => {
                out.write_all(b"250-fake.test\r\n250 AUTH LOGIN\r\n")?
            }
            "EHLO" => out.write_all(
                b"250-fake.test\r\n250-PIPELINING\r\n250-AUTH PLAIN XOAUTH2\r\n250 8BITMIME\r\n",
            )?,
            "AUTH" if fault == Fault::LoginOnly => {
                let mut answers = Vec::new();
                for prompt in [&b"334 VXNlcm5hbWU6\r\n"[..], b"334 UGFzc3dvcmQ6\r\n"] {
                    out.write_all(prompt)?;
                    let mut answer = String::new();
                    reader.read_line(&mut answer)?;
                    answers.push(answer.trim_end().to_string());
                }
                if line.trim_end() == "AUTH LOGIN"
                    && answers == [inject_common::base64("a"), inject_common::base64("pw")]
                {
                    out.write_all(b"235 2.7.0 Authentication successful\r\n")?
                } else {
                    out.write_all(b"535 5.7.8 Error: authentication failed\r\n")?
                }
            }
            "AUTH" => {
                // XOAUTH2 with the token "good" is accepted, anything else refused.
                let want = inject_common::base64("user=a@fake.test\x01auth=Bearer good\x01\x01");
                if line.trim_end() == format!("AUTH XOAUTH2 {want}") {
                    out.write_all(b"235 2.7.0 Authentication successful\r\n")?
                } else {
                    out.write_all(b"334 eyJzdGF0dXMiOiI0MDEifQ==\r\n")?;
                    let mut empty = String::new();
                    reader.read_line(&mut empty)?;
                    out.write_all(b"535 5.7.8 Username and Password not accepted\r\n")?
                }
            }
            "MAIL" => {
                if fault == Fault::ShutdownAtMail {
                    out.write_all(b"421 4.3.2 Service shutting down, closing channel\r\n")?;
                    return Ok(());
                }
                out.write_all(b"250 2.1.0 Ok\r\n")?
            }
            "RCPT" => out.write_all(b"250 2.1.5 Ok\r\n")?,
            "RSET" => out.write_all(b"250 2.0.0 Ok\r\n")?,
            "QUIT" => {
                out.write_all(b"221 2.0.0 Bye\r\n")?;
                return Ok(());
            }
            "DATA" => {
                out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
                let mut data = Vec::new();
                loop {
                    let mut l = Vec::new();
                    if reader.read_until(b'\n', &mut l)? == 0 {
                        return Ok(());
                    }
                    if l == b".\r\n" {
                        break;
                    }
                    let l = l.strip_prefix(b".").map(<[u8]>::to_vec).unwrap_or(l);
                    data.extend_from_slice(&l);
                }
                match fault {
                    Fault::DropAfterData => return Ok(()),
                    Fault::RejectContent => {
                        out.write_all(b"554 5.6.0 Message content rejected\r\n")?;
                        continue;
                    }
                    _ => {}
                }
                received.lock().unwrap().push(data);
                out.write_all(b"250 2.0.0 Ok: queued\r\n")?;
                sent += 1;
                if fault == Fault::CloseAfter(sent) {
                    return Ok(());
                }
            }
            _ => out.write_all(b"502 5.5.2 Error: command not recognized\r\n")?,
        }
    }
}

fn send(fake: &Fake, home: &Path, extra: &[&str]) -> Command {
    send_to(&fake.url(), home, extra)
}

fn send_to(url: &str, home: &Path, extra: &[&str]) -> Command {
    let mut cmd = inject(home);
    cmd.args(["--smtp", url, "--retry-wait", "0", "-r", "a@fake.test"])
        .args(["-s", "fault", "--date", "@0", "--message-id", "f@fake.test"])
        .args(extra)
        .arg("b@fake.test");
    cmd
}

#[test]
fn shutdown_421_mid_session_is_retried_then_75() {
    let fake = Fake::start(vec![Fault::ShutdownAtMail]);
    let home = tempfile::tempdir().unwrap();
    let out = run(&mut send(&fake, home.path(), &["--retries", "1"]), b"x\n");
    assert_eq!(code(&out), 75, "{}", describe(&out));
    assert_eq!(fake.connections(), 2, "one try and one retry");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("(421 4.3.2 Service shutting down"), "{err}");
}

#[test]
fn retry_after_a_421_can_succeed() {
    let fake = Fake::start(vec![Fault::ShutdownAtMail, Fault::None]);
    let home = tempfile::tempdir().unwrap();
    let out = run(&mut send(&fake, home.path(), &[]), b"x\n");
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(fake.received().len(), 1);
}

#[test]
fn connection_dropped_after_data_is_retried_then_75_and_queued() {
    let fake = Fake::start(vec![Fault::DropAfterData]);
    let home = tempfile::tempdir().unwrap();
    let queue = home.path().join("outbox");
    let q = queue.to_str().unwrap();
    let mut cmd = send(&fake, home.path(), &["--retries", "2", "--queue", q]);
    let out = run(&mut cmd, b".dot\nbody\n");
    assert_eq!(code(&out), 75, "{}", describe(&out));
    assert_eq!(fake.connections(), 3, "one try and two retries");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("connection closed after the data"), "{err}");
    assert!(err.contains("queued as"), "{err}");
    let queued: Vec<_> = std::fs::read_dir(queue.join("new"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(queued.len(), 1);
    // The queued file is exactly the message that was composed.
    let out = run(&mut send(&fake, home.path(), &["-o", "-"]), b".dot\nbody\n");
    assert_eq!(std::fs::read(queued[0].path()).unwrap(), out.stdout);
    assert_eq!(
        std::fs::read_dir(queue.join("envelopes")).unwrap().count(),
        1
    );
}

#[test]
fn content_refused_after_data_is_65() {
    let fake = Fake::start(vec![Fault::RejectContent]);
    let home = tempfile::tempdir().unwrap();
    let out = run(&mut send(&fake, home.path(), &[]), b"x\n");
    assert_eq!(code(&out), 65, "{}", describe(&out));
    assert_eq!(fake.connections(), 1, "a permanent refusal is not retried");
    assert!(String::from_utf8_lossy(&out.stderr).contains("message refused (554 5.6.0"));
}

#[test]
fn missing_starttls_is_76_unless_opportunistic() {
    let fake = Fake::start(vec![Fault::None]);
    let home = tempfile::tempdir().unwrap();
    let mut cmd = inject(home.path());
    cmd.args(["--smtp", &format!("smtp://127.0.0.1:{}", fake.port)])
        .args(["-r", "a@fake.test", "b@fake.test"]);
    let out = run(&mut cmd, b"x\n");
    assert_eq!(code(&out), 76, "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not offer STARTTLS"));
    let out = run(&mut send(&fake, home.path(), &[]), b"x\n");
    assert_eq!(code(&out), 0, "{}", describe(&out));
    // And no password is ever sent in cleartext.
    let mut cmd = send(&fake, home.path(), &["--user", "a"]);
    cmd.env("MAILBOT_PASSWORD", "secret");
    let out = run(&mut cmd, b"x\n");
    assert_eq!(code(&out), 76, "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without TLS"));
    assert_eq!(fake.auths(), Vec::<String>::new());
}

/// A STARTTLS-stripping attacker in between looks like a server that does
/// not offer STARTTLS. `--insecure` only stops certificate checks: the
/// password must not go out in cleartext because of it, whatever the URL.
#[test]
fn insecure_never_sends_credentials_in_cleartext() {
    let fake = Fake::start(vec![Fault::None]);
    let home = tempfile::tempdir().unwrap();
    let required = format!("smtp://127.0.0.1:{}", fake.port);
    for url in [&required, &fake.url()] {
        let mut cmd = send_to(url, home.path(), &["--insecure", "--user", "a"]);
        cmd.env("MAILBOT_PASSWORD", "secret");
        let out = run(&mut cmd, b"x\n");
        assert_eq!(code(&out), 76, "{url}: {}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("secret"), "{err}");
    }
    assert_eq!(fake.auths(), Vec::<String>::new(), "AUTH went out in clear");
    assert_eq!(fake.received().len(), 0);
    // Cleartext AUTH takes both a URL without STARTTLS and its own flag.
    let none = format!("smtp://127.0.0.1:{}?starttls=none", fake.port);
    let mut cmd = send_to(&none, home.path(), &["--user", "a"]);
    cmd.env("MAILBOT_PASSWORD", "secret");
    let out = run(&mut cmd, b"x\n");
    assert_eq!(code(&out), 76, "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-plaintext-auth"));
    assert_eq!(fake.auths().len(), 0);
    let mut cmd = send_to(
        &none,
        home.path(),
        &["--user", "a@fake.test", "--allow-plaintext-auth"],
    );
    cmd.args(["--oauth2-token-command", "echo good"]);
    let out = run(&mut cmd, b"x\n");
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(fake.auths().len(), 1);
    assert_eq!(fake.received().len(), 1);
}

#[test]
fn batch_reconnects_when_the_server_closes_the_session() {
    let fake = Fake::start(vec![Fault::CloseAfter(2)]);
    let home = tempfile::tempdir().unwrap();
    let batch = home.path().join("b.jsonl");
    let lines: Vec<String> = (0..5)
        .map(|i| format!(r#"{{"to":"b@fake.test","subject":"n{i}","body":"{i}"}}"#))
        .collect();
    std::fs::write(&batch, lines.join("\n")).unwrap();
    let mut cmd = inject(home.path());
    cmd.args([
        "--smtp",
        &fake.url(),
        "--retries",
        "0",
        "-r",
        "a@fake.test",
        "--batch",
    ])
    .arg(&batch);
    let out = run(&mut cmd, b"");
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(fake.received().len(), 5, "each message exactly once");
    assert_eq!(fake.connections(), 3);
}

#[test]
fn flush_removes_only_what_the_server_accepted() {
    let home = tempfile::tempdir().unwrap();
    let queue = home.path().join("outbox");
    // Queue two messages while "the server" refuses connections.
    let down = Fake::start(vec![Fault::ShutdownAtMail]);
    for n in ["one", "two"] {
        let q = queue.to_str().unwrap();
        let mut cmd = send(
            &down,
            home.path(),
            &["--retries", "0", "--queue", q, "--body-text", n],
        );
        assert_eq!(code(&run(&mut cmd, b"")), 75);
    }
    // The first is accepted, then the server shuts down.
    let flaky = Fake::start(vec![Fault::CloseAfter(1), Fault::ShutdownAtMail]);
    let mut cmd = inject(home.path());
    cmd.args([
        "--flush",
        "--retries",
        "0",
        "--retry-wait",
        "0",
        "--smtp",
        &flaky.url(),
        "--queue",
    ])
    .arg(&queue);
    let out = run(&mut cmd, b"");
    assert_eq!(code(&out), 75, "{}", describe(&out));
    assert_eq!(flaky.received().len(), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 sent, 1 still queued"));
    assert_eq!(std::fs::read_dir(queue.join("new")).unwrap().count(), 1);
    // Back for good: the rest goes, the queue is empty, a second flush is a no-op.
    let up = Fake::start(vec![Fault::None]);
    let mut cmd = inject(home.path());
    cmd.args(["--flush", "--smtp", &up.url(), "--queue"])
        .arg(&queue);
    let out = run(&mut cmd, b"");
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        out.stderr.is_empty() && out.stdout.is_empty(),
        "{}",
        describe(&out)
    );
    let out = run(&mut cmd, b"");
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert_eq!(up.received().len(), 1);
    let all: Vec<String> = flaky
        .received()
        .iter()
        .chain(&up.received())
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect();
    assert!(
        all[0].ends_with("\r\n\r\none\r\n") && all[1].ends_with("\r\n\r\ntwo\r\n"),
        "{all:?}"
    );
    assert_eq!(
        std::fs::read_dir(queue.join("envelopes")).unwrap().count(),
        0
    );
}

#[test]
fn xoauth2_token_from_a_command() {
    let fake = Fake::start(vec![Fault::None]);
    let home = tempfile::tempdir().unwrap();
    for (token, want) in [("good", 0), ("expired", 77)] {
        let mut cmd = send(
            &fake,
            home.path(),
            &["--allow-plaintext-auth", "--user", "a@fake.test"],
        );
        cmd.args(["--oauth2-token-command", &format!("echo {token}")]);
        let out = run(&mut cmd, b"x\n");
        assert_eq!(code(&out), want, "{token}: {}", describe(&out));
    }
    assert_eq!(fake.received().len(), 1);
}

#[test]
fn the_accounts_smtp_and_address_are_the_default_target_and_sender() {
    let fake = Fake::start(vec![Fault::None]);
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config/mailbot/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        format!(
            "[account.test]\naddress = \"Me <me@fake.test>\"\nsmtp = \"{}\"\n",
            fake.url()
        ),
    )
    .unwrap();
    let mut cmd = inject(home.path());
    cmd.args(["-s", "from the config", "b@fake.test"]);
    let out = run(&mut cmd, b"x\n");
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let received = fake.received();
    assert_eq!(received.len(), 1);
    assert!(String::from_utf8_lossy(&received[0]).contains("From: Me <me@fake.test>\r\n"));
}

#[test]
fn auth_login_when_plain_is_not_offered() {
    let fake = Fake::start(vec![Fault::LoginOnly]);
    let home = tempfile::tempdir().unwrap();
    for (password, want) in [("pw", 0), ("nope", 77)] {
        let mut cmd = send(
            &fake,
            home.path(),
            &["--allow-plaintext-auth", "--user", "a"],
        );
        cmd.env("MAILBOT_PASSWORD", password);
        let out = run(&mut cmd, b"x\n");
        assert_eq!(code(&out), want, "{password}: {}", describe(&out));
    }
    assert_eq!(fake.received().len(), 1);
}

/// A scripted IMAP server without STARTTLS that accepts AUTHENTICATE
/// XOAUTH2 with the token "good" and records every APPEND, and every
/// LOGIN or AUTHENTICATE it is sent.
struct FakeImap {
    port: u16,
    appended: Arc<Mutex<Vec<Vec<u8>>>>,
    logins: Arc<Mutex<Vec<String>>>,
}

fn fake_imap() -> FakeImap {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let appended = Arc::new(Mutex::new(Vec::new()));
    let logins = Arc::new(Mutex::new(Vec::new()));
    let store = appended.clone();
    let seen = logins.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut out = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            let _ = (|| -> std::io::Result<()> {
                out.write_all(b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] fake\r\n")?;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    let (tag, rest) = line.trim_end().split_once(' ').unwrap();
                    let verb = rest.split(' ').next().unwrap_or("").to_ascii_uppercase();
                    if verb == "LOGIN" || verb == "AUTHENTICATE" {
                        seen.lock().unwrap().push(rest.to_string());
                    }
                    let good =
                        inject_common::base64("user=a@fake.test\x01auth=Bearer good\x01\x01");
                    if rest == format!("AUTHENTICATE XOAUTH2 {good}") {
                        out.write_all(format!("{tag} OK authenticated\r\n").as_bytes())?;
                    } else if rest.starts_with("AUTHENTICATE XOAUTH2") {
                        out.write_all(b"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n")?;
                        let mut empty = String::new();
                        reader.read_line(&mut empty)?;
                        out.write_all(
                            format!("{tag} NO [AUTHENTICATIONFAILED] invalid token\r\n").as_bytes(),
                        )?;
                    } else if let Some(size) = rest.strip_prefix("APPEND \"Sent\" (\\Seen) {") {
                        let n: usize = size.trim_end_matches('}').parse().unwrap();
                        out.write_all(b"+ go ahead\r\n")?;
                        let mut data = vec![0; n + 2];
                        std::io::Read::read_exact(&mut reader, &mut data)?;
                        data.truncate(n);
                        store.lock().unwrap().push(data);
                        out.write_all(format!("{tag} OK APPEND completed\r\n").as_bytes())?;
                    } else if rest == "LOGOUT" {
                        out.write_all(format!("* BYE\r\n{tag} OK bye\r\n").as_bytes())?;
                        return Ok(());
                    } else {
                        out.write_all(format!("{tag} BAD unexpected\r\n").as_bytes())?;
                    }
                }
            })();
        }
    });
    FakeImap {
        port,
        appended,
        logins,
    }
}

#[test]
fn imap_xoauth2_appends_or_is_refused_with_77() {
    let fake = fake_imap();
    let home = tempfile::tempdir().unwrap();
    let plain = format!("imap://a%40fake.test@127.0.0.1:{}?starttls=none", fake.port);
    for (token, want) in [("good", 0), ("expired", 77)] {
        let mut cmd = inject(home.path());
        cmd.args(["--imap", &plain])
            .args(["--oauth2-token-command", &format!("echo {token}")])
            .args([
                "--allow-plaintext-auth",
                "--timeout",
                "5",
                "-r",
                "a@fake.test",
                "-s",
                "x",
            ]);
        let out = run(&mut cmd, b"x\n");
        assert_eq!(code(&out), want, "{token}: {}", describe(&out));
    }
    assert_eq!(fake.appended.lock().unwrap().len(), 1);
}

/// The same for IMAP: an imap:// server without STARTTLS is refused, with
/// or without --insecure, by mail-inject and mail-sync, before any login;
/// `?starttls=none` alone does not send the token either.
#[test]
fn imap_without_starttls_gets_no_login() {
    let fake = fake_imap();
    let home = tempfile::tempdir().unwrap();
    let required = format!("imap://a%40fake.test@127.0.0.1:{}", fake.port);
    let plain = format!("{required}?starttls=none");
    for (url, insecure, what) in [
        (&required, false, "does not offer STARTTLS"),
        (&required, true, "does not offer STARTTLS"),
        (&plain, true, "--allow-plaintext-auth"),
    ] {
        let mut inject_cmd = inject(home.path());
        inject_cmd
            .args(["--imap", url, "-r", "a@fake.test", "-s", "x"])
            .args(["--oauth2-token-command", "echo good"]);
        let mut sync_cmd = Command::new(env!("CARGO_BIN_EXE_mail-sync"));
        sync_cmd
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env_remove("MAILBOT_PASSWORD")
            .args([url.as_str(), "--maildir"])
            .arg(home.path().join("Mail"))
            .args(["--oauth2-token-command", "echo good", "--timeout", "5"]);
        for cmd in [&mut inject_cmd, &mut sync_cmd] {
            if insecure {
                cmd.arg("--insecure");
            }
            let out = run(cmd, b"x\n");
            assert_eq!(code(&out), 76, "{url} {insecure}: {}", describe(&out));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(what), "{err}");
        }
    }
    assert_eq!(*fake.logins.lock().unwrap(), Vec::<String>::new());
    assert_eq!(fake.appended.lock().unwrap().len(), 0);
}
