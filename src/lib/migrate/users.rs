//! The users CSV of a many-mailbox migration, and the deterministic
//! shard split.
//!
//! The file has a header row naming its columns: `source_user` (required),
//! `destination_user` (default: the source user), and for each side
//! either `…_password` or `…_password_command`, or neither (master-user
//! and OAuth2 logins need no per-user secret). Fields follow RFC 4180
//! ([`crate::batch::parse_csv`]): commas, line breaks and `""` (a quote)
//! inside double quotes, CRLF or LF line ends; a UTF-8 byte-order mark
//! is skipped. Empty lines and lines starting with `#` are skipped. A
//! file with a password column is refused unless only its owner can read
//! it.
//!
//! A mailbox's shard is the FNV-1a hash of its source user modulo the
//! shard count: the same user lands in the same shard whatever the
//! order of the rows or which rows were added, so a rerun of shard 3
//! redoes exactly shard 3.

use std::fmt;

use crate::config::Secret;
use crate::error::{Error, ErrorKind, Result};

/// Where a password comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The password itself.
    Given(Secret),
    /// A command whose first output line is the password.
    Command(String),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Given(_) => f.write_str("Given(<hidden>)"),
            SecretSource::Command(c) => f.debug_tuple("Command").field(c).finish(),
        }
    }
}

impl SecretSource {
    /// The secret (running the command when there is one).
    pub fn resolve(&self, what: &str) -> Result<Secret> {
        match self {
            SecretSource::Given(s) => Ok(s.clone()),
            SecretSource::Command(c) => crate::config::secret_from_command(c, what),
        }
    }
}

/// One row of the CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// The line it came from (1 is the header).
    pub line: usize,
    /// Login (or mailbox) name on the source.
    pub source_user: String,
    /// Login (or mailbox) name on the destination.
    pub destination_user: String,
    /// The source password, if the file gives one.
    pub source_secret: Option<SecretSource>,
    /// The destination password, if the file gives one.
    pub destination_secret: Option<SecretSource>,
}

/// The rows of users CSV `text`; `origin` names it in errors. Also says
/// whether the file holds passwords (so its mode must be checked).
///
/// Errors are bad input (exit 65) naming the line, and the column when
/// one field is at fault: a field that is not RFC 4180, a row with more
/// or fewer fields than the header, a column named twice, a source user
/// listed twice (two jobs would move the same mailbox at once), an empty
/// user or one with control characters.
pub fn parse(text: &str, origin: &str) -> Result<(Vec<UserRow>, bool)> {
    let bad = |line: usize, why: String| {
        Error::new(ErrorKind::BadInput, format!("{origin}: line {line}"), why)
    };
    // Spreadsheets save "CSV UTF-8" with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let parsed = crate::batch::parse_csv(text).map_err(|e| {
        Error::new(
            ErrorKind::BadInput,
            format!("{origin}: {}", e.object()),
            e.detail().to_string(),
        )
    })?;
    let mut lines = parsed
        .into_iter()
        .filter(|(_, fields)| !fields.first().is_some_and(|f| f.starts_with('#')))
        .filter(|(_, fields)| fields.iter().any(|f| !f.trim().is_empty()));
    let Some((header_line, columns)) = lines.next() else {
        return Err(Error::new(
            ErrorKind::BadInput,
            origin,
            "empty: expected a header row (source_user,destination_user,...)",
        ));
    };
    let columns: Vec<String> = columns.iter().map(|c| c.trim().to_string()).collect();
    const KNOWN: [&str; 6] = [
        "source_user",
        "destination_user",
        "source_password",
        "destination_password",
        "source_password_command",
        "destination_password_command",
    ];
    for (i, c) in columns.iter().enumerate() {
        if !KNOWN.contains(&c.as_str()) {
            return Err(bad(
                header_line,
                format!(
                    "column {}: unknown column {c:?} (known: {})",
                    i + 1,
                    KNOWN.join(", ")
                ),
            ));
        }
        if let Some(first) = columns[..i].iter().position(|o| o == c) {
            return Err(bad(
                header_line,
                format!("column {}: {c:?} is column {} already", i + 1, first + 1),
            ));
        }
    }
    let at = |name: &str| columns.iter().position(|c| c == name);
    let Some(source_at) = at("source_user") else {
        return Err(bad(header_line, "no source_user column".into()));
    };
    for side in ["source", "destination"] {
        if at(&format!("{side}_password")).is_some()
            && at(&format!("{side}_password_command")).is_some()
        {
            return Err(bad(
                header_line,
                format!("both {side}_password and {side}_password_command: give one"),
            ));
        }
    }
    let holds_passwords = at("source_password").is_some() || at("destination_password").is_some();
    let mut rows: Vec<UserRow> = Vec::new();
    for (n, values) in lines {
        if values.len() != columns.len() {
            return Err(bad(
                n,
                format!(
                    "{} fields where the header has {}",
                    values.len(),
                    columns.len()
                ),
            ));
        }
        let field =
            |i: usize, why: &str| bad(n, format!("column {} ({}): {why}", i + 1, columns[i]));
        for (i, v) in values.iter().enumerate() {
            // A user or password goes into an IMAP command: no line
            // breaks or other control characters (a password command is a
            // shell command line, where a newline would be a second one).
            if v.chars().any(char::is_control) {
                return Err(field(i, "a control character (line break, tab, ...)"));
            }
        }
        let get = |name: &str| {
            at(name)
                .map(|i| values[i].clone())
                .filter(|v| !v.is_empty())
        };
        let source_user = values[source_at].trim().to_string();
        if source_user.is_empty() {
            return Err(field(source_at, "empty"));
        }
        if let Some(earlier) = rows.iter().find(|r| r.source_user == source_user) {
            return Err(field(
                source_at,
                &format!(
                    "{source_user:?} is on line {} already (one row per source mailbox)",
                    earlier.line
                ),
            ));
        }
        let secret = |side: &str| {
            get(&format!("{side}_password"))
                .map(|p| SecretSource::Given(Secret::new(p)))
                .or_else(|| get(&format!("{side}_password_command")).map(SecretSource::Command))
        };
        rows.push(UserRow {
            line: n,
            destination_user: get("destination_user")
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| source_user.clone()),
            source_user,
            source_secret: secret("source"),
            destination_secret: secret("destination"),
        });
    }
    Ok((rows, holds_passwords))
}

/// A shard selection `I/N`: shard I (0-based) of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, 0 ≤ index < count.
    pub index: u32,
    /// How many shards.
    pub count: u32,
}

impl Shard {
    /// Parses `I/N`.
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = || {
            Error::new(
                ErrorKind::Usage,
                format!("--shard {text:?}"),
                "expected I/N with 0 <= I < N (e.g. 0/4 .. 3/4; Kubernetes' JOB_COMPLETION_INDEX is I)",
            )
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether the mailbox of `source_user` belongs to this shard.
    pub fn holds(&self, source_user: &str) -> bool {
        shard_of(source_user, self.count) == self.index
    }
}

/// The shard (0-based, of `count`) a source user belongs to.
pub fn shard_of(source_user: &str, count: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in source_user.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % u64::from(count.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_with_quotes_and_commands() {
        let text = "# users\nsource_user,destination_user,source_password,destination_password_command\n\
                    alice,alice@new.example,\"pa,ss\"\"w\",pass show new/alice\n\
                    \n\
                    bob,,x,\n";
        let (rows, passwords) = parse(text, "users.csv").unwrap();
        assert!(passwords);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].line, 3);
        assert_eq!(rows[0].destination_user, "alice@new.example");
        assert_eq!(
            rows[0].source_secret,
            Some(SecretSource::Given(Secret::new("pa,ss\"w".into())))
        );
        assert_eq!(
            rows[0].destination_secret,
            Some(SecretSource::Command("pass show new/alice".into()))
        );
        assert_eq!(rows[1].destination_user, "bob");
        assert_eq!(rows[1].destination_secret, None);
        let (rows, passwords) = parse("source_user\ncarol\n", "u").unwrap();
        assert!(!passwords && rows[0].source_secret.is_none());
    }

    #[test]
    fn csv_as_spreadsheets_write_it() {
        // A byte-order mark, CRLF, and a quoted password with a comma, a
        // doubled quote and the header's columns in another order.
        let text = "\u{feff}source_password,source_user\r\n\"a,b\"\"c\",alice\r\n\r\n";
        let (rows, passwords) = parse(text, "u.csv").unwrap();
        assert!(passwords);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].source_user, "alice");
        assert_eq!(
            rows[0].source_secret,
            Some(SecretSource::Given(Secret::new("a,b\"c".into())))
        );
        // A quoted field may span lines: the next row's line is right.
        let text = "source_user,destination_user\n\"alice\",\"x\"\n\"bob\",\n";
        let (rows, _) = parse(text, "u.csv").unwrap();
        assert_eq!(
            (rows[1].line, rows[1].destination_user.as_str()),
            (3, "bob")
        );
    }

    #[test]
    fn bad_csv_names_the_line() {
        for (text, want) in [
            ("", "empty"),
            ("user\nx\n", "unknown column"),
            ("destination_user\nx\n", "no source_user"),
            ("source_user,source_password\na\n", "line 2: 1 fields"),
            ("source_user\n\"a\n", "not closed"),
            (
                "source_user,source_password,source_password_command\n",
                "both",
            ),
            (
                "source_user,source_user\nalice,bob\n",
                "line 1: column 2: \"source_user\" is column 1 already",
            ),
            (
                "source_user,source_password\nalice,a\nbob,b\nalice,c\n",
                "line 4: column 1 (source_user): \"alice\" is on line 2 already",
            ),
            (
                "source_user,source_password\nbob,\"a\nb\"\n",
                "line 2: column 2 (source_password): a control character",
            ),
            (
                "source_user,destination_user\nbob,\"x\r\nA1 DELETE INBOX\"\n",
                "line 2: column 2 (destination_user): a control character",
            ),
            (
                "source_user,source_password\n,x\n",
                "line 2: column 1 (source_user): empty",
            ),
            ("source_user\n\"a\n", "line 2: a quoted field is not closed"),
        ] {
            let e = parse(text, "u.csv").unwrap_err();
            assert!(e.to_string().contains(want), "{text:?}: {e}");
            assert_eq!(e.exit().code(), 65);
        }
    }

    #[test]
    fn shards_are_stable_and_cover_everyone_once() {
        let users: Vec<String> = (0..1000).map(|i| format!("user{i}@example.org")).collect();
        let mut counts = [0usize; 4];
        for u in &users {
            let holders: Vec<u32> = (0..4)
                .filter(|&i| Shard { index: i, count: 4 }.holds(u))
                .collect();
            assert_eq!(holders.len(), 1, "{u}");
            counts[holders[0] as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 200), "{counts:?}");
        // Fixed values: the split must never change between versions.
        assert_eq!(shard_of("alice", 4), shard_of("alice", 4));
        assert_eq!(shard_of("", 7), (0xcbf2_9ce4_8422_2325u64 % 7) as u32);
        assert_eq!(Shard::parse("3/4").unwrap(), Shard { index: 3, count: 4 });
        for bad in ["4/4", "1", "a/2", "0/0"] {
            assert_eq!(Shard::parse(bad).unwrap_err().exit().code(), 64, "{bad}");
        }
    }
}
