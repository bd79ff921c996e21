//! mail-inject against the real Postfix + Dovecot of scripts/mailserver:
//! what arrives is decoded by mail-parser and by Python's `email`, and
//! every refusal the servers can produce on demand has its exit code.

mod inject_common;
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;

use inject_common::{code, describe, inject, messages_containing, run, unique};
use support::Rig;

/// mail-inject set up to submit as alice over the submission port
/// (STARTTLS, AUTH) trusting the rig's CA.
fn submit_as_alice(rig: &Rig, home: &Path) -> Command {
    let mut cmd = inject(home);
    cmd.env("MAILBOT_PASSWORD", &rig.users[0].1)
        .arg("--smtp")
        .arg(format!(
            "smtp://{}@{}:{}",
            rig.users[0].0, rig.host, rig.submission_port
        ))
        .arg("--ca-file")
        .arg(&rig.ca);
    cmd
}

fn wait_for_messages(maildir: &Path, needle: &str, count: usize) -> Vec<Vec<u8>> {
    support::wait_for(20, || {
        let found = messages_containing(maildir, needle);
        (found.len() >= count).then(|| found.into_iter().map(|(_, b)| b).collect())
    })
    .unwrap_or_else(|| {
        panic!(
            "{count} message(s) with {needle:?} did not arrive in {}",
            maildir.display()
        )
    })
}

#[test]
fn pdf_with_a_non_ascii_name_arrives_byte_identical() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let name = "\u{dc}bersicht M\u{e4}rz.pdf";
    let pdf = inject_common::pdf(20_000);
    let file = home.path().join(name);
    std::fs::write(&file, &pdf).unwrap();
    let subject = unique("pdf \u{fc}ber submission");
    let mut cmd = submit_as_alice(&rig, home.path());
    cmd.args(["-r", &rig.address(0), "-s", &subject, "-a"])
        .arg(&file)
        .args(["--json", &rig.address(1)]);
    let out = run(&mut cmd, "Gr\u{fc}\u{df}e, der Bericht.\n".as_bytes());
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(
        out.stderr.is_empty(),
        "silent on success: {}",
        describe(&out)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = summary["message_id"].as_str().unwrap().to_string();
    assert_eq!(summary["targets"][0]["status"], "sent");

    let delivered = wait_for_messages(&rig.maildirs[1], &id, 1);
    assert_eq!(delivered.len(), 1);
    let message = &delivered[0];

    let parts = inject_common::python_parts(message);
    let pdf_part = parts
        .iter()
        .find(|p| p.0 == "application/pdf")
        .expect("a PDF part (Python)");
    assert_eq!(pdf_part.1.as_deref(), Some(name), "file name (Python)");
    assert!(pdf_part.2 == pdf, "PDF bytes differ (Python)");

    let atts = inject_common::mail_parser_attachments(message);
    assert_eq!(atts.len(), 1);
    assert_eq!(atts[0].0.as_deref(), Some(name), "file name (mail-parser)");
    assert_eq!(atts[0].1, "application/pdf");
    assert!(atts[0].2 == pdf, "PDF bytes differ (mail-parser)");
    let parsed = mail_parser::MessageParser::default()
        .parse(message)
        .unwrap();
    assert_eq!(parsed.subject(), Some(subject.as_str()));
}

#[test]
fn wrong_password_is_77_and_names_the_reply() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let mut cmd = submit_as_alice(&rig, home.path());
    cmd.env("MAILBOT_PASSWORD", "wrong")
        .args(["-r", &rig.address(0), "-s", "x", &rig.address(1)]);
    let out = run(&mut cmd, b"x\n");
    assert_eq!(code(&out), 77, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "mail-inject: smtp://{}:{}: authentication failed (535 ",
        rig.host, rig.submission_port
    );
    assert!(err.starts_with(&want), "{err}");
    assert!(
        !err.contains("wrong"),
        "the password must not be printed: {err}"
    );
}

#[test]
fn recipient_the_mx_refuses_is_69() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let mut cmd = inject(home.path());
    cmd.arg("--smtp")
        .arg(format!("smtp://{}:{}", rig.host, rig.smtp_port))
        .arg("--ca-file")
        .arg(&rig.ca)
        .args(["-r", "someone@example.org", "-s", "x"])
        .arg(format!("nobody@{}", rig.domain));
    let out = run(&mut cmd, b"x\n");
    assert_eq!(code(&out), 69, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("recipient <nobody@{}> refused (550 ", rig.domain)),
        "{err}"
    );
}

/// A byte relay from 127.0.0.3 (any loopback address works on Linux) to
/// the rig's submission port: the real server answers, but the client
/// asked for a host its certificate does not name.
fn relay_from_another_address(rig: &Rig) -> u16 {
    let listener = TcpListener::bind("127.0.0.3:0").expect("bind 127.0.0.3");
    let port = listener.local_addr().unwrap().port();
    let target = (rig.host.clone(), rig.submission_port);
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect((target.0.as_str(), target.1)) else {
                continue;
            };
            let pipe = |mut from: TcpStream, mut to: TcpStream| {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            };
            pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
            pipe(server, client);
        }
    });
    port
}

#[test]
fn certificate_for_another_host_or_unknown_ca_is_76() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let port = relay_from_another_address(&rig);
    let mut cmd = inject(home.path());
    cmd.env("MAILBOT_PASSWORD", &rig.users[0].1)
        .arg("--smtp")
        .arg(format!("smtp://{}@127.0.0.3:{port}", rig.users[0].0))
        .arg("--ca-file")
        .arg(&rig.ca)
        .args(["-r", &rig.address(0), "-s", "x", &rig.address(1)]);
    let out = run(&mut cmd, b"x\n");
    assert_eq!(code(&out), 76, "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("certificate not valid for name \"127.0.0.3\""),
        "{err}"
    );

    // Without --ca-file the bundled roots do not know the rig's CA.
    let mut cmd = inject(home.path());
    cmd.env("MAILBOT_PASSWORD", &rig.users[0].1)
        .arg("--smtp")
        .arg(format!(
            "smtp://{}@{}:{}",
            rig.users[0].0, rig.host, rig.submission_port
        ))
        .args(["-r", &rig.address(0), "-s", "x", &rig.address(1)]);
    let out = run(&mut cmd, b"x\n");
    assert_eq!(code(&out), 76, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("UnknownIssuer"),
        "{}",
        describe(&out)
    );

    // --insecure says so and then sends.
    let subject = unique("insecure");
    let mut cmd = inject(home.path());
    cmd.env("MAILBOT_PASSWORD", &rig.users[0].1)
        .arg("--smtp")
        .arg(format!(
            "smtp://{}@{}:{}",
            rig.users[0].0, rig.host, rig.submission_port
        ))
        .args([
            "--insecure",
            "-r",
            &rig.address(0),
            "-s",
            &subject,
            &rig.address(1),
        ]);
    let out = run(&mut cmd, b"x\n");
    assert_eq!(code(&out), 0, "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not verified"));
    wait_for_messages(&rig.maildirs[1], &subject, 1);
}

#[test]
fn raw_with_bcc_reaches_the_bcc_recipient_without_the_header() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let subject = unique("raw bcc");
    let raw = format!(
        "From: Alice <{a}>\nTo: Alice <{a}>\nBcc: Bob <{b}>\nSubject: {subject}\nMessage-ID: <{id}@mailbot.test>\n\n.dot line\nbody\n",
        a = rig.address(0),
        b = rig.address(1),
        id = subject.replace(' ', "."),
    );
    let mut cmd = submit_as_alice(&rig, home.path());
    cmd.args(["--raw", "-t"]);
    let out = run(&mut cmd, raw.as_bytes());
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let to_bob = wait_for_messages(&rig.maildirs[1], &subject, 1);
    let to_alice = wait_for_messages(&rig.maildirs[0], &subject, 1);
    for copy in to_bob.iter().chain(&to_alice) {
        let text = String::from_utf8_lossy(copy);
        let header_end = text.find("\n\n").unwrap();
        assert!(
            !text[..header_end].to_ascii_lowercase().contains("\nbcc:"),
            "Bcc header delivered: {text}"
        );
        assert!(text[header_end..].contains("\n.dot line\n"), "{text}");
    }
}

#[test]
fn batch_goes_over_one_session_with_a_result_per_line() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let tag = unique("batch");
    let pdf = home.path().join("r.pdf");
    std::fs::write(&pdf, inject_common::pdf(3000)).unwrap();
    let mut lines = Vec::new();
    for i in 0..12 {
        lines.push(
            serde_json::json!({
                "to": [rig.address(1)],
                "subject": format!("{tag} #{i}"),
                "body": format!("message {i}\n"),
                "attachments": [pdf.display().to_string()],
                "headers": {"X-Batch": tag.clone()},
            })
            .to_string(),
        );
    }
    lines.insert(
        5,
        r#"{"to": ["not an address"], "subject": "bad"}"#.to_string(),
    );
    let batch = home.path().join("batch.jsonl");
    std::fs::write(&batch, lines.join("\n") + "\n").unwrap();
    let mut cmd = submit_as_alice(&rig, home.path());
    cmd.args(["-r", &rig.address(0), "--json", "--batch"])
        .arg(&batch);
    let out = run(&mut cmd, b"");
    assert_eq!(code(&out), 1, "one line failed: {}", describe(&out));
    let results: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 13);
    for r in &results {
        if r["line"] == 6 {
            assert_eq!(r["status"], "failed");
            assert_eq!(r["exit"], 65);
        } else {
            assert_eq!(r["status"], "sent", "{r}");
            assert!(r["message_id"].as_str().unwrap().starts_with('<'));
        }
    }
    wait_for_messages(&rig.maildirs[1], &tag, 12);
}

#[test]
fn one_call_sends_appends_to_sent_and_delivers_locally_the_same_bytes() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let subject = unique("three targets");
    let local = home.path().join("Mail");
    let mut cmd = submit_as_alice(&rig, home.path());
    cmd.arg("--imap")
        .arg(format!(
            "imaps://{}@{}:{}",
            rig.users[0].0, rig.host, rig.imaps_port
        ))
        .args(["--folder", "Sent"])
        .arg("--maildir")
        .arg(&local)
        .args(["-r", &rig.address(0), "-s", &subject, &rig.address(1)]);
    let out = run(&mut cmd, b"one message, three places\n");
    assert_eq!(code(&out), 0, "{}", describe(&out));
    let path = String::from_utf8(out.stdout).unwrap();
    let local_copy = std::fs::read(path.trim()).unwrap();
    let mut imap = support::Imap::connect_tls(&rig, rig.tls_trusting_rig()).unwrap();
    assert!(imap.login(&rig.users[0].0, &rig.users[0].1).unwrap());
    let sent: Vec<_> = imap
        .fetch_all("Sent")
        .unwrap()
        .into_iter()
        .filter(|m| String::from_utf8_lossy(m).contains(&subject))
        .collect();
    assert_eq!(sent.len(), 1);
    // The same message; the maildir has it with Unix line ends, as every
    // maildir writer stores it (and as Dovecot stores the Sent copy).
    assert!(
        String::from_utf8_lossy(&sent[0])
            .replace("\r\n", "\n")
            .as_bytes()
            == local_copy,
        "the Sent copy differs from the local one"
    );
    let delivered = wait_for_messages(&rig.maildirs[1], &subject, 1);
    let body = |m: &[u8]| {
        let t = String::from_utf8_lossy(m).replace("\r\n", "\n");
        t[t.find("\n\n").unwrap()..].to_string()
    };
    assert_eq!(body(&delivered[0]), body(&local_copy));

    // IMAP over STARTTLS, and its wrong password.
    let mut cmd = inject(home.path());
    cmd.env("MAILBOT_PASSWORD", "wrong")
        .arg("--imap")
        .arg(format!(
            "imap://{}@{}:{}",
            rig.users[0].0, rig.host, rig.imap_port
        ))
        .arg("--ca-file")
        .arg(&rig.ca)
        .args(["-r", &rig.address(0), "-s", "x"]);
    let out = run(&mut cmd, b"x\n");
    assert_eq!(code(&out), 77, "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("authentication failed (NO"),
        "{}",
        describe(&out)
    );
}

/// Implicit TLS in front of the rig's plain MX port, with the rig's own
/// certificate and key: Postfix has no smtps listener in the rig, and
/// this way the client's `smtps://` path still meets the real server.
fn smtps_front(rig: &Rig) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let tls_dir = rig.ca.parent().unwrap();
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(tls_dir.join("server.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let key = PrivateKeyDer::from_pem_file(tls_dir.join("server.key")).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = (rig.host.clone(), rig.smtp_port);
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let config = config.clone();
            let target = target.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, client);
                let mut server = TcpStream::connect((target.0.as_str(), target.1)).unwrap();
                let mut back = server.try_clone().unwrap();
                // One thread would need non-blocking I/O; instead, read the
                // server on a thread and hand its bytes over a channel.
                let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = back.read(&mut buf) {
                        if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                });
                tls.sock
                    .set_read_timeout(Some(std::time::Duration::from_millis(20)))
                    .unwrap();
                let mut buf = [0u8; 16384];
                loop {
                    loop {
                        match rx.try_recv() {
                            Ok(data) => {
                                if tls.write_all(&data).and_then(|()| tls.flush()).is_err() {
                                    return;
                                }
                            }
                            Err(std::sync::mpsc::TryRecvError::Empty) => break,
                            Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
                        }
                    }
                    match tls.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => {
                            if server.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => return,
                    }
                }
            });
        }
    });
    port
}

#[test]
fn smtps_with_implicit_tls_reaches_the_server() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let port = smtps_front(&rig);
    let subject = unique("smtps");
    let mut cmd = inject(home.path());
    cmd.arg("--smtp")
        .arg(format!("smtps://localhost:{port}"))
        .arg("--ca-file")
        .arg(&rig.ca)
        .args(["-r", "someone@example.org", "-s", &subject, &rig.address(1)]);
    let out = run(&mut cmd, b"over implicit TLS\n");
    assert_eq!(code(&out), 0, "{}", describe(&out));
    wait_for_messages(&rig.maildirs[1], &subject, 1);
}

#[test]
fn batch_that_fails_the_same_way_throughout_exits_with_that_code() {
    let Some(rig) = Rig::from_env() else { return };
    let home = tempfile::tempdir().unwrap();
    let batch = home.path().join("b.jsonl");
    let line = serde_json::json!({"to": rig.address(1), "subject": "never"}).to_string();
    std::fs::write(&batch, format!("{line}\n{line}\n{line}\n")).unwrap();
    let mut cmd = submit_as_alice(&rig, home.path());
    cmd.env("MAILBOT_PASSWORD", "wrong")
        .args(["-r", &rig.address(0), "--json", "--batch"])
        .arg(&batch);
    let out = run(&mut cmd, b"");
    assert_eq!(code(&out), 77, "{}", describe(&out));
    let results: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 3);
    assert!(
        results
            .iter()
            .all(|r| r["status"] == "failed" && r["exit"] == 77),
        "{results:?}"
    );
}
