//! Reading a call-log request as Graph does:
//! `/v1.0/communications/callRecords/{function}(fromDateTime=..,toDateTime=..)?$skip=N`,
//! with Graph's error for every way a client gets it wrong, and the nextLink that leads
//! on from a page.
//!
//! Which functions exist, and what their parameters are called, comes from the tenant's
//! call logs; nothing here knows a particular function.

use chrono::{DateTime, NaiveDate, Utc};

use super::reply::GraphError;
use crate::call_log::{CallLog, Function};
use crate::http::percent_decode;
use crate::time::ceil_ticks;

/// Where Graph's call-log functions live.
pub(super) const CALL_RECORDS_PATH: &str = "/v1.0/communications/callRecords/";
/// The namespace SDKs put before a function's name.
const CALL_RECORDS_NAMESPACE: &str = "microsoft.graph.callRecords.";
/// The longest window one request may ask for.
const MAX_RANGE: chrono::TimeDelta = chrono::TimeDelta::days(90);

/// A parsed call-log request.
pub(crate) struct CallQuery<'a> {
    /// The log of the function it calls.
    pub log: &'a dyn CallLog,
    /// Window `[from, to)` in ticks, rounded up so that `start >= from` compares exactly.
    pub from: i64,
    pub to: i64,
    /// The parameter values as the client wrote them, echoed in nextLink like Graph does.
    raw_from: String,
    raw_to: String,
    pub skip: usize,
}

impl std::fmt::Debug for CallQuery<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallQuery")
            .field("function", &self.log.function().name)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("skip", &self.skip)
            .finish()
    }
}

impl CallQuery<'_> {
    /// The link to the page after `skip` rows, at `base` (a base URL without a trailing
    /// slash).
    pub fn next_link(&self, base: &str, skip: usize) -> String {
        let function = self.log.function();
        format!(
            "{base}{CALL_RECORDS_PATH}{}({}={},{}={})?$skip={skip}",
            function.name,
            function.from_parameter,
            self.raw_from,
            function.to_parameter,
            self.raw_to
        )
    }
}

/// Parses a call-log request for one of `logs`' functions.
pub(crate) fn parse_request<'a>(
    path: &str,
    query: Option<&str>,
    logs: &[&'a dyn CallLog],
) -> Result<CallQuery<'a>, GraphError> {
    let decoded = percent_decode(path)
        .ok_or_else(|| GraphError::bad_request("The request URI is not valid."))?;
    let (log, arguments) = resolve_function(&decoded, logs)?;
    let function = log.function();
    let arguments = arguments
        .and_then(|arguments| arguments.strip_suffix(')'))
        .ok_or_else(|| {
            GraphError::bad_request(format!(
                "The function '{}' requires the parameters '{}' and '{}'.",
                function.name, function.from_parameter, function.to_parameter
            ))
        })?;
    let [(from_time, raw_from), (to_time, raw_to)] = parse_window(log, arguments)?;
    if from_time >= to_time {
        return Err(GraphError::bad_request(format!(
            "{} must be earlier than {}.",
            function.from_parameter, function.to_parameter
        )));
    }
    if to_time - from_time > MAX_RANGE {
        return Err(GraphError::new(
            406,
            "NotAcceptable",
            "The requested time range exceeds the maximum of 90 days.",
        ));
    }
    let ticks = |time: DateTime<Utc>| {
        ceil_ticks(time).ok_or_else(|| GraphError::bad_request("The date is out of range."))
    };
    Ok(CallQuery {
        log,
        from: ticks(from_time)?,
        to: ticks(to_time)?,
        raw_from,
        raw_to,
        skip: parse_skip(query)?,
    })
}

/// The call-log function a request's path names, if it names one of `logs`', whatever
/// else is wrong with the request: the rate limit it counts against.
pub(crate) fn function_named(path: &str, logs: &[&dyn CallLog]) -> Option<&'static Function> {
    let decoded = percent_decode(path)?;
    resolve_function(&decoded, logs)
        .ok()
        .map(|(log, _)| log.function())
}

/// The log whose function a decoded path calls, with the text after the function's
/// name and `(`, if any.
fn resolve_function<'a, 'p>(
    decoded: &'p str,
    logs: &[&'a dyn CallLog],
) -> Result<(&'a dyn CallLog, Option<&'p str>), GraphError> {
    let not_found = || GraphError::not_found(decoded);
    let rest = strip_prefix_ignore_case(decoded, CALL_RECORDS_PATH).ok_or_else(not_found)?;
    let rest = strip_prefix_ignore_case(rest, CALL_RECORDS_NAMESPACE).unwrap_or(rest);
    let (name, arguments) = match rest.split_once('(') {
        Some((name, arguments)) => (name, Some(arguments)),
        None => (rest, None),
    };
    let log = logs
        .iter()
        .find(|log| name.eq_ignore_ascii_case(log.function().name))
        .ok_or_else(not_found)?;
    Ok((*log, arguments))
}

/// The window's two parameters, as times and as written, from the text between the
/// parentheses.
fn parse_window(
    log: &dyn CallLog,
    arguments: &str,
) -> Result<[(DateTime<Utc>, String); 2], GraphError> {
    let function = log.function();
    let mut from = None;
    let mut to = None;
    let mut position = 0;
    for argument in arguments.split(',') {
        let Some((name, value)) = argument.split_once('=') else {
            return Err(GraphError::bad_request(format!(
                "Syntax error at position {} in '{arguments}'.",
                position + argument.len()
            )));
        };
        let value_position = position + name.len() + 1;
        position += argument.len() + 1;
        let slot = match name.trim() {
            n if n.eq_ignore_ascii_case(function.from_parameter) => &mut from,
            n if n.eq_ignore_ascii_case(function.to_parameter) => &mut to,
            n => {
                return Err(GraphError::bad_request(format!(
                    "The parameter '{n}' is not in scope of the function '{}'.",
                    function.name
                )))
            }
        };
        if slot.is_some() {
            return Err(GraphError::bad_request(format!(
                "The parameter '{}' is given more than once.",
                name.trim()
            )));
        }
        *slot = Some(parse_time(value, value_position, arguments)?);
    }
    let missing = |name: &str| {
        GraphError::bad_request(format!(
            "The function '{}' requires the parameter '{name}'.",
            function.name
        ))
    };
    Ok([
        from.ok_or_else(|| missing(function.from_parameter))?,
        to.ok_or_else(|| missing(function.to_parameter))?,
    ])
}

/// Parses one `fromDateTime`/`toDateTime` value: an unquoted UTC timestamp or a bare date.
fn parse_time(
    value: &str,
    position: usize,
    arguments: &str,
) -> Result<(DateTime<Utc>, String), GraphError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(GraphError::bad_request(format!(
            "Expression expected at position {position} in '{arguments}'."
        )));
    }
    if value.starts_with('\'') || value.starts_with('"') {
        return Err(GraphError::bad_request(
            "The types 'Edm.DateTimeOffset' and 'Edm.String' are not compatible.",
        ));
    }
    let parsed = if value.len() == 10 {
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .ok()
            .and_then(|date| date.and_hms_opt(0, 0, 0))
            .map(|time| time.and_utc())
    } else {
        DateTime::parse_from_rfc3339(value)
            .ok()
            .filter(|_| value.contains('T') || value.contains('t'))
            .map(|time| time.with_timezone(&Utc))
    };
    parsed.map(|time| (time, value.to_owned())).ok_or_else(|| {
        GraphError::bad_request(format!(
            "Unrecognized 'Edm.DateTimeOffset' literal '{value}' at '{position}' in '{arguments}'."
        ))
    })
}

fn parse_skip(query: Option<&str>) -> Result<usize, GraphError> {
    let Some(query) = query else { return Ok(0) };
    // `$` may arrive as `%24`; form decoding handles both.
    let mut skip = 0;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key.eq_ignore_ascii_case("$skip") {
            skip = value.trim().parse().map_err(|_| {
                GraphError::bad_request(format!(
                    "Invalid value '{value}' for query option '$skip'."
                ))
            })?;
        }
    }
    Ok(skip)
}

pub(super) fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}
