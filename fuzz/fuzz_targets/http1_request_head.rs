//! The server's request-head parser never panics, what follows a complete head does not
//! change it, and an accepted head never carries both `Transfer-Encoding` and
//! `Content-Length` (the request smuggling guard of RFC 9112 section 6.3).
#![no_main]

use http::Version;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use libfuzzer_sys::fuzz_target;
use mse_proxy::parse_request_head;

const MAX_HEAD: usize = 32 * 1024;

fuzz_target!(|data: &[u8]| {
    let Ok(Some(req)) = parse_request_head(data, MAX_HEAD) else {
        return;
    };
    let headers = req.headers();
    assert!(!(headers.contains_key(TRANSFER_ENCODING) && headers.contains_key(CONTENT_LENGTH)));
    assert!(matches!(req.version(), Version::HTTP_10 | Version::HTTP_11));
    let mut longer = data.to_vec();
    longer.extend_from_slice(b"GET / HTTP/1.1\r\n");
    let Ok(Some(again)) = parse_request_head(&longer, MAX_HEAD) else {
        panic!("bytes after a complete head changed it");
    };
    assert_eq!(again.method(), req.method());
    assert_eq!(again.uri(), req.uri());
    assert_eq!(again.headers(), req.headers());
});
