//! Node services: the coordinator (`StorageProxy`) and per-connection state.

pub mod admin_routes;
pub mod client_state;
pub mod migration_manager;
pub mod storage_proxy;
pub mod replication;
pub mod topology;
pub mod cluster;
