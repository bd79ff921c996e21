//! Property tests of the composer: any subject, display name, file name
//! and body text survives the trip through mailbot's encoders and
//! mail-parser's decoders, and no line ever exceeds 998 octets.

use mail_parser::{MessageParser, MimeHeaders};
use mailbot::compose::{self, Address, Attachment, Draft, Pins};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Printable text from several scripts, with spaces; no control
    // characters (a header cannot carry them) and no leading/trailing
    // spaces (headers are trimmed on reading).
    proptest::string::string_regex("[a-zA-Z0-9 äöüßéè€日本語Ωπ.,;:!?()\"'=_@&%/-]{1,120}")
        .unwrap()
        .prop_map(|s| s.trim().to_string())
        .prop_filter("non-empty", |s| !s.is_empty())
}

fn file_name() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9 äöüÄÖÜßé€日本()_.,;=&%+-]{1,80}\\.pdf").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn headers_names_and_bodies_round_trip(
        subject in text(),
        display in text(),
        name in file_name(),
        body in proptest::string::string_regex("[ -~äöü€\n]{0,3000}").unwrap(),
        data in proptest::collection::vec(any::<u8>(), 0..2000),
    ) {
        let draft = Draft {
            from: Some(Address { name: Some(display.clone()), email: "a@x.test".into() }),
            to: vec![Address::parse("b@x.test").unwrap()],
            subject: Some(subject.clone()),
            text: body.clone(),
            attachments: vec![Attachment {
                data: data.clone(),
                content_type: "application/pdf".into(),
                file_name: name.clone(),
                content_id: None,
            }],
            ..Draft::default()
        };
        let message = compose::compose(&draft, &Pins::default()).unwrap().bytes;
        for line in message.split(|b| *b == b'\n') {
            prop_assert!(line.len() <= 999, "line of {} octets", line.len());
        }
        let parsed = MessageParser::default().parse(&message).unwrap();
        prop_assert_eq!(parsed.subject(), Some(subject.as_str()));
        let from = parsed.from().and_then(|f| f.first()).unwrap();
        prop_assert_eq!(from.name(), Some(display.as_str()));
        prop_assert_eq!(from.address(), Some("a@x.test"));
        let text = parsed.body_text(0).unwrap_or_default().replace("\r\n", "\n");
        let want = if body.is_empty() || body.ends_with('\n') { body.clone() } else { format!("{body}\n") };
        prop_assert_eq!(text, want);
        let att = parsed.attachments().next().unwrap();
        prop_assert_eq!(att.attachment_name(), Some(name.as_str()));
        prop_assert_eq!(att.contents(), &data[..]);
    }
}
