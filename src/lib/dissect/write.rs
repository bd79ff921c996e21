//! Writing a [`Dissection`] out: one folder per message (attachments,
//! `body.txt`, `body.html`, `message.json`) or all attachments into one
//! flat folder.
//!
//! Every file is written under a temporary name in the same folder
//! (created with `create_new`), then hard-linked to its final name, which
//! fails rather than replace anything — so a failure never leaves a
//! partial file, an existing file is never overwritten, and a symlink
//! planted under a final name is never followed (the link call fails on
//! any existing name, symlinks included). A name already taken gets
//! ` (1)`, ` (2)`, ... before its extension; a file already there with the
//! very same bytes is reused instead, so a re-run duplicates nothing.
//!
//! The per-message folder is named from the message alone
//! ([`folder_name`]), opened once without following a symlink, and every
//! file is then made relative to that handle ([`Folder`]), so a folder
//! swapped for a symlink halfway cannot send files elsewhere. It is
//! locked while it is written, so two workers given the same message
//! never interleave; `message.json` is written last.
//! A folder whose `message.json` records the same selection (types,
//! bodies) and whose listed files are all there with their sizes is a
//! message already done: it is left untouched and the files it lists are
//! reported again. With another selection the message is dissected again,
//! files with the same bytes are reused, and `message.json` is replaced
//! (it describes the latest run). A folder without a readable
//! `message.json`, or with a listed file missing or of the wrong size, is
//! what an interrupted run left: its files are removed and the message is
//! written again.
//!
//! Nothing here flushes file contents to disk one by one: that is what
//! made dissecting slower than the tools it replaces. A caller that needs
//! the files to survive a crash (before deleting the message, say) calls
//! [`sync_output`] once for a whole batch; a crash before that leaves at
//! worst a folder that the next run recognises as incomplete and writes
//! again.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Attachment, Dissection, MainHeaders, PartInfo, Role, Selection};
use crate::error::{Error, ErrorKind, Result};
use crate::file_name::{numbered, sanitize_file_name};
use crate::mime::Defect;

/// Where to write.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// One folder per message under this folder.
    PerMessage(&'a Path),
    /// Attachments only, all into this folder.
    Flat(&'a Path),
}

/// A file written (or found already written) for a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct WrittenFile {
    /// Its full path.
    pub path: PathBuf,
    /// The part it came from.
    pub part: String,
    /// `attachment`, `body_text` or `body_html`.
    pub role: String,
    /// The declared name, decoded, when there was one.
    pub declared_name: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// sha256, hex.
    pub sha256: String,
    /// The embedded TNEF items (declared names) it was inside, outermost
    /// first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub within: Vec<String>,
    /// For an embedded TNEF item's own file: the item's message class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_class: Option<String>,
    /// True when this run created the file (false when it was there
    /// already with the same bytes, or the message was done before).
    #[serde(skip)]
    pub created: bool,
}

/// What [`write_dissection`] did.
#[derive(Debug, Clone)]
pub struct Written {
    /// The message folder (the flat folder with [`Target::Flat`]).
    pub folder: PathBuf,
    /// The files, in part order.
    pub files: Vec<WrittenFile>,
    /// True when the message folder was already complete and nothing was
    /// written.
    pub skipped: bool,
    /// The `message.json` content (one line).
    pub json: String,
}

#[derive(Serialize)]
struct Report<'a> {
    folder: String,
    sha256: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a super::Source>,
    selection: &'a Selection,
    headers: &'a MainHeaders,
    parts: Vec<serde_json::Value>,
    files: &'a [WrittenFile],
    defects: &'a [Defect],
}

/// The folder a message lands in: a slug of its subject (when it has
/// ASCII letters or digits) and the first 16 hex digits of the sha256 of
/// its bytes. The same bytes always give the same name.
pub fn folder_name(d: &Dissection) -> String {
    let mut slug = String::new();
    for c in d.headers.subject.as_deref().unwrap_or("").chars() {
        if slug.len() >= 40 {
            break;
        }
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-');
    let hash = &d.sha256[..d.sha256.len().min(16)];
    if slug.is_empty() {
        hash.to_string()
    } else {
        format!("{slug}-{hash}")
    }
}

/// Refuses an output folder whose path is not UTF-8: `message.json`
/// records every path written as UTF-8 text, so such a folder would get
/// files but no report. Checked before anything is written.
pub fn check_output_path(dir: &Path) -> Result<()> {
    match dir.to_str() {
        Some(_) => Ok(()),
        None => Err(Error::new(
            ErrorKind::Usage,
            dir.display().to_string(),
            "not UTF-8, and message.json records paths as UTF-8 text: \
             choose an output folder with a UTF-8 name",
        )),
    }
}

/// Writes the message's files (see the module documentation).
pub fn write_dissection(d: &Dissection, target: Target<'_>) -> Result<Written> {
    let (Target::PerMessage(dir) | Target::Flat(dir)) = target;
    check_output_path(dir)?;
    match target {
        Target::PerMessage(out) => write_message_folder(d, out),
        Target::Flat(dir) => write_flat(d, dir),
    }
}

fn write_message_folder(d: &Dissection, out: &Path) -> Result<Written> {
    let path = out.join(folder_name(d));
    // Create first: the common case (a new message) costs one call.
    let created = match crate::private::create_dir(&path) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(Error::writing(&path, e)),
    };
    // Opened without following a symlink, and used for every step after:
    // swapping the folder for a symlink now cannot send our files
    // elsewhere.
    let folder = Folder::open_no_follow(&path).map_err(|e| {
        if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
            || e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error())
        {
            Error::new(
                ErrorKind::CannotCreate,
                path.display().to_string(),
                "exists and is not a folder (a symlink is never followed)",
            )
        } else {
            Error::writing(&path, e)
        }
    })?;
    // Held until the folder is complete: another worker (or process)
    // given the same message waits here, then finds it done.
    folder.handle.lock().map_err(|e| Error::writing(&path, e))?;
    if !created {
        remove_stale_temps_in(&folder);
    }
    // Checked even when this call created the folder: another worker can
    // have taken the lock between our mkdir and our lock, and finished.
    let fresh = match earlier_run(&folder) {
        Earlier::Complete(done) if done.selection == d.selection => return Ok(done.written),
        // Same files, other selection: reuse what is there.
        Earlier::Complete(_) => false,
        // Whoever held the lock before us may have been killed halfway.
        Earlier::Incomplete => {
            clear_folder(&folder)?;
            true
        }
    };
    let mut claimed = Claimed::default();
    // Reserved for the report, whatever an attachment is called.
    claimed.names.insert(REPORT.into());
    let mut files = Vec::new();
    if let Some(text) = &d.body_text {
        let f = place(&folder, "body.txt", text.as_bytes(), &mut claimed, !fresh)?;
        files.push(record(f, "1", "body_text", None, text.as_bytes()));
        fix_part(&mut files, d, Role::BodyText);
    }
    if let Some(html) = &d.body_html {
        let f = place(&folder, "body.html", html.as_bytes(), &mut claimed, !fresh)?;
        files.push(record(f, "", "body_html", None, html.as_bytes()));
        fix_part(&mut files, d, Role::BodyHtml);
    }
    for a in &d.attachments {
        let f = place(&folder, &a.file_name, &a.data, &mut claimed, !fresh)?;
        files.push(record_attachment(f, a));
    }
    let json = report_json(d, &path, &files)?;
    let mut text = json.clone();
    text.push('\n');
    replace_report(&folder, text.as_bytes())?;
    // The lock goes with the handle.
    drop(folder);
    Ok(Written {
        folder: path,
        files,
        skipped: false,
        json,
    })
}

/// The report's name in a message folder.
const REPORT: &str = "message.json";

fn fix_part(files: &mut [WrittenFile], d: &Dissection, role: Role) {
    if let (Some(f), Some(p)) = (files.last_mut(), d.parts.iter().find(|p| p.role == role)) {
        f.part = p.path.clone();
    }
}

/// Each part as in [`PartInfo`], plus the files written from it (name,
/// size, sha256).
fn parts_with_files(parts: &[PartInfo], files: &[WrittenFile]) -> Vec<serde_json::Value> {
    let mut by_part: std::collections::HashMap<&str, Vec<&WrittenFile>> = Default::default();
    for f in files {
        by_part.entry(f.part.as_str()).or_default().push(f);
    }
    parts
        .iter()
        .map(|p| {
            let mut v = serde_json::to_value(p).unwrap_or_default();
            let mine: Vec<serde_json::Value> = by_part
                .get(p.path.as_str())
                .into_iter()
                .flatten()
                .map(|f| {
                    serde_json::json!({
                        "file": f.path.file_name().map(|n| n.to_string_lossy().into_owned()),
                        "size": f.size,
                        "sha256": f.sha256,
                    })
                })
                .collect();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("files".into(), serde_json::Value::Array(mine));
            }
            v
        })
        .collect()
}

fn report_json(d: &Dissection, folder: &Path, files: &[WrittenFile]) -> Result<String> {
    let report = Report {
        folder: folder.display().to_string(),
        sha256: &d.sha256,
        source: d.source.as_ref(),
        selection: &d.selection,
        headers: &d.headers,
        parts: parts_with_files(&d.parts, files),
        files,
        defects: &d.defects,
    };
    serde_json::to_string(&report)
        .map_err(|e| Error::new(ErrorKind::BadInput, "message.json", e.to_string()))
}

/// What an earlier run left in a message folder.
enum Earlier {
    /// `message.json` is readable and every file it lists is there with
    /// its size.
    Complete(Box<EarlierRun>),
    /// Anything else: an interrupted run.
    Incomplete,
}

struct EarlierRun {
    selection: Selection,
    written: Written,
}

fn earlier_run(folder: &Folder) -> Earlier {
    let read = || -> Option<EarlierRun> {
        let mut json = String::new();
        folder
            .open_read(REPORT)
            .ok()?
            .read_to_string(&mut json)
            .ok()?;
        let value: serde_json::Value = serde_json::from_str(&json).ok()?;
        let selection: Selection = serde_json::from_value(value.get("selection")?.clone()).ok()?;
        let files: Vec<WrittenFile> = serde_json::from_value(value.get("files")?.clone()).ok()?;
        // A crash before the data reached the disk shows as a file that
        // is empty or short: the size is the check that catches it. The
        // files are looked up in this folder by name, wherever the
        // output folder was when they were written.
        let intact = files.iter().all(|f| {
            f.path
                .file_name()
                .is_some_and(|name| folder.file_size(name).ok() == Some(Some(f.size)))
        });
        intact.then(|| EarlierRun {
            selection,
            written: Written {
                folder: folder.path.clone(),
                files,
                skipped: true,
                json: json.trim_end().to_string(),
            },
        })
    };
    match read() {
        Some(run) => Earlier::Complete(Box::new(run)),
        None => Earlier::Incomplete,
    }
}

/// Removes what an interrupted run left in a message folder (files and
/// links; a folder inside is not ours and stays).
fn clear_folder(folder: &Folder) -> Result<()> {
    let fail = |e: io::Error| Error::writing(&folder.path, e);
    for (name, is_dir) in folder.entries().map_err(fail)? {
        if !is_dir {
            folder
                .remove(&name)
                .map_err(|e| Error::writing(&folder.path.join(&name), e))?;
        }
    }
    Ok(())
}

/// Flushes everything written on the file system that holds `dir` to
/// disk, in one call: what makes a whole run of writes durable.
pub fn sync_output(dir: &Path) -> Result<()> {
    let handle = File::open(dir).map_err(|e| Error::writing(dir, e))?;
    rustix::fs::syncfs(&handle).map_err(|e| Error::writing(dir, e.into()))
}

/// Writes `message.json`, replacing an earlier one (ours) atomically; the
/// same content is left alone.
fn replace_report(folder: &Folder, text: &[u8]) -> Result<()> {
    let json_path = folder.path.join(REPORT);
    match write_new(folder, REPORT, text) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let mut old = Vec::new();
            if folder
                .open_read(REPORT)
                .and_then(|mut f| f.read_to_end(&mut old))
                .is_ok()
                && old == text
            {
                return Ok(());
            }
            let tmp = write_temp(folder, text).map_err(|e| Error::writing(&json_path, e))?;
            // rename replaces the directory entry itself, never a
            // symlink's target.
            folder
                .rename(&tmp.name, REPORT)
                .map_err(|e| Error::writing(&json_path, e))
        }
        Err(e) => Err(Error::writing(&json_path, e)),
    }
}

fn write_flat(d: &Dissection, dir: &Path) -> Result<Written> {
    // The folder the user named (a symlink there is theirs to follow).
    let folder = Folder::open(dir).map_err(|e| Error::writing(dir, e))?;
    let mut claimed = Claimed::default();
    let mut files = Vec::new();
    for a in &d.attachments {
        let f = place(&folder, &a.file_name, &a.data, &mut claimed, true)?;
        files.push(record_attachment(f, a));
    }
    let json = report_json(d, dir, &files)?;
    Ok(Written {
        folder: dir.to_path_buf(),
        files,
        skipped: false,
        json,
    })
}

fn record_attachment(placed: (PathBuf, bool), a: &Attachment) -> WrittenFile {
    WrittenFile {
        within: a.within.clone(),
        item_class: a.item_class.clone(),
        ..record(
            placed,
            &a.part,
            "attachment",
            a.declared_name.clone(),
            &a.data,
        )
    }
}

fn record(
    (path, created): (PathBuf, bool),
    part: &str,
    role: &str,
    declared_name: Option<String>,
    data: &[u8],
) -> WrittenFile {
    WrittenFile {
        path,
        part: part.to_string(),
        role: role.to_string(),
        declared_name,
        size: data.len() as u64,
        sha256: hex::encode(Sha256::digest(data)),
        within: Vec::new(),
        item_class: None,
        created,
    }
}

/// The names one message has taken in its folder, and for each name
/// asked for, the first numbered variant not known to be taken: a
/// message with thousands of attachments of one name costs one look per
/// attachment, not one per attachment before it.
#[derive(Debug, Default)]
struct Claimed {
    names: HashSet<String>,
    next: std::collections::HashMap<String, usize>,
    /// Candidate names looked at, for the test that keeps this linear.
    probes: usize,
}

impl Claimed {
    fn claim(&mut self, name: &str, n: usize, candidate: String) {
        self.names.insert(candidate);
        let next = self.next.entry(name.to_string()).or_default();
        if *next == n {
            *next += 1;
            while self.names.contains(&numbered(name, *next)) {
                *next += 1;
            }
        }
    }
}

/// Puts `data` in `folder` under `name` or the first free numbered
/// variant, reusing a file that already holds exactly these bytes (and was
/// not claimed by this message already).
/// Returns the path and whether this call created the file.
fn place(
    folder: &Folder,
    name: &str,
    data: &[u8],
    claimed: &mut Claimed,
    look_first: bool,
) -> Result<(PathBuf, bool)> {
    let name = sanitize_file_name(name, "file");
    let holds_data = |candidate: &str| {
        folder.file_size(candidate).ok() == Some(Some(data.len() as u64))
            && same_content(folder, candidate, data).unwrap_or(false)
    };
    let first = claimed.next.get(&name).copied().unwrap_or(0);
    for n in first..100_000 {
        let candidate = numbered(&name, n);
        claimed.probes += 1;
        if claimed.names.contains(&candidate) {
            continue;
        }
        let path = folder.path.join(&candidate);
        // Look before writing, so a re-run over existing files reads
        // them instead of writing everything again only to find the
        // name taken (a folder this run created needs no look).
        if look_first {
            match folder.file_size(&candidate) {
                Ok(None) => {}
                Ok(Some(_)) if holds_data(&candidate) => {
                    claimed.claim(&name, n, candidate);
                    return Ok((path, false));
                }
                Ok(Some(_)) => continue,
                Err(e) => return Err(Error::writing(&path, e)),
            }
        }
        match write_new(folder, &candidate, data) {
            Ok(()) => {
                claimed.claim(&name, n, candidate);
                return Ok((path, true));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !look_first && holds_data(&candidate) {
                    claimed.claim(&name, n, candidate);
                    return Ok((path, false));
                }
                continue;
            }
            Err(e) => return Err(Error::writing(&path, e)),
        }
    }
    Err(Error::new(
        ErrorKind::CannotCreate,
        folder.path.join(&name).display().to_string(),
        "too many files of that name",
    ))
}

fn same_content(folder: &Folder, name: &str, data: &[u8]) -> io::Result<bool> {
    let mut f = folder.open_read(name)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut offset = 0;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(offset == data.len());
        }
        if offset + n > data.len() || buf[..n] != data[offset..offset + n] {
            return Ok(false);
        }
        offset += n;
    }
}

/// Removes temporary files a killed run left in `dir` (those whose
/// process is gone); another live run's files are left alone.
pub fn remove_stale_temps(dir: &Path) {
    if let Ok(folder) = Folder::open(dir) {
        remove_stale_temps_in(&folder);
    }
}

fn remove_stale_temps_in(folder: &Folder) {
    let Ok(entries) = folder.entries() else {
        return;
    };
    for (name, is_dir) in entries {
        let Some(rest) = name
            .strip_prefix(".mail-dissect.tmp-")
            .or_else(|| name.strip_prefix(".mail-dissect-probe-"))
        else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        let alive = !pid.is_empty() && Path::new("/proc").join(pid).exists();
        if !alive && !is_dir {
            let _ = folder.remove(&name);
        }
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn temp_name() -> String {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let pid = *PID.get_or_init(std::process::id);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(".mail-dissect.tmp-{pid}-{n}")
}

/// A folder we write in, held open: every step below names files
/// relative to this handle, never by a path that a swapped-in symlink
/// could redirect.
struct Folder {
    handle: File,
    /// For messages and the paths reported.
    path: PathBuf,
}

impl Folder {
    /// Opens `path`, following a symlink (a folder the user named).
    fn open(path: &Path) -> io::Result<Folder> {
        Self::open_with(path, OFlags::empty())
    }

    /// Opens `path`, which must be a real folder, not a symlink.
    fn open_no_follow(path: &Path) -> io::Result<Folder> {
        Self::open_with(path, OFlags::NOFOLLOW)
    }

    fn open_with(path: &Path, extra: OFlags) -> io::Result<Folder> {
        let fd = rustix::fs::openat(
            rustix::fs::CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | extra,
            Mode::empty(),
        )?;
        Ok(Folder {
            handle: File::from(fd),
            path: path.to_path_buf(),
        })
    }

    /// Creates `name`, which must not exist (a symlink counts as
    /// existing and is never followed).
    fn create_new(&self, name: &str) -> io::Result<File> {
        let fd = rustix::fs::openat(
            &self.handle,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(crate::private::FILE_MODE),
        )?;
        Ok(File::from(fd))
    }

    /// Opens `name` for reading; a symlink is refused.
    fn open_read(&self, name: impl AsRef<Path>) -> io::Result<File> {
        let fd = rustix::fs::openat(
            &self.handle,
            name.as_ref(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(File::from(fd))
    }

    /// The size of `name` when it is a regular file; None when there is
    /// no such entry; Some(u64::MAX) for anything else (a symlink, a
    /// folder), which matches no size.
    fn file_size(&self, name: impl AsRef<Path>) -> io::Result<Option<u64>> {
        match rustix::fs::statat(&self.handle, name.as_ref(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {
                Ok(Some(u64::try_from(st.st_size).unwrap_or(u64::MAX)))
            }
            Ok(_) => Ok(Some(u64::MAX)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// A second name for `from`; fails on any existing `to`.
    fn link(&self, from: &str, to: &str) -> io::Result<()> {
        Ok(rustix::fs::linkat(
            &self.handle,
            from,
            &self.handle,
            to,
            AtFlags::empty(),
        )?)
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.handle, from, &self.handle, to)?)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.handle, name, AtFlags::empty())?)
    }

    /// The names in the folder (UTF-8 ones: ours all are) and whether
    /// each is a folder.
    fn entries(&self) -> io::Result<Vec<(String, bool)>> {
        let dir = rustix::fs::Dir::read_from(&self.handle)?;
        let mut names = Vec::new();
        for entry in dir {
            let entry = entry?;
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name != "." && name != ".." {
                names.push((name.to_string(), entry.file_type() == FileType::Directory));
            }
        }
        Ok(names)
    }
}

/// A temporary file in a folder, removed unless it was committed.
struct TempFile<'f> {
    folder: &'f Folder,
    name: String,
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        let _ = self.folder.remove(&self.name);
    }
}

/// `data` in a new temporary file of `folder`.
fn write_temp<'f>(folder: &'f Folder, data: &[u8]) -> io::Result<TempFile<'f>> {
    let name = temp_name();
    let mut f = folder.create_new(&name)?;
    let tmp = TempFile { folder, name };
    f.write_all(data)?;
    Ok(tmp)
}

/// Writes `data` to `name` in `folder`, which must not exist: temporary
/// file, hard link to the final name (fails on any existing name,
/// symlinks included), remove the temporary name.
fn write_new(folder: &Folder, name: &str, data: &[u8]) -> io::Result<()> {
    let tmp = write_temp(folder, data)?;
    match folder.link(&tmp.name, name) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        // File systems without hard links: a rename after a check, which
        // still never follows a symlink (rename replaces the entry).
        Err(_) => match folder.file_size(name)? {
            Some(_) => Err(io::Error::from(io::ErrorKind::AlreadyExists)),
            None => folder.rename(&tmp.name, name),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Options, dissect_bytes};
    use super::*;
    use std::fs;

    const MSG: &[u8] = b"Subject: Invoice March!\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nhello\n--b\nContent-Type: application/pdf; name=\"body.txt\"\n\n%PDF-1\n--b\nContent-Type: application/pdf; name=\"message.json\"\n\n%PDF-2\n--b--\n";

    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn per_message_folder_and_rerun() {
        let tmp = tempfile::tempdir().unwrap();
        let d = dissect_bytes(MSG, &Options::all());
        let w = write_dissection(&d, Target::PerMessage(tmp.path())).unwrap();
        assert!(!w.skipped);
        let name = w.folder.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("invoice-march-"), "{name}");
        assert_eq!(
            listing(&w.folder),
            [
                "body (1).txt",
                "body.txt",
                "message (1).json",
                "message.json"
            ]
        );
        let again = write_dissection(&d, Target::PerMessage(tmp.path())).unwrap();
        assert!(again.skipped);
        let paths = |w: &Written| w.files.iter().map(|f| f.path.clone()).collect::<Vec<_>>();
        assert_eq!(paths(&again), paths(&w));
        assert!(w.files.iter().all(|f| f.created));
        assert!(!again.files.iter().any(|f| f.created));
        assert_eq!(listing(&w.folder).len(), 4);
    }

    /// A message with thousands of attachments of one name looks at one
    /// candidate name per attachment, not at every one taken before it.
    #[test]
    fn many_attachments_of_one_name_cost_one_look_each() {
        let tmp = tempfile::tempdir().unwrap();
        let folder = Folder::open(tmp.path()).unwrap();
        let mut claimed = Claimed::default();
        for i in 0..2000 {
            let (path, created) = place(
                &folder,
                "a.pdf",
                format!("{i}").as_bytes(),
                &mut claimed,
                false,
            )
            .unwrap();
            assert!(created);
            let want = if i == 0 {
                "a.pdf".to_string()
            } else {
                format!("a ({i}).pdf")
            };
            assert_eq!(path.file_name().unwrap().to_str(), Some(want.as_str()));
        }
        assert_eq!(claimed.probes, 2000);
        // A name taken by an attachment of its own is skipped, not reused.
        let (path, _) = place(&folder, "b (1).pdf", b"x", &mut claimed, false).unwrap();
        assert!(path.ends_with("b (1).pdf"));
        place(&folder, "b.pdf", b"y", &mut claimed, false).unwrap();
        let (path, _) = place(&folder, "b.pdf", b"z", &mut claimed, false).unwrap();
        assert!(path.ends_with("b (2).pdf"), "{}", path.display());
    }

    #[test]
    fn interrupted_run_is_completed_without_duplicates() {
        let tmp = tempfile::tempdir().unwrap();
        let d = dissect_bytes(MSG, &Options::all());
        let w = write_dissection(&d, Target::PerMessage(tmp.path())).unwrap();
        fs::remove_file(w.folder.join("message.json")).unwrap();
        let again = write_dissection(&d, Target::PerMessage(tmp.path())).unwrap();
        assert!(!again.skipped);
        assert_eq!(listing(&w.folder).len(), 4);
    }

    #[test]
    fn folder_damaged_by_a_crash_is_written_again() {
        let tmp = tempfile::tempdir().unwrap();
        let d = dissect_bytes(MSG, &Options::all());
        let w = write_dissection(&d, Target::PerMessage(tmp.path())).unwrap();
        let before = listing(&w.folder);
        // What a power loss before the data reached the disk leaves: the
        // names and message.json are there, a file is empty.
        let victim = &w.files[1].path;
        let good = fs::read(victim).unwrap();
        fs::write(victim, b"").unwrap();
        let again = write_dissection(&d, Target::PerMessage(tmp.path())).unwrap();
        assert!(!again.skipped, "a damaged folder is not a finished one");
        assert_eq!(fs::read(victim).unwrap(), good);
        assert_eq!(listing(&w.folder), before, "no numbered duplicates");
        // An unreadable message.json counts as damage too.
        fs::write(w.folder.join("message.json"), b"{\"trunc").unwrap();
        let third = write_dissection(&d, Target::PerMessage(tmp.path())).unwrap();
        assert!(!third.skipped);
        assert_eq!(listing(&w.folder), before);
        assert!(
            write_dissection(&d, Target::PerMessage(tmp.path()))
                .unwrap()
                .skipped
        );
    }

    #[test]
    fn the_same_message_twice_at_once_is_written_once() {
        let tmp = tempfile::tempdir().unwrap();
        let d = dissect_bytes(MSG, &Options::all());
        let results: Vec<Written> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| write_dissection(&d, Target::PerMessage(tmp.path()))))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap().unwrap())
                .collect()
        });
        assert_eq!(results.iter().filter(|w| !w.skipped).count(), 1);
        assert_eq!(listing(&results[0].folder).len(), 4);
        sync_output(tmp.path()).unwrap();
    }

    #[test]
    fn stale_temporary_files_are_cleaned() {
        let tmp = tempfile::tempdir().unwrap();
        let dead = tmp.path().join(".mail-dissect.tmp-999999999-3");
        let live = tmp
            .path()
            .join(format!(".mail-dissect.tmp-{}-3", std::process::id()));
        fs::write(&dead, b"partial").unwrap();
        fs::write(&live, b"in progress").unwrap();
        remove_stale_temps(tmp.path());
        assert!(!dead.exists());
        assert!(live.exists());
    }

    #[test]
    fn planted_symlink_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let flat = tmp.path().join("flat");
        fs::create_dir(&flat).unwrap();
        std::os::unix::fs::symlink(&victim, flat.join("a.pdf")).unwrap();
        let raw = b"Content-Type: application/pdf; name=a.pdf\n\n%PDF-x";
        let d = dissect_bytes(raw, &Options::all());
        let w = write_dissection(&d, Target::Flat(&flat)).unwrap();
        assert_eq!(w.files[0].path, flat.join("a (1).pdf"));
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::read(flat.join("a (1).pdf")).unwrap(), b"%PDF-x");
        // No temporary file is left behind.
        assert_eq!(listing(&flat), ["a (1).pdf", "a.pdf"]);
    }

    /// Another user of the output folder keeps swapping the message
    /// folder for a symlink to somewhere else while messages are written:
    /// nothing may ever land there.
    #[test]
    fn a_folder_swapped_for_a_symlink_mid_write_sends_nothing_elsewhere() {
        use std::sync::atomic::AtomicBool;
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir(&out).unwrap();
        fs::create_dir(&elsewhere).unwrap();
        let d = dissect_bytes(MSG, &Options::default());
        let folder = out.join(folder_name(&d));
        let stop = AtomicBool::new(false);
        let swaps = AtomicUsize::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let aside = tmp.path().join(format!("aside-{n}"));
                    n += 1;
                    if fs::rename(&folder, &aside).is_ok() {
                        swaps.fetch_add(1, Ordering::Relaxed);
                        let _ = std::os::unix::fs::symlink(&elsewhere, &folder);
                        std::thread::yield_now();
                        let _ = fs::remove_file(&folder);
                    }
                }
            });
            let start = std::time::Instant::now();
            for i in 0.. {
                // Refusals and failures are fine; writing elsewhere is not.
                let _ = write_dissection(&d, Target::PerMessage(&out));
                let raced = swaps.load(Ordering::Relaxed) >= 50;
                if (i >= 400 && raced) || start.elapsed().as_secs() >= 10 {
                    break;
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
        assert!(swaps.load(Ordering::Relaxed) > 0, "the race never happened");
        assert_eq!(listing(&elsewhere), Vec::<String>::new());
    }
}
