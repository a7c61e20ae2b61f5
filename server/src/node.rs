//! Boots the node: builds every service once, in dependency order, on each
//! shard, serves clients until asked to stop, then stops them in reverse.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use std::time::Duration;

use engine::commitlog::{CommitLogConfig, ReplayReport, SyncMode};
use engine::{Database, EngineConfig};

use crate::admin::{register_builtin_routes, AdminLimits, AdminServer, Router};
use crate::config::{CommitlogSync, Config};
use crate::cql3::query_processor::QueryProcessor;
use crate::schema::{LocalNodeInfo, Schema};
use crate::service::migration_manager::MigrationManager;
use crate::service::storage_proxy::StorageProxy;
use crate::shard::{ShardConfig, ShardContext, ShardRuntime};
use crate::transport::events::EventBus;
use crate::transport::{TransportLimits, TransportServices};

/// Identity that must survive restarts: host id and tokens.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    pub host_id: [u8; 16],
    pub tokens: Vec<i64>,
}

impl NodeIdentity {
    /// Loads `dir/node_identity`, or creates it with a random host id and
    /// `num_tokens` random tokens.
    pub fn load_or_create(dir: &Path, num_tokens: u32) -> std::io::Result<NodeIdentity> {
        let path = dir.join("node_identity");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let mut host_id = None;
            let mut tokens = Vec::new();
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("host_id=") {
                    host_id = crate::schema::digest::parse_uuid(v.trim());
                } else if let Some(v) = line.strip_prefix("tokens=") {
                    tokens = v.split(',').filter_map(|t| t.trim().parse().ok()).collect();
                }
            }
            if let (Some(host_id), false) = (host_id, tokens.is_empty()) {
                return Ok(NodeIdentity { host_id, tokens });
            }
            log::warn!("{} is unreadable; generating a new identity", path.display());
        }
        let host_id = crate::schema::digest::random_uuid();
        let mut tokens: Vec<i64> = (0..num_tokens.max(1))
            .map(|_| {
                let u = crate::schema::digest::random_uuid();
                i64::from_be_bytes(u[..8].try_into().unwrap_or([0; 8]))
            })
            .filter(|t| *t != i64::MIN)
            .collect();
        tokens.sort_unstable();
        tokens.dedup();
        let text = format!(
            "# Tessera node identity: never edit while the node runs\nhost_id={}\ntokens={}\n",
            crate::schema::digest::uuid_to_string(&host_id),
            tokens.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(",")
        );
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(NodeIdentity { host_id, tokens })
    }
}

/// The datacenter and rack of this node according to its snitch.
pub fn snitch_location(config: &Config) -> (String, String) {
    // GossipingPropertyFileSnitch arrives with the cluster work; until then
    // every snitch places the node like SimpleSnitch does.
    let _ = &config.endpoint_snitch;
    ("datacenter1".to_string(), "rack1".to_string())
}

fn data_dir(config: &Config) -> PathBuf {
    config.data_file_directories.first().cloned().unwrap_or_else(|| config.workdir.join("data"))
}

/// Runs the node until SIGINT/SIGTERM.
pub fn run(config: Config) -> Result<(), String> {
    let data = data_dir(&config);
    std::fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    let identity = NodeIdentity::load_or_create(&data, config.num_tokens)
        .map_err(|e| format!("cannot read or write the node identity in {}: {e}", data.display()))?;
    let (dc, rack) = snitch_location(&config);
    let local = LocalNodeInfo {
        cluster_name: config.cluster_name.clone(),
        data_center: dc,
        rack,
        host_id: identity.host_id,
        broadcast_address: config.broadcast_address,
        listen_address: config.listen_address,
        rpc_address: config.rpc_address,
        rpc_port: config.native_transport_port as i32,
        listen_port: config.storage_port as i32,
        tokens: identity.tokens.clone(),
        release_version: LocalNodeInfo::RELEASE_VERSION.to_string(),
        cql_version: LocalNodeInfo::CQL_VERSION.to_string(),
        native_protocol_version: LocalNodeInfo::NATIVE_PROTOCOL_VERSION.to_string(),
        partitioner: LocalNodeInfo::PARTITIONER.to_string(),
        gossip_generation: (crate::service::client_state::now_micros() / 1_000_000) as i32,
        snitch: format!("org.apache.cassandra.locator.{}", config.endpoint_snitch.rsplit('.').next().unwrap_or("SimpleSnitch")),
    };
    let mut shard_config = ShardConfig::from_config(&config);
    if shard_config.count > 1 {
        log::warn!(
            "--smp {} requested: this build serves every token from one shard (shard-per-core routing is not in yet); starting 1 shard",
            shard_config.count
        );
        shard_config.count = 1;
    }
    let config = Arc::new(config);
    let schema_dir = data.join("system_schema");
    let runtime = ShardRuntime::start(shard_config, move |ctx: ShardContext| {
        let config = config.clone();
        let local = local.clone();
        let schema_dir = schema_dir.clone();
        async move { shard_main(ctx, config, local, schema_dir).await }
    })
    .map_err(|e| format!("cannot start shards: {e}"))?;
    let signals = crate::shard::signals::install(runtime.shards().stop_latch()).map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let results = runtime.join().map_err(|e| format!("shard failure: {e}"));
    signals.close();
    let results = results?;
    for r in results {
        r?;
    }
    log::info!("Tessera stopped");
    Ok(())
}

async fn shard_main(ctx: ShardContext, config: Arc<Config>, local: LocalNodeInfo, schema_dir: PathBuf) -> Result<(), String> {
    let shard = ctx.id();
    let mut commitlog = CommitLogConfig::new(&config.commitlog_directory, shard as u32);
    commitlog.segment_size = (config.commitlog_segment_size_in_mb as usize).max(1) << 20;
    commitlog.sync = match config.commitlog_sync {
        CommitlogSync::Periodic => SyncMode::Periodic { period: Duration::from_millis(config.commitlog_sync_period_in_ms.max(1)) },
        CommitlogSync::Batch => SyncMode::Batch { window: Duration::from_micros((config.commitlog_sync_batch_window_in_ms * 1000.0).max(0.0) as u64) },
    };
    let db = Rc::new(RefCell::new(Database::new(EngineConfig::with_commitlog(commitlog))));
    let events = Rc::new(EventBus::new());
    let schema = match Schema::load(&schema_dir, &local.data_center) {
        Ok(Some(s)) => {
            log::info!("loaded schema {} from {}", crate::schema::digest::uuid_to_string(&s.version), schema_dir.display());
            s
        }
        Ok(None) => Schema::new_with_system_keyspaces(&local.data_center),
        Err(e) => return Err(format!("cannot load the schema from {}: {e}", schema_dir.display())),
    };
    let migrations = Rc::new(MigrationManager::new(schema, db.clone(), local.clone(), events.clone(), Some(schema_dir)));
    // Tables exist now; replay what the commitlog holds before serving.
    let report = db.borrow_mut().start_commitlog().map_err(|e| format!("commitlog replay failed: {e}"))?;
    log_replay(shard, &report);
    let ticker = {
        let db = db.clone();
        let stop = ctx.stopped();
        glommio::spawn_local(async move {
            let tick = async {
                loop {
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                    if let Err(e) = db.borrow_mut().commitlog_tick() {
                        log::error!("commitlog sync failed: {e}");
                    }
                }
            };
            futures_lite::future::or(tick, stop).await;
        })
    };
    let proxy = Rc::new(StorageProxy::new(db.clone(), migrations.clone()));
    let qp = Rc::new(QueryProcessor::new(proxy.clone(), migrations.clone()));
    let max_conns = if config.native_transport_max_concurrent_connections <= 0 {
        usize::MAX
    } else {
        config.native_transport_max_concurrent_connections as usize
    };
    let services = Rc::new(TransportServices {
        qp,
        events,
        limits: TransportLimits {
            max_frame_bytes: (config.native_transport_max_frame_size_in_mb as usize).max(1) * 1024 * 1024,
            max_connections: max_conns,
            max_outstanding_responses: 1024,
        },
        extra_supported: Vec::new(),
        open_connections: Cell::new(0),
    });
    let admin = if shard == 0 {
        let api_addr = SocketAddr::new(config.api_address, config.api_port);
        let mut router = Router::new();
        register_builtin_routes(&mut router, &config, ctx.shards());
        let server = AdminServer::bind(api_addr, router, AdminLimits::default()).map_err(|e| format!("cannot bind the admin API on {api_addr}: {e}"))?;
        log::info!("admin API listening on {api_addr}");
        Some(server)
    } else {
        None
    };
    let addr = SocketAddr::new(config.rpc_address, config.native_transport_port);
    let listener = glommio::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen for CQL clients on {addr}: {e}"))?;
    log::info!("shard {shard}: Starting listening for CQL clients on {addr} (unencrypted)");
    let cql = crate::transport::serve(listener, services, ctx.stopped());
    match admin {
        Some(admin) => {
            futures_lite::future::zip(cql, admin.serve(ctx.stopped())).await;
        }
        None => cql.await,
    }
    ticker.await;
    if let Err(e) = db.borrow_mut().shutdown() {
        log::error!("shard {shard}: commitlog shutdown failed: {e}");
    }
    log::info!("shard {shard}: stopped");
    Ok(())
}

fn log_replay(shard: usize, r: &ReplayReport) {
    log::info!(
        "shard {shard}: commitlog replay: {} segments, {} entries replayed, {} truncated, {} for dropped tables",
        r.segments, r.entries_replayed, r.mutations_truncated, r.mutations_skipped
    );
    if r.torn_bytes_skipped > 0 {
        log::warn!(
            "shard {shard}: commitlog replay skipped a torn tail: {} bytes in segments {:?} (writes not yet acknowledged as durable)",
            r.torn_bytes_skipped, r.torn_segments
        );
    }
    for c in &r.corrupt_segments {
        log::error!("shard {shard}: commitlog corruption, not applied past the damage: {c:?}");
    }
}
