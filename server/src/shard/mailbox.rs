//! A shard's bounded inbox of cross-shard requests.
//!
//! Any thread pushes jobs into a bounded lock-free queue (crossbeam's array
//! channel). The owning shard drains it from a poller task. The poller only
//! asks to be woken when it found the queue empty ("parked"); a sender that
//! sees the flag wakes it once. Under load the poller keeps draining and no
//! wake-ups are sent; an idle shard keeps polling its reactor for
//! `spin_before_park` before it really sleeps, so a message arriving in that
//! window costs no syscall on either side.
//!
//! A full queue pushes back: senders wait (asynchronously) until the poller
//! made room. Once the shard has stopped, the mailbox is closed: pushes fail
//! with [`ShardError::Stopped`] and queued jobs are dropped, which resolves
//! their replies with the same error.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::sync::lock;
use super::{ShardContext, ShardError};

/// A request run on the target shard, on the poller task.
pub(crate) type Job = Box<dyn FnOnce(&ShardContext) + Send + 'static>;

/// Counters of one shard's inbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxStats {
    /// Requests accepted into the queue.
    pub received: u64,
    /// Requests run by the shard.
    pub processed: u64,
    /// Times a sender found the queue full and had to wait.
    pub full_waits: u64,
    /// Requests currently queued.
    pub queued: usize,
    /// The queue's bound.
    pub capacity: usize,
}

pub(crate) struct Mailbox {
    tx: Sender<Job>,
    rx: Receiver<Job>,
    capacity: usize,
    parked: AtomicBool,
    consumer: Mutex<Option<Waker>>,
    closed: AtomicBool,
    space_waiting: AtomicUsize,
    space_waiters: Mutex<HashMap<u64, Waker>>,
    next_waiter: AtomicU64,
    received: AtomicU64,
    processed: AtomicU64,
    full_waits: AtomicU64,
}

impl Mailbox {
    pub(crate) fn new(capacity: usize) -> Mailbox {
        let capacity = capacity.max(1);
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        Mailbox {
            tx,
            rx,
            capacity,
            parked: AtomicBool::new(false),
            consumer: Mutex::new(None),
            closed: AtomicBool::new(false),
            space_waiting: AtomicUsize::new(0),
            space_waiters: Mutex::new(HashMap::new()),
            next_waiter: AtomicU64::new(0),
            received: AtomicU64::new(0),
            processed: AtomicU64::new(0),
            full_waits: AtomicU64::new(0),
        }
    }

    pub(crate) fn stats(&self) -> MailboxStats {
        MailboxStats {
            received: self.received.load(Ordering::Relaxed),
            processed: self.processed.load(Ordering::Relaxed),
            full_waits: self.full_waits.load(Ordering::Relaxed),
            queued: self.rx.len(),
            capacity: self.capacity,
        }
    }

    /// Pushes without waiting: `Err(Overloaded)` when full.
    pub(crate) fn try_push(&self, job: Job) -> Result<(), (ShardError, Job)> {
        if self.closed.load(Ordering::SeqCst) {
            return Err((ShardError::Stopped, job));
        }
        match self.tx.try_send(job) {
            Ok(()) => {
                self.after_push();
                if self.closed.load(Ordering::SeqCst) {
                    // Closed while we pushed: the shard will never run it.
                    self.drop_queued();
                }
                Ok(())
            }
            Err(TrySendError::Full(job)) | Err(TrySendError::Disconnected(job)) => {
                Err((ShardError::Overloaded, job))
            }
        }
    }

    /// Pushes, waiting for room while the queue is full.
    pub(crate) async fn push(&self, mut job: Job) -> Result<(), ShardError> {
        loop {
            match self.try_push(job) {
                Ok(()) => return Ok(()),
                Err((ShardError::Overloaded, j)) => {
                    job = j;
                    self.full_waits.fetch_add(1, Ordering::Relaxed);
                    SpaceWait {
                        mailbox: self,
                        id: self.next_waiter.fetch_add(1, Ordering::Relaxed),
                        registered: false,
                    }
                    .await;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    fn after_push(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
        if self.parked.load(Ordering::SeqCst) && self.parked.swap(false, Ordering::SeqCst) {
            if let Some(w) = lock(&self.consumer).take() {
                w.wake();
            }
        }
    }

    /// Runs up to `max` queued jobs; returns how many ran.
    pub(crate) fn drain(&self, ctx: &ShardContext, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            match self.rx.try_recv() {
                Ok(job) => {
                    n += 1;
                    job(ctx);
                }
                Err(_) => break,
            }
        }
        if n > 0 {
            self.processed.fetch_add(n as u64, Ordering::Relaxed);
            self.wake_space_waiters();
        }
        n
    }

    fn wake_space_waiters(&self) {
        if self.space_waiting.load(Ordering::SeqCst) > 0 {
            let wakers: Vec<Waker> = lock(&self.space_waiters).drain().map(|(_, w)| w).collect();
            self.space_waiting.store(0, Ordering::SeqCst);
            for w in wakers {
                w.wake();
            }
        }
    }

    /// Resolves when there is something to drain (or the mailbox closed).
    pub(crate) fn wait_for_mail(&self) -> MailWait<'_> {
        MailWait { mailbox: self }
    }

    /// Refuses further requests and drops the queued ones (their callers get
    /// [`ShardError::Stopped`]).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.drop_queued();
        self.wake_space_waiters();
        if let Some(w) = lock(&self.consumer).take() {
            w.wake();
        }
    }

    fn drop_queued(&self) {
        while let Ok(job) = self.rx.try_recv() {
            drop(job);
        }
    }
}

pub(crate) struct MailWait<'a> {
    mailbox: &'a Mailbox,
}

impl Future for MailWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let m = self.mailbox;
        if !m.rx.is_empty() || m.closed.load(Ordering::SeqCst) {
            m.parked.store(false, Ordering::SeqCst);
            return Poll::Ready(());
        }
        *lock(&m.consumer) = Some(cx.waker().clone());
        m.parked.store(true, Ordering::SeqCst);
        // A sender may have pushed before seeing `parked`.
        if !m.rx.is_empty() || m.closed.load(Ordering::SeqCst) {
            m.parked.store(false, Ordering::SeqCst);
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

struct SpaceWait<'a> {
    mailbox: &'a Mailbox,
    id: u64,
    registered: bool,
}

impl Future for SpaceWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let m = self.mailbox;
        if !m.rx.is_full() || m.closed.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        lock(&m.space_waiters).insert(self.id, cx.waker().clone());
        m.space_waiting.fetch_add(1, Ordering::SeqCst);
        self.registered = true;
        if !m.rx.is_full() || m.closed.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for SpaceWait<'_> {
    fn drop(&mut self) {
        if self.registered {
            lock(&self.mailbox.space_waiters).remove(&self.id);
        }
    }
}
