//! The server's request-head parser never panics, what follows a complete head does not
//! change it, and an accepted head has one unambiguous framing: never both
//! `Transfer-Encoding` and `Content-Length`, at most one of each, `Transfer-Encoding` only
//! `chunked`, and a target within the limit (the request smuggling guards of RFC 9112
//! sections 3 and 6).
#![no_main]

use http::Version;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use libfuzzer_sys::fuzz_target;
use mse_proxy::parse_request_head;

const MAX_HEAD: usize = 32 * 1024;
const MAX_TARGET: usize = 8 * 1024;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((req, len))) = parse_request_head(data, MAX_HEAD, MAX_TARGET) else {
        return;
    };
    let headers = req.headers();
    assert!(!(headers.contains_key(TRANSFER_ENCODING) && headers.contains_key(CONTENT_LENGTH)));
    assert!(headers.get_all(CONTENT_LENGTH).iter().count() <= 1);
    if let Some(cl) = headers.get(CONTENT_LENGTH) {
        assert!(cl.as_bytes().iter().all(u8::is_ascii_digit), "{cl:?}");
    }
    let codings: Vec<_> = headers.get_all(TRANSFER_ENCODING).iter().collect();
    assert!(codings.len() <= 1);
    if let Some(te) = codings.first() {
        assert!(te.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked"), "{te:?}");
    }
    assert!(req.uri().to_string().len() <= MAX_TARGET);
    assert!(matches!(req.version(), Version::HTTP_10 | Version::HTTP_11));
    let mut longer = data.to_vec();
    longer.extend_from_slice(b"GET / HTTP/1.1\r\n");
    let Ok(Some((again, again_len))) = parse_request_head(&longer, MAX_HEAD, MAX_TARGET) else {
        panic!("bytes after a complete head changed it");
    };
    assert_eq!(again_len, len);
    assert_eq!(again.method(), req.method());
    assert_eq!(again.uri(), req.uri());
    assert_eq!(again.headers(), req.headers());
});
