//! The node's admin API handlers (`docs/admin-api.md`): what
//! `tessera-nodetool` asks for — `info`, `status`, `ring`,
//! `describecluster`, `getendpoints`, `tablestats`, `flush`, `compact`,
//! `decommission`, `rebuild`, `removenode`, `repair`.
//!
//! Handlers run on shard 0 (where the admin server lives). Node facts
//! (host id, tokens, datacenter, rack, addresses) come from the
//! `MigrationManager`'s [`LocalNodeInfo`](crate::schema::LocalNodeInfo);
//! storage facts are gathered from every shard with `invoke_on_all`.
//! This node is alone in its ring until gossip arrives, so every token
//! range is its own.

use std::collections::HashMap;
use std::sync::Arc;

use crate::admin::{json, Request, Response, Router};
use crate::node::services;
use crate::schema::{KeyspaceMetadata, Schema, TableMetadata};
use crate::service::storage_proxy::Replication;
use crate::shard::ShardContext;
use engine::database::TableStats;

type TableId = [u8; 16];

/// One table's storage on one shard (or summed over shards).
#[derive(Debug, Default, Clone, Copy)]
struct TableLoad {
    memtable_bytes: u64,
    memtable_partitions: u64,
    memtable_operations: u64,
    sstables: u64,
    sstable_bytes: u64,
    sstable_partitions: u64,
}

impl TableLoad {
    fn add(&mut self, o: &TableLoad) {
        self.memtable_bytes += o.memtable_bytes;
        self.memtable_partitions += o.memtable_partitions;
        self.memtable_operations += o.memtable_operations;
        self.sstables += o.sstables;
        self.sstable_bytes += o.sstable_bytes;
        self.sstable_partitions += o.sstable_partitions;
    }
}

/// Storage of every table, summed over all shards.
pub(crate) struct NodeLoad {
    tables: HashMap<TableId, TableLoad>,
    /// Memtable bytes of every table the engine holds (also ones the
    /// schema no longer names).
    memtable_bytes: u64,
}

impl NodeLoad {
    pub(crate) fn total_bytes(&self) -> u64 {
        self.memtable_bytes + self.tables.values().map(|t| t.sstable_bytes).sum::<u64>()
    }
}

pub(crate) async fn node_load(ctx: &ShardContext) -> Result<NodeLoad, String> {
    let per_shard = ctx
        .shards()
        .invoke_on_all(|ctx| async move {
            let s = services(&ctx).map_err(|e| e.message.clone())?;
            let schema = s.migrations.schema();
            let db = s.db.borrow();
            let mut tables = HashMap::new();
            for ks in schema.keyspaces.values() {
                for t in ks.tables.values() {
                    if let Some(cf) = db.table(&t.id) {
                        let m = cf.memtable();
                        let mut l = TableLoad {
                            memtable_bytes: m.memory_usage() as u64,
                            memtable_partitions: m.partition_count() as u64,
                            memtable_operations: m.operation_count(),
                            ..TableLoad::default()
                        };
                        for sst in cf.sstables() {
                            l.sstables += 1;
                            l.sstable_bytes += sst.size();
                            l.sstable_partitions += sst.stats().partition_count;
                        }
                        tables.insert(t.id, l);
                    }
                }
            }
            Ok::<_, String>((tables, db.memtable_bytes() as u64))
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut load = NodeLoad {
        tables: HashMap::new(),
        memtable_bytes: 0,
    };
    for r in per_shard {
        let (tables, mem) = r?;
        load.memtable_bytes += mem;
        for (id, l) in tables {
            load.tables.entry(id).or_default().add(&l);
        }
    }
    Ok(load)
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The fraction of the ring this node holds replicas of for `ks`, in its
/// own datacenter (alone in the ring: all of it, or nothing when the
/// keyspace keeps no replica in this datacenter).
fn effective_ownership(ks: &KeyspaceMetadata, local_dc: &str) -> f64 {
    match Replication::of(ks) {
        Replication::Simple(rf) => (rf >= 1) as u8 as f64,
        Replication::PerDc(dcs) => (dcs.get(local_dc).copied().unwrap_or(0) >= 1) as u8 as f64,
        Replication::Local => 1.0,
    }
}

/// `owns` for `status`/`ring`: with a keyspace, its effective ownership;
/// without one, the ownership of the (single) replication setting all
/// non-system keyspaces share, or `None` (nodetool prints `?`) with
/// Cassandra's note when they differ.
fn ownership(
    schema: &Schema,
    keyspace: Option<&str>,
    local_dc: &str,
) -> Result<(Option<f64>, Option<&'static str>), Response> {
    if let Some(name) = keyspace {
        let ks = schema
            .keyspace(name)
            .ok_or_else(|| Response::error(400, format!("The keyspace {name}, does not exist")))?;
        return Ok((Some(effective_ownership(ks, local_dc)), None));
    }
    let user: Vec<&Arc<KeyspaceMetadata>> = schema
        .keyspaces
        .values()
        .filter(|k| !crate::schema::is_system_keyspace(&k.name))
        .collect();
    match user.split_first() {
        // Only system keyspaces: the raw token ownership.
        None => Ok((Some(1.0), Some("Note: Ownership information does not include topology; for complete information, specify a keyspace"))),
        Some((first, rest)) => {
            if rest.iter().all(|k| k.replication == first.replication) {
                Ok((Some(effective_ownership(first, local_dc)), None))
            } else {
                Ok((None, Some("Note: Non-system keyspaces don't have the same replication settings, effective ownership information is meaningless")))
            }
        }
    }
}

/// The tables named by `keyspace` and `cf` (all of the keyspace's tables
/// when `cf` is empty; every table when `keyspace` is `None`). Virtual
/// tables have no storage and are left out.
fn select_tables(
    schema: &Schema,
    keyspace: Option<&str>,
    cf: &[String],
) -> Result<Vec<Arc<TableMetadata>>, Response> {
    let Some(name) = keyspace else {
        return Ok(schema
            .keyspaces
            .values()
            .flat_map(|k| k.tables.values())
            .filter(|t| !t.is_virtual)
            .cloned()
            .collect());
    };
    let ks = schema
        .keyspace(name)
        .ok_or_else(|| Response::error(400, format!("Keyspace {name} does not exist")))?;
    if cf.is_empty() {
        return Ok(ks
            .tables
            .values()
            .filter(|t| !t.is_virtual)
            .cloned()
            .collect());
    }
    let mut out = Vec::new();
    for t in cf {
        let table = ks.tables.get(t).ok_or_else(|| {
            Response::error(400, format!("Unknown keyspace/cf pair ({name}.{t})"))
        })?;
        if !table.is_virtual && !out.iter().any(|o: &Arc<TableMetadata>| o.id == table.id) {
            out.push(table.clone());
        }
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Flush,
    Compact,
}

/// Flushes or major-compacts `tables` on every shard.
async fn run_on_all(ctx: &ShardContext, op: Op, tables: Vec<Arc<TableMetadata>>) -> Response {
    // A table's local secondary index tables go with it (Cassandra flushes
    // and compacts index tables with their base table).
    let ids: Arc<Vec<(TableId, String)>> = Arc::new(
        tables
            .iter()
            .flat_map(|t| {
                std::iter::once((t.id, t.qualified_name())).chain(
                    crate::index::local_indexes(t)
                        .into_iter()
                        .map(|i| (i.table_id, format!("{}.{}", t.keyspace, i.name))),
                )
            })
            .collect(),
    );
    let what = if op == Op::Flush {
        "flush"
    } else {
        "compaction"
    };
    let result = ctx
        .shards()
        .invoke_on_all(move |ctx| {
            let ids = ids.clone();
            async move {
                let s = services(&ctx).map_err(|e| e.message.clone())?;
                // (tables done, tables without a data directory)
                let mut done = 0usize;
                let mut in_memory = 0usize;
                for (id, name) in ids.iter() {
                    let r = match op {
                        Op::Flush => s.db.borrow_mut().flush(id).map(|_| ()),
                        // On a compaction thread, through the same path as
                        // background compactions; returns when done.
                        Op::Compact => s.compaction.major(&s.db, id).await,
                    };
                    match r {
                        Ok(()) => done += 1,
                        Err(engine::EngineError::NoDataDirectory(_)) => in_memory += 1,
                        // Dropped meanwhile, or not on this shard yet.
                        Err(engine::EngineError::NoSuchTable(_)) => {}
                        Err(e) => {
                            return Err(format!("shard {}: {what} of {name} failed: {e}", ctx.id()))
                        }
                    }
                    // Let the shard serve between tables.
                    glommio::yield_if_needed().await;
                }
                Ok::<_, String>((done, in_memory))
            }
        })
        .await;
    let per_shard = match result {
        Ok(v) => v,
        Err(e) => return Response::error(500, e.to_string()),
    };
    let mut done = 0;
    let mut in_memory = 0;
    for r in per_shard {
        match r {
            Ok((d, m)) => {
                done += d;
                in_memory += m;
            }
            Err(e) => return Response::error(500, e),
        }
    }
    if done == 0 && in_memory > 0 {
        return Response::error(
            501,
            format!("{what} is not available: this node keeps its tables in memory only (the storage engine has no SSTable data directory)"),
        );
    }
    Response::ok_empty()
}

/// Splits a composite key's text form on unescaped `:` (Cassandra's
/// `CompositeType.fromString`; `\:` is a literal colon).
fn split_composite(key: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = key.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&':') => {
                parts.last_mut().unwrap().push(':');
                chars.next();
            }
            ':' => parts.push(String::new()),
            c => parts.last_mut().unwrap().push(c),
        }
    }
    parts
}

/// The token of `key` (nodetool's text form) in `table`.
fn key_token(table: &TableMetadata, key: &str) -> Result<i64, String> {
    let pk = table.partition_key();
    let texts = if pk.len() == 1 {
        vec![key.to_string()]
    } else {
        split_composite(key)
    };
    if texts.len() != pk.len() {
        return Err(format!(
            "Invalid partition key '{key}' for table {}: expected {} components separated by ':' ({})",
            table.qualified_name(),
            pk.len(),
            pk.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(":")
        ));
    }
    let mut parts = Vec::with_capacity(pk.len());
    for (col, text) in pk.iter().zip(&texts) {
        let v = crate::cql3::values::parse_native(&col.ty, text)
            .map_err(|e| format!("Invalid partition key '{key}' for column {}: {e}", col.name))?;
        parts.push(proto::value::serialize_to_vec(&v));
    }
    let refs: Vec<&[u8]> = parts.iter().map(|p| &p[..]).collect();
    let bytes = crate::dht::murmur3::try_serialize_partition_key(&refs)?;
    Ok(crate::dht::murmur3::murmur3_token(&bytes))
}

fn bad(message: impl AsRef<str>) -> Response {
    Response::error(400, message)
}

fn opt_num(v: Option<f64>) -> String {
    match v {
        Some(f) => f.to_string(),
        None => "null".into(),
    }
}

/// The commitlog state of the node: `OK`, or what the shards' logs report
/// (`commit_failure_policy`).
async fn commitlog_state(ctx: &ShardContext) -> Result<String, String> {
    let per_shard = ctx
        .shards()
        .invoke_on_all(|ctx| async move {
            let s = services(&ctx).map_err(|e| e.message.clone())?;
            let db = s.db.borrow();
            let health = db.commitlog().map(|cl| cl.health());
            Ok::<_, String>(match health {
                None | Some(engine::commitlog::CommitLogHealth::Ok) => None,
                Some(engine::commitlog::CommitLogHealth::AllocationFailing(why)) => Some(format!(
                    "shard {}: writes refused until a segment can be created: {why}",
                    ctx.id()
                )),
                Some(engine::commitlog::CommitLogHealth::Poisoned(why)) => Some(format!(
                    "shard {}: writes refused until restart: {why}",
                    ctx.id()
                )),
            })
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    for r in per_shard {
        if let Some(p) = r? {
            problems.push(p);
        }
    }
    Ok(if problems.is_empty() {
        "OK".to_string()
    } else {
        problems.join("; ")
    })
}

/// Registers the node's routes on the admin router (shard 0).
pub fn register(router: &mut Router, ctx: &ShardContext) {
    // GET /storage_service/info
    let c = ctx.clone();
    router.route("GET", "/storage_service/info", move |_| {
        let ctx = c.clone();
        async move {
            let s = match services(&ctx) {
                Ok(s) => s,
                Err(e) => return Response::error(503, &e.message),
            };
            let local = s.migrations.local_info();
            let load = match node_load(&ctx).await {
                Ok(l) => l,
                Err(e) => return Response::error(500, e),
            };
            let generation = local.gossip_generation as i64;
            let gossip = crate::service::cluster::cluster(&ctx).is_some();
            let mode = crate::service::storage_service::storage_service(&ctx)
                .map(|ss| ss.mode())
                .unwrap_or_else(|| "NORMAL".into());
            // `commit_failure_policy`: transports stopped, or a shard's
            // commitlog refusing writes.
            let stopped = s.native_gate.stop_reason();
            let commitlog = match commitlog_state(&ctx).await {
                Ok(c) => c,
                Err(e) => return Response::error(500, e),
            };
            Response::ok(
                json::Object::new()
                    .str("id", &crate::schema::digest::uuid_to_string(&local.host_id))
                    .bool("gossip_active", gossip && stopped.is_none())
                    .bool("native_transport_active", stopped.is_none())
                    .str("commitlog_state", &commitlog)
                    .raw(
                        "transports_stopped_reason",
                        &stopped
                            .as_deref()
                            .map(json::string)
                            .unwrap_or_else(|| "null".into()),
                    )
                    .num("load_bytes", load.total_bytes())
                    .num("generation", generation)
                    .num("uptime_seconds", (now_seconds() - generation).max(0))
                    .raw("heap_memory_mb", "null")
                    .num("off_heap_memory_bytes", load.memtable_bytes)
                    .str("data_center", &local.data_center)
                    .str("rack", &local.rack)
                    .num("exceptions", 0)
                    .num("shards", ctx.count())
                    .num("num_tokens", local.tokens.len())
                    .str("mode", &mode)
                    .build(),
            )
        }
    });

    // GET /storage_service/status[?keyspace=ks] and /storage_service/ring:
    // every node the topology knows (joining ones too), grouped by DC.
    for ring in [false, true] {
        let c = ctx.clone();
        let path = if ring {
            "/storage_service/ring"
        } else {
            "/storage_service/status"
        };
        router.route("GET", path, move |req: Request| {
            let ctx = c.clone();
            async move {
                let s = match services(&ctx) {
                    Ok(s) => s,
                    Err(e) => return Response::error(503, &e.message),
                };
                let local = s.migrations.local_info();
                let schema = s.migrations.schema();
                let keyspace = req.query("keyspace").filter(|k| !k.is_empty());
                let (owns, note) = match ownership(&schema, keyspace, &local.data_center) {
                    Ok(o) => o,
                    Err(r) => return r,
                };
                let load = match node_load(&ctx).await {
                    Ok(l) => l.total_bytes(),
                    Err(e) => return Response::error(500, e),
                };
                let topo = s.proxy.topology();
                let single = topo.endpoints.len() == 1;
                // Per-node ownership in a cluster: of the keyspace named, or
                // of the replication every user keyspace shares; primary
                // token ownership when there are only system keyspaces.
                let per_node: Option<Vec<f64>> = if single {
                    None
                } else {
                    match keyspace {
                        Some(k) => schema.keyspace(k).map(|ks| topo.ownership(Some(ks))),
                        None => {
                            let mut user = schema.keyspaces.values().filter(|k| !k.is_system);
                            match user.next() {
                                None => Some(topo.ownership(None)),
                                Some(first) => user
                                    .all(|k| k.replication == first.replication)
                                    .then(|| topo.ownership(Some(first))),
                            }
                        }
                    }
                };
                let owns_of = |i: usize| match &per_node {
                    Some(v) => v.get(i).copied(),
                    None if single => owns,
                    None => None,
                };
                let gossip = crate::service::cluster::cluster(&ctx);
                let load_of = |i: usize, addr: std::net::IpAddr| -> String {
                    if i == 0 {
                        return load.to_string();
                    }
                    gossip
                        .as_ref()
                        .and_then(|c| c.gossiper.endpoint_state(addr))
                        .and_then(|st| st.states.get(&crate::gms::ApplicationState::Load).cloned())
                        .and_then(|v| v.parse::<f64>().ok())
                        .map(|v| format!("{v:.0}"))
                        .unwrap_or_else(|| "null".into())
                };
                let state = |status: &str| match crate::service::topology::status_head(status) {
                    "BOOT" => ("J", "Joining"),
                    "LEAVING" => ("L", "Leaving"),
                    "MOVING" => ("M", "Moving"),
                    _ => ("N", "Normal"),
                };
                let mut dcs: Vec<String> = topo.endpoints.iter().map(|e| e.dc.clone()).collect();
                dcs.sort();
                dcs.dedup();
                let groups: Vec<String> = dcs
                    .iter()
                    .map(|dc| {
                        let members = topo
                            .endpoints
                            .iter()
                            .enumerate()
                            .filter(|(_, e)| &e.dc == dc);
                        if ring {
                            let mut tokens: Vec<(i64, usize)> = members
                                .flat_map(|(i, e)| e.tokens.iter().map(move |t| (*t, i)))
                                .collect();
                            tokens.sort_unstable();
                            let entries = tokens.iter().map(|&(t, i)| {
                                let e = &topo.endpoints[i];
                                json::Object::new()
                                    .str("address", &e.addr.to_string())
                                    .str("rack", &e.rack)
                                    .str("status", if e.alive { "Up" } else { "Down" })
                                    .str("state", state(&e.status).1)
                                    .raw("load_bytes", &load_of(i, e.addr))
                                    .raw("owns", &opt_num(owns_of(i)))
                                    .str("token", &t.to_string())
                                    .build()
                            });
                            json::Object::new()
                                .str("name", dc)
                                .raw("tokens", &json::array(entries))
                                .build()
                        } else {
                            let nodes = members.map(|(i, e)| {
                                json::Object::new()
                                    .str("status", if e.alive { "U" } else { "D" })
                                    .str("state", state(&e.status).0)
                                    .str("address", &e.addr.to_string())
                                    .raw("load_bytes", &load_of(i, e.addr))
                                    .num("tokens", e.tokens.len())
                                    .raw("owns", &opt_num(owns_of(i)))
                                    .str(
                                        "host_id",
                                        &crate::schema::digest::uuid_to_string(&e.host_id),
                                    )
                                    .str("rack", &e.rack)
                                    .build()
                            });
                            json::Object::new()
                                .str("name", dc)
                                .raw("nodes", &json::array(nodes))
                                .build()
                        }
                    })
                    .collect();
                let mut body = json::Object::new().raw("datacenters", &json::array(groups));
                let note = if single || per_node.is_some() {
                    note
                } else {
                    Some("Note: Non-system keyspaces don't have the same replication settings, effective ownership information is meaningless")
                };
                if let Some(n) = note {
                    body = body.str("note", n);
                }
                Response::ok(body.build())
            }
        });
    }

    // GET /storage_service/describe_cluster
    let c = ctx.clone();
    router.route("GET", "/storage_service/describe_cluster", move |_| {
        let ctx = c.clone();
        async move {
            let s = match services(&ctx) {
                Ok(s) => s,
                Err(e) => return Response::error(503, &e.message),
            };
            let local = s.migrations.local_info();
            let version = s.migrations.schema().version_string();
            let versions = json::Object::new()
                .raw(
                    &version,
                    &json::array([json::string(&local.broadcast_address.to_string())]),
                )
                .build();
            Response::ok(
                json::Object::new()
                    .str("name", &local.cluster_name)
                    .str("snitch", &local.snitch)
                    .bool("dynamic_endpoint_snitch", false)
                    .str("partitioner", &local.partitioner)
                    .raw("schema_versions", &versions)
                    .build(),
            )
        }
    });

    // GET /storage_service/natural_endpoints/{keyspace}?cf=t&key=k
    let c = ctx.clone();
    router.route(
        "GET",
        "/storage_service/natural_endpoints/{keyspace}",
        move |req: Request| {
            let ctx = c.clone();
            async move {
                let s = match services(&ctx) {
                    Ok(s) => s,
                    Err(e) => return Response::error(503, &e.message),
                };
                let ks_name = req.param("keyspace").unwrap_or_default().to_string();
                let (Some(cf), Some(key)) = (req.query("cf"), req.query("key")) else {
                    return bad("natural_endpoints needs the cf and key query parameters");
                };
                let schema = s.migrations.schema();
                let Some(ks) = schema.keyspace(&ks_name) else {
                    return bad(format!("Unknown keyspace '{ks_name}'"));
                };
                let Some(table) = ks.tables.get(cf) else {
                    return bad(format!("Unknown table '{cf}' in keyspace '{ks_name}'"));
                };
                let token = match key_token(table, key) {
                    Ok(t) => t,
                    Err(e) => return bad(e),
                };
                let local = s.migrations.local_info();
                log::debug!("getendpoints {ks_name}.{cf} key {key:?}: token {token}");
                let topo = s.proxy.topology();
                let replicas: Vec<String> = if topo.is_single_node() {
                    // Alone in the ring: this node holds every token range, so
                    // it is the replica whenever the keyspace keeps one in its DC.
                    if effective_ownership(ks, &local.data_center) > 0.0 {
                        vec![json::string(&local.broadcast_address.to_string())]
                    } else {
                        vec![]
                    }
                } else {
                    topo.replicas(ks, token)
                        .into_iter()
                        .map(|i| json::string(&topo.endpoints[i].addr.to_string()))
                        .collect()
                };
                Response::ok(json::array(replicas))
            }
        },
    );

    // GET /column_family/stats
    let c = ctx.clone();
    router.route("GET", "/column_family/stats", move |_| {
        let ctx = c.clone();
        async move { column_family_stats(&ctx).await }
    });

    // POST flush / compact, whole node or one keyspace.
    for op in [Op::Flush, Op::Compact] {
        let (all, per_ks) = match op {
            Op::Flush => (
                "/storage_service/flush",
                "/storage_service/keyspace_flush/{keyspace}",
            ),
            Op::Compact => (
                "/storage_service/compact",
                "/storage_service/keyspace_compaction/{keyspace}",
            ),
        };
        let c = ctx.clone();
        router.route("POST", all, move |_| {
            let ctx = c.clone();
            async move {
                let s = match services(&ctx) {
                    Ok(s) => s,
                    Err(e) => return Response::error(503, &e.message),
                };
                match select_tables(&s.migrations.schema(), None, &[]) {
                    Ok(t) => run_on_all(&ctx, op, t).await,
                    Err(r) => r,
                }
            }
        });
        let c = ctx.clone();
        router.route("POST", per_ks, move |req: Request| {
            let ctx = c.clone();
            async move {
                let s = match services(&ctx) {
                    Ok(s) => s,
                    Err(e) => return Response::error(503, &e.message),
                };
                let ks = req.param("keyspace").unwrap_or_default().to_string();
                let cf: Vec<String> = req
                    .query_list("cf")
                    .into_iter()
                    .filter(|t| !t.is_empty())
                    .collect();
                match select_tables(&s.migrations.schema(), Some(&ks), &cf) {
                    Ok(t) => run_on_all(&ctx, op, t).await,
                    Err(r) => r,
                }
            }
        });
    }

    // POST /storage_service/decommission: blocks until the node has left
    // the ring, then stops the node process.
    let c = ctx.clone();
    router.route("POST", "/storage_service/decommission", move |_| {
        let ctx = c.clone();
        async move {
            let Some(cl) = crate::service::cluster::cluster(&ctx) else {
                return Response::error(400, "Unsupported operation: no other normal nodes in the ring; decommission would be pointless");
            };
            match crate::service::storage_service::decommission(&cl).await {
                Ok(()) => {
                    let shards = ctx.shards().clone();
                    glommio::spawn_local(async move {
                        crate::shard::sleep(std::time::Duration::from_millis(300)).await;
                        log::info!("decommissioned: stopping the node");
                        shards.stop();
                    })
                    .detach();
                    Response::ok(json::Object::new().str("mode", "DECOMMISSIONED").build())
                }
                Err(e) => Response::error(400, format!("Unsupported operation: {e}")),
            }
        }
    });
    register_operations_routes(router, ctx);
}

/// Rebuild, removenode and repair: each blocks until done.
fn register_operations_routes(router: &mut Router, ctx: &ShardContext) {
    use crate::service::cluster::cluster;
    use crate::service::storage_service::StreamSummary;
    fn streamed(s: StreamSummary, seconds: f64) -> Response {
        Response::ok(
            json::Object::new()
                .num("ranges", s.ranges)
                .num("partitions", s.partitions)
                .raw("seconds", &format!("{seconds:.3}"))
                .build(),
        )
    }
    const NO_CLUSTER: &str = "this node is not part of a cluster";

    // POST /storage_service/rebuild[?source_dc=DC][&keyspace=KS]
    let c = ctx.clone();
    router.route("POST", "/storage_service/rebuild", move |req: Request| {
        let ctx = c.clone();
        async move {
            let Some(cl) = cluster(&ctx) else {
                return Response::error(400, NO_CLUSTER);
            };
            let ks = req.query("keyspace").filter(|k| !k.is_empty());
            let dc = req.query("source_dc").filter(|k| !k.is_empty());
            let t0 = std::time::Instant::now();
            match crate::service::storage_service::rebuild(&cl, ks, dc).await {
                Ok(s) => streamed(s, t0.elapsed().as_secs_f64()),
                Err(e) => Response::error(400, e),
            }
        }
    });

    // POST /storage_service/remove_node?host_id=UUID
    let c = ctx.clone();
    router.route(
        "POST",
        "/storage_service/remove_node",
        move |req: Request| {
            let ctx = c.clone();
            async move {
                let Some(cl) = cluster(&ctx) else {
                    return Response::error(400, NO_CLUSTER);
                };
                let Some(id) = req.query("host_id").filter(|k| !k.is_empty()) else {
                    return bad("missing host_id");
                };
                let t0 = std::time::Instant::now();
                match crate::service::storage_service::removenode(&cl, id).await {
                    Ok(s) => streamed(s, t0.elapsed().as_secs_f64()),
                    Err(e) => Response::error(400, e),
                }
            }
        },
    );

    // GET /storage_service/removal_status
    let c = ctx.clone();
    router.route("GET", "/storage_service/removal_status", move |_| {
        let ctx = c.clone();
        async move {
            let s = crate::service::storage_service::removal_status(&ctx);
            Response::ok(json::Object::new().str("status", &s).build())
        }
    });

    // POST /storage_service/repair[?keyspace=KS[&cf=T1,T2]][&primary_range=true]
    let c = ctx.clone();
    router.route("POST", "/storage_service/repair", move |req: Request| {
        let ctx = c.clone();
        async move {
            let Some(cl) = cluster(&ctx) else {
                return Response::error(400, NO_CLUSTER);
            };
            let opts = crate::service::repair::RepairOptions {
                keyspace: req
                    .query("keyspace")
                    .filter(|k| !k.is_empty())
                    .map(String::from),
                tables: req.query_list("cf"),
                primary_range: req.query("primary_range") == Some("true"),
            };
            let t0 = std::time::Instant::now();
            match crate::service::repair::repair(&cl, opts).await {
                Ok(s) => Response::ok(crate::service::repair::summary_json(
                    &s,
                    t0.elapsed().as_secs_f64(),
                )),
                Err(e) => Response::error(500, format!("Repair failed: {e}")),
            }
        }
    });

    // POST /storage_service/force_terminate_repair; GET /storage_service/repair_status
    let c = ctx.clone();
    router.route(
        "POST",
        "/storage_service/force_terminate_repair",
        move |_| {
            let ctx = c.clone();
            async move {
                let running = crate::service::repair::repair_service(&ctx).terminate();
                Response::ok(json::Object::new().bool("terminated", running).build())
            }
        },
    );
    let c = ctx.clone();
    router.route("GET", "/storage_service/repair_status", move |_| {
        let ctx = c.clone();
        async move {
            let p = crate::service::repair::repair_service(&ctx).progress();
            let o = json::Object::new().bool("running", p.is_some());
            Response::ok(match p {
                Some(p) => o.str("progress", &p).build(),
                None => o.build(),
            })
        }
    });
}

/// Every table's statistics, summed over the shards.
async fn table_stats(ctx: &ShardContext) -> Result<HashMap<TableId, TableStats>, String> {
    let per_shard = ctx
        .shards()
        .invoke_on_all(|ctx| async move {
            let s = services(&ctx).map_err(|e| e.message.clone())?;
            let schema = s.migrations.schema();
            let db = s.db.borrow();
            let mut tables = HashMap::new();
            for ks in schema.keyspaces.values() {
                for t in ks.tables.values() {
                    if let Some(cf) = db.table(&t.id) {
                        tables.insert(t.id, cf.stats());
                    }
                }
            }
            Ok::<_, String>(tables)
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut sum: HashMap<TableId, TableStats> = HashMap::new();
    for r in per_shard {
        for (id, st) in r? {
            sum.entry(id).or_default().add(&st);
        }
    }
    Ok(sum)
}

/// Mean latency in milliseconds, `null` without operations.
fn mean_ms(total_micros: u64, count: u64) -> String {
    if count == 0 {
        "null".into()
    } else {
        format!("{:.3}", total_micros as f64 / count as f64 / 1000.0)
    }
}

/// `GET /column_family/stats`: what `nodetool tablestats` prints.
async fn column_family_stats(ctx: &ShardContext) -> Response {
    let s = match services(ctx) {
        Ok(s) => s,
        Err(e) => return Response::error(503, &e.message),
    };
    let schema = s.migrations.schema();
    let stats = match table_stats(ctx).await {
        Ok(l) => l,
        Err(e) => return Response::error(500, e),
    };
    let mut keyspaces = Vec::new();
    for ks in schema.keyspaces.values() {
        let mut tables = Vec::new();
        let mut total = TableStats::default();
        for t in ks.tables.values().filter(|t| !t.is_virtual) {
            let l = stats.get(&t.id).copied().unwrap_or_default();
            total.add(&l);
            tables.push(
                json::Object::new()
                    .str("name", &t.name)
                    .num("sstable_count", l.sstable_count)
                    .num("space_used_live", l.space_used_bytes)
                    .num("space_used_total", l.space_used_bytes)
                    .num(
                        "number_of_partitions_estimate",
                        l.memtable_partitions + l.sstable_partitions,
                    )
                    .num("memtable_cell_count", l.memtable_cells)
                    .num("memtable_data_size", l.memtable_bytes)
                    .num("memtable_switch_count", l.memtable_switch_count)
                    .num("local_read_count", l.read_count)
                    .raw(
                        "local_read_latency_ms",
                        &mean_ms(l.read_latency_micros, l.read_count),
                    )
                    .num("local_scan_count", l.scan_count)
                    .raw(
                        "local_scan_latency_ms",
                        &mean_ms(l.scan_latency_micros, l.scan_count),
                    )
                    .num("local_write_count", l.write_count)
                    .raw(
                        "local_write_latency_ms",
                        &mean_ms(l.write_latency_micros, l.write_count),
                    )
                    .num("pending_flushes", l.pending_flushes)
                    .num("compactions_pending", l.compactions_pending)
                    .num("compactions_running", l.compactions_running)
                    .num("compactions_completed", l.compactions_completed)
                    .num(
                        "bloom_filter_false_positives",
                        l.bloom_filter_false_positives,
                    )
                    .raw("dropped_mutations", "null")
                    .build(),
            );
        }
        if tables.is_empty() {
            continue;
        }
        keyspaces.push(
            json::Object::new()
                .str("name", &ks.name)
                .num("read_count", total.read_count)
                .raw(
                    "read_latency_ms",
                    &mean_ms(total.read_latency_micros, total.read_count),
                )
                .num("write_count", total.write_count)
                .raw(
                    "write_latency_ms",
                    &mean_ms(total.write_latency_micros, total.write_count),
                )
                .num("pending_flushes", total.pending_flushes)
                .raw("tables", &json::array(tables))
                .build(),
        );
    }
    Response::ok(
        json::Object::new()
            .raw("keyspaces", &json::array(keyspaces))
            .build(),
    )
}

/// Registers the compaction manager's routes (`nodetool compactionstats`):
/// `GET /compaction_manager/compactions` (running compactions, Scylla's
/// shape) and `GET /compaction_manager/metrics/pending_tasks_by_table`.
pub fn register_compaction_routes(router: &mut Router, ctx: &ShardContext) {
    let c = ctx.clone();
    router.route("GET", "/compaction_manager/compactions", move |_| {
        let ctx = c.clone();
        async move {
            let s = match services(&ctx) {
                Ok(s) => s,
                Err(e) => return Response::error(503, &e.message),
            };
            let schema = s.migrations.schema();
            let per_shard = ctx
                .shards()
                .invoke_on_all(|ctx| async move {
                    services(&ctx)
                        .map(|s| (ctx.id(), s.db.borrow().running_compactions()))
                        .map_err(|e| e.message.clone())
                })
                .await;
            let per_shard = match per_shard {
                Ok(v) => v,
                Err(e) => return Response::error(500, e.to_string()),
            };
            let mut items = Vec::new();
            for r in per_shard {
                let (shard, running) = match r {
                    Ok(v) => v,
                    Err(e) => return Response::error(500, e),
                };
                for c in running {
                    let (ks, cf) = table_name(&schema, &c.table);
                    items.push(
                        json::Object::new()
                            .str("id", &format!("{shard}-{}", c.id))
                            .str("ks", &ks)
                            .str("cf", &cf)
                            .str("task_type", c.kind.name())
                            .num("completed", c.completed_bytes)
                            .num("total", c.total_bytes)
                            .str("unit", "bytes")
                            .num("shard", shard)
                            .num("sstables", c.inputs)
                            .num("elapsed_ms", c.elapsed.as_millis())
                            .build(),
                    );
                }
            }
            Response::ok(json::array(items))
        }
    });
    let c = ctx.clone();
    router.route(
        "GET",
        "/compaction_manager/metrics/pending_tasks_by_table",
        move |_| {
            let ctx = c.clone();
            async move {
                let s = match services(&ctx) {
                    Ok(s) => s,
                    Err(e) => return Response::error(503, &e.message),
                };
                let schema = s.migrations.schema();
                let stats = match table_stats(&ctx).await {
                    Ok(l) => l,
                    Err(e) => return Response::error(500, e),
                };
                let mut rows: Vec<(String, String, u64, u64)> = stats
                    .iter()
                    .filter(|(_, st)| st.compactions_pending > 0 || st.compactions_completed > 0)
                    .map(|(id, st)| {
                        let (ks, cf) = table_name(&schema, id);
                        (ks, cf, st.compactions_pending, st.compactions_completed)
                    })
                    .collect();
                rows.sort();
                let items = rows.iter().map(|(ks, cf, pending, completed)| {
                    json::Object::new()
                        .str("ks", ks)
                        .str("cf", cf)
                        .num("task", pending)
                        .num("completed", completed)
                        .build()
                });
                Response::ok(json::array(items))
            }
        },
    );
}

/// `(keyspace, table)` names of a table id (`?` when dropped meanwhile).
fn table_name(schema: &Schema, id: &TableId) -> (String, String) {
    for ks in schema.keyspaces.values() {
        for t in ks.tables.values() {
            if t.id == *id {
                return (ks.name.clone(), t.name.clone());
            }
        }
    }
    ("?".into(), "?".into())
}

#[cfg(test)]
mod tests {
    use super::split_composite;

    #[test]
    fn composite_keys_split_on_unescaped_colons() {
        assert_eq!(split_composite("a:b"), vec!["a", "b"]);
        assert_eq!(split_composite("a\\:b:c"), vec!["a:b", "c"]);
        assert_eq!(split_composite("x"), vec!["x"]);
    }
}
