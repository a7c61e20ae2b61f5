//! Node services: the coordinator (`StorageProxy`) and per-connection state.

pub mod client_state;
pub mod migration_manager;
pub mod storage_proxy;
