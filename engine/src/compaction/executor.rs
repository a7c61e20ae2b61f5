//! [`CompactionExecutor`]: the threads compactions run on, off the shards'
//! reactor threads (Cassandra's `concurrent_compactors`).
//!
//! A fixed number of worker threads take jobs from one bounded queue. A
//! full queue refuses the job (the shard gives it back with
//! [`crate::Database::abort_compaction`] and tries again later): nothing
//! waits without bound. Each job carries its own completion callback, so
//! one executor serves every shard of a node; the callback hands the
//! result back to the job's shard.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::error::EngineError;

use super::job::{CompactionJob, CompactionOutput};

/// Called on the compaction thread with the finished job and its result.
pub type CompactionDone =
    Box<dyn FnOnce(CompactionJob, Result<CompactionOutput, EngineError>) + Send>;

type Work = (CompactionJob, CompactionDone);

/// Worker threads plus a bounded queue of compaction jobs.
pub struct CompactionExecutor {
    tx: Mutex<Option<SyncSender<Work>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    workers: usize,
}

impl std::fmt::Debug for CompactionExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactionExecutor")
            .field("workers", &self.workers)
            .finish()
    }
}

impl CompactionExecutor {
    /// Starts `workers` threads (at least 1) named `compaction-<i>`, with a
    /// queue of `queue` waiting jobs (at least 1).
    pub fn start(workers: usize, queue: usize) -> std::io::Result<CompactionExecutor> {
        let workers = workers.max(1);
        let (tx, rx) = sync_channel::<Work>(queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let rx = rx.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("compaction-{i}"))
                    .spawn(move || worker(&rx))?,
            );
        }
        Ok(CompactionExecutor {
            tx: Mutex::new(Some(tx)),
            threads: Mutex::new(threads),
            workers,
        })
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Queues `job`; `done` runs on the compaction thread when it ends. A
    /// full queue or a stopped executor gives the job back.
    pub fn submit(&self, job: CompactionJob, done: CompactionDone) -> Result<(), CompactionJob> {
        let guard = match self.tx.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let Some(tx) = guard.as_ref() else {
            return Err(job);
        };
        match tx.try_send((job, done)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full((job, _))) | Err(TrySendError::Disconnected((job, _))) => {
                Err(job)
            }
        }
    }

    /// Stops taking jobs, lets the workers finish the queue (cancel jobs
    /// first to make that quick) and joins them.
    pub fn shutdown(&self) {
        match self.tx.lock() {
            Ok(mut g) => drop(g.take()),
            Err(p) => drop(p.into_inner().take()),
        }
        let threads = match self.threads.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        };
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for CompactionExecutor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn worker(rx: &Mutex<Receiver<Work>>) {
    loop {
        let next = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok((job, done)) = next else {
            return; // the executor stopped and the queue is empty
        };
        let result = if job.progress().is_cancelled() {
            Err(super::job::cancelled_error())
        } else {
            job.run()
        };
        done(job, result);
    }
}
