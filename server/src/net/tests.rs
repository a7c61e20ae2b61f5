//! Two (or more) messaging services in one executor, talking over real
//! loopback sockets on 127.0.0.9x.

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::shard::Latch;

fn run<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn config() -> MessagingConfig {
    MessagingConfig {
        max_queue_per_peer: 128,
        connect_timeout: Duration::from_secs(1),
        max_frame: 1024 * 1024,
    }
}

/// Starts a listening service at `ip:port`.
fn start(ip_s: &str, port: u16, cfg: MessagingConfig) -> (Rc<MessagingService>, Latch) {
    let ms = MessagingService::new(SocketAddr::new(ip(ip_s), port), cfg);
    let acceptor = ms.bind().unwrap();
    let stop = Latch::new();
    let s = stop.clone();
    crate::shard::spawn(async move { acceptor.serve(s.wait()).await }).detach();
    (ms, stop)
}

fn echo_handler() -> Handler {
    Rc::new(|from: IpAddr, payload: Bytes| {
        Box::pin(async move {
            let mut v = from.to_string().into_bytes();
            v.push(b':');
            v.extend_from_slice(&payload);
            Some(Bytes::from(v))
        })
    })
}

#[test]
fn two_nodes_exchange_requests_and_oneways() {
    run(|| async {
        let (a, stop_a) = start("127.0.0.91", 17001, config());
        let (b, stop_b) = start("127.0.0.92", 17001, config());
        a.register(Verb::Echo, echo_handler());
        b.register(Verb::Echo, echo_handler());
        let got = Rc::new(Cell::new(0));
        let g = got.clone();
        b.register(
            Verb::GossipShutdown,
            Rc::new(move |_, p: Bytes| {
                g.set(g.get() + p.len());
                Box::pin(async { None })
            }),
        );
        let t = Duration::from_secs(5);
        let r = a
            .send_request(ip("127.0.0.92"), Verb::Echo, Bytes::from_static(b"hi"), t)
            .await
            .unwrap();
        assert_eq!(&r[..], b"127.0.0.91:hi");
        let r = b
            .send_request(ip("127.0.0.91"), Verb::Echo, Bytes::from_static(b"yo"), t)
            .await
            .unwrap();
        assert_eq!(&r[..], b"127.0.0.92:yo");
        // Many concurrent requests on one connection, matched by id.
        let mut tasks = Vec::new();
        for i in 0..100u32 {
            let a = a.clone();
            tasks.push(crate::shard::spawn(async move {
                let p = Bytes::from(i.to_string());
                let r = a.send_request(ip("127.0.0.92"), Verb::Echo, p, t).await;
                assert_eq!(r.unwrap(), Bytes::from(format!("127.0.0.91:{i}")));
            }));
        }
        for task in tasks {
            task.await;
        }
        // Loopback.
        let r = a
            .send_request(ip("127.0.0.91"), Verb::Echo, Bytes::from_static(b"me"), t)
            .await
            .unwrap();
        assert_eq!(&r[..], b"127.0.0.91:me");
        // One-way messages.
        for _ in 0..10 {
            a.send_oneway(
                ip("127.0.0.92"),
                Verb::GossipShutdown,
                Bytes::from_static(b"xyz"),
            )
            .unwrap();
        }
        let deadline = Instant::now() + t;
        while got.get() < 30 && Instant::now() < deadline {
            crate::shard::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(got.get(), 30);
        // No handler: a remote failure, not a timeout.
        let r = a
            .send_request(ip("127.0.0.92"), Verb::ReadReq, Bytes::new(), t)
            .await;
        assert!(matches!(r, Err(MessagingError::Remote(m)) if m.contains("ReadReq")));
        assert_eq!(a.stats().pending_requests, 0);
        stop_a.trigger();
        stop_b.trigger();
        a.shutdown().await;
        b.shutdown().await;
        assert_eq!(
            a.send_oneway(ip("127.0.0.92"), Verb::Echo, Bytes::new()),
            Err(MessagingError::Closed)
        );
    });
}

#[test]
fn request_times_out_and_pending_is_cleared() {
    run(|| async {
        let (a, _sa) = start("127.0.0.91", 17002, config());
        let (b, _sb) = start("127.0.0.92", 17002, config());
        b.register(
            Verb::ReadReq,
            Rc::new(|_, _| {
                Box::pin(async {
                    crate::shard::sleep(Duration::from_millis(500)).await;
                    Some(Bytes::from_static(b"late"))
                })
            }),
        );
        let began = Instant::now();
        let r = a
            .send_request(
                ip("127.0.0.92"),
                Verb::ReadReq,
                Bytes::new(),
                Duration::from_millis(100),
            )
            .await;
        assert_eq!(r, Err(MessagingError::Timeout));
        assert!(began.elapsed() < Duration::from_millis(400));
        assert_eq!(a.stats().pending_requests, 0);
        // The late response arrives and is dropped quietly.
        crate::shard::sleep(Duration::from_millis(600)).await;
        assert!(a.stats().dropped >= 1);
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn unreachable_peer_fails_fast() {
    run(|| async {
        let (a, _sa) = start("127.0.0.91", 17003, config());
        let began = Instant::now();
        let r = a
            .send_request(
                ip("127.0.0.98"),
                Verb::Echo,
                Bytes::new(),
                Duration::from_secs(5),
            )
            .await;
        assert_eq!(r, Err(MessagingError::Unreachable));
        assert!(began.elapsed() < Duration::from_secs(2));
        // During the backoff, sends fail at once.
        assert_eq!(
            a.send_oneway(ip("127.0.0.98"), Verb::Echo, Bytes::new()),
            Err(MessagingError::Unreachable)
        );
        // After it, a peer that came up is reached.
        let (b, _sb) = start("127.0.0.98", 17003, config());
        b.register(Verb::Echo, echo_handler());
        crate::shard::sleep(MAX_BACKOFF).await;
        let r = a
            .send_request(
                ip("127.0.0.98"),
                Verb::Echo,
                Bytes::new(),
                Duration::from_secs(5),
            )
            .await;
        assert_eq!(r.unwrap(), Bytes::from_static(b"127.0.0.91:"));
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn full_queue_is_overloaded() {
    run(|| async {
        let cfg = MessagingConfig {
            max_queue_per_peer: 2,
            ..config()
        };
        let (a, _sa) = start("127.0.0.91", 17004, cfg);
        let (b, _sb) = start("127.0.0.92", 17004, config());
        let to = ip("127.0.0.92");
        // The writer has not run yet (no await): the queue fills up.
        assert!(a.send_oneway(to, Verb::Echo, Bytes::new()).is_ok());
        assert!(a.send_oneway(to, Verb::Echo, Bytes::new()).is_ok());
        assert_eq!(
            a.send_oneway(to, Verb::Echo, Bytes::new()),
            Err(MessagingError::Overloaded)
        );
        let big = Bytes::from(vec![0u8; 2 * 1024 * 1024]);
        assert!(matches!(
            a.send_oneway(to, Verb::Echo, big),
            Err(MessagingError::TooLarge { .. })
        ));
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn garbage_closes_only_that_connection() {
    run(|| async {
        let (a, _sa) = start("127.0.0.91", 17005, config());
        let (b, _sb) = start("127.0.0.92", 17005, config());
        b.register(Verb::Echo, echo_handler());
        let t = Duration::from_secs(5);
        let to = ip("127.0.0.92");
        a.send_request(to, Verb::Echo, Bytes::new(), t)
            .await
            .unwrap();

        let target = SocketAddr::new(to, 17005);
        // Not our protocol at all.
        let mut s = crate::shard::net::TcpStream::connect(target).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(s.read(&mut buf).await.unwrap_or(0), 0);
        // A good handshake, then an absurd frame length.
        let mut s = crate::shard::net::TcpStream::connect(target).await.unwrap();
        s.write_all(&frame::encode_handshake(ip("127.0.0.97")))
            .await
            .unwrap();
        s.write_all(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
            .await
            .unwrap();
        assert_eq!(s.read(&mut buf).await.unwrap_or(0), 0);
        // A frame with unknown flags.
        let mut s = crate::shard::net::TcpStream::connect(target).await.unwrap();
        s.write_all(&frame::encode_handshake(ip("127.0.0.97")))
            .await
            .unwrap();
        let mut f = Vec::new();
        frame::encode_frame(
            &mut f,
            FrameHeader {
                verb: 200,
                flags: 0xf0,
                id: 1,
            },
            b"x",
        );
        s.write_all(&f).await.unwrap();
        assert_eq!(s.read(&mut buf).await.unwrap_or(0), 0);
        assert_eq!(b.stats().protocol_errors, 3);

        // The real peer's connection is untouched.
        let r = a
            .send_request(to, Verb::Echo, Bytes::from_static(b"ok"), t)
            .await;
        assert_eq!(r.unwrap(), Bytes::from_static(b"127.0.0.91:ok"));
        a.shutdown().await;
        b.shutdown().await;
    });
}

#[test]
fn unknown_verb_gets_a_failure_response() {
    run(|| async {
        let (a, _sa) = start("127.0.0.91", 17006, config());
        let (b, _sb) = start("127.0.0.92", 17006, config());
        let to = ip("127.0.0.92");
        // Hand-craft a request with verb 250 through a's queue.
        let id = 4242;
        let slot = Rc::new(Slot::default());
        a.pending.borrow_mut().insert(
            id,
            PendingRequest {
                to,
                slot: slot.clone(),
            },
        );
        let header = FrameHeader {
            verb: 250,
            flags: FLAG_EXPECT_RESPONSE,
            id,
        };
        a.enqueue(to, header, Bytes::new()).unwrap();
        let r = crate::shard::timeout(Duration::from_secs(5), SlotWait(slot))
            .await
            .unwrap();
        assert_eq!(r, Err(MessagingError::Remote("unknown verb".into())));
        a.shutdown().await;
        b.shutdown().await;
    });
}
