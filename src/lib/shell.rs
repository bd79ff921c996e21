//! Shell words: quoting a path so a printed command is safe to paste or
//! `eval`, and filling `{}` in command templates (`lpr -P office {}`).
//!
//! Nothing here runs a shell; commands given to `--exec` are split into
//! argv by [`split_template`] and run directly.

use crate::error::{Error, ErrorKind, Result};

/// Quotes `s` for a POSIX shell: unchanged when it is made only of safe
/// characters, otherwise in single quotes with embedded quotes escaped.
pub fn quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Fills a command template for printing: every `{}` becomes the quoted
/// `path`; a template without `{}` gets the quoted path appended.
pub fn fill_template(template: &str, path: &str) -> String {
    let quoted = quote(path);
    if template.contains("{}") {
        template.replace("{}", &quoted)
    } else {
        format!("{template} {quoted}")
    }
}

/// Splits a command template into argv the way a shell would split plain
/// words, single quotes, double quotes and backslashes (no expansion of
/// any kind), then puts `path` in place of every `{}` word part (appended
/// as a last word when there is none).
pub fn split_template(template: &str, path: &str) -> Result<Vec<String>> {
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => word.push(ch),
                        None => return Err(unbalanced(template, "'")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\' | '$' | '`')) => word.push(ch),
                            Some(ch) => {
                                word.push('\\');
                                word.push(ch);
                            }
                            None => return Err(unbalanced(template, "\"")),
                        },
                        Some(ch) => word.push(ch),
                        None => return Err(unbalanced(template, "\"")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(ch) = chars.next() {
                    word.push(ch);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err(Error::new(ErrorKind::Usage, template, "empty command"));
    }
    let has_placeholder = words.iter().any(|w| w.contains("{}"));
    let mut argv: Vec<String> = words.into_iter().map(|w| w.replace("{}", path)).collect();
    if !has_placeholder {
        argv.push(path.to_string());
    }
    Ok(argv)
}

fn unbalanced(template: &str, quote: &str) -> Error {
    Error::new(
        ErrorKind::Usage,
        template,
        format!("unbalanced {quote} in command"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        let cases = [
            ("plain.pdf", "plain.pdf"),
            ("with space.pdf", "'with space.pdf'"),
            ("it's.pdf", r"'it'\''s.pdf'"),
            ("$(rm -rf ~).pdf", "'$(rm -rf ~).pdf'"),
            ("", "''"),
            ("Größe.pdf", "'Größe.pdf'"),
            ("a\nb", "'a\nb'"),
        ];
        for (input, want) in cases {
            assert_eq!(quote(input), want);
        }
    }

    #[test]
    fn templates_for_printing() {
        assert_eq!(
            fill_template("lpr -P office {}", "out/a b.pdf"),
            "lpr -P office 'out/a b.pdf'"
        );
        assert_eq!(fill_template("lpr", "x.pdf"), "lpr x.pdf");
    }

    #[test]
    fn templates_for_running() {
        let argv = split_template("lp -d 'my printer' --title=\"{}\" {}", "a b.pdf").unwrap();
        assert_eq!(
            argv,
            ["lp", "-d", "my printer", "--title=a b.pdf", "a b.pdf"]
        );
        let argv = split_template("sha256sum", "x").unwrap();
        assert_eq!(argv, ["sha256sum", "x"]);
        // The path is never re-split or expanded, whatever it holds.
        let argv = split_template("cat {}", "$(touch pwned) ;x").unwrap();
        assert_eq!(argv, ["cat", "$(touch pwned) ;x"]);
        assert!(split_template("echo 'oops", "x").is_err());
        assert!(split_template("   ", "x").is_err());
    }
}
