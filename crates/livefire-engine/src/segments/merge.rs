//! The coordinator's exact merge of the segments' metric windows: a second is released
//! (to the referee's store and the journal) once every live segment's watermark has
//! passed it, so what the referee judges is the whole load, never a part of it.

use std::collections::BTreeMap;

use livefire_core::window::Window;

/// Windows from N segments, merged per (second, series) until every live segment has
/// sent that second.
#[derive(Debug)]
pub struct Merger {
    alive: Vec<bool>,
    /// Per segment: every window of the seconds before this one was received.
    marks: Vec<u64>,
    pending: BTreeMap<u64, BTreeMap<String, Window>>,
    /// The seconds before this one were released.
    released: u64,
}

/// A merged window: its second and series.
pub type Released = (u64, String, Window);

impl Merger {
    /// For `count` segments, all alive.
    pub fn new(count: u32) -> Self {
        Merger {
            alive: vec![true; count as usize],
            marks: vec![0; count as usize],
            pending: BTreeMap::new(),
            released: 0,
        }
    }

    /// Adds one segment's window. A window for a second already released (a segment
    /// that lagged behind its own watermark) comes back, to be added on its own.
    pub fn window(
        &mut self,
        _segment: u32,
        series: String,
        second: u64,
        w: Window,
    ) -> Option<Released> {
        if second < self.released {
            return Some((second, series, w));
        }
        match self.pending.entry(second).or_default().entry(series) {
            std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().merge(&w),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(w);
            }
        }
        None
    }

    /// A segment sent every window before `second`.
    pub fn watermark(&mut self, segment: u32, second: u64) {
        if let Some(m) = self.marks.get_mut(segment as usize) {
            *m = (*m).max(second);
        }
    }

    /// A segment is gone (done or lost): it no longer holds seconds back.
    pub fn gone(&mut self, segment: u32) {
        if let Some(a) = self.alive.get_mut(segment as usize) {
            *a = false;
        }
    }

    /// The merged windows of every second that all live segments have passed, in
    /// order of seconds; they leave the merger.
    pub fn ready(&mut self) -> Vec<Released> {
        let limit = self
            .alive
            .iter()
            .zip(&self.marks)
            .filter(|(alive, _)| **alive)
            .map(|(_, m)| *m)
            .min()
            .unwrap_or(u64::MAX);
        self.release_before(limit)
    }

    /// Every window still held, in order of seconds (at the end of a run).
    pub fn rest(&mut self) -> Vec<Released> {
        self.release_before(u64::MAX)
    }

    /// Seconds waiting for a slow segment.
    pub fn held(&self) -> usize {
        self.pending.len()
    }

    fn release_before(&mut self, limit: u64) -> Vec<Released> {
        let keep = self.pending.split_off(&limit);
        let out = std::mem::replace(&mut self.pending, keep);
        self.released = self.released.max(limit);
        out.into_iter()
            .flat_map(|(second, series)| series.into_iter().map(move |(name, w)| (second, name, w)))
            .collect()
    }
}
