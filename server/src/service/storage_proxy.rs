//! The coordinator: decides which replicas a request needs for its
//! consistency level, answers `Unavailable` before doing any work when too
//! few are alive, and sends the request to the replicas.
//!
//! Architecture invariant: the coordinator never touches storage directly;
//! it hands mutations and reads to the replica path (`replica_*`), which is
//! the only code that calls the engine.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use engine::mutation::{
    Cell as DataCell, ColumnData, Mutation, PartitionKey, PartitionUpdate, Row,
};
use engine::read::{ReadCommand, TokenRange};
use engine::Database;
use proto::consistency::Consistency;
use proto::error::{DbError, ErrorResponse, RequestFailureReason};
use proto::value::CqlValue;

use crate::cql3::ast::BatchKind;
use crate::schema::{ColumnKind, KeyspaceMetadata, Schema, TableMetadata};

/// The node's view of itself and its peers for virtual tables.
pub trait NodeInfoSource {
    fn schema(&self) -> Arc<Schema>;
    fn local_dc(&self) -> String;
    fn virtual_rows(
        &self,
        schema: &Schema,
        keyspace: &str,
        table: &str,
    ) -> Option<Vec<Vec<Option<CqlValue>>>>;
}

/// Replication factor of a keyspace per datacenter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    /// SimpleStrategy: one factor for the whole ring.
    Simple(usize),
    /// NetworkTopologyStrategy: per-DC factors.
    PerDc(BTreeMap<String, usize>),
    /// LocalStrategy and friends: this node only.
    Local,
}

impl Replication {
    pub fn of(ks: &KeyspaceMetadata) -> Replication {
        let rf = |s: &str| {
            crate::locator::parse_replication_factor(s)
                .map(|r| r.full())
                .unwrap_or(0)
        };
        let class = ks.replication.class.as_str();
        if class.ends_with("SimpleStrategy") {
            Replication::Simple(
                ks.replication
                    .options
                    .get("replication_factor")
                    .map(|s| rf(s))
                    .unwrap_or(0),
            )
        } else if class.ends_with("NetworkTopologyStrategy") {
            Replication::PerDc(
                ks.replication
                    .options
                    .iter()
                    .map(|(dc, v)| (dc.clone(), rf(v)))
                    .collect(),
            )
        } else {
            Replication::Local
        }
    }
}

/// How many replicas must answer, and how many are alive, for `cl`.
///
/// `nodes_in_dc`: live nodes this coordinator knows per DC (one node today).
pub fn check_availability(
    rep: &Replication,
    cl: Consistency,
    local_dc: &str,
    live: &dyn Fn(&str) -> usize,
    is_write: bool,
) -> Result<(), ErrorResponse> {
    if !is_write && cl == Consistency::Any {
        return Err(ErrorResponse::invalid(
            "ANY ConsistencyLevel is only supported for writes",
        ));
    }
    let quorum = |rf: usize| rf / 2 + 1;
    let (total_rf, local_rf, dcs): (usize, usize, Vec<(String, usize)>) = match rep {
        Replication::Simple(rf) => (*rf, *rf, vec![(local_dc.to_string(), *rf)]),
        Replication::PerDc(m) => (
            m.values().sum(),
            m.get(local_dc).copied().unwrap_or(0),
            m.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        ),
        Replication::Local => (1, 1, vec![(local_dc.to_string(), 1)]),
    };
    let alive_in = |dc: &str, rf: usize| live(dc).min(rf);
    let alive_total: usize = dcs.iter().map(|(dc, rf)| alive_in(dc, *rf)).sum();
    let alive_local = alive_in(local_dc, local_rf);
    let unavailable = |required: usize, alive: usize| -> Result<(), ErrorResponse> {
        if alive < required {
            Err(ErrorResponse::unavailable(
                cl,
                required as i32,
                alive as i32,
            ))
        } else {
            Ok(())
        }
    };
    match cl {
        Consistency::Any => Ok(()),
        Consistency::One => unavailable(1, alive_total),
        Consistency::Two => unavailable(2, alive_total),
        Consistency::Three => unavailable(3, alive_total),
        Consistency::Quorum | Consistency::Serial => unavailable(quorum(total_rf), alive_total),
        Consistency::All => unavailable(total_rf, alive_total),
        Consistency::LocalOne => unavailable(1, alive_local),
        Consistency::LocalQuorum | Consistency::LocalSerial => {
            unavailable(quorum(local_rf), alive_local)
        }
        Consistency::EachQuorum => {
            if matches!(rep, Replication::Simple(_)) {
                return unavailable(quorum(total_rf), alive_total);
            }
            for (dc, rf) in &dcs {
                unavailable(quorum(*rf), alive_in(dc, *rf))?;
            }
            Ok(())
        }
    }
}

/// Scylla's default `sharding_ignore_msb`.
pub const SHARDING_IGNORE_MSB: u32 = 12;

/// Per-shard request counters (visible through the admin API).
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Replica operations this shard ran for itself or for other shards.
    pub replica_ops: Cell<u64>,
    /// Operations this shard sent to the shard that owns the token.
    pub forwarded: Cell<u64>,
    /// Replicated reads whose digests disagreed (a second, full-data round).
    pub digest_mismatches: Cell<u64>,
    /// Stale replicas repaired by reads.
    pub read_repairs: Cell<u64>,
}

/// Where the replica work of a token runs: this shard, or another one
/// reached through the shard runtime.
pub trait ShardRouter {
    fn shard_id(&self) -> usize;
    fn shard_count(&self) -> usize;
    fn forward_apply(
        &self,
        shard: usize,
        m: Mutation,
    ) -> Pin<Box<dyn Future<Output = Result<(), ErrorResponse>>>>;
    fn forward_read(
        &self,
        shard: usize,
        table: [u8; 16],
        key: PartitionKey,
        cmd: ReadCommand,
    ) -> Pin<Box<dyn Future<Output = Result<Option<PartitionUpdate>, ErrorResponse>>>>;
    fn forward_scan(
        &self,
        shard: usize,
        table: [u8; 16],
        range: TokenRange,
        cmd: ReadCommand,
        limit: usize,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<PartitionUpdate>, ErrorResponse>>>>;
    fn truncate_all(
        &self,
        table: [u8; 16],
    ) -> Pin<Box<dyn Future<Output = Result<(), ErrorResponse>>>>;
    fn forward_read_raw(
        &self,
        shard: usize,
        table: [u8; 16],
        key: PartitionKey,
        cmd: ReadCommand,
    ) -> Pin<Box<dyn Future<Output = Result<Option<PartitionUpdate>, ErrorResponse>>>>;
    fn forward_scan_raw(
        &self,
        shard: usize,
        table: [u8; 16],
        range: TokenRange,
        cmd: ReadCommand,
        limit: usize,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<PartitionUpdate>, ErrorResponse>>>>;
    /// Runs `task` with the `StorageProxy` of `shard` (local index lookups,
    /// read-modify-write on the owner shard).
    fn forward_task(
        &self,
        shard: usize,
        task: ProxyTask,
    ) -> Pin<Box<dyn Future<Output = Result<Box<dyn std::any::Any + Send>, ErrorResponse>>>> {
        let _ = (shard, task);
        Box::pin(async { Err(ErrorResponse::server("cross-shard tasks are not supported")) })
    }
}

/// Work sent to another shard's `StorageProxy` (see [`ShardRouter::forward_task`]).
pub type ProxyTask = Box<
    dyn FnOnce(Rc<StorageProxy>) -> Pin<Box<dyn Future<Output = Box<dyn std::any::Any + Send>>>>
        + Send,
>;

/// The coordinator of one shard.
pub struct StorageProxy {
    pub(crate) db: Rc<RefCell<Database>>,
    pub(crate) node: Rc<dyn NodeInfoSource>,
    pub(crate) router: Option<Rc<dyn ShardRouter>>,
    pub stats: ProxyStats,
    /// The cluster as last installed (see `service::topology`).
    pub(crate) topology: RefCell<Arc<crate::service::topology::Topology>>,
    /// Other nodes' replica paths (absent on a node that never joined a cluster).
    pub(crate) remote: RefCell<Option<Rc<dyn crate::service::replication::RemoteReplicas>>>,
    pub(crate) write_timeout: std::time::Duration,
    pub(crate) read_timeout: std::time::Duration,
    pub(crate) group_commit: Rc<GroupCommit>,
    /// This shard's local secondary indexes (see `crate::index`).
    pub indexes: crate::index::IndexRegistry,
    /// `cas_contention_timeout_in_ms`: how long a lightweight transaction
    /// retries under contention (see `service::paxos`).
    pub(crate) cas_contention_timeout: std::time::Duration,
    /// `counter_write_request_timeout_in_ms` (see `service::counters`).
    pub(crate) counter_write_timeout: std::time::Duration,
    /// This shard's Paxos ballots.
    pub(crate) ballots: crate::service::paxos::BallotClock,
    pub paxos_stats: crate::service::paxos::PaxosStats,
    /// `maximum_timestamp_fail_threshold` / `minimum_timestamp_fail_threshold`
    /// (Cassandra 5 guardrails), in microseconds from now.
    pub(crate) timestamp_guardrails: (Option<i64>, Option<i64>),
}

impl StorageProxy {
    pub fn new(
        db: Rc<RefCell<Database>>,
        node: Rc<dyn NodeInfoSource>,
        router: Option<Rc<dyn ShardRouter>>,
        topology: Arc<crate::service::topology::Topology>,
    ) -> Self {
        let host_id = topology.local().host_id;
        let shard = router.as_ref().map(|r| r.shard_id()).unwrap_or(0);
        StorageProxy {
            db,
            node,
            router,
            stats: ProxyStats::default(),
            topology: RefCell::new(topology),
            remote: RefCell::new(None),
            write_timeout: std::time::Duration::from_millis(2000),
            read_timeout: std::time::Duration::from_millis(5000),
            group_commit: GroupCommit::new(None),
            indexes: crate::index::IndexRegistry::default(),
            cas_contention_timeout: std::time::Duration::from_millis(1000),
            counter_write_timeout: std::time::Duration::from_millis(5000),
            ballots: crate::service::paxos::BallotClock::new(
                u64::from_be_bytes(host_id[8..].try_into().unwrap_or_default()),
                shard,
            ),
            paxos_stats: crate::service::paxos::PaxosStats::default(),
            timestamp_guardrails: (None, None),
        }
    }

    /// Sets the timestamp guardrails (`maximum_timestamp_fail_threshold`,
    /// `minimum_timestamp_fail_threshold`).
    pub fn with_timestamp_guardrails(
        mut self,
        max_future: Option<std::time::Duration>,
        max_past: Option<std::time::Duration>,
    ) -> Self {
        let micros = |d: std::time::Duration| d.as_micros().min(i64::MAX as u128) as i64;
        self.timestamp_guardrails = (max_future.map(micros), max_past.map(micros));
        self
    }

    /// Refuses a client write whose timestamps lie beyond the guardrails, as
    /// Cassandra 5's `maximum_timestamp`/`minimum_timestamp` guardrails do
    /// (InvalidRequest, nothing applied).
    pub(crate) fn check_timestamp_guardrails(
        &self,
        ks: &KeyspaceMetadata,
        m: &Mutation,
    ) -> Result<(), ErrorResponse> {
        let (max_future, max_past) = self.timestamp_guardrails;
        if ks.is_system || (max_future.is_none() && max_past.is_none()) {
            return Ok(());
        }
        let Some((lo, hi)) = m.update.timestamp_range() else {
            return Ok(());
        };
        let now = crate::service::client_state::now_micros();
        // Named only when a write is refused (not on every write).
        let table = || {
            ks.tables
                .values()
                .find(|t| t.id == m.table)
                .map(|t| format!("{}.{}", ks.name, t.name))
                .unwrap_or_else(|| ks.name.clone())
        };
        if let Some(limit) = max_future.map(|d| now.saturating_add(d)) {
            if hi > limit {
                return Err(ErrorResponse::invalid(format!(
                    "Guardrail maximum_timestamp violated: The modification to table {} has a timestamp {hi} after the maximum allowable failure threshold {limit}",
                    table()
                )));
            }
        }
        if let Some(limit) = max_past.map(|d| now.saturating_sub(d)) {
            if lo < limit {
                return Err(ErrorResponse::invalid(format!(
                    "Guardrail minimum_timestamp violated: The modification to table {} has a timestamp {lo} before the minimum allowable failure threshold {limit}",
                    table()
                )));
            }
        }
        Ok(())
    }

    /// Sets `cas_contention_timeout_in_ms` and `counter_write_request_timeout_in_ms`.
    pub fn with_lwt_timeouts(
        mut self,
        cas_contention: std::time::Duration,
        counter_write: std::time::Duration,
    ) -> Self {
        self.cas_contention_timeout = cas_contention;
        self.counter_write_timeout = counter_write;
        self
    }

    /// Sets the coordinator timeouts (`write_request_timeout_in_ms`, `read_request_timeout_in_ms`).
    pub fn with_timeouts(mut self, write: std::time::Duration, read: std::time::Duration) -> Self {
        self.write_timeout = write;
        self.read_timeout = read;
        self
    }

    /// Turns on batch-mode group commit with this window.
    pub fn with_group_commit(mut self, window: Option<std::time::Duration>) -> Self {
        self.group_commit = GroupCommit::new(window);
        self
    }

    /// Installs a new view of the cluster on this shard.
    pub fn set_topology(&self, t: Arc<crate::service::topology::Topology>) {
        *self.topology.borrow_mut() = t;
    }

    pub fn topology(&self) -> Arc<crate::service::topology::Topology> {
        self.topology.borrow().clone()
    }

    /// Connects this coordinator to the other nodes.
    pub fn set_remote(&self, r: Rc<dyn crate::service::replication::RemoteReplicas>) {
        *self.remote.borrow_mut() = Some(r);
    }

    fn is_clustered(&self) -> bool {
        !self.topology.borrow().is_single_node() && self.remote.borrow().is_some()
    }

    /// The shard owning `token` (Scylla's biased-token-round-robin), or
    /// `None` when it is this one.
    fn remote_owner(&self, token: i64) -> Option<(usize, &Rc<dyn ShardRouter>)> {
        let r = self.router.as_ref()?;
        let n = r.shard_count();
        if n <= 1 {
            return None;
        }
        let owner = proto::scylla::shard_of_token(token, n as u32, SHARDING_IGNORE_MSB) as usize;
        if owner == r.shard_id() {
            None
        } else {
            self.stats.forwarded.set(self.stats.forwarded.get() + 1);
            Some((owner, r))
        }
    }

    /// The shard of this node owning `token`, or `None` when it is this one.
    pub(crate) fn owner_shard_of(&self, token: i64) -> Option<usize> {
        self.remote_owner(token).map(|(owner, _)| owner)
    }

    /// Waits until the commitlog position `pos` is durable (batch mode).
    pub(crate) async fn wait_durable(
        &self,
        pos: Option<engine::commitlog::ReplayPosition>,
    ) -> Result<(), ErrorResponse> {
        match (pos, self.group_commit.window) {
            (Some(pos), Some(_)) => self
                .group_commit
                .wait(&self.group_commit, &self.db, pos)
                .await
                .map_err(|m| self.replica_write_failure(RequestFailureReason::Unknown, m)),
            _ => Ok(()),
        }
    }

    pub fn keyspace(&self, name: &str) -> Result<Arc<KeyspaceMetadata>, ErrorResponse> {
        self.node
            .schema()
            .keyspace(name)
            .cloned()
            .ok_or_else(|| ErrorResponse::invalid(format!("Keyspace {name} does not exist")))
    }

    fn live_nodes(&self) -> impl Fn(&str) -> usize {
        let local = self.node.local_dc();
        move |dc: &str| usize::from(dc == local)
    }

    fn check(
        &self,
        ks: &KeyspaceMetadata,
        cl: Consistency,
        is_write: bool,
    ) -> Result<(), ErrorResponse> {
        if is_write && matches!(cl, Consistency::Serial | Consistency::LocalSerial) {
            return Err(ErrorResponse::invalid(
                "You must use conditional updates for serializable writes",
            ));
        }
        let rep = Replication::of(ks);
        let live = self.live_nodes();
        check_availability(&rep, cl, &self.node.local_dc(), &live, is_write)
    }

    /// Applies mutations of one keyspace at consistency `cl`.
    pub async fn mutate(
        &self,
        ks: &KeyspaceMetadata,
        mutations: Vec<Mutation>,
        cl: Consistency,
    ) -> Result<(), ErrorResponse> {
        for m in &mutations {
            self.check_timestamp_guardrails(ks, m)?;
        }
        let partitions = partition_count(mutations.iter().map(|m| (&*ks.name, &m.update.key)));
        let write_type = WriteType::of_writes(BatchKind::Unlogged, partitions);
        if self.is_clustered() && !ks.is_system {
            for m in mutations {
                self.mutate_replicated(ks, m, cl, write_type.as_str())
                    .await?;
            }
            return Ok(());
        }
        self.check(ks, cl, true)?;
        for m in mutations {
            self.apply_routed(m)
                .await
                .map_err(|e| self.single_node_write_failure(ks, cl, write_type.as_str(), e))?;
        }
        Ok(())
    }

    pub(crate) async fn apply_routed(&self, m: Mutation) -> Result<(), ErrorResponse> {
        match self.remote_owner(m.update.key.token) {
            None => self.replica_apply_durable(&m).await,
            Some((owner, r)) => r.forward_apply(owner, m).await,
        }
    }

    /// Applies mutations that may span keyspaces (a batch); `mode` decides
    /// the write type failures and timeouts report ([`WriteType::of_writes`]).
    pub async fn mutate_many(
        &self,
        mutations: Vec<(Arc<KeyspaceMetadata>, Mutation)>,
        cl: Consistency,
        mode: BatchKind,
    ) -> Result<(), ErrorResponse> {
        for (ks, m) in &mutations {
            self.check_timestamp_guardrails(ks, m)?;
        }
        let partitions =
            partition_count(mutations.iter().map(|(ks, m)| (&*ks.name, &m.update.key)));
        let write_type = WriteType::of_writes(mode, partitions).as_str();
        if self.is_clustered() {
            for (ks, m) in mutations {
                if ks.is_system {
                    self.apply_routed(m).await?;
                } else {
                    self.mutate_replicated(&ks, m, cl, write_type).await?;
                }
            }
            return Ok(());
        }
        for (ks, _) in &mutations {
            self.check(ks, cl, true)?;
        }
        for (ks, m) in mutations {
            self.apply_routed(m)
                .await
                .map_err(|e| self.single_node_write_failure(&ks, cl, write_type, e))?;
        }
        Ok(())
    }

    pub async fn read_partition(
        &self,
        ks: &KeyspaceMetadata,
        table: &TableMetadata,
        key: &PartitionKey,
        cmd: &ReadCommand,
        cl: Consistency,
    ) -> Result<Option<PartitionUpdate>, ErrorResponse> {
        if self.is_clustered() && !ks.is_system {
            if cl.is_serial() {
                return self.paxos_read(ks, table, key, cmd, cl).await;
            }
            return self.read_replicated(ks, table, key, cmd, cl).await;
        }
        self.check(ks, cl, false)?;
        match self.remote_owner(key.token) {
            None => self.replica_read(&table.id, key, cmd),
            Some((owner, r)) => {
                r.forward_read(owner, table.id, key.clone(), cmd.clone())
                    .await
            }
        }
        .map_err(|e| self.single_node_read_failure(ks, cl, e))
    }

    /// Replica path: reads one partition of this shard.
    pub fn replica_read(
        &self,
        table: &[u8; 16],
        key: &PartitionKey,
        cmd: &ReadCommand,
    ) -> Result<Option<PartitionUpdate>, ErrorResponse> {
        self.stats.replica_ops.set(self.stats.replica_ops.get() + 1);
        self.db
            .borrow()
            .read_partition(table, key, cmd)
            .map_err(|e| self.read_error(table, e))
    }

    /// Replica path: raw content (tombstones kept) of one partition of this
    /// shard, for reconciliation across replicas.
    pub fn replica_read_raw(
        &self,
        table: &[u8; 16],
        key: &PartitionKey,
        cmd: &ReadCommand,
    ) -> Result<Option<PartitionUpdate>, ErrorResponse> {
        self.stats.replica_ops.set(self.stats.replica_ops.get() + 1);
        let db = self.db.borrow();
        let cf = db
            .table(table)
            .ok_or_else(|| self.read_error(table, engine::EngineError::NoSuchTable(*table)))?;
        let sources = cf.sources();
        engine::reader::read_merged_raw(cf.schema(), &sources, key, &cmd.ranges)
            .map_err(|e| self.read_error(table, e))
    }

    /// Replica path: raw content of up to `limit` partitions of `range` on this shard.
    pub fn replica_scan_raw(
        &self,
        table: &[u8; 16],
        range: &TokenRange,
        cmd: &ReadCommand,
        limit: usize,
    ) -> Result<Vec<PartitionUpdate>, ErrorResponse> {
        self.stats.replica_ops.set(self.stats.replica_ops.get() + 1);
        let db = self.db.borrow();
        let cf = db
            .table(table)
            .ok_or_else(|| self.read_error(table, engine::EngineError::NoSuchTable(*table)))?;
        let sources = cf.sources();
        let mut merger = engine::reader::RawMerger::new(&sources, range, &cmd.ranges);
        let mut out = Vec::new();
        while out.len() < limit {
            match merger
                .next_partition(cf.schema())
                .map_err(|e| self.read_error(table, e))?
            {
                Some(p) => out.push(p),
                None => break,
            }
        }
        Ok(out)
    }

    /// Raw read on the shard owning the key.
    pub(crate) async fn read_raw_routed(
        &self,
        table: [u8; 16],
        key: PartitionKey,
        cmd: ReadCommand,
    ) -> Result<Option<PartitionUpdate>, ErrorResponse> {
        match self.remote_owner(key.token) {
            None => self.replica_read_raw(&table, &key, &cmd),
            Some((owner, r)) => r.forward_read_raw(owner, table, key, cmd).await,
        }
    }

    /// Raw scan of this node: every shard's slice merged in ring order.
    pub(crate) async fn scan_raw_all_shards(
        &self,
        table: [u8; 16],
        range: &TokenRange,
        cmd: &ReadCommand,
        limit: usize,
    ) -> Result<Vec<PartitionUpdate>, ErrorResponse> {
        let Some(r) = self.router.as_ref().filter(|r| r.shard_count() > 1) else {
            return self.replica_scan_raw(&table, range, cmd, limit);
        };
        let me = r.shard_id();
        let mut all = Vec::new();
        for shard in 0..r.shard_count() {
            if shard == me {
                all.extend(self.replica_scan_raw(&table, range, cmd, limit)?);
            } else {
                all.extend(
                    r.forward_scan_raw(shard, table, range.clone(), cmd.clone(), limit)
                        .await?,
                );
            }
        }
        all.sort_by(|a, b| (a.key.token, &a.key.key).cmp(&(b.key.token, &b.key.key)));
        all.truncate(limit);
        Ok(all)
    }

    /// Replica path: scans this shard's partitions.
    pub fn replica_scan(
        &self,
        table: &[u8; 16],
        range: &TokenRange,
        cmd: &ReadCommand,
        limit: usize,
    ) -> Result<Vec<PartitionUpdate>, ErrorResponse> {
        self.stats.replica_ops.set(self.stats.replica_ops.get() + 1);
        self.db
            .borrow()
            .scan(table, range.clone(), cmd, limit)
            .map_err(|e| self.read_error(table, e))
    }

    pub async fn scan(
        &self,
        ks: &KeyspaceMetadata,
        table: &TableMetadata,
        range: &TokenRange,
        cmd: &ReadCommand,
        limit: usize,
        cl: Consistency,
    ) -> Result<Vec<PartitionUpdate>, ErrorResponse> {
        if self.is_clustered() && !ks.is_system {
            return self.scan_replicated(ks, table, range, cmd, limit, cl).await;
        }
        self.check(ks, cl, false)?;
        self.scan_shards(table, range, cmd, limit)
            .await
            .map_err(|e| self.single_node_read_failure(ks, cl, e))
    }

    /// A scan of every shard of this node, merged in ring order.
    async fn scan_shards(
        &self,
        table: &TableMetadata,
        range: &TokenRange,
        cmd: &ReadCommand,
        limit: usize,
    ) -> Result<Vec<PartitionUpdate>, ErrorResponse> {
        let Some(r) = self.router.as_ref().filter(|r| r.shard_count() > 1) else {
            return self.replica_scan(&table.id, range, cmd, limit);
        };
        // Every shard holds a slice of every token range: ask each for its
        // first `limit` partitions and merge them in ring order.
        let me = r.shard_id();
        let mut all = Vec::new();
        for shard in 0..r.shard_count() {
            let part = if shard == me {
                self.replica_scan(&table.id, range, cmd, limit)?
            } else {
                self.stats.forwarded.set(self.stats.forwarded.get() + 1);
                r.forward_scan(shard, table.id, range.clone(), cmd.clone(), limit)
                    .await?
            };
            all.extend(part);
        }
        all.sort_by(|a, b| (a.key.token, &a.key.key).cmp(&(b.key.token, &b.key.key)));
        all.truncate(limit);
        Ok(all)
    }

    /// TRUNCATE: every node of the cluster, every shard.
    pub async fn truncate(&self, table: &TableMetadata) -> Result<(), ErrorResponse> {
        if self.is_clustered() {
            let topo = self.topology();
            if let Some(down) = topo.endpoints.iter().find(|e| !e.alive) {
                return Err(ErrorResponse::new(
                    proto::error::DbError::TruncateError,
                    format!(
                        "Cannot perform truncate, some hosts are down: {}",
                        down.addr
                    ),
                ));
            }
            let remote = self.remote.borrow().clone();
            if let Some(remote) = remote {
                for e in topo.endpoints.iter().skip(1) {
                    remote
                        .truncate(e.addr, table.id, self.write_timeout * 5)
                        .await
                        .map_err(|m| {
                            ErrorResponse::new(
                                proto::error::DbError::TruncateError,
                                format!("Error during truncate: {m}"),
                            )
                        })?;
                }
            }
        }
        self.truncate_local(table).await
    }

    /// TRUNCATE on this node's shards.
    pub async fn truncate_local(&self, table: &TableMetadata) -> Result<(), ErrorResponse> {
        match self.router.as_ref().filter(|r| r.shard_count() > 1) {
            Some(r) => r.truncate_all(table.id).await,
            None => {
                self.replica_truncate(&table.id);
                Ok(())
            }
        }
    }

    /// Replica path: truncates a table on this shard.
    pub fn replica_truncate(&self, table: &[u8; 16]) {
        self.db.borrow_mut().truncate(table);
    }

    /// Replica path: applies a mutation on this shard.
    pub fn replica_apply(&self, m: &Mutation) -> Result<(), ErrorResponse> {
        self.stats.replica_ops.set(self.stats.replica_ops.get() + 1);
        self.apply_index_entries(m)?;
        self.db
            .borrow_mut()
            .apply(m)
            .map_err(|e| self.write_error(e))
    }

    /// Replica path with group commit: in `commitlog_sync: batch` the write
    /// is acknowledged once a sync covers it, and the writes arriving within
    /// `commitlog_sync_batch_window_in_ms` share that sync.
    pub async fn replica_apply_durable(&self, m: &Mutation) -> Result<(), ErrorResponse> {
        self.stats.replica_ops.set(self.stats.replica_ops.get() + 1);
        self.apply_index_entries(m)?;
        let pos = self
            .db
            .borrow_mut()
            .apply_deferred(m)
            .map_err(|e| self.write_error(e))?;
        match (pos, self.group_commit.window) {
            (Some(pos), Some(_)) => self
                .group_commit
                .wait(&self.group_commit, &self.db, pos)
                .await
                .map_err(|m| self.replica_write_failure(RequestFailureReason::Unknown, m)),
            _ => Ok(()),
        }
    }

    /// The content of a node-generated table as partitions, ordered by key.
    pub fn virtual_partitions(
        &self,
        table: &TableMetadata,
    ) -> Result<Vec<PartitionUpdate>, ErrorResponse> {
        let schema = self.node.schema();
        let rows = self
            .node
            .virtual_rows(&schema, &table.keyspace, &table.name)
            .ok_or_else(|| ErrorResponse::invalid(format!("unconfigured table {}", table.name)))?;
        Ok(rows_to_partitions(table, rows))
    }
}

/// Cassandra's `WriteType`, reported in WriteTimeout and WriteFailure: what
/// kind of write failed, which drivers' retry policies decide on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteType {
    Simple,
    /// A logged batch's writes (we keep no batchlog, so never BATCH_LOG).
    Batch,
    UnloggedBatch,
    Counter,
    Cas,
}

impl WriteType {
    /// The name on the wire (`<write_type>` of the native protocol).
    pub fn as_str(self) -> &'static str {
        match self {
            WriteType::Simple => "SIMPLE",
            WriteType::Batch => "BATCH",
            WriteType::UnloggedBatch => "UNLOGGED_BATCH",
            WriteType::Counter => "COUNTER",
            WriteType::Cas => "CAS",
        }
    }

    /// The write type of writes touching `partitions` partitions, as
    /// Cassandra decides it: a logged batch of more than one partition is
    /// applied atomically (BATCH); anything else is `StorageProxy.mutate`,
    /// SIMPLE for one partition and UNLOGGED_BATCH for more (a single
    /// statement with `IN` on the partition key included); counters are
    /// COUNTER.
    pub fn of_writes(mode: BatchKind, partitions: usize) -> WriteType {
        match mode {
            BatchKind::Counter => WriteType::Counter,
            _ if partitions <= 1 => WriteType::Simple,
            BatchKind::Logged => WriteType::Batch,
            BatchKind::Unlogged => WriteType::UnloggedBatch,
        }
    }

    /// The write type of a read-modify-write statement: CAS only for a
    /// real condition (IF ...), COUNTER for counters, SIMPLE for the rest
    /// (list element operations read, but are not conditional).
    pub fn of_read_write(conditional: bool, counter: bool) -> WriteType {
        if conditional {
            WriteType::Cas
        } else if counter {
            WriteType::Counter
        } else {
            WriteType::Simple
        }
    }
}

/// Distinct partitions (keyspace, key) among `mutations` (Cassandra's
/// `Mutation` covers every table of one partition key in one keyspace).
fn partition_count<'a>(
    mutations: impl Iterator<Item = (&'a str, &'a engine::mutation::PartitionKey)>,
) -> usize {
    let mut seen = std::collections::HashSet::new();
    for m in mutations {
        seen.insert(m);
    }
    seen.len()
}

/// The `RequestFailureReason` a replica reports for an engine error.
pub(crate) fn failure_reason(e: &engine::EngineError) -> RequestFailureReason {
    match e {
        // The replica does not know the table, or the data does not fit
        // its version of it: Cassandra's IncompatibleSchemaException.
        engine::EngineError::NoSuchTable(_) | engine::EngineError::InvalidMutation(_) => {
            RequestFailureReason::IncompatibleSchema
        }
        _ => RequestFailureReason::Unknown,
    }
}

/// The reason and cause of a replica failure reported by the replica path
/// (`None`: `e` is not a replica failure but, e.g., invalid input or an
/// overloaded shard, answered as it is).
pub(crate) fn replica_failure(e: &ErrorResponse) -> Option<(RequestFailureReason, &str)> {
    match &e.error {
        DbError::WriteFailure { reason_map, .. } | DbError::ReadFailure { reason_map, .. } => {
            let code = reason_map.first().map(|(_, c)| *c).unwrap_or(0);
            Some((RequestFailureReason::from_code(code), &e.message))
        }
        _ => None,
    }
}

/// One replica's failure, as the coordinator reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReplicaFailure {
    pub addr: std::net::IpAddr,
    pub reason: RequestFailureReason,
    /// What the replica said (e.g. "commitlog failure: ..."): operators
    /// read it in the error message.
    pub cause: String,
}

/// "Operation failed - received 1 responses and 2 failures: UNKNOWN from
/// 127.0.10.2 (commitlog failure: ...), ..." (Cassandra's text, plus each
/// replica's cause).
fn failure_message(received: usize, failures: &[ReplicaFailure]) -> String {
    let list: Vec<String> = failures
        .iter()
        .map(|f| {
            if f.cause.is_empty() {
                format!("{} from {}", f.reason, f.addr)
            } else {
                format!("{} from {} ({})", f.reason, f.addr, f.cause)
            }
        })
        .collect();
    format!(
        "Operation failed - received {received} responses and {} failures: {}",
        failures.len(),
        list.join(", ")
    )
}

fn reason_map(failures: &[ReplicaFailure]) -> Vec<(std::net::IpAddr, u16)> {
    failures.iter().map(|f| (f.addr, f.reason.code())).collect()
}

/// WriteFailure (0x1500): replicas failed a write and `cl` cannot be met.
pub(crate) fn write_failure(
    cl: Consistency,
    received: usize,
    block_for: usize,
    failures: &[ReplicaFailure],
    write_type: &str,
) -> ErrorResponse {
    ErrorResponse::new(
        DbError::WriteFailure {
            consistency: cl,
            received: received as i32,
            block_for: block_for as i32,
            num_failures: failures.len() as i32,
            reason_map: reason_map(failures),
            write_type: write_type.to_string(),
        },
        failure_message(received, failures),
    )
}

/// ReadFailure (0x1300): replicas failed a read and `cl` cannot be met.
pub(crate) fn read_failure(
    cl: Consistency,
    received: usize,
    block_for: usize,
    failures: &[ReplicaFailure],
    data_present: bool,
) -> ErrorResponse {
    ErrorResponse::new(
        DbError::ReadFailure {
            consistency: cl,
            received: received as i32,
            block_for: block_for as i32,
            num_failures: failures.len() as i32,
            reason_map: reason_map(failures),
            data_present,
        },
        failure_message(received, failures),
    )
}

/// How the replica path reports errors: an engine failure is this
/// replica's failure (a WriteFailure or ReadFailure naming this node and
/// the reason, with the engine's message, that a coordinator rewrites with
/// its consistency level and counts); input errors stay what they are.
impl StorageProxy {
    fn local_addr(&self) -> std::net::IpAddr {
        self.topology.borrow().local().addr
    }

    /// This replica failed a write (`message` names the cause).
    pub(crate) fn replica_write_failure(
        &self,
        reason: RequestFailureReason,
        message: String,
    ) -> ErrorResponse {
        ErrorResponse::new(
            DbError::WriteFailure {
                consistency: Consistency::One,
                received: 0,
                block_for: 1,
                num_failures: 1,
                reason_map: vec![(self.local_addr(), reason.code())],
                write_type: "SIMPLE".into(),
            },
            message,
        )
    }

    /// This replica failed a read (`message` names the cause).
    pub(crate) fn replica_read_failure(
        &self,
        reason: RequestFailureReason,
        message: String,
    ) -> ErrorResponse {
        ErrorResponse::new(
            DbError::ReadFailure {
                consistency: Consistency::One,
                received: 0,
                block_for: 1,
                num_failures: 1,
                reason_map: vec![(self.local_addr(), reason.code())],
                data_present: false,
            },
            message,
        )
    }

    /// An engine error of the write path.
    pub(crate) fn write_error(&self, e: engine::EngineError) -> ErrorResponse {
        match e {
            // Input the node refuses, not a failure of the replica.
            engine::EngineError::MutationTooLarge { .. } => {
                ErrorResponse::invalid(format!("Rejecting mutation: {e}"))
            }
            // The message starts "commitlog failure:" (commit_failure_policy).
            e @ (engine::EngineError::CommitLogPoisoned(_)
            | engine::EngineError::CommitLogSegmentUnavailable(_)
            | engine::EngineError::CommitLogWriteFailed(_)) => {
                self.replica_write_failure(failure_reason(&e), e.to_string())
            }
            e => self.replica_write_failure(failure_reason(&e), format!("write failed: {e}")),
        }
    }

    /// An engine error of the read path.
    pub(crate) fn read_error(&self, table: &[u8; 16], e: engine::EngineError) -> ErrorResponse {
        self.replica_read_failure(
            failure_reason(&e),
            format!(
                "storage error on table {}: {e}",
                engine::error::format_table_id(table)
            ),
        )
    }

    /// On a single node, this node's failure is the whole answer: the
    /// consistency level cannot be met (Cassandra: blockFor + failures >
    /// replicas).
    fn single_node_write_failure(
        &self,
        ks: &KeyspaceMetadata,
        cl: Consistency,
        write_type: &str,
        e: ErrorResponse,
    ) -> ErrorResponse {
        match self.single_node_failure(ks, cl, e) {
            Ok((failure, block_for)) => write_failure(cl, 0, block_for, &[failure], write_type),
            Err(e) => e,
        }
    }

    fn single_node_read_failure(
        &self,
        ks: &KeyspaceMetadata,
        cl: Consistency,
        e: ErrorResponse,
    ) -> ErrorResponse {
        match self.single_node_failure(ks, cl, e) {
            Ok((failure, block_for)) => read_failure(cl, 0, block_for, &[failure], false),
            Err(e) => e,
        }
    }

    /// This node's failure and the level's block_for, when `e` is a replica
    /// failure; otherwise `e` itself (an input error, answered as is).
    fn single_node_failure(
        &self,
        ks: &KeyspaceMetadata,
        cl: Consistency,
        e: ErrorResponse,
    ) -> Result<(ReplicaFailure, usize), ErrorResponse> {
        let Some((reason, cause)) = replica_failure(&e) else {
            return Err(e);
        };
        let failure = ReplicaFailure {
            addr: self.local_addr(),
            reason,
            cause: cause.to_string(),
        };
        let block_for = crate::service::replication::block_for(
            &Replication::of(ks),
            cl,
            &self.node.local_dc(),
            1,
        );
        Ok((failure, block_for))
    }
}

/// Batch-mode group commit of one shard: writers wait for a sync that
/// covers their commitlog position; one sync per window serves them all.
pub struct GroupCommit {
    /// `Some(window)` in `commitlog_sync: batch`.
    pub window: Option<std::time::Duration>,
    waiters: RefCell<
        Vec<(
            engine::commitlog::ReplayPosition,
            glommio::channels::local_channel::LocalSender<Result<(), String>>,
        )>,
    >,
    running: Cell<bool>,
}

impl GroupCommit {
    pub fn new(window: Option<std::time::Duration>) -> Rc<GroupCommit> {
        Rc::new(GroupCommit {
            window,
            waiters: RefCell::new(Vec::new()),
            running: Cell::new(false),
        })
    }

    async fn wait(
        &self,
        me: &Rc<GroupCommit>,
        db: &Rc<RefCell<Database>>,
        pos: engine::commitlog::ReplayPosition,
    ) -> Result<(), String> {
        let (tx, rx) = glommio::channels::local_channel::new_bounded(1);
        self.waiters.borrow_mut().push((pos, tx));
        if !self.running.replace(true) {
            let gc = me.clone();
            let db = db.clone();
            glommio::spawn_local(async move { gc.sync_loop(db).await }).detach();
        }
        match rx.recv().await {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(format!("commitlog sync failed: {e}")),
            None => Err("commitlog sync abandoned".to_string()),
        }
    }

    async fn sync_loop(&self, db: Rc<RefCell<Database>>) {
        let window = self.window.unwrap_or_default();
        loop {
            if self.waiters.borrow().is_empty() {
                self.running.set(false);
                return;
            }
            // Let the writes of this window gather, then sync them together.
            if window.is_zero() {
                crate::shard::yield_now().await;
            } else {
                glommio::timer::sleep(window).await;
            }
            let synced = db.borrow_mut().sync_commitlog();
            let target = match synced {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.release(None, Ok(()));
                    continue;
                }
                Err(e) => {
                    self.release(None, Err(e.to_string()));
                    continue;
                }
            };
            // Poll for completion: no blocking wake-ups on the reactor.
            loop {
                // Never hold the borrow across the sleep below.
                let durable = db.borrow_mut().commitlog_durable_position();
                match durable {
                    Ok(Some(d)) if d >= target => {
                        self.release(Some(d), Ok(()));
                        break;
                    }
                    Ok(_) => glommio::timer::sleep(std::time::Duration::from_micros(100)).await,
                    Err(e) => {
                        self.release(None, Err(e.to_string()));
                        break;
                    }
                }
            }
        }
    }

    /// Answers the waiters covered by `durable` (all of them on error).
    fn release(&self, durable: Option<engine::commitlog::ReplayPosition>, r: Result<(), String>) {
        self.waiters.borrow_mut().retain(|(pos, tx)| {
            let done = match (&r, durable) {
                (Err(_), _) | (Ok(()), None) => true,
                (Ok(()), Some(d)) => *pos <= d,
            };
            if done {
                let _ = tx.try_send(r.clone());
            }
            !done
        });
    }
}

/// Turns value rows (in `TableMetadata::columns` order) into partitions.
pub fn rows_to_partitions(
    table: &TableMetadata,
    rows: Vec<Vec<Option<CqlValue>>>,
) -> Vec<PartitionUpdate> {
    let schema = crate::cql3::statements::engine_schema(table);
    let ser = |v: &Option<CqlValue>| -> Option<Bytes> {
        v.as_ref().map(|v| {
            let mut b = Vec::new();
            proto::value::serialize(v, &mut b);
            Bytes::from(b)
        })
    };
    let mut parts: BTreeMap<Bytes, PartitionUpdate> = BTreeMap::new();
    for row in rows {
        let pk: Vec<Bytes> = row[..table.partition_key_len]
            .iter()
            .map(|v| ser(v).unwrap_or_default())
            .collect();
        let refs: Vec<&[u8]> = pk.iter().map(|b| &b[..]).collect();
        let key = crate::dht::murmur3::serialize_partition_key(&refs);
        let token = crate::dht::murmur3::murmur3_token(&key);
        let ck: Vec<Bytes> = row
            [table.partition_key_len..table.partition_key_len + table.clustering_key_len]
            .iter()
            .map(|v| ser(v).unwrap_or_default())
            .collect();
        let mut r = Row {
            liveness: Some(engine::mutation::LivenessInfo {
                timestamp: 0,
                ttl: 0,
                expiry: 0,
            }),
            deletion: None,
            columns: Vec::new(),
        };
        let mut static_row = Row::default();
        for (i, col) in table
            .columns
            .iter()
            .enumerate()
            .skip(table.partition_key_len + table.clustering_key_len)
        {
            if let Some(v) = ser(&row[i]) {
                let data = ColumnData::Simple(DataCell {
                    timestamp: 0,
                    ttl: 0,
                    expiry: 0,
                    value: Some(v),
                });
                if col.kind == ColumnKind::Static {
                    static_row.columns.push((col.id, data));
                } else {
                    r.columns.push((col.id, data));
                }
            }
        }
        r.columns.sort_by_key(|(id, _)| *id);
        let p = parts
            .entry(key.clone())
            .or_insert_with(|| PartitionUpdate::new(PartitionKey { token, key }));
        if !static_row.columns.is_empty() {
            static_row.columns.sort_by_key(|(id, _)| *id);
            p.static_row = Some(static_row);
        }
        p.rows.push((ck, r));
    }
    let mut out: Vec<PartitionUpdate> = parts.into_values().collect();
    for p in &mut out {
        p.rows.sort_by(|a, b| schema.compare_clustering(&a.0, &b.0));
    }
    out
}

/// Local secondary index maintenance and read-modify-write on the owner
/// shard (lightweight transactions, counters, list element operations).
impl StorageProxy {
    /// Replica path: writes the index rows of base mutation `m` (before the
    /// base row: a crash in between leaves an index row the read re-check
    /// drops, never a base row its index misses).
    pub(crate) fn apply_index_entries(&self, m: &Mutation) -> Result<(), ErrorResponse> {
        let schema = self.node.schema();
        let Some(indexes) = self.indexes.for_table(&schema, &m.table) else {
            return Ok(());
        };
        let muts = crate::index::index_mutations(&indexes, m);
        let mut db = self.db.borrow_mut();
        for im in &muts {
            if db.has_table(&im.table) {
                db.apply_deferred(im).map_err(|e| self.write_error(e))?;
            }
        }
        Ok(())
    }

    /// Consistency check of a read served by this node's shards.
    pub(crate) fn check_read(
        &self,
        ks: &KeyspaceMetadata,
        cl: Consistency,
    ) -> Result<(), ErrorResponse> {
        self.check(ks, cl, false)
    }

    /// Whether reads go to other nodes (index lookups then scan instead).
    pub(crate) fn clustered(&self) -> bool {
        self.is_clustered()
    }

    /// Runs `f` with the `StorageProxy` of `shard` (this one included).
    pub(crate) async fn on_shard<T, F>(&self, shard: usize, f: F) -> Result<T, ErrorResponse>
    where
        T: Send + 'static,
        F: FnOnce(Rc<StorageProxy>) -> Pin<Box<dyn Future<Output = Result<T, ErrorResponse>>>>
            + Send
            + 'static,
    {
        let Some(r) = self.router.as_ref() else {
            return Err(ErrorResponse::server("no shard router"));
        };
        let task: ProxyTask = Box::new(move |p: Rc<StorageProxy>| {
            Box::pin(async move { Box::new(f(p).await) as Box<dyn std::any::Any + Send> })
        });
        let any = r.forward_task(shard, task).await?;
        match any.downcast::<Result<T, ErrorResponse>>() {
            Ok(r) => *r,
            Err(_) => Err(ErrorResponse::server("cross-shard task: unexpected reply")),
        }
    }

    /// Read-check-write of one partition as a single operation on the shard
    /// that owns it: `f` gets the partition's current live content (read
    /// at `now`) and returns the mutations to apply and a result.
    ///
    /// On one node the read and the writes run on the owner shard with no
    /// suspension point in between, so concurrent operations on the same
    /// partition — wherever they arrived — serialise. In a cluster,
    /// counter updates go through a leader replica that does the same on
    /// its owner shard (`service::counters`), and everything else
    /// (conditions, list element operations) is a Paxos round at `serial`
    /// whose commit is written at `cl` (`service::paxos`); `f` may then run
    /// more than once, when a round loses to a concurrent one.
    #[allow(clippy::too_many_arguments)]
    pub async fn read_modify_write<T, F>(
        &self,
        ks: &KeyspaceMetadata,
        table: &TableMetadata,
        key: PartitionKey,
        now: i32,
        cl: Consistency,
        serial: Consistency,
        write_type: WriteType,
        f: F,
    ) -> Result<T, ErrorResponse>
    where
        T: Send + 'static,
        F: Fn(Option<PartitionUpdate>) -> Result<(Vec<Mutation>, T), ErrorResponse>
            + Send
            + 'static,
    {
        if self.is_clustered() && !ks.is_system {
            if table.is_counter {
                return self.counter_write(ks, table, key, cl, f).await;
            }
            return self.cas(ks, table, key, now, cl, serial, f).await;
        }
        self.check(ks, cl, true)?;
        let id = table.id;
        // The CQL layer says what this is (`WriteType::of_read_write`):
        // CAS only for conditions, SIMPLE for list element operations.
        let write_type = write_type.as_str();
        match self.remote_owner(key.token) {
            None => self.replica_read_modify_write(id, key, now, f).await,
            Some((owner, _)) => {
                self.on_shard(owner, move |p| {
                    Box::pin(async move { p.replica_read_modify_write(id, key, now, f).await })
                })
                .await
            }
        }
        .map_err(|e| self.single_node_write_failure(ks, cl, write_type, e))
    }

    /// Replica path of [`StorageProxy::read_modify_write`]: must run on the
    /// shard owning `key`.
    pub async fn replica_read_modify_write<T, F>(
        &self,
        table: [u8; 16],
        key: PartitionKey,
        now: i32,
        f: F,
    ) -> Result<T, ErrorResponse>
    where
        F: FnOnce(Option<PartitionUpdate>) -> Result<(Vec<Mutation>, T), ErrorResponse>,
    {
        self.stats.replica_ops.set(self.stats.replica_ops.get() + 1);
        // From here to the last apply_deferred there is no await: nothing
        // else runs on this shard in between.
        let current = self
            .db
            .borrow()
            .read_partition(&table, &key, &ReadCommand::full(now))
            .map_err(|e| self.read_error(&table, e))?;
        let (muts, out) = f(current)?;
        if muts.iter().any(|m| m.update.key != key) {
            return Err(ErrorResponse::server(
                "internal error: read-modify-write outside its partition",
            ));
        }
        let mut last = None;
        for m in &muts {
            self.apply_index_entries(m)?;
            let pos = self
                .db
                .borrow_mut()
                .apply_deferred(m)
                .map_err(|e| self.write_error(e))?;
            last = pos.or(last);
        }
        self.wait_durable(last).await?;
        Ok(out)
    }
}

#[cfg(test)]
mod write_type_tests {
    use super::*;

    fn key(b: &[u8]) -> engine::mutation::PartitionKey {
        engine::mutation::PartitionKey {
            token: b[0] as i64,
            key: Bytes::copy_from_slice(b),
        }
    }

    #[test]
    fn batches_follow_cassandra() {
        use WriteType::*;
        assert_eq!(WriteType::of_writes(BatchKind::Unlogged, 2), UnloggedBatch);
        assert_eq!(WriteType::of_writes(BatchKind::Logged, 2), Batch);
        assert_eq!(WriteType::of_writes(BatchKind::Counter, 2), Counter);
        assert_eq!(WriteType::of_writes(BatchKind::Counter, 1), Counter);
        // One partition: Cassandra applies even a logged batch as a plain write.
        assert_eq!(WriteType::of_writes(BatchKind::Logged, 1), Simple);
        assert_eq!(WriteType::of_writes(BatchKind::Unlogged, 1), Simple);
        assert_eq!(WriteType::of_writes(BatchKind::Unlogged, 0), Simple);
        assert_eq!(UnloggedBatch.as_str(), "UNLOGGED_BATCH");
        assert_eq!(Batch.as_str(), "BATCH");
    }

    #[test]
    fn read_writes_are_cas_only_when_conditional() {
        assert_eq!(WriteType::of_read_write(true, false), WriteType::Cas);
        assert_eq!(WriteType::of_read_write(false, true), WriteType::Counter);
        // A list element operation reads, but is a plain write.
        assert_eq!(WriteType::of_read_write(false, false), WriteType::Simple);
    }

    #[test]
    fn partitions_are_keyspace_and_key() {
        let (a, b) = (key(b"a"), key(b"b"));
        assert_eq!(partition_count([("ks", &a), ("ks", &a)].into_iter()), 1);
        assert_eq!(partition_count([("ks", &a), ("ks", &b)].into_iter()), 2);
        assert_eq!(partition_count([("ks", &a), ("other", &a)].into_iter()), 2);
        assert_eq!(partition_count(std::iter::empty()), 0);
    }
}
