//! Which source folder goes to which destination folder.
//!
//! A source name is first made neutral: the personal namespace prefix
//! taken off (`INBOX.Sent Items` with prefix `INBOX.` → `Sent Items`) and
//! the hierarchy written with `/` whatever the server's delimiter. The
//! patterns of `--folder` and `--exclude` and the renames match neutral
//! names; INBOX stays INBOX. A folder with a special-use attribute
//! (`\Sent`, `\Trash`, ...) goes to the destination folder with the same
//! attribute when there is one, so Exchange's "Sent Items" lands in
//! Dovecot's "Sent". The destination name is the neutral one with the
//! destination's prefix and delimiter; a destination delimiter inside a
//! name part becomes `_`.
//!
//! It does not create folders (the pass does) and does not look at
//! messages.

use crate::error::{Error, ErrorKind, Result};
use crate::imap::{Mailbox, Namespace};
use crate::sync::folder_matches;

/// What the user asked of the folder mapping.
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    /// Only folders matching one of these (neutral names, `*` and `%`);
    /// empty means all.
    pub include: Vec<String>,
    /// Folders matching one of these are left out.
    pub exclude: Vec<String>,
    /// `FROM=TO` renames over neutral names; a `*` in FROM takes any text,
    /// which a `*` in TO repeats. The first that matches applies.
    pub renames: Vec<(String, String)>,
    /// Map special-use folders by attribute (on by default).
    pub by_special_use: bool,
}

impl Mapping {
    /// Parses a `FROM=TO` rename.
    pub fn parse_rename(text: &str) -> Result<(String, String)> {
        match text.split_once('=') {
            Some((from, to)) if !from.is_empty() && !to.is_empty() => {
                if from.matches('*').count() > 1 || to.matches('*').count() > 1 {
                    return Err(Error::new(
                        ErrorKind::Usage,
                        format!("--rename {text:?}"),
                        "at most one * on each side",
                    ));
                }
                Ok((from.to_string(), to.to_string()))
            }
            _ => Err(Error::new(
                ErrorKind::Usage,
                format!("--rename {text:?}"),
                "expected FROM=TO (e.g. 'Sent Items=Sent' or 'Archive/*=Old/*')",
            )),
        }
    }
}

/// One side's naming: prefix and delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    /// The personal namespace prefix.
    pub prefix: String,
    /// The hierarchy delimiter.
    pub delimiter: Option<char>,
}

impl Naming {
    /// From NAMESPACE when the server has it, else from LIST.
    pub fn of(namespace: Option<&Namespace>, mailboxes: &[Mailbox]) -> Naming {
        let listed = mailboxes
            .iter()
            .find(|m| m.name == "INBOX")
            .or(mailboxes.first())
            .and_then(|m| m.delimiter);
        match namespace {
            Some(n) => Naming {
                prefix: n.prefix.clone(),
                delimiter: n.delimiter.or(listed),
            },
            None => Naming {
                prefix: String::new(),
                delimiter: listed,
            },
        }
    }

    /// The neutral name of a folder of this side (`/` between levels).
    pub fn neutral(&self, name: &str) -> String {
        if name.eq_ignore_ascii_case("INBOX") {
            return "INBOX".into();
        }
        let rest = name.strip_prefix(self.prefix.as_str()).unwrap_or(name);
        match self.delimiter {
            Some(d) if d != '/' => rest
                .split(d)
                .map(|p| p.replace('/', "_"))
                .collect::<Vec<_>>()
                .join("/"),
            _ => rest.to_string(),
        }
    }

    /// This side's name for a neutral name.
    pub fn local(&self, neutral: &str) -> String {
        if neutral.eq_ignore_ascii_case("INBOX") {
            return "INBOX".into();
        }
        let joined = match self.delimiter {
            Some(d) if d != '/' => neutral
                .split('/')
                .map(|p| p.replace(d, "_"))
                .collect::<Vec<_>>()
                .join(&d.to_string()),
            _ => neutral.to_string(),
        };
        format!("{}{joined}", self.prefix)
    }
}

/// A source folder and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderPair {
    /// The source folder.
    pub source: Mailbox,
    /// The destination folder's name (UTF-8).
    pub destination: String,
    /// The destination folder when it exists already.
    pub existing: Option<Mailbox>,
}

/// The folder pairs, INBOX first, then by source name.
pub fn pair_folders(
    mapping: &Mapping,
    source: &[Mailbox],
    source_naming: &Naming,
    destination: &[Mailbox],
    destination_naming: &Naming,
) -> Vec<FolderPair> {
    let mut out = Vec::new();
    for m in source.iter().filter(|m| m.selectable()) {
        let neutral = source_naming.neutral(&m.name);
        let wanted = mapping.include.is_empty()
            || mapping
                .include
                .iter()
                .any(|p| folder_matches(p, &neutral, Some('/')));
        if !wanted
            || mapping
                .exclude
                .iter()
                .any(|p| folder_matches(p, &neutral, Some('/')))
        {
            continue;
        }
        let renamed = mapping
            .renames
            .iter()
            .find_map(|(from, to)| rename(from, to, &neutral));
        let by_use = match (&renamed, m.special_use()) {
            (None, Some(attr)) if mapping.by_special_use => destination
                .iter()
                .find(|d| d.selectable() && d.special_use() == Some(attr))
                .map(|d| d.name.clone()),
            _ => None,
        };
        let name = by_use
            .unwrap_or_else(|| destination_naming.local(renamed.as_deref().unwrap_or(&neutral)));
        let existing = destination
            .iter()
            .find(|d| d.selectable() && same_name(&d.name, &name))
            .cloned();
        out.push(FolderPair {
            source: m.clone(),
            destination: name,
            existing,
        });
    }
    out.sort_by(|a, b| {
        let key = |p: &FolderPair| {
            (
                !p.source.name.eq_ignore_ascii_case("INBOX"),
                p.source.name.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    out
}

fn same_name(a: &str, b: &str) -> bool {
    a == b || (a.eq_ignore_ascii_case("INBOX") && b.eq_ignore_ascii_case("INBOX"))
}

/// `neutral` renamed by `from=to`, if `from` matches it.
fn rename(from: &str, to: &str, neutral: &str) -> Option<String> {
    match from.split_once('*') {
        None => (from == neutral).then(|| to.to_string()),
        Some((head, tail)) => {
            if neutral.len() < head.len() + tail.len()
                || !neutral.starts_with(head)
                || !neutral.ends_with(tail)
            {
                return None;
            }
            let middle = &neutral[head.len()..neutral.len() - tail.len()];
            Some(to.replacen('*', middle, 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(name: &str, d: char, attrs: &[&str]) -> Mailbox {
        Mailbox {
            name: name.into(),
            raw: crate::imap::encode_mailbox_name(name),
            delimiter: Some(d),
            attributes: attrs.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn names_are_mapped_across_prefix_delimiter_and_special_use() {
        let source = vec![
            mailbox("INBOX", '.', &[]),
            mailbox("INBOX.Sent Items", '.', &["\\Sent"]),
            mailbox("INBOX.Re\u{e7}us", '.', &["\\HasChildren"]),
            mailbox("INBOX.Re\u{e7}us.2024/25", '.', &[]),
            mailbox("INBOX.Junk", '.', &["\\Junk"]),
            mailbox("INBOX.Archive.Old", '.', &[]),
            mailbox("INBOX.Parent", '.', &["\\Noselect"]),
        ];
        let sn = Naming {
            prefix: "INBOX.".into(),
            delimiter: Some('.'),
        };
        let destination = vec![
            mailbox("INBOX", '/', &[]),
            mailbox("Sent", '/', &["\\Sent"]),
        ];
        let dn = Naming {
            prefix: String::new(),
            delimiter: Some('/'),
        };
        let mapping = Mapping {
            exclude: vec!["Junk".into()],
            renames: vec![("Archive/*".into(), "Old mail/*".into())],
            by_special_use: true,
            ..Mapping::default()
        };
        let pairs = pair_folders(&mapping, &source, &sn, &destination, &dn);
        let got: Vec<(&str, &str, bool)> = pairs
            .iter()
            .map(|p| {
                (
                    p.source.name.as_str(),
                    p.destination.as_str(),
                    p.existing.is_some(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("INBOX", "INBOX", true),
                ("INBOX.Archive.Old", "Old mail/Old", false),
                ("INBOX.Re\u{e7}us", "Re\u{e7}us", false),
                ("INBOX.Re\u{e7}us.2024/25", "Re\u{e7}us/2024_25", false),
                ("INBOX.Sent Items", "Sent", true),
            ]
        );
        // Back the other way: '/' source, '.' destination with a prefix.
        assert_eq!(sn.local("a.b/c"), "INBOX.a_b.c");
        assert_eq!(dn.neutral("a/b"), "a/b");
        assert_eq!(
            rename("Sent Items", "Sent", "Sent Items").as_deref(),
            Some("Sent")
        );
        assert_eq!(rename("A*", "B*", "A"), Some("B".into()));
        assert_eq!(rename("A*Z", "B", "AZ"), Some("B".into()));
        assert_eq!(rename("A*Z", "B", "Z"), None);
        assert!(Mapping::parse_rename("x").is_err());
        assert!(Mapping::parse_rename("a*b*=c").is_err());
    }
}
