//! A request rate over a sliding window, written `N/DURATION` (`50/60s`), as Graph documents
//! its limits and as the exporter's budget flags and the simulated tenant's limits take them.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// At most `requests` within any `per` of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rate {
    pub requests: u32,
    pub per: Duration,
}

impl Rate {
    /// `requests` per `per`.
    pub const fn new(requests: u32, per: Duration) -> Rate {
        Rate { requests, per }
    }

    /// Requests per hour at this rate, for comparing with what a schedule needs.
    pub fn per_hour(&self) -> f64 {
        if self.per.is_zero() {
            return f64::INFINITY;
        }
        f64::from(self.requests) * 3600.0 / self.per.as_secs_f64()
    }

    /// The time `requests` take at this rate.
    pub fn time_for(&self, requests: f64) -> Duration {
        if self.requests == 0 {
            return Duration::MAX;
        }
        Duration::try_from_secs_f64(requests / f64::from(self.requests) * self.per.as_secs_f64())
            .unwrap_or(Duration::MAX)
    }
}

/// Why a rate could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateError(String);

impl fmt::Display for RateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' is not a rate; write requests per duration, such as 50/60s or 10/2s",
            self.0
        )
    }
}

impl std::error::Error for RateError {}

impl FromStr for Rate {
    type Err = RateError;

    fn from_str(text: &str) -> Result<Rate, RateError> {
        let bad = || RateError(text.to_owned());
        let (requests, per) = text.trim().split_once('/').ok_or_else(bad)?;
        let requests: u32 = requests.trim().parse().map_err(|_| bad())?;
        let per = per.trim();
        // `50/s` and `3000/h` read as one of the unit.
        let per = if per.starts_with(|c: char| c.is_ascii_digit()) {
            humantime::parse_duration(per).map_err(|_| bad())?
        } else {
            humantime::parse_duration(&format!("1{per}")).map_err(|_| bad())?
        };
        if requests == 0 || per.is_zero() {
            return Err(bad());
        }
        Ok(Rate { requests, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.requests,
            humantime::format_duration(self.per)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_requests_per_duration() {
        let rate: Rate = "50/60s".parse().unwrap();
        assert_eq!(rate, Rate::new(50, Duration::from_secs(60)));
        assert_eq!(rate.to_string(), "50/1m");
        assert_eq!(
            " 10 / 2s ".parse::<Rate>().unwrap(),
            Rate::new(10, Duration::from_secs(2))
        );
        assert_eq!(
            "3000/h".parse::<Rate>().unwrap(),
            Rate::new(3000, Duration::from_secs(3600))
        );
        assert_eq!("200/1m".parse::<Rate>().unwrap().per_hour(), 12_000.0);
        assert_eq!(rate.time_for(100.0), Duration::from_secs(120));
    }

    #[test]
    fn nonsense_is_refused_with_an_example() {
        for text in [
            "", "50", "50/", "/60s", "0/60s", "50/0s", "x/60s", "50/soon", "-1/60s",
        ] {
            let error = text.parse::<Rate>().unwrap_err().to_string();
            assert!(error.contains("50/60s"), "{text}: {error}");
        }
    }
}
