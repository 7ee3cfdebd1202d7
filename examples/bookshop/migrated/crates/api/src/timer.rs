//! A timer for the deadlines that nearly every request sets and nearly none reaches: how long
//! a client may take to send a request's head (`HEADER_READ_TIMEOUT_MS`, hyper's timer) and
//! how long Python may take to answer one (`UPSTREAM_TIMEOUT_MS`, [`Timer::timeout`]).
//!
//! tokio's timer puts each deadline into its wheel when it is first awaited and takes it out
//! again when it is dropped, two trips through the time driver per deadline per request. Here
//! a deadline takes a slot in a list, and a ticker task wakes the expired ones every
//! [`TICK`]: a deadline fires up to one tick late (plus the time the worker takes to get to
//! it). The ticker runs only while a deadline waits, which is while a request waits for
//! Python or an open connection for its next request, and stops by itself when none does:
//! a worker without connections is not woken for nothing. The list keeps the size it grew to.
//!
//! Each worker has its own [`Timer`] (see [`crate::AppState::for_worker`]), so its lock is
//! taken by one thread only. A timer's ticker runs on the runtime where its first deadline
//! was awaited: one timer for several runtimes (a test's) works while that one runs. Its
//! clock is tokio's, so a test with paused time (`start_paused`) sees its deadlines pass
//! in that time.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, Weak},
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

/// How often the ticker looks for expired deadlines while any waits: the most a deadline can
/// fire late.
pub const TICK: Duration = Duration::from_millis(10);

/// A handle on one list of deadlines. Cheap to clone.
#[derive(Clone, Default)]
pub struct Timer(Arc<Mutex<Deadlines>>);

/// The deadlines being waited for, in reusable slots.
#[derive(Default)]
struct Deadlines {
    /// A slot is `Some` while its [`Sleep`] is armed, and owned by it until it is dropped or
    /// fires: the ticker only takes the waker out.
    slots: Vec<Option<Slot>>,
    /// The indices of the `None` slots.
    free: Vec<usize>,
    /// How many slots still have a waker: what the ticker waits for.
    waiting: usize,
    /// Whether a ticker task runs (or is about to).
    ticking: bool,
}

impl Deadlines {
    /// Puts `waker` in a free slot (or a new one) until `deadline`; returns the slot.
    fn arm(&mut self, deadline: Instant, waker: Waker) -> usize {
        let slot = Some(Slot {
            deadline,
            waker: Some(waker),
        });
        self.waiting += 1;
        match self.free.pop() {
            Some(at) => {
                self.slots[at] = slot;
                at
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        }
    }
}

struct Slot {
    deadline: Instant,
    /// Taken (and woken) by the ticker at the deadline.
    waker: Option<Waker>,
}

impl Timer {
    pub fn new() -> Self {
        Self::default()
    }

    /// A future that resolves `duration` from now (up to a [`TICK`] later).
    pub fn sleep(&self, duration: Duration) -> Sleep {
        self.sleep_until(now() + duration)
    }

    /// A future that resolves at `deadline` (up to a [`TICK`] later).
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep {
            deadlines: Arc::clone(&self.0),
            deadline,
            slot: None,
        }
    }

    /// `future`'s output, or `None` if it is not done within `duration` (give or take a
    /// [`TICK`]), in which case it is dropped.
    pub async fn timeout<F: Future>(&self, duration: Duration, future: F) -> Option<F::Output> {
        let mut future = std::pin::pin!(future);
        let mut sleep = self.sleep(duration);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            Pin::new(&mut sleep).poll(cx).map(|()| None)
        })
        .await
    }

    #[cfg(test)]
    fn state(&self) -> (usize, usize, bool) {
        let deadlines = lock(&self.0);
        let armed = deadlines.slots.iter().flatten().count();
        (armed, deadlines.waiting, deadlines.ticking)
    }
}

/// hyper's header read timeout runs on it too (see [`crate::server`]).
impl hyper::rt::Timer for Timer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Timer::sleep(self, duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Timer::sleep_until(self, deadline))
    }

    fn now(&self) -> Instant {
        now()
    }
}

/// The time by tokio's clock: the system's, unless a test paused it.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn lock(deadlines: &Mutex<Deadlines>) -> MutexGuard<'_, Deadlines> {
    // A panic while holding the lock leaves valid slots (at worst one waker too many).
    deadlines
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A deadline of a [`Timer`]; it takes a slot the first time it is polled before its deadline,
/// and gives it back when it fires or is dropped.
pub struct Sleep {
    deadlines: Arc<Mutex<Deadlines>>,
    deadline: Instant,
    slot: Option<usize>,
}

impl Sleep {
    fn disarm(&mut self) {
        if let Some(at) = self.slot.take() {
            let mut deadlines = lock(&self.deadlines);
            let waiting = deadlines.slots[at]
                .take()
                .is_some_and(|slot| slot.waker.is_some());
            deadlines.waiting -= usize::from(waiting);
            deadlines.free.push(at);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if now() >= this.deadline {
            this.disarm();
            return Poll::Ready(());
        }
        let mut deadlines = lock(&this.deadlines);
        let start_ticker = match this.slot {
            Some(at) => match &mut deadlines.slots[at] {
                // Polled again before the deadline, maybe by another task: that one is woken.
                Some(Slot {
                    waker: Some(waker), ..
                }) => {
                    waker.clone_from(cx.waker());
                    false
                }
                // The ticker took the waker: the deadline has passed.
                _ => {
                    drop(deadlines);
                    this.disarm();
                    return Poll::Ready(());
                }
            },
            None => {
                this.slot = Some(deadlines.arm(this.deadline, cx.waker().clone()));
                !std::mem::replace(&mut deadlines.ticking, true)
            }
        };
        drop(deadlines);
        if start_ticker {
            tokio::spawn(tick(Arc::downgrade(&this.deadlines)));
        }
        Poll::Pending
    }
}

impl hyper::rt::Sleep for Sleep {}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// Marks the ticker of a timer stopped when dropped, unless [`tick`] did it itself: if the
/// task is never spawned (no runtime) or never finishes (its runtime shut down), the next
/// deadline starts a new one.
struct Ticking(Option<Weak<Mutex<Deadlines>>>);

impl Drop for Ticking {
    fn drop(&mut self) {
        if let Some(deadlines) = self.0.take().as_ref().and_then(Weak::upgrade) {
            lock(&deadlines).ticking = false;
        }
    }
}

/// Every [`TICK`], wakes the deadlines that have passed; stops when none waits, or when its
/// timer is gone. The guard is made before the task is spawned, so that it covers a spawn
/// that fails too.
fn tick(timer: Weak<Mutex<Deadlines>>) -> impl Future<Output = ()> + Send + 'static {
    let ticking = Ticking(Some(timer.clone()));
    ticker(timer, ticking)
}

async fn ticker(timer: Weak<Mutex<Deadlines>>, mut ticking: Ticking) {
    let mut due = Vec::new();
    loop {
        tokio::time::sleep(TICK).await;
        let Some(deadlines) = timer.upgrade() else {
            return;
        };
        let time = now();
        {
            let mut deadlines = lock(&deadlines);
            if deadlines.waiting == 0 {
                // Under the lock, so a deadline armed from now on starts a new ticker.
                deadlines.ticking = false;
                ticking.0 = None;
                return;
            }
            due.extend(
                deadlines
                    .slots
                    .iter_mut()
                    .flatten()
                    .filter(|slot| slot.deadline <= time)
                    .filter_map(|slot| slot.waker.take()),
            );
            deadlines.waiting -= due.len();
        }
        for waker in due.drain(..) {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sleep_ends_at_its_deadline_and_not_before() {
        let timer = Timer::new();
        let start = Instant::now();
        within(timer.sleep(Duration::from_millis(50))).await;
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(50), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(timer.state().0, 0, "the slot is given back");
    }

    #[tokio::test]
    async fn a_timeout_gives_the_output_or_none() {
        let timer = Timer::new();
        let quick = timer.timeout(Duration::from_secs(5), async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            7
        });
        assert_eq!(within(quick).await, Some(7));
        let never = timer.timeout(Duration::from_millis(30), std::future::pending::<()>());
        assert_eq!(within(never).await, None);
        assert_eq!(timer.state().0, 0, "both slots are given back");
    }

    #[tokio::test]
    async fn dropped_sleeps_free_their_slot_for_the_next_and_the_ticker_stops() {
        let timer = Timer::new();
        let mut early = Box::pin(timer.sleep(Duration::from_secs(60)));
        assert!(futures_poll_once(early.as_mut()).is_pending());
        assert_eq!(timer.state(), (1, 1, true));
        drop(early);
        assert_eq!(timer.state().0, 0);
        // The next deadline takes the freed slot and still fires.
        let start = Instant::now();
        within(timer.sleep(Duration::from_millis(20))).await;
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(lock(&timer.0).slots.len(), 1, "one slot, reused");
        // With nothing waiting, the ticker ends at its next tick.
        tokio::time::sleep(3 * TICK).await;
        assert_eq!(timer.state(), (0, 0, false));
        // And the next deadline starts a new one.
        let start = Instant::now();
        within(timer.sleep(Duration::from_millis(20))).await;
        assert!(start.elapsed() >= Duration::from_millis(20));
        tokio::time::sleep(3 * TICK).await;
        assert_eq!(timer.state(), (0, 0, false));
    }

    #[tokio::test]
    async fn deadlines_fire_in_any_order() {
        let timer = Timer::new();
        let start = Instant::now();
        let late = tokio::spawn(timer.sleep(Duration::from_millis(80)));
        let soon = tokio::spawn(timer.sleep(Duration::from_millis(20)));
        within(soon).await.expect("the task ran");
        let soon_took = start.elapsed();
        assert!(soon_took >= Duration::from_millis(20), "{soon_took:?}");
        assert!(
            !late.is_finished() || soon_took >= Duration::from_millis(80),
            "the later deadline fired first"
        );
        within(late).await.expect("the task ran");
        let late_took = start.elapsed();
        assert!(late_took >= Duration::from_millis(80), "{late_took:?}");
    }

    #[tokio::test]
    async fn a_sleep_polled_by_another_task_wakes_that_one() {
        let timer = Timer::new();
        let mut sleep = Box::pin(timer.sleep(Duration::from_millis(30)));
        assert!(futures_poll_once(sleep.as_mut()).is_pending());
        // Moved to a task of its own, whose waker replaces the one above.
        let start = Instant::now();
        within(tokio::spawn(sleep)).await.expect("the task ran");
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(timer.state().0, 0);
    }

    /// `future`, or a failed test if it takes 10 s: a deadline that never fires would hang.
    async fn within<F: Future>(future: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(10), future)
            .await
            .expect("done within 10 s")
    }

    /// Polls `future` once, with a waker that does nothing.
    fn futures_poll_once<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }
}
