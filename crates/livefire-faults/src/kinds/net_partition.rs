//! `net.partition`: drop every packet between a `netns` (or `host`) target and its
//! `peers` (addresses, address:port, CIDR ranges; none on a netns: every peer but
//! loopback), `direction: in|out|both` as the target sees it. One nftables table of
//! livefire's own; the undo record deletes it. Verify: the table is there.

use livefire_spec::NetPartition;

use crate::net::NftFault;
use crate::{FaultError, Kind, Prepared, Targets};

const KIND: &str = "net.partition";

pub(crate) struct Partition<'a>(pub &'a NetPartition);

impl Partition<'_> {
    fn fault(&self) -> NftFault<'_> {
        NftFault {
            kind: KIND,
            target: &self.0.target,
            peers: &self.0.peers,
            direction: self.0.direction,
            share: None,
        }
    }
}

impl Kind for Partition<'_> {
    fn check(&self, targets: &Targets) -> Result<(), FaultError> {
        self.fault().check(targets).map(drop)
    }

    fn prepare(&self, targets: &Targets, activity: &str) -> Result<Prepared, FaultError> {
        self.fault().prepare(targets, activity)
    }
}
