//! Tests of the shard runtime: real executors on real threads.

use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

fn config(n: usize) -> ShardConfig {
    ShardConfig {
        // Tests run in parallel on a 2-core machine: don't pin.
        pin: false,
        ..ShardConfig::new(n)
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tessera-shard-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn two_shards_ping_pong_through_invoke_on() {
    const ROUNDS: u64 = 2000;
    let mut cfg = config(2);
    cfg.pin = std::env::var("TESSERA_TEST_PIN").is_ok();
    let rt = ShardRuntime::start(cfg, |ctx: ShardContext| async move {
        if ctx.id() != 0 {
            ctx.stopped().await;
            return None;
        }
        let counter = Sharded::start(ctx.shards(), |_| Cell::new(0u64))
            .await
            .unwrap();
        let start = Instant::now();
        for i in 0..ROUNDS {
            let seen = counter
                .invoke_on(1, move |c| async move {
                    c.set(c.get() + 1);
                    (current_shard_id(), c.get(), i)
                })
                .await
                .unwrap();
            assert_eq!(seen, (Some(1), i + 1, i));
        }
        let per_round_trip = start.elapsed() / ROUNDS as u32;
        // Shard 0's own instance was never touched.
        assert_eq!(counter.local(&ctx).unwrap().get(), 0);
        let all = counter
            .invoke_on_all(|c| async move { c.get() })
            .await
            .unwrap();
        assert_eq!(all, vec![0, ROUNDS]);
        counter.stop(|_| async {}).await.unwrap();
        assert_eq!(
            counter.invoke_on(1, |c| async move { c.get() }).await,
            Err(ShardError::NoService(1))
        );
        ctx.shards().stop();
        Some(per_round_trip)
    })
    .unwrap();
    let results = rt.join().unwrap();
    let rtt = results[0].unwrap();
    eprintln!("cross-shard invoke_on round trip: {rtt:?}");
    assert!(
        rtt < Duration::from_millis(5),
        "round trip too slow: {rtt:?}"
    );
}

#[test]
fn full_mailbox_pushes_back() {
    let mut cfg = config(2);
    cfg.mailbox_capacity = 4;
    let rt = ShardRuntime::start(cfg, |ctx: ShardContext| async move {
        ctx.stopped().await;
    })
    .unwrap();
    let shards = rt.shards().clone();
    // Block shard 1's executor so its mailbox fills up.
    let started = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    let (s, r) = (started.clone(), release.clone());
    let blocker = shards
        .try_invoke_on(1, move |_| async move {
            s.store(true, Ordering::SeqCst);
            while !r.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .unwrap();
    while !started.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut replies = Vec::new();
    for i in 0..4u32 {
        replies.push(shards.try_invoke_on(1, move |_| async move { i }).unwrap());
    }
    assert!(matches!(
        shards.try_invoke_on(1, |_| async {}),
        Err(ShardError::Overloaded)
    ));
    assert_eq!(shards.mailbox_stats(1).unwrap().queued, 4);
    // A waiting sender gets through once the shard drains its queue.
    let waiting = {
        let shards = shards.clone();
        std::thread::spawn(move || shards.invoke_on_blocking(1, |_| async { 99u32 }))
    };
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        !waiting.is_finished(),
        "sender must wait while the queue is full"
    );
    release.store(true, Ordering::SeqCst);
    futures_lite::future::block_on(blocker).unwrap();
    for (i, r) in replies.into_iter().enumerate() {
        assert_eq!(futures_lite::future::block_on(r), Ok(i as u32));
    }
    assert_eq!(waiting.join().unwrap(), Ok(99));
    let stats = shards.mailbox_stats(1).unwrap();
    assert!(stats.full_waits >= 1, "{stats:?}");
    assert_eq!(stats.capacity, 4);
    rt.stop();
    rt.join().unwrap();
    // After the shards are gone, requests fail instead of hanging.
    assert_eq!(
        shards.invoke_on_blocking(0, |_| async {}),
        Err(ShardError::Stopped)
    );
}

#[test]
fn stop_resolves_every_shard_and_shards_serve_until_all_done() {
    let served = Arc::new(AtomicUsize::new(0));
    let s = served.clone();
    let rt = ShardRuntime::start(config(2), move |ctx: ShardContext| {
        let served = s.clone();
        async move {
            if ctx.id() == 0 {
                // Shard 0 is done at once but must keep answering shard 1.
                return 0;
            }
            ctx.stopped().await;
            assert!(ctx.is_stopping());
            let v = ctx
                .invoke_on(0, |c| async move { c.id() + 10 })
                .await
                .unwrap();
            served.fetch_add(1, Ordering::SeqCst);
            v
        }
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    rt.stop();
    assert_eq!(rt.join().unwrap(), vec![0, 10]);
    assert_eq!(served.load(Ordering::SeqCst), 1);
}

#[test]
fn timers_spawn_and_timeout() {
    let rt = ShardRuntime::start(config(1), |_ctx: ShardContext| async move {
        let t0 = Instant::now();
        sleep(Duration::from_millis(20)).await;
        assert!(t0.elapsed() >= Duration::from_millis(20));
        let task = spawn(async { 5 });
        yield_now().await;
        maybe_yield().await;
        assert_eq!(task.await, 5);
        assert_eq!(
            timeout(Duration::from_millis(5), sleep(Duration::from_secs(5))).await,
            Err(Elapsed)
        );
        assert_eq!(timeout(Duration::from_secs(5), async { 1 }).await, Ok(1));
    })
    .unwrap();
    rt.join().unwrap();
}

#[test]
fn a_panicking_shard_stops_the_node() {
    let rt = ShardRuntime::start(config(2), |ctx: ShardContext| async move {
        if ctx.id() == 1 {
            panic!("boom on shard 1");
        }
        ctx.stopped().await;
    })
    .unwrap();
    match rt.join() {
        Err(ShardError::Panicked { shard: 1, message }) => assert!(message.contains("boom")),
        other => panic!("expected a panic report, got {other:?}"),
    }
}

#[test]
fn dma_files_write_and_read_back_after_probe() {
    let dir = temp_dir("dma");
    let mut cfg = config(2);
    cfg.dma_probe_dirs = vec![dir.clone()];
    let d = dir.clone();
    let rt = ShardRuntime::start(cfg, move |ctx: ShardContext| {
        let dir = d.clone();
        async move {
            let path = dir.join(format!("file-{}", ctx.id()));
            // Opened read-write and empty, as a commitlog segment is: without
            // the probe, glommio would now pick its poll ring for this disk
            // and the reads below would fail with EOPNOTSUPP.
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .dma_open(&path)
                .await
                .unwrap();
            let mut buf = file.alloc_dma_buffer(8192);
            for (i, b) in buf.as_bytes_mut().iter_mut().enumerate() {
                *b = (i % 253) as u8 ^ ctx.id() as u8;
            }
            assert_eq!(file.write_at(buf, 0).await.unwrap(), 8192);
            file.fdatasync().await.unwrap();
            let same_fd = file.read_at_aligned(0, 4096).await.unwrap();
            assert_eq!(same_fd.len(), 4096);
            assert_eq!(same_fd[1], 1 ^ ctx.id() as u8);
            file.close().await.unwrap();
            let file = DmaFile::open(&path).await.unwrap();
            let read = file.read_at_aligned(4096, 4096).await.unwrap();
            assert_eq!(read.len(), 4096);
            for (i, b) in read.iter().enumerate() {
                assert_eq!(*b, ((i + 4096) % 253) as u8 ^ ctx.id() as u8);
            }
            file.close().await.unwrap();
        }
    })
    .unwrap();
    rt.join().unwrap();
    assert_eq!(
        std::fs::metadata(dir.join(DMA_PROBE_FILE)).unwrap().len(),
        4096
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn start_fails_cleanly_when_a_probe_directory_is_unusable() {
    let dir = temp_dir("bad-probe");
    let not_a_dir = dir.join("file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let mut cfg = config(2);
    cfg.dma_probe_dirs = vec![not_a_dir.join("sub")];
    match ShardRuntime::start(cfg, |_ctx: ShardContext| async {}) {
        Err(ShardError::Start(m)) => assert!(m.contains("direct I/O probe"), "{m}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("start must fail"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn io_memory_fits_the_memlock_limit() {
    for n in [1, 2, 8, 64] {
        let m = io_memory_per_shard(n);
        assert!((64 << 10..=8 << 20).contains(&m), "{n} shards: {m}");
        assert_eq!(m % 4096, 0);
    }
}

#[test]
fn invoke_on_unknown_shard_is_an_error() {
    let rt = ShardRuntime::start(config(1), |ctx: ShardContext| async move {
        ctx.invoke_on(3, |_| async {}).await
    })
    .unwrap();
    assert_eq!(
        rt.join().unwrap(),
        vec![Err(ShardError::NoSuchShard { shard: 3, count: 1 })]
    );
}

#[test]
fn signals_trigger_the_stop_latch() {
    let latch = Latch::new();
    let watcher = signals::install(latch.clone()).unwrap();
    // SAFETY: raising a signal this process handles.
    unsafe { libc::raise(libc::SIGTERM) };
    let t0 = Instant::now();
    while !latch.is_triggered() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(latch.is_triggered());
    watcher.close();
}

#[test]
fn gate_waits_for_background_work() {
    let rt = ShardRuntime::start(config(1), |_ctx: ShardContext| async move {
        let gate = Gate::new();
        let done = Rc::new(Cell::new(0));
        for i in 0..3u64 {
            let done = done.clone();
            gate.spawn(async move {
                sleep(Duration::from_millis(10 * (i + 1))).await;
                done.set(done.get() + 1);
            })
            .unwrap();
        }
        assert_eq!(gate.count(), 3);
        let guard = gate.enter().unwrap();
        let closing = gate.close();
        assert_eq!(gate.spawn(async {}), Err(GateClosed));
        assert!(gate.enter().is_err());
        let late = spawn(async move {
            sleep(Duration::from_millis(50)).await;
            drop(guard);
        });
        closing.await;
        assert_eq!(done.get(), 3);
        assert_eq!(gate.count(), 0);
        late.await;
        // Closing an idle gate resolves at once.
        Gate::new().close().await;
    })
    .unwrap();
    rt.join().unwrap();
}

#[test]
fn requests_for_the_local_shard_run_in_place() {
    let rt = ShardRuntime::start(config(2), |ctx: ShardContext| async move {
        if ctx.id() == 1 {
            ctx.stopped().await;
            return;
        }
        let svc = Sharded::start(ctx.shards(), |c| Cell::new(c.id() * 100))
            .await
            .unwrap();
        let before = ctx.shards().mailbox_stats(0).unwrap().received;
        let v = svc
            .invoke_on(0, |c| async move {
                c.set(c.get() + 1);
                c.get()
            })
            .await
            .unwrap();
        assert_eq!(v, 1);
        assert_eq!(svc.local(&ctx).unwrap().get(), 1);
        // Not queued through shard 0's own mailbox.
        assert_eq!(ctx.shards().mailbox_stats(0).unwrap().received, before);
        assert_eq!(svc.invoke_on(1, |c| async move { c.get() }).await, Ok(100));
        assert!(ctx.shards().mailbox_stats(1).unwrap().received > 0);
        ctx.shards().stop();
    })
    .unwrap();
    rt.join().unwrap();
}
