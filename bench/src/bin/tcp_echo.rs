//! `tcp-echo`: the ceiling this machine allows for a request/response server over loopback
//! TCP, to read every tessera figure as a ratio to it.
//!
//! ```text
//! tcp-echo server 127.0.0.61:9999 [threads=1]
//! tcp-echo client 127.0.0.61:9999 conns=2 depth=32 duration=10s size=64
//! ```
//!
//! Wire format: a request is `[u32 LE length][payload]`; the server echoes it back. Like a
//! good database server it answers every complete request it has read in one write. A
//! request whose length is `u32::MAX` is a control message: the server answers with 16 bytes,
//! its own CPU time (user + system, µs, from `getrusage`) and the requests it has served,
//! so the client prints server CPU time per request without needing the server's pid.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CONTROL: u32 = u32::MAX;

fn cpu_micros() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we pass; RUSAGE_SELF is always valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return 0;
    }
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

const USAGE: &str = "\
Usage:
  tcp-echo server ADDR [threads=1]
  tcp-echo client ADDR [conns=2] [depth=32] [duration=10s] [size=64] [threads=1]

The client keeps conns x depth requests in flight, sends replacements for every batch of
responses in one write, and prints requests/s, latency, and the server's and its own CPU
time per request. The last line is machine-readable (RESULT key=value ...).";

fn kv(args: &[String], key: &str, default: &str) -> String {
    args.iter()
        .find_map(|a| a.strip_prefix(&format!("{key}=")).map(String::from))
        .unwrap_or_else(|| default.to_string())
}

fn num(args: &[String], key: &str, default: &str) -> usize {
    let v = kv(args, key, default);
    v.parse().unwrap_or_else(|_| {
        eprintln!("tcp-echo: bad {key}={v}\n\n{USAGE}");
        std::process::exit(2)
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("{USAGE}");
        std::process::exit(if args.first().is_some_and(|a| a == "help") {
            0
        } else {
            2
        });
    }
    let threads = num(&args, "threads", "1");
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    let addr = args[1].clone();
    let status = match args[0].as_str() {
        "server" => rt.block_on(server(addr)),
        "client" => {
            let dur = kv(&args, "duration", "10s");
            let secs: f64 = dur.trim_end_matches('s').parse().unwrap_or_else(|_| {
                eprintln!("tcp-echo: bad duration={dur} (seconds, e.g. 10s)");
                std::process::exit(2)
            });
            rt.block_on(client(
                addr,
                num(&args, "conns", "2"),
                num(&args, "depth", "32").max(1),
                Duration::from_secs_f64(secs),
                num(&args, "size", "64"),
            ))
        }
        _ => {
            eprintln!("{USAGE}");
            2
        }
    };
    std::process::exit(status);
}

async fn server(addr: String) -> i32 {
    let listener = match TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tcp-echo: cannot listen on {addr}: {e}");
            return 1;
        }
    };
    println!("tcp-echo server listening on {addr}");
    let served = Arc::new(AtomicU64::new(0));
    let start_cpu = cpu_micros();
    loop {
        tokio::select! {
            acc = listener.accept() => match acc {
                Ok((sock, _)) => {
                    let _ = sock.set_nodelay(true);
                    tokio::spawn(serve_conn(sock, served.clone()));
                }
                Err(e) => eprintln!("tcp-echo: accept: {e}"),
            },
            _ = tokio::signal::ctrl_c() => {
                let n = served.load(Ordering::Relaxed);
                let cpu = cpu_micros() - start_cpu;
                println!(
                    "served {n} requests, server CPU {:.3} s, {:.2} µs/request",
                    cpu as f64 / 1e6,
                    if n > 0 { cpu as f64 / n as f64 } else { 0.0 }
                );
                return 0;
            }
        }
    }
}

async fn serve_conn(mut sock: TcpStream, served: Arc<AtomicU64>) {
    let mut inb: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        inb.extend_from_slice(&buf[..n]);
        let mut pos = 0;
        let mut count = 0;
        while inb.len() - pos >= 4 {
            let len = u32::from_le_bytes(inb[pos..pos + 4].try_into().unwrap());
            if len == CONTROL {
                out.extend_from_slice(&cpu_micros().to_le_bytes());
                out.extend_from_slice(&served.load(Ordering::Relaxed).to_le_bytes());
                pos += 4;
                continue;
            }
            let end = pos + 4 + len as usize;
            if inb.len() < end {
                break;
            }
            out.extend_from_slice(&inb[pos..end]);
            pos = end;
            count += 1;
        }
        inb.drain(..pos);
        served.fetch_add(count, Ordering::Relaxed);
        if !out.is_empty() {
            if sock.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

async fn control(addr: &str) -> std::io::Result<(u64, u64)> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(&CONTROL.to_le_bytes()).await?;
    let mut b = [0u8; 16];
    s.read_exact(&mut b).await?;
    Ok((
        u64::from_le_bytes(b[..8].try_into().unwrap()),
        u64::from_le_bytes(b[8..].try_into().unwrap()),
    ))
}

struct ConnResult {
    done: u64,
    hist: Histogram<u64>,
}

async fn client(addr: String, conns: usize, depth: usize, dur: Duration, size: usize) -> i32 {
    let (cpu0, served0) = match control(&addr).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("tcp-echo: cannot reach the server at {addr}: {e}");
            return 1;
        }
    };
    println!(
        "tcp-echo client: {conns} connections x {depth} in flight, {size}-byte requests, {:?}",
        dur
    );
    let stop = Arc::new(AtomicBool::new(false));
    let ccpu0 = cpu_micros();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let addr = addr.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            run_conn(addr, depth, size, stop).await
        }));
    }
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::Relaxed);
    let mut done = 0;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut failed = 0;
    for t in tasks {
        match t.await {
            Ok(Ok(r)) => {
                done += r.done;
                hist.add(&r.hist).unwrap();
            }
            Ok(Err(e)) => {
                eprintln!("tcp-echo: connection error: {e}");
                failed += 1;
            }
            Err(e) => {
                eprintln!("tcp-echo: task failed: {e}");
                failed += 1;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ccpu = cpu_micros() - ccpu0;
    let (cpu1, served1) = match control(&addr).await {
        Ok(v) => v,
        Err(e) => {
            eprintln!("tcp-echo: server stats after the run: {e}");
            return 1;
        }
    };
    let served = served1 - served0;
    let scpu = cpu1 - cpu0;
    let rate = done as f64 / elapsed;
    let s_us = scpu as f64 / served.max(1) as f64;
    let c_us = ccpu as f64 / done.max(1) as f64;
    let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!("Requests             : {done} in {elapsed:.1} s");
    println!("Request rate         : {rate:.0} req/s");
    println!(
        "Latency              : mean {:.3} ms, median {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
        hist.mean() / 1000.0,
        ms(0.5),
        ms(0.99),
        ms(0.999),
        hist.max() as f64 / 1000.0
    );
    println!(
        "Server CPU           : {:.3} s for {served} requests = {s_us:.2} µs/request",
        scpu as f64 / 1e6
    );
    println!(
        "Client CPU           : {:.3} s = {c_us:.2} µs/request",
        ccpu as f64 / 1e6
    );
    println!("Failed connections   : {failed}");
    println!(
        "RESULT req_s={rate:.0} server_cpu_us_per_req={s_us:.3} client_cpu_us_per_req={c_us:.3} p50_ms={:.3} p99_ms={:.3} p999_ms={:.3} conns={conns} depth={depth} size={size}",
        ms(0.5),
        ms(0.99),
        ms(0.999)
    );
    if failed > 0 {
        1
    } else {
        0
    }
}

async fn run_conn(
    addr: String,
    depth: usize,
    size: usize,
    stop: Arc<AtomicBool>,
) -> std::io::Result<ConnResult> {
    let mut sock = TcpStream::connect(&addr).await?;
    sock.set_nodelay(true)?;
    let frame_len = 4 + size;
    let mut frame = Vec::with_capacity(frame_len);
    frame.extend_from_slice(&(size as u32).to_le_bytes());
    frame.extend((0..size).map(|i| i as u8));
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut sent_at = std::collections::VecDeque::with_capacity(depth);
    let mut out = Vec::with_capacity(frame_len * depth);
    let now = Instant::now();
    for _ in 0..depth {
        out.extend_from_slice(&frame);
        sent_at.push_back(now);
    }
    sock.write_all(&out).await?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending = 0usize; // bytes of a partially received response
    let mut done = 0u64;
    while !sent_at.is_empty() {
        let n = sock.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        pending += n;
        let complete = pending / frame_len;
        pending %= frame_len;
        let now = Instant::now();
        out.clear();
        let more = !stop.load(Ordering::Relaxed);
        for _ in 0..complete {
            if let Some(t) = sent_at.pop_front() {
                hist.saturating_record((now - t).as_micros() as u64);
                done += 1;
            }
            if more {
                out.extend_from_slice(&frame);
                sent_at.push_back(now);
            }
        }
        if !out.is_empty() {
            sock.write_all(&out).await?;
        }
    }
    Ok(ConnResult { done, hist })
}
