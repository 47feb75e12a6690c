//! What a broken or hostile upstream sends instead of Graph's pages, for the exporter's
//! bounds (its issue #18): rows with random label values, rows that are not objects, and a
//! page far larger than any of Graph's, streamed rather than held.
//!
//! The first two rewrite a page already rendered (only when their fault is on, so their
//! cost never touches ordinary pages); the third replaces the page with a [`Padding`] body.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, SizeHint};
use hyper::Response;
use serde_json::Value;

use crate::faults::Faults;

/// The body of the simulator's answers: buffered, or an oversized page streamed.
pub(crate) type SimBody = Either<Full<Bytes>, Padding>;
/// An answer of the simulator.
pub(crate) type SimResponse = Response<SimBody>;

/// The answer of `Faults::oversized_page_mib`: 200 with a streamed page of `mib` MiB.
pub(crate) fn oversized(mib: u32) -> SimResponse {
    let mut response = Response::new(Either::Right(Padding::new(mib)));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// How deep the nested-array row of `non_object_rows` is.
pub(crate) const NESTED_DEPTH: usize = 100_000;

/// The rows `non_object_rows` opens every page with: an array, a string, a number, null,
/// a boolean and an array nested [`NESTED_DEPTH`] deep. The same on every page, so an
/// exporter counts exactly this many invalid rows in all.
pub(crate) fn non_object_rows() -> Vec<String> {
    vec![
        r#"[{"id":"in-an-array"}]"#.to_owned(),
        r#""a row that is a string""#.to_owned(),
        "12.5".to_owned(),
        "null".to_owned(),
        "true".to_owned(),
        format!("{}{}", "[".repeat(NESTED_DEPTH), "]".repeat(NESTED_DEPTH)),
    ]
}

/// The page `body` as the faults' hostile modes change it; unchanged when they are off or
/// the body is not a page.
pub(crate) fn rewrite(body: String, faults: &Faults) -> String {
    if !faults.random_labels && !faults.non_object_rows {
        return body;
    }
    let mut page: Value = match serde_json::from_str(&body) {
        Ok(page) => page,
        Err(_) => return body,
    };
    let Some(rows) = page.get_mut("value").and_then(Value::as_array_mut) else {
        return body;
    };
    if faults.random_labels {
        rows.iter_mut().for_each(randomise_labels);
    }
    let Ok(mut out) = serde_json::to_string(&page) else {
        return body;
    };
    if faults.non_object_rows {
        // Spliced as text: serde_json's Value could not hold the nested row (it recurses).
        if let Some(at) = out.find("\"value\":[") {
            let at = at + "\"value\":[".len();
            let mut extra = non_object_rows().join(",");
            if !out[at..].starts_with(']') {
                extra.push(',');
            }
            out.insert_str(at, &extra);
        }
    }
    out
}

/// Label fields derived from the row's id: a row looks the same on every page, and nearly
/// every row has values no other row has.
fn randomise_labels(row: &mut Value) {
    let Some(object) = row.as_object_mut() else {
        return;
    };
    let Some(id) = object.get("id").and_then(Value::as_str) else {
        return;
    };
    let hash = xxh(id);
    let field = |n: u64| hash.rotate_left((n * 13) as u32);
    object.insert(
        "callType".into(),
        Value::from(format!("type{:x}", field(1) % 100_000)),
    );
    object.insert(
        "trunkFullyQualifiedDomainName".into(),
        Value::from(format!("sbc{:x}.hostile.example", field(2))),
    );
    object.insert("finalSipCode".into(), Value::from(100 + field(3) % 600));
    object.insert("callEndSubReason".into(), Value::from(field(4) % 1_000_000));
    object.insert(
        "mediaPathLocation".into(),
        Value::from(format!("DC{:X}", field(5) % 100_000)),
    );
}

/// A 64-bit FNV-1a hash: stable, and enough to spread ids over label values.
fn xxh(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One piece of the padding: 64 KiB, a JSON string row and its comma.
const CHUNK_BYTES: usize = 64 * 1024;

/// A page of `mib` MiB: an ordinary page's start, string rows of 64 KiB each, and its
/// end, sent chunk by chunk from one shared chunk, so the simulator holds 64 KiB whatever
/// the size. No Content-Length: a hostile upstream would not announce it either.
pub(crate) struct Padding {
    head: Option<Bytes>,
    chunk: Bytes,
    chunks_left: u64,
    tail: Option<Bytes>,
}

impl Padding {
    pub fn new(mib: u32) -> Padding {
        let mut chunk = Vec::with_capacity(CHUNK_BYTES);
        chunk.push(b'"');
        chunk.resize(CHUNK_BYTES - 2, b'x');
        chunk.extend_from_slice(b"\",");
        Padding {
            head: Some(Bytes::from_static(br#"{"@odata.count":0,"value":["#)),
            chunk: Bytes::from(chunk),
            chunks_left: u64::from(mib) * (1024 * 1024 / CHUNK_BYTES as u64),
            tail: Some(Bytes::from_static(b"null]}")),
        }
    }
}

impl Body for Padding {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(head) = this.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        if this.chunks_left > 0 {
            this.chunks_left -= 1;
            return Poll::Ready(Some(Ok(Frame::data(this.chunk.clone()))));
        }
        Poll::Ready(this.tail.take().map(|tail| Ok(Frame::data(tail))))
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.chunks_left == 0 && self.tail.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewritten_pages_stay_valid_json_with_the_extra_rows() {
        let faults = Faults {
            random_labels: true,
            non_object_rows: true,
            ..Faults::default()
        };
        let body = r#"{"@odata.count":1,"value":[{"id":"a","callType":"ByotIn"}]}"#;
        let out = rewrite(body.to_owned(), &faults);
        #[derive(serde::Deserialize)]
        struct Page<'a> {
            #[serde(borrow)]
            value: Vec<&'a serde_json::value::RawValue>,
        }
        let page: Page = serde_json::from_str(&out).unwrap();
        assert_eq!(page.value.len(), 7);
        assert!(page.value[6].get().contains("hostile.example"));
        assert_eq!(rewrite(out.clone(), &Faults::default()), out);
        let empty = rewrite(r#"{"value":[]}"#.to_owned(), &faults);
        assert_eq!(serde_json::from_str::<Page>(&empty).unwrap().value.len(), 6);
    }
}
