//! mail-dissect: turn received messages back into their original files.
//!
//! Thin: flags → a checked plan → `mailbot::dissect` per message (on all
//! cores, output in input order) → paths, JSON or commands on stdout.

use std::io::{self, BufRead, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use mailbot::cli::{self, LogArgs, PathOutput, after_help, finish, parse_args};
use mailbot::dissect::{self, Options, Target, Written};
use mailbot::error::{Error, ErrorKind};
use mailbot::exit::Exit;
use mailbot::maildir::Maildir;
use mailbot::mbox;
use mailbot::shell;

const PROGRAM: &str = "mail-dissect";

const EXAMPLES: &str = "  mail-dissect message.eml
      Attachments, body.txt, body.html and message.json into
      ./dissected/<subject>-<hash>/; the files' paths on stdout.
  mail-dissect --pdf --printer office message.eml
      Only the PDFs; prints the command that would print each one:
      lpr -P office 'dissected/.../invoice.pdf'
  mail-dissect --pdf --exec 'sha256sum {}' message.eml
      Runs a command on each PDF (no shell; failures give exit 1).
  mail-dissect -r --out pdfs --type application/pdf --type 'image/*' Maildir
      Every message of a maildir and its subfolders; PDFs and images.
  find Maildir \\( -name .notmuch -o -name .mailbot \\) -prune -o -type f \\
      -print0 | mail-dissect --stdin -0 --flat attachments
      Paths on stdin; all attachments into one folder (the databases of
      mail-index and mail-bot pruned: every file given must be a message).
  mail-dissect --json - < message.eml
      One message on stdin; one JSON object (as message.json) on stdout.
  mail-dissect --pdf --out pdfs 'All mail.mbox'
      The PDFs of every message of an mbox, read message by message; each
      message.json says which message of the mbox it was.";

/// Turn received messages back into their original files: attachments
/// under safe names, the bodies decoded to UTF-8, and a message.json with
/// the part tree, every file's size and sha256, and the defects found.
#[derive(Debug, Parser)]
#[command(name = PROGRAM, version, after_help = after_help(EXAMPLES))]
struct Args {
    /// Message files, mbox files, maildir folders (new/ and cur/), or -
    /// for a message or an mbox on stdin.
    #[arg(value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// Also read the maildir folders below the given folders.
    #[arg(short, long)]
    recursive: bool,
    /// Read every file named (and -) as an mbox, even one message or one
    /// without a From_ line first. Without it, a file that starts with a
    /// From_ line and holds more than one message is read as an mbox.
    #[arg(long, conflicts_with = "no_mbox")]
    mbox: bool,
    /// Read every file as one message, never as an mbox.
    #[arg(long)]
    no_mbox: bool,
    /// How an mbox delimits messages and quotes From lines: auto
    /// (Content-Length when it fits, mboxrd unquoting unless a message has
    /// a bare From line), mboxo, mboxrd, mboxcl, mboxcl2.
    #[arg(
        long,
        value_name = "FORMAT",
        default_value = "auto",
        value_parser = ["auto", "mboxo", "mboxrd", "mboxcl", "mboxcl2"]
    )]
    mbox_format: String,
    /// Read input paths from stdin, one per line (NUL-separated with -0).
    #[arg(long)]
    stdin: bool,
    /// NUL instead of newline between paths, on stdin and stdout.
    #[arg(short = '0', long = "null")]
    null: bool,
    /// Folder that gets one folder per message.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "dissected",
        env = "MAILBOT_DISSECT_OUT"
    )]
    out: PathBuf,
    /// Put the attachments of all messages into this one folder instead
    /// (no bodies, no message.json).
    #[arg(long, value_name = "DIR")]
    flat: Option<PathBuf>,
    /// Keep only attachments of this type (application/pdf, image/*);
    /// repeatable. Implies no bodies.
    #[arg(long = "type", value_name = "PATTERN")]
    types: Vec<String>,
    /// Keep only PDF attachments (--type application/pdf).
    #[arg(long)]
    pdf: bool,
    /// Do not write body.txt and body.html.
    #[arg(long)]
    no_bodies: bool,
    /// Print one JSON object per message (as message.json) instead of paths.
    #[arg(long, conflicts_with = "print_cmd")]
    json: bool,
    /// Print one command per attachment written, with its path shell-quoted
    /// in place of {} [default: lpr {}]. Give the template with = or with a
    /// {} when inputs follow.
    #[arg(
        long,
        value_name = "TEMPLATE",
        num_args = 0..=1,
        default_missing_value = "lpr {}"
    )]
    print_cmd: Option<String>,
    /// Print commands for this printer: lpr -P NAME {} (implies
    /// --print-cmd).
    #[arg(long, value_name = "NAME", conflicts_with = "exec")]
    printer: Option<String>,
    /// Run this command on each attachment this run wrote ({} is its path;
    /// split into words like a shell would, but no shell runs it). Files
    /// already there from an earlier run are not run again.
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "print_cmd")]
    exec: Option<String>,
    /// Seconds an --exec command may run before it is killed, with its
    /// process group (that file then counts as failed).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 600.0,
        requires = "exec",
        env = "MAILBOT_EXEC_TIMEOUT"
    )]
    exec_timeout: f64,
    /// Flush the files to disk (one syncfs) before ending, for when the
    /// messages are deleted afterwards. Without it the kernel writes them
    /// in its own time, as ripmime's and munpack's files; a folder a crash
    /// left short is written again by the next run.
    #[arg(long, env = "MAILBOT_DISSECT_SYNC")]
    sync: bool,
    #[command(flatten)]
    log: LogArgs,
}

/// What stdout carries.
#[derive(Debug, Clone)]
enum Output {
    Paths,
    Json,
    Commands(String),
    Nothing,
}

/// The checked plan the run follows.
#[derive(Debug)]
struct Plan {
    inputs: Vec<PathBuf>,
    recursive: bool,
    mbox: MboxMode,
    mbox_format: mbox::Format,
    stdin_paths: bool,
    null: bool,
    target: PathBuf,
    flat: bool,
    options: Options,
    output: Output,
    exec: Option<String>,
    exec_timeout: std::time::Duration,
    sync: bool,
    /// A progress bar on stderr (a terminal) while stdout goes elsewhere.
    progress: bool,
}

impl Args {
    fn plan(mut self) -> anyhow::Result<Plan> {
        let mut types = std::mem::take(&mut self.types);
        if self.pdf {
            types.push("application/pdf".into());
        }
        // `--print-cmd msg.eml`: an optional value swallows the next word;
        // a word without {} or blanks that names a file is an input.
        if let Some(t) = &self.print_cmd
            && !t.contains("{}")
            && !t.contains(char::is_whitespace)
            && (Path::new(t).exists() || t == "-")
        {
            self.inputs.insert(0, PathBuf::from(t));
            self.print_cmd = Some("lpr {}".into());
        }
        let print = match (&self.printer, &self.print_cmd) {
            (Some(p), _) => Some(format!("lpr -P {} {{}}", shell::quote(p))),
            (None, Some(t)) => Some(t.clone()),
            (None, None) => None,
        };
        if let Some(t) = &self.exec {
            shell::split_template(t, "x")?;
        }
        let output = if self.json {
            Output::Json
        } else if let Some(t) = print {
            Output::Commands(t)
        } else if self.exec.is_some() {
            Output::Nothing
        } else {
            Output::Paths
        };
        if self.inputs.is_empty() && !self.stdin {
            return Err(Error::new(
                ErrorKind::Usage,
                "",
                "no input: give message files, maildir folders, - for stdin, or --stdin",
            )
            .into());
        }
        if self.stdin && self.inputs.iter().any(|p| p.as_os_str() == "-") {
            return Err(Error::new(
                ErrorKind::Usage,
                "-",
                "stdin cannot carry both a message (-) and paths (--stdin)",
            )
            .into());
        }
        let (target, flat) = match self.flat {
            Some(dir) => (dir, true),
            None => (self.out, false),
        };
        dissect::check_output_path(&target)?;
        Ok(Plan {
            inputs: self.inputs,
            recursive: self.recursive,
            mbox: if self.mbox {
                MboxMode::Always
            } else if self.no_mbox {
                MboxMode::Never
            } else {
                MboxMode::Detect
            },
            mbox_format: mbox::Format::from_name(&self.mbox_format).unwrap_or_default(),
            stdin_paths: self.stdin,
            null: self.null,
            target,
            flat,
            options: Options {
                types,
                bodies: !self.no_bodies,
                limits: Default::default(),
            },
            output,
            exec: self.exec,
            exec_timeout: mailbot::cli::seconds(
                self.exec_timeout,
                mailbot::child::DEFAULT_COMMAND_TIMEOUT,
            ),
            sync: self.sync,
            // Paths on stdin come in batches of unknown number: no bar.
            progress: !self.stdin
                && self.log.verbose == 0
                && !self.log.quiet
                && io::stderr().is_terminal()
                && !io::stdout().is_terminal(),
        })
    }
}

/// When a file is read as an mbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MboxMode {
    /// When it starts with a From_ line and holds more than one message.
    Detect,
    /// Always (`--mbox`).
    Always,
    /// Never (`--no-mbox`).
    Never,
}

/// An input named on the command line or on stdin, not yet opened.
#[derive(Debug)]
enum Input {
    /// A file the user named: a message, or an mbox.
    Named(PathBuf),
    /// A message of a maildir folder.
    MaildirEntry(PathBuf),
    /// `-`: a message or an mbox on stdin.
    Stdin,
}

/// One message to dissect.
#[derive(Debug)]
enum Item {
    File(PathBuf),
    /// A whole input already read (stdin, a one-message file).
    Bytes {
        name: String,
        raw: Vec<u8>,
    },
    /// One message of an mbox.
    Mbox {
        mbox: Arc<str>,
        message: mbox::Message,
    },
    /// An input that could not be read, reported in its place.
    Failed {
        name: String,
        error: Error,
    },
}

impl Item {
    /// The message size (0 when unknown: an unreadable file fails later).
    fn size(&self) -> u64 {
        match self {
            Item::File(p) => std::fs::metadata(p).map_or(0, |m| m.len()),
            Item::Bytes { raw, .. } => raw.len() as u64,
            Item::Mbox { message, .. } => message.bytes.len() as u64,
            Item::Failed { .. } => 0,
        }
    }

    fn name(&self) -> String {
        match self {
            Item::File(p) => p.display().to_string(),
            Item::Bytes { name, .. } | Item::Failed { name, .. } => name.clone(),
            Item::Mbox { mbox, message } => format!(
                "{mbox}: message {} (byte {})",
                message.number, message.offset
            ),
        }
    }
}

/// The read buffer of an mbox: large reads, one message in memory.
const MBOX_BUFFER: usize = 1 << 20;

/// The inputs as the messages they hold, opened one by one as they are
/// asked for: an mbox is read message by message, never whole.
struct Items {
    inputs: std::vec::IntoIter<Input>,
    mode: MboxMode,
    format: mbox::Format,
    current: Option<OpenMbox>,
    /// Messages beyond one per input so far (for the progress bar).
    extra: u64,
    bar: Option<ProgressBar>,
}

struct OpenMbox {
    name: Arc<str>,
    reader: mbox::Reader<Box<dyn BufRead + Send>>,
}

impl Items {
    fn new(inputs: Vec<Input>, plan: &Plan) -> Self {
        Items {
            inputs: inputs.into_iter(),
            mode: plan.mbox,
            format: plan.mbox_format,
            current: None,
            extra: 0,
            bar: None,
        }
    }

    /// A named file: the message it is, or the first message of the mbox
    /// it is.
    fn open_named(&mut self, path: PathBuf) -> Option<Item> {
        let name = path.display().to_string();
        if self.mode == MboxMode::Never {
            return Some(Item::File(path));
        }
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let error = Error::reading(&path, e);
                return Some(Item::Failed { name, error });
            }
        };
        let reader = Box::new(io::BufReader::with_capacity(MBOX_BUFFER, file));
        // Not an mbox: the worker reads the file itself.
        self.start(name, reader, |_| Item::File(path))
    }

    /// stdin: one message, or an mbox.
    fn open_stdin(&mut self) -> Option<Item> {
        let reader = Box::new(io::BufReader::with_capacity(MBOX_BUFFER, io::stdin()));
        self.start("-".into(), reader, |mut r| {
            let mut raw = Vec::new();
            match r.read_to_end(&mut raw) {
                Ok(_) => Item::Bytes {
                    name: "-".into(),
                    raw,
                },
                Err(e) => Item::Failed {
                    name: "-".into(),
                    error: Error::io(ErrorKind::InputMissing, "-", e),
                },
            }
        })
    }

    /// Looks at the start of `reader`: not an mbox gives `plain(reader)`;
    /// an mbox of one message (unless forced) gives the whole input as it
    /// is, as before mbox reading existed; else its first message, the
    /// rest following on later calls.
    fn start(
        &mut self,
        name: String,
        mut reader: Box<dyn BufRead + Send>,
        plain: impl FnOnce(Box<dyn BufRead + Send>) -> Item,
    ) -> Option<Item> {
        let failed = |name: &str, e: io::Error| Item::Failed {
            name: name.to_string(),
            error: Error::reading(Path::new(name), e),
        };
        // The first line that is not blank (at most 64 KiB of it).
        let mut head = Vec::new();
        loop {
            let before = head.len();
            if let Err(e) = (&mut reader).take(64 << 10).read_until(b'\n', &mut head) {
                return Some(failed(&name, e));
            }
            let line = &head[before..];
            if line.is_empty() || !line.trim_ascii().is_empty() || head.len() >= 64 << 10 {
                break;
            }
        }
        let is_mbox = match self.mode {
            MboxMode::Always => true,
            MboxMode::Detect => mbox::starts_like_mbox(&head),
            MboxMode::Never => false,
        };
        let reader: Box<dyn BufRead + Send> = Box::new(io::Cursor::new(head).chain(reader));
        if !is_mbox {
            return Some(plain(reader));
        }
        let mut r = mbox::Reader::new(reader, self.format);
        let detecting = self.mode == MboxMode::Detect;
        if detecting {
            r.start_capture();
        }
        let first = match r.next_message() {
            Ok(Some(m)) => m,
            // An empty mbox holds no message.
            Ok(None) => return None,
            Err(e) => return Some(failed(&name, e)),
        };
        if detecting {
            match r.at_end() {
                // One message: the input is the message, From_ line and all.
                Ok(true) => {
                    let raw = r.take_capture();
                    return Some(Item::Bytes { name, raw });
                }
                Ok(false) => drop(r.take_capture()),
                Err(e) => return Some(failed(&name, e)),
            }
        }
        let name: Arc<str> = name.into();
        self.current = Some(OpenMbox {
            name: name.clone(),
            reader: r,
        });
        Some(Item::Mbox {
            mbox: name,
            message: first,
        })
    }
}

impl Iterator for Items {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(open) = &mut self.current {
                match open.reader.next_message() {
                    Ok(Some(message)) => {
                        self.extra += 1;
                        if let Some(bar) = &self.bar {
                            bar.inc_length(1);
                        }
                        return Some(Item::Mbox {
                            mbox: open.name.clone(),
                            message,
                        });
                    }
                    Ok(None) => self.current = None,
                    Err(e) => {
                        let name = open.name.to_string();
                        self.current = None;
                        let error = Error::reading(Path::new(&name), e);
                        return Some(Item::Failed { name, error });
                    }
                }
                continue;
            }
            let item = match self.inputs.next()? {
                Input::MaildirEntry(p) => Some(Item::File(p)),
                Input::Named(p) => self.open_named(p),
                Input::Stdin => self.open_stdin(),
            };
            if let Some(item) = item {
                return Some(item);
            }
        }
    }
}

fn main() -> ExitCode {
    let args: Args = match parse_args() {
        Ok(a) => a,
        Err(code) => return code,
    };
    args.log.init(PROGRAM);
    finish(PROGRAM, args.plan().and_then(run))
}

fn run(plan: Plan) -> anyhow::Result<Exit> {
    // Parsing, decoding and hashing are the work: one worker per core.
    // The pool is built only for a batch of several messages, so a
    // single message (a loop over files, a pipeline) starts no threads.
    let mut run = Run {
        plan: &plan,
        out: PathOutput::stdout(plan.null),
        status: Exit::Ok,
        messages: 0,
        files: 0,
        skipped: 0,
        bar: None,
    };
    let items = run.expand_all(&plan.inputs);
    prepare_output(&plan.target, plan.flat)?;
    run.process(items)?;
    run.sync()?;
    if plan.stdin_paths {
        // Paths are dissected as they come (a producer like
        // `mail-sync --watch` never ends its output), batched by what is
        // already waiting.
        let paths = cli::stdin_paths(plan.null);
        while let Ok(first) = paths.recv() {
            let mut batch = vec![first?];
            while batch.len() < STDIN_BATCH {
                match paths.try_recv() {
                    Ok(p) => batch.push(p?),
                    Err(_) => break,
                }
            }
            let items = run.expand_all(&batch);
            run.process(items)?;
            run.sync()?;
        }
    }
    let Run {
        messages,
        files,
        skipped,
        status,
        ..
    } = run;
    tracing::info!("{messages} messages, {files} files, {skipped} messages already done");
    Ok(status)
}

/// How many waiting stdin paths are dissected together.
const STDIN_BATCH: usize = 64;

/// The state of one run: where output goes, the outcome so far.
struct Run<'p> {
    plan: &'p Plan,
    out: PathOutput<io::BufWriter<io::Stdout>>,
    status: Exit,
    messages: usize,
    files: usize,
    skipped: usize,
    /// Shown while many messages are dissected (see `Plan::progress`).
    bar: Option<ProgressBar>,
}

impl Run<'_> {
    /// Input arguments as messages; a missing one is reported (exit 66 at
    /// the end) and the rest go on.
    fn expand_all(&mut self, inputs: &[PathBuf]) -> Vec<Input> {
        let mut items = Vec::new();
        for input in inputs {
            match expand(input, self.plan.recursive) {
                Ok(mut found) => items.append(&mut found),
                Err(e) => {
                    cli::report(PROGRAM, &anyhow::Error::new(e));
                    self.status = self.status.worse(Exit::NoInput);
                }
            }
        }
        items
    }

    /// Dissects and writes `items` on all workers, reporting each in
    /// input order as soon as it and everything before it is done. Only a
    /// failure to write stdout ends the run.
    fn process(&mut self, inputs: Vec<Input>) -> anyhow::Result<()> {
        let plan = self.plan;
        let count = inputs.len() as u64;
        let mut items = Items::new(inputs, plan);
        let one = |item: Item| {
            let name = item.name();
            let result = if plan.flat {
                // Flat output is written in input order (in `finish`), so
                // the same names always get the same numbers.
                dissect_item(item, &plan.options).map(|d| Pending::Flat(Box::new(d)))
            } else {
                dissect_item(item, &plan.options).and_then(|d| {
                    dissect::write_dissection(&d, Target::PerMessage(&plan.target))
                        .map(Pending::Done)
                        .map_err(Into::into)
                })
            };
            (name, result)
        };
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let first = items.next();
        let second = items.next();
        if second.is_none() || threads < 2 {
            // One message (a loop over files, a pipeline): no threads.
            for item in first.into_iter().chain(second).chain(items) {
                let (name, result) = one(item);
                self.finish(name, result)?;
            }
            return self.out.flush().context("stdout");
        }
        if plan.progress {
            // An mbox makes the count grow as its messages are read.
            let bar = ProgressBar::new(count + items.extra);
            items.bar = Some(bar.clone());
            bar.set_style(
                ProgressStyle::with_template("dissecting {wide_bar} {pos}/{len} messages {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            self.bar = Some(bar);
        }
        let queue = std::sync::Mutex::new(first.into_iter().chain(second).chain(items).enumerate());
        let window = Window::default();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            for _ in 0..threads {
                let tx = tx.clone();
                let (queue, window, one) = (&queue, &window, &one);
                s.spawn(move || {
                    while !window.is_closed() {
                        let next = queue.lock().map(|mut q| q.next()).ok().flatten();
                        let Some((index, item)) = next else {
                            break;
                        };
                        // Looked up here, not for all inputs up front:
                        // output starts at once even for a huge maildir.
                        let size = item.size();
                        window.enter(index, size);
                        // A panic (a bug) fails this message only: a worker
                        // that died would leave the others waiting for it.
                        let name = item.name();
                        let done =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| one(item)))
                                .unwrap_or_else(|_| {
                                    let e =
                                        anyhow::anyhow!("internal error: the dissector panicked");
                                    (name, Err(e))
                                });
                        if tx.send((index, size, done)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            // Results arrive in any order; they are reported in input
            // order, and only then leave the window.
            let report = || {
                let mut waiting = std::collections::BTreeMap::new();
                let mut next = 0;
                for (index, size, result) in rx {
                    waiting.insert(index, (size, result));
                    while let Some((size, (name, result))) = waiting.remove(&next) {
                        self.finish(name, result)?;
                        if let Some(bar) = &self.bar {
                            bar.inc(1);
                        }
                        next += 1;
                        window.leave(next, size);
                    }
                    if waiting.is_empty() {
                        self.out.flush().context("stdout")?;
                    }
                }
                self.out.flush().context("stdout")
            };
            let reported = report();
            if let Some(bar) = self.bar.take() {
                bar.finish_and_clear();
            }
            if reported.is_err() {
                // Workers stop at their next message.
                window.close();
            }
            reported
        })
    }

    /// Reports one message's outcome, writing it first when flat.
    fn finish(&mut self, name: String, result: anyhow::Result<Pending>) -> anyhow::Result<()> {
        let plan = self.plan;
        let result = result.and_then(|p| match p {
            Pending::Done(w) => Ok(w),
            Pending::Flat(d) => {
                dissect::write_dissection(&d, Target::Flat(&plan.target)).map_err(Into::into)
            }
        });
        match result {
            Ok(w) => self.done(&w),
            Err(e) => {
                let e = e.context(name);
                self.report(&e);
                let code = if mailbot::exit::exit_for(e.as_ref()) == Exit::CantCreate {
                    Exit::CantCreate
                } else {
                    Exit::Partial
                };
                self.status = self.status.worse(code);
                Ok(())
            }
        }
    }

    /// With `--sync`, flushes what was written to disk: one call for the
    /// whole batch, never one per file.
    fn sync(&self) -> anyhow::Result<()> {
        if self.plan.sync {
            dissect::sync_output(&self.plan.target)?;
        }
        Ok(())
    }

    /// One error line on stderr, around the progress bar if one is shown.
    fn report(&self, e: &anyhow::Error) {
        match &self.bar {
            Some(bar) => bar.suspend(|| cli::report(PROGRAM, e)),
            None => cli::report(PROGRAM, e),
        }
    }

    /// Reports a message done and runs `--exec` on its new files.
    fn done(&mut self, w: &Written) -> anyhow::Result<()> {
        self.messages += 1;
        self.skipped += usize::from(w.skipped);
        self.files += w.files.len();
        emit(self.plan, w, &mut self.out)?;
        if let Some(t) = &self.plan.exec {
            // Only files this run wrote: a re-run from cron must not print
            // the same invoice again.
            let fresh = w
                .files
                .iter()
                .filter(|f| f.role == "attachment" && f.created);
            for f in fresh {
                if let Err(e) = run_command(t, &f.path, self.plan.exec_timeout) {
                    self.report(&e);
                    self.status = self.status.worse(Exit::Partial);
                }
            }
        }
        Ok(())
    }
}

/// How many bytes of messages may be in work or waiting to be reported
/// at once. A bigger message still goes when it is the next to report,
/// so memory stays near twice the largest message plus this.
const WINDOW_BYTES: u64 = 16 << 20;

/// The messages between the next one to report and the newest one
/// started: a worker waits before starting one that would take more than
/// [`WINDOW_BYTES`] into the window, unless it is the next to report
/// (which no later message can then hold up).
#[derive(Default)]
struct Window {
    state: std::sync::Mutex<WindowState>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct WindowState {
    /// Index of the next message to report.
    next: usize,
    /// Bytes of messages started and not yet reported.
    bytes: u64,
    /// The reporter stopped: nobody waits any more.
    closed: bool,
}

impl Window {
    fn enter(&self, index: usize, size: u64) {
        let Ok(mut s) = self.state.lock() else { return };
        while !(s.closed || index == s.next || s.bytes + size <= WINDOW_BYTES) {
            s = match self.changed.wait(s) {
                Ok(s) => s,
                Err(_) => return,
            };
        }
        s.bytes += size;
    }

    fn leave(&self, next: usize, size: u64) {
        if let Ok(mut s) = self.state.lock() {
            s.next = next;
            s.bytes = s.bytes.saturating_sub(size);
        }
        self.changed.notify_all();
    }

    fn is_closed(&self) -> bool {
        self.state.lock().map_or(true, |s| s.closed)
    }

    fn close(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.closed = true;
        }
        self.changed.notify_all();
    }
}

enum Pending {
    Done(Written),
    Flat(Box<dissect::Dissection>),
}

fn dissect_item(item: Item, options: &Options) -> anyhow::Result<dissect::Dissection> {
    let (raw, source, defects) = match item {
        Item::File(p) => (
            std::fs::read(&p).map_err(|e| Error::reading(&p, e))?,
            None,
            Vec::new(),
        ),
        Item::Bytes { raw, .. } => (raw, None, Vec::new()),
        Item::Mbox { mbox, message } => {
            if message.bytes.is_empty() {
                return Err(
                    Error::new(ErrorKind::BadInput, "", "not a message (it is empty)").into(),
                );
            }
            let source = dissect::Source {
                mbox: mbox.to_string(),
                message: message.number,
                offset: message.offset,
                envelope: String::from_utf8_lossy(&message.envelope).into_owned(),
            };
            (message.bytes, Some(source), message.defects)
        }
        Item::Failed { error, .. } => return Err(error.into()),
    };
    if raw.is_empty() {
        return Err(
            Error::new(ErrorKind::BadInput, "", "not a message (the file is empty)").into(),
        );
    }
    let mut d = dissect::dissect_bytes(&raw, options);
    d.source = source;
    // What the mbox reader guessed comes first: it is about the whole.
    let guessed = defects.into_iter().map(|detail| mailbot::mime::Defect {
        part: String::new(),
        kind: mailbot::mime::DefectKind::Mbox,
        detail,
    });
    d.defects.splice(0..0, guessed);
    for defect in &d.defects {
        tracing::debug!("part {}: {}", defect.part, defect.detail);
    }
    Ok(d)
}

fn emit(plan: &Plan, w: &Written, out: &mut PathOutput<impl io::Write>) -> anyhow::Result<()> {
    match &plan.output {
        Output::Paths => {
            for f in &w.files {
                out.path(&f.path).context("stdout")?;
            }
        }
        Output::Json => out.line(&w.json).context("stdout")?,
        Output::Commands(t) => {
            for f in w.files.iter().filter(|f| f.role == "attachment") {
                let cmd = shell::fill_template(t, &f.path.to_string_lossy());
                out.line(&cmd).context("stdout")?;
            }
        }
        Output::Nothing => {}
    }
    Ok(())
}

/// Runs `--exec` on one file: without mailbot's secret variables or
/// stdin, killed with its process group after `timeout`
/// ([`mailbot::child`]).
fn run_command(template: &str, path: &Path, timeout: std::time::Duration) -> anyhow::Result<()> {
    let argv = shell::split_template(template, &path.to_string_lossy())?;
    let object = format!("{}: {}", path.display(), argv[0]);
    let mut cmd = mailbot::child::command(&argv[0]);
    // No stdin: it may be the list of paths (--stdin), and a command in a
    // process group of its own must not read the terminal.
    cmd.args(&argv[1..]).stdin(Stdio::null());
    let status = mailbot::child::run(&mut cmd, timeout, &object)?.status(&object)?;
    if !status.success() {
        anyhow::bail!("{}: {} failed ({status})", path.display(), argv[0]);
    }
    Ok(())
}

/// Creates the output folder and checks that files can be made in it.
/// Only a flat folder holds temporary files of its own to clean up; in
/// per-message output they sit in the message folders, and scanning a
/// root of thousands of folders on every start would make a loop over
/// messages slower with each message.
fn prepare_output(dir: &Path, flat: bool) -> anyhow::Result<()> {
    mailbot::private::create_dir_all(dir).map_err(|e| Error::writing(dir, e))?;
    if flat {
        dissect::remove_stale_temps(dir);
    }
    let probe = dir.join(format!(".mail-dissect-probe-{}", std::process::id()));
    mailbot::private::create_new(&probe).map_err(|e| Error::writing(dir, e))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// An input argument as the messages it stands for.
fn expand(input: &Path, recursive: bool) -> mailbot::Result<Vec<Input>> {
    if input.as_os_str() == "-" {
        return Ok(vec![Input::Stdin]);
    }
    let meta = std::fs::metadata(input).map_err(|e| Error::reading(input, e))?;
    if !meta.is_dir() {
        return Ok(vec![Input::Named(input.to_path_buf())]);
    }
    let root = Maildir::at(input);
    let is_maildir = input.join("cur").is_dir() || input.join("new").is_dir();
    let mut folders = Vec::new();
    if is_maildir {
        folders.push(input.to_path_buf());
    }
    if recursive {
        folders.extend(root.subfolders()?.into_iter().map(|rel| input.join(rel)));
    }
    if folders.is_empty() {
        return Err(Error::new(
            ErrorKind::InputMissing,
            input.display().to_string(),
            if recursive {
                "no maildir folder (new/, cur/) in it"
            } else {
                "not a maildir (no new/ or cur/; -r searches subfolders)"
            },
        ));
    }
    let mut items = Vec::new();
    for folder in folders {
        for entry in Maildir::at(&folder).list()? {
            items.push(Input::MaildirEntry(entry.path));
        }
    }
    Ok(items)
}
