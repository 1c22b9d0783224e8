//! Wall-clock times as `docker logs` writes and reads them: RFC 3339 in
//! UTC with nanoseconds (`-t`), and `--since`/`--until` as a duration back
//! from now (`10m`, `1h30m`), a Unix time (`1764403200.5`) or an RFC 3339
//! time with its zone (`2026-11-29T07:48:03Z`, `...+01:00`).
//!
//! A time is an `i64` of nanoseconds since the Unix epoch (enough until
//! the year 2262). Converting a day count to a calendar date and back is
//! the proleptic Gregorian arithmetic of Howard Hinnant's "chrono-Compatible
//! Low-Level Date Algorithms": years of 400 years (146,097 days) that start
//! on 1 March, so that the leap day is the last day of a year.

use std::time::{SystemTime, UNIX_EPOCH};

const NS: i64 = 1_000_000_000;

/// Now, in nanoseconds since the epoch.
pub fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// Days since 1970-01-01 of a date (month 1 to 12, day 1 to 31).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01: (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// `2026-11-29T07:48:03.123456789Z`: the form `docker logs -t` prints.
pub fn rfc3339(ns: i64) -> String {
    let (secs, nanos) = (ns.div_euclid(NS), ns.rem_euclid(NS));
    let (days, second_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (second_of_day / 3600, second_of_day / 60 % 60, second_of_day % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{nanos:09}Z")
}

/// A `--since` or `--until` value, as nanoseconds since the epoch; `now`
/// is the moment a duration counts back from.
pub fn parse_time(text: &str, now: i64) -> Result<i64, String> {
    let text = text.trim();
    let why = "give a duration back from now (10m, 1h30m, 90s), a Unix time (1764403200), or a time \
               with its zone (2026-11-29T07:48:03Z, 2026-11-29T08:48:03+01:00)";
    let out_of_range = || format!("{text:?} is out of range: pidlab reads times from 1970 to 2261");
    match parse_duration(text) {
        Some(Some(duration)) => return Ok(now.saturating_sub(duration).max(0)),
        Some(None) => return Err(out_of_range()),
        None => {}
    }
    match parse_unix(text) {
        Some(Some(ns)) => return Ok(ns),
        Some(None) => return Err(out_of_range()),
        None => {}
    }
    if text.len() >= 10 && text.as_bytes()[4] == b'-' {
        return parse_rfc3339(text).map_err(|problem| format!("{text:?}: {problem}; {why}"));
    }
    Err(format!("{text:?} is not a time: {why}"))
}

/// Go's duration syntax, as docker takes it: numbers with units h, m, s,
/// ms, us, ns, one after another (`1h30m`, `1.5s`). Not negative. `None`
/// if it is not a duration; `Some(None)` if it is one too long to count
/// back from now in nanoseconds.
fn parse_duration(text: &str) -> Option<Option<i64>> {
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600e9,
            "m" => 60e9,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    Some((total < 1e18).then_some(total as i64))
}

/// Seconds since the epoch, a fraction allowed (`1764403200.25`). `None`
/// if it is not one; `Some(None)` if it is past what nanoseconds in an
/// i64 hold (the year 2262).
fn parse_unix(text: &str) -> Option<Option<i64>> {
    let (whole, fraction) = match text.split_once('.') {
        Some((_, "")) => return None,
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fraction = fraction_ns(fraction)?;
    Some(whole.parse::<i64>().ok().and_then(|s| s.checked_mul(NS)).and_then(|ns| ns.checked_add(fraction)))
}

/// `.123` after the seconds, as nanoseconds (at most 9 digits).
fn fraction_ns(digits: &str) -> Option<i64> {
    if digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!("{digits:0<9}").parse().unwrap_or(0))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`.
fn parse_rfc3339(text: &str) -> Result<i64, String> {
    let number = |range: std::ops::Range<usize>, name: &str, max: i64| -> Result<i64, String> {
        let field = text.get(range).filter(|f| f.bytes().all(|b| b.is_ascii_digit()));
        match field.and_then(|f| f.parse::<i64>().ok()) {
            Some(value) if value <= max => Ok(value),
            _ => Err(format!("its {name} is not a number up to {max}")),
        }
    };
    let bytes = text.as_bytes();
    let separators = [(7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if text.len() < 19 || separators.iter().any(|(at, c)| !bytes[*at].eq_ignore_ascii_case(c)) {
        return Err("write it as YYYY-MM-DDTHH:MM:SS with a zone".into());
    }
    let (year, month, day) =
        (number(0..4, "year", 9999)?, number(5..7, "month", 12)?, number(8..10, "day", 31)?);
    let (hour, minute, second) =
        (number(11..13, "hour", 23)?, number(14..16, "minute", 59)?, number(17..19, "second", 59)?);
    let mut rest = &text[19..];
    let mut nanos = 0;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let digits = after_dot.find(|c: char| !c.is_ascii_digit()).unwrap_or(after_dot.len());
        if digits == 0 {
            return Err("it has a '.' with no digits after it".into());
        }
        nanos = fraction_ns(&after_dot[..digits]).ok_or("its fraction has more than 9 digits")?;
        rest = &after_dot[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        zone if zone.len() == 6 && (zone.starts_with('+') || zone.starts_with('-')) && &zone[3..4] == ":" => {
            let hours: i64 = zone[1..3].parse().map_err(|_| "its zone is not +HH:MM")?;
            let minutes: i64 = zone[4..6].parse().map_err(|_| "its zone is not +HH:MM")?;
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            sign * (hours * 3600 + minutes * 60)
        }
        "" => return Err("it has no zone (pidlab does not guess yours): add Z for UTC, or +HH:MM".into()),
        _ => return Err("its zone is neither Z nor +HH:MM".into()),
    };
    if month == 0 || day == 0 {
        return Err("months and days count from 1".into());
    }
    if day > days_in_month(year, month) {
        return Err(format!("{year:04}-{month:02} has no day {day}"));
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    seconds
        .checked_mul(NS)
        .and_then(|ns| ns.checked_add(nanos))
        .filter(|ns| *ns >= 0)
        .ok_or_else(|| "it is out of range: pidlab reads times from 1970 to 2261".to_string())
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_match_known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 11, 29), 20_786); // `date -u -d 2026-11-29 +%s` / 86400
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn rfc3339_prints_utc_with_nanoseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        // `date -u -d @1764402483` says Sat Nov 29 07:48:03 UTC 2025.
        assert_eq!(rfc3339(1_764_402_483 * NS + 5), "2025-11-29T07:48:03.000000005Z");
    }

    #[test]
    fn times_parse_in_every_form_docker_takes() {
        let now = 1_764_402_483 * NS;
        assert_eq!(parse_time("10m", now), Ok(now - 600 * NS));
        assert_eq!(parse_time("1h30m", now), Ok(now - 5400 * NS));
        assert_eq!(parse_time("1.5s", now), Ok(now - 1_500_000_000));
        assert_eq!(parse_time("1764402483", now), Ok(now));
        assert_eq!(parse_time("1764402483.25", now), Ok(now + 250_000_000));
        assert_eq!(parse_time("2025-11-29T07:48:03Z", now), Ok(now));
        assert_eq!(parse_time("2025-11-29T08:48:03.5+01:00", now), Ok(now + 500_000_000));
        assert_eq!(parse_time(&rfc3339(now + 7), now), Ok(now + 7), "what -t prints reads back");
        for bad in ["", "soon", "10x", "2025-11-29T07:48:03", "2025-13-01T00:00:00Z", "2025-11-29 07:48:03Z"]
        {
            let err = parse_time(bad, now).unwrap_err();
            assert!(err.contains("10m") || err.contains("zone") || err.contains("month"), "{bad:?}: {err}");
        }
    }
}
