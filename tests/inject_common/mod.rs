//! Helpers shared by the mail-inject tests: running the binary in a clean
//! environment, a small valid PDF, and decoding messages back with
//! mail-parser and with Python's `email` package, two parsers that share
//! no code with mailbot.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mail-inject"))
}

/// A command for mail-inject with HOME and XDG_CONFIG_HOME inside `home`
/// (so no user configuration is read) and no MAILBOT_* settings except
/// what the test adds.
pub fn inject(home: &Path) -> Command {
    let mut cmd = Command::new(bin());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MAILBOT_") {
            cmd.env_remove(&name);
        }
    }
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("USER", "tester")
        .env("LOGNAME", "tester");
    cmd
}

/// Runs `cmd` with `stdin` as its input and returns its output.
pub fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mail-inject");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().unwrap();
    out
}

/// The exit code, and a description of the run for assertion messages.
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A small but valid one-page PDF of about `size` bytes (padded with a
/// binary stream so every byte value occurs).
pub fn pdf(size: usize) -> Vec<u8> {
    let mut pad: Vec<u8> = (0..size.saturating_sub(600))
        .map(|i| (i * 7 % 256) as u8)
        .collect();
    if pad.is_empty() {
        pad = (0..=255u8).collect();
    }
    let objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>".to_vec(),
        {
            let mut s = format!("<< /Length {} >>\nstream\n", pad.len()).into_bytes();
            s.extend_from_slice(&pad);
            s.extend_from_slice(b"\nendstream");
            s
        },
    ];
    mailbot::bot::selftest::pdf_from_objects(&objects)
}

/// Every leaf part of `message` as Python's `email` package decodes it:
/// (content type, file name, decoded bytes).
pub fn python_parts(message: &[u8]) -> Vec<(String, Option<String>, Vec<u8>)> {
    let script = r#"
import sys, email, email.policy, json, base64
msg = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
out = []
for part in msg.walk():
    if part.is_multipart():
        continue
    out.append([part.get_content_type(), part.get_filename(),
                base64.b64encode(part.get_payload(decode=True) or b"").decode()])
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python3 failed");
    let parts: Vec<(String, Option<String>, String)> = serde_json::from_slice(&out.stdout).unwrap();
    parts
        .into_iter()
        .map(|(t, n, b)| (t, n, decode_base64(&b)))
        .collect()
}

/// Standard base64 of `text`.
pub fn base64(text: &str) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                TABLE[(n >> (18 - 6 * i)) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    out
}

fn decode_base64(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The attachments of `message` as mail-parser decodes them: (file name,
/// content type, bytes).
pub fn mail_parser_attachments(message: &[u8]) -> Vec<(Option<String>, String, Vec<u8>)> {
    use mail_parser::MimeHeaders;
    let parsed = mail_parser::MessageParser::default()
        .parse(message)
        .expect("mail-parser parses the message");
    parsed
        .attachments()
        .map(|p| {
            let ct = p
                .content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
                .unwrap_or_default();
            (
                p.attachment_name().map(str::to_string),
                ct,
                p.contents().to_vec(),
            )
        })
        .collect()
}

/// A unique text for subjects, so a test finds its own message in a
/// shared mailbox.
pub fn unique(what: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{what} {}.{:09}", now.as_secs(), now.subsec_nanos())
}

/// Every message file in a maildir's new/ and cur/ whose text contains
/// `needle`.
pub fn messages_containing(maildir: &Path, needle: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(dir) = std::fs::read_dir(maildir.join(sub)) else {
            continue;
        };
        for entry in dir.flatten() {
            if let Ok(bytes) = std::fs::read(entry.path())
                && String::from_utf8_lossy(&bytes).contains(needle)
            {
                found.push((entry.path(), bytes));
            }
        }
    }
    found
}
