//! The flags that bound what an upstream can make the exporter hold or serve: the size of
//! one Graph response and page (`--graph.max-response-size`, `--graph.max-page-rows`), and
//! the distinct values of each call-metric label (`--labels.max-*`).
//!
//! Their defaults are well above any real tenant (README, "Limits"); clap refuses a value
//! that is not a positive number, naming the flag, so nothing here can fail at start.

use clap::Args;

use super::graph::{ResponseLimits, DEFAULT_MAX_PAGE_ROWS};
use super::labels::LabelLimits;
use super::row::MAX_PAGE_ROWS_PARSED;

/// The limits' flags.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Largest Graph response body read, in bytes or with a unit (KiB, MiB, GiB, KB, MB,
    /// GB): a larger one fails the poll (poll_errors_total{reason="response_too_large"})
    /// and is never held whole. A real page of 1,000 rows is 1-2 MB.
    #[arg(long = "graph.max-response-size", default_value = "8MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_response_size: u64,
    /// Most rows one Graph page may have (Graph's have at most 1,000; up to 100,000): a
    /// page with more fails the poll (poll_errors_total{reason="response_too_large"}).
    #[arg(long = "graph.max-page-rows", default_value_t = DEFAULT_MAX_PAGE_ROWS, value_parser = page_rows, value_name = "N")]
    pub max_page_rows: usize,
    /// Distinct trunk_fqdn values per tenant; calls on further trunks count under "other".
    #[arg(long = "labels.max-trunks", default_value_t = LabelLimits::default().trunks, value_parser = positive, value_name = "N")]
    pub max_trunks: usize,
    /// Distinct call_type values per tenant and call log; further ones count under "other".
    #[arg(long = "labels.max-call-types", default_value_t = LabelLimits::default().call_types, value_parser = positive, value_name = "N")]
    pub max_call_types: usize,
    /// Distinct final_sip_code values per tenant (SIP codes are 100-699 or 0).
    #[arg(long = "labels.max-sip-codes", default_value_t = LabelLimits::default().sip_codes, value_parser = positive, value_name = "N")]
    pub max_sip_codes: usize,
    /// Distinct call_end_sub_reason values per tenant.
    #[arg(long = "labels.max-sub-reasons", default_value_t = LabelLimits::default().sub_reasons, value_parser = positive, value_name = "N")]
    pub max_sub_reasons: usize,
    /// Distinct media_path_location values per tenant.
    #[arg(long = "labels.max-media-locations", default_value_t = LabelLimits::default().media_locations, value_parser = positive, value_name = "N")]
    pub max_media_locations: usize,
    /// Distinct values per tenant of every other call-metric label (those of PSTN calls).
    #[arg(long = "labels.max-values", default_value_t = LabelLimits::default().other, value_parser = positive, value_name = "N")]
    pub max_values: usize,
}

impl LimitArgs {
    /// `--graph.max-response-size` and `--graph.max-page-rows`.
    pub fn response(&self) -> ResponseLimits {
        ResponseLimits {
            max_bytes: self.max_response_size,
            max_rows: self.max_page_rows,
        }
    }

    /// `--labels.max-*`.
    pub fn labels(&self) -> LabelLimits {
        LabelLimits {
            trunks: self.max_trunks,
            call_types: self.max_call_types,
            sip_codes: self.max_sip_codes,
            sub_reasons: self.max_sub_reasons,
            media_locations: self.max_media_locations,
            other: self.max_values,
        }
    }
}

fn page_rows(text: &str) -> Result<usize, String> {
    match positive(text)? {
        rows if rows <= MAX_PAGE_ROWS_PARSED => Ok(rows),
        _ => Err(format!(
            "at most {MAX_PAGE_ROWS_PARSED}: pages are given up beyond it while they are read"
        )),
    }
}

fn positive(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number above 0".to_owned()),
    }
}

/// A size in bytes: a number, optionally followed by KiB, MiB, GiB (powers of 1024) or
/// KB, MB, GB (powers of 1000); at least 1 KiB, so that a typo cannot refuse every page.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_bytes: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => {
            return Err(format!(
                "unknown unit '{unit}'; use KiB, MiB, GiB, KB, MB or GB"
            ))
        }
    };
    let bytes = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_bytes))
        .ok_or_else(|| "expected a size such as 8MiB".to_owned())?;
    if bytes < 1024 {
        return Err("must be at least 1KiB (8MiB is the default)".to_owned());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("2MB"), Ok(2_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert!(parse_size("12").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }
}
