//! Seastar's gate: counts the background work of one shard so that stopping
//! can refuse new work and wait for the work in flight.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// The gate was closed: no new work may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateClosed;

impl std::fmt::Display for GateClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("shutting down")
    }
}

impl std::error::Error for GateClosed {}

/// Tracks work in flight on one shard. Cloning shares the gate.
///
/// ```ignore
/// let gate = Gate::new();
/// gate.spawn(async move { flush_loop().await })?; // background task
/// ...
/// gate.close().await; // refuses new work, waits for the rest
/// ```
#[derive(Clone, Default)]
pub struct Gate {
    inner: Rc<GateInner>,
}

#[derive(Default)]
struct GateInner {
    count: Cell<usize>,
    closed: Cell<bool>,
    closers: RefCell<Vec<Waker>>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("count", &self.inner.count.get())
            .field("closed", &self.inner.closed.get())
            .finish()
    }
}

impl Gate {
    /// An open gate with nothing in flight.
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Registers one unit of work; it ends when the guard is dropped.
    pub fn enter(&self) -> Result<GateGuard, GateClosed> {
        if self.inner.closed.get() {
            return Err(GateClosed);
        }
        self.inner.count.set(self.inner.count.get() + 1);
        Ok(GateGuard {
            gate: self.inner.clone(),
        })
    }

    /// Spawns `future` on the current shard as work of this gate.
    pub fn spawn(&self, future: impl Future<Output = ()> + 'static) -> Result<(), GateClosed> {
        let guard = self.enter()?;
        super::spawn(async move {
            future.await;
            drop(guard);
        })
        .detach();
        Ok(())
    }

    /// Work in flight.
    pub fn count(&self) -> usize {
        self.inner.count.get()
    }

    /// Whether [`Gate::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Refuses new work and resolves once the work in flight has ended.
    pub fn close(&self) -> GateClose {
        self.inner.closed.set(true);
        GateClose {
            gate: self.inner.clone(),
        }
    }
}

/// One unit of work of a [`Gate`].
#[derive(Debug)]
pub struct GateGuard {
    gate: Rc<GateInner>,
}

impl std::fmt::Debug for GateInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

impl Drop for GateGuard {
    fn drop(&mut self) {
        let n = self.gate.count.get() - 1;
        self.gate.count.set(n);
        if n == 0 {
            for w in self.gate.closers.borrow_mut().drain(..) {
                w.wake();
            }
        }
    }
}

/// Future returned by [`Gate::close`].
pub struct GateClose {
    gate: Rc<GateInner>,
}

impl Future for GateClose {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.gate.count.get() == 0 {
            return Poll::Ready(());
        }
        let mut closers = self.gate.closers.borrow_mut();
        if !closers.iter().any(|w| w.will_wake(cx.waker())) {
            closers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
