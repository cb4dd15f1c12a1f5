//! Where access log lines go ([`AccessLogSink`]), each worker's buffer of lines not yet
//! written ([`LogBuffer`]), the worker's clock for the time variables ([`Clock`]) and its
//! request id generator ([`RequestIds`]).
//!
//! A worker appends whole lines to its own buffer and writes the buffer in one call under
//! the sink's lock when it passes [`FLUSH_AT`] bytes, once a second when it is not empty,
//! and when the worker stops: lines of different workers never interleave, and none is
//! lost on a graceful shutdown.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::num::NonZeroU64;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderValue;

/// A worker writes its buffer out once it holds this many bytes.
pub(crate) const FLUSH_AT: usize = 64 * 1024;

/// How often a worker writes out what its buffer holds.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Where the access log goes: standard output (the default), a file, or any writer.
/// Cheap to clone; the clones share the writer.
#[derive(Clone)]
pub struct AccessLogSink {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl std::fmt::Debug for AccessLogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessLogSink(..)")
    }
}

impl Default for AccessLogSink {
    fn default() -> Self {
        Self::stdout()
    }
}

impl AccessLogSink {
    /// Standard output.
    pub fn stdout() -> Self {
        Self::writer(io::stdout())
    }

    /// The file at `path`, appended to (created when missing). `/dev/stdout` and
    /// `/dev/stderr` name the standard streams.
    pub fn file(path: &Path) -> io::Result<Self> {
        if path == Path::new("/dev/stdout") {
            return Ok(Self::stdout());
        }
        if path == Path::new("/dev/stderr") {
            return Ok(Self::writer(io::stderr()));
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self::writer(file))
    }

    /// Any writer; each worker writes whole lines to it in one `write_all`.
    pub fn writer(w: impl Write + Send + 'static) -> Self {
        Self {
            out: Arc::new(Mutex::new(Box::new(w))),
        }
    }

    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        out.write_all(bytes)?;
        out.flush()
    }
}

/// One worker's lines not written yet.
pub(crate) struct LogBuffer {
    buf: RefCell<Vec<u8>>,
    sink: AccessLogSink,
    pub(crate) clock: Clock,
    /// Whether the last write failed (reported once until one succeeds).
    failing: Cell<bool>,
}

impl LogBuffer {
    pub(crate) fn new(sink: AccessLogSink) -> Self {
        Self {
            buf: RefCell::new(Vec::new()),
            sink,
            clock: Clock::default(),
            failing: Cell::new(false),
        }
    }

    /// Appends what `line` writes, and writes the buffer out when it is full.
    pub(crate) fn push(&self, line: impl FnOnce(&Clock, &mut Vec<u8>)) {
        let mut buf = self.buf.borrow_mut();
        line(&self.clock, &mut buf);
        if buf.len() >= FLUSH_AT {
            self.write_out(&mut buf);
        }
    }

    /// Writes out what the buffer holds.
    pub(crate) fn flush(&self) {
        let mut buf = self.buf.borrow_mut();
        if !buf.is_empty() {
            self.write_out(&mut buf);
        }
    }

    fn write_out(&self, buf: &mut Vec<u8>) {
        match self.sink.write(buf) {
            Ok(()) => self.failing.set(false),
            Err(e) => {
                if !self.failing.replace(true) {
                    tracing::error!(error = %e, "cannot write the access log; lines are dropped");
                }
            }
        }
        buf.clear();
        if buf.capacity() > 4 * FLUSH_AT {
            buf.shrink_to(FLUSH_AT);
        }
    }
}

impl Drop for LogBuffer {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The time variables, formatted once per second per worker.
#[derive(Default)]
pub(crate) struct Clock {
    cached: RefCell<Cached>,
}

#[derive(Default)]
struct Cached {
    second: u64,
    local: String,
    iso: String,
}

impl Clock {
    fn now(&self) -> (SystemTime, std::cell::RefMut<'_, Cached>) {
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut c = self.cached.borrow_mut();
        if c.second != secs || c.local.is_empty() {
            c.second = secs;
            let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(0))
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let month = MONTHS[usize::from(u8::from(t.month())) - 1];
            c.local.clear();
            let _ = write!(
                c.local,
                "{:02}/{month}/{}:{:02}:{:02}:{:02} +0000",
                t.day(),
                t.year(),
                t.hour(),
                t.minute(),
                t.second()
            );
            c.iso.clear();
            let _ = write!(
                c.iso,
                "{}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            );
        }
        (now, c)
    }

    /// `$time_local` (UTC).
    pub(crate) fn local(&self, s: &mut String) -> bool {
        s.push_str(&self.now().1.local);
        true
    }

    /// `$time_iso8601` (UTC).
    pub(crate) fn iso8601(&self, s: &mut String) -> bool {
        s.push_str(&self.now().1.iso);
        true
    }

    /// `$msec`.
    pub(crate) fn msec(&self, s: &mut String) -> bool {
        let (now, _) = self.now();
        let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        write!(s, "{}.{:03}", d.as_secs(), d.subsec_millis()).is_ok()
    }
}

/// A worker's generator of request ids: 128 random bits as 32 hex digits, like
/// ingress-nginx's `$req_id`. A fast generator (wyrand, from `fastrand`) seeded from the
/// operating system's CSPRNG (through aws-lc), so ids are unpredictable across restarts and
/// workers without a system call per request.
pub(crate) struct RequestIds {
    rng: RefCell<fastrand::Rng>,
}

impl RequestIds {
    pub(crate) fn new() -> Self {
        let mut seed = [0u8; 8];
        let seed = match aws_lc_rs::rand::fill(&mut seed) {
            Ok(()) => u64::from_le_bytes(seed),
            Err(_) => {
                tracing::warn!("no random seed from the system; request ids use a weaker one");
                fastrand::u64(..)
            }
        };
        Self {
            rng: RefCell::new(fastrand::Rng::with_seed(seed)),
        }
    }

    /// A new id.
    #[inline]
    pub(crate) fn next(&self) -> RequestId {
        let mut rng = self.rng.borrow_mut();
        // Never zero, so that an `Option` of an id takes no more room than the id.
        let hi = NonZeroU64::new(rng.u64(1..)).unwrap_or(NonZeroU64::MIN);
        RequestId(hi, rng.u64(..))
    }
}

/// A request id the gateway made: 128 random bits, written as 32 lower-case hex digits.
/// Held as its bits, so that it is written straight where it goes (the upstream request
/// head, the access log line) without a header value made of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RequestId(NonZeroU64, u64);

impl RequestId {
    /// The 32 hex digits.
    #[inline]
    pub(crate) fn hex(self) -> [u8; 32] {
        let v = (u128::from(self.0.get()) << 64) | u128::from(self.1);
        let mut out = [0u8; 32];
        for (pair, byte) in out.chunks_exact_mut(2).zip(v.to_be_bytes()) {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
        }
        out
    }

    /// As a header value, for a header map.
    pub(crate) fn value(self) -> HeaderValue {
        HeaderValue::from_maybe_shared(bytes::Bytes::copy_from_slice(&self.hex()))
            .unwrap_or_else(|_| HeaderValue::from_static("-"))
    }
}

/// The two lower-case hex digits of each byte.
static HEX_PAIRS: [[u8; 2]; 256] = hex_pairs();

const fn hex_pairs() -> [[u8; 2]; 256] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut table = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    table
}

/// Whether a client's `X-Request-ID` is kept: 1 to 128 visible ASCII characters without
/// quotes or backslashes (nothing that could break a log line or a header).
pub(crate) fn valid_request_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    (1..=128).contains(&b.len())
        && b.iter()
            .all(|c| matches!(c, 0x21..=0x7e) && *c != b'"' && *c != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_digits_and_differ() {
        let ids = RequestIds::new();
        let (a, b) = (ids.next().value(), ids.next().value());
        assert_eq!(a.len(), 32);
        assert!(a.as_bytes().iter().all(u8::is_ascii_hexdigit));
        assert_ne!(a, b);
        assert!(valid_request_id(&a));
        assert!(!valid_request_id(&HeaderValue::from_static("a b")));
        assert!(!valid_request_id(&HeaderValue::from_static("")));
    }

    #[test]
    fn the_clock_writes_nginx_times() {
        let c = Clock::default();
        let mut s = String::new();
        c.local(&mut s);
        // 07/Dec/2026:20:01:06 +0000
        assert_eq!(s.len(), 26, "{s}");
        assert!(s.ends_with(" +0000"), "{s}");
        let mut iso = String::new();
        c.iso8601(&mut iso);
        assert_eq!(iso.len(), 25, "{iso}");
    }
}
