//! [`LazyTimer`]: one deadline after another on the same timer, re-armed only when it
//! fires.
//!
//! A timeout per request (`tokio::time::timeout`) inserts a timer into the runtime's wheel
//! and removes it again for every exchange, although nearly every exchange ends long
//! before its deadline. A connection instead keeps one timer: each exchange only notes
//! its own deadline, and the timer, when it fires for an earlier exchange, is moved to the
//! current deadline. A deadline is never missed: the timer always fires at or before it.

use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::Instant;

use tokio::time::Sleep;

/// A timer for a sequence of deadlines, re-armed only when it fires. See the module docs.
#[derive(Default)]
pub(crate) struct LazyTimer {
    sleep: Option<Pin<Box<Sleep>>>,
    /// When the timer fires, and the task it wakes then.
    armed: Option<(Instant, Waker)>,
}

impl LazyTimer {
    /// Whether `deadline` has passed; otherwise the task is woken at the latest when it
    /// passes (perhaps earlier, when the timer still holds an earlier deadline).
    pub(crate) fn poll_expired(&mut self, deadline: Instant, cx: &mut Context<'_>) -> bool {
        // Armed no later than the deadline, for this task, and not fired: nothing to do.
        if let (Some(sleep), Some((at, waker))) = (&self.sleep, &self.armed)
            && *at <= deadline
            && !sleep.is_elapsed()
            && waker.will_wake(cx.waker())
        {
            return false;
        }
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline.into())));
        if self.armed.as_ref().is_some_and(|(at, _)| *at > deadline) {
            sleep.as_mut().reset(deadline.into());
        }
        loop {
            if sleep.as_mut().poll(cx).is_pending() {
                self.armed = Some((sleep.deadline().into_std(), cx.waker().clone()));
                return false;
            }
            if Instant::now() >= deadline {
                self.armed = None;
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

    /// Waits until the timer reports `deadline` passed.
    async fn expired(timer: &mut LazyTimer, deadline: Instant) {
        poll_fn(|cx| {
            if timer.poll_expired(deadline, cx) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    #[tokio::test]
    async fn a_later_deadline_is_kept_after_the_timer_fired_for_an_earlier_one() {
        let mut timer = LazyTimer::default();
        let first = Instant::now() + Duration::from_millis(20);
        expired(&mut timer, first).await;
        assert!(Instant::now() >= first);
        // The next deadline, noted before the timer fired again.
        let second = Instant::now() + Duration::from_millis(30);
        expired(&mut timer, second).await;
        assert!(Instant::now() >= second);
        // A deadline still ahead is not reported as passed.
        let ahead = Instant::now() + Duration::from_secs(60);
        let waker = std::task::Waker::noop();
        assert!(!timer.poll_expired(ahead, &mut Context::from_waker(waker)));
        // An earlier deadline than the one armed moves the timer back.
        let sooner = Instant::now() + Duration::from_millis(20);
        expired(&mut timer, sooner).await;
        assert!(Instant::now() >= sooner);
    }
}
