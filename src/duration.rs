//! Durations on the command line: seconds, as docker writes them
//! (`docker stop -t 10`, `--stop-timeout 10`), fractions allowed (`0.2`).
//!
//! A number of seconds ends up as a `std::time::Duration`, which holds no
//! NaN, no infinity, nothing negative and nothing past u64::MAX seconds:
//! `Duration::from_secs_f64` panics on those, and `Instant::now() + d`
//! panics when the sum overflows the clock. So every seconds flag is parsed
//! here, once, by clap (`value_parser = Seconds::parse`), and a number that
//! cannot be honoured is refused before anything starts: exit 125 with the
//! allowed range, like any bad usage (see `main`).
//!
//! The range is 0 to one week (604800 s). That is far beyond any grace
//! period or sleep a lesson or a test needs, and it catches a slip such as
//! `1e30`. For "no limit", say so: leave out `--sleep` or `--stop-after`,
//! or give a stop timeout of `-1` (wait forever), the one negative docker
//! accepts.

use std::fmt;
use std::time::Duration;

/// The longest duration any flag accepts: one week.
pub const MAX: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// What every seconds flag accepts, as its error message says it.
const RANGE: &str = "give seconds from 0 to 604800 (one week)";

/// A number of seconds from the command line, 0 to `MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(Duration);

impl Seconds {
    /// clap's value parser for a seconds flag.
    pub fn parse(text: &str) -> Result<Seconds, String> {
        let value: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number: {RANGE}"))?;
        Seconds::from_f64(value).map_err(|why| format!("{text} is {why}: {RANGE}"))
    }

    /// A number of seconds already read as a float (a record's field, say):
    /// refused, with the reason, unless it lies in 0 to `MAX`.
    pub fn from_f64(value: f64) -> Result<Seconds, &'static str> {
        if value.is_nan() {
            Err("not a number")
        } else if value < 0.0 {
            Err("negative")
        } else if value > MAX.as_secs_f64() {
            Err("more than one week")
        } else {
            // In range, so from_secs_f64 cannot panic.
            Ok(Seconds(Duration::from_secs_f64(value)))
        }
    }

    pub fn duration(self) -> Duration {
        self.0
    }
}

impl fmt::Display for Seconds {
    /// As it was written: `10`, `0.2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

/// `docker stop`'s grace period between the stop signal and SIGKILL:
/// seconds, or `-1` to wait forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopTimeout {
    After(Seconds),
    Forever,
}

impl StopTimeout {
    /// clap's value parser for `--stop-timeout` and `stop -t`.
    pub fn parse(text: &str) -> Result<StopTimeout, String> {
        if text.trim().parse::<f64>() == Ok(-1.0) {
            return Ok(StopTimeout::Forever);
        }
        Seconds::parse(text).map(StopTimeout::After).map_err(|err| format!("{err}, or -1 to wait forever"))
    }

    /// How long to wait before SIGKILL; `None`: forever.
    pub fn limit(self) -> Option<Duration> {
        match self {
            StopTimeout::After(seconds) => Some(seconds.duration()),
            StopTimeout::Forever => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_range_and_out() {
        assert_eq!(Seconds::parse("0.25").unwrap().duration(), Duration::from_millis(250));
        assert_eq!(Seconds::parse("604800").unwrap().duration(), MAX);
        for bad in ["nan", "inf", "-inf", "1e30", "-0.5", "604800.001", "", "ten"] {
            assert!(Seconds::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(StopTimeout::parse("-1"), Ok(StopTimeout::Forever));
        assert!(StopTimeout::parse("-2").unwrap_err().contains("or -1 to wait forever"));
    }

    #[test]
    fn displays_as_written() {
        assert_eq!(Seconds::parse("0.2").unwrap().to_string(), "0.2");
        assert_eq!(Seconds::parse("10").unwrap().to_string(), "10");
    }
}
