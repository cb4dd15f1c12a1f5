//! The sizes of what every request moves: the chosen upstream, the prepared exchange and
//! the futures of the request path. Each future a request awaits is built, then moved
//! whole into its caller's; a field or a state that only some routes need, held inline,
//! is copied by every request. These tests print the sizes (`--nocapture`) and hold the
//! structs of the common path to a bound, so that rare state goes behind
//! [`super::rare::Rare`] rather than into them.

use std::future::Future;
use std::mem::size_of;

use super::exchange::Prepared;
use super::rare::Rare;
use super::select::Chosen;
use crate::body::RequestBody;
use crate::upstream::Sent;

/// The size of the future a function with two arguments returns.
fn future2<A, B, F: Future>(_: impl FnOnce(A, B) -> F) -> usize {
    size_of::<F>()
}

/// The size of the future a function with three arguments returns.
fn future3<A, B, C, F: Future>(_: impl FnOnce(A, B, C) -> F) -> usize {
    size_of::<F>()
}

/// The size of the future a function with five arguments returns.
fn future5<A, B, C, D, E, F: Future>(_: impl FnOnce(A, B, C, D, E) -> F) -> usize {
    size_of::<F>()
}

/// The size of the future a function with six arguments returns.
fn future6<A, B, C, D, E, G, F: Future>(_: impl FnOnce(A, B, C, D, E, G) -> F) -> usize {
    size_of::<F>()
}

#[test]
fn the_common_path_moves_small_structs() {
    let chosen = size_of::<Chosen>();
    let prepared = size_of::<Prepared>();
    println!(
        "Chosen {chosen} B, Prepared {prepared} B, Rare {} B (boxed)",
        size_of::<Rare>()
    );
    println!(
        "Sent {} B, Response<ProxyBody> {} B, UpstreamBody {} B, ResponseHead {} B",
        size_of::<Sent>(),
        size_of::<http::Response<crate::body::ProxyBody>>(),
        size_of::<crate::http1::UpstreamBody>(),
        size_of::<crate::http1::ResponseHead>(),
    );
    println!(
        "futures: connection (HTTP/1.1) {} B, handle {} B, forward {} B, send_plain {} B",
        future3(crate::http1::serve),
        future2(super::handle),
        future5(super::forward),
        future6(crate::upstream::Pool::send_plain::<RequestBody>),
    );
    // Room for the upstream, the policy, the rewrite, the pages, the body limit, HSTS and
    // the one pointer to the rare state; nothing else.
    assert!(chosen <= 128, "Chosen is {chosen} bytes");
    assert!(prepared <= 240, "Prepared is {prepared} bytes");
}
