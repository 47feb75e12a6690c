//! Small pieces of HTTP handling that the simulated Graph, token endpoint and control
//! endpoints share: bounded request bodies and the decoding of request paths.

use hyper::body::Incoming;

/// The whole body of a request, or `None` if it is larger than `limit` bytes or breaks off.
pub(crate) async fn read_body(body: Incoming, limit: usize) -> Option<bytes::Bytes> {
    use http_body_util::BodyExt;
    http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .ok()
        .map(|collected| collected.to_bytes())
}

/// Decodes `%XX` escapes of a path; `None` if the result is not UTF-8 or an escape is cut.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}
