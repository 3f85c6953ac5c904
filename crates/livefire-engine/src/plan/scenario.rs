//! Game days: the seeded draw of `scenario:` curveballs into timeline activities, so the
//! same seed replays the same game day and the run applies them like any timeline fault.

use std::time::Duration;

use livefire_spec::Experiment;

use super::{Activity, Body, fault_target};

/// The curveballs drawn from the experiment's `scenario:` with `seed`, in start order and
/// numbered from 1 (`curveball 1: process.pause s1`). None without a scenario.
///
/// Pool entries are drawn by weight without repeats; each curveball lasts a duration in
/// `duration: [shortest, longest]` and runs entirely inside `window` (validation makes
/// sure the window is at least the shortest duration).
pub(super) fn curveballs(exp: &Experiment, seed: u64) -> Vec<Activity> {
    let Some(s) = &exp.scenario else {
        return Vec::new();
    };
    // Its own stream: adding a load or a campaign does not change the draw.
    let mut rng = SplitMix64(seed ^ 0x6761_6d65_6461_7973);
    let mut left: Vec<usize> = (0..s.pool.len()).collect();
    let (w0, w1) = (s.window[0].0, s.window[1].0);
    let width = w1.saturating_sub(w0);
    let (shortest, longest) = (s.duration[0].0, s.duration[1].0.min(width));
    let mut drawn = Vec::new();
    for _ in 0..s.draw {
        let weights: Vec<u64> = left
            .iter()
            .map(|&i| u64::from(s.pool[i].weight.unwrap_or(1)))
            .collect();
        let total: u64 = weights.iter().sum();
        if total == 0 {
            // Validation refuses this; draw nothing rather than divide by zero.
            break;
        }
        let mut r = rng.below(total);
        let mut pick = 0;
        for (k, w) in weights.iter().enumerate() {
            if r < *w {
                pick = k;
                break;
            }
            r -= w;
        }
        let i = left.remove(pick);
        let duration = between(&mut rng, shortest, longest.max(shortest));
        let start = between(&mut rng, w0, w1.saturating_sub(duration).max(w0));
        drawn.push((start, i, duration));
    }
    drawn.sort_by_key(|(start, i, _)| (*start, *i));
    drawn
        .into_iter()
        .enumerate()
        .map(|(n, (start, i, duration))| {
            let c = &s.pool[i];
            let (kind, target) = (c.fault.kind(), fault_target(&c.fault));
            let what = c.name.clone().unwrap_or_else(|| {
                if target.is_empty() {
                    kind.to_owned()
                } else {
                    format!("{kind} {target}")
                }
            });
            Activity {
                id: format!("{ID_PREFIX}{i}]"),
                name: format!("curveball {}: {what}", n + 1),
                kind,
                target,
                start,
                duration,
                body: Body::Fault(c.fault.clone()),
                noticed_within: None,
            }
        })
        .collect()
}

/// A duration in `[lo, hi]`, in steps of 100 ms from `lo` (a schedule people read).
fn between(rng: &mut SplitMix64, lo: Duration, hi: Duration) -> Duration {
    let steps = hi.saturating_sub(lo).as_millis() as u64 / 100;
    lo + Duration::from_millis(100 * rng.below(steps + 1))
}

/// SplitMix64: tiny, and its output for a seed never changes with a dependency's
/// version, so a game day replays across livefire releases.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), without modulo bias worth noticing for game-day sizes.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

impl super::Plan {
    /// How an active activity is shown to people watching the run: a curveball of a
    /// `hidden: true` scenario is `curveball N` only, so its kind and target stay out of
    /// sight until it ends; everything else is its name.
    pub fn shown_name(&self, name: &str) -> String {
        let hidden = self
            .experiment
            .scenario
            .as_ref()
            .is_some_and(|s| s.hidden == Some(true));
        let curveball = self
            .activities
            .iter()
            .any(|a| a.name == name && a.id.starts_with(ID_PREFIX));
        match name.split_once(':') {
            Some((shown, _)) if hidden && curveball => shown.to_owned(),
            _ => name.to_owned(),
        }
    }
}

/// The start of a curveball's id: `scenario.pool[i]`, its entry in the pool.
const ID_PREFIX: &str = "scenario.pool[";
