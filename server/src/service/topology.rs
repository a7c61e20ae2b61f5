//! The cluster as this node sees it: every known node (this one first),
//! its datacenter, rack, tokens and liveness, and the token ring built from
//! them. Built on shard 0 from gossip and installed on every shard as an
//! immutable snapshot.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::locator::{ReplicationStrategy, Ring, RingNode};
use crate::schema::{KeyspaceMetadata, LocalNodeInfo, PeerInfo};

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Internode address (`listen_address`/`broadcast_address`).
    pub addr: IpAddr,
    pub dc: String,
    pub rack: String,
    pub host_id: [u8; 16],
    pub tokens: Vec<i64>,
    pub rpc_address: IpAddr,
    pub native_port: i32,
    pub schema_version: [u8; 16],
    pub release_version: String,
    /// Gossip status (`NORMAL`, `LEAVING`, `LEFT`, `BOOT`, ...).
    pub status: String,
    pub alive: bool,
}

/// A snapshot of the cluster. `endpoints[0]` is this node.
#[derive(Debug, Clone)]
pub struct Topology {
    pub endpoints: Vec<Endpoint>,
    pub ring: Ring,
}

impl Topology {
    /// A cluster of this node alone.
    pub fn single(local: &LocalNodeInfo) -> Topology {
        Topology::new(vec![Endpoint {
            addr: local.broadcast_address,
            dc: local.data_center.clone(),
            rack: local.rack.clone(),
            host_id: local.host_id,
            tokens: local.tokens.clone(),
            rpc_address: local.rpc_address,
            native_port: local.rpc_port,
            schema_version: [0; 16],
            release_version: local.release_version.clone(),
            status: "NORMAL".into(),
            alive: true,
        }])
    }

    /// Builds the ring from the endpoints that own tokens (`NORMAL`,
    /// `LEAVING`); `endpoints[0]` must be this node.
    pub fn new(endpoints: Vec<Endpoint>) -> Topology {
        let ring = Ring::new(
            endpoints
                .iter()
                .map(|e| RingNode {
                    endpoint: format!("/{}", e.addr),
                    datacenter: e.dc.clone(),
                    rack: e.rack.clone(),
                    tokens: if matches!(e.status.as_str(), "NORMAL" | "LEAVING") {
                        e.tokens.clone()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
        );
        Topology { endpoints, ring }
    }

    pub fn local(&self) -> &Endpoint {
        &self.endpoints[0]
    }

    pub fn is_single_node(&self) -> bool {
        self.endpoints.len() == 1
    }

    /// The replicas of `token` for a keyspace, as endpoint indexes in
    /// placement order.
    pub fn replicas(&self, ks: &KeyspaceMetadata, token: i64) -> Vec<usize> {
        match strategy(ks) {
            ReplicationStrategy::Local => vec![0],
            s => self.ring.natural_replicas(&s, token),
        }
    }

    /// Live nodes per datacenter.
    pub fn live_per_dc(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for e in &self.endpoints {
            if e.alive {
                *m.entry(e.dc.clone()).or_insert(0) += 1;
            }
        }
        m
    }

    /// Every other node, as `system.peers` shows it.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.endpoints
            .iter()
            .skip(1)
            .filter(|e| e.status != "LEFT")
            .map(|e| PeerInfo {
                peer: e.addr,
                peer_port: 7000,
                data_center: e.dc.clone(),
                rack: e.rack.clone(),
                host_id: e.host_id,
                rpc_address: e.rpc_address,
                native_port: e.native_port,
                preferred_ip: None,
                preferred_port: None,
                release_version: e.release_version.clone(),
                schema_version: e.schema_version,
                tokens: e.tokens.clone(),
            })
            .collect()
    }
}

/// The keyspace's replication strategy (unknown classes place locally).
pub fn strategy(ks: &KeyspaceMetadata) -> ReplicationStrategy {
    ReplicationStrategy::from_options(&ks.replication.class, &ks.replication.options)
        .unwrap_or(ReplicationStrategy::Local)
}

/// A shareable snapshot.
pub type TopologyRef = Arc<Topology>;
