//! Each written value means one thing, prints back to text that means the same, and a
//! refused value says what a valid one looks like.

use std::time::Duration as Std;

use livefire_core::units::{Duration, Percent, Rate, Share, Size, UnitError};

#[test]
fn durations_mean_what_they_say() {
    let cases = [
        ("250ms", Std::from_millis(250)),
        ("5s", Std::from_secs(5)),
        ("2m", Std::from_secs(120)),
        ("1h", Std::from_secs(3600)),
        ("1.5s", Std::from_millis(1500)),
        ("0.1s", Std::from_millis(100)),
        (".5s", Std::from_millis(500)),
        ("500us", Std::from_micros(500)),
        ("500µs", Std::from_micros(500)),
        ("1.5us", Std::from_nanos(1500)),
        (" 5 s ", Std::from_secs(5)),
        ("0s", Std::ZERO),
        ("8784h", Std::from_secs(366 * 86400)),
    ];
    for (text, want) in cases {
        assert_eq!(text.parse::<Duration>(), Ok(Duration(want)), "{text}");
    }
}

#[test]
fn bad_durations_say_what_to_write() {
    let cases = [
        ("5", "a duration needs a unit: write `5s` or `5ms`"),
        ("fast", "invalid duration `fast`: write a number and a unit"),
        ("5 parsecs", "invalid duration `5 parsecs`"),
        ("", "invalid duration ``"),
        ("s", "invalid duration `s`"),
        ("-1s", "invalid duration `-1s`"),
        ("1e3s", "invalid duration `1e3s`"),
        ("1.2.3s", "invalid duration `1.2.3s`"),
        ("NaNs", "invalid duration `NaNs`"),
        ("8785h", "duration `8785h` is longer than a year"),
        (
            "999999999999999999999999999999999999999999h",
            "is longer than a year",
        ),
    ];
    for (text, want) in cases {
        let err = text.parse::<Duration>().unwrap_err().to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
}

#[test]
fn rates_are_per_second_when_bare() {
    let cases = [
        ("200/s", 200.0),
        ("200", 200.0),
        ("12000/m", 200.0),
        ("3600/h", 1.0),
        ("1/h", 1.0 / 3600.0),
        ("0.5", 0.5),
        ("0", 0.0),
        ("0/s", 0.0),
        ("200 / s", 200.0),
        ("10000000/s", 1e7),
    ];
    for (text, want) in cases {
        let rate: Rate = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(rate.as_per_second(), want, "{text}");
    }
}

#[test]
fn bad_rates_say_what_to_write() {
    let cases = [
        ("fast", UnitError::Rate("fast".into())),
        ("200/d", UnitError::Rate("200/d".into())),
        ("/s", UnitError::Rate("/s".into())),
        ("-5", UnitError::Rate("-5".into())),
        ("nan/s", UnitError::Rate("nan/s".into())),
        ("inf", UnitError::Rate("inf".into())),
        ("1e12/s", UnitError::Rate("1e12/s".into())),
        ("20000000", UnitError::RateOutOfRange("20000000".into())),
        ("1/d", UnitError::Rate("1/d".into())),
        ("0.5/h", UnitError::RateOutOfRange("0.5/h".into())),
    ];
    for (text, want) in cases {
        assert_eq!(text.parse::<Rate>(), Err(want), "{text}");
    }
    let msg = "fast".parse::<Rate>().unwrap_err().to_string();
    assert!(
        msg.contains("`200/s`") && msg.contains("per second"),
        "{msg}"
    );
}

#[test]
fn percentages_are_fractions() {
    let cases = [
        ("1%", 0.01),
        ("0.5%", 0.005),
        ("100%", 1.0),
        ("0%", 0.0),
        ("0.07%", 0.0007),
        ("33%", 0.33),
    ];
    for (text, want) in cases {
        let p: Percent = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(p.fraction(), want, "{text}");
    }
    for (text, want) in [
        ("0.5", "a percentage needs `%`: write `0.5%`"),
        ("150%", "percentage `150%` is outside 0% to 100%"),
        ("-1%", "invalid percentage `-1%`"),
        ("lots%", "invalid percentage `lots%`"),
    ] {
        let err = text.parse::<Percent>().unwrap_err().to_string();
        assert!(err.starts_with(want), "{text}: {err}");
    }
}

#[test]
fn shares_take_a_fraction_or_a_percentage() {
    for (text, want) in [("0.25", 0.25), ("25%", 0.25), ("1", 1.0), ("0", 0.0)] {
        assert_eq!(text.parse::<Share>().unwrap().fraction(), want, "{text}");
    }
    for (text, want) in [
        ("1.5", "1.5 is outside 0.0 to 1.0"),
        ("half", "invalid share `half`"),
        ("150%", "outside 0% to 100%"),
    ] {
        let err = text.parse::<Share>().unwrap_err().to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
}

#[test]
fn sizes_in_bytes() {
    let cases = [
        ("512B", 512),
        ("512", 512),
        ("64KiB", 65536),
        ("10MiB", 10 << 20),
        ("1GB", 1_000_000_000),
        ("1.5KiB", 1536),
        ("2kB", 2000),
        ("1TiB", 1 << 40),
    ];
    for (text, want) in cases {
        assert_eq!(text.parse::<Size>(), Ok(Size(want)), "{text}");
    }
    for (text, want) in [
        ("64XB", "invalid size `64XB`"),
        ("-1B", "invalid size `-1B`"),
        ("20000000TiB", "size `20000000TiB` is too large"),
    ] {
        let err = text.parse::<Size>().unwrap_err().to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
}

/// Display writes text that parses back to the same value, for every unit.
#[test]
fn every_value_prints_back_to_itself() {
    for text in [
        "250ms", "5s", "2m", "1h", "1500ms", "500us", "1.5us", "0s", "90s", "0.001s",
    ] {
        let d: Duration = text.parse().unwrap();
        assert_eq!(d.to_string().parse::<Duration>(), Ok(d), "{text} -> {d}");
    }
    assert_eq!("1.5s".parse::<Duration>().unwrap().to_string(), "1500ms");
    assert_eq!("120s".parse::<Duration>().unwrap().to_string(), "2m");
    for text in ["200/s", "12000/m", "5/h", "0.5/s", "0/s"] {
        assert_eq!(text.parse::<Rate>().unwrap().to_string(), text);
    }
    assert_eq!("200".parse::<Rate>().unwrap().to_string(), "200/s");
    for text in ["1%", "0.5%", "0.07%", "100%", "0%", "33.3%", "0.0001%"] {
        let p: Percent = text.parse().unwrap();
        assert_eq!(p.to_string(), text);
    }
    for text in ["64KiB", "10MiB", "1GB", "512B", "0B", "1000KiB", "1536B"] {
        let s: Size = text.parse().unwrap();
        assert_eq!(s.to_string().parse::<Size>(), Ok(s), "{text}");
    }
    assert_eq!("1.5KiB".parse::<Size>().unwrap().to_string(), "1536B");
    assert_eq!("65536".parse::<Size>().unwrap().to_string(), "64KiB");
}
