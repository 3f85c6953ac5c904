//! Deterministic schedules: when the open model's i-th send is due, how many sends fall
//! in a second, and how many virtual users the closed model has at a time. Pure
//! functions of the config, so a constant rate sends the same number of requests run
//! after run, and segments of a split run add up to the whole.

use std::time::Duration;

use crate::config::Stage;

/// A piecewise-linear value over time (a rate per second, or a VU count).
#[derive(Debug, Clone)]
pub struct Ramp {
    pieces: Vec<Piece>,
    duration: f64,
}

#[derive(Debug, Clone, Copy)]
struct Piece {
    t0: f64,
    len: f64,
    v0: f64,
    v1: f64,
    /// Integral of the value from 0 to t0.
    n0: f64,
}

impl Piece {
    fn value(&self, x: f64) -> f64 {
        if self.len <= 0.0 {
            self.v1
        } else {
            self.v0 + (self.v1 - self.v0) * (x / self.len).min(1.0)
        }
    }

    fn integral(&self, x: f64) -> f64 {
        let x = x.min(self.len);
        if self.len <= 0.0 {
            return 0.0;
        }
        self.v0 * x + (self.v1 - self.v0) * x * x / (2.0 * self.len)
    }
}

impl Ramp {
    /// Starts at `start`, then follows each stage, then holds the last value until
    /// `duration`.
    pub fn new(start: f64, stages: &[Stage], duration: Duration) -> Ramp {
        let duration = duration.as_secs_f64();
        let mut pieces = Vec::new();
        let (mut t, mut v, mut n) = (0.0, start, 0.0);
        for s in stages {
            let len = s.over.as_secs_f64();
            if t >= duration {
                break;
            }
            let p = Piece {
                t0: t,
                len,
                v0: v,
                v1: s.to,
                n0: n,
            };
            n += p.integral(len);
            pieces.push(p);
            t += len;
            v = s.to;
        }
        pieces.push(Piece {
            t0: t,
            len: f64::INFINITY,
            v0: v,
            v1: v,
            n0: n,
        });
        Ramp { pieces, duration }
    }

    fn piece_at(&self, t: f64) -> &Piece {
        let idx = self.pieces.partition_point(|p| p.t0 <= t).saturating_sub(1);
        &self.pieces[idx]
    }

    /// The value at `t` seconds.
    pub fn value_at(&self, t: f64) -> f64 {
        let p = self.piece_at(t);
        if p.len.is_infinite() {
            p.v0
        } else {
            p.value(t - p.t0)
        }
    }

    /// Integral of the value from 0 to `t` (capped at the duration): for a rate, the
    /// number of sends due before `t`.
    pub fn integral_to(&self, t: f64) -> f64 {
        let t = t.clamp(0.0, self.duration);
        let p = self.piece_at(t);
        let x = t - p.t0;
        if p.len.is_infinite() {
            p.n0 + p.v0 * x
        } else {
            p.n0 + p.integral(x)
        }
    }

    /// The first time at or after `from` (before the duration ends) when the value is at
    /// least `target`; `None` if it never is.
    pub fn first_at_least(&self, target: f64, from: f64) -> Option<f64> {
        let first = self
            .pieces
            .partition_point(|p| p.t0 <= from)
            .saturating_sub(1);
        for p in &self.pieces[first..] {
            let start = p.t0.max(from);
            if start >= self.duration {
                return None;
            }
            if self.value_at(start) >= target {
                return Some(start);
            }
            // Within a finite rising piece the value crosses `target` once, if at all.
            if p.len.is_finite() && p.v1 > p.v0 && p.v1 >= target {
                let t = p.t0 + p.len * (target - p.v0) / (p.v1 - p.v0);
                if t < (p.t0 + p.len).min(self.duration) {
                    return Some(t.max(start));
                }
            }
        }
        None
    }

    /// The largest value the ramp reaches before the duration ends.
    pub fn max_value(&self) -> f64 {
        self.pieces
            .iter()
            .filter(|p| p.t0 < self.duration || p.t0 == 0.0)
            .flat_map(|p| {
                let end = if p.len.is_infinite() {
                    p.v0
                } else {
                    p.value(p.len.min(self.duration - p.t0))
                };
                [p.v0, end]
            })
            .fold(0.0, f64::max)
    }
}

/// The open model's arrival schedule.
#[derive(Debug, Clone)]
pub struct RateSchedule {
    ramp: Ramp,
    total: u64,
}

impl RateSchedule {
    /// Sends at `rate` per second, ramping through `stages`, for `duration`.
    pub fn new(rate: f64, stages: &[Stage], duration: Duration) -> RateSchedule {
        let ramp = Ramp::new(rate, stages, duration);
        // The count is rounded to absorb float noise (100/s for 10 s is 1000 sends, not 999).
        let total = round_count(ramp.integral_to(f64::INFINITY));
        RateSchedule { ramp, total }
    }

    /// How many sends the whole schedule makes.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// How many sends are due before `t` seconds (sends `0..count`).
    pub fn count_before(&self, t: f64) -> u64 {
        round_count(self.ramp.integral_to(t)).min(self.total)
    }

    /// When send `i` is due, in seconds from the start; `None` past the end.
    pub fn offset(&self, i: u64) -> Option<f64> {
        if i >= self.total {
            return None;
        }
        let target = i as f64;
        for p in &self.ramp.pieces {
            let end_n = if p.len.is_infinite() {
                f64::INFINITY
            } else {
                p.n0 + p.integral(p.len)
            };
            if target >= end_n {
                continue;
            }
            let c = target - p.n0;
            let b = p.v0;
            let a = if p.len.is_infinite() || p.len <= 0.0 {
                0.0
            } else {
                (p.v1 - p.v0) / (2.0 * p.len)
            };
            let x = if a.abs() < 1e-12 {
                if b <= 0.0 {
                    continue;
                }
                c / b
            } else {
                let disc = (b * b + 4.0 * a * c).max(0.0);
                (-b + disc.sqrt()) / (2.0 * a)
            };
            return Some(p.t0 + x.max(0.0));
        }
        None
    }
}

fn round_count(x: f64) -> u64 {
    // Counts are integrals of rates; snap values within a millionth of an integer.
    let r = x.round();
    let v = if (x - r).abs() < 1e-6 { r } else { x.ceil() };
    if v <= 0.0 { 0 } else { v as u64 }
}

/// The closed model's VU count over time.
#[derive(Debug, Clone)]
pub struct VuSchedule {
    ramp: Ramp,
}

impl VuSchedule {
    pub fn new(vus: u32, stages: &[Stage], duration: Duration) -> VuSchedule {
        VuSchedule {
            ramp: Ramp::new(vus as f64, stages, duration),
        }
    }

    /// Global VU count at `t` seconds.
    pub fn vus_at(&self, t: f64) -> u64 {
        self.ramp.value_at(t).round().max(0.0) as u64
    }

    /// The first time at or after `from` when there are at least `vus` VUs (as
    /// `vus_at` counts them); `None` if there never are before the end.
    pub fn first_time_with(&self, vus: u64, from: f64) -> Option<f64> {
        // vus_at rounds to the nearest whole VU.
        self.ramp.first_at_least(vus as f64 - 0.5, from)
    }

    /// The most VUs at any time.
    pub fn max_vus(&self) -> u64 {
        self.ramp.max_value().round().max(0.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn constant_rate_is_exact_and_evenly_spaced() {
        let s = RateSchedule::new(100.0, &[], d(10.0));
        assert_eq!(s.total(), 1000);
        assert_eq!(s.offset(0), Some(0.0));
        assert!((s.offset(1).unwrap() - 0.01).abs() < 1e-9);
        assert!((s.offset(999).unwrap() - 9.99).abs() < 1e-9);
        assert_eq!(s.offset(1000), None);
        assert_eq!(s.count_before(1.0), 100);
        assert_eq!(s.count_before(2.0) - s.count_before(1.0), 100);
        let odd = RateSchedule::new(3.0, &[], d(1.5));
        assert_eq!(odd.total(), 5, "sends at 0, 1/3, 2/3, 1, 4/3");
    }

    #[test]
    fn ramp_follows_stages_and_inverts() {
        // 0 -> 100/s over 10 s: 500 sends, then hold 100/s for 5 s: 500 more.
        let s = RateSchedule::new(
            0.0,
            &[Stage {
                to: 100.0,
                over: d(10.0),
            }],
            d(15.0),
        );
        assert_eq!(s.total(), 1000);
        assert_eq!(s.count_before(10.0), 500);
        for i in [1u64, 10, 250, 499, 500, 750, 999] {
            let t = s.offset(i).unwrap();
            let n = s.ramp.integral_to(t);
            assert!(
                (n - i as f64).abs() < 1e-6,
                "send {i} at {t}s integrates to {n}"
            );
        }
        let mut last = -1.0;
        for i in 0..1000 {
            let t = s.offset(i).unwrap();
            assert!(t >= last, "offsets increase");
            last = t;
        }
    }

    #[test]
    fn segments_split_sends_exactly() {
        for total in [0u64, 1, 5, 1000, 1001] {
            let sum: u64 = (0..3)
                .map(|i| Segment { index: i, count: 3 }.share_of(total))
                .sum();
            assert_eq!(sum, total);
        }
        assert_eq!(
            Segment::parse("2/4").unwrap(),
            Segment { index: 1, count: 4 }
        );
        assert!(
            Segment::parse("0/4").is_err()
                && Segment::parse("5/4").is_err()
                && Segment::parse("x").is_err()
        );
    }

    #[test]
    fn vus_ramp() {
        let v = VuSchedule::new(
            0,
            &[Stage {
                to: 10.0,
                over: d(10.0),
            }],
            d(20.0),
        );
        assert_eq!(v.vus_at(0.0), 0);
        assert_eq!(v.vus_at(5.0), 5);
        assert_eq!(v.vus_at(15.0), 10);
        assert_eq!(v.max_vus(), 10);
    }

    #[test]
    fn first_time_with_is_when_vus_at_first_reaches_the_count() {
        // Up to 10 over 10 s, hold, down to 2 over 4 s, up to 20 over 8 s, 30 s in all.
        let stage = |to: f64, over: f64| Stage { to, over: d(over) };
        let v = VuSchedule::new(
            0,
            &[
                stage(10.0, 10.0),
                stage(10.0, 4.0),
                stage(2.0, 4.0),
                stage(20.0, 8.0),
            ],
            d(30.0),
        );
        // Against a scan in steps of 1 ms, from several starting points.
        for from in [0.0, 3.3, 12.0, 15.0, 19.0] {
            for vus in [1u64, 5, 10, 11, 15, 20, 21] {
                let scanned = (0..30_000)
                    .map(|ms| ms as f64 / 1000.0)
                    .find(|t| *t >= from && v.vus_at(*t) >= vus);
                let got = v.first_time_with(vus, from);
                match (scanned, got) {
                    (None, None) => {}
                    (Some(s), Some(g)) => {
                        assert!(
                            (s - g).abs() <= 0.001 + 1e-9 && v.vus_at(g + 1e-9) >= vus,
                            "{vus} VUs from {from}: scanned {s}, got {g}"
                        )
                    }
                    _ => panic!("{vus} VUs from {from}: scanned {scanned:?}, got {got:?}"),
                }
            }
        }
    }

    use crate::config::Segment;
}
