//! What every call-log function's rows have in common: the page they arrive in, why a row
//! is refused, its `id` read without parsing the rest, and Graph's lenient timestamps.
//!
//! Graph documents every property of its log rows as nullable, adds properties in beta
//! that leak into v1.0, and formats timestamps with 0 to 7 fractional digits and either `Z`
//! or `+00:00`; the helpers here accept all of that, and describe a malformed row by its
//! field, never by its value (rows hold names and phone numbers).

use std::borrow::Cow;

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// Label value for anything Graph left null or empty.
pub const UNKNOWN: &str = "unknown";

/// One Graph page of a call-log function.
///
/// Rows stay raw here so that one malformed row costs only itself. `value` is required:
/// a 200 without it (a proxy's page, an error body) is not an empty last page.
#[derive(Debug, Deserialize)]
pub struct Page<'a> {
    #[serde(borrow, deserialize_with = "bounded_rows")]
    pub value: Vec<&'a RawValue>,
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
}

/// The most rows a page is parsed with, whatever `--graph.max-page-rows` says: a body of
/// 8 MiB of `1,` would otherwise make a list of 4 million rows, 64 MiB, before any check.
pub const MAX_PAGE_ROWS_PARSED: usize = 100_000;
/// The parse error of a page with more than [`MAX_PAGE_ROWS_PARSED`] rows.
pub const TOO_MANY_ROWS: &str = "a page with more rows than the exporter parses";

/// A page's rows, refused beyond [`MAX_PAGE_ROWS_PARSED`] as they are read (issue #18).
fn bounded_rows<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<&'de RawValue>, D::Error> {
    struct Rows;
    impl<'de> serde::de::Visitor<'de> for Rows {
        type Value = Vec<&'de RawValue>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of rows")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut rows = Vec::new();
            while let Some(row) = seq.next_element::<&'de RawValue>()? {
                if rows.len() == MAX_PAGE_ROWS_PARSED {
                    return Err(serde::de::Error::custom(TOO_MANY_ROWS));
                }
                rows.push(row);
            }
            Ok(rows)
        }
    }
    deserializer.deserialize_seq(Rows)
}

/// Why a row was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    /// What is wrong, without the offending value: rows hold names and phone numbers.
    #[error("row is not a valid {row_type}: {detail}")]
    Shape {
        /// The function's row type in Graph's schema, e.g. `directRoutingLogRow`.
        row_type: &'static str,
        detail: String,
    },
    #[error("row has no id, so it cannot be counted exactly once")]
    MissingId,
    /// An array, string, number, `null` or anything else but an object, however deep.
    #[error("row is not a JSON object")]
    NotAnObject,
    #[error("row {id} has no usable startDateTime")]
    MissingStart { id: String },
}

/// Refuses a row that is not a JSON object before anything parses it: an array of 100,000
/// nested arrays would otherwise be walked by every reader of the row (issue #18). The
/// page parser already checked that the row is well-formed JSON.
pub fn check_object(raw: &str) -> Result<(), RowError> {
    match raw.trim_start().as_bytes().first() {
        Some(b'{') => Ok(()),
        _ => Err(RowError::NotAnObject),
    }
}

/// The `id` of a row, read without parsing the rest of it: most rows of a sweep were seen
/// before, and only new ones are worth a full parse. `None` when the row has no usable id
/// (or is not an object with one `id`); such rows go through the function's full parse.
pub fn peek_id(raw: &str) -> Option<Cow<'_, str>> {
    #[derive(Deserialize)]
    struct IdOnly<'a> {
        #[serde(borrow, default, deserialize_with = "text")]
        id: Option<Cow<'a, str>>,
    }
    serde_json::from_str::<IdOnly>(raw)
        .ok()?
        .id
        .filter(|id| !id.trim().is_empty())
}

/// Extracts the `id` of a row that failed to parse, so that it can still be remembered and
/// counted as invalid only once.
pub fn salvage_id(raw: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly {
        #[serde(default)]
        id: Option<serde_json::Value>,
    }
    match serde_json::from_str::<IdOnly>(raw).ok()?.id? {
        serde_json::Value::String(id) if !id.trim().is_empty() => Some(id),
        _ => None,
    }
}

/// Describes a parse error by the field it is in and what was expected, never by the value
/// (serde's own message quotes the value).
pub fn describe_error(raw: &str, error: &serde_json::Error) -> String {
    let message = error.to_string();
    let expected = message
        .split(", expected ")
        .nth(1)
        .and_then(|rest| rest.split(" at line ").next())
        .map(|what| format!(", expected {what}"))
        .unwrap_or_default();
    let kind = match error.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Eof => "cut short",
        serde_json::error::Category::Data => "wrong type or value",
    };
    // The error's line and column point into `raw`; the field is the last key before it.
    let offset = raw
        .split_inclusive('\n')
        .take(error.line().saturating_sub(1))
        .map(str::len)
        .sum::<usize>()
        + error.column();
    let field = raw
        .get(..offset.min(raw.len()))
        .and_then(|before| before.rsplit_once("\":"))
        .and_then(|(head, _)| head.rsplit_once('"'))
        .map(|(_, key)| key)
        .filter(|key| {
            key.len() <= 64
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '@' || c == '.')
        });
    match field {
        Some(field) => format!("{kind} in field {field}{expected}"),
        None => format!("{kind} at column {}{expected}", error.column()),
    }
}

pub fn non_empty(value: Option<Cow<'_, str>>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty()).map(Cow::into_owned)
}

/// Parses a Graph timestamp: RFC 3339 with 0–9 fractional digits and `Z` or an offset, or
/// the same without an offset (taken as UTC). Graph writes `0001-01-01T00:00:00Z` for
/// "not applicable", which becomes `None`.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    let parsed = DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
        })
        .ok()?;
    (parsed.year() > 1).then_some(parsed)
}

/// A string field, borrowed from the page unless it has escapes (a plain `Option<Cow>`
/// would always copy).
pub fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Text<'de>>::deserialize(deserializer)?.map(|text| text.0))
}

/// A row of `row_type` read just far enough for its id (a function's `WireRow`), borrowed
/// from the page; `Err` when its fields have the wrong JSON types.
pub fn read_wire<'a, W: Deserialize<'a>>(
    row_type: &'static str,
    raw: &'a str,
) -> Result<W, RowError> {
    serde_json::from_str(raw).map_err(|e| RowError::Shape {
        row_type,
        detail: describe_error(raw, &e),
    })
}

/// When a call that started at `start` and lasted `duration_secs` ended; `None` without a
/// duration, or when the sum overflows (Graph documents an int32; anything may arrive). A
/// negative duration counts as none.
pub fn after_duration(start: DateTime<Utc>, duration_secs: Option<i64>) -> Option<DateTime<Utc>> {
    let duration = chrono::TimeDelta::try_seconds(duration_secs?)?;
    start.checked_add_signed(duration.max(chrono::TimeDelta::zero()))
}

/// A timestamp field: absent, null, blank or year 1 is `None`; anything else that does not
/// parse makes the row malformed (the message names the field, never the value).
pub fn timestamp(
    row_type: &'static str,
    field: &str,
    text: Option<&str>,
) -> Result<Option<DateTime<Utc>>, RowError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    match parse_timestamp(text) {
        Some(t) => Ok(Some(t)),
        // Year 1 parses but means "absent"; anything unparseable is a malformed row.
        None if text.starts_with("0001-") => Ok(None),
        None => Err(RowError::Shape {
            row_type,
            detail: format!("wrong type or value in field {field}"),
        }),
    }
}
