//! Node services: the coordinator (`StorageProxy`) and per-connection state.

pub mod admin_routes;
pub mod client_state;
pub mod cluster;
pub mod counters;
pub mod forwarding;
pub mod hints;
pub mod migration_manager;
pub mod paxos;
pub mod repair;
pub mod replication;
pub mod storage_proxy;
pub mod storage_service;
pub mod streaming;
pub mod topology;
