//! `getPstnCalls` (Calling Plan and Operator Connect calls) of a tenant that has no such
//! numbers: the function exists, checks its parameters like any other, and every page is
//! empty.
//!
//! This is where the simulated PSTN call log will live: replacing [`NoPstnCalls`] with a
//! `StoredLog` of `pstnCallLogRow`s drawn by this module is all the generic code needs.

use crate::call_log::{self, CallLog, Function, PageRequest, Served};
use crate::stats::ServedRow;

pub(crate) static FUNCTION: Function = Function {
    name: "getPstnCalls",
    row_type: "pstnCallLogRow",
    from_parameter: "fromDateTime",
    to_parameter: "toDateTime",
};

/// The PSTN call log of a tenant without Calling Plan or Operator Connect numbers.
pub(crate) struct NoPstnCalls;

impl CallLog for NoPstnCalls {
    fn function(&self) -> &'static Function {
        &FUNCTION
    }

    fn write_page(&self, out: &mut String, request: &PageRequest<'_>) -> Served {
        call_log::write_page::<()>(out, request.context, &[], None, |_, _| {});
        Served {
            rows: 0,
            next_link: false,
        }
    }

    fn release(&self, _now_ms: i64) -> bool {
        false
    }

    fn served_rows(&self, _out: &mut Vec<ServedRow>) {}
}
