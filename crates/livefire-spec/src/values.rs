//! The value types of the format: durations, rates, percentages, sizes, and the untyped
//! quantity a metric condition compares against. Each parses from its written form with
//! livefire-core's one grammar (`livefire_core::units`, which every flag uses too) and
//! adds what the file needs: serde, the JSON Schema, and Toxiproxy's own numbers.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration as StdDuration;

use livefire_core::units;
use livefire_core::units::UnitError;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Why a written value was refused. Each message names the text and what to write.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error(transparent)]
    Unit(#[from] UnitError),
    #[error("{0} is not a time between 0 and a year in this attribute's unit")]
    ToxTimeOutOfRange(f64),
    #[error("{0} is not a number a metric can be compared with")]
    NotFinite(f64),
    #[error(
        "invalid value `{0}`: write a number, a duration (`300ms`), a percentage (`1%`), a rate (`200/s`) or a size (`10MiB`)"
    )]
    Quantity(String),
    #[error("invalid stage target `{0}`: write a rate (`500/s`) or a number of VUs")]
    StageTarget(String),
}

/// A value that holds a `${name}`, filled when the plan is made.
const TEMPLATE_PATTERN: &str = r"\$\{[^}]+\}";

/// Implements Deserialize (from a scalar's text, or a number read as its text),
/// Serialize (as the written form) and JsonSchema (a string with a pattern) for a type
/// that implements FromStr and Display.
macro_rules! text_value {
    ($ty:ident, $expecting:literal, $pattern:literal, $accept_numbers:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$ty, E> {
                        s.parse().map_err(E::custom)
                    }
                    // A YAML number is read as its text, so `rate: 200` in the file
                    // and `--rate 200` on a flag go through the same parser.
                    fn visit_i64<E: de::Error>(self, n: i64) -> Result<$ty, E> {
                        self.visit_str(&n.to_string())
                    }
                    fn visit_u64<E: de::Error>(self, n: u64) -> Result<$ty, E> {
                        self.visit_str(&n.to_string())
                    }
                    fn visit_f64<E: de::Error>(self, n: f64) -> Result<$ty, E> {
                        self.visit_str(&n.to_string())
                    }
                }
                d.deserialize_str(V)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                stringify!($ty).into()
            }
            // A `${name}` is filled before the value is read (`for: ${down}` with
            // `vars: { down: 10s }`), so the schema accepts one wherever a value goes.
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                if $accept_numbers {
                    json_schema!({ "description": $expecting, "anyOf": [
                        { "type": "string", "pattern": $pattern },
                        { "type": "string", "pattern": TEMPLATE_PATTERN },
                        { "type": "number" } ] })
                } else {
                    json_schema!({ "description": $expecting, "anyOf": [
                        { "type": "string", "pattern": $pattern },
                        { "type": "string", "pattern": TEMPLATE_PATTERN } ] })
                }
            }
        }
    };
}

/// A duration written with a unit: `250ms`, `5s`, `2m`, `1h`, `1.5s`, `500us`
/// ([`units::Duration`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub StdDuration);

impl Duration {
    pub fn from_secs(s: u64) -> Self {
        Duration(StdDuration::from_secs(s))
    }
    pub fn from_millis(ms: u64) -> Self {
        Duration(StdDuration::from_millis(ms))
    }
    pub fn as_millis(&self) -> u64 {
        self.0.as_millis() as u64
    }
}

impl FromStr for Duration {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        units::parse_duration(s)
            .map(Duration)
            .map_err(ValueError::from)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        units::Duration(self.0).fmt(f)
    }
}

text_value!(
    Duration,
    "a duration such as `250ms`, `5s`, `2m`, `1h`",
    r"^[0-9.]+ *(us|µs|ms|s|m|h)$",
    false
);

/// A Toxiproxy time attribute: a number in the toxic's own unit (milliseconds, or
/// microseconds for `slicer.delay`) as Toxiproxy reads it, or a duration with a unit.
/// The number is kept as written; the consumer knows the unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ToxTime {
    Number(f64),
    Duration(Duration),
}

impl ToxTime {
    fn from_number(n: f64) -> Result<Self, ValueError> {
        // A year in microseconds, the smallest unit a Toxiproxy attribute uses.
        if !(0.0..=366.0 * 86400.0 * 1e6).contains(&n) {
            Err(ValueError::ToxTimeOutOfRange(n))
        } else {
            Ok(ToxTime::Number(n))
        }
    }
    /// The value as a duration, reading a bare number in `unit` (1e-3 for milliseconds).
    pub fn to_duration(&self, unit_secs: f64) -> StdDuration {
        match self {
            ToxTime::Number(n) => StdDuration::from_secs_f64(n * unit_secs),
            ToxTime::Duration(d) => d.0,
        }
    }
}

impl FromStr for ToxTime {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        match s.trim().parse::<f64>() {
            Ok(n) => ToxTime::from_number(n),
            Err(_) => s.parse().map(ToxTime::Duration),
        }
    }
}

impl fmt::Display for ToxTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToxTime::Number(n) => write!(f, "{n}"),
            ToxTime::Duration(d) => write!(f, "{d}"),
        }
    }
}

text_value!(
    ToxTime,
    "a number in Toxiproxy's unit for this attribute, or a duration such as `500ms`",
    r"^[0-9.]+ *(us|µs|ms|s|m|h)?$",
    true
);

/// A rate: `200/s`, `12000/m`, `5/h`; a bare `200` is per second, as on every flag
/// ([`units::Rate`]). Stored per second, printed as written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    written: units::Rate,
}

impl Rate {
    pub fn per_second(n: f64) -> Self {
        Rate::from(units::Rate::per_second(n))
    }
}

impl From<units::Rate> for Rate {
    fn from(written: units::Rate) -> Self {
        Rate {
            per_second: written.as_per_second(),
            written,
        }
    }
}

impl FromStr for Rate {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        units::parse_rate(s)
            .map(Rate::from)
            .map_err(ValueError::from)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.written.fmt(f)
    }
}

text_value!(
    Rate,
    "a rate such as `200/s` or `12000/m`; a bare number is per second",
    r"^[0-9.]+ *(/ *(s|m|h))?$",
    true
);

/// A percentage, `1%` or `0.5%`, stored as a fraction (0.01, 0.005)
/// ([`units::Percent`]).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percent(pub f64);

impl FromStr for Percent {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        units::parse_percent(s)
            .map(|p| Percent(p.fraction()))
            .map_err(ValueError::from)
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        units::Percent::from_fraction(self.0).fmt(f)
    }
}

text_value!(
    Percent,
    "a percentage such as `1%` or `0.5%`",
    r"^[0-9.]+ *%$",
    false
);

/// A share as Toxiproxy writes `toxicity` (0.0 to 1.0) or as a percentage
/// ([`units::Share`]).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Share(pub f64);

impl FromStr for Share {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        s.parse::<units::Share>()
            .map(|p| Share(p.fraction()))
            .map_err(ValueError::from)
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

text_value!(
    Share,
    "a share from 0.0 to 1.0, or a percentage such as `25%`",
    r"^[0-9.]+ *%?$",
    true
);

/// A size: `64KiB`, `10MiB`, `1GB`, `512B`; a bare number is bytes ([`units::Size`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl FromStr for Size {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        units::parse_size(s)
            .map(|n| Size(n.0))
            .map_err(ValueError::from)
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        units::Size(self.0).fmt(f)
    }
}

text_value!(
    Size,
    "a size such as `64KiB`, `10MiB`, `1GB` (a bare number is bytes)",
    r"^[0-9.]+ *(B|KB|kB|MB|GB|TB|KiB|MiB|GiB|TiB)?$",
    true
);

/// A local address a load opens its connections from: `127.0.0.2`, `10.0.3.17`, `fd00::2`
/// ([`units::parse_source_address`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceAddress(pub std::net::IpAddr);

impl FromStr for SourceAddress {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        units::parse_source_address(s)
            .map(SourceAddress)
            .map_err(ValueError::from)
    }
}

impl fmt::Display for SourceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

text_value!(
    SourceAddress,
    "an IP address of the machine the load runs on, such as `127.0.0.2`",
    r"^[0-9A-Fa-f.:]+$",
    false
);

/// What a metric condition compares against: a plain number, a duration, a percentage,
/// a rate or a size, in the canonical unit (seconds, fraction, per second, bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quantity {
    Number(f64),
    Duration(Duration),
    Percent(Percent),
    Rate(Rate),
    Size(Size),
}

impl Quantity {
    /// The canonical value: seconds, fraction, per second, bytes or the number itself.
    pub fn value(&self) -> f64 {
        match self {
            Quantity::Number(n) => *n,
            Quantity::Duration(d) => d.0.as_secs_f64(),
            Quantity::Percent(p) => p.0,
            Quantity::Rate(r) => r.per_second,
            Quantity::Size(s) => s.0 as f64,
        }
    }
    fn from_number(n: f64) -> Result<Self, ValueError> {
        if n.is_finite() {
            Ok(Quantity::Number(n))
        } else {
            Err(ValueError::NotFinite(n))
        }
    }
}

impl FromStr for Quantity {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let t = s.trim();
        if let Ok(n) = t.parse::<f64>() {
            return Quantity::from_number(n);
        }
        if t.ends_with('%') {
            return t.parse().map(Quantity::Percent);
        }
        if t.contains('/') {
            return t.parse().map(Quantity::Rate);
        }
        if let Ok(d) = t.parse() {
            return Ok(Quantity::Duration(d));
        }
        t.parse()
            .map(Quantity::Size)
            .map_err(|_| ValueError::Quantity(s.to_owned()))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quantity::Number(n) => write!(f, "{n}"),
            Quantity::Duration(d) => write!(f, "{d}"),
            Quantity::Percent(p) => write!(f, "{p}"),
            Quantity::Rate(r) => write!(f, "{r}"),
            Quantity::Size(s) => write!(f, "{s}"),
        }
    }
}

text_value!(
    Quantity,
    "a number, a duration (`300ms`), a percentage (`1%`), a rate (`200/s`) or a size (`10MiB`)",
    r"^-?[0-9.]+ *(%|/s|/m|/h|us|µs|ms|s|m|h|B|KB|kB|MB|GB|TB|KiB|MiB|GiB|TiB)?$",
    true
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_units_and_parse_each_unit() {
        let cases = [
            ("250ms", 250),
            ("5s", 5000),
            ("2m", 120_000),
            ("1h", 3_600_000),
            ("1.5s", 1500),
        ];
        for (text, ms) in cases {
            assert_eq!(text.parse::<Duration>().unwrap().as_millis(), ms, "{text}");
        }
        for bad in ["5", "5 parsecs", "", "s", "-1s", "NaNs"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad} should not parse");
        }
        assert!(
            "5".parse::<Duration>()
                .unwrap_err()
                .to_string()
                .contains("needs a unit")
        );
    }

    #[test]
    fn durations_round_trip_through_display() {
        for text in ["250ms", "5s", "2m", "1h", "1500ms", "500us"] {
            assert_eq!(text.parse::<Duration>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn rates_percentages_sizes_shares() {
        assert_eq!("200/s".parse::<Rate>().unwrap().per_second, 200.0);
        assert_eq!("12000/m".parse::<Rate>().unwrap().per_second, 200.0);
        // A bare rate is per second, as on every flag.
        assert_eq!("200".parse::<Rate>().unwrap().per_second, 200.0);
        assert!("200/d".parse::<Rate>().is_err());
        assert_eq!("0.5%".parse::<Percent>().unwrap().0, 0.005);
        assert!("150%".parse::<Percent>().is_err());
        assert!("0.5".parse::<Percent>().is_err());
        assert_eq!("64KiB".parse::<Size>().unwrap().0, 65536);
        assert_eq!("1GB".parse::<Size>().unwrap().0, 1_000_000_000);
        assert_eq!("0.25".parse::<Share>().unwrap().0, 0.25);
        assert_eq!("25%".parse::<Share>().unwrap().0, 0.25);
        assert!("1.5".parse::<Share>().is_err());
    }

    #[test]
    fn non_finite_and_absurd_numbers_are_refused() {
        // Regression: `proxy.latency: { latency: nan }` validated, then panicked in
        // Duration::from_secs_f64 when the fault was applied.
        for bad in ["nan", "inf", "-inf", "1e300", "-1"] {
            assert!(bad.parse::<ToxTime>().is_err(), "{bad}");
        }
        assert!("nan".parse::<Quantity>().is_err());
        // Regression: a rate of 1e-300/s made a schedule interval overflow.
        for bad in ["1e-300/s", "1e12/s", "nan/s", "inf/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
        assert!("1/h".parse::<Rate>().is_ok() && "0/s".parse::<Rate>().is_ok());
    }

    #[test]
    fn quantities_pick_their_unit_from_the_text() {
        assert_eq!("300ms".parse::<Quantity>().unwrap().value(), 0.3);
        assert_eq!("20%".parse::<Quantity>().unwrap().value(), 0.2);
        assert_eq!("0".parse::<Quantity>().unwrap().value(), 0.0);
        assert_eq!("100/s".parse::<Quantity>().unwrap().value(), 100.0);
        assert!("fast".parse::<Quantity>().is_err());
    }
}

/// The text of a scalar, whatever YAML type it would read as (`8080`, `true`, `x`);
/// for value types that parse text themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarText(pub String);

impl<'de> Deserialize<'de> for ScalarText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ScalarText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ScalarText, E> {
                Ok(ScalarText(s.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<ScalarText, E> {
                Ok(ScalarText(n.to_string()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<ScalarText, E> {
                Ok(ScalarText(n.to_string()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<ScalarText, E> {
                Ok(ScalarText(n.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}
