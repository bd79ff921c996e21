//! Proves the test rig of `scripts/mailserver`: real Postfix and Dovecot on
//! loopback, with TLS verified against the rig's own CA. Every protocol
//! test of the other binaries stands on these facts.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use support::{Imap, Rig, Submitted};

fn unique_subject(what: &str) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("rig {what} {}.{}", now.as_secs(), now.subsec_nanos())
}

#[test]
fn submission_with_starttls_and_auth_reaches_imaps_byte_for_byte() {
    let Some(rig) = Rig::from_env() else { return };
    let subject = unique_subject("roundtrip");
    let (from, to) = (rig.address(0), rig.address(1));
    // A body with a leading dot, 8-bit text and a long line, to catch
    // dot-stuffing and re-encoding anywhere on the way.
    let body = format!(
        ".leading dot\r\nGr\u{fc}\u{df}e aus dem Test\r\n{}\r\nend\r\n",
        "x".repeat(900)
    );
    let message = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}"
    );
    let (user, pass) = &rig.users[0];
    let sent = support::submit(
        &rig,
        rig.tls_trusting_rig(),
        user,
        pass,
        &from,
        &to,
        message.as_bytes(),
    )
    .expect("submission");
    assert_eq!(sent, Submitted::Accepted);

    let (user2, pass2) = &rig.users[1];
    let found = support::wait_for(20, || {
        let mut imap = Imap::connect_tls(&rig, rig.tls_trusting_rig()).expect("imaps");
        assert!(imap.login(user2, pass2).expect("login"));
        imap.fetch_all("INBOX")
            .expect("fetch")
            .into_iter()
            .find(|m| String::from_utf8_lossy(m).contains(&subject))
    })
    .expect("message did not arrive over IMAPS within 20 s");

    let split = found
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end")
        + 4;
    assert_eq!(&found[split..], body.as_bytes(), "body changed on the way");

    // The same bytes sit in the server-side maildir Dovecot serves.
    let on_disk = std::fs::read_dir(rig.maildirs[1].join("new"))
        .unwrap()
        .chain(std::fs::read_dir(rig.maildirs[1].join("cur")).unwrap())
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .find(|m| String::from_utf8_lossy(m).contains(&subject))
        .expect("message in the server maildir");
    let fetched_lf: Vec<u8> = found.iter().copied().filter(|b| *b != b'\r').collect();
    let disk_lf: Vec<u8> = on_disk.iter().copied().filter(|b| *b != b'\r').collect();
    assert_eq!(fetched_lf, disk_lf);
}

#[test]
fn imap_starttls_port_works_too() {
    let Some(rig) = Rig::from_env() else { return };
    let mut imap = Imap::connect_starttls(&rig, rig.tls_trusting_rig()).expect("starttls");
    let (user, pass) = &rig.users[0];
    assert!(imap.login(user, pass).expect("login"));
    let (status, _, _) = imap.command("SELECT INBOX").unwrap();
    assert!(status.starts_with("OK"), "{status}");
}

#[test]
fn wrong_password_is_refused_on_submission_and_imap() {
    let Some(rig) = Rig::from_env() else { return };
    let (user, _) = &rig.users[0];
    let from = rig.address(0);
    let sent = support::submit(
        &rig,
        rig.tls_trusting_rig(),
        user,
        "wrong",
        &from,
        &from,
        b"Subject: x\r\n\r\nx\r\n",
    )
    .expect("session");
    assert_eq!(sent, Submitted::AuthRefused(535));
    let mut imap = Imap::connect_tls(&rig, rig.tls_trusting_rig()).expect("imaps");
    assert!(!imap.login(user, "wrong").expect("login reply"));
}

#[test]
fn client_without_the_rig_ca_fails_tls() {
    let Some(rig) = Rig::from_env() else { return };
    let err = Imap::connect_tls(&rig, support::tls_trusting_nobody())
        .err()
        .expect("IMAPS handshake must fail without the CA");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    let from = rig.address(0);
    let (user, pass) = &rig.users[0];
    let err = support::submit(
        &rig,
        support::tls_trusting_nobody(),
        user,
        pass,
        &from,
        &from,
        b"x",
    )
    .expect_err("submission STARTTLS must fail without the CA");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
}

#[test]
fn mx_port_refuses_unknown_users_and_relaying() {
    let Some(rig) = Rig::from_env() else { return };
    let mut c = support::Conn::plain(&rig.host, rig.smtp_port).unwrap();
    assert_eq!(support::smtp_reply(&mut c).unwrap().0, 220);
    for (cmd, want) in [
        ("EHLO test.invalid".to_string(), 250),
        ("MAIL FROM:<someone@example.org>".to_string(), 250),
        (format!("RCPT TO:<{}>", rig.address(1)), 250),
        (format!("RCPT TO:<nobody@{}>", rig.domain), 550),
        ("RCPT TO:<victim@example.com>".to_string(), 554),
    ] {
        c.send(format!("{cmd}\r\n").as_bytes()).unwrap();
        let (code, text) = support::smtp_reply(&mut c).unwrap();
        assert_eq!(code, want, "{cmd}: {text}");
    }
}
