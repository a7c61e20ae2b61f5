//! Joins the node to its cluster (on shard 0): the MessagingService on
//! `storage_port`, the Gossiper, the verb handlers of the replica path,
//! schema propagation, and the topology every shard's coordinator uses.
//!
//! Gossip is the source of truth for the other nodes; every change to
//! what it knows rebuilds the [`Topology`] and installs it on every shard,
//! and tells registered drivers (TOPOLOGY_CHANGE / STATUS_CHANGE).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use engine::mutation::{Bound, ClusteringRange, Mutation, PartitionKey, PartitionUpdate, TableId};
use engine::read::{ReadCommand, ScanBound, TokenRange};
use proto::response::Event;

use super::replication::{RemoteReplicas, ReplicaError};
use super::topology::{Endpoint, Topology};
use crate::gms::{ApplicationState, EndpointStateSubscriber, Gossiper};
use crate::net::{MessagingConfig, MessagingService, Verb};
use crate::node::services;
use crate::schema::{LocalNodeInfo, Schema};
use crate::shard::ShardContext;
use crate::transport::events::{EVENT_STATUS, EVENT_TOPOLOGY};

/// The cluster services of shard 0.
pub struct ClusterServices {
    pub ms: Rc<MessagingService>,
    pub gossiper: Rc<Gossiper>,
    pub(crate) local: LocalNodeInfo,
    pub(crate) ctx: ShardContext,
    /// Peers seen alive and up, to send UP/DOWN only on transitions.
    up: RefCell<BTreeSet<IpAddr>>,
}

pub(super) fn status(ok: Result<Bytes, String>) -> Bytes {
    match ok {
        Ok(b) => {
            let mut out = Vec::with_capacity(b.len() + 1);
            out.push(0);
            out.extend_from_slice(&b);
            Bytes::from(out)
        }
        Err(e) => {
            let mut out = vec![1u8];
            out.extend_from_slice(e.as_bytes());
            Bytes::from(out)
        }
    }
}

pub(super) fn unstatus(b: Bytes) -> Result<Bytes, String> {
    match b.first() {
        Some(0) => Ok(b.slice(1..)),
        Some(1) => Err(String::from_utf8_lossy(&b[1..]).into_owned()),
        _ => Err("malformed response".into()),
    }
}

// --- payload codecs -------------------------------------------------------

pub(super) struct Cur<'a> {
    pub(super) b: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self
            .b
            .get(self.pos..self.pos.checked_add(n).ok_or("overflow")?)
            .ok_or("truncated payload")?;
        self.pos += n;
        Ok(s)
    }
    pub(super) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    pub(super) fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().map_err(|_| "bad u32")?,
        ))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().map_err(|_| "bad i64")?,
        ))
    }
    pub(super) fn bytes(&mut self) -> Result<Bytes, String> {
        let n = self.u32()? as usize;
        Ok(Bytes::copy_from_slice(self.take(n)?))
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn put_bound(out: &mut Vec<u8>, b: &Bound) {
    let (kind, p) = match b {
        Bound::Unbounded => (0u8, None),
        Bound::Inclusive(p) => (1, Some(p)),
        Bound::Exclusive(p) => (2, Some(p)),
    };
    out.push(kind);
    if let Some(p) = p {
        out.extend_from_slice(&(p.len() as u32).to_be_bytes());
        for c in p {
            put_bytes(out, c);
        }
    }
}

fn get_bound(c: &mut Cur<'_>) -> Result<Bound, String> {
    let kind = c.u8()?;
    if kind == 0 {
        return Ok(Bound::Unbounded);
    }
    let n = c.u32()? as usize;
    let mut p = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        p.push(c.bytes()?);
    }
    match kind {
        1 => Ok(Bound::Inclusive(p)),
        2 => Ok(Bound::Exclusive(p)),
        _ => Err("bad bound".into()),
    }
}

fn put_cmd(out: &mut Vec<u8>, cmd: &ReadCommand) {
    out.push(cmd.reversed as u8);
    out.extend_from_slice(&(cmd.now as i64).to_be_bytes());
    out.extend_from_slice(&(cmd.ranges.len() as u32).to_be_bytes());
    for r in &cmd.ranges {
        put_bound(out, &r.start);
        put_bound(out, &r.end);
    }
}

fn get_cmd(c: &mut Cur<'_>) -> Result<ReadCommand, String> {
    let reversed = c.u8()? != 0;
    let now = c.i64()? as i32;
    let n = c.u32()? as usize;
    let mut ranges = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let start = get_bound(c)?;
        let end = get_bound(c)?;
        ranges.push(ClusteringRange { start, end });
    }
    Ok(ReadCommand {
        ranges,
        reversed,
        row_limit: None,
        now,
    })
}

pub(super) fn put_scan_bound(out: &mut Vec<u8>, b: &ScanBound) {
    match b {
        ScanBound::Unbounded => out.push(0),
        ScanBound::Token { token, inclusive } => {
            out.push(1);
            out.extend_from_slice(&token.to_be_bytes());
            out.push(*inclusive as u8);
        }
        ScanBound::Key {
            token,
            key,
            inclusive,
        } => {
            out.push(2);
            out.extend_from_slice(&token.to_be_bytes());
            put_bytes(out, key);
            out.push(*inclusive as u8);
        }
    }
}

pub(super) fn get_scan_bound(c: &mut Cur<'_>) -> Result<ScanBound, String> {
    Ok(match c.u8()? {
        0 => ScanBound::Unbounded,
        1 => ScanBound::Token {
            token: c.i64()?,
            inclusive: c.u8()? != 0,
        },
        2 => {
            let token = c.i64()?;
            let key = c.bytes()?;
            ScanBound::Key {
                token,
                key,
                inclusive: c.u8()? != 0,
            }
        }
        _ => return Err("bad scan bound".into()),
    })
}

pub(super) fn table_id(c: &mut Cur<'_>) -> Result<TableId, String> {
    c.take(16)?
        .try_into()
        .map_err(|_| "bad table id".to_string())
}

pub(super) fn encode_partitions(parts: &[PartitionUpdate]) -> Bytes {
    let mut out = Vec::new();
    out.extend_from_slice(&(parts.len() as u32).to_be_bytes());
    for p in parts {
        engine::serialize::encode_partition(p, &mut out);
    }
    Bytes::from(out)
}

pub(super) fn decode_partitions(b: Bytes) -> Result<Vec<PartitionUpdate>, String> {
    let mut c = Cur { b: &b, pos: 0 };
    let n = c.u32()? as usize;
    let mut pos = 4;
    let mut out = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        out.push(engine::serialize::decode_partition_at(&b, &mut pos).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

// --- the remote replica paths ----------------------------------------------

/// Reaches other nodes through shard 0's MessagingService.
pub struct RemoteViaShard0 {
    pub ctx: ShardContext,
}

type Fut<T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, ReplicaError>>>>;

impl RemoteViaShard0 {
    /// A replica verb's answer: its payload, the replica's failure, or no
    /// answer at all (see [`ReplicaError`]).
    fn request(&self, to: IpAddr, verb: Verb, payload: Bytes, timeout: Duration) -> Fut<Bytes> {
        let shards = self.ctx.shards().clone();
        Box::pin(async move {
            let r = shards
                .invoke_on(0, move |ctx| async move {
                    let Some(c) = cluster(&ctx) else {
                        return Err(ReplicaError::NoResponse("not in a cluster".to_string()));
                    };
                    c.ms.send_request(to, verb, payload, timeout)
                        .await
                        .map_err(ReplicaError::from)
                })
                .await
                .map_err(|e| ReplicaError::NoResponse(e.to_string()))??;
            super::forwarding::decode_reply(r)
        })
    }
}

impl RemoteReplicas for RemoteViaShard0 {
    fn apply(&self, to: IpAddr, m: Mutation, timeout: Duration) -> Fut<()> {
        let mut out = Vec::new();
        engine::serialize::encode_mutation(&m, &mut out);
        let f = self.request(to, Verb::MutationReq, Bytes::from(out), timeout);
        Box::pin(async move { f.await.map(|_| ()) })
    }

    fn read_raw(
        &self,
        to: IpAddr,
        table: TableId,
        key: PartitionKey,
        cmd: ReadCommand,
        timeout: Duration,
    ) -> Fut<Option<PartitionUpdate>> {
        let mut out = Vec::new();
        out.extend_from_slice(&table);
        out.extend_from_slice(&key.token.to_be_bytes());
        put_bytes(&mut out, &key.key);
        put_cmd(&mut out, &cmd);
        let f = self.request(to, Verb::ReadReq, Bytes::from(out), timeout);
        Box::pin(async move {
            Ok(decode_partitions(f.await?)
                .map_err(ReplicaError::failure)?
                .into_iter()
                .next())
        })
    }

    fn read_digest(
        &self,
        to: IpAddr,
        table: TableId,
        key: PartitionKey,
        cmd: ReadCommand,
        timeout: Duration,
    ) -> Fut<[u8; 16]> {
        let mut out = Vec::new();
        out.extend_from_slice(&table);
        out.extend_from_slice(&key.token.to_be_bytes());
        put_bytes(&mut out, &key.key);
        put_cmd(&mut out, &cmd);
        out.push(1); // a digest request (see replication::digest_of)
        let f = self.request(to, Verb::ReadReq, Bytes::from(out), timeout);
        Box::pin(async move {
            f.await?[..]
                .try_into()
                .map_err(|_| ReplicaError::failure("bad digest"))
        })
    }

    fn context(&self) -> Option<ShardContext> {
        Some(self.ctx.clone())
    }

    fn scan_raw(
        &self,
        to: IpAddr,
        table: TableId,
        range: TokenRange,
        cmd: ReadCommand,
        limit: usize,
        timeout: Duration,
    ) -> Fut<Vec<PartitionUpdate>> {
        let mut out = Vec::new();
        out.extend_from_slice(&table);
        put_scan_bound(&mut out, &range.start);
        put_scan_bound(&mut out, &range.end);
        out.extend_from_slice(&(limit as u32).to_be_bytes());
        put_cmd(&mut out, &cmd);
        let f = self.request(to, Verb::RangeReq, Bytes::from(out), timeout);
        Box::pin(async move { decode_partitions(f.await?).map_err(ReplicaError::failure) })
    }

    fn truncate(&self, to: IpAddr, table: TableId, timeout: Duration) -> Fut<()> {
        let f = self.request(
            to,
            Verb::TruncateReq,
            Bytes::copy_from_slice(&table),
            timeout,
        );
        Box::pin(async move { f.await.map(|_| ()) })
    }
}

/// Shard 0's cluster services, once started.
pub fn cluster(ctx: &ShardContext) -> Option<Rc<ClusterServices>> {
    ctx.service(CLUSTER_SERVICES)
        .and_then(|s| s.downcast::<ClusterServices>().ok())
}

const CLUSTER_SERVICES: u64 = u64::MAX - 1;

/// A replica verb's handler: a failure goes back with its
/// `RequestFailureReason` (status 2, `forwarding::encode_failure`).
fn replica_handler<F, Fut2>(f: F) -> crate::net::Handler
where
    F: Fn(IpAddr, Bytes) -> Fut2 + 'static,
    Fut2: std::future::Future<Output = Result<Bytes, ReplicaError>> + 'static,
{
    let f = Rc::new(f);
    Rc::new(move |from, payload| {
        let f = f.clone();
        Box::pin(async move {
            Some(match f(from, payload).await {
                Ok(b) => status(Ok(b)),
                Err(e) => super::forwarding::encode_failure(&e),
            })
        })
    })
}

pub(super) fn handler<F, Fut2>(f: F) -> crate::net::Handler
where
    F: Fn(IpAddr, Bytes) -> Fut2 + 'static,
    Fut2: std::future::Future<Output = Result<Bytes, String>> + 'static,
{
    let f = Rc::new(f);
    Rc::new(move |from, payload| {
        let f = f.clone();
        Box::pin(async move { Some(status(f(from, payload).await)) })
    })
}

impl ClusterServices {
    /// Starts messaging and gossip on shard 0 and installs the first topology.
    pub async fn start(
        ctx: ShardContext,
        config: &crate::config::Config,
        local: LocalNodeInfo,
    ) -> Result<Rc<ClusterServices>, String> {
        let addr = SocketAddr::new(config.listen_address, config.storage_port);
        let ms = MessagingService::new(addr, MessagingConfig::default());
        register_verbs(&ms, &ctx);
        super::forwarding::register(&ms, &ctx, config);
        let seeds: Vec<IpAddr> = config.seed_provider.seeds.clone();
        let schema = services(&ctx).map_err(|e| e.message)?.migrations.schema();
        let states = vec![
            (ApplicationState::Dc, local.data_center.clone()),
            (ApplicationState::Rack, local.rack.clone()),
            (
                ApplicationState::HostId,
                crate::schema::digest::uuid_to_string(&local.host_id),
            ),
            (
                ApplicationState::Tokens,
                local
                    .tokens
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (ApplicationState::RpcAddress, local.rpc_address.to_string()),
            (ApplicationState::NativePort, local.rpc_port.to_string()),
            (
                ApplicationState::ReleaseVersion,
                local.release_version.clone(),
            ),
            (
                ApplicationState::SchemaVersion,
                crate::schema::digest::uuid_to_string(&schema.version),
            ),
            (
                ApplicationState::Status,
                super::storage_service::initial_status(&ctx, config, &local)?,
            ),
        ];
        let gossiper = Gossiper::with_config(
            ms.clone(),
            config.listen_address,
            seeds,
            local.gossip_generation,
            states,
            crate::gms::GossipConfig {
                cluster_name: config.cluster_name.clone(),
                ..Default::default()
            },
        );
        let c = Rc::new(ClusterServices {
            ms,
            gossiper: gossiper.clone(),
            local,
            ctx: ctx.clone(),
            up: RefCell::new(BTreeSet::new()),
        });
        ctx.insert_service(CLUSTER_SERVICES, c.clone());
        gossiper.subscribe(Rc::new(Watcher { ctx: ctx.clone() }));
        super::storage_service::start(&c);
        // Local schema changes: gossip the new version, push the schema.
        {
            let ctx2 = ctx.clone();
            services(&ctx)
                .map_err(|e| e.message)?
                .migrations
                .set_on_change(Rc::new(move |schema: Arc<Schema>| {
                    if let Some(c) = cluster(&ctx2) {
                        c.announce_schema_version(&schema.version);
                        let text = Bytes::from(schema.to_text().into_bytes());
                        for ip in c.gossiper.live_members() {
                            if ip != c.gossiper.local() {
                                let _ = c.ms.send_oneway(ip, Verb::SchemaPush, text.clone());
                            }
                        }
                    }
                }));
        }
        Ok(c)
    }

    /// Runs messaging and gossip until `stop`.
    pub async fn run(
        self: &Rc<Self>,
        stop: crate::shard::LatchWait,
        stop2: crate::shard::LatchWait,
    ) {
        let ms = self.ms.clone();
        let g = self.gossiper.clone();
        let listen = async move {
            if let Err(e) = ms.listen(stop).await {
                log::error!("internode messaging stopped: {e}");
            }
        };
        futures_lite::future::zip(listen, g.run(stop2)).await;
        self.gossiper.shutdown().await;
        self.ms.shutdown().await;
    }

    /// Gossips this node's schema version.
    fn announce_schema_version(&self, version: &[u8; 16]) {
        self.gossiper.add_local_state(
            ApplicationState::SchemaVersion,
            crate::schema::digest::uuid_to_string(version),
        );
    }

    /// Rebuilds the topology from gossip and installs it on every shard.
    async fn refresh(&self) {
        let mut endpoints = vec![Endpoint {
            addr: self.local.broadcast_address,
            dc: self.local.data_center.clone(),
            rack: self.local.rack.clone(),
            host_id: self.local.host_id,
            tokens: self.local.tokens.clone(),
            rpc_address: self.local.rpc_address,
            native_port: self.local.rpc_port,
            schema_version: services(&self.ctx)
                .map(|s| s.migrations.schema().version)
                .unwrap_or([0; 16]),
            release_version: self.local.release_version.clone(),
            status: super::storage_service::local_status(self),
            alive: true,
        }];
        for (ip, snap) in self.gossiper.endpoint_states() {
            if ip == self.gossiper.local() {
                continue;
            }
            let get = |k: ApplicationState| snap.states.get(&k).cloned().unwrap_or_default();
            let tokens: Vec<i64> = get(ApplicationState::Tokens)
                .split(',')
                .filter_map(|t| t.trim().parse().ok())
                .collect();
            let dc = get(ApplicationState::Dc);
            if dc.is_empty() || tokens.is_empty() {
                continue;
            }
            let status = get(ApplicationState::Status);
            endpoints.push(Endpoint {
                addr: ip,
                dc,
                rack: get(ApplicationState::Rack),
                host_id: crate::schema::digest::parse_uuid(&get(ApplicationState::HostId))
                    .unwrap_or([0; 16]),
                tokens,
                rpc_address: get(ApplicationState::RpcAddress).parse().unwrap_or(ip),
                native_port: get(ApplicationState::NativePort).parse().unwrap_or(9042),
                schema_version: crate::schema::digest::parse_uuid(&get(
                    ApplicationState::SchemaVersion,
                ))
                .unwrap_or([0; 16]),
                release_version: get(ApplicationState::ReleaseVersion),
                status: status.split(',').next().unwrap_or("NORMAL").to_string(),
                alive: snap.alive,
            });
        }
        let topo = Arc::new(Topology::new(endpoints));
        let peers = topo.peers();
        let mut dcs: Vec<String> = topo.endpoints.iter().map(|e| e.dc.clone()).collect();
        dcs.sort();
        dcs.dedup();
        let r = self
            .ctx
            .shards()
            .invoke_on_all(move |ctx| {
                let topo = topo.clone();
                let peers = peers.clone();
                let dcs = dcs.clone();
                async move {
                    if let Ok(s) = services(&ctx) {
                        s.proxy.set_topology(topo);
                        s.migrations.set_cluster_view(peers, dcs);
                        if s.proxy.topology().endpoints.len() > 1 {
                            s.proxy
                                .set_remote(Rc::new(RemoteViaShard0 { ctx: ctx.clone() }));
                        }
                    }
                }
            })
            .await;
        if let Err(e) = r {
            log::warn!("could not install the new topology: {e}");
        }
    }

    async fn publish(&self, kind: u8, event: Event) {
        let _ = self
            .ctx
            .shards()
            .invoke_on_all(move |ctx| {
                let event = event.clone();
                async move {
                    if let Ok(s) = services(&ctx) {
                        s.transport.events.publish(kind, event);
                    }
                }
            })
            .await;
    }

    fn rpc_of(&self, ip: IpAddr) -> SocketAddr {
        let snap = self.gossiper.endpoint_state(ip);
        let rpc = snap
            .as_ref()
            .and_then(|s| s.states.get(&ApplicationState::RpcAddress))
            .and_then(|v| v.parse().ok())
            .unwrap_or(ip);
        let port = snap
            .as_ref()
            .and_then(|s| s.states.get(&ApplicationState::NativePort))
            .and_then(|v| v.parse().ok())
            .unwrap_or(9042);
        SocketAddr::new(rpc, port)
    }
}

/// Turns gossip notifications into topology installs, driver events and
/// schema pulls.
struct Watcher {
    ctx: ShardContext,
}

impl Watcher {
    fn spawn(
        &self,
        f: impl FnOnce(Rc<ClusterServices>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>
            + 'static,
    ) {
        if let Some(c) = cluster(&self.ctx) {
            glommio::spawn_local(f(c)).detach();
        }
    }
}

impl Watcher {
    /// Installs the new topology and tells drivers UP/DOWN, only on a
    /// transition.
    fn status_change(&self, ip: IpAddr, up: bool) {
        self.spawn(move |c| {
            Box::pin(async move {
                c.refresh().await;
                let changed = if up {
                    c.up.borrow_mut().insert(ip)
                } else {
                    c.up.borrow_mut().remove(&ip)
                };
                if changed {
                    let change = if up { "UP" } else { "DOWN" };
                    log::info!("node {ip} is now {change}");
                    let addr = c.rpc_of(ip);
                    c.publish(
                        EVENT_STATUS,
                        Event::StatusChange {
                            change: change.into(),
                            addr,
                        },
                    )
                    .await;
                }
            })
        });
    }
}

impl EndpointStateSubscriber for Watcher {
    fn on_join(&self, ip: IpAddr) {
        let joining = super::storage_service::is_joining(&self.ctx, ip);
        self.spawn(move |c| {
            Box::pin(async move {
                c.refresh().await;
                if joining {
                    return; // NEW_NODE once it is NORMAL (storage_service)
                }
                let addr = c.rpc_of(ip);
                log::info!("node {ip} joined the cluster");
                c.publish(
                    EVENT_TOPOLOGY,
                    Event::TopologyChange {
                        change: "NEW_NODE".into(),
                        addr,
                    },
                )
                .await;
            })
        });
    }

    fn on_change(&self, ip: IpAddr, state: ApplicationState, value: &str) {
        let event = super::storage_service::status_event(&self.ctx, ip, state, value);
        let value = value.to_string();
        self.spawn(move |c| {
            Box::pin(async move {
                c.refresh().await;
                if let Some(change) = event {
                    let addr = c.rpc_of(ip);
                    c.publish(EVENT_TOPOLOGY, Event::TopologyChange { change, addr })
                        .await;
                }
                if state == ApplicationState::SchemaVersion {
                    pull_schema_if_needed(&c, ip, &value).await;
                }
            })
        });
    }

    fn on_alive(&self, ip: IpAddr) {
        self.status_change(ip, true);
        // A pull tried while the peer was unreachable failed; try again now
        // that it answers.
        self.spawn(move |c| {
            Box::pin(async move {
                let version = c
                    .gossiper
                    .endpoint_state(ip)
                    .and_then(|st| st.states.get(&ApplicationState::SchemaVersion).cloned());
                if let Some(v) = version {
                    pull_schema_if_needed(&c, ip, &v).await;
                }
            })
        });
    }

    fn on_dead(&self, ip: IpAddr) {
        self.status_change(ip, false);
    }

    fn on_remove(&self, ip: IpAddr) {
        self.spawn(move |c| {
            Box::pin(async move {
                c.refresh().await;
                let addr = c.rpc_of(ip);
                c.publish(
                    EVENT_TOPOLOGY,
                    Event::TopologyChange {
                        change: "REMOVED_NODE".into(),
                        addr,
                    },
                )
                .await;
            })
        });
    }
}

/// When a peer announces a schema version we don't have, fetch its schema
/// and merge it into ours (last change wins per keyspace, table and type;
/// drops are remembered, see `schema/merge.rs`). If ours then differs from
/// theirs, they pull from us when they see our new version in gossip.
async fn pull_schema_if_needed(c: &Rc<ClusterServices>, ip: IpAddr, version: &str) {
    let Ok(s) = services(&c.ctx) else { return };
    let ours = s.migrations.schema();
    if crate::schema::digest::parse_uuid(version) == Some(ours.version) {
        return;
    }
    let Ok(reply) =
        c.ms.send_request(ip, Verb::SchemaPull, Bytes::new(), Duration::from_secs(5))
            .await
    else {
        return;
    };
    let Ok(text) = unstatus(reply) else { return };
    let local_dc = c.local.data_center.clone();
    let Ok(theirs) = Schema::from_text(&String::from_utf8_lossy(&text), &local_dc) else {
        return;
    };
    match s.migrations.merge_remote(&theirs).await {
        Ok(true) => c.announce_schema_version(&s.migrations.schema().version),
        Ok(false) => {}
        Err(e) => log::warn!("could not merge the schema of {ip}: {}", e.message),
    }
}

fn register_verbs(ms: &Rc<MessagingService>, ctx: &ShardContext) {
    super::streaming::register_verbs(ms, ctx);
    super::repair::register_verbs(ms, ctx);
    super::paxos::register_verbs(ms, ctx);
    super::counters::register_verbs(ms, ctx);
    let c = ctx.clone();
    let failed = |e: proto::error::ErrorResponse| ReplicaError::from_response(&e);
    ms.register(
        Verb::MutationReq,
        replica_handler(move |_, payload| {
            let ctx = c.clone();
            async move {
                let m = engine::serialize::decode_mutation(&payload)
                    .map_err(|e| ReplicaError::failure(e.to_string()))?;
                let s = services(&ctx).map_err(failed)?;
                s.proxy.apply_routed(m).await.map_err(failed)?;
                Ok(Bytes::new())
            }
        }),
    );
    let c = ctx.clone();
    ms.register(
        Verb::ReadReq,
        replica_handler(move |_, payload| {
            let ctx = c.clone();
            async move {
                let mut cur = Cur {
                    b: &payload,
                    pos: 0,
                };
                let malformed = |e: String| ReplicaError::failure(e);
                let table = table_id(&mut cur).map_err(malformed)?;
                let token = cur.i64().map_err(malformed)?;
                let key = cur.bytes().map_err(malformed)?;
                let cmd = get_cmd(&mut cur).map_err(malformed)?;
                let digest = cur.u8().unwrap_or(0) == 1;
                let s = services(&ctx).map_err(failed)?;
                let p = s
                    .proxy
                    .read_raw_routed(table, PartitionKey { token, key }, cmd)
                    .await
                    .map_err(failed)?;
                if digest {
                    let d = super::replication::digest_of(p.as_ref());
                    return Ok(Bytes::copy_from_slice(&d));
                }
                Ok(encode_partitions(&p.into_iter().collect::<Vec<_>>()))
            }
        }),
    );
    let c = ctx.clone();
    ms.register(
        Verb::RangeReq,
        replica_handler(move |_, payload| {
            let ctx = c.clone();
            async move {
                let mut cur = Cur {
                    b: &payload,
                    pos: 0,
                };
                let malformed = |e: String| ReplicaError::failure(e);
                let table = table_id(&mut cur).map_err(malformed)?;
                let start = get_scan_bound(&mut cur).map_err(malformed)?;
                let end = get_scan_bound(&mut cur).map_err(malformed)?;
                let limit = cur.u32().map_err(malformed)? as usize;
                let cmd = get_cmd(&mut cur).map_err(malformed)?;
                let s = services(&ctx).map_err(failed)?;
                let parts = s
                    .proxy
                    .scan_raw_all_shards(
                        table,
                        &TokenRange { start, end },
                        &cmd,
                        limit.min(100_000),
                    )
                    .await
                    .map_err(failed)?;
                Ok(encode_partitions(&parts))
            }
        }),
    );
    let c = ctx.clone();
    ms.register(
        Verb::SchemaPull,
        handler(move |_, _| {
            let ctx = c.clone();
            async move {
                let s = services(&ctx).map_err(|e| e.message)?;
                Ok(Bytes::from(s.migrations.schema().to_text().into_bytes()))
            }
        }),
    );
    let c = ctx.clone();
    ms.register(
        Verb::SchemaPush,
        handler(move |from, payload| {
            let ctx = c.clone();
            async move {
                let s = services(&ctx).map_err(|e| e.message)?;
                let local_dc = s.migrations.local_info().data_center;
                let schema = Schema::from_text(&String::from_utf8_lossy(&payload), &local_dc)?;
                if s.migrations
                    .merge_remote(&schema)
                    .await
                    .map_err(|e| e.message)?
                {
                    log::info!(
                        "schema {} pushed by {from}; merged into {}",
                        crate::schema::digest::uuid_to_string(&schema.version),
                        s.migrations.schema().version_string()
                    );
                    if let Some(c) = cluster(&ctx) {
                        c.announce_schema_version(&s.migrations.schema().version);
                    }
                }
                Ok(Bytes::new())
            }
        }),
    );
    let c = ctx.clone();
    ms.register(
        Verb::TruncateReq,
        handler(move |_, payload| {
            let ctx = c.clone();
            async move {
                let mut cur = Cur {
                    b: &payload,
                    pos: 0,
                };
                let table = table_id(&mut cur)?;
                let s = services(&ctx).map_err(|e| e.message)?;
                let schema = s.migrations.schema();
                let meta = schema.table_by_id(&table).ok_or("unknown table")?.clone();
                s.proxy.truncate_local(&meta).await.map_err(|e| e.message)?;
                Ok(Bytes::new())
            }
        }),
    );
}
