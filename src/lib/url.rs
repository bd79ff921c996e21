//! What the mail server URLs (`smtp://`, `smtps://`, `imap://`,
//! `imaps://`) have in common: `scheme://[user@]host[:port][/][?k=v&...]`
//! taken apart, the user percent-decoded, an IPv6 host in brackets; a
//! password in the URL refused; [`redact`] for every message that shows a
//! URL as the user typed it, so a password put there by mistake is never
//! printed; and the [`Endpoint`] that decides which account's secret a
//! server may be given.
//!
//! The protocol modules ([`crate::smtp`], [`crate::imap`]) give the
//! schemes, default ports and parameters their meaning.

use std::fmt;

use crate::error::{Error, ErrorKind, Result};

/// A URL taken apart; nothing is checked beyond its syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parts {
    /// The scheme, lower-cased.
    pub scheme: String,
    /// The login name, percent-decoded; `None` when absent or empty.
    pub user: Option<String>,
    /// The host, without brackets.
    pub host: String,
    /// The port, when given.
    pub port: Option<u16>,
    /// The query parameters, as written (`starttls=none`).
    pub query: Vec<String>,
}

/// Takes `text` apart. `form` says what was expected, for the error when
/// there is no `scheme://`. Errors are usage errors (exit 64) naming the
/// URL with any password replaced by `***`; a password is always refused.
pub fn parse(text: &str, form: &str) -> Result<Parts> {
    let bad = |why: &str| usage(text, why);
    let (scheme, rest) = text
        .split_once("://")
        .ok_or_else(|| bad(&format!("expected {form}")))?;
    if let Some(at) = rest.rfind('@')
        && rest[..at].contains(':')
    {
        return Err(bad(
            "a password in the URL is refused; use --password-command or MAILBOT_PASSWORD",
        ));
    }
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (
            Some(percent_decode(u).ok_or_else(|| bad("bad %-escape in the user"))?),
            h,
        ),
        None => (None, rest),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("missing ']'"))?;
        match after {
            "" => (h, None),
            _ => (
                h,
                Some(after.strip_prefix(':').ok_or_else(|| bad("bad port"))?),
            ),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() || host.contains(['/', '@', '[', ']', ' ']) {
        return Err(bad("bad host"));
    }
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("bad port"))?,
        ),
        None => None,
    };
    Ok(Parts {
        scheme: scheme.to_ascii_lowercase(),
        user: user.filter(|u| !u.is_empty()),
        host: host.to_string(),
        port,
        query: query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// A usage error (exit 64) about the URL `text`, shown redacted.
pub fn usage(text: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::Usage,
        format!("URL {:?}", redact(text)),
        why.to_string(),
    )
}

/// `text` with the password part of its userinfo, if any, replaced by
/// `***`: `imaps://alice:secret@host` → `imaps://alice:***@host`. A
/// password holding `@` or `/` is hidden whole (everything up to the last
/// `@` after the first `:` of the userinfo goes). Text that is not a URL
/// with userinfo comes back as it is.
pub fn redact(text: &str) -> String {
    let (scheme, rest) = match text.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, text),
    };
    let Some(at) = rest.rfind('@') else {
        return text.to_string();
    };
    let Some(colon) = rest[..at].find(':') else {
        return text.to_string();
    };
    let shown = format!("{}:***{}", &rest[..colon], &rest[at..]);
    match scheme {
        Some(s) => format!("{s}://{shown}"),
        None => shown,
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Which server, as whom: the scheme, login name, host and port a secret
/// is tied to. Two endpoints are the same server only when all four are
/// equal (the host compared without case or a trailing dot).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// `smtp`, `smtps`, `imap`, `imaps`.
    pub scheme: String,
    /// The login name.
    pub user: Option<String>,
    /// The host, lower-cased.
    pub host: String,
    /// The port (the scheme's default filled in).
    pub port: u16,
}

impl Endpoint {
    /// The endpoint of a server; `host` is normalised.
    pub fn new(scheme: &str, user: Option<&str>, host: &str, port: u16) -> Endpoint {
        Endpoint {
            scheme: scheme.to_ascii_lowercase(),
            user: user.map(str::to_string),
            host: host.trim_end_matches('.').to_ascii_lowercase(),
            port,
        }
    }

    /// The same server with `user` as the login name when it has none.
    pub fn with_default_user(mut self, user: Option<&str>) -> Endpoint {
        if self.user.is_none() {
            self.user = user.map(str::to_string);
        }
        self
    }
}

/// `user@host:port` (as `no password for ...` names it).
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_every_password_form() {
        let cases = [
            ("imaps://alice:secret@host", "imaps://alice:***@host"),
            ("smtp://a:se@cr/et@h:587", "smtp://a:***@h:587"),
            (
                "smtp://a:p%40ss@h?starttls=none",
                "smtp://a:***@h?starttls=none",
            ),
            ("alice:secret@host", "alice:***@host"),
            ("imaps://:secret@host", "imaps://:***@host"),
            ("imaps://alice@host:993", "imaps://alice@host:993"),
            ("imaps://host:993", "imaps://host:993"),
            ("not a url", "not a url"),
        ];
        for (text, want) in cases {
            assert_eq!(redact(text), want, "{text}");
            assert!(!redact(text).contains("secret") && !redact(text).contains("cr/et"));
        }
    }

    #[test]
    fn passwords_are_refused_without_being_shown() {
        for text in [
            "imaps://alice:hunter2@host",
            "smtp://alice:hun@ter2@host",
            "imap://alice:hunter2@[::1]:143",
        ] {
            let err = parse(text, "x").unwrap_err();
            assert_eq!(err.exit().code(), 64);
            assert!(!err.to_string().contains("hunter2"), "{err}");
            assert!(!err.to_string().contains("ter2"), "{err}");
            assert!(err.to_string().contains("password"), "{err}");
        }
        // Other errors about a URL holding a password do not show it either.
        let err = parse("alice:hunter2@host", "imaps://HOST").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn parts() {
        let p = parse("IMAPS://alice%40x.test@[::1]:993/?a=b&c", "x").unwrap();
        assert_eq!(p.scheme, "imaps");
        assert_eq!(p.user.as_deref(), Some("alice@x.test"));
        assert_eq!((p.host.as_str(), p.port), ("::1", Some(993)));
        assert_eq!(p.query, ["a=b", "c"]);
        for bad in [
            "smtp://",
            "smtp://h:x",
            "smtp://h:0",
            "smtp://[::1",
            "smtp://a b",
        ] {
            assert_eq!(parse(bad, "x").unwrap_err().exit().code(), 64, "{bad}");
        }
    }

    #[test]
    fn endpoints_compare_hosts_without_case() {
        let a = Endpoint::new("imaps", Some("alice"), "Mail.Example.ORG.", 993);
        let b =
            Endpoint::new("IMAPS", None, "mail.example.org", 993).with_default_user(Some("alice"));
        assert_eq!(a, b);
        assert_ne!(
            a,
            Endpoint::new("imaps", Some("bob"), "mail.example.org", 993)
        );
        assert_ne!(
            a,
            Endpoint::new("imap", Some("alice"), "mail.example.org", 993)
        );
        assert_eq!(a.to_string(), "alice@mail.example.org:993");
    }
}
