//! The shard runtime: one single-threaded executor per core, sharing nothing,
//! talking by message passing (Seastar's `sharded<>` model).
//!
//! This module is the project's only door to the async runtime (glommio
//! today): the rest of the server uses [`ShardRuntime`], [`ShardContext`],
//! [`Shards`], [`Sharded`], [`spawn`], [`sleep`], [`timeout`], [`yield_now`]
//! and [`dma_probe`], so the runtime underneath can be replaced by a thin
//! io_uring reactor without touching callers.
//!
//! * A shard is a thread pinned to a core running a glommio `LocalExecutor`
//!   and the caller's async main function, which receives a [`ShardContext`].
//! * Cross-shard requests ([`ShardContext::invoke_on`], [`Shards::invoke_on`])
//!   go through the target's bounded [`mailbox`]; a full mailbox makes the
//!   sender wait (back-pressure) or, with `try_invoke_on`, fail with
//!   [`ShardError::Overloaded`].
//! * Stopping: [`ShardRuntime::stop`] (or SIGINT/SIGTERM via
//!   [`signals::install`]) resolves every shard's [`ShardContext::stopped`]
//!   future; shards keep serving cross-shard requests until every shard's
//!   main function has returned, then exit; [`ShardRuntime::join`] collects
//!   their results.

#![warn(missing_docs)]

mod dma;
mod gate;
mod mailbox;
mod runtime;
mod sharded;
pub mod signals;
mod sync;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

pub use dma::{
    dma_probe, DmaBuffer, DmaFile, DmaStreamReader, DmaStreamReaderBuilder, DmaStreamWriter,
    DmaStreamWriterBuilder, OpenOptions, ReadResult, DMA_PROBE_FILE,
};
pub use gate::{Gate, GateClose, GateClosed, GateGuard};
pub use mailbox::MailboxStats;
pub use runtime::{io_memory_per_shard, ShardConfig, ShardRuntime};
pub use sharded::Sharded;
pub use sync::{Latch, LatchWait, Reply};

use mailbox::{Job, Mailbox};

/// TCP sockets served by the shard's reactor.
pub mod net {
    pub use glommio::net::{TcpListener, TcpStream};
}

/// Errors of the shard runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardError {
    /// The target shard's mailbox is full (only from `try_invoke_on`).
    Overloaded,
    /// The target shard has stopped; the request was not (or not fully) run.
    Stopped,
    /// No such shard.
    NoSuchShard {
        /// The shard asked for.
        shard: usize,
        /// How many shards there are.
        count: usize,
    },
    /// The [`Sharded`] service is not (or no longer) running on that shard.
    NoService(usize),
    /// The runtime could not start.
    Start(String),
    /// A shard panicked.
    Panicked {
        /// The shard.
        shard: usize,
        /// The panic message.
        message: String,
    },
}

impl fmt::Display for ShardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShardError::Overloaded => f.write_str("shard overloaded: its request queue is full"),
            ShardError::Stopped => f.write_str("shard stopped"),
            ShardError::NoSuchShard { shard, count } => {
                write!(f, "no shard {shard} (the node has {count})")
            }
            ShardError::NoService(s) => write!(f, "service not running on shard {s}"),
            ShardError::Start(m) => write!(f, "cannot start shards: {m}"),
            ShardError::Panicked { shard, message } => {
                write!(f, "shard {shard} panicked: {message}")
            }
        }
    }
}

impl std::error::Error for ShardError {}

thread_local! {
    static CURRENT_SHARD: Cell<Option<usize>> = const { Cell::new(None) };
    /// The context of the shard running on this thread: lets
    /// [`Shards::invoke_on`] run requests for the local shard in place.
    static CURRENT_CONTEXT: RefCell<Option<ShardContext>> = const { RefCell::new(None) };
}

fn set_current_context(ctx: Option<ShardContext>) {
    CURRENT_CONTEXT.with(|c| *c.borrow_mut() = ctx);
}

/// This thread's context if it is `shard` of the runtime behind `shards`.
fn local_context(shards: &Shards, shard: usize) -> Option<ShardContext> {
    CURRENT_CONTEXT.with(|c| {
        c.borrow()
            .as_ref()
            .filter(|ctx| ctx.id() == shard && Arc::ptr_eq(&ctx.shards().inner, &shards.inner))
            .cloned()
    })
}

/// The id of the shard running on this thread, if any (for logging).
pub fn current_shard_id() -> Option<usize> {
    CURRENT_SHARD.with(|c| c.get())
}

fn set_current_shard_id(id: Option<usize>) {
    CURRENT_SHARD.with(|c| c.set(id));
}

/// The node-wide, thread-safe handle to all shards: send requests to any
/// shard from any thread, read mailbox statistics, request a stop.
#[derive(Clone)]
pub struct Shards {
    inner: Arc<ShardsInner>,
}

struct ShardsInner {
    mailboxes: Vec<Mailbox>,
    stop: Latch,
    next_service_id: AtomicU64,
}

impl fmt::Debug for Shards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shards")
            .field("count", &self.count())
            .field("stopping", &self.inner.stop.is_triggered())
            .finish()
    }
}

impl Shards {
    pub(crate) fn new(count: usize, mailbox_capacity: usize) -> Shards {
        Shards {
            inner: Arc::new(ShardsInner {
                mailboxes: (0..count).map(|_| Mailbox::new(mailbox_capacity)).collect(),
                stop: Latch::new(),
                next_service_id: AtomicU64::new(1),
            }),
        }
    }

    /// Number of shards.
    pub fn count(&self) -> usize {
        self.inner.mailboxes.len()
    }

    /// Asks every shard to stop (idempotent).
    pub fn stop(&self) {
        self.inner.stop.trigger();
    }

    /// The stop event (trigger it to stop the node; await it to learn of a stop).
    pub fn stop_latch(&self) -> Latch {
        self.inner.stop.clone()
    }

    /// Whether a stop was requested.
    pub fn is_stopping(&self) -> bool {
        self.inner.stop.is_triggered()
    }

    /// Statistics of one shard's mailbox.
    pub fn mailbox_stats(&self, shard: usize) -> Option<MailboxStats> {
        self.inner.mailboxes.get(shard).map(Mailbox::stats)
    }

    fn mailbox(&self, shard: usize) -> Result<&Mailbox, ShardError> {
        self.inner
            .mailboxes
            .get(shard)
            .ok_or(ShardError::NoSuchShard {
                shard,
                count: self.count(),
            })
    }

    fn make_job<R, F, Fut>(f: F) -> (Job, Reply<R>)
    where
        F: FnOnce(ShardContext) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = sync::oneshot();
        let job: Job = Box::new(move |ctx: &ShardContext| {
            let fut = f(ctx.clone());
            glommio::spawn_local(async move { tx.send(fut.await) }).detach();
        });
        (job, rx)
    }

    /// Queues `f` on `shard` (waiting while its mailbox is full) and returns
    /// the reply future. `f` runs as a task on the target shard.
    pub async fn submit_to<R, F, Fut>(&self, shard: usize, f: F) -> Result<Reply<R>, ShardError>
    where
        F: FnOnce(ShardContext) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        let mailbox = self.mailbox(shard)?;
        let (job, reply) = Self::make_job(f);
        mailbox.push(job).await?;
        Ok(reply)
    }

    /// Runs `f` on `shard` and returns its result; waits while the target's
    /// mailbox is full. Called on `shard` itself, `f` runs in place.
    pub async fn invoke_on<R, F, Fut>(&self, shard: usize, f: F) -> Result<R, ShardError>
    where
        F: FnOnce(ShardContext) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        if let Some(ctx) = local_context(self, shard) {
            return Ok(f(ctx).await);
        }
        self.submit_to(shard, f).await?.await
    }

    /// Like [`Shards::invoke_on`] but fails at once with
    /// [`ShardError::Overloaded`] when the target's mailbox is full.
    pub fn try_invoke_on<R, F, Fut>(&self, shard: usize, f: F) -> Result<Reply<R>, ShardError>
    where
        F: FnOnce(ShardContext) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        let mailbox = self.mailbox(shard)?;
        let (job, reply) = Self::make_job(f);
        mailbox.try_push(job).map_err(|(e, _)| e)?;
        Ok(reply)
    }

    /// Runs `f` on every shard concurrently; results in shard order.
    pub async fn invoke_on_all<R, F, Fut>(&self, f: F) -> Result<Vec<R>, ShardError>
    where
        F: Fn(ShardContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        let f = Arc::new(f);
        let mut replies = Vec::with_capacity(self.count());
        for shard in 0..self.count() {
            let f = f.clone();
            replies.push(self.submit_to(shard, move |ctx| f(ctx)).await?);
        }
        let mut out = Vec::with_capacity(replies.len());
        for r in replies {
            out.push(r.await?);
        }
        Ok(out)
    }

    /// Blocking [`Shards::invoke_on`] for threads that are not shards (the
    /// main thread, tests). Never call it from a shard: it would block the
    /// executor.
    pub fn invoke_on_blocking<R, F, Fut>(&self, shard: usize, f: F) -> Result<R, ShardError>
    where
        F: FnOnce(ShardContext) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        debug_assert!(current_shard_id().is_none(), "blocking call on a shard");
        futures_lite::future::block_on(self.invoke_on(shard, f))
    }

    fn next_service_id(&self) -> u64 {
        self.inner.next_service_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// What a shard's code knows about where it runs: its id, the shard count,
/// the handle to the other shards, the stop signal, and the shard-local
/// registry behind [`Sharded`]. Cheap to clone; stays on its shard (not `Send`).
#[derive(Clone)]
pub struct ShardContext {
    inner: Rc<ContextInner>,
}

struct ContextInner {
    id: usize,
    shards: Shards,
    services: RefCell<HashMap<u64, Rc<dyn Any>>>,
}

impl fmt::Debug for ShardContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardContext")
            .field("id", &self.id())
            .field("count", &self.count())
            .finish()
    }
}

impl ShardContext {
    pub(crate) fn new(id: usize, shards: Shards) -> ShardContext {
        ShardContext {
            inner: Rc::new(ContextInner {
                id,
                shards,
                services: RefCell::new(HashMap::new()),
            }),
        }
    }

    /// This shard's id, `0..count`.
    pub fn id(&self) -> usize {
        self.inner.id
    }

    /// Number of shards.
    pub fn count(&self) -> usize {
        self.inner.shards.count()
    }

    /// The thread-safe handle to every shard.
    pub fn shards(&self) -> &Shards {
        &self.inner.shards
    }

    /// Resolves when the node is asked to stop.
    pub fn stopped(&self) -> LatchWait {
        self.inner.shards.inner.stop.wait()
    }

    /// Whether the node is asked to stop.
    pub fn is_stopping(&self) -> bool {
        self.inner.shards.is_stopping()
    }

    /// Runs `f` on `shard` (directly, without queueing, when it is this
    /// shard) and returns its result.
    pub async fn invoke_on<R, F, Fut>(&self, shard: usize, f: F) -> Result<R, ShardError>
    where
        F: FnOnce(ShardContext) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        if shard == self.id() {
            return Ok(f(self.clone()).await);
        }
        self.inner.shards.invoke_on(shard, f).await
    }

    /// Runs `f` on every shard concurrently; results in shard order.
    pub async fn invoke_on_all<R, F, Fut>(&self, f: F) -> Result<Vec<R>, ShardError>
    where
        F: Fn(ShardContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        self.inner.shards.invoke_on_all(f).await
    }

    pub(crate) fn insert_service(&self, id: u64, service: Rc<dyn Any>) {
        self.inner.services.borrow_mut().insert(id, service);
    }

    pub(crate) fn remove_service(&self, id: u64) -> Option<Rc<dyn Any>> {
        self.inner.services.borrow_mut().remove(&id)
    }

    pub(crate) fn service(&self, id: u64) -> Option<Rc<dyn Any>> {
        self.inner.services.borrow().get(&id).cloned()
    }
}

/// Drains this shard's mailbox until the task is dropped.
pub(crate) async fn poll_mailbox(ctx: ShardContext) {
    const BATCH: usize = 256;
    let shards = ctx.shards().clone();
    let Ok(mailbox) = shards.mailbox(ctx.id()) else {
        return;
    };
    loop {
        if mailbox.drain(&ctx, BATCH) > 0 {
            // Let the tasks the jobs spawned (and I/O) run before the next batch.
            yield_now().await;
            continue;
        }
        mailbox.wait_for_mail().await;
    }
}

/// A task running on the current shard. Dropping it cancels the task; call
/// [`Task::detach`] to let it run on its own.
#[must_use = "dropping a Task cancels it; use .detach() to run it in the background"]
pub struct Task<T>(glommio::Task<T>);

impl<T> Task<T> {
    /// Lets the task run to completion on its own.
    pub fn detach(self) {
        self.0.detach();
    }
}

impl<T> Future for Task<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// Spawns a task on the current shard. Panics off-shard.
pub fn spawn<T: 'static>(future: impl Future<Output = T> + 'static) -> Task<T> {
    Task(glommio::spawn_local(future))
}

/// Sleeps on the shard's timer wheel.
pub async fn sleep(duration: Duration) {
    glommio::timer::sleep(duration).await;
}

/// The error of [`timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out")
    }
}

impl std::error::Error for Elapsed {}

/// Runs `future`, giving up after `duration`.
pub async fn timeout<T>(duration: Duration, future: impl Future<Output = T>) -> Result<T, Elapsed> {
    futures_lite::future::or(async { Ok(future.await) }, async {
        sleep(duration).await;
        Err(Elapsed)
    })
    .await
}

/// Lets the shard's other tasks run, then continues.
pub async fn yield_now() {
    futures_lite::future::yield_now().await;
}

/// Yields only when this task has used up its time slice (call it in long
/// loops).
pub async fn maybe_yield() {
    glommio::yield_if_needed().await;
}

#[cfg(test)]
mod tests;
