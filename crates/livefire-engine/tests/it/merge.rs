//! The coordinator's sparse merge of window lines: what it releases is exactly what
//! adding the segments' windows whole gives (counts, every histogram bucket, so every
//! percentile), a late window comes back on its own, and a window whose histogram does
//! not decode is refused without adding anything.

use livefire_core::window::{Outcome, PackedWindow, Window};
use livefire_engine::segments::merge::{Merger, Released, WireWindow};
use livefire_engine::segments::protocol::Line;

/// A small deterministic generator (no seed file, no dependency).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// A window of `n` latencies spread over `lo_us..hi_us` on a log scale, with some
/// errors and drops.
fn window(rng: &mut Lcg, n: u64, lo_us: u64, hi_us: u64) -> Window {
    let mut w = Window::default();
    let (lo, hi) = ((lo_us as f64).ln(), (hi_us as f64).ln());
    for _ in 0..n {
        let f = (rng.next() % 1_000_000) as f64 / 1_000_000.0;
        let us = (lo + f * (hi - lo)).exp() as u64;
        let outcome = match rng.next() % 20 {
            0 => Outcome::Http5xx,
            1 => Outcome::Dropped,
            _ => Outcome::Ok,
        };
        w.record(outcome, us);
    }
    w.intended = n + rng.next() % 3;
    w.sent = n;
    w
}

fn line(series: &str, second: u64, w: &Window) -> String {
    Line::Window {
        series: series.into(),
        second,
        window: w.clone(),
    }
    .to_json()
}

/// Feeds every (segment, series, second, window) as a wire line; releases as the
/// watermarks pass; returns what was released and what adding the windows whole gives.
fn merge_all(
    segments: u32,
    sent: &[(u32, &str, u64, Window)],
) -> (Vec<Released>, Vec<(u64, String, Window)>) {
    let mut merger = Merger::new(segments);
    let mut out = Vec::new();
    for (seg, series, second, w) in sent {
        let text = line(series, *second, w);
        let wire = WireWindow::parse(&text).expect("a window line is read by the wire reader");
        assert!(merger.wire(*seg, &wire).unwrap().is_none());
    }
    for seg in 0..segments {
        merger.watermark(seg, u64::MAX);
    }
    out.extend(merger.ready());
    let mut expected = std::collections::BTreeMap::<(u64, String), Window>::new();
    for (_, series, second, w) in sent {
        expected
            .entry((*second, series.to_string()))
            .or_default()
            .merge(w);
    }
    let expected = expected
        .into_iter()
        .map(|((second, series), w)| (second, series, w))
        .collect();
    (out, expected)
}

#[test]
fn sparse_merge_equals_adding_whole_windows() {
    // (what, segments, windows per segment and second, latency range in µs)
    let cases: [(&str, u32, u64, u64, u64); 5] = [
        ("typical web latencies", 4, 500, 200, 400_000),
        (
            "the whole range, clamped above an hour",
            3,
            300,
            1,
            7_200_000_000,
        ),
        ("one segment, one value", 1, 1, 1_000, 1_001),
        ("many segments, few samples", 25, 3, 50, 5_000_000),
        ("no request completed (an empty histogram)", 2, 0, 1, 10),
    ];
    for (what, segments, n, lo, hi) in cases {
        let mut rng = Lcg(n ^ lo ^ hi);
        let mut sent = Vec::new();
        for second in 0..3 {
            for seg in 0..segments {
                for series in ["browse", "browse.search"] {
                    sent.push((seg, series, second, window(&mut rng, n, lo, hi)));
                }
            }
        }
        let (got, expected) = merge_all(segments, &sent);
        assert_eq!(
            got.len(),
            expected.len(),
            "{what}: one window per second and series"
        );
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!((g.0, &g.1), (e.0, &e.1), "{what}: in order of seconds");
            // Encoded from the counters, byte for byte what hdrhistogram's own
            // serializer writes for the merged histogram.
            assert_eq!(
                g.2,
                PackedWindow::from_window(&e.2),
                "{what}: second {} of {}",
                e.0,
                e.1
            );
            let unpacked = g.2.to_window();
            assert_eq!(unpacked, e.2, "{what}: second {} of {}", e.0, e.1);
            for q in [0.5, 0.99, 0.999, 1.0] {
                assert_eq!(
                    unpacked.latency.quantile_us(q),
                    e.2.latency.quantile_us(q),
                    "{what}: quantile {q}"
                );
            }
        }
    }
}

#[test]
fn a_second_waits_for_every_live_segment_and_a_late_window_comes_back_alone() {
    let mut rng = Lcg(7);
    let mut merger = Merger::new(2);
    let a = window(&mut rng, 100, 100, 10_000);
    let b = window(&mut rng, 100, 100, 10_000);
    for (seg, w) in [(0, &a), (1, &b)] {
        let text = line("browse", 0, w);
        merger
            .wire(seg, &WireWindow::parse(&text).unwrap())
            .unwrap();
    }
    merger.watermark(0, 1);
    assert!(
        merger.ready().is_empty(),
        "segment 2 has not passed second 0"
    );
    merger.watermark(1, 1);
    let released = merger.ready();
    let mut both = a.clone();
    both.merge(&b);
    assert_eq!(
        released,
        vec![(0, "browse".to_string(), PackedWindow::from_window(&both))]
    );
    // Segment 2 sends another window of second 0, after its watermark said it would not.
    let late = window(&mut rng, 10, 100, 10_000);
    let text = line("browse", 0, &late);
    let back = merger.wire(1, &WireWindow::parse(&text).unwrap()).unwrap();
    assert_eq!(
        back,
        Some((0, "browse".to_string(), PackedWindow::from_window(&late)))
    );
}

#[test]
fn a_window_whose_histogram_does_not_decode_adds_nothing() {
    let mut rng = Lcg(11);
    let good = window(&mut rng, 50, 100, 10_000);
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let v2 = good.latency.to_v2_bytes();
    // Another layout: the same counters read at 2 significant digits.
    let mut two_digits = v2.clone();
    two_digits[15] = 2;
    // The good histogram's header with these counters.
    let payload = |counters: &[u8]| {
        let mut bytes = v2[..40].to_vec();
        bytes[4..8].copy_from_slice(&(counters.len() as u32).to_be_bytes());
        bytes.extend(counters);
        bytes
    };
    // (what, the latency field as sent)
    let cases = [
        ("not base64", "***".to_owned()),
        ("not a histogram", b64(b"not a histogram, not at all, no")),
        ("a cut histogram", b64(&v2[..v2.len() - 3])),
        ("another layout", b64(&two_digits)),
        (
            "a value past an hour's buckets",
            b64(&payload(&[0x81, 0xff, 0x03, 0x02])),
        ),
        ("a value past an hour's buckets after good counters", {
            b64(&payload(
                &[&v2[40..], &[0x81, 0xff, 0x03, 0x02][..]].concat(),
            ))
        }),
        ("a cut counter after good counters", {
            b64(&payload(&[&v2[40..], &[0x80][..]].concat()))
        }),
        ("a run of empty counters that wraps the index around", {
            // Two runs of 2^63 empty counters, one empty counter, then a count.
            let most = [0xff; 9];
            b64(&payload(
                &[&v2[40..], &most, &most, &[0x00, 0x02][..]].concat(),
            ))
        }),
    ];
    for (what, latency) in cases {
        let mut merger = Merger::new(1);
        let text = line("browse", 0, &good);
        merger.wire(0, &WireWindow::parse(&text).unwrap()).unwrap();
        let bad = format!(
            r#"{{"type":"window","series":"browse","second":0,"window":{{"counts":{{"ok":9}},"intended":9,"sent":9,"latency":"{latency}"}}}}"#
        );
        let wire = WireWindow::parse(&bad).expect("the line itself is JSON");
        assert!(merger.wire(0, &wire).is_err(), "{what}: refused");
        merger.watermark(0, 1);
        assert_eq!(
            merger.ready(),
            vec![(0, "browse".to_string(), PackedWindow::from_window(&good))],
            "{what}: nothing of the bad window was added"
        );
        // The first window of its second and series, then one of a released second.
        let mut merger = Merger::new(1);
        assert!(merger.wire(0, &wire).is_err(), "{what}: refused when first");
        assert_eq!(merger.held(), 0, "{what}: no second is held for it");
        merger.watermark(0, 1);
        assert_eq!(merger.ready(), vec![], "{what}: nothing released for it");
        assert!(merger.wire(0, &wire).is_err(), "{what}: refused when late");
        assert_eq!(
            merger.wire(0, &WireWindow::parse(&text).unwrap()).unwrap(),
            Some((0, "browse".to_string(), PackedWindow::from_window(&good))),
            "{what}: a late good window after it comes back alone, as sent"
        );
    }
}

#[test]
fn other_lines_are_left_to_the_protocol_reader() {
    let lines = [
        r#"{"type":"watermark","second":3}"#,
        r#"{"type":"done","status":"ok"}"#,
        r#"{"series":"browse","type":"window"}"#,
        "not json",
    ];
    for l in lines {
        assert!(WireWindow::parse(l).is_none(), "{l}");
    }
}
