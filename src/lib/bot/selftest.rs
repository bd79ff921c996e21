//! `mail-bot selftest`: the course exercise as one call. Send a file to
//! the account's own address, wait until it comes back, index it, take
//! it apart again, check that the file is byte for byte the one sent,
//! and give the command that would print it.
//!
//! With an SMTP and an IMAP server the message goes out through
//! submission and is fetched by a sync pass (polling) or by IDLE; with
//! the embedded default it is delivered into the local maildir.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::engine::{Account, content_key};
use super::rules::Rule;
use super::state::{self, Record, State};
use crate::compose::{self, Address, Attachment, Draft, Pins};
use crate::dissect::{self, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::index::{Index, IndexOptions};
use crate::maildir::Maildir;
use crate::sync;

/// How to notice the message coming back from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Wait {
    /// IMAP IDLE: the server tells us.
    #[default]
    Idle,
    /// A look at INBOX every 5 ms on one open connection.
    Poll,
}

/// What to send and how long to wait.
#[derive(Debug, Clone)]
pub struct Options {
    /// The file to send; a small generated PDF when `None`.
    pub file: Option<PathBuf>,
    /// Give up after this long (exit 75).
    pub timeout: Duration,
    /// IDLE or polling (servers only).
    pub wait: Wait,
    /// Where the received file is written.
    pub out: PathBuf,
    /// The print command template.
    pub print_template: String,
}

/// What happened, for people and for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// True when the file came back byte for byte.
    pub ok: bool,
    /// The account.
    pub account: String,
    /// How the message travelled: `maildir` or `smtp+imap`.
    pub route: String,
    /// How the arrival was noticed (servers only).
    pub wait: Option<Wait>,
    /// The Message-ID sent.
    pub message_id: String,
    /// The file sent (its name) and its sha256.
    pub sent_name: String,
    /// sha256 of the file sent.
    pub sent_sha256: String,
    /// The message as it arrived in the maildir.
    pub message: PathBuf,
    /// The file taken out of it.
    pub received: PathBuf,
    /// Its sha256.
    pub received_sha256: String,
    /// The print command, shell-quoted.
    pub print_command: String,
    /// From just before sending to the verified file on disk.
    pub latency_ms: f64,
}

/// A one-page PDF that says `text`: valid enough for any viewer and
/// different for every token, so each selftest has its own bytes.
pub fn small_pdf(text: &str) -> Vec<u8> {
    let safe: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .filter(|c| !matches!(c, '(' | ')' | '\\'))
        .collect();
    let stream = format!("BT /F1 18 Tf 72 720 Td ({safe}) Tj ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_string(),
        format!("<< /Length {} >>\nstream\n{stream}endstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let objects: Vec<Vec<u8>> = objects.into_iter().map(String::into_bytes).collect();
    pdf_from_objects(&objects)
}

/// A PDF file of these objects (numbered from 1; the first must be the
/// catalog), with the cross-reference table and trailer viewers need.
pub fn pdf_from_objects(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// Runs the selftest. `say` gets one line per step, for people.
pub fn run(
    account: &Account,
    rules: &[Rule],
    options: &Options,
    say: &mut dyn FnMut(&str),
) -> Result<Report> {
    let dir = state::state_dir(&account.maildir);
    let deadline = Instant::now() + options.timeout;
    let _lock = state::lock_waiting(&dir, deadline)?;
    let token = compose::random_token(12);
    let attachment = match &options.file {
        Some(path) => Attachment::from_spec(path, false)?,
        None => Attachment {
            data: small_pdf(&format!("mailbot selftest {token}")),
            content_type: "application/pdf".into(),
            file_name: "mailbot-selftest.pdf".into(),
            content_id: None,
        },
    };
    let sent_sha256 = content_key(&attachment.data);
    let address = account
        .address
        .clone()
        .unwrap_or_else(|| "mailbot@localhost".into());
    let me = Address::parse(&address)?;
    let draft = Draft {
        from: Some(me.clone()),
        to: vec![me],
        subject: Some(format!("mailbot selftest {token}")),
        headers: vec![("X-Mailbot-Selftest".into(), token.clone())],
        text: format!(
            "This message was sent by mail-bot selftest to check that mail comes back.\n\
             The attached file's sha256 is {sent_sha256}.\n"
        ),
        attachments: vec![attachment.clone()],
        ..Draft::default()
    };
    let host = address.rsplit_once('@').map_or("localhost", |(_, h)| h);
    let composed = compose::compose(
        &draft,
        &Pins {
            host: host.into(),
            ..Pins::default()
        },
    )?;
    let message_id = composed.message_id.clone().unwrap_or_default();
    say(&format!(
        "composed {message_id}: {} bytes, {} ({} bytes, sha256 {sent_sha256})",
        composed.bytes.len(),
        attachment.file_name,
        attachment.data.len()
    ));
    let started = Instant::now();
    let mut listening: Option<Watcher> = None;
    let (message, route, wait) = match (&account.transport, &account.sync) {
        (Some(transport), Some(sync_options)) => {
            // Listen first, send second: the connection, login and the
            // first look at INBOX are done before the message goes, so an
            // IMAP server that is down, refuses the login or fails TLS
            // fails the test at once with its own error, and nothing is
            // sent that no one will fetch.
            check_imap(sync_options, deadline)?;
            let watcher = Watcher::start(sync_options, &message_id, options.wait, deadline);
            let watcher = watcher.ready(deadline)?;
            let sent = transport.send_before(&composed.envelope, &composed.bytes, deadline);
            if let Err(e) = sent {
                watcher.stop();
                return Err(e);
            }
            say(&format!(
                "sent through {} to {address}",
                transport.url.display()
            ));
            let (path, watcher) = watcher.wait(deadline)?;
            listening = Some(watcher);
            say(&format!(
                "arrived after {:.0} ms ({}): {}",
                started.elapsed().as_secs_f64() * 1000.0,
                match options.wait {
                    Wait::Idle => "IMAP IDLE",
                    Wait::Poll => "polling",
                },
                path.display()
            ));
            (path, "smtp+imap", Some(options.wait))
        }
        (None, Some(_)) | (Some(_), None) => {
            return Err(Error::new(
                ErrorKind::Config,
                format!("account {:?}", account.name),
                "a selftest through servers needs both smtp and imap",
            ));
        }
        (None, None) => {
            let inbox = Maildir::create(account.folder("INBOX"))?.with_line_ends(account.line_ends);
            let path = inbox.deliver(&composed.bytes)?;
            say(&format!(
                "delivered into the local maildir: {}",
                path.display()
            ));
            (path, "maildir", None)
        }
    };
    let bytes = fs::read(&message).map_err(|e| Error::reading(&message, e))?;
    let mut index = Index::open(&account.maildir, IndexOptions::default())?;
    index.add(std::slice::from_ref(&message))?;
    let bare_id = message_id.trim_start_matches('<').trim_end_matches('>');
    let hits = index.search(&super::engine::id_query(bare_id))?;
    let tags = hits.first().map(|h| h.tags.join(" ")).unwrap_or_default();
    say(&format!(
        "indexed in {}: id:{bare_id} (tags: {tags})",
        crate::index::database_path(&account.maildir).display()
    ));
    let d = dissect::dissect_bytes(
        &bytes,
        &dissect::Options {
            types: vec![attachment.content_type.clone()],
            bodies: false,
            ..dissect::Options::all()
        },
    );
    crate::private::create_dir_all(&options.out).map_err(|e| Error::writing(&options.out, e))?;
    let written = dissect::write_dissection(&d, Target::PerMessage(&options.out))?;
    dissect::sync_output(&options.out)?;
    let received = written
        .files
        .iter()
        .find(|f| f.sha256 == sent_sha256)
        .or_else(|| written.files.first())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::BadInput,
                message.display().to_string(),
                "came back without the attached file",
            )
        })?
        .clone();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Some(w) = listening {
        w.stop();
    }
    let ok = received.sha256 == sent_sha256;
    say(&format!(
        "dissected: {} (sha256 {}{})",
        received.path.display(),
        received.sha256,
        if ok {
            ", equal to the original"
        } else {
            ", DIFFERENT from the original"
        }
    ));
    let print_command = crate::shell::fill_template(
        &options.print_template,
        &received.path.display().to_string(),
    );
    say(&format!("print with: {print_command}"));
    // The probe message is done: later runs neither act on it nor count it.
    let mut state = State::open(&dir)?;
    let key = content_key(&bytes);
    let unique = message
        .file_name()
        .map(|n| crate::maildir::parse_name(&n.to_string_lossy()).0)
        .unwrap_or_default();
    state.record(Record::Seen {
        unique,
        key: key.clone(),
    });
    for rule in super::engine::rules_for(rules, &account.name) {
        state.record(Record::Done {
            key: key.clone(),
            rule: rule.name.clone(),
        });
    }
    state.commit()?;
    let report = Report {
        ok,
        account: account.name.clone(),
        route: route.into(),
        wait,
        message_id,
        sent_name: attachment.file_name,
        sent_sha256,
        message,
        received: received.path,
        received_sha256: received.sha256,
        print_command,
        latency_ms,
    };
    if !ok {
        return Err(Error::new(
            ErrorKind::BadInput,
            report.received.display().to_string(),
            format!(
                "sha256 {} differs from the file sent ({})",
                report.received_sha256, report.sent_sha256
            ),
        ));
    }
    Ok(report)
}

/// Connects, logs in and selects INBOX (read-only), once: the IMAP half
/// of the round trip works before anything is sent. Its error is IMAP's
/// own (75 down, 76 TLS, 77 login).
fn check_imap(options: &sync::Options, deadline: Instant) -> Result<()> {
    let config = crate::tls::client_config(&options.tls)?;
    let left = deadline.saturating_duration_since(Instant::now());
    let mut session = crate::imap::Session::connect(
        &options.url,
        &config,
        &options.auth,
        options.timeout.min(left).max(Duration::from_millis(100)),
        options.tls.allow_plaintext_auth,
    )?;
    session.examine("INBOX")?;
    session.logout();
    Ok(())
}

/// A sync of INBOX on its own thread, polling or in IDLE, that reports
/// the message with the selftest's Message-ID when it arrives.
struct Watcher {
    found: mpsc::Receiver<PathBuf>,
    /// A message when the first pass over INBOX is done.
    listening: mpsc::Receiver<()>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<()>>,
}

impl Watcher {
    fn start(options: &sync::Options, message_id: &str, wait: Wait, deadline: Instant) -> Watcher {
        let inbox_only = sync::Options {
            folders: vec!["INBOX".into()],
            ..options.clone()
        };
        let (tx, found) = mpsc::channel();
        let (ready, listening) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let id = message_id.to_string();
        let thread = std::thread::spawn(move || -> Result<()> {
            let keep_going = || !halt.load(Ordering::Relaxed) && Instant::now() < deadline;
            let mut check = |m: &sync::NewMessage| {
                if is_ours(&m.path, &id) {
                    halt.store(true, Ordering::Relaxed);
                    let _ = tx.send(m.path.clone());
                }
            };
            // Polling keeps one connection and looks every 5 ms.
            let tuning = sync::Tuning {
                poll_every: (wait == Wait::Poll).then(|| Duration::from_millis(5)),
                ..sync::Tuning::default()
            };
            sync::watch_tuned(
                &inbox_only,
                &tuning,
                "INBOX",
                &mut check,
                &mut |event| {
                    if matches!(event, sync::Event::FolderDone(_)) {
                        let _ = ready.send(());
                    }
                },
                &keep_going,
            )?;
            Ok(())
        });
        Watcher {
            found,
            listening,
            stop,
            thread,
        }
    }

    /// Waits until the watcher has connected, logged in and looked at
    /// INBOX once; its failure before that (server down 75, TLS 76, login
    /// 77) is returned as it is.
    fn ready(self, deadline: Instant) -> Result<Watcher> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.listening.recv_timeout(left) {
            Ok(()) => Ok(self),
            Err(_) => {
                self.stop.store(true, Ordering::Relaxed);
                match self.thread.join() {
                    Ok(Err(e)) => Err(e),
                    _ => Err(Error::new(
                        ErrorKind::Temporary,
                        "INBOX",
                        "the IMAP server did not answer before the timeout",
                    )),
                }
            }
        }
    }

    /// The arrived message's path; the sync thread goes on until
    /// [`Watcher::stop`], so ending it costs the round trip nothing. A
    /// timeout is `Temporary` (exit 75); a failed sync is its own error
    /// (auth 77, TLS 76, ...).
    fn wait(self, deadline: Instant) -> Result<(PathBuf, Watcher)> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.found.recv_timeout(left) {
            Ok(path) => Ok((path, self)),
            Err(_) => {
                self.stop.store(true, Ordering::Relaxed);
                match self.thread.join() {
                    Ok(Err(e)) => Err(e),
                    _ => Err(Error::new(
                        ErrorKind::Temporary,
                        "selftest message",
                        "did not come back before the timeout",
                    )),
                }
            }
        }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

fn is_ours(path: &Path, message_id: &str) -> bool {
    let Ok(bytes) = fs::read(path) else {
        return false;
    };
    compose::message_id_of(&bytes).is_some_and(|id| id.trim() == message_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_pdf_is_a_pdf_with_a_correct_xref() {
        let pdf = small_pdf("mailbot selftest abc (x)");
        assert!(pdf.starts_with(b"%PDF-1.4\n"));
        assert!(pdf.ends_with(b"%%EOF\n"));
        assert_eq!(compose::sniff_type(&pdf, "x"), "application/pdf");
        let at = |needle: &[u8]| {
            pdf.windows(needle.len())
                .rposition(|w| w == needle)
                .unwrap()
        };
        let tail = &pdf[at(b"startxref\n") + 10..];
        let start: usize =
            std::str::from_utf8(&tail[..tail.iter().position(|&b| b == b'\n').unwrap()])
                .unwrap()
                .parse()
                .unwrap();
        assert!(pdf[start..].starts_with(b"xref\n0 6\n"));
        // Every offset in the table points at its object.
        let table = String::from_utf8(pdf[start..].to_vec()).unwrap();
        for (i, line) in table.lines().skip(3).take(5).enumerate() {
            let off: usize = line[..10].parse().unwrap();
            assert!(
                pdf[off..].starts_with(format!("{} 0 obj", i + 1).as_bytes()),
                "{line}"
            );
        }
        assert_ne!(small_pdf("a"), small_pdf("b"));
    }
}
