//! The admin HTTP endpoint (`api_address:api_port`, default port 10000), in
//! the spirit of Scylla's REST API: `tessera-nodetool` talks to it. The paths
//! and JSON shapes are documented in `docs/admin-api.md`.
//!
//! The server is hand-written and bounded: at most
//! [`AdminLimits::max_connections`] connections (more are answered `503` and
//! closed), requests up to [`http::MAX_HEAD`] + [`http::MAX_BODY`] bytes, a
//! deadline for reading a request and for writing the answer, one request per
//! connection. It runs on one shard (shard 0 by convention). Handlers are
//! registered by the node:
//!
//! ```ignore
//! let mut router = Router::new();
//! router.route("POST", "/storage_service/keyspace_flush/{keyspace}", move |req| async move {
//!     let ks = req.param("keyspace").unwrap_or_default().to_string();
//!     // ... flush on every shard ...
//!     Response::ok_empty()
//! });
//! let server = AdminServer::bind(addr, router, AdminLimits::default())?;
//! server.serve(ctx.stopped()).await;
//! ```

#![warn(missing_docs)]

pub mod client;
pub mod http;
pub mod json;

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};

pub use http::Request;

use crate::shard::net::{TcpListener, TcpStream};

/// An admin response: a status and a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// JSON text.
    pub body: String,
}

impl Response {
    /// `200` with a JSON body.
    pub fn ok(body: impl Into<String>) -> Response {
        Response {
            status: 200,
            body: body.into(),
        }
    }

    /// `200` with an empty JSON object: the operation was done.
    pub fn ok_empty() -> Response {
        Response::ok("{}")
    }

    /// An error in Scylla's API format: `{"message": "...", "code": status}`.
    pub fn error(status: u16, message: impl AsRef<str>) -> Response {
        Response {
            status,
            body: format!(
                "{{\"message\": {}, \"code\": {status}}}",
                json::string(message.as_ref())
            ),
        }
    }
}

type BoxedHandler = Rc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Response>>>>;

struct Route {
    method: String,
    segments: Vec<Segment>,
    pattern: String,
    handler: BoxedHandler,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Param(String),
}

fn split_path(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// Maps `(method, path)` to handlers. Patterns are paths whose segments may
/// be `{name}` placeholders, available as [`Request::param`].
#[derive(Default, Clone)]
pub struct Router {
    routes: Vec<Rc<Route>>,
}

impl Router {
    /// An empty router (`GET /` always lists the routes).
    pub fn new() -> Router {
        Router::default()
    }

    /// Registers (or replaces) the handler of `method pattern`.
    pub fn route<F, Fut>(&mut self, method: &str, pattern: &str, handler: F) -> &mut Router
    where
        F: Fn(Request) -> Fut + 'static,
        Fut: Future<Output = Response> + 'static,
    {
        let segments = split_path(pattern)
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Segment::Param(name.to_string()),
                    None => Segment::Literal(s.to_string()),
                },
            )
            .collect::<Vec<_>>();
        let method = method.to_ascii_uppercase();
        self.routes
            .retain(|r| !(r.method == method && r.segments == segments));
        let handler: BoxedHandler = Rc::new(move |req| Box::pin(handler(req)));
        self.routes.push(Rc::new(Route {
            method,
            segments,
            pattern: pattern.to_string(),
            handler,
        }));
        self
    }

    /// `(method, pattern)` of every route, sorted.
    pub fn routes(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self
            .routes
            .iter()
            .map(|r| (r.method.clone(), r.pattern.clone()))
            .collect();
        v.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
        v
    }

    /// Answers one request: the matching handler's response, `404` when no
    /// pattern matches the path, `405` when only other methods do.
    pub async fn handle(&self, mut req: Request) -> Response {
        if req.path == "/" && req.method == "GET" {
            let items: Vec<String> = self
                .routes()
                .iter()
                .map(|(m, p)| {
                    format!(
                        "{{\"method\": {}, \"path\": {}}}",
                        json::string(m),
                        json::string(p)
                    )
                })
                .collect();
            return Response::ok(format!("[{}]", items.join(", ")));
        }
        let parts: Vec<&str> = split_path(&req.path).collect();
        let mut path_matched = false;
        for route in &self.routes {
            let Some(params) = match_segments(&route.segments, &parts) else {
                continue;
            };
            if route.method != req.method {
                path_matched = true;
                continue;
            }
            req.params = params;
            return (route.handler)(req).await;
        }
        if path_matched {
            Response::error(
                405,
                format!("method {} not allowed on {}", req.method, req.path),
            )
        } else {
            Response::error(
                404,
                format!(
                    "no handler for {} {} (this node does not implement it yet)",
                    req.method, req.path
                ),
            )
        }
    }
}

fn match_segments(
    pattern: &[Segment],
    parts: &[&str],
) -> Option<std::collections::BTreeMap<String, String>> {
    if pattern.len() != parts.len() {
        return None;
    }
    let mut params = std::collections::BTreeMap::new();
    for (seg, part) in pattern.iter().zip(parts) {
        match seg {
            Segment::Literal(l) if l == part => {}
            Segment::Literal(_) => return None,
            Segment::Param(name) => {
                params.insert(name.clone(), part.to_string());
            }
        }
    }
    Some(params)
}

/// Bounds of the admin server.
#[derive(Debug, Clone, Copy)]
pub struct AdminLimits {
    /// Connections served at once; more are refused with `503`.
    pub max_connections: usize,
    /// Deadline for receiving a whole request.
    pub read_timeout: Duration,
    /// Deadline for sending the response.
    pub write_timeout: Duration,
    /// How long `serve` waits for in-flight requests after the stop signal.
    pub drain_timeout: Duration,
}

impl Default for AdminLimits {
    fn default() -> Self {
        AdminLimits {
            max_connections: 64,
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// A bound admin server; [`AdminServer::serve`] runs it until stopped.
pub struct AdminServer {
    listener: TcpListener,
    router: Rc<Router>,
    limits: AdminLimits,
}

impl AdminServer {
    /// Binds `addr` on the current shard.
    pub fn bind(addr: SocketAddr, router: Router, limits: AdminLimits) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).map_err(|e| {
            let e = std::io::Error::from(e);
            std::io::Error::new(e.kind(), format!("cannot bind admin API to {addr}: {e}"))
        })?;
        Ok(AdminServer {
            listener,
            router: Rc::new(router),
            limits,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr().map_err(Into::into)
    }

    /// Accepts connections until `stop` resolves, then waits (up to the
    /// drain timeout) for requests in flight.
    pub async fn serve(self, stop: impl Future<Output = ()>) {
        let active = Rc::new(Cell::new(0usize));
        let mut stop = Box::pin(stop);
        loop {
            let accepted =
                futures_lite::future::or(async { Some(self.listener.accept().await) }, async {
                    stop.as_mut().await;
                    None
                })
                .await;
            let stream = match accepted {
                None => break,
                Some(Ok(s)) => s,
                Some(Err(e)) => {
                    log::warn!("admin API: accept failed: {e}");
                    crate::shard::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            if active.get() >= self.limits.max_connections {
                crate::shard::spawn(refuse(stream, self.limits.write_timeout)).detach();
                continue;
            }
            active.set(active.get() + 1);
            let (router, active, limits) = (self.router.clone(), active.clone(), self.limits);
            crate::shard::spawn(async move {
                serve_connection(stream, &router, limits).await;
                active.set(active.get() - 1);
            })
            .detach();
        }
        let deadline = std::time::Instant::now() + self.limits.drain_timeout;
        while active.get() > 0 && std::time::Instant::now() < deadline {
            crate::shard::sleep(Duration::from_millis(5)).await;
        }
        log::info!("admin API stopped");
    }
}

async fn refuse(mut stream: TcpStream, timeout: Duration) {
    let resp = Response::error(503, "too many admin connections");
    let bytes = http::write_response(resp.status, "application/json", &resp.body);
    let _ = crate::shard::timeout(timeout, stream.write_all(&bytes)).await;
    let _ = stream.close().await;
}

async fn serve_connection(mut stream: TcpStream, router: &Router, limits: AdminLimits) {
    let read = crate::shard::timeout(limits.read_timeout, async {
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 4096];
        loop {
            match http::parse(&buf) {
                http::Parse::Done(req, _) => return Ok(req),
                http::Parse::Error(status, msg) => return Err(Response::error(status, msg)),
                http::Parse::Incomplete => {}
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Err(Response::error(400, "incomplete request")),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let response = match read {
        Err(_) => Response::error(408, "request not received in time"),
        Ok(Err(resp)) => resp,
        Ok(Ok(req)) => {
            let (method, path) = (req.method.clone(), req.path.clone());
            let resp = router.handle(req).await;
            log::debug!("admin API: {method} {path} -> {}", resp.status);
            resp
        }
    };
    let bytes = http::write_response(response.status, "application/json", &response.body);
    let _ = crate::shard::timeout(limits.write_timeout, async {
        let _ = stream.write_all(&bytes).await;
        let _ = stream.flush().await;
    })
    .await;
    let _ = stream.close().await;
}

/// Registers the routes that need only the configuration and the shard
/// runtime: `GET /storage_service/release_version`,
/// `GET /storage_service/cluster_name` and `GET /system/shards`. The node may
/// replace any of them.
pub fn register_builtin_routes(
    router: &mut Router,
    config: &crate::config::Config,
    shards: &crate::shard::Shards,
) {
    let version = json::string(crate::config::VERSION);
    router.route("GET", "/storage_service/release_version", move |_| {
        let v = version.clone();
        async move { Response::ok(v) }
    });
    let name = json::string(&config.cluster_name);
    router.route("GET", "/storage_service/cluster_name", move |_| {
        let n = name.clone();
        async move { Response::ok(n) }
    });
    let shards = shards.clone();
    router.route("GET", "/system/shards", move |_| {
        let shards = shards.clone();
        async move {
            let items: Vec<String> = (0..shards.count())
                .filter_map(|id| shards.mailbox_stats(id).map(|s| (id, s)))
                .map(|(id, s)| {
                    format!(
                        "{{\"shard\": {id}, \"messages_received\": {}, \"messages_processed\": {}, \
                         \"mailbox_queued\": {}, \"mailbox_capacity\": {}, \"mailbox_full_waits\": {}}}",
                        s.received, s.processed, s.queued, s.capacity, s.full_waits
                    )
                })
                .collect();
            Response::ok(format!("[{}]", items.join(", ")))
        }
    });
}

#[cfg(test)]
mod tests;
