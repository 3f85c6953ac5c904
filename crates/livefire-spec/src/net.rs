//! The addresses a `net.*` fault names in `peers`: an IP (`10.0.0.2`, `fd00::2`), an IP
//! and the peer's port (`10.0.0.2:5432`, `[fd00::2]:5432`) or a CIDR range
//! (`10.0.0.0/24`). Parsed here once, for validation and for the faults' rules alike.
//! Host names are refused: a rule must say exactly which packets it drops.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// One `peers` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The address, or the network address of a range (host bits cleared).
    pub addr: IpAddr,
    /// The prefix length: 32 (IPv4) or 128 (IPv6) for a single address.
    pub prefix: u8,
    /// The peer's port, when one is written: only TCP, UDP and SCTP to or from it match.
    pub port: Option<u16>,
}

/// On a `host` target, ranges wider than these are refused: they would cut the machine
/// off from most of the network (and whoever is logged in to it).
pub const HOST_MIN_PREFIX_V4: u8 = 8;
pub const HOST_MIN_PREFIX_V6: u8 = 32;

/// Why a `peers` entry is not one; each says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    #[error(
        "peer `{0}` is not an address: write an IP (`10.0.0.2`), an IP and port \
         (`10.0.0.2:5432`, `[fd00::2]:5432`) or a CIDR range (`10.0.0.0/24`)"
    )]
    NotAnAddress(String),
    #[error("peer `{text}`: the prefix length must be 0 to {max}")]
    Prefix { text: String, max: u8 },
    #[error("peer `{0}`: port 0 matches nothing; name the peer's port")]
    PortZero(String),
}

impl Peer {
    /// Parses one entry, or says what to write instead.
    pub fn parse(text: &str) -> Result<Peer, PeerError> {
        let s = text.trim();
        let bad = || PeerError::NotAnAddress(text.to_owned());
        if let Some((addr, prefix)) = s.split_once('/') {
            let addr: IpAddr = addr.parse().map_err(|_| bad())?;
            let max = max_prefix(addr);
            let prefix: u8 =
                prefix
                    .parse()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| PeerError::Prefix {
                        text: text.to_owned(),
                        max,
                    })?;
            return Ok(Peer {
                addr: network(addr, prefix),
                prefix,
                port: None,
            });
        }
        let (addr, port) = match (s.parse::<IpAddr>(), s.parse::<SocketAddr>()) {
            (Ok(addr), _) => (addr, None),
            (_, Ok(sa)) => (sa.ip(), Some(sa.port())),
            _ => return Err(bad()),
        };
        if port == Some(0) {
            return Err(PeerError::PortZero(text.to_owned()));
        }
        Ok(Peer {
            addr,
            prefix: max_prefix(addr),
            port,
        })
    }

    /// Whether this is a range wider than a `host` target accepts, or the unspecified
    /// address (`0.0.0.0`, `::`), which names no peer.
    pub fn too_wide_for_host(&self) -> bool {
        self.addr.is_unspecified()
            || match self.addr {
                IpAddr::V4(_) => self.prefix < HOST_MIN_PREFIX_V4,
                IpAddr::V6(_) => self.prefix < HOST_MIN_PREFIX_V6,
            }
    }
}

/// `10.0.0.0/24`, `10.0.0.2`, `10.0.0.2:5432`, `[fd00::2]:5432`: parses back.
impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.port, self.prefix == max_prefix(self.addr)) {
            (Some(port), _) => write!(f, "{}", SocketAddr::new(self.addr, port)),
            (None, true) => write!(f, "{}", self.addr),
            (None, false) => write!(f, "{}/{}", self.addr, self.prefix),
        }
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `addr` with the bits past `prefix` cleared.
fn network(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

/// Whether `name` can be a network interface's name (Linux: 1 to 15 bytes, no `/`, no
/// white space, not `.` or `..`).
pub fn is_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}
