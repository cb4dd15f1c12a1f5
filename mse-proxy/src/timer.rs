//! [`LazyTimer`]: one deadline after another on the same timer, re-armed only when it
//! fires.
//!
//! A timeout per request (`tokio::time::timeout`) inserts a timer into the runtime's wheel
//! and removes it again for every exchange, although nearly every exchange ends long
//! before its deadline. A connection instead keeps one timer: each exchange only notes
//! its own deadline, and the timer, when it fires for an earlier exchange, is moved to the
//! current deadline. A deadline is never missed: the timer always fires at or before it.

use std::pin::Pin;
use std::task::Context;
use std::time::Instant;

use tokio::time::Sleep;

/// A timer for a sequence of deadlines, re-armed only when it fires. See the module docs.
#[derive(Default)]
pub(crate) struct LazyTimer {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl LazyTimer {
    /// Whether `deadline` has passed; otherwise the task is woken at the latest when it
    /// passes (perhaps earlier, when the timer still holds an earlier deadline).
    pub(crate) fn poll_expired(&mut self, deadline: Instant, cx: &mut Context<'_>) -> bool {
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.into())));
        loop {
            if sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            if Instant::now() >= deadline {
                return true;
            }
            sleep.as_mut().reset(deadline.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::task::Poll;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_later_deadline_is_kept_after_the_timer_fired_for_an_earlier_one() {
        let mut timer = LazyTimer::default();
        let start = Instant::now();
        let first = start + Duration::from_millis(20);
        poll_fn(|cx| {
            if timer.poll_expired(first, cx) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        assert!(Instant::now() >= first);
        // The next deadline, noted before the timer fired again.
        let second = Instant::now() + Duration::from_millis(30);
        poll_fn(|cx| {
            if timer.poll_expired(second, cx) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        assert!(Instant::now() >= second);
        // A deadline still ahead is not reported as passed.
        let ahead = Instant::now() + Duration::from_secs(60);
        let waker = std::task::Waker::noop();
        assert!(!timer.poll_expired(ahead, &mut Context::from_waker(waker)));
    }
}
