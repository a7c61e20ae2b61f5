//! Thread-safe one-shot replies and latches whose waiters are tasks on any
//! shard (or plain threads). Waking a task of another shard goes through
//! glommio's foreign-wake path: a lock-free push, plus an `eventfd` write only
//! if that shard is asleep.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::ShardError;

/// Locks a mutex, ignoring poisoning (the protected data stays consistent:
/// every critical section here is a few field assignments).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct OneshotState<T> {
    value: Option<T>,
    waker: Option<Waker>,
    sender_gone: bool,
}

/// Creates a one-shot reply channel.
pub(crate) fn oneshot<T>() -> (OneshotSender<T>, Reply<T>) {
    let state = Arc::new(Mutex::new(OneshotState {
        value: None,
        waker: None,
        sender_gone: false,
    }));
    (
        OneshotSender {
            state: state.clone(),
        },
        Reply { state },
    )
}

/// The sending half of a one-shot reply; dropping it unsent makes the
/// [`Reply`] resolve to [`ShardError::Stopped`].
pub(crate) struct OneshotSender<T> {
    state: Arc<Mutex<OneshotState<T>>>,
}

impl<T> OneshotSender<T> {
    pub(crate) fn send(self, value: T) {
        let waker = {
            let mut s = lock(&self.state);
            s.value = Some(value);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        // Drop runs next and marks the sender gone; the value is read first.
    }
}

impl<T> Drop for OneshotSender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut s = lock(&self.state);
            s.sender_gone = true;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The answer to a cross-shard request: resolves to the value, or to
/// [`ShardError::Stopped`] if the target shard dropped the request.
pub struct Reply<T> {
    state: Arc<Mutex<OneshotState<T>>>,
}

impl<T> Future for Reply<T> {
    type Output = Result<T, ShardError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = lock(&self.state);
        if let Some(v) = s.value.take() {
            return Poll::Ready(Ok(v));
        }
        if s.sender_gone {
            return Poll::Ready(Err(ShardError::Stopped));
        }
        match &s.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => s.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

/// A one-way event any thread can trigger and any task can await: the stop
/// signal of the runtime. Cloning shares the event.
#[derive(Clone, Default)]
pub struct Latch {
    inner: Arc<LatchInner>,
}

#[derive(Default)]
struct LatchInner {
    set: AtomicBool,
    next_id: AtomicU64,
    /// One entry per pending [`LatchWait`]; removed when it completes or is
    /// dropped, so the map is bounded by the number of live waiters.
    waiters: Mutex<HashMap<u64, Waker>>,
}

impl Latch {
    /// A new, untriggered latch.
    pub fn new() -> Latch {
        Latch::default()
    }

    /// Triggers the event and wakes every waiter. Idempotent.
    pub fn trigger(&self) {
        if self.inner.set.swap(true, Ordering::SeqCst) {
            return;
        }
        let waiters: Vec<Waker> = lock(&self.inner.waiters).drain().map(|(_, w)| w).collect();
        for w in waiters {
            w.wake();
        }
    }

    /// Whether the event happened.
    pub fn is_triggered(&self) -> bool {
        self.inner.set.load(Ordering::SeqCst)
    }

    /// A future that resolves once the event happened.
    pub fn wait(&self) -> LatchWait {
        LatchWait {
            latch: self.clone(),
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            registered: false,
        }
    }
}

impl std::fmt::Debug for Latch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latch")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

/// Future returned by [`Latch::wait`].
pub struct LatchWait {
    latch: Latch,
    id: u64,
    registered: bool,
}

impl Future for LatchWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let inner = self.latch.inner.clone();
        if inner.set.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        lock(&inner.waiters).insert(self.id, cx.waker().clone());
        self.registered = true;
        // Re-check: trigger() may have drained the map before we inserted.
        if inner.set.load(Ordering::SeqCst) {
            lock(&inner.waiters).remove(&self.id);
            self.registered = false;
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for LatchWait {
    fn drop(&mut self) {
        if self.registered {
            lock(&self.latch.inner.waiters).remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oneshot_delivers_or_reports_stopped() {
        let (tx, rx) = oneshot::<u32>();
        let t = std::thread::spawn(move || tx.send(7));
        assert_eq!(futures_lite::future::block_on(rx), Ok(7));
        t.join().unwrap();
        let (tx, rx) = oneshot::<u32>();
        drop(tx);
        assert_eq!(futures_lite::future::block_on(rx), Err(ShardError::Stopped));
    }

    #[test]
    fn latch_wakes_waiters_on_other_threads() {
        let latch = Latch::new();
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let l = latch.clone();
                std::thread::spawn(move || futures_lite::future::block_on(l.wait()))
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(20));
        latch.trigger();
        for w in waiters {
            w.join().unwrap();
        }
        assert!(latch.is_triggered());
        // Dropped waits unregister themselves.
        let l2 = Latch::new();
        {
            let mut w = Box::pin(l2.wait());
            let waker = futures_lite::future::block_on(futures_lite::future::poll_fn(|cx| {
                Poll::Ready(cx.waker().clone())
            }));
            let mut cx = Context::from_waker(&waker);
            assert!(w.as_mut().poll(&mut cx).is_pending());
            assert_eq!(lock(&l2.inner.waiters).len(), 1);
        }
        assert_eq!(lock(&l2.inner.waiters).len(), 0);
    }
}
