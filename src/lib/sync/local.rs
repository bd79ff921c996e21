//! The local side of a folder: what its `new/` and `cur/` hold (read
//! from the names), fetched bodies streamed into `tmp/` and moved into
//! place, renames that never replace a file, and the few reads the
//! matching needs (a message's Message-ID, its sha256, its size with
//! CRLF line ends). Bodies are written with each CRLF made LF unless the
//! line ends are kept ([`LineEnds`]).
//!
//! Files are not fsynced one by one: a whole batch is flushed with one
//! `syncfs` before the state says they exist ([`flush_to_disk`]). A file
//! only ever appears in `new/` or `cur/` complete (it is renamed there
//! from `tmp/`), so a killed process leaves either nothing or the whole
//! message.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::names::{FlagBits, Unique, bits_from_letters, file_name};
use crate::error::{Error, ErrorKind, Result};
use crate::imap::{Literals, Value, read_literal_to_memory, stream_literal};
use crate::maildir::{self, CrlfToLf, LineEnds, Maildir, Subdir};

/// The suffix of our files in `tmp/`: what a crashed run left there can
/// be told from other programs' deliveries.
const TMP_SUFFIX: &str = ",mailbot-sync";

/// A message file in the local folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMessage {
    /// Its path.
    pub path: PathBuf,
    /// In `cur/` (else `new/`).
    pub in_cur: bool,
    /// The info separator its name uses (`:` unless foreign).
    pub separator: Option<char>,
    /// The unique part, with `U=` and `S=` read out.
    pub unique: Unique,
    /// All its flag letters.
    pub flags: String,
}

impl LocalMessage {
    /// The synced flags it carries.
    pub fn bits(&self) -> FlagBits {
        bits_from_letters(&self.flags)
    }
}

/// What a local folder holds, by UID.
#[derive(Debug, Default)]
pub struct LocalFolder {
    /// Files that carry a UID (not 0).
    pub by_uid: HashMap<u32, LocalMessage>,
    /// Files without a UID: delivered locally, candidates for `--push`.
    pub without_uid: Vec<LocalMessage>,
    /// Files marked `U=0`: from the server once, gone from it since.
    pub gone: Vec<LocalMessage>,
    /// Second and later files claiming a UID already taken.
    pub duplicates: Vec<LocalMessage>,
    /// Files whose names are not UTF-8 (left alone).
    pub unreadable_names: Vec<PathBuf>,
}

impl LocalFolder {
    /// Every message, in no particular order.
    pub fn all(&self) -> impl Iterator<Item = &LocalMessage> {
        self.by_uid
            .values()
            .chain(&self.without_uid)
            .chain(&self.gone)
            .chain(&self.duplicates)
    }
}

/// Reads the folder at `root` (creating it, with `tmp/`, `new/`, `cur/`,
/// when missing) and removes what an earlier run of ours left in `tmp/`.
pub fn scan(root: &Path) -> Result<LocalFolder> {
    let md = Maildir::create(root)?;
    clean_our_tmp(root)?;
    let mut folder = LocalFolder::default();
    for entry in md.list()? {
        let name_is_utf8 = entry.path.file_name().is_some_and(|n| n.to_str().is_some());
        if !name_is_utf8 {
            folder.unreadable_names.push(entry.path);
            continue;
        }
        let msg = LocalMessage {
            unique: Unique::parse(&entry.unique),
            in_cur: entry.subdir == Subdir::Cur,
            separator: entry.separator,
            flags: entry.flags,
            path: entry.path,
        };
        match msg.unique.uid {
            None => folder.without_uid.push(msg),
            Some(0) => folder.gone.push(msg),
            Some(uid) => match folder.by_uid.entry(uid) {
                std::collections::hash_map::Entry::Occupied(_) => folder.duplicates.push(msg),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(msg);
                }
            },
        }
    }
    Ok(folder)
}

fn clean_our_tmp(root: &Path) -> Result<()> {
    let tmp = root.join("tmp");
    let read = match fs::read_dir(&tmp) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::reading(&tmp, e)),
    };
    for item in read {
        let item = item.map_err(|e| Error::reading(&tmp, e))?;
        if item.file_name().to_string_lossy().ends_with(TMP_SUFFIX) {
            let p = item.path();
            fs::remove_file(&p).map_err(|e| Error::writing(&p, e))?;
        }
    }
    Ok(())
}

/// Renames `from` to `to` unless `to` exists (never replaces a message).
pub fn rename_no_replace(from: &Path, to: &Path) -> Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST) => Err(Error::new(
            ErrorKind::CannotCreate,
            to.display().to_string(),
            "a message with this name already exists",
        )),
        // File systems without RENAME_NOREPLACE: link, then unlink.
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            fs::hard_link(from, to).map_err(|e| Error::writing(to, e))?;
            fs::remove_file(from).map_err(|e| Error::writing(from, e))
        }
        Err(e) => Err(Error::writing(to, e.into())),
    }
}

/// Renames a message to `unique` and `flags` (moving it to `cur/` when it
/// gets flags) and returns it as it is now. Nothing happens when the
/// name would not change.
pub fn rename(
    root: &Path,
    msg: &LocalMessage,
    unique: &Unique,
    flags: &str,
) -> Result<LocalMessage> {
    let flags = maildir::normalize_flags(flags);
    let in_cur = msg.in_cur || !flags.is_empty();
    let separator = msg.separator.unwrap_or(':');
    let keep_info = in_cur || msg.separator.is_some();
    let name = file_name(&unique.render(), separator, &flags, keep_info);
    let dir = root.join(if in_cur { "cur" } else { "new" });
    let path = dir.join(&name);
    if path == msg.path {
        return Ok(msg.clone());
    }
    rename_no_replace(&msg.path, &path)?;
    Ok(LocalMessage {
        path,
        in_cur,
        separator: keep_info.then_some(separator),
        unique: unique.clone(),
        flags,
    })
}

/// Flushes everything written on the file system holding `root` (one
/// `syncfs`): what makes a batch of messages durable before the state
/// claims them.
pub fn flush_to_disk(root: &Path) -> Result<()> {
    let handle = File::open(root).map_err(|e| Error::writing(root, e))?;
    rustix::fs::syncfs(&handle).map_err(|e| Error::writing(root, e.into()))
}

/// A body written to `tmp/`, not yet in place.
#[derive(Debug)]
pub struct Staged {
    /// The temporary file.
    pub tmp: PathBuf,
    /// The unique base its final name will use.
    pub base: String,
    /// The file's length.
    pub size: u64,
    /// The message's length as the server sent it (CRLF line ends).
    pub wire: u64,
}

impl Staged {
    /// Moves the body into `new/` (no flags) or `cur/` named for `uid`,
    /// and returns its path.
    pub fn place(self, root: &Path, uid: u32, flags: &str) -> Result<PathBuf> {
        let unique = Unique {
            base: self.base.clone(),
            uid: Some(uid),
            size: Some(self.size),
            wire: (self.wire != self.size).then_some(self.wire),
            others: Vec::new(),
        };
        let in_cur = !flags.is_empty();
        let name = file_name(&unique.render(), ':', flags, in_cur);
        let path = root.join(if in_cur { "cur" } else { "new" }).join(name);
        rename_no_replace(&self.tmp, &path)?;
        Ok(path)
    }

    /// Removes the temporary file.
    pub fn discard(self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

/// The literal sink for fetching: `BODY[]` goes to a new file in
/// `tmp/` through a fixed buffer (each CRLF made LF unless the line ends
/// are kept), other literals into memory.
#[derive(Debug)]
pub struct BodySink {
    root: PathBuf,
    line_ends: LineEnds,
    /// The body of the FETCH response being read, once read.
    pub staged: Option<Staged>,
}

/// A body on its way into its file, line ends converted as it streams.
struct BodyFile {
    out: BufWriter<File>,
    lf: Option<CrlfToLf>,
    written: u64,
}

impl BodyFile {
    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        let BodyFile { out, lf, written } = self;
        let mut put = |piece: &[u8]| {
            *written += piece.len() as u64;
            out.write_all(piece)
        };
        match lf {
            Some(conv) => conv.feed(chunk, &mut put),
            None => put(chunk),
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        let BodyFile { out, lf, written } = self;
        if let Some(conv) = lf {
            conv.finish(&mut |piece: &[u8]| {
                *written += piece.len() as u64;
                out.write_all(piece)
            })?;
        }
        out.flush()
    }
}

impl BodySink {
    /// A sink writing into `root/tmp/` with `line_ends`.
    pub fn new(root: &Path, line_ends: LineEnds) -> Self {
        BodySink {
            root: root.to_path_buf(),
            line_ends,
            staged: None,
        }
    }

    /// Writes `bytes` (a body sent as a quoted string) as a staged file.
    pub fn stage_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        let mut reader = bytes;
        self.stage(bytes.len() as u64, &mut reader, "")
    }

    fn stage(&mut self, len: u64, data: &mut dyn BufRead, object: &str) -> Result<()> {
        if let Some(old) = self.staged.take() {
            old.discard();
        }
        let base = maildir::unique_name();
        let tmp = self.root.join("tmp").join(format!("{base}{TMP_SUFFIX}"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::writing(&tmp, e))?;
        let mut body = BodyFile {
            out: BufWriter::with_capacity(256 * 1024, file),
            lf: (self.line_ends == LineEnds::Lf).then(CrlfToLf::default),
            written: 0,
        };
        let copied = stream_literal(len, data, object, &mut |chunk| {
            body.write(chunk).map_err(|e| Error::writing(&tmp, e))
        })
        .and_then(|()| body.finish().map_err(|e| Error::writing(&tmp, e)));
        let size = body.written;
        drop(body);
        if let Err(e) = copied {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        self.staged = Some(Staged {
            tmp,
            base,
            size,
            wire: len,
        });
        Ok(())
    }
}

/// Whether a literal is a message body: it follows `BODY[]` (any case,
/// with an origin like `BODY[]<0>`) in a FETCH response.
fn is_body(key: Option<&str>) -> bool {
    key.and_then(|k| k.get(..6))
        .is_some_and(|k| k.eq_ignore_ascii_case("BODY[]"))
}

impl Literals for BodySink {
    fn literal(
        &mut self,
        key: Option<&str>,
        len: u64,
        data: &mut dyn BufRead,
        object: &str,
    ) -> Result<Value> {
        if is_body(key) {
            self.stage(len, data, object)?;
            Ok(Value::Stored(len))
        } else {
            read_literal_to_memory(len, data, object)
        }
    }
}

/// The literal sink for comparing: `BODY[]` is hashed (sha256) as it
/// streams by, other literals go into memory.
#[derive(Debug, Default)]
pub struct HashSink {
    /// The hash of the last body read.
    pub last: Option<[u8; 32]>,
}

impl Literals for HashSink {
    fn literal(
        &mut self,
        key: Option<&str>,
        len: u64,
        data: &mut dyn BufRead,
        object: &str,
    ) -> Result<Value> {
        if !is_body(key) {
            return read_literal_to_memory(len, data, object);
        }
        let mut hasher = Sha256::new();
        stream_literal(len, data, object, &mut |chunk| {
            hasher.update(chunk);
            Ok(())
        })?;
        self.last = Some(hasher.finalize().into());
        Ok(Value::Stored(len))
    }
}

/// The Message-ID of a header block (unfolded, trimmed), if it has one.
pub fn message_id(header: &[u8]) -> Option<String> {
    let mut lines = header.split(|b| *b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        if !line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(b"message-id")
        {
            continue;
        }
        let mut value = line[colon + 1..].to_vec();
        while let Some(next) = lines.peek() {
            if next.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                let next = next.strip_suffix(b"\r").unwrap_or(next);
                value.push(b' ');
                value.extend_from_slice(next.trim_ascii());
                lines.next();
            } else {
                break;
            }
        }
        let text = String::from_utf8_lossy(value.trim_ascii()).into_owned();
        return (!text.is_empty()).then_some(text);
    }
    None
}

/// The header block of a file (up to the first empty line, at most
/// 1 MiB).
pub fn read_header(path: &Path) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let mut reader = io::BufReader::new(file.take(1024 * 1024));
    let mut header = Vec::new();
    loop {
        let start = header.len();
        let n = reader.read_until(b'\n', &mut header)?;
        if n == 0 {
            break;
        }
        let line = &header[start..];
        if line == b"\n" || line == b"\r\n" {
            break;
        }
    }
    Ok(header)
}

/// The sha256 and length of a file's bytes, or (with `crlf`) of its bytes
/// with every bare LF made CRLF, as APPEND sends them.
pub fn hash_file(path: &Path, crlf: bool) -> io::Result<(u64, [u8; 32])> {
    let file = File::open(path)?;
    let mut reader: Box<dyn Read> = if crlf {
        Box::new(CrlfReader::new(file))
    } else {
        Box::new(file)
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, hasher.finalize().into()))
}

/// Whether the file has a line feed not preceded by a carriage return.
pub fn has_bare_lf(path: &Path) -> io::Result<bool> {
    let mut reader = io::BufReader::new(File::open(path)?);
    let mut prev = 0u8;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(false);
        }
        for &b in buf {
            if b == b'\n' && prev != b'\r' {
                return Ok(true);
            }
            prev = b;
        }
        let n = buf.len();
        reader.consume(n);
    }
}

/// A reader that turns every bare LF into CRLF (and leaves everything
/// else, bare CRs included, as it is).
#[derive(Debug)]
pub struct CrlfReader<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    prev: u8,
    pending_lf: bool,
}

impl<R: Read> CrlfReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        CrlfReader {
            inner,
            buf: vec![0; 64 * 1024],
            pos: 0,
            end: 0,
            prev: 0,
            pending_lf: false,
        }
    }
}

impl<R: Read> Read for CrlfReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let mut written = 0;
        if self.pending_lf {
            out[0] = b'\n';
            self.pending_lf = false;
            self.prev = b'\n';
            written = 1;
        }
        if self.pos == self.end && written == 0 {
            self.end = self.inner.read(&mut self.buf)?;
            self.pos = 0;
            if self.end == 0 {
                return Ok(0);
            }
        }
        while written < out.len() && self.pos < self.end {
            let b = self.buf[self.pos];
            if b == b'\n' && self.prev != b'\r' {
                out[written] = b'\r';
                written += 1;
                self.prev = b'\r';
                if written == out.len() {
                    // The LF itself goes out next time.
                    self.pos += 1;
                    self.pending_lf = true;
                    return Ok(written);
                }
                continue;
            }
            out[written] = b;
            written += 1;
            self.prev = b;
            self.pos += 1;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_reader_makes_only_bare_lfs_crlf() {
        let cases: [(&[u8], &[u8]); 5] = [
            (b"a\nb\r\nc\rd\n", b"a\r\nb\r\nc\rd\r\n"),
            (b"\n\n", b"\r\n\r\n"),
            (b"", b""),
            (b"no line end", b"no line end"),
            (b"\r\n\r\n", b"\r\n\r\n"),
        ];
        for (input, want) in cases {
            for chunk in [1usize, 2, 3, 64] {
                let mut r = CrlfReader::new(input);
                let mut out = Vec::new();
                let mut buf = vec![0u8; chunk];
                loop {
                    let n = r.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    out.extend_from_slice(&buf[..n]);
                }
                assert_eq!(
                    out,
                    want,
                    "chunk {chunk}: {:?}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn message_ids_are_found_unfolded() {
        let cases: [(&[u8], Option<&str>); 5] = [
            (b"From: a\r\nMessage-ID: <x@y>\r\n\r\n", Some("<x@y>")),
            (
                b"message-id:\r\n  <folded@y>\r\nTo: b\r\n",
                Some("<folded@y>"),
            ),
            (b"From: a\n\nMessage-ID: <in-body@y>\n", None),
            (b"Subject: no id\n", None),
            (b"Message-Id : <sp@y> \n", Some("<sp@y>")),
        ];
        for (header, want) in cases {
            assert_eq!(
                message_id(header).as_deref(),
                want,
                "{}",
                String::from_utf8_lossy(header)
            );
        }
    }

    #[test]
    fn scan_sorts_files_by_uid_and_cleans_our_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("F");
        let md = Maildir::create(&root).unwrap();
        fs::write(root.join("cur/1.a.h,U=3,S=1:2,S"), "x").unwrap();
        fs::write(root.join("new/2.a.h,U=4,S=1"), "y").unwrap();
        fs::write(root.join("cur/3.a.h,U=3,S=1:2,"), "x").unwrap();
        fs::write(root.join("new/4.a.h"), "local").unwrap();
        fs::write(root.join("cur/5.a.h,U=0,S=1:2,F"), "z").unwrap();
        fs::write(root.join("tmp/6.a.h,mailbot-sync"), "partial").unwrap();
        fs::write(root.join("tmp/7.a.h"), "someone else's").unwrap();
        let f = scan(md.path()).unwrap();
        assert_eq!(f.by_uid.len(), 2);
        assert_eq!(f.by_uid[&3].flags, "S");
        assert!(!f.by_uid[&4].in_cur);
        assert_eq!(f.duplicates.len(), 1);
        assert_eq!(f.without_uid.len(), 1);
        assert_eq!(f.gone.len(), 1);
        assert!(!root.join("tmp/6.a.h,mailbot-sync").exists());
        assert!(root.join("tmp/7.a.h").exists());

        // A flag moves a new/ file to cur/; the same name twice is refused.
        let m = f.by_uid[&4].clone();
        let moved = rename(&root, &m, &m.unique, "S").unwrap();
        assert_eq!(moved.path, root.join("cur/2.a.h,U=4,S=1:2,S"));
        fs::write(root.join("new/2.a.h,U=4,S=1"), "again").unwrap();
        let again = LocalMessage { ..m };
        assert!(rename(&root, &again, &again.unique, "S").is_err());
    }
}
