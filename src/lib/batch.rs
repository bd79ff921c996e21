//! The batch inputs of mail-inject, each item a message to compose, and
//! the rule that turns the per-item outcomes into one exit status.
//!
//! `--batch FILE.jsonl`: one JSON object per line ([`BATCH_KEYS`]):
//!
//! ```json
//! {"to":["a@x"],"cc":[],"bcc":[],"from":"me@x","subject":"s","body":"text",
//!  "html":"<p>..</p>","attachments":["file.pdf;type=application/pdf"],
//!  "headers":{"X-Tag":"1"},"reply_to":"r@x","in_reply_to":"<id@x>"}
//! ```
//!
//! `to`, `cc`, `bcc` and `reply_to` take a string or a list. Unknown
//! fields are errors, so a typo does not silently drop a recipient.
//!
//! `--batch-csv FILE`: a header row, then one message per row
//! ([`draft_from_row`]): `to`, `cc`, `bcc`, `from`, `subject`, `body` and
//! `attachments` columns, any other column a field the subject and body
//! templates use as `{name}`. Sending is the caller's job.

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

/// Every key of a `--batch` line and what it holds, for `--help` and
/// the README.
pub const BATCH_KEYS: &str =
    "  to           recipient(s): \"a@x\" or [\"a@x\", \"B <b@x>\"] (to, cc or bcc needed)
  cc, bcc      the same; bcc is envelope only, never written
  from         sender [default: -r, the account's address]
  subject      text, any characters
  body         the plain-text body
  html         an HTML alternative (multipart/alternative)
  attachments  [\"FILE[;type=T/S][;name=N]\", ...], as -a takes them
  headers      {\"Name\": \"value\", ...}: extra header fields
  reply_to     address(es) for Reply-To:
  in_reply_to  a Message-ID: In-Reply-To: and References:";

/// A CSV file as rows of fields (RFC 4180: `,` between fields, `"`
/// quotes, `""` a quote inside them, quoted fields may hold commas and
/// line breaks; CRLF or LF ends a row; blank rows are skipped). Each row
/// comes with the line it starts on. An unterminated quote is bad input.
pub fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>> {
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let (mut line, mut start) = (1usize, 1usize);
    let (mut quoted, mut was_quoted) = (false, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            ',' => {
                row.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                was_quoted = false;
                if row.iter().any(|f| !f.is_empty()) || row.len() > 1 {
                    rows.push((start, std::mem::take(&mut row)));
                } else {
                    row.clear();
                }
                line += 1;
                start = line;
            }
            c => field.push(c),
        }
    }
    if quoted {
        return Err(Error::new(
            ErrorKind::BadInput,
            format!("line {start}"),
            "a quoted field is not closed",
        ));
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push((start, row));
    }
    Ok(rows)
}

/// What every row of a `--batch-csv` shares, from the command line: the
/// subject and body templates and the attachments given with `-a`.
#[derive(Debug, Clone, Default)]
pub struct RowDefaults {
    /// The sender when the row has no `from`.
    pub from: Option<String>,
    /// The subject template (`-s`), when the row has no `subject`.
    pub subject: Option<String>,
    /// The body template (`--body`, `--body-text`), when the row has no `body`.
    pub body: String,
    /// Attached to every message, before the row's own.
    pub attachments: Vec<Attachment>,
}

/// `template` with each `{name}` replaced by the row's field `name`
/// (`{{` and `}}` stand for braces). A name the row does not have is bad
/// input naming it.
pub fn fill_template(template: &str, fields: &[(String, String)]) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find(['{', '}']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        let close = tail.find('}').filter(|_| tail.starts_with('{'));
        let Some(close) = close else {
            return Err(Error::new(
                ErrorKind::BadInput,
                "template",
                format!("a lone {:?}: write {{{{ or }}}} for a brace", &tail[..1]),
            ));
        };
        let name = &tail[1..close];
        let value = fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::BadInput,
                    format!("template field {{{name}}}"),
                    "no such column in the CSV header",
                )
            })?;
        out.push_str(value);
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The draft one CSV row describes, given the header: `to`, `cc`, `bcc`
/// (comma-separated lists), `from`, `subject` and `body` (themselves
/// templates), `attachments` (specs separated by `|`); every column is a
/// field of the templates. Rows with more fields than the header are bad
/// input, as for [`draft_from_line`].
pub fn draft_from_row(header: &[String], row: &[String], defaults: &RowDefaults) -> Result<Draft> {
    if row.len() > header.len() {
        return Err(Error::new(
            ErrorKind::BadInput,
            "row",
            format!("{} fields, the header has {}", row.len(), header.len()),
        ));
    }
    let fields: Vec<(String, String)> = header
        .iter()
        .zip(row.iter().chain(std::iter::repeat(&String::new())))
        .map(|(h, v)| (h.clone(), v.clone()))
        .collect();
    let column = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    let subject = match column("subject").or(defaults.subject.as_deref()) {
        Some(t) => Some(fill_template(t, &fields)?),
        None => None,
    };
    let body = fill_template(column("body").unwrap_or(&defaults.body), &fields)?;
    let list = |name: &str| {
        column(name)
            .map(|v| vec![v.to_string()])
            .unwrap_or_default()
    };
    let from = column("from").or(defaults.from.as_deref());
    let mut draft = Draft {
        from: from.map(Address::parse).transpose()?,
        to: addresses(&list("to"))?,
        cc: addresses(&list("cc"))?,
        bcc: addresses(&list("bcc"))?,
        subject,
        text: body,
        attachments: defaults.attachments.clone(),
        ..Draft::default()
    };
    for spec in column("attachments")
        .unwrap_or("")
        .split('|')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        draft.attachments.push(Attachment::from_spec(spec, false)?);
    }
    if draft.to.is_empty() && draft.cc.is_empty() && draft.bcc.is_empty() {
        return Err(Error::new(
            ErrorKind::BadInput,
            "recipients",
            "none: fill the \"to\", \"cc\" or \"bcc\" column",
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

    /// The documented keys are the keys a line takes (an unknown key
    /// would be refused), all eleven of them.
    #[test]
    fn every_documented_key_is_accepted() {
        let mut names = Vec::new();
        for line in BATCH_KEYS.lines() {
            let head = line.trim_start().split("  ").next().unwrap_or("");
            names.extend(head.split(", ").map(str::trim));
        }
        assert_eq!(names.len(), 11, "{names:?}");
        for name in &names {
            let value = match *name {
                "headers" => "{\"X-A\":\"1\"}",
                "attachments" => "[]",
                "to" | "cc" | "bcc" | "from" | "reply_to" => "\"a@x.test\"",
                _ => "\"text\"",
            };
            let line = if *name == "to" {
                format!("{{\"to\":{value}}}")
            } else {
                format!("{{\"to\":\"b@x.test\",\"{name}\":{value}}}")
            };
            draft_from_line(&line, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn csv_rows_follow_rfc4180() {
        let text = "to,name,note\r\na@x.test,Ann,\"one, two\"\n\n\"b@x.test\",\"B \"\"Bo\"\"\",\"two\nlines\"\nc@x.test,,\n";
        let rows = parse_csv(text).unwrap();
        let fields: Vec<Vec<&str>> = rows
            .iter()
            .map(|(_, r)| r.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(
            fields,
            [
                vec!["to", "name", "note"],
                vec!["a@x.test", "Ann", "one, two"],
                vec!["b@x.test", "B \"Bo\"", "two\nlines"],
                vec!["c@x.test", "", ""],
            ]
        );
        let lines: Vec<usize> = rows.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [1, 2, 4, 6]);
        assert_eq!(parse_csv("a\n\"open").unwrap_err().exit().code(), 65);
        assert_eq!(parse_csv("x,y").unwrap()[0].1, ["x", "y"]);
    }

    #[test]
    fn templates_take_the_row_fields() {
        let fields = vec![
            ("name".to_string(), "Ann".to_string()),
            ("grade".to_string(), "A".to_string()),
        ];
        assert_eq!(
            fill_template("Dear {name}, {grade} {{not}}", &fields).unwrap(),
            "Dear Ann, A {not}"
        );
        for bad in ["{nope}", "a } b", "open {name"] {
            let err = fill_template(bad, &fields).unwrap_err();
            assert_eq!(err.exit().code(), 65, "{bad}");
        }
        let header: Vec<String> = ["to", "name", "subject"].map(String::from).to_vec();
        let defaults = RowDefaults {
            from: Some("t@x.test".into()),
            subject: Some("Grades for {name}".into()),
            body: "Hello {name}".into(),
            ..RowDefaults::default()
        };
        let row: Vec<String> = ["a@x.test", "Ann", ""].map(String::from).to_vec();
        let d = draft_from_row(&header, &row, &defaults).unwrap();
        assert_eq!(d.subject.as_deref(), Some("Grades for Ann"));
        assert_eq!(d.text, "Hello Ann");
        assert_eq!(d.to[0].email, "a@x.test");
        let row: Vec<String> = ["a@x.test", "Ann", "Own {name}"].map(String::from).to_vec();
        let d = draft_from_row(&header, &row, &defaults).unwrap();
        assert_eq!(d.subject.as_deref(), Some("Own Ann"));
        let row: Vec<String> = ["", "Nobody", ""].map(String::from).to_vec();
        assert_eq!(
            draft_from_row(&header, &row, &defaults)
                .unwrap_err()
                .exit()
                .code(),
            65
        );
        let row: Vec<String> = ["a@x.test", "Ann", "", "extra"].map(String::from).to_vec();
        assert_eq!(
            draft_from_row(&header, &row, &defaults)
                .unwrap_err()
                .exit()
                .code(),
            65
        );
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
