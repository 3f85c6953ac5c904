//! Wall-clock formatting without a date library: UTC stamps for run folder names and
//! the journal's first event.

use std::time::{SystemTime, UNIX_EPOCH};

/// (year, month, day, hour, minute, second) in UTC.
fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 { y + 1 } else { y },
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

fn now_secs() -> (u64, u32) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs(), d.subsec_millis())
}

/// `2026-11-26T15:30:00.123Z`
pub fn rfc3339_now() -> String {
    let (s, ms) = now_secs();
    let (y, mo, d, h, mi, se) = civil(s);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}.{ms:03}Z")
}

/// `2026-11-26T15:30:00.123Z` of any instant (before 1970: the epoch).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (y, mo, d2, h, mi, se) = civil(d.as_secs());
    let ms = d.subsec_millis();
    format!("{y:04}-{mo:02}-{d2:02}T{h:02}:{mi:02}:{se:02}.{ms:03}Z")
}

/// Reads what [`rfc3339`] writes: `YYYY-MM-DDTHH:MM:SS[.fff]Z`, UTC only (a split
/// run's shared start time travels in this form). `None` for anything else.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix('z'))?;
    let (date, time) = s.split_once(['T', 't'])?;
    let mut d = date.splitn(3, '-');
    let y: i64 = d.next()?.parse().ok()?;
    let mo: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    let (hms, frac) = match time.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (time, None),
    };
    let mut t = hms.splitn(3, ':');
    let h: u64 = t.next()?.parse().ok()?;
    let mi: u64 = t.next()?.parse().ok()?;
    let se: u64 = t.next()?.parse().ok()?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let nanos: u32 = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<9}").parse().ok()?
        }
        Some(_) => return None,
    };
    let days = days_from_civil(y, mo, day);
    if days < 0 || civil(days as u64 * 86_400).2 != day {
        return None;
    }
    let secs = days as u64 * 86_400 + h * 3600 + mi * 60 + se;
    Some(UNIX_EPOCH + std::time::Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's days-from-civil).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `20261126T153000Z`, for folder names.
pub fn stamp_now() -> String {
    let (y, mo, d, h, mi, se) = civil(now_secs().0);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{se:02}Z")
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(super::civil(1_795_700_000), (2026, 11, 26, 13, 33, 20));
        assert_eq!(super::civil(951_782_400), (2000, 2, 29, 0, 0, 0));
    }

    #[test]
    fn rfc3339_round_trips_and_refuses_what_is_not_utc() {
        use std::time::{Duration, UNIX_EPOCH};
        for ms in [0u64, 951_782_400_123, 1_795_700_000_999, 4_102_444_800_000] {
            let t = UNIX_EPOCH + Duration::from_millis(ms);
            let text = super::rfc3339(t);
            assert_eq!(super::parse_rfc3339(&text), Some(t), "{text}");
        }
        assert_eq!(
            super::parse_rfc3339("2026-11-26T13:33:20Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_795_700_000))
        );
        for bad in [
            "",
            "now",
            "2026-11-26T13:33:20",
            "2026-11-26T13:33:20+01:00",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-26T25:00:00Z",
            "2026-11-26T13:33:20.Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(super::parse_rfc3339(bad), None, "{bad}");
        }
    }
}
