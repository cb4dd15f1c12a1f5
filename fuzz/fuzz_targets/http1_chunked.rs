//! The chunked decoder never panics, decodes the same however the bytes arrive, stops
//! where the body ends (with CRLF CRLF), and its data encoded again decodes to the same
//! data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mse_proxy::decode_chunked;

fuzz_target!(|input: (u8, &[u8])| {
    let (split, data) = input;
    let whole = decode_chunked(data, data.len().max(1));
    let pieces = decode_chunked(data, usize::from(split).max(1));
    match (&whole, &pieces) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        _ => panic!("the split changed the outcome: {whole:?} vs {pieces:?}"),
    }
    let Ok(Some((body, _trailers, used))) = whole else {
        return;
    };
    let framing = &data[..used];
    assert!(framing.ends_with(b"\r\n\r\n"), "{framing:?}");
    // A body never takes bytes past its end: what follows is left for the next request.
    let mut followed = framing.to_vec();
    followed.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    let Ok(Some((_, _, n))) = decode_chunked(&followed, followed.len()) else {
        panic!("bytes after a complete body changed it");
    };
    assert_eq!(n, used);
    let mut again = Vec::new();
    if !body.is_empty() {
        again.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        again.extend_from_slice(&body);
        again.extend_from_slice(b"\r\n");
    }
    again.extend_from_slice(b"0\r\n\r\n");
    let Ok(Some((round, None, n))) = decode_chunked(&again, again.len()) else {
        panic!("re-encoded body does not decode");
    };
    assert_eq!((round, n), (body, again.len()));
});
