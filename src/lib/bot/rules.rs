//! Rules: the `[[rule]]` tables of the configuration, checked and given
//! meaning. A rule says which messages it wants (a notmuch query and/or
//! simple field patterns) and what to do with each of them.
//!
//! ```toml
//! [[rule]]
//! name = "invoices"                   # default: rule-1, rule-2, ...
//! account = "school"                  # default: every account
//! match = "tag:new and attachment:pdf" # notmuch query
//! from = "*@example.edu"              # glob, any address or the whole field
//! to = "me@*"                         # glob over To and Cc
//! subject = "*invoice*"               # glob, case-insensitive
//! attachment = "application/pdf"      # a part of this type (or list)
//! folder = ["INBOX", "Lists/*"]      # globs over the server folder name
//! dissect = { out = "~/pdfs", type = ["application/pdf"], flat = false }
//! print = "lpr -P office {}"          # or print = true, printer = "office"
//! run = "notify-send 'new file' {}"   # argv, no shell; env MAILBOT_*
//! reply = { body = "Received, thanks." }
//! forward = { to = ["archive@example.edu"] }
//! tag = ["+invoice", "-new"]
//! move = "Archive"
//! retries = 3                         # failures before tag `failed`
//! timeout = 600                       # seconds a `run` command may take
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::expand_tilde;
use crate::error::{Error, ErrorKind, Result};
use crate::index::TagChange;

/// Failures before a message is given up for a rule (tagged `failed`).
pub const DEFAULT_RETRIES: u32 = 3;

/// One rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Its name: the key of its exactly-once record.
    pub name: String,
    /// The account it applies to; `None` for all.
    pub account: Option<String>,
    /// A notmuch query the message must match.
    pub query: Option<String>,
    /// Glob over the From addresses (or the whole field).
    pub from: Option<String>,
    /// Glob over the To and Cc addresses (or the whole fields).
    pub to: Option<String>,
    /// Glob over the decoded subject.
    pub subject: Option<String>,
    /// Type patterns (`application/pdf`, `image/*`): some part must match.
    pub attachment: Vec<String>,
    /// Globs over the folder the file is in (server name, `/` between
    /// levels); `["INBOX"]` when the rule gives none. A special-use folder
    /// (Sent, Junk, Trash, Drafts) is matched only by its name written out,
    /// never by a wildcard.
    pub folders: Vec<String>,
    /// What to do, in this order.
    pub actions: Vec<Action>,
    /// Failures before giving up.
    pub retries: u32,
    /// How long a `run` command may take before it is killed (its
    /// process group too) and the action counts as failed.
    pub timeout: Duration,
}

/// One thing a rule does to a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write the message's files (as mail-dissect does).
    Dissect {
        /// Output folder.
        out: PathBuf,
        /// Keep only these types; empty keeps all.
        types: Vec<String>,
        /// All files straight into `out` instead of a folder per message.
        flat: bool,
    },
    /// Print one command per written file (or for the message file when
    /// nothing was written): the template with `{}` as the quoted path.
    Print {
        /// The template, `lpr {}` by default.
        template: String,
    },
    /// Run a command (argv, no shell) once per written file, or once for
    /// the message file; facts about the message in `MAILBOT_*` variables.
    Run {
        /// The command template.
        template: String,
    },
    /// Reply to the sender through the account's SMTP server.
    Reply {
        /// The reply's text.
        body: String,
    },
    /// Forward the message, attached whole, through the account's SMTP server.
    Forward {
        /// Recipients.
        to: Vec<String>,
    },
    /// Change notmuch tags of the message.
    Tag {
        /// `+tag` / `-tag`.
        changes: Vec<TagChange>,
    },
    /// Move the file into another local folder (by its server name).
    Move {
        /// The folder.
        folder: String,
    },
}

impl Action {
    /// A short word for reports.
    pub fn word(&self) -> &'static str {
        match self {
            Action::Dissect { .. } => "dissect",
            Action::Print { .. } => "print",
            Action::Run { .. } => "run",
            Action::Reply { .. } => "reply",
            Action::Forward { .. } => "forward",
            Action::Tag { .. } => "tag",
            Action::Move { .. } => "move",
        }
    }
}

const KEYS: &[&str] = &[
    "name",
    "account",
    "match",
    "from",
    "to",
    "subject",
    "attachment",
    "folder",
    "dissect",
    "print",
    "printer",
    "run",
    "reply",
    "forward",
    "tag",
    "move",
    "retries",
    "timeout",
];

/// The rule every embedded-default run uses when there is no
/// configuration: PDFs are dissected into `out` and a print command is
/// printed for each.
pub fn default_rule(out: &Path) -> Rule {
    Rule {
        name: "pdf".into(),
        account: None,
        query: None,
        from: None,
        to: None,
        subject: None,
        attachment: vec!["application/pdf".into()],
        folders: vec!["INBOX".into()],
        actions: vec![
            Action::Dissect {
                out: out.to_path_buf(),
                types: vec!["application/pdf".into()],
                flat: false,
            },
            Action::Print {
                template: "lpr {}".into(),
            },
        ],
        retries: DEFAULT_RETRIES,
        timeout: crate::child::DEFAULT_COMMAND_TIMEOUT,
    }
}

/// Checks and converts the `[[rule]]` tables. `home` expands `~`;
/// `origin` names the file in errors (exit 78).
pub fn parse_rules(
    tables: &[toml::Table],
    home: Option<&Path>,
    origin: &Path,
) -> Result<Vec<Rule>> {
    let mut rules: Vec<Rule> = Vec::new();
    for (i, table) in tables.iter().enumerate() {
        let rule = parse_rule(i, table, home).map_err(|why| {
            Error::new(
                ErrorKind::Config,
                origin.display().to_string(),
                format!("rule {}: {why}", i + 1),
            )
        })?;
        if rules.iter().any(|r| r.name == rule.name) {
            return Err(Error::new(
                ErrorKind::Config,
                origin.display().to_string(),
                format!("rule {}: the name {:?} is used twice", i + 1, rule.name),
            ));
        }
        rules.push(rule);
    }
    Ok(rules)
}

fn parse_rule(i: usize, t: &toml::Table, home: Option<&Path>) -> std::result::Result<Rule, String> {
    if let Some(k) = t.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!("unknown key {k:?} (known: {})", KEYS.join(", ")));
    }
    let string = |key: &str| -> std::result::Result<Option<String>, String> {
        match t.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{key} must be a string")),
        }
    };
    let strings = |v: &toml::Value, key: &str| -> std::result::Result<Vec<String>, String> {
        match v {
            toml::Value::String(s) => Ok(vec![s.clone()]),
            toml::Value::Array(a) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("{key} must hold strings"))
                })
                .collect(),
            _ => Err(format!("{key} must be a string or a list of strings")),
        }
    };
    let name = string("name")?.unwrap_or_else(|| format!("rule-{}", i + 1));
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err("name must be a non-empty line".into());
    }
    let attachment = match t.get("attachment") {
        Some(v) => strings(v, "attachment")?
            .iter()
            .map(|a| type_pattern(a).map_err(|why| format!("attachment: {why}")))
            .collect::<std::result::Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let folders = match t.get("folder") {
        Some(v) => strings(v, "folder")?,
        None => vec!["INBOX".to_string()],
    };
    if folders.is_empty() {
        return Err("folder needs at least one name or pattern".into());
    }
    for (key, pattern) in [
        ("from", t.get("from")),
        ("to", t.get("to")),
        ("subject", t.get("subject")),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.and_then(|v| v.as_str()).map(|s| (k, s)))
    .chain(folders.iter().map(|f| ("folder", f.as_str())))
    {
        check_glob(pattern).map_err(|why| format!("{key}: {pattern:?}: {why}"))?;
    }
    if let Some(q) = string("match")? {
        check_query(&q).map_err(|why| format!("match: {q:?}: {why}"))?;
    }
    let mut actions = Vec::new();
    if let Some(v) = t.get("dissect") {
        let table = v
            .as_table()
            .ok_or("dissect must be a table: { out = \"DIR\", type = [...], flat = false }")?;
        if let Some(k) = table
            .keys()
            .find(|k| !["out", "type", "flat"].contains(&k.as_str()))
        {
            return Err(format!(
                "dissect: unknown key {k:?} (known: out, type, flat)"
            ));
        }
        let out = table
            .get("out")
            .and_then(|v| v.as_str())
            .ok_or("dissect needs out = \"DIR\"")?;
        let types = match table.get("type") {
            Some(v) => strings(v, "dissect.type")?,
            None => Vec::new(),
        };
        let flat = match table.get("flat") {
            None => false,
            Some(v) => v.as_bool().ok_or("dissect.flat must be true or false")?,
        };
        actions.push(Action::Dissect {
            out: expand_tilde(Path::new(out), home),
            types,
            flat,
        });
    }
    let printer = string("printer")?;
    match t.get("print") {
        None if printer.is_some() => return Err("printer is set but print is not".into()),
        None => {}
        Some(toml::Value::Boolean(false)) => {}
        Some(toml::Value::Boolean(true)) => actions.push(Action::Print {
            template: match &printer {
                Some(p) => format!("lpr -P {} {{}}", crate::shell::quote(p)),
                None => "lpr {}".into(),
            },
        }),
        Some(toml::Value::String(s)) => {
            if printer.is_some() {
                return Err(
                    "give either print = \"TEMPLATE\" or printer = \"NAME\", not both".into(),
                );
            }
            actions.push(Action::Print {
                template: s.clone(),
            })
        }
        Some(_) => return Err("print must be true or a template string like \"lpr {}\"".into()),
    }
    if let Some(run) = string("run")? {
        crate::shell::split_template(&run, "x").map_err(|e| format!("run: {e}"))?;
        actions.push(Action::Run { template: run });
    }
    if let Some(v) = t.get("reply") {
        let body = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Table(r) => r
                .get("body")
                .and_then(|b| b.as_str())
                .ok_or("reply needs body = \"TEXT\"")?
                .to_string(),
            _ => return Err("reply must be a table: { body = \"TEXT\" }".into()),
        };
        actions.push(Action::Reply { body });
    }
    if let Some(v) = t.get("forward") {
        let to = match v {
            toml::Value::Table(f) => {
                strings(f.get("to").ok_or("forward needs to = [...]")?, "forward.to")?
            }
            other => strings(other, "forward")?,
        };
        for a in &to {
            crate::compose::Address::parse(a).map_err(|e| format!("forward: {e}"))?;
        }
        if to.is_empty() {
            return Err("forward needs at least one address".into());
        }
        actions.push(Action::Forward { to });
    }
    if let Some(v) = t.get("tag") {
        let changes = strings(v, "tag")?
            .iter()
            .map(|c| TagChange::parse(c).ok_or_else(|| format!("tag {c:?}: write +TAG or -TAG")))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        actions.push(Action::Tag { changes });
    }
    if let Some(folder) = string("move")? {
        if folder.is_empty() {
            return Err("move needs a folder name".into());
        }
        actions.push(Action::Move { folder });
    }
    if actions.is_empty() {
        return Err("no action: give dissect, print, run, reply, forward, tag or move".into());
    }
    let retries = match t.get("retries") {
        None => DEFAULT_RETRIES,
        Some(toml::Value::Integer(n)) if (1..=1000).contains(n) => *n as u32,
        Some(_) => return Err("retries must be a number from 1 to 1000".into()),
    };
    let timeout = match t.get("timeout") {
        None => crate::child::DEFAULT_COMMAND_TIMEOUT,
        Some(toml::Value::Integer(n)) if (1..=86_400).contains(n) => Duration::from_secs(*n as u64),
        Some(toml::Value::Float(f)) if (0.001..=86_400.0).contains(f) => {
            Duration::from_secs_f64(*f)
        }
        Some(_) => return Err("timeout must be seconds, from 1 to 86400".into()),
    };
    Ok(Rule {
        name,
        account: string("account")?,
        query: string("match")?,
        from: string("from")?,
        to: string("to")?,
        subject: string("subject")?,
        attachment,
        folders,
        actions,
        retries,
        timeout,
    })
}

/// An attachment type pattern: `type/subtype`, `type/*`, or a file
/// extension (`pdf`), which is taken for its type (`application/pdf`).
fn type_pattern(text: &str) -> std::result::Result<String, String> {
    let t = text.trim().to_ascii_lowercase();
    if let Some((main, sub)) = t.split_once('/') {
        let token = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
        };
        if token(main) && (sub == "*" || token(sub)) {
            return Ok(t);
        }
        return Err(format!(
            "{text:?} is not a type like application/pdf or image/*"
        ));
    }
    let ext = t.trim_start_matches('.');
    match mime_guess::from_ext(ext).first() {
        Some(m) if !ext.is_empty() => Ok(m.essence_str().to_string()),
        _ => Err(format!(
            "{text:?} is neither a type (application/pdf, image/*) nor a known file extension"
        )),
    }
}

/// A glob must have its `[` classes closed.
fn check_glob(pattern: &str) -> std::result::Result<(), String> {
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '[' {
            if chars.peek() == Some(&'!') {
                chars.next();
            }
            if chars.peek() == Some(&']') {
                chars.next();
            }
            if !chars.by_ref().any(|c| c == ']') {
                return Err("'[' without its ']'".into());
            }
        }
    }
    Ok(())
}

/// A notmuch query must be balanced (parentheses outside quotes, quotes)
/// and must not end in an operator, so that no text in it can reach out
/// of the parentheses it is put in to narrow it to one message.
fn check_query(q: &str) -> std::result::Result<(), String> {
    let (mut depth, mut quoted) = (0i32, false);
    for c in q.chars() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth < 0 {
                    return Err("')' without its '('".into());
                }
            }
            _ => {}
        }
    }
    if quoted {
        return Err("a '\"' is not closed".into());
    }
    if depth != 0 {
        return Err("a '(' is not closed".into());
    }
    let words: Vec<String> = q
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let op =
        |w: Option<&String>| w.is_some_and(|w| ["and", "or", "not", "xor"].contains(&w.as_str()));
    if words.is_empty() {
        return Err("empty query".into());
    }
    if op(words.last()) || words.first().is_some_and(|w| w == "and" || w == "or") {
        return Err("an operator without its operand".into());
    }
    Ok(())
}

/// Case-insensitive glob: `*` any run, `?` one character, `[abc]`,
/// `[a-z]` and `[!abc]` one of (or none of) a set.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    glob_at(&p, &t)
}

fn glob_at(p: &[char], t: &[char]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        let step = if pi < p.len() {
            match p[pi] {
                '?' => Some(1),
                '[' => class_at(&p[pi..], t[ti]),
                '*' => None,
                c if c == t[ti] => Some(1),
                _ => Some(0),
            }
        } else {
            Some(0)
        };
        match step {
            Some(n) if n > 0 => {
                pi += n;
                ti += 1;
            }
            None => {
                star = Some(pi);
                mark = ti;
                pi += 1;
            }
            Some(_) => match star {
                Some(s) => {
                    pi = s + 1;
                    mark += 1;
                    ti = mark;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// At a `[` class: `Some(length of the class)` when `c` is in it,
/// `Some(0)` when not. An unclosed `[` is a plain character.
fn class_at(p: &[char], c: char) -> Option<usize> {
    let Some(end) = p.iter().skip(2).position(|&x| x == ']').map(|i| i + 2) else {
        return Some(usize::from(c == '['));
    };
    let (negated, body) = match p.get(1) {
        Some('!') | Some('^') => (true, &p[2..end]),
        _ => (false, &p[1..end]),
    };
    let mut hit = false;
    let mut i = 0;
    while i < body.len() {
        if i + 2 < body.len() && body[i + 1] == '-' {
            hit |= body[i] <= c && c <= body[i + 2];
            i += 3;
        } else {
            hit |= body[i] == c;
            i += 1;
        }
    }
    Some(if hit != negated { end + 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Result<Vec<Rule>> {
        let config = crate::config::Config::parse(text, Path::new("c.toml")).unwrap();
        parse_rules(
            &config.rule,
            Some(Path::new("/home/u")),
            Path::new("c.toml"),
        )
    }

    #[test]
    fn a_full_rule() {
        let r = rules(
            r#"
[[rule]]
name = "invoices"
account = "school"
match = "tag:new and attachment:pdf"
from = "*@example.edu"
subject = "*invoice*"
attachment = ["application/pdf", "image/*"]
folder = ["INBOX", "Lists/*"]
dissect = { out = "~/pdfs", type = ["application/pdf"] }
print = true
printer = "office 2"
run = "notify-send 'new file' {}"
reply = { body = "Thanks" }
forward = { to = ["a@example.org"] }
tag = ["+invoice", "-new"]
move = "Archive"
retries = 5
timeout = 30
"#,
        )
        .unwrap();
        let r = &r[0];
        assert_eq!(r.name, "invoices");
        assert_eq!(r.attachment, ["application/pdf", "image/*"]);
        assert_eq!(r.retries, 5);
        assert_eq!(r.timeout, Duration::from_secs(30));
        let words: Vec<_> = r.actions.iter().map(Action::word).collect();
        assert_eq!(
            words,
            ["dissect", "print", "run", "reply", "forward", "tag", "move"]
        );
        assert_eq!(
            r.actions[0],
            Action::Dissect {
                out: "/home/u/pdfs".into(),
                types: vec!["application/pdf".into()],
                flat: false
            }
        );
        assert_eq!(
            r.actions[1],
            Action::Print {
                template: "lpr -P 'office 2' {}".into()
            }
        );
        assert_eq!(
            r.actions[5],
            Action::Tag {
                changes: vec![
                    TagChange::Add("invoice".into()),
                    TagChange::Remove("new".into())
                ]
            }
        );
    }

    #[test]
    fn mistakes_name_the_rule_and_the_key() {
        for (text, want) in [
            (
                "[[rule]]\nprint = true\nfrm = 'x'\n",
                "rule 1: unknown key \"frm\"",
            ),
            ("[[rule]]\nmatch = 'x'\n", "rule 1: no action"),
            ("[[rule]]\ntag = ['new']\n", "write +TAG or -TAG"),
            ("[[rule]]\nprint = 3\n", "print must be"),
            (
                "[[rule]]\ndissect = { type = ['a/b'] }\n",
                "dissect needs out",
            ),
            (
                "[[rule]]\nprint = true\n[[rule]]\nrun = \"x '\"\n",
                "rule 2: run",
            ),
            (
                "[[rule]]\nname='a'\nprint=true\n[[rule]]\nname='a'\nprint=true\n",
                "used twice",
            ),
            (
                "[[rule]]\nforward = { to = ['not an address'] }\n",
                "forward",
            ),
            ("[[rule]]\nprint = 'lpr {}'\nprinter = 'x'\n", "not both"),
            ("[[rule]]\nrun = 'x'\ntimeout = 0\n", "timeout must be"),
            (
                "[[rule]]\nmatch = 'tag:new and ('\nprint = true\n",
                "rule 1: match",
            ),
            (
                "[[rule]]\nmatch = 'a) or (b'\nprint = true\n",
                "rule 1: match",
            ),
            (
                "[[rule]]\nmatch = 'tag:new and'\nprint = true\n",
                "operator",
            ),
            (
                "[[rule]]\nsubject = '[abc'\nprint = true\n",
                "rule 1: subject",
            ),
            (
                "[[rule]]\nfolder = ['INBOX', 'Lists/[x']\nprint = true\n",
                "folder",
            ),
            (
                "[[rule]]\nattachment = 'nonsense-ext'\nprint = true\n",
                "attachment",
            ),
            (
                "[[rule]]\nattachment = 'a/b c'\nprint = true\n",
                "attachment",
            ),
            ("[[rule]]\nrun = 'x'\ntimeout = '1h'\n", "timeout must be"),
        ] {
            let err = rules(text).unwrap_err();
            assert_eq!(err.exit().code(), 78);
            assert!(err.to_string().contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn names_default_to_their_place() {
        let r = rules("[[rule]]\nprint = true\n[[rule]]\ntag = '+x'\n").unwrap();
        assert_eq!(
            (r[0].name.as_str(), r[1].name.as_str()),
            ("rule-1", "rule-2")
        );
        assert_eq!(
            r[0].actions,
            [Action::Print {
                template: "lpr {}".into()
            }]
        );
    }

    #[test]
    fn globs() {
        assert!(!glob("*@example.edu", "Ann <ann@Example.EDU>"));
        assert!(glob("*@example.edu", "ann@Example.EDU"));
        assert!(glob("*invoice*", "Your INVOICE 42"));
        assert!(glob("in?ox", "INBOX"));
        assert!(glob("*", ""));
        assert!(!glob("a*b", "acbx"));
        assert!(glob("a*b*c", "aXbYbZc"));
        assert!(glob("[abc]x", "Bx"));
        assert!(!glob("[abc]x", "dx"));
        assert!(glob("r[0-9]*", "R2D2"));
        assert!(glob("[!a]*", "bob") && !glob("[!a]*", "alice"));
        assert!(glob("*[x]", "abx"));
    }

    #[test]
    fn attachments_are_type_patterns() {
        let r = rules(
            "[[rule]]\nattachment = ['pdf', '.PNG', 'image/*', 'Application/PDF']\nprint = true\n",
        )
        .unwrap();
        assert_eq!(
            r[0].attachment,
            ["application/pdf", "image/png", "image/*", "application/pdf"]
        );
        assert_eq!(r[0].folders, ["INBOX"]);
    }
}
