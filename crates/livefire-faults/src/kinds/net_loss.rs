//! `net.loss`: drop a `rate` share of the packets between a `netns` (or `host`) target
//! and its `peers` (default: every peer but loopback), `direction: in|out|both`. One
//! nftables table of livefire's own whose rules draw `numgen random` per packet: the
//! kernel's random numbers, which no seed controls, so the share holds but which packets
//! drop differs between runs. The undo record deletes the table. Verify: it is there.

use livefire_spec::NetLoss;

use crate::net::NftFault;
use crate::{FaultError, Kind, Prepared, Targets};

const KIND: &str = "net.loss";

pub(crate) struct Loss<'a>(pub &'a NetLoss);

impl Loss<'_> {
    fn fault(&self) -> NftFault<'_> {
        NftFault {
            kind: KIND,
            target: &self.0.target,
            peers: &self.0.peers,
            direction: self.0.direction,
            share: Some(self.0.rate.0),
        }
    }
}

impl Kind for Loss<'_> {
    fn check(&self, targets: &Targets) -> Result<(), FaultError> {
        self.fault().check(targets).map(drop)
    }

    fn prepare(&self, targets: &Targets, activity: &str) -> Result<Prepared, FaultError> {
        self.fault().prepare(targets, activity)
    }
}
