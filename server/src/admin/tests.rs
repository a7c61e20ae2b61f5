//! The admin server on a real shard, driven by the blocking client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use super::client::request;
use super::*;
use crate::shard::{ShardConfig, ShardContext, ShardRuntime};

/// Starts a one-shard runtime serving `router` on an ephemeral port.
fn serve(limits: AdminLimits) -> (ShardRuntime<()>, u16) {
    let (tx, rx) = mpsc::channel();
    let cfg = ShardConfig {
        pin: false,
        ..ShardConfig::new(1)
    };
    let rt = ShardRuntime::start(cfg, move |ctx: ShardContext| {
        let tx = tx.clone();
        async move {
            let mut router = Router::new();
            router.route("GET", "/hello/{name}", |req| async move {
                let name = req.param("name").unwrap_or_default().to_string();
                let cf = req.query_list("cf");
                Response::ok(
                    json::Object::new()
                        .str("name", &name)
                        .raw("cf", &json::array(cf.iter().map(|c| json::string(c))))
                        .build(),
                )
            });
            router.route("POST", "/slow", |_| async {
                crate::shard::sleep(Duration::from_millis(300)).await;
                Response::ok_empty()
            });
            let config = crate::config::Config::default();
            register_builtin_routes(&mut router, &config, ctx.shards());
            let addr = "127.0.0.1:0".parse().unwrap();
            let server = AdminServer::bind(addr, router, limits).unwrap();
            tx.send(server.local_addr().unwrap().port()).unwrap();
            server.serve(ctx.stopped()).await;
        }
    })
    .unwrap();
    let port = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    (rt, port)
}

const T: Duration = Duration::from_secs(5);

#[test]
fn routes_params_and_errors() {
    let (rt, port) = serve(AdminLimits::default());
    let r = request("127.0.0.1", port, "GET", "/hello/w%20x?cf=a,b", T).unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["name"], "w x");
    assert_eq!(v["cf"], serde_json::json!(["a", "b"]));

    let r = request("127.0.0.1", port, "GET", "/nope", T).unwrap();
    assert_eq!(r.status, 404);
    assert!(r.error_message().contains("GET /nope"), "{r:?}");
    let r = request("127.0.0.1", port, "POST", "/hello/x", T).unwrap();
    assert_eq!(r.status, 405);

    let r = request(
        "127.0.0.1",
        port,
        "GET",
        "/storage_service/release_version",
        T,
    )
    .unwrap();
    assert_eq!(r.body, format!("\"{}\"", crate::config::VERSION));
    let r = request("127.0.0.1", port, "GET", "/system/shards", T).unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v[0]["shard"], 0);
    let r = request("127.0.0.1", port, "GET", "/", T).unwrap();
    assert!(r.body.contains("/hello/{name}"), "{}", r.body);

    // Garbage gets a 400 and the server keeps going.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"BLAH\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert_eq!(
        request("127.0.0.1", port, "GET", "/hello/a", T)
            .unwrap()
            .status,
        200
    );

    rt.stop();
    rt.join().unwrap();
    assert!(request("127.0.0.1", port, "GET", "/hello/a", T).is_err());
}

#[test]
fn connection_limit_and_read_timeout() {
    let limits = AdminLimits {
        max_connections: 2,
        read_timeout: Duration::from_millis(300),
        ..AdminLimits::default()
    };
    let (rt, port) = serve(limits);
    // Two idle connections fill the server...
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    // ...so a third is refused at once.
    let r = request("127.0.0.1", port, "GET", "/hello/a", T).unwrap();
    assert_eq!(r.status, 503, "{r:?}");
    // The idle ones time out with 408 and free their slots.
    for mut s in idle {
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    }
    assert_eq!(
        request("127.0.0.1", port, "GET", "/hello/a", T)
            .unwrap()
            .status,
        200
    );
    // Stop waits for a request in flight.
    let slow = std::thread::spawn(move || request("127.0.0.1", port, "POST", "/slow", T));
    std::thread::sleep(Duration::from_millis(100));
    rt.stop();
    assert_eq!(slow.join().unwrap().unwrap().status, 200);
    rt.join().unwrap();
}
