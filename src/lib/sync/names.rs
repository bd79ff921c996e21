//! What mail-sync writes into maildir file names, and the flag letters.
//!
//! A synced message is named `{unique},U={uid},S={size}[,W={wire}]` (plus
//! `:2,{flags}` in `cur/`), where `unique` is a fresh
//! [`maildir::unique_name`], `uid` the server's UID, `size` the file's
//! length in bytes and `wire` the message's length with CRLF line ends as
//! the server counts it (RFC822.SIZE), written when the two differ, as
//! Dovecot does. The names are the truth after a crash: the UID says
//! which server message a file is, the size whether the file is whole.
//! `U=0` marks a message that came from the server but is no longer there
//! (so `--push` leaves it alone). Other comma fields of foreign names are
//! kept.
//! Dovecot, notmuch, mutt and mbsync all read such names as ordinary
//! maildir names.
//!
//! This module does not touch the file system.
//!
//! [`maildir::unique_name`]: crate::maildir::unique_name

/// The flag letters mail-sync carries between the server and the maildir,
/// in maildir order, with their IMAP system flags.
pub const SYNCED: [(char, &str); 5] = [
    ('D', "\\Draft"),
    ('F', "\\Flagged"),
    ('R', "\\Answered"),
    ('S', "\\Seen"),
    ('T', "\\Deleted"),
];

/// A set of the synced flags as bits (one per entry of [`SYNCED`]).
pub type FlagBits = u8;

/// The flag bits proper (one per entry of [`SYNCED`]).
pub const FLAG_MASK: FlagBits = 0x1f;

/// In the state only: the local copy was deleted and that deletion was
/// not carried to the server (no `--expunge to-server` then), so the
/// message stays there and is not fetched again.
pub const DELETED_HERE: FlagBits = 0x80;

/// The synced flags among maildir letters.
pub fn bits_from_letters(letters: &str) -> FlagBits {
    let mut bits = 0;
    for (i, (letter, _)) in SYNCED.iter().enumerate() {
        if letters.contains(*letter) {
            bits |= 1 << i;
        }
    }
    bits
}

/// The synced flags among IMAP flags (case-insensitive, as the RFC says).
pub fn bits_from_imap(flags: &[String]) -> FlagBits {
    let mut bits = 0;
    for (i, (_, name)) in SYNCED.iter().enumerate() {
        if flags.iter().any(|f| f.eq_ignore_ascii_case(name)) {
            bits |= 1 << i;
        }
    }
    bits
}

/// Maildir letters for `bits`, in order.
pub fn letters(bits: FlagBits) -> String {
    SYNCED
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, (l, _))| *l)
        .collect()
}

/// IMAP flags for `bits`.
pub fn imap_flags(bits: FlagBits) -> Vec<&'static str> {
    SYNCED
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, (_, f))| *f)
        .collect()
}

/// `local`'s letters with the synced ones replaced by `bits`; other
/// letters (`P`, lowercase keywords) stay as they are.
pub fn with_synced(local: &str, bits: FlagBits) -> String {
    let mut out: String = local
        .chars()
        .filter(|c| !SYNCED.iter().any(|(l, _)| l == c))
        .collect();
    out.push_str(&letters(bits));
    crate::maildir::normalize_flags(&out)
}

/// Three-way merge of one message's flags against the base both sides
/// last agreed on: a flag changed on one side takes that side's value;
/// changed on both, both agree (a flag is one bit).
pub fn merge(base: FlagBits, local: FlagBits, server: FlagBits) -> FlagBits {
    let local_changed = local ^ base;
    let server_changed = server ^ base;
    (base & !(local_changed | server_changed))
        | (local & local_changed)
        | (server & server_changed & !local_changed)
}

/// The unique part of a maildir name split into its base and comma
/// fields, with the UID and size fields read out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unique {
    /// Everything before the first comma.
    pub base: String,
    /// `U=`: the server UID (0: gone from the server).
    pub uid: Option<u32>,
    /// `S=`: the size of the file in bytes.
    pub size: Option<u64>,
    /// `W=`: the size on the wire, with CRLF line ends (RFC822.SIZE), as
    /// Dovecot writes it; only when it differs from `S=`.
    pub wire: Option<u64>,
    /// The other fields, in order, as written.
    pub others: Vec<String>,
}

impl Unique {
    /// Splits a unique part (as [`crate::maildir::parse_name`] returns it).
    pub fn parse(unique: &str) -> Unique {
        let mut parts = unique.split(',');
        let base = parts.next().unwrap_or("").to_string();
        let mut u = Unique {
            base,
            uid: None,
            size: None,
            wire: None,
            others: Vec::new(),
        };
        for field in parts {
            if let Some(v) = field.strip_prefix("U=")
                && u.uid.is_none()
                && let Ok(n) = v.parse()
            {
                u.uid = Some(n);
                continue;
            }
            if let Some(v) = field.strip_prefix("S=")
                && u.size.is_none()
                && let Ok(n) = v.parse()
            {
                u.size = Some(n);
                continue;
            }
            if let Some(v) = field.strip_prefix("W=")
                && u.wire.is_none()
                && let Ok(n) = v.parse()
            {
                u.wire = Some(n);
                continue;
            }
            u.others.push(field.to_string());
        }
        u
    }

    /// Writes it back: base, `U=`, `S=`, `W=`, then the other fields.
    pub fn render(&self) -> String {
        let mut out = self.base.clone();
        if let Some(uid) = self.uid {
            out.push_str(&format!(",U={uid}"));
        }
        if let Some(size) = self.size {
            out.push_str(&format!(",S={size}"));
        }
        if let Some(wire) = self.wire {
            out.push_str(&format!(",W={wire}"));
        }
        for f in &self.others {
            out.push(',');
            out.push_str(f);
        }
        out
    }
}

/// The file name for a message: `unique` alone in `new/` (no flags), or
/// `unique:2,flags` in `cur/`.
pub fn file_name(unique: &str, separator: char, flags: &str, in_cur: bool) -> String {
    if in_cur {
        format!("{unique}{separator}2,{flags}")
    } else {
        unique.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maildir::parse_name;

    #[test]
    fn our_names_parse_with_the_maildir_parser() {
        let cases = [
            (
                "1700000000.M123456P42Q7.host,U=17,S=2048:2,FS",
                Some(17),
                Some(2048),
                "FS",
            ),
            ("1700000000.M1P2Q3.host,U=5,S=10", Some(5), Some(10), ""),
            (
                "1035478339.27041_118.foo.org,S=1000,W=1030:2,S",
                None,
                Some(1000),
                "S",
            ),
            ("1.2.h,U=0,S=3:2,", Some(0), Some(3), ""),
            ("plain", None, None, ""),
            ("x,U=notanumber,S=4", None, Some(4), ""),
        ];
        for (name, uid, size, flags) in cases {
            let (unique, _, f) = parse_name(name);
            let u = Unique::parse(&unique);
            assert_eq!((u.uid, u.size, f.as_str()), (uid, size, flags), "{name}");
            assert_eq!(u.render().len(), unique.len(), "{name}: {}", u.render());
        }
        let mut u = Unique::parse("1035478339.27041_118.foo.org,S=1000,W=1030");
        assert_eq!((u.size, u.wire), (Some(1000), Some(1030)));
        u.uid = Some(9);
        assert_eq!(u.render(), "1035478339.27041_118.foo.org,U=9,S=1000,W=1030");
        assert_eq!(Unique::parse(&u.render()), u);
    }

    #[test]
    fn flags_between_imap_and_maildir() {
        let imap = vec!["\\Seen".to_string(), "\\flagged".into(), "$Junk".into()];
        let bits = bits_from_imap(&imap);
        assert_eq!(letters(bits), "FS");
        assert_eq!(imap_flags(bits), vec!["\\Flagged", "\\Seen"]);
        assert_eq!(
            bits_from_letters("PRTa"),
            bits_from_imap(&["\\Answered".into(), "\\Deleted".into()])
        );
        assert_eq!(with_synced("PSa", bits_from_letters("DF")), "DFPa");
    }

    #[test]
    fn three_way_merge_per_flag() {
        let b = bits_from_letters;
        // (base, local, server) → result
        let cases = [
            ("", "", "", ""),
            ("", "S", "", "S"),     // set locally
            ("", "", "F", "F"),     // set on the server
            ("S", "", "S", ""),     // cleared locally
            ("S", "S", "", ""),     // cleared on the server
            ("S", "", "SF", "F"),   // one each way
            ("", "S", "S", "S"),    // both set it
            ("SF", "F", "S", ""),   // both cleared one each
            ("R", "RT", "D", "DT"), // independent flags mix
        ];
        for (base, local, server, want) in cases {
            assert_eq!(
                letters(merge(b(base), b(local), b(server))),
                want,
                "base {base} local {local} server {server}"
            );
        }
    }
}
