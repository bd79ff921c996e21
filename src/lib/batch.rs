//! The `--batch` input of mail-inject: one JSON object per line, each a
//! message to compose, and the rule that turns the per-line outcomes into
//! one exit status.
//!
//! ```json
//! {"to":["a@x"],"cc":[],"bcc":[],"from":"me@x","subject":"s","body":"text",
//!  "html":"<p>..</p>","attachments":["file.pdf;type=application/pdf"],
//!  "headers":{"X-Tag":"1"},"reply_to":"r@x","in_reply_to":"<id@x>"}
//! ```
//!
//! `to`, `cc`, `bcc` and `reply_to` take a string or a list. Unknown
//! fields are errors, so a typo does not silently drop a recipient.
//! Sending is the caller's job.

use serde::Deserialize;

use crate::compose::{self, Address, Attachment, Draft};
use crate::error::{Error, ErrorKind, Result};
use crate::exit::Exit;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(default, deserialize_with = "one_or_many")]
    to: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    cc: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    bcc: Vec<String>,
    from: Option<String>,
    subject: Option<String>,
    #[serde(default)]
    body: String,
    html: Option<String>,
    #[serde(default)]
    attachments: Vec<String>,
    #[serde(default)]
    headers: serde_json::Map<String, serde_json::Value>,
    #[serde(default, deserialize_with = "one_or_many")]
    reply_to: Vec<String>,
    in_reply_to: Option<String>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

fn addresses(items: &[String]) -> Result<Vec<Address>> {
    let mut out = Vec::new();
    for item in items {
        out.extend(compose::parse_address_list(item)?);
    }
    Ok(out)
}

/// The draft one batch line describes. `default_from` is the sender when
/// the line names none. Bad JSON, a bad address, a message without
/// recipients are bad input (65); a missing attachment is 66.
pub fn draft_from_line(line: &str, default_from: Option<&str>) -> Result<Draft> {
    let item: Line = serde_json::from_str(line)
        .map_err(|e| Error::new(ErrorKind::BadInput, "JSON", e.to_string()))?;
    let from = item.from.as_deref().or(default_from);
    let mut draft = Draft {
        from: from.map(Address::parse).transpose()?,
        to: addresses(&item.to)?,
        cc: addresses(&item.cc)?,
        bcc: addresses(&item.bcc)?,
        reply_to: addresses(&item.reply_to)?,
        subject: item.subject,
        in_reply_to: item.in_reply_to,
        text: item.body,
        html: item.html,
        ..Draft::default()
    };
    for (name, value) in &item.headers {
        let value = value
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string());
        let (name, value) =
            compose::parse_user_header(&format!("{name}: {value}")).map_err(|e| {
                Error::new(ErrorKind::BadInput, e.object(), "refused header").with_source(e)
            })?;
        draft.headers.push((name, value));
    }
    for spec in &item.attachments {
        draft.attachments.push(Attachment::from_spec(spec, false)?);
    }
    if draft.to.is_empty() && draft.cc.is_empty() && draft.bcc.is_empty() {
        return Err(Error::new(
            ErrorKind::BadInput,
            "recipients",
            "none: give \"to\", \"cc\" or \"bcc\"",
        ));
    }
    Ok(draft)
}

/// Whether a failure will meet every later message of the batch too
/// (credentials, TLS, configuration), so the rest need not be tried.
pub fn fails_the_rest(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::Auth | ErrorKind::Tls | ErrorKind::Config)
}

/// The batch's exit status: 0 when every message went, the shared code
/// when all failed the same way, else 1 (some failed).
pub fn overall_exit(sent: usize, failures: &[Exit]) -> Exit {
    match failures.first() {
        None => Exit::Ok,
        Some(first) if sent == 0 && failures.iter().all(|c| c == first) => *first,
        Some(_) => Exit::Partial,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_drafts_or_bad_input() {
        let d = draft_from_line(
            r#"{"to":"a@x.test","cc":["b@x.test, c@x.test"],"subject":"s","headers":{"X-N":1}}"#,
            Some("me@x.test"),
        )
        .unwrap();
        assert_eq!(d.from.unwrap().email, "me@x.test");
        assert_eq!(d.to.len(), 1);
        assert_eq!(d.cc.len(), 2);
        assert_eq!(d.headers, [("X-N".to_string(), "1".to_string())]);
        let cases = [
            ("not json", 65),
            (r#"{"to":"a@x.test","tos":"typo"}"#, 65),
            (r#"{"subject":"nobody"}"#, 65),
            (r#"{"to":"not an address"}"#, 65),
            (r#"{"to":"a@x.test","headers":{"Bcc":"x@x.test"}}"#, 65),
            (
                r#"{"to":"a@x.test","attachments":["/nonexistent.pdf"]}"#,
                66,
            ),
        ];
        for (line, code) in cases {
            let err = draft_from_line(line, Some("me@x.test")).unwrap_err();
            assert_eq!(err.exit().code(), code, "{line}: {err}");
        }
    }

    #[test]
    fn overall_exit_status() {
        assert_eq!(overall_exit(3, &[]), Exit::Ok);
        assert_eq!(overall_exit(2, &[Exit::TempFail]), Exit::Partial);
        assert_eq!(overall_exit(0, &[Exit::NoPerm, Exit::NoPerm]), Exit::NoPerm);
        assert_eq!(
            overall_exit(0, &[Exit::NoPerm, Exit::DataErr]),
            Exit::Partial
        );
    }
}
