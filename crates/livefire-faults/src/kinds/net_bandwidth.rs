//! `net.bandwidth`: limit the egress of a `netns` target's devices (every one but `lo`,
//! or the named `interface`; on a `host` target `interface` is required) to `rate` bytes
//! per second with a `tbf` root qdisc. livefire adds it only where the root qdisc is the
//! kernel's default, and the undo record removes only its own (kind `tbf`, its handle),
//! which gives the device its default back. Verify: each device's root is that tbf.

use livefire_core::undo::UndoRecord;
use livefire_spec::NetBandwidth;

use crate::net::{self, NetError, Place};
use crate::{Action, Cx, FaultError, Kind, Prepared, Seen, Targets};

const KIND: &str = "net.bandwidth";

/// The smallest token bucket: enough for a full-size segment on any usual MTU.
const MIN_BURST: u64 = 16 * 1024;

pub(crate) struct Bandwidth<'a>(pub &'a NetBandwidth);

impl Bandwidth<'_> {
    fn checked(&self, targets: &Targets) -> Result<Place, FaultError> {
        let (place, _) = net::net_target(targets, &self.0.target, KIND)?;
        if self.0.rate.0 == 0 {
            return Err(FaultError::Invalid(
                "`net.bandwidth` with a rate of 0 would stop all traffic: write a rate such as `1MiB` (bytes per second), or use `net.partition`".into(),
            ));
        }
        match &self.0.interface {
            Some(i) if !livefire_spec::net::is_interface_name(i) => Err(FaultError::Invalid(
                format!("`{i}` is not a network interface name"),
            )),
            None if place.0.is_none() => Err(FaultError::Invalid(
                "`net.bandwidth` on the host needs `interface` (the device to limit)".into(),
            )),
            _ => Ok(place),
        }
    }
}

impl Kind for Bandwidth<'_> {
    fn check(&self, targets: &Targets) -> Result<(), FaultError> {
        self.checked(targets).map(drop)
    }

    fn prepare(&self, targets: &Targets, _activity: &str) -> Result<Prepared, FaultError> {
        let place = self.checked(targets)?;
        net::resolve(&place)?;
        net::require("tc")?;
        net::require("ip")?;
        let present = net::devices(&place)?;
        let devices = match &self.0.interface {
            Some(dev) if present.contains(dev) || dev == "lo" => vec![dev.clone()],
            Some(dev) => {
                return Err(NetError::NoDevice {
                    dev: dev.clone(),
                    place: place.to_string(),
                    known: present
                        .iter()
                        .map(|d| format!("`{d}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                }
                .into());
            }
            None if present.is_empty() => return Err(NetError::NoDevices(place.to_string()).into()),
            None => present,
        };
        for dev in &devices {
            if let Some(q) = net::root_qdisc(&place, dev)?
                && !net::is_default(&q)
            {
                return Err(NetError::ForeignQdisc {
                    dev: dev.clone(),
                    place: place.to_string(),
                    kind: q.kind,
                    handle: q.handle,
                }
                .into());
            }
        }
        let handle = net::fresh_handle();
        let rate = self.0.rate.0;
        let undo = UndoRecord::Qdisc {
            netns: place.0.clone(),
            devices: devices.clone(),
            handle,
        };
        let resources = devices
            .iter()
            .map(|d| {
                UndoRecord::Qdisc {
                    netns: place.0.clone(),
                    devices: vec![d.clone()],
                    handle,
                }
                .resource()
            })
            .collect();
        Ok(Prepared::new(
            KIND,
            &self.0.target,
            Some(undo),
            resources,
            Limited {
                place,
                devices,
                handle,
                rate,
                burst: (rate / 10).max(MIN_BURST),
            },
            targets,
        ))
    }
}

#[derive(Debug)]
struct Limited {
    place: Place,
    devices: Vec<String>,
    handle: u16,
    /// Bytes per second.
    rate: u64,
    /// Bytes the bucket holds.
    burst: u64,
}

impl Action for Limited {
    fn apply(&self, _: &Cx<'_>) -> Result<String, FaultError> {
        net::resolve(&self.place)?;
        for dev in &self.devices {
            net::add_tbf(&self.place, dev, self.handle, self.rate, self.burst)?;
        }
        Ok(format!(
            "tbf at {} B/s (burst {} B) on {} in {}",
            self.rate,
            self.burst,
            self.devices.join(", "),
            self.place
        ))
    }

    fn verify(&self, _: &Cx<'_>) -> Result<Option<Seen>, FaultError> {
        if !self.place.exists() {
            return Ok(Some(Seen {
                applied: false,
                clean: true,
                detail: format!("{} is gone", self.place),
            }));
        }
        let (mut applied, mut clean, mut detail) = (true, true, Vec::new());
        for dev in &self.devices {
            match net::root_qdisc(&self.place, dev)? {
                None => {
                    applied = false;
                    detail.push(format!("{dev} is gone"));
                }
                Some(q) => {
                    // Any run's tbf at this rate: the harness verifies a run's fault
                    // from its own prepare, whose handle differs.
                    let ours = q.kind == "tbf"
                        && q.rate
                            .is_some_and(|r| r.abs_diff(self.rate) * 100 <= self.rate);
                    applied &= ours;
                    clean &= net::is_default(&q);
                    detail.push(format!(
                        "{dev}: root qdisc `{}` ({}){}",
                        q.kind,
                        q.handle,
                        q.rate.map(|r| format!(" at {r} B/s")).unwrap_or_default()
                    ));
                }
            }
        }
        Ok(Some(Seen {
            applied,
            clean,
            detail: format!("{} in {}", detail.join("; "), self.place),
        }))
    }
}
