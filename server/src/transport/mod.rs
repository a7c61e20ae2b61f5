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
}

/// Accepts connections until `stop` resolves.
pub async fn serve(listener: TcpListener, services: Rc<TransportServices>, stop: impl std::future::Future<Output = ()>) {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let accept = async {
        loop {
            match listener.accept().await {
                Ok(stream) => {
                    let n = services.open_connections.get();
                    if n >= services.limits.max_connections {
                        log::warn!("refusing connection: {} connections open (native_transport_max_concurrent_connections)", n);
                        drop(stream);
                        continue;
                    }
                    services.open_connections.set(n + 1);
                    let s = services.clone();
                    glommio::spawn_local(async move {
                        let peer = stream.peer_addr().ok();
                        if let Err(e) = connection::Connection::run(stream, s.clone()).await {
                            log::debug!("connection {:?} closed: {e}", peer);
                        }
                        s.open_connections.set(s.open_connections.get().saturating_sub(1));
                    })
                    .detach();
                }
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
