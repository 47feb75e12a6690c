//! Parsers of flag values that several components' flags share, below all of them so
//! that each component's `Args` can use them without reaching up to the command line.

use std::time::Duration;

/// Parses durations in human form: `90s`, `5m`, `1h`, `1h30m`, `500ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(d) => Ok(d),
        Err(_) => Err(format!(
            "'{text}' is not a duration; write a number with a unit, such as 90s, 5m, 1h or 1h30m"
        )),
    }
}
