//! Gossip state: Cassandra's `ApplicationState`, `VersionedValue`,
//! `HeartBeatState` and `EndpointState`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

/// The keys of the state a node gossips about itself (Cassandra's
/// `ApplicationState`; the wire byte is Cassandra's ordinal where one exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ApplicationState {
    /// `STATUS`: `NORMAL,<token>`, `BOOT,…`, `LEAVING,…`, `LEFT,…`, `shutdown,true`.
    Status = 0,
    /// `LOAD`: bytes on disk.
    Load = 1,
    /// `SCHEMA`: the schema version UUID.
    SchemaVersion = 2,
    /// `DC`: datacenter (from the snitch).
    Dc = 3,
    /// `RACK`: rack (from the snitch).
    Rack = 4,
    /// `RELEASE_VERSION`: the Cassandra version the node reports.
    ReleaseVersion = 5,
    /// `REMOVAL_COORDINATOR`.
    RemovalCoordinator = 6,
    /// `INTERNAL_IP`: the address to prefer inside a DC.
    InternalIp = 7,
    /// `RPC_ADDRESS`: the CQL address told to drivers.
    RpcAddress = 8,
    /// `SEVERITY`.
    Severity = 10,
    /// `NET_VERSION`: messaging version.
    NetVersion = 11,
    /// `HOST_ID`: the node's UUID.
    HostId = 12,
    /// `TOKENS`: the node's tokens.
    Tokens = 13,
    /// `RPC_READY`: the CQL server accepts clients.
    RpcReady = 14,
    /// Tessera: `native_transport_port`.
    NativePort = 64,
    /// Tessera/Scylla: the shard-aware CQL port.
    NativeShardAwarePort = 65,
    /// Scylla's `SHARD_COUNT`.
    ShardCount = 66,
}

impl ApplicationState {
    /// Every state, in wire order.
    pub const ALL: [ApplicationState; 17] = [
        ApplicationState::Status,
        ApplicationState::Load,
        ApplicationState::SchemaVersion,
        ApplicationState::Dc,
        ApplicationState::Rack,
        ApplicationState::ReleaseVersion,
        ApplicationState::RemovalCoordinator,
        ApplicationState::InternalIp,
        ApplicationState::RpcAddress,
        ApplicationState::Severity,
        ApplicationState::NetVersion,
        ApplicationState::HostId,
        ApplicationState::Tokens,
        ApplicationState::RpcReady,
        ApplicationState::NativePort,
        ApplicationState::NativeShardAwarePort,
        ApplicationState::ShardCount,
    ];

    /// The state of a wire byte, if known (unknown states are skipped).
    pub fn from_u8(b: u8) -> Option<ApplicationState> {
        ApplicationState::ALL
            .iter()
            .copied()
            .find(|s| *s as u8 == b)
    }

    /// Cassandra's name (as `nodetool gossipinfo` prints it).
    pub fn name(self) -> &'static str {
        match self {
            ApplicationState::Status => "STATUS",
            ApplicationState::Load => "LOAD",
            ApplicationState::SchemaVersion => "SCHEMA",
            ApplicationState::Dc => "DC",
            ApplicationState::Rack => "RACK",
            ApplicationState::ReleaseVersion => "RELEASE_VERSION",
            ApplicationState::RemovalCoordinator => "REMOVAL_COORDINATOR",
            ApplicationState::InternalIp => "INTERNAL_IP",
            ApplicationState::RpcAddress => "RPC_ADDRESS",
            ApplicationState::Severity => "SEVERITY",
            ApplicationState::NetVersion => "NET_VERSION",
            ApplicationState::HostId => "HOST_ID",
            ApplicationState::Tokens => "TOKENS",
            ApplicationState::RpcReady => "RPC_READY",
            ApplicationState::NativePort => "NATIVE_PORT",
            ApplicationState::NativeShardAwarePort => "NATIVE_SHARD_AWARE_PORT",
            ApplicationState::ShardCount => "SHARD_COUNT",
        }
    }
}

impl fmt::Display for ApplicationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `STATUS` value of a node that shut down cleanly.
pub const STATUS_SHUTDOWN: &str = "shutdown,true";

/// Whether a `STATUS` value means the node must not be marked alive
/// (left, removed, hibernating or shut down).
pub fn is_dead_status(status: &str) -> bool {
    let head = status.split(',').next().unwrap_or("");
    matches!(
        head,
        "shutdown" | "LEFT" | "removing" | "removed" | "hibernate"
    )
}

/// A value with the version it was set at (Cassandra's `VersionedValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedValue {
    /// The value.
    pub value: String,
    /// The node-wide version at which it was set.
    pub version: i32,
}

/// Cassandra's `HeartBeatState`: the generation (start time of the node's
/// current process) and a version bumped every gossip round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartBeatState {
    /// Changes on every restart (seconds since the epoch at start).
    pub generation: i32,
    /// The heartbeat's version.
    pub version: i32,
}

/// Everything known about one endpoint (Cassandra's `EndpointState`).
#[derive(Debug, Clone)]
pub struct EndpointState {
    /// Heartbeat.
    pub heartbeat: HeartBeatState,
    /// Application states.
    pub states: BTreeMap<ApplicationState, VersionedValue>,
    /// Whether this node considers the endpoint alive.
    pub alive: bool,
    /// When this node last learnt something new about the endpoint.
    pub update_timestamp: Instant,
}

impl EndpointState {
    /// A fresh state with no application states.
    pub fn new(heartbeat: HeartBeatState) -> EndpointState {
        EndpointState {
            heartbeat,
            states: BTreeMap::new(),
            alive: false,
            update_timestamp: Instant::now(),
        }
    }

    /// The largest version in the heartbeat and the application states.
    pub fn max_version(&self) -> i32 {
        self.states
            .values()
            .map(|v| v.version)
            .fold(self.heartbeat.version, i32::max)
    }

    /// The state with only the application states newer than `version`
    /// (the heartbeat always comes along).
    pub fn newer_than(&self, version: i32) -> EndpointState {
        EndpointState {
            heartbeat: self.heartbeat,
            states: self
                .states
                .iter()
                .filter(|(_, v)| v.version > version)
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
            alive: self.alive,
            update_timestamp: self.update_timestamp,
        }
    }

    /// The `STATUS` value, if any.
    pub fn status(&self) -> Option<&str> {
        self.states
            .get(&ApplicationState::Status)
            .map(|v| v.value.as_str())
    }

    /// Whether the status forbids marking the endpoint alive.
    pub fn is_dead_state(&self) -> bool {
        self.status().is_some_and(is_dead_status)
    }

    /// A plain copy for callers outside gossip.
    pub fn snapshot(&self) -> EndpointSnapshot {
        EndpointSnapshot {
            generation: self.heartbeat.generation,
            heartbeat_version: self.heartbeat.version,
            states: self
                .states
                .iter()
                .map(|(k, v)| (*k, v.value.clone()))
                .collect(),
            alive: self.alive,
        }
    }
}

/// What [`crate::gms::Gossiper::endpoint_states`] reports about one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSnapshot {
    /// Heartbeat generation.
    pub generation: i32,
    /// Heartbeat version.
    pub heartbeat_version: i32,
    /// Application state values.
    pub states: BTreeMap<ApplicationState, String>,
    /// Whether the endpoint is considered alive.
    pub alive: bool,
}
