//! The cluster as this node sees it: every known node (this one first),
//! its datacenter, rack, tokens and liveness, and the token ring built from
//! them. Built on shard 0 from gossip and installed on every shard as an
//! immutable snapshot.
//!
//! Range movements (Cassandra's `TokenMetadata` pending ranges): while a
//! node bootstraps (`BOOT`) or leaves (`LEAVING`), the topology also holds
//! the ring as it will be once the movement completes. A write goes to the
//! natural replicas of the current ring and, in addition, to the *pending*
//! replicas — those the future ring adds — without counting them toward the
//! consistency level. The streaming plan of a movement compares the two
//! rings range by range ([`Topology::range_movements`]).

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

/// The first field of a gossip `STATUS` value (`NORMAL,<token>` -> `NORMAL`).
pub fn status_head(status: &str) -> &str {
    status.split(',').next().unwrap_or("")
}

/// Whether a node with this status owns its tokens in the ring now. A
/// node that is down or shut down keeps them; a joining node does not yet,
/// one that left or was removed no longer does.
pub fn owns_tokens(status: &str) -> bool {
    !matches!(
        status_head(status),
        "BOOT" | "LEFT" | "removed" | "hibernate"
    )
}

/// Whether the node is gone from the ring for good (left or removed).
pub fn has_left(status: &str) -> bool {
    matches!(status_head(status), "LEFT" | "removed")
}

/// A token range `(start, end]` (wrapping when `start >= end`) with its
/// replicas in the current ring and in the ring after the movement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeMove {
    /// Exclusive start token.
    pub start: i64,
    /// Inclusive end token.
    pub end: i64,
    /// Replicas now (endpoint indexes).
    pub current: Vec<usize>,
    /// Replicas once every pending movement has completed.
    pub future: Vec<usize>,
}

/// A snapshot of the cluster. `endpoints[0]` is this node.
#[derive(Debug, Clone)]
pub struct Topology {
    pub endpoints: Vec<Endpoint>,
    pub ring: Ring,
    /// The ring once the joining nodes have joined and the leaving ones
    /// left; `None` when nothing moves.
    pub future_ring: Option<Ring>,
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

    /// Builds the ring from the endpoints that own tokens (every status but
    /// `BOOT`, `LEFT` and `removed`), and the future ring when a node joins
    /// or leaves. `endpoints[0]` must be this node; other nodes that left
    /// the ring are dropped.
    pub fn new(mut endpoints: Vec<Endpoint>) -> Topology {
        let mut i = 0;
        endpoints.retain(|e| {
            i += 1;
            i == 1 || !has_left(&e.status)
        });
        let ring_of = |owns: &dyn Fn(&Endpoint) -> bool| {
            Ring::new(
                endpoints
                    .iter()
                    .map(|e| RingNode {
                        endpoint: format!("/{}", e.addr),
                        datacenter: e.dc.clone(),
                        rack: e.rack.clone(),
                        tokens: if owns(e) {
                            e.tokens.clone()
                        } else {
                            Vec::new()
                        },
                    })
                    .collect(),
            )
        };
        let ring = ring_of(&|e| owns_tokens(&e.status));
        // A node being removed (`removing`, by `removenode`) leaves like a
        // decommissioned one.
        let moving = endpoints
            .iter()
            .any(|e| matches!(status_head(&e.status), "BOOT" | "LEAVING" | "removing"));
        let future_ring = moving.then(|| {
            ring_of(&|e| {
                let s = status_head(&e.status);
                s == "BOOT" || (owns_tokens(&e.status) && !matches!(s, "LEAVING" | "removing"))
            })
        });
        Topology {
            endpoints,
            ring,
            future_ring,
        }
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

    /// Pending replicas of `token`: the nodes that will become replicas
    /// once the current range movements complete (a joining node, or the
    /// heirs of a leaving one). Writes go to them too, without counting
    /// toward the consistency level.
    pub fn pending_replicas(&self, ks: &KeyspaceMetadata, token: i64) -> Vec<usize> {
        let Some(future) = &self.future_ring else {
            return Vec::new();
        };
        let s = strategy(ks);
        if s == ReplicationStrategy::Local {
            return Vec::new();
        }
        let now = self.ring.natural_replicas(&s, token);
        future
            .natural_replicas(&s, token)
            .into_iter()
            .filter(|i| !now.contains(i))
            .collect()
    }

    /// Every range of the finest split of the current and the future ring,
    /// with its replicas in both, for a keyspace (empty when nothing moves
    /// or the keyspace is local).
    pub fn range_movements(&self, ks: &KeyspaceMetadata) -> Vec<RangeMove> {
        let Some(future) = &self.future_ring else {
            return Vec::new();
        };
        let s = strategy(ks);
        if s == ReplicationStrategy::Local {
            return Vec::new();
        }
        let mut tokens: Vec<i64> = self
            .ring
            .tokens()
            .iter()
            .chain(future.tokens())
            .copied()
            .collect();
        tokens.sort_unstable();
        tokens.dedup();
        let n = tokens.len();
        (0..n)
            .map(|i| {
                let end = tokens[i];
                RangeMove {
                    start: tokens[(i + n - 1) % n],
                    end,
                    current: self.ring.natural_replicas(&s, end),
                    future: future.natural_replicas(&s, end),
                }
            })
            .collect()
    }

    /// The fraction of the ring each endpoint replicates for `ks` (its
    /// effective ownership), or primary ownership when `ks` is `None`.
    pub fn ownership(&self, ks: Option<&KeyspaceMetadata>) -> Vec<f64> {
        let mut owns = vec![0.0; self.endpoints.len()];
        let s = match ks.map(strategy) {
            Some(ReplicationStrategy::Local) => {
                owns[0] = 1.0;
                return owns;
            }
            Some(s) => s,
            None => ReplicationStrategy::Simple {
                rf: crate::locator::ReplicationFactor {
                    all: 1,
                    transient: 0,
                },
            },
        };
        let tokens = self.ring.tokens();
        let n = tokens.len();
        for i in 0..n {
            let (start, end) = (tokens[(i + n - 1) % n], tokens[i]);
            let width = if n == 1 {
                1.0
            } else {
                end.wrapping_sub(start) as u64 as f64 / 18_446_744_073_709_551_616.0
            };
            for r in self.ring.natural_replicas(&s, end) {
                owns[r] += width;
            }
        }
        owns
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
            .filter(|e| owns_tokens(&e.status))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ep(i: u8, dc: &str, tokens: &[i64], status: &str) -> Endpoint {
        Endpoint {
            addr: IpAddr::from([127, 0, 0, i]),
            dc: dc.into(),
            rack: "rack1".into(),
            host_id: [i; 16],
            tokens: tokens.to_vec(),
            rpc_address: IpAddr::from([127, 0, 0, i]),
            native_port: 9042,
            schema_version: [0; 16],
            release_version: String::new(),
            status: status.into(),
            alive: true,
        }
    }

    fn simple(rf: usize) -> KeyspaceMetadata {
        KeyspaceMetadata {
            name: "ks".into(),
            replication: crate::schema::ReplicationParams {
                class: crate::locator::SIMPLE_STRATEGY.into(),
                options: BTreeMap::from([("replication_factor".into(), rf.to_string())]),
            },
            durable_writes: true,
            tables: BTreeMap::new(),
            types: BTreeMap::new(),
            is_system: false,
        }
    }

    #[test]
    fn joining_node_is_pending_not_natural() {
        let t = Topology::new(vec![
            ep(1, "dc1", &[0], "NORMAL"),
            ep(2, "dc1", &[100], "NORMAL"),
            ep(3, "dc1", &[50], "BOOT,50"),
        ]);
        let ks = simple(1);
        // (0, 100] belongs to node 2 now; (0, 50] goes to node 3 later.
        assert_eq!(t.replicas(&ks, 30), vec![1]);
        assert_eq!(t.pending_replicas(&ks, 30), vec![2]);
        assert!(t.pending_replicas(&ks, 70).is_empty());
        let moves = t.range_movements(&ks);
        assert_eq!(moves.len(), 3);
        let gained: Vec<&RangeMove> = moves
            .iter()
            .filter(|m| m.future.contains(&2) && !m.current.contains(&2))
            .collect();
        assert_eq!(gained.len(), 1);
        assert_eq!((gained[0].start, gained[0].end), (0, 50));
        assert_eq!(gained[0].current, vec![1]);
        // The joining node is not a peer yet.
        assert_eq!(t.peers().len(), 1);
    }

    #[test]
    fn leaving_node_hands_its_ranges_to_the_next_nodes() {
        let t = Topology::new(vec![
            ep(1, "dc1", &[0], "NORMAL"),
            ep(2, "dc1", &[100], "LEAVING,100"),
            ep(3, "dc1", &[200], "NORMAL"),
            ep(4, "dc1", &[300], "LEFT,300"),
        ]);
        // The node that left is gone entirely.
        assert_eq!(t.endpoints.len(), 3);
        let ks = simple(2);
        assert_eq!(t.replicas(&ks, 50), vec![1, 2]);
        assert_eq!(t.pending_replicas(&ks, 50), vec![0]);
        for m in t.range_movements(&ks) {
            if m.current.contains(&1) {
                assert!(!m.future.contains(&1));
                assert_eq!(m.future.len(), 2);
            }
        }
        let own = t.ownership(Some(&ks));
        assert!((own.iter().sum::<f64>() - 2.0).abs() < 1e-9, "{own:?}");
    }

    #[test]
    fn a_node_being_removed_hands_its_ranges_over_like_a_leaving_one() {
        let t = Topology::new(vec![
            ep(1, "dc1", &[0], "NORMAL"),
            ep(2, "dc1", &[100], "removing"),
            ep(3, "dc1", &[200], "NORMAL"),
        ]);
        let ks = simple(1);
        // Still the natural replica of (0, 100]; node 3 takes it over.
        assert_eq!(t.replicas(&ks, 50), vec![1]);
        assert_eq!(t.pending_replicas(&ks, 50), vec![2]);
        // Once removed, it is gone.
        let t = Topology::new(vec![
            ep(1, "dc1", &[0], "NORMAL"),
            ep(2, "dc1", &[100], "removed"),
            ep(3, "dc1", &[200], "NORMAL"),
        ]);
        assert_eq!(t.endpoints.len(), 2);
        assert_eq!(t.replicas(&ks, 50), vec![1]);
        assert!(t.future_ring.is_none());
    }

    #[test]
    fn down_and_shut_down_nodes_keep_their_tokens() {
        let t = Topology::new(vec![
            ep(1, "dc1", &[0], "NORMAL"),
            ep(2, "dc1", &[100], "shutdown,true"),
        ]);
        assert_eq!(t.replicas(&simple(1), 50), vec![1]);
        assert!(t.future_ring.is_none());
        assert_eq!(t.peers().len(), 1);
    }
}
