//! The CQL native transport: accepts connections on `native_transport_port`
//! and runs one [`connection`] task per client.

pub mod connection;
pub mod events;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;

use glommio::net::TcpListener;

use crate::cql3::query_processor::QueryProcessor;
use events::EventBus;

/// Limits that protect the node from its clients.
#[derive(Debug, Clone)]
pub struct TransportLimits {
    /// Largest accepted envelope body (`native_transport_max_frame_size_in_mb`).
    pub max_frame_bytes: usize,
    /// Connections per shard (`native_transport_max_concurrent_connections`).
    pub max_connections: usize,
    /// Requests read from one connection before responses must drain.
    pub max_outstanding_responses: usize,
}

/// Everything a connection needs.
pub struct TransportServices {
    pub qp: Rc<QueryProcessor>,
    pub events: Rc<EventBus>,
    pub limits: TransportLimits,
    /// Extra SUPPORTED options (e.g. Scylla's sharding keys).
    pub extra_supported: Vec<(String, Vec<String>)>,
    pub open_connections: Cell<usize>,
    /// Triggered when the transports stop (`commit_failure_policy: stop`):
    /// every connection closes.
    pub stopped: crate::shard::Latch,
}

/// Accepts connections until `stop` resolves.
pub async fn serve(
    listener: TcpListener,
    services: Rc<TransportServices>,
    stop: impl std::future::Future<Output = ()>,
) {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let accept = async {
        loop {
            match listener.accept().await {
                Ok(stream) => spawn_connection(stream, services.clone()),
                Err(e) => {
                    log::warn!("accept failed on {:?}: {e}", addr);
                    glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    };
    futures_lite::future::or(accept, stop).await;
    log::info!("stopped listening for CQL clients on {:?}", addr);
}

/// Accepts on the shard-aware port and hands every connection to the shard
/// `client source port % shards`, as Scylla's shard-aware port does.
pub async fn serve_shard_aware(
    listener: TcpListener,
    ctx: crate::shard::ShardContext,
    stop: impl std::future::Future<Output = ()>,
) {
    let addr = listener.local_addr().ok();
    let accept = async {
        loop {
            match listener.shared_accept().await {
                Ok(stream) => {
                    let port = stream.peer_addr().map(|a| a.port()).unwrap_or(0);
                    let target =
                        proto::scylla::shard_for_client_port(port, ctx.count() as u32) as usize;
                    let handed = ctx
                        .shards()
                        .invoke_on(target, move |ctx| async move {
                            let stream = stream.bind_to_executor();
                            match crate::node::services(&ctx) {
                                Ok(s) => spawn_connection(stream, s.transport.clone()),
                                Err(e) => {
                                    log::warn!("shard-aware connection dropped: {}", e.message)
                                }
                            }
                        })
                        .await;
                    if let Err(e) = handed {
                        log::warn!(
                            "could not hand a shard-aware connection to shard {target}: {e}"
                        );
                    }
                }
                Err(e) => {
                    log::warn!("accept failed on {:?}: {e}", addr);
                    glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
    };
    futures_lite::future::or(accept, stop).await;
}

/// Runs a connection on this shard, within the connection limit.
pub fn spawn_connection(stream: glommio::net::TcpStream, services: Rc<TransportServices>) {
    let n = services.open_connections.get();
    if n >= services.limits.max_connections {
        log::warn!("refusing connection: {n} connections open (native_transport_max_concurrent_connections)");
        return;
    }
    services.open_connections.set(n + 1);
    glommio::spawn_local(async move {
        let peer = stream.peer_addr().ok();
        if let Err(e) = connection::Connection::run(stream, services.clone()).await {
            log::debug!("connection {:?} closed: {e}", peer);
        }
        services
            .open_connections
            .set(services.open_connections.get().saturating_sub(1));
    })
    .detach();
}
