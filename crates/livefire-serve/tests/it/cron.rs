//! Schedules' cron expressions: what is accepted, what is refused and why, and the next
//! firing after a given instant (UTC).

use jiff::Timestamp;
use livefire_serve::schedule::Cron;

#[test]
fn the_next_firing_is_the_first_time_the_expression_names_after_an_instant() {
    // (cron, after, next)
    let cases = [
        // 09:00 on the 1st of each month.
        ("0 9 1 * *", "2026-12-03T16:52:28Z", "2027-01-01T09:00:00Z"),
        ("0 9 1 * *", "2026-12-01T08:59:59Z", "2026-12-01T09:00:00Z"),
        // Strictly after: the instant itself is not a firing.
        ("0 9 1 * *", "2026-12-01T09:00:00Z", "2027-01-01T09:00:00Z"),
        (
            "*/15 * * * *",
            "2026-12-03T16:52:28Z",
            "2026-12-03T17:00:00Z",
        ),
        (
            "30 6 * * MON-FRI",
            "2026-12-04T07:00:00Z",
            "2026-12-07T06:30:00Z",
        ),
        // Day of month or day of week (Vixie cron): the 13th, or a Friday.
        (
            "0 0 13 * FRI",
            "2026-12-03T00:00:00Z",
            "2026-12-04T00:00:00Z",
        ),
        // 29 February: the next leap year.
        ("0 0 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
        // A 6th field in front is seconds.
        (
            "*/10 * * * * *",
            "2026-12-03T16:52:28Z",
            "2026-12-03T16:52:30Z",
        ),
    ];
    for (text, after, want) in cases {
        let cron = Cron::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let after: Timestamp = after.parse().unwrap();
        let got = cron.next_after(after).map(|t| t.to_string());
        assert_eq!(got.as_deref(), Some(want), "{text} after {after}");
    }
}

#[test]
fn a_bad_expression_is_refused_saying_what_is_wrong_and_what_to_write() {
    // (cron, words the message holds)
    let cases = [
        ("", "0 field(s)"),
        ("every month", "2 field(s)"),
        ("* * * *", "4 field(s)"),
        ("0 0 9 1 * * 2027", "7 field(s)"),
        ("61 * * * *", "cron `61 * * * *`"),
        ("0 25 * * *", "cron `0 25 * * *`"),
        ("0 9 32 * *", "cron `0 9 32 * *`"),
        ("0 9 1 13 *", "cron `0 9 1 13 *`"),
        ("0 9 1 * MOO", "cron `0 9 1 * MOO`"),
        ("*/0 * * * *", "cron `*/0 * * * *`"),
        ("0 0 30 2 *", "never fires"),
    ];
    for (text, words) in cases {
        let e = Cron::parse(text)
            .err()
            .unwrap_or_else(|| panic!("`{text}` was accepted"));
        let m = e.to_string();
        assert!(m.contains(words), "{text}: `{words}` not in {m}");
        if !words.contains("never") {
            assert!(m.contains("write 5 fields"), "{text}: {m}");
        }
    }
}
