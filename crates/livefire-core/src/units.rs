//! The one grammar of written values: durations, rates, percentages, shares and sizes.
//! The experiment file and every flag parse with these functions, so the same text
//! means the same thing everywhere; each type's `Display` writes text that parses back
//! to the same value.
//!
//! Numbers are plain decimals (`5`, `1.5`, `.5`): no sign, no exponent. Durations and
//! sizes are read exactly from the decimal text (no floating-point rounding), and a
//! percentage is moved two places on the text before it becomes a fraction, so `0.07%`
//! is the fraction written `0.0007`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration as StdDuration;

use thiserror::Error;

/// Why a written value was refused. Each message quotes the text and says what a valid
/// value looks like.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UnitError {
    #[error("invalid duration `{0}`: write a number and a unit, e.g. `250ms`, `5s`, `2m`, `1h`")]
    Duration(String),
    #[error("a duration needs a unit: write `{0}s` or `{0}ms`")]
    DurationWithoutUnit(String),
    #[error("duration `{0}` is longer than a year: write at most `8784h`")]
    DurationTooLong(String),
    #[error(
        "invalid rate `{0}`: write a count per second, minute or hour, e.g. `200/s`, `12000/m`, `5/h` (a bare `200` is per second)"
    )]
    Rate(String),
    #[error("rate `{0}` is out of range: write 0, or at least 1/h and at most 10000000/s")]
    RateOutOfRange(String),
    #[error("invalid percentage `{0}`: write e.g. `1%` or `0.5%`")]
    Percent(String),
    #[error("a percentage needs `%`: write `{0}%`")]
    PercentWithoutSign(String),
    #[error("percentage `{0}` is outside 0% to 100%")]
    PercentOutOfRange(String),
    #[error("invalid share `{0}`: write 0.0 to 1.0 or a percentage such as `25%`")]
    Share(String),
    #[error("{0} is outside 0.0 to 1.0 (or write a percentage such as `25%`)")]
    ShareOutOfRange(String),
    #[error(
        "invalid size `{0}`: write e.g. `512B`, `64KiB`, `10MiB`, `1GB` (a bare number is bytes)"
    )]
    Size(String),
    #[error("size `{0}` is too large: write less than `16777216TiB`")]
    SizeTooLarge(String),
    #[error(
        "invalid source address `{0}`: write an IP address of this machine (not a wildcard or multicast one), e.g. `127.0.0.2`"
    )]
    SourceAddress(String),
}

/// A duration written with a unit: `250ms`, `5s`, `2m`, `1h`, `30d`, `1.5s`, `500us`. At most a
/// year (366 days); a bare number is refused, because `5` could mean seconds or
/// milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub StdDuration);

/// A rate: `200/s`, `12000/m`, `5/h`; a bare `200` is per second. Either 0 (the end of
/// a ramp) or between [`Rate::MIN_PER_SECOND`] and [`Rate::MAX_PER_SECOND`]. It keeps
/// the count and unit as written, so it prints the way it was written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    count: f64,
    per: Per,
}

/// The unit of time a rate is written per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Second,
    Minute,
    Hour,
}

/// A percentage, `1%` or `0.5%`, from 0% to 100%, kept as a fraction (0.01, 0.005).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Percent(f64);

/// A share from 0.0 to 1.0 as Toxiproxy writes `toxicity`, or a percentage (`25%`).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Share(f64);

/// A size in bytes: `512B`, `64KiB`, `10MiB`, `1GB`; a bare number is bytes. `KB`, `MB`,
/// `GB`, `TB` are powers of 1000, `KiB`, `MiB`, `GiB`, `TiB` powers of 1024.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Size(pub u64);

/// Parses a duration (see [`Duration`]); the flag parser of every duration flag.
pub fn parse_duration(text: &str) -> Result<StdDuration, UnitError> {
    text.parse::<Duration>().map(|d| d.0)
}

/// Parses a rate (see [`Rate`]); the flag parser of every rate flag.
pub fn parse_rate(text: &str) -> Result<Rate, UnitError> {
    text.parse()
}

/// Parses a percentage (see [`Percent`]).
pub fn parse_percent(text: &str) -> Result<Percent, UnitError> {
    text.parse()
}

/// Parses a size (see [`Size`]).
pub fn parse_size(text: &str) -> Result<Size, UnitError> {
    text.parse()
}

/// Parses a source address, the local address a load opens connections from: an IPv4 or
/// IPv6 address a socket can be bound to (not `0.0.0.0`, `::` or a multicast group).
/// Whether the machine has it is only known where the load runs.
pub fn parse_source_address(text: &str) -> Result<std::net::IpAddr, UnitError> {
    let bad = || UnitError::SourceAddress(text.to_owned());
    let ip: std::net::IpAddr = text.trim().parse().map_err(|_| bad())?;
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(bad());
    }
    Ok(ip)
}

const NANOS_PER: [(&str, u128); 7] = [
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("µs", 1_000),
    // Days are read (`--expires 30d`) but never written: `Display` keeps hours.
    ("d", 86_400_000_000_000),
];

/// A year and a day, the longest duration anything in livefire is written with.
const MAX_DURATION_NANOS: u128 = 366 * 86_400 * 1_000_000_000;

impl FromStr for Duration {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let text = s.trim();
        let bad = || UnitError::Duration(text.to_owned());
        let (number, unit) = split_number(text).ok_or_else(bad)?;
        if unit.is_empty() {
            return Err(UnitError::DurationWithoutUnit(text.to_owned()));
        }
        let unit_nanos = NANOS_PER
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, n)| *n)
            .ok_or_else(bad)?;
        let nanos = number
            .times(unit_nanos)
            .filter(|n| *n <= MAX_DURATION_NANOS)
            .ok_or_else(|| UnitError::DurationTooLong(text.to_owned()))?;
        // At most a year of nanoseconds fits in a u64 with room to spare.
        Ok(Duration(StdDuration::from_nanos(nanos as u64)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        for (unit, per) in &NANOS_PER[..5] {
            if nanos.is_multiple_of(*per) {
                return write!(f, "{}{unit}", nanos / per);
            }
        }
        // Finer than a microsecond: a decimal number of microseconds, exact.
        let frac = format!("{:03}", nanos % 1000);
        write!(f, "{}.{}us", nanos / 1000, frac.trim_end_matches('0'))
    }
}

impl Rate {
    /// The smallest rate above 0 that can be written: one an hour.
    pub const MIN_PER_SECOND: f64 = 1.0 / 3600.0;
    /// The largest rate: ten million a second, a bound that keeps every schedule
    /// computable.
    pub const MAX_PER_SECOND: f64 = 1e7;

    /// A rate of `n` per second, written `{n}/s`.
    pub fn per_second(n: f64) -> Self {
        Rate {
            count: n,
            per: Per::Second,
        }
    }

    /// The rate in events per second.
    pub fn as_per_second(&self) -> f64 {
        self.count / self.per.seconds()
    }
}

impl Per {
    fn seconds(self) -> f64 {
        match self {
            Per::Second => 1.0,
            Per::Minute => 60.0,
            Per::Hour => 3600.0,
        }
    }
    fn letter(self) -> char {
        match self {
            Per::Second => 's',
            Per::Minute => 'm',
            Per::Hour => 'h',
        }
    }
}

impl FromStr for Rate {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let text = s.trim();
        let bad = || UnitError::Rate(text.to_owned());
        let (count, per) = match text.split_once('/') {
            Some((count, per)) => (count.trim(), per.trim()),
            None => (text, "s"),
        };
        let per = match per {
            "s" => Per::Second,
            "m" => Per::Minute,
            "h" => Per::Hour,
            _ => return Err(bad()),
        };
        match split_number(count) {
            Some((number, "")) => {
                let rate = Rate {
                    count: number.to_f64(),
                    per,
                };
                let n = rate.as_per_second();
                if n != 0.0 && !(Rate::MIN_PER_SECOND..=Rate::MAX_PER_SECOND).contains(&n) {
                    return Err(UnitError::RateOutOfRange(text.to_owned()));
                }
                Ok(rate)
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.per.letter())
    }
}

impl Percent {
    /// The percentage as a fraction: 0.005 for `0.5%`.
    pub fn fraction(&self) -> f64 {
        self.0
    }
    /// The percentage of a fraction from 0.0 to 1.0 (not checked: a value computed by
    /// livefire, not written by a person).
    pub fn from_fraction(fraction: f64) -> Self {
        Percent(fraction)
    }
}

impl FromStr for Percent {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let text = s.trim();
        let bad = || UnitError::Percent(text.to_owned());
        match split_number(text) {
            Some((_, "")) => Err(UnitError::PercentWithoutSign(text.to_owned())),
            Some((number, "%")) => {
                let fraction = number.shifted(-2);
                if fraction > 1.0 {
                    return Err(UnitError::PercentOutOfRange(text.to_owned()));
                }
                Ok(Percent(fraction))
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The shortest text of the fraction, moved two places: exact both ways.
        match split_number(&self.0.to_string()) {
            Some((number, "")) => write!(f, "{}%", number.shifted_text(2)),
            _ => write!(f, "{}%", self.0 * 100.0),
        }
    }
}

impl Share {
    /// The share from 0.0 to 1.0.
    pub fn fraction(&self) -> f64 {
        self.0
    }
}

impl FromStr for Share {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let text = s.trim();
        if text.ends_with('%') {
            return text.parse::<Percent>().map(|p| Share(p.0));
        }
        match split_number(text) {
            Some((number, "")) => {
                let n = number.to_f64();
                if n > 1.0 {
                    return Err(UnitError::ShareOutOfRange(text.to_owned()));
                }
                Ok(Share(n))
            }
            _ => Err(UnitError::Share(text.to_owned())),
        }
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Size units, largest first, so `Display` picks the largest that divides exactly.
const BYTES_PER: [(&str, u128); 10] = [
    ("TiB", 1 << 40),
    ("TB", 1_000_000_000_000),
    ("GiB", 1 << 30),
    ("GB", 1_000_000_000),
    ("MiB", 1 << 20),
    ("MB", 1_000_000),
    ("KiB", 1 << 10),
    ("KB", 1_000),
    ("kB", 1_000),
    ("B", 1),
];

impl FromStr for Size {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let text = s.trim();
        let bad = || UnitError::Size(text.to_owned());
        let (number, unit) = split_number(text).ok_or_else(bad)?;
        let unit = if unit.is_empty() { "B" } else { unit };
        let per = BYTES_PER
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, n)| *n)
            .ok_or_else(bad)?;
        number
            .times(per)
            .and_then(|n| u64::try_from(n).ok())
            .map(Size)
            .ok_or_else(|| UnitError::SizeTooLarge(text.to_owned()))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = u128::from(self.0);
        let (unit, per) = BYTES_PER
            .iter()
            .find(|(_, per)| n > 0 && n.is_multiple_of(*per))
            .unwrap_or(&("B", 1));
        write!(f, "{}{unit}", n / per)
    }
}

/// A decimal number as written: its digits before and after the point.
#[derive(Debug, Clone, Copy)]
struct Decimal<'a> {
    whole: &'a str,
    fraction: &'a str,
}

/// Splits `5.5 ms` into the number and the unit (`ms`, trimmed); `None` when the text
/// does not start with a decimal number (digits, at most one point, at least one digit).
fn split_number(text: &str) -> Option<(Decimal<'_>, &str)> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.contains('.') || (whole.is_empty() && fraction.is_empty()) {
        return None;
    }
    Some((Decimal { whole, fraction }, unit.trim()))
}

impl Decimal<'_> {
    /// The number times `unit`, rounded to a whole number; `None` when it overflows.
    fn times(&self, unit: u128) -> Option<u128> {
        let whole: u128 = if self.whole.is_empty() {
            0
        } else {
            self.whole
                .trim_start_matches('0')
                .parse()
                .ok()
                .or_else(|| {
                    // Only zeros: parse("") fails.
                    self.whole.chars().all(|c| c == '0').then_some(0)
                })?
        };
        // Eighteen digits are finer than a nanosecond of an hour and a byte of a TiB;
        // keeping no more keeps every product below in a u128.
        let digits = &self.fraction[..self.fraction.len().min(18)];
        let mut part = 0u128;
        let mut scale = 1u128;
        for d in digits.bytes() {
            part = part * 10 + u128::from(d - b'0');
            scale *= 10;
        }
        let fraction = if scale == 1 {
            0
        } else {
            // part / scale * unit, rounded half up.
            let (q, r) = (unit / scale, unit % scale);
            part.checked_mul(q)?
                .checked_add((part.checked_mul(r)? + scale / 2) / scale)?
        };
        whole.checked_mul(unit)?.checked_add(fraction)
    }

    /// The number as the nearest f64.
    fn to_f64(self) -> f64 {
        format!("{}.{}0", self.whole, self.fraction)
            .parse()
            .unwrap_or(f64::INFINITY)
    }

    /// The number with its point moved `places` to the right (left when negative), as
    /// the nearest f64.
    fn shifted(self, places: i32) -> f64 {
        self.shifted_text(places).parse().unwrap_or(f64::INFINITY)
    }

    /// The number with its point moved, as decimal text without needless zeros.
    fn shifted_text(self, places: i32) -> String {
        let mut digits = format!("{}{}", self.whole, self.fraction);
        let mut point = self.whole.len() as i64 + i64::from(places);
        if point < 0 {
            digits.insert_str(0, &"0".repeat(point.unsigned_abs() as usize));
            point = 0;
        }
        let point = point as usize;
        if point > digits.len() {
            digits.push_str(&"0".repeat(point - digits.len()));
        }
        let (whole, fraction) = digits.split_at(point);
        let whole = whole.trim_start_matches('0');
        let whole = if whole.is_empty() { "0" } else { whole };
        let fraction = fraction.trim_end_matches('0');
        if fraction.is_empty() {
            whole.to_owned()
        } else {
            format!("{whole}.{fraction}")
        }
    }
}
