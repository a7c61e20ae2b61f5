//! Starting, stopping and joining the shards.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use glommio::{LocalExecutorBuilder, Placement};

use super::sync::Latch;
use super::{
    dma_probe, poll_mailbox, set_current_context, set_current_shard_id, ShardContext, ShardError,
    Shards,
};

/// How to start the shards.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    /// Number of shards (`--smp`).
    pub count: usize,
    /// Pin shard `i` to the `i`-th allowed CPU. Ignored (no pinning) when
    /// there are more shards than CPUs.
    pub pin: bool,
    /// Bound of each shard's cross-shard request queue.
    pub mailbox_capacity: usize,
    /// How long an idle shard polls before sleeping. Cross-shard requests
    /// arriving within this window need no wake-up syscall.
    pub spin_before_park: Duration,
    /// io_uring submission ring depth.
    pub ring_depth: usize,
    /// Registered (locked) I/O memory per shard; `None` derives it from
    /// `RLIMIT_MEMLOCK` (see [`io_memory_per_shard`]).
    pub io_memory: Option<usize>,
    /// Directories every shard runs [`dma_probe`] on before any user code.
    pub dma_probe_dirs: Vec<PathBuf>,
    /// Thread name prefix.
    pub name: String,
}

impl ShardConfig {
    /// `count` shards with default settings.
    pub fn new(count: usize) -> ShardConfig {
        ShardConfig {
            count,
            pin: true,
            mailbox_capacity: 1024,
            spin_before_park: Duration::from_micros(200),
            ring_depth: 128,
            io_memory: None,
            dma_probe_dirs: Vec::new(),
            name: "shard".to_string(),
        }
    }

    /// Settings from the node's configuration (`smp`, `overprovisioned`,
    /// `shard_poll_window_in_us`, the data, commitlog and hints directories).
    pub fn from_config(config: &crate::config::Config) -> ShardConfig {
        let mut dirs = config.data_file_directories.clone();
        dirs.push(config.commitlog_directory.clone());
        dirs.push(config.hints_directory.clone());
        let spin = if config.overprovisioned {
            0
        } else {
            config.shard_poll_window_in_us
        };
        ShardConfig {
            pin: !config.overprovisioned,
            spin_before_park: Duration::from_micros(spin),
            dma_probe_dirs: dirs,
            ..ShardConfig::new(config.smp)
        }
    }
}

/// The registered I/O memory to give each of `shards` executors.
///
/// glommio registers its I/O arena with three io_uring rings per executor;
/// for an unprivileged process the kernel charges that to `RLIMIT_MEMLOCK`
/// (8 MiB on the build machines). We stay within half the limit and never
/// below glommio's 64 KiB floor; without a limit (or as root, which has
/// `CAP_IPC_LOCK`) each shard gets 8 MiB. If registration still fails glommio
/// only logs a warning and falls back to unregistered buffers.
pub fn io_memory_per_shard(shards: usize) -> usize {
    const MAX: usize = 8 << 20;
    const MIN: usize = 64 << 10;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } == 0;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !ok || root || lim.rlim_cur == libc::RLIM_INFINITY {
        return MAX;
    }
    let per = (lim.rlim_cur as usize / 2) / (shards.max(1) * 3);
    (per & !4095).clamp(MIN, MAX)
}

/// A started set of shards. Dropping it without [`ShardRuntime::join`] stops
/// the shards and detaches their threads.
pub struct ShardRuntime<T: Send + 'static> {
    shards: Shards,
    threads: Vec<JoinHandle<Option<T>>>,
}

impl<T: Send + 'static> ShardRuntime<T> {
    /// Starts `config.count` shards, each running `main(ctx)` on its own
    /// executor, after the DMA probes. Returns once every executor is up;
    /// fails (having stopped the others) if any could not start.
    pub fn start<F, Fut>(config: ShardConfig, main: F) -> Result<ShardRuntime<T>, ShardError>
    where
        F: Fn(ShardContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + 'static,
    {
        let count = config.count;
        if count == 0 {
            return Err(ShardError::Start(
                "the shard count must be at least 1".into(),
            ));
        }
        let shards = Shards::new(count, config.mailbox_capacity);
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let pin = config.pin && count <= cores.len();
        if config.pin && !pin {
            log::info!(
                "{count} shards on {} CPUs: shards are not pinned to cores",
                cores.len()
            );
        }
        let io_memory = config
            .io_memory
            .unwrap_or_else(|| io_memory_per_shard(count));
        let main = Arc::new(main);
        let go = Latch::new();
        let abort = Arc::new(AtomicBool::new(false));
        let running = Arc::new(AtomicUsize::new(count));
        let all_done = Latch::new();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let mut threads = Vec::with_capacity(count);

        for id in 0..count {
            let placement = match cores.get(id) {
                Some(core) if pin => Placement::Fixed(core.id),
                _ => Placement::Unbound,
            };
            let builder = LocalExecutorBuilder::new(placement)
                .name(&format!("{}-{id}", config.name))
                .io_memory(io_memory)
                .ring_depth(config.ring_depth.max(1))
                .spin_before_park(config.spin_before_park);
            let shards_t = shards.clone();
            let main = main.clone();
            let go = go.clone();
            let abort = abort.clone();
            let ready_thread = ready_tx.clone();
            let probe_dirs = config.dma_probe_dirs.clone();
            let guard = ExitGuard {
                running: running.clone(),
                all_done: all_done.clone(),
                shards: shards.clone(),
                id,
                finished: std::cell::Cell::new(false),
            };
            let spawned = std::thread::Builder::new()
                .name(format!("{}-{id}", config.name))
                .spawn(move || {
                    let guard = std::rc::Rc::new(guard);
                    let guard_task = guard.clone();
                    let ready_tx = ready_thread;
                    set_current_shard_id(Some(id));
                    let executor = match builder.make() {
                        Ok(ex) => ex,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("shard {id}: {e}")));
                            return None;
                        }
                    };
                    let all_done = guard.all_done.clone();
                    let out = executor.run(async move {
                        for dir in &probe_dirs {
                            if let Err(e) = dma_probe(dir).await {
                                let _ = ready_tx.send(Err(format!(
                                    "shard {id}: direct I/O probe in {} failed: {e}",
                                    dir.display()
                                )));
                                return None;
                            }
                        }
                        let _ = ready_tx.send(Ok(()));
                        drop(ready_tx);
                        go.wait().await;
                        if abort.load(Ordering::SeqCst) {
                            return None;
                        }
                        let ctx = ShardContext::new(id, shards_t.clone());
                        set_current_context(Some(ctx.clone()));
                        let poller = glommio::spawn_local(poll_mailbox(ctx.clone()));
                        let out = main(ctx).await;
                        // Keep serving other shards until all are done.
                        guard_task.finish();
                        all_done.wait().await;
                        drop(poller);
                        Some(out)
                    });
                    drop(guard);
                    set_current_context(None);
                    set_current_shard_id(None);
                    out
                });
            match spawned {
                Ok(h) => threads.push(h),
                Err(e) => {
                    // The closure (and its exit guard) was dropped: the shard counts as done.
                    let _ = ready_tx.send(Err(format!("cannot spawn thread for shard {id}: {e}")));
                }
            }
        }
        drop(ready_tx);

        let mut errors = Vec::new();
        for _ in 0..count {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(e),
                Err(_) => {
                    errors.push("a shard exited during start".into());
                    break;
                }
            }
        }
        if !errors.is_empty() {
            abort.store(true, Ordering::SeqCst);
            shards.stop();
            go.trigger();
            for t in threads {
                let _ = t.join();
            }
            return Err(ShardError::Start(errors.join("; ")));
        }
        go.trigger();
        Ok(ShardRuntime { shards, threads })
    }

    /// The handle to every shard.
    pub fn shards(&self) -> &Shards {
        &self.shards
    }

    /// Asks every shard to stop: their [`ShardContext::stopped`] futures resolve.
    pub fn stop(&self) {
        self.shards.stop();
    }

    /// Waits for every shard to finish; returns their results in shard
    /// order, or the first panic.
    pub fn join(mut self) -> Result<Vec<T>, ShardError> {
        let mut out = Vec::with_capacity(self.threads.len());
        let mut first_err = None;
        for (id, t) in std::mem::take(&mut self.threads).into_iter().enumerate() {
            match t.join() {
                Ok(Some(v)) => out.push(v),
                Ok(None) => {
                    first_err.get_or_insert(ShardError::Stopped);
                }
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    first_err.get_or_insert(ShardError::Panicked { shard: id, message });
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

impl<T: Send + 'static> Drop for ShardRuntime<T> {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shards.stop();
        }
    }
}

/// Marks a shard finished (also when it unwinds), closing its mailbox once
/// every shard is done, and stopping the node if the shard panicked.
struct ExitGuard {
    running: Arc<AtomicUsize>,
    all_done: Latch,
    shards: Shards,
    id: usize,
    finished: std::cell::Cell<bool>,
}

impl ExitGuard {
    fn finish(&self) {
        if self.finished.replace(true) {
            return;
        }
        if self.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.all_done.trigger();
        }
    }
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            log::error!("shard {} panicked; stopping the node", self.id);
            self.shards.stop();
        }
        // Start failed, aborted or panicked: this shard is done too.
        self.finish();
        if let Ok(m) = self.shards.mailbox(self.id) {
            m.close();
        }
    }
}
