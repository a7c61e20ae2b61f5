//! Joining and leaving the ring (Cassandra's `StorageService` operations,
//! on shard 0): bootstrap, decommission, the node's operation mode, and
//! the driver events that follow gossip `STATUS` changes.
//!
//! **Bootstrap.** A node that is not a seed, has `auto_bootstrap: true`
//! and has never completed a bootstrap announces `STATUS = BOOT,<token>`
//! (its tokens in `TOKENS`), so peers and drivers do not read from it. It
//! waits for a peer, for schema agreement and for `ring_delay_ms`, then for
//! every keyspace computes the ranges it gains ([`Topology::range_movements`])
//! and fetches each from a live current replica (preferring the one that
//! loses the range, then its own datacenter) with [`streaming`]. Writes
//! meanwhile reach it as a pending replica. Then it writes `COMPLETED` to
//! `bootstrap_state` (beside `node_identity`) and announces
//! `NORMAL,<token>`; peers send drivers `NEW_NODE`. A restart never
//! bootstraps again; a crash during bootstrap does (`IN_PROGRESS`).
//!
//! **Decommission.** Refused when it would leave a keyspace with fewer
//! nodes than its replication factor (Cassandra's message). Otherwise
//! `LEAVING`, `ring_delay_ms` for peers to send writes to the heirs,
//! stream every range to the nodes that become its replicas, `LEFT`, wait
//! for gossip to carry it, record `DECOMMISSIONED` and stop the node
//! process (peers drop it from `system.peers`; drivers get `REMOVED_NODE`).
//! A decommissioned data directory refuses to start again.
//!
//! **Rebuild** (`nodetool rebuild [-ks KS] [SOURCE_DC]`, how a new
//! datacenter gets its data). For every range this node replicates per
//! each keyspace's strategy, it fetches the data from a live replica (in
//! `SOURCE_DC` when named, else the closest one) with [`streaming`],
//! through its normal write path. The whole plan is made first, so an
//! unknown datacenter or a range without a live source fails before any
//! data moves.
//!
//! **Removenode** (`nodetool removenode <host-id>`, for a dead node). The
//! dead node's gossip `STATUS` becomes `removing,<host id>` (so it is a
//! leaving node: writes also reach the nodes that take over its ranges),
//! every range it replicated is streamed, page by page through this node,
//! from a surviving replica to each node that becomes a replica, then its
//! `STATUS` becomes `removed,<host id>,<expiry>`: every node drops it from
//! the ring, `system.peers` and `nodetool status`, drivers get
//! `REMOVED_NODE`, and the hints stored for it are deleted. The states are
//! set on the dead node's behalf with a new gossip generation
//! ([`crate::gms::Gossiper::advertise_on_behalf`]), as Cassandra's
//! `advertiseRemoving`/`advertiseTokenRemoved` do.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::cluster::{cluster, ClusterServices};
use super::streaming;
use super::topology::{has_left, status_head, Topology};
use crate::gms::ApplicationState;
use crate::node::services;
use crate::schema::{KeyspaceMetadata, LocalNodeInfo};
use crate::shard::ShardContext;

const STORAGE_SERVICE: u64 = u64::MAX - 2;
const STATE_FILE: &str = "bootstrap_state";

/// Shard 0's join/leave state.
pub struct StorageService {
    ring_delay: Duration,
    state_file: PathBuf,
    will_bootstrap: bool,
    /// Cassandra's operation mode (`nodetool netstats`/`info`): STARTING,
    /// JOINING, NORMAL, LEAVING, DECOMMISSIONED.
    mode: RefCell<String>,
    /// Last gossip `STATUS` head seen per peer (for driver events).
    statuses: RefCell<HashMap<IpAddr, String>>,
    /// A decommission is running.
    leaving: Cell<bool>,
    /// A rebuild is running.
    rebuilding: Cell<bool>,
    /// The removal in progress (`nodetool removenode status`).
    removal: RefCell<Option<String>>,
}

/// The storage service of shard 0, once the cluster services started.
pub fn storage_service(ctx: &ShardContext) -> Option<Rc<StorageService>> {
    ctx.service(STORAGE_SERVICE)
        .and_then(|s| s.downcast::<StorageService>().ok())
}

impl StorageService {
    /// The operation mode, for `nodetool info`.
    pub fn mode(&self) -> String {
        self.mode.borrow().clone()
    }

    fn set_mode(&self, m: impl Into<String>) {
        let m = m.into();
        log::info!("operation mode: {m}");
        *self.mode.borrow_mut() = m;
    }

    fn write_state(&self, state: &str) -> Result<(), String> {
        let tmp = self.state_file.with_extension("tmp");
        std::fs::write(&tmp, format!("{state}\n"))
            .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|_| std::fs::rename(&tmp, &self.state_file))
            .map_err(|e| format!("cannot write {}: {e}", self.state_file.display()))
    }
}

fn data_dir(config: &crate::config::Config) -> PathBuf {
    config
        .data_file_directories
        .first()
        .cloned()
        .unwrap_or_else(|| config.workdir.join("data"))
}

fn first_token(local: &LocalNodeInfo) -> String {
    local
        .tokens
        .first()
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Decides whether this start bootstraps, registers the storage service
/// and returns the first gossip `STATUS` (`BOOT,<t>` or `NORMAL,<t>`).
/// Refuses to start a decommissioned node.
pub fn initial_status(
    ctx: &ShardContext,
    config: &crate::config::Config,
    local: &LocalNodeInfo,
) -> Result<String, String> {
    let state_file = data_dir(config).join(STATE_FILE);
    let state = std::fs::read_to_string(&state_file)
        .map(|s| s.trim().to_string())
        .ok();
    if state.as_deref() == Some("DECOMMISSIONED") {
        return Err(
            "This node was decommissioned and will not rejoin the ring: remove its data, \
             commitlog and hints directories to bootstrap it again as a new node"
                .into(),
        );
    }
    let seeds = &config.seed_provider.seeds;
    let is_seed =
        seeds.contains(&config.listen_address) || seeds.contains(&local.broadcast_address);
    let has_user_data = services(ctx)
        .map(|s| {
            s.migrations
                .schema()
                .keyspaces
                .values()
                .any(|k| !k.is_system)
        })
        .unwrap_or(false);
    // A data directory from before bootstrap_state existed counts as
    // bootstrapped when it holds a user keyspace.
    let never_joined = match state.as_deref() {
        None => !has_user_data,
        Some("IN_PROGRESS") => true,
        _ => false,
    };
    let will_bootstrap = config.auto_bootstrap && !is_seed && never_joined;
    let ss = Rc::new(StorageService {
        ring_delay: Duration::from_millis(config.ring_delay_ms),
        state_file,
        will_bootstrap,
        mode: RefCell::new(if will_bootstrap { "JOINING" } else { "NORMAL" }.into()),
        statuses: RefCell::new(HashMap::new()),
        leaving: Cell::new(false),
        rebuilding: Cell::new(false),
        removal: RefCell::new(None),
    });
    if will_bootstrap {
        ss.write_state("IN_PROGRESS")?;
        log::info!(
            "this node bootstraps: it streams the data of its {} tokens before serving them",
            local.tokens.len()
        );
    } else if state.as_deref() != Some("COMPLETED") {
        ss.write_state("COMPLETED")?;
    }
    ctx.insert_service(STORAGE_SERVICE, ss.clone());
    if let Ok(s) = services(ctx) {
        if will_bootstrap {
            s.native_gate.hold_while_joining();
        } else {
            s.native_gate.open();
        }
    }
    let head = if will_bootstrap { "BOOT" } else { "NORMAL" };
    Ok(format!("{head},{}", first_token(local)))
}

/// Starts the background work of shard 0: the bootstrap when this start
/// needs one, and gossiping this node's load.
pub fn start(c: &Rc<ClusterServices>) {
    let Some(ss) = storage_service(&c.ctx) else {
        return;
    };
    if ss.will_bootstrap {
        let (c2, ss2) = (c.clone(), ss.clone());
        let stop = c.ctx.stopped();
        glommio::spawn_local(async move {
            futures_lite::future::or(
                async move {
                    bootstrap_until_done(&c2, &ss2).await;
                },
                stop,
            )
            .await;
        })
        .detach();
    }
    let c2 = c.clone();
    let stop = c.ctx.stopped();
    glommio::spawn_local(futures_lite::future::or(
        async move {
            loop {
                if let Ok(load) = super::admin_routes::node_load(&c2.ctx).await {
                    c2.gossiper.add_local_state(
                        ApplicationState::Load,
                        format!("{:.1}", load.total_bytes() as f64),
                    );
                }
                crate::shard::sleep(Duration::from_secs(10)).await;
            }
        },
        stop,
    ))
    .detach();
}

/// This node's gossip `STATUS` (what the topology shows for it).
pub fn local_status(c: &ClusterServices) -> String {
    c.gossiper
        .endpoint_state(c.gossiper.local())
        .and_then(|s| s.states.get(&ApplicationState::Status).cloned())
        .unwrap_or_else(|| "NORMAL".into())
}

/// Whether gossip shows `ip` as joining or gone (no `NEW_NODE` for it yet).
pub fn is_joining(ctx: &ShardContext, ip: IpAddr) -> bool {
    let Some(c) = cluster(ctx) else {
        return false;
    };
    let status = c
        .gossiper
        .endpoint_state(ip)
        .and_then(|s| s.states.get(&ApplicationState::Status).cloned())
        .unwrap_or_default();
    matches!(status_head(&status), "BOOT" | "removing") || has_left(&status)
}

/// The driver event a `STATUS` change of a peer means: `NEW_NODE` when a
/// joining node becomes normal, `REMOVED_NODE` when a known node left.
/// Called synchronously, in gossip order.
pub fn status_event(
    ctx: &ShardContext,
    ip: IpAddr,
    state: ApplicationState,
    value: &str,
) -> Option<String> {
    if state != ApplicationState::Status {
        return None;
    }
    let ss = storage_service(ctx)?;
    if cluster(ctx).is_some_and(|c| c.gossiper.local() == ip) {
        return None;
    }
    let head = status_head(value).to_string();
    if has_left(value) {
        drop_hints_of(ctx, ip);
    }
    let prev = ss.statuses.borrow_mut().insert(ip, head.clone());
    match (prev.as_deref(), head.as_str()) {
        (Some("BOOT"), "NORMAL") => Some("NEW_NODE".into()),
        (Some(p), "LEFT" | "removed") if !matches!(p, "LEFT" | "removed") => {
            Some("REMOVED_NODE".into())
        }
        _ => None,
    }
}

fn topology(c: &ClusterServices) -> Result<Rc<Topo>, String> {
    let s = services(&c.ctx).map_err(|e| e.message)?;
    Ok(Rc::new(Topo {
        topo: s.proxy.topology(),
        schema: s.migrations.schema(),
    }))
}

struct Topo {
    topo: std::sync::Arc<Topology>,
    schema: std::sync::Arc<crate::schema::Schema>,
}

impl Topo {
    fn user_keyspaces(&self) -> impl Iterator<Item = &std::sync::Arc<KeyspaceMetadata>> {
        self.schema.keyspaces.values().filter(|k| !k.is_system)
    }
}

async fn bootstrap_until_done(c: &Rc<ClusterServices>, ss: &Rc<StorageService>) {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match bootstrap(c, ss).await {
            Ok(()) => return,
            Err(e) => {
                log::error!("bootstrap attempt {attempt} failed: {e}; retrying in 5 s");
                ss.set_mode(format!("JOINING: bootstrap failed ({e}); retrying"));
                crate::shard::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

/// One bootstrap attempt.
async fn bootstrap(c: &Rc<ClusterServices>, ss: &StorageService) -> Result<(), String> {
    ss.set_mode("JOINING: waiting for ring information");
    let t0 = Instant::now();
    loop {
        let t = topology(c)?;
        let normal_peers = t
            .topo
            .endpoints
            .iter()
            .skip(1)
            .filter(|e| status_head(&e.status) == "NORMAL")
            .count();
        if normal_peers > 0 {
            break;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            return Err("Unable to contact any seeds or normal nodes".into());
        }
        crate::shard::sleep(Duration::from_millis(200)).await;
    }
    ss.set_mode("JOINING: waiting for schema information to complete");
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        let t = topology(c)?;
        let ours = t.schema.version;
        let agreed = t
            .topo
            .endpoints
            .iter()
            .skip(1)
            .filter(|e| e.alive && status_head(&e.status) == "NORMAL")
            .all(|e| e.schema_version == ours);
        if agreed {
            break;
        }
        crate::shard::sleep(Duration::from_millis(200)).await;
    }
    ss.set_mode(format!(
        "JOINING: waiting {} ms for the ring to settle",
        ss.ring_delay.as_millis()
    ));
    crate::shard::sleep(ss.ring_delay).await;

    let t = topology(c)?;
    if t.topo.future_ring.is_none() {
        return Err("this node is not joining the ring (no pending ranges)".into());
    }
    let others_moving = t
        .topo
        .endpoints
        .iter()
        .skip(1)
        .any(|e| matches!(status_head(&e.status), "BOOT" | "LEAVING") && e.alive);
    if others_moving {
        log::warn!("other nodes are joining or leaving at the same time");
    }
    ss.set_mode("JOINING: streaming");
    let started = Instant::now();
    let mut partitions = 0u64;
    let mut ranges = 0usize;
    for ks in t.user_keyspaces() {
        for m in t.topo.range_movements(ks) {
            if !m.future.contains(&0) || m.current.contains(&0) {
                continue;
            }
            let src = choose_source(&t.topo, &m.current, &m.future).ok_or_else(|| {
                format!(
                    "unable to find sufficient sources for streaming range ({},{}] in keyspace {}",
                    m.start, m.end, ks.name
                )
            })?;
            let from = t.topo.endpoints[src].addr;
            ranges += 1;
            for table in ks.tables.values().filter(|t| !t.is_virtual) {
                for r in streaming::token_ranges(m.start, m.end) {
                    partitions += streaming::fetch_range(c, from, table.id, r).await?;
                }
            }
        }
    }
    log::info!(
        "bootstrap streamed {partitions} partitions of {ranges} ranges in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    ss.write_state("COMPLETED")?;
    c.gossiper.add_local_state(
        ApplicationState::Status,
        format!("NORMAL,{}", first_token(&c.local)),
    );
    ss.set_mode("NORMAL");
    log::info!("Node {} state jump to NORMAL", c.local.broadcast_address);
    if let Ok(s) = services(&c.ctx) {
        s.native_gate.open();
    }
    Ok(())
}

/// The replica to stream a range from: a live one, preferably the one that
/// loses the range, then one in this node's datacenter.
fn choose_source(topo: &Topology, current: &[usize], future: &[usize]) -> Option<usize> {
    let local_dc = &topo.local().dc;
    current
        .iter()
        .copied()
        .filter(|&i| i != 0 && topo.endpoints[i].alive)
        .min_by_key(|&i| {
            let e = &topo.endpoints[i];
            (&e.dc != local_dc, future.contains(&i))
        })
}

/// `nodetool decommission`: streams this node's ranges to their new
/// replicas and leaves the ring. Returns once the node has `LEFT`; the
/// caller then stops the process.
pub async fn decommission(c: &Rc<ClusterServices>) -> Result<(), String> {
    let ss = storage_service(&c.ctx).ok_or("the storage service is not running")?;
    if ss.leaving.get() {
        return Err("Node is already being decommissioned".into());
    }
    let t = topology(c)?;
    let me = status_head(&t.topo.local().status).to_string();
    if me != "NORMAL" {
        return Err(format!(
            "Node in {} state; wait for status to become normal or restart",
            ss.mode()
        ));
    }
    let normal = |e: &&super::topology::Endpoint| status_head(&e.status) == "NORMAL";
    if !t.topo.endpoints.iter().skip(1).any(|e| normal(&e)) {
        return Err("no other normal nodes in the ring; decommission would be pointless".into());
    }
    if t.topo
        .endpoints
        .iter()
        .skip(1)
        .any(|e| matches!(status_head(&e.status), "BOOT" | "LEAVING"))
    {
        return Err("Other bootstrapping/leaving nodes detected, cannot decommission while range movements are in progress".into());
    }
    let local_dc = t.topo.local().dc.clone();
    for ks in t.user_keyspaces() {
        let s = super::topology::strategy(ks);
        let (rf, n) = match &s {
            crate::locator::ReplicationStrategy::NetworkTopology { .. } => (
                s.replication_factor_in(&local_dc),
                t.topo
                    .endpoints
                    .iter()
                    .filter(|e| e.dc == local_dc && super::topology::owns_tokens(&e.status))
                    .count(),
            ),
            crate::locator::ReplicationStrategy::Simple { .. } => (
                s.total_replication_factor(),
                t.topo
                    .endpoints
                    .iter()
                    .filter(|e| super::topology::owns_tokens(&e.status))
                    .count(),
            ),
            crate::locator::ReplicationStrategy::Local => continue,
        };
        if rf > 0 && n <= rf {
            return Err(format!(
                "Not enough live nodes to maintain replication factor in keyspace {} (RF = {rf}, N = {n}). Perform a forceful decommission to ignore.",
                ks.name
            ));
        }
    }
    ss.leaving.set(true);
    let r = leave(c, &ss).await;
    if let Err(e) = &r {
        log::error!("decommission failed: {e}; back to NORMAL");
        c.gossiper.add_local_state(
            ApplicationState::Status,
            format!("NORMAL,{}", first_token(&c.local)),
        );
        ss.set_mode("NORMAL");
        ss.leaving.set(false);
    }
    r
}

async fn leave(c: &Rc<ClusterServices>, ss: &StorageService) -> Result<(), String> {
    let token = first_token(&c.local);
    c.gossiper
        .add_local_state(ApplicationState::Status, format!("LEAVING,{token}"));
    ss.set_mode(format!(
        "LEAVING: sleeping {} ms for pending range setup",
        ss.ring_delay.as_millis()
    ));
    crate::shard::sleep(ss.ring_delay).await;
    let t = topology(c)?;
    ss.set_mode("LEAVING: streaming data to other nodes");
    let started = Instant::now();
    let (mut partitions, mut ranges) = (0u64, 0usize);
    for ks in t.user_keyspaces() {
        for m in t.topo.range_movements(ks) {
            if !m.current.contains(&0) {
                continue;
            }
            for &to in m.future.iter().filter(|i| !m.current.contains(i)) {
                let ep = &t.topo.endpoints[to];
                if !ep.alive {
                    return Err(format!(
                        "cannot stream range ({},{}] of keyspace {} to {}: it is down",
                        m.start, m.end, ks.name, ep.addr
                    ));
                }
                ranges += 1;
                for table in ks.tables.values().filter(|t| !t.is_virtual) {
                    for r in streaming::token_ranges(m.start, m.end) {
                        partitions += streaming::push_range(c, ep.addr, table.id, r).await?;
                    }
                }
            }
        }
    }
    log::info!(
        "decommission streamed {partitions} partitions of {ranges} range transfers in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let expire = (super::client_state::now_micros() / 1000) + 3 * 24 * 3600 * 1000;
    c.gossiper
        .add_local_state(ApplicationState::Status, format!("LEFT,{token},{expire}"));
    ss.set_mode(format!(
        "LEAVING: sleeping {} ms for the LEFT status to spread",
        ss.ring_delay.as_millis()
    ));
    crate::shard::sleep(ss.ring_delay.max(Duration::from_secs(2))).await;
    ss.write_state("DECOMMISSIONED")?;
    ss.set_mode("DECOMMISSIONED");
    Ok(())
}

/// Deletes the hints this node keeps for `ip` (it left or was removed).
fn drop_hints_of(ctx: &ShardContext, ip: IpAddr) {
    let (Some(c), Some(h)) = (cluster(ctx), super::hints::hints(ctx)) else {
        return;
    };
    let host = c
        .gossiper
        .endpoint_state(ip)
        .and_then(|s| s.states.get(&ApplicationState::HostId).cloned())
        .and_then(|id| crate::schema::digest::parse_uuid(&id));
    if let Some(host) = host {
        let n = h.drop_host(host);
        if n > 0 {
            log::info!("deleted {n} hints files of /{ip}: it left the ring");
        }
    }
}

/// What a rebuild or a removal streamed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamSummary {
    /// Range transfers (one range of one keyspace to one node).
    pub ranges: usize,
    pub partitions: u64,
}

/// `nodetool rebuild [-ks KEYSPACE] [SOURCE_DC]`: fetches the data of every
/// range this node replicates from a live replica (in `source_dc` when
/// given). Blocks until done.
pub async fn rebuild(
    c: &Rc<ClusterServices>,
    keyspace: Option<&str>,
    source_dc: Option<&str>,
) -> Result<StreamSummary, String> {
    let ss = storage_service(&c.ctx).ok_or("the storage service is not running")?;
    let t = topology(c)?;
    if let Some(dc) = source_dc {
        let mut dcs: Vec<&str> = t.topo.endpoints.iter().map(|e| e.dc.as_str()).collect();
        dcs.sort_unstable();
        dcs.dedup();
        if !dcs.contains(&dc) {
            return Err(format!(
                "Provided datacenter '{dc}' is not a valid datacenter, available datacenters: [{}]",
                dcs.join(", ")
            ));
        }
    }
    let keyspaces: Vec<&std::sync::Arc<KeyspaceMetadata>> = match keyspace {
        Some(name) => match t.schema.keyspaces.get(name) {
            Some(ks) if !ks.is_system => vec![ks],
            _ => return Err(format!("Keyspace {name} does not exist")),
        },
        None => t.user_keyspaces().collect(),
    };
    if ss.rebuilding.replace(true) {
        return Err("Node is still rebuilding. Check nodetool netstats.".into());
    }
    let r = rebuild_inner(c, &t, &keyspaces, source_dc).await;
    ss.rebuilding.set(false);
    r
}

async fn rebuild_inner(
    c: &Rc<ClusterServices>,
    t: &Topo,
    keyspaces: &[&std::sync::Arc<KeyspaceMetadata>],
    source_dc: Option<&str>,
) -> Result<StreamSummary, String> {
    // The plan first: every (keyspace, range, source), or the error.
    let local_dc = t.topo.local().dc.clone();
    let mut plan = Vec::new();
    for ks in keyspaces {
        let s = super::topology::strategy(ks);
        if s == crate::locator::ReplicationStrategy::Local {
            continue;
        }
        let tokens = t.topo.ring.tokens();
        let n = tokens.len();
        for i in 0..n {
            let (start, end) = (tokens[(i + n - 1) % n], tokens[i]);
            let reps = t.topo.ring.natural_replicas(&s, end);
            if !reps.contains(&0) {
                continue;
            }
            let src = reps
                .iter()
                .copied()
                .filter(|&r| r != 0 && t.topo.endpoints[r].alive)
                .filter(|&r| source_dc.is_none_or(|dc| t.topo.endpoints[r].dc == dc))
                .min_by_key(|&r| t.topo.endpoints[r].dc != local_dc)
                .ok_or_else(|| {
                    format!(
                        "unable to find sufficient sources for streaming range ({start},{end}] in keyspace {}{}",
                        ks.name,
                        source_dc
                            .map(|dc| format!(" with source datacenter {dc}"))
                            .unwrap_or_default()
                    )
                })?;
            plan.push((ks, start, end, t.topo.endpoints[src].addr));
        }
    }
    log::info!(
        "rebuild from {}: {} ranges to stream",
        source_dc.unwrap_or("any datacenter"),
        plan.len()
    );
    let started = Instant::now();
    let mut sum = StreamSummary::default();
    for (ks, start, end, from) in plan {
        if c.ctx.is_stopping() {
            return Err("rebuild stopped: the node is shutting down".into());
        }
        sum.ranges += 1;
        for table in ks.tables.values().filter(|t| !t.is_virtual) {
            for r in streaming::token_ranges(start, end) {
                sum.partitions += streaming::fetch_range(c, from, table.id, r).await?;
            }
        }
    }
    log::info!(
        "rebuild streamed {} partitions of {} ranges in {:.1} s",
        sum.partitions,
        sum.ranges,
        started.elapsed().as_secs_f64()
    );
    Ok(sum)
}

/// `nodetool removenode status`.
pub fn removal_status(ctx: &ShardContext) -> String {
    storage_service(ctx)
        .and_then(|ss| ss.removal.borrow().clone())
        .unwrap_or_else(|| "No removals in process.".into())
}

/// `nodetool removenode <host-id>`: restores the replicas of a dead node's
/// ranges from the surviving ones and removes it from the ring. Blocks
/// until done.
pub async fn removenode(c: &Rc<ClusterServices>, host_id: &str) -> Result<StreamSummary, String> {
    let ss = storage_service(&c.ctx).ok_or("the storage service is not running")?;
    let id = crate::schema::digest::parse_uuid(host_id.trim())
        .ok_or_else(|| format!("Invalid host ID '{host_id}'"))?;
    let t = topology(c)?;
    if t.topo.local().host_id == id {
        return Err("Cannot remove self".into());
    }
    let dead = t
        .topo
        .endpoints
        .iter()
        .position(|e| e.host_id == id)
        .ok_or("Host ID not found.")?;
    let ep = t.topo.endpoints[dead].clone();
    if ep.alive {
        return Err(format!(
            "Node /{} is alive and owns this ID. Use decommission command to remove it from the ring",
            ep.addr
        ));
    }
    if let Some(r) = ss.removal.borrow().as_ref() {
        return Err(format!("Operation already in progress: {r}"));
    }
    if status_head(&local_status(c)) != "NORMAL" {
        return Err(format!(
            "Node in {} state; wait for status to become normal",
            ss.mode()
        ));
    }
    *ss.removal.borrow_mut() = Some(format!(
        "Removing token ({}). Waiting for replication confirmation from the new replicas.",
        first_token_of(&ep.tokens)
    ));
    let r = remove_inner(c, &ep).await;
    *ss.removal.borrow_mut() = None;
    r
}

fn first_token_of(tokens: &[i64]) -> String {
    tokens.first().map(|t| t.to_string()).unwrap_or_default()
}

async fn remove_inner(
    c: &Rc<ClusterServices>,
    ep: &super::topology::Endpoint,
) -> Result<StreamSummary, String> {
    let id = crate::schema::digest::uuid_to_string(&ep.host_id);
    log::info!("removenode: removing /{} (host id {id})", ep.addr);
    c.gossiper
        .advertise_on_behalf(ep.addr, format!("removing,{id}"))?;
    // The streaming plan: the ring with and without the dead node's tokens
    // (indexes stay those of `t.topo.endpoints`).
    let t = topology(c)?;
    let Some(dead) = t.topo.endpoints.iter().position(|e| e.addr == ep.addr) else {
        return Err(format!("/{} vanished from the ring", ep.addr));
    };
    let mut without = t.topo.endpoints.clone();
    without[dead].tokens.clear();
    without[dead].status = "NORMAL".into();
    let after = Topology::new(without);
    let started = Instant::now();
    let mut sum = StreamSummary::default();
    for ks in t.user_keyspaces() {
        let s = super::topology::strategy(ks);
        if s == crate::locator::ReplicationStrategy::Local {
            continue;
        }
        let tokens = t.topo.ring.tokens();
        let n = tokens.len();
        for i in 0..n {
            let (start, end) = (tokens[(i + n - 1) % n], tokens[i]);
            let old = t.topo.ring.natural_replicas(&s, end);
            if !old.contains(&dead) {
                continue;
            }
            let new = after.ring.natural_replicas(&s, end);
            for &to in new.iter().filter(|r| !old.contains(r)) {
                let dst = &t.topo.endpoints[to];
                if !dst.alive {
                    return Err(format!(
                        "cannot stream range ({start},{end}] of keyspace {} to /{}: it is down",
                        ks.name, dst.addr
                    ));
                }
                // A surviving replica, preferably in the new replica's DC.
                let src = old
                    .iter()
                    .copied()
                    .filter(|&r| r != dead && t.topo.endpoints[r].alive)
                    .min_by_key(|&r| t.topo.endpoints[r].dc != dst.dc)
                    .ok_or_else(|| {
                        format!(
                            "unable to find a live replica of range ({start},{end}] in keyspace {}",
                            ks.name
                        )
                    })?;
                let from = t.topo.endpoints[src].addr;
                sum.ranges += 1;
                for table in ks.tables.values().filter(|t| !t.is_virtual) {
                    for r in streaming::token_ranges(start, end) {
                        sum.partitions +=
                            streaming::relay_range(c, from, dst.addr, table.id, r).await?;
                    }
                }
            }
        }
    }
    log::info!(
        "removenode of /{} streamed {} partitions of {} range transfers in {:.1} s",
        ep.addr,
        sum.partitions,
        sum.ranges,
        started.elapsed().as_secs_f64()
    );
    let expire = (super::client_state::now_micros() / 1000) + 3 * 24 * 3600 * 1000;
    c.gossiper
        .advertise_on_behalf(ep.addr, format!("removed,{id},{expire}"))?;
    Ok(sum)
}
