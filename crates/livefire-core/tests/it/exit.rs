//! The exit-code table of DESIGN.md, checked against `Exit` and `Verdict::exit`.

use livefire_core::events::Verdict;
use livefire_core::exit::Exit;

/// DESIGN.md, "Exit codes of `livefire run`": the number each meaning is documented as.
const TABLE: [(Exit, u8); 5] = [
    (Exit::Ok, 0),
    (Exit::Deviated, 1),
    (Exit::Aborted, 2),
    (Exit::Invalid, 3),
    (Exit::RollbackIncomplete, 4),
];

#[test]
fn every_exit_has_its_documented_number() {
    for (exit, code) in TABLE {
        assert_eq!(exit.code(), code, "{exit:?}");
        assert_eq!(Exit::from_code(i64::from(code)), Some(exit));
    }
    // The table names every variant, and no two share a number.
    assert_eq!(Exit::ALL.len(), TABLE.len());
    for exit in Exit::ALL {
        assert!(
            TABLE.iter().any(|(e, _)| *e == exit),
            "{exit:?} not in the table"
        );
    }
    assert_eq!(Exit::from_code(5), None);
    assert_eq!(Exit::from_code(-1), None);
}

#[test]
fn every_verdict_maps_to_its_exit() {
    let cases = [
        (Verdict::Held, Exit::Ok),
        (Verdict::Deviated, Exit::Deviated),
        (Verdict::Failed, Exit::Deviated),
        (Verdict::Aborted, Exit::Aborted),
        (Verdict::Invalid, Exit::Invalid),
        (Verdict::RollbackIncomplete, Exit::RollbackIncomplete),
    ];
    for (verdict, exit) in cases {
        assert_eq!(verdict.exit(), exit, "{verdict:?}");
        assert_eq!(verdict.exit_code(), i32::from(exit.code()), "{verdict:?}");
    }
}
