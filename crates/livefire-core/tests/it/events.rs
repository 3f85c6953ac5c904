//! Journal events as other tools read them: the JSON each one is written as.

use livefire_core::events::{Event, MarkKind, Record};

/// A responder's mark is one journal line other tools (the after-action review, a chat
/// bot reading the journal) parse by its documented field names.
#[test]
fn a_mark_is_written_with_its_documented_fields() {
    let cases = [
        (
            r#"{"v":1,"seq":7,"t":4210,"type":"mark","mark":"detected","responder":"alice","note":"p99 is up","via":"page"}"#,
            MarkKind::Detected,
            Some("p99 is up"),
        ),
        (
            r#"{"v":1,"seq":9,"t":9000,"type":"mark","mark":"resolved","responder":"bob","via":"cli"}"#,
            MarkKind::Resolved,
            None,
        ),
    ];
    for (line, kind, note) in cases {
        let record: Record = serde_json::from_str(line).expect(line);
        let Event::Mark {
            mark,
            responder,
            note: n,
            via,
        } = &record.event
        else {
            panic!("not a mark: {record:?}");
        };
        assert_eq!(*mark, kind);
        assert_eq!(n.as_deref(), note);
        assert!(!responder.is_empty() && !via.is_empty());
        // Written back, it is the same line: no field is renamed or added.
        assert_eq!(serde_json::to_string(&record).unwrap(), line);
    }
}

#[test]
fn mark_kinds_read_as_people_type_them() {
    for kind in MarkKind::ALL {
        assert_eq!(kind.label().parse::<MarkKind>(), Ok(kind));
    }
    let err = "noticed".parse::<MarkKind>().unwrap_err();
    assert!(err.contains("detected, mitigated or resolved"), "{err}");
}
