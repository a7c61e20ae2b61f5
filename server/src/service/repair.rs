//! Anti-entropy repair (`nodetool repair`), Cassandra's full repair done
//! the Merkle-tree way, from the node that runs it.
//!
//! For every keyspace (or the one named) and every token range of the ring
//! this node replicates (`-pr`: only the ranges whose end token is one of
//! its own), and for every table, the repairing node:
//!
//! 1. asks every replica of the range — itself included — for a
//!    [`MerkleTree`] of the range (`Verb::RepairReq`, message `TREE`): the
//!    range is cut into `2^depth` leaves of equal token width, and a leaf's
//!    hash is the XOR of `digest_of` (MD5 of the wire encoding of the
//!    raw, tombstone-carrying partition) over the partitions it holds, with
//!    their count. The replica builds it from a paged scan, one page of
//!    [`streaming::PAGE_PARTITIONS`] partitions in memory at a time.
//! 2. compares the trees leaf by leaf (the roots first: equal roots, equal
//!    ranges). A mismatching leaf that holds more than
//!    [`MAX_LEAF_PARTITIONS`] partitions on some replica is not streamed
//!    whole: a finer tree is asked for that leaf alone, down to
//!    [`MAX_DESCENT`] levels — so each streamed subrange holds a bounded
//!    number of partitions.
//! 3. for each mismatching leaf, reads the partitions of every replica in
//!    pages (a k-way merge by key, `StreamReq FETCH`), merges the versions
//!    of each key by last-write-wins, and sends the merged partition to
//!    every replica whose data differs from it (`StreamReq APPLY`, the
//!    replica write path: commitlog, then memtable). Tombstones travel like
//!    any data, so deletes are repaired too.
//!
//! Every replica of a range must be alive, as in Cassandra. One repair
//! runs at a time on a node; it can be stopped
//! (`nodetool stop`-like `POST /storage_service/force_terminate_repair`,
//! or the node stopping), between pages.

use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use engine::mutation::{PartitionUpdate, TableId};

use super::cluster::{handler, unstatus, ClusterServices};
use super::replication::digest_of;
use super::streaming;
use super::topology::{status_head, strategy, Topology};
use crate::locator::ReplicationStrategy;
use crate::net::{MessagingService, Verb};
use crate::node::services;
use crate::schema::{KeyspaceMetadata, TableMetadata};
use crate::shard::ShardContext;

/// Leaves of a first-level tree: `2^TREE_DEPTH`.
pub const TREE_DEPTH: u8 = 8;
/// Deepest tree a replica builds on request.
pub const MAX_TREE_DEPTH: u8 = 16;
/// A mismatching leaf with more partitions than this (on any replica) is
/// split by a finer tree before it is streamed.
pub const MAX_LEAF_PARTITIONS: u32 = 64;
/// How many times a leaf may be split into a finer tree.
pub const MAX_DESCENT: u32 = 3;
/// How long a replica may take to build one tree.
pub const TREE_TIMEOUT: Duration = Duration::from_secs(120);

const TREE: u8 = 0;

// --- the Merkle tree ---------------------------------------------------------

/// One leaf: the XOR of its partitions' digests, and how many there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Leaf {
    pub hash: [u8; 16],
    pub partitions: u32,
}

/// The hash tree of one token range `(start, end]` (the whole ring when
/// `start == end`) of one table on one replica: `leaves.len()` leaves of
/// equal token width, in ring order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    pub start: i64,
    pub end: i64,
    pub leaves: Vec<Leaf>,
}

/// Tokens in `(start, end]`: `2^64` for the whole ring.
fn width(start: i64, end: i64) -> u128 {
    if start == end {
        1u128 << 64
    } else {
        end.wrapping_sub(start) as u64 as u128
    }
}

impl MerkleTree {
    /// An empty tree of `(start, end]` with `2^depth` leaves, fewer when
    /// the range holds fewer tokens (every leaf holds at least one).
    pub fn new(start: i64, end: i64, depth: u8) -> MerkleTree {
        let n = (1u128 << depth.min(MAX_TREE_DEPTH)).min(width(start, end)) as usize;
        MerkleTree {
            start,
            end,
            leaves: vec![Leaf::default(); n],
        }
    }

    /// The leaf holding `token` (which must lie in the range).
    pub fn leaf_of(&self, token: i64) -> usize {
        let offset = token.wrapping_sub(self.start).wrapping_sub(1) as u64 as u128;
        let n = self.leaves.len() as u128;
        ((offset * n) / width(self.start, self.end)).min(n - 1) as usize
    }

    /// The token range `(start, end]` of leaf `i`.
    pub fn leaf_range(&self, i: usize) -> (i64, i64) {
        let (w, n) = (width(self.start, self.end), self.leaves.len() as u128);
        let cut = |k: u128| self.start.wrapping_add((k * w).div_ceil(n) as u64 as i64);
        (cut(i as u128), cut(i as u128 + 1))
    }

    /// Adds one partition.
    pub fn add(&mut self, p: &PartitionUpdate) {
        let i = self.leaf_of(p.key.token);
        let d = digest_of(Some(p));
        let leaf = &mut self.leaves[i];
        for (a, b) in leaf.hash.iter_mut().zip(d) {
            *a ^= b;
        }
        leaf.partitions = leaf.partitions.saturating_add(1);
    }

    /// The root hash: leaves hashed pairwise (MD5 of both children) up to
    /// one.
    pub fn root(&self) -> [u8; 16] {
        let mut level: Vec<[u8; 16]> = self
            .leaves
            .iter()
            .map(|l| {
                let mut b = [0u8; 20];
                b[..16].copy_from_slice(&l.hash);
                b[16..].copy_from_slice(&l.partitions.to_be_bytes());
                crate::schema::digest::md5(&b)
            })
            .collect();
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|c| {
                    let mut b = Vec::with_capacity(32);
                    for h in c {
                        b.extend_from_slice(h);
                    }
                    crate::schema::digest::md5(&b)
                })
                .collect();
        }
        level.first().copied().unwrap_or([0; 16])
    }

    /// `[i64 start][i64 end][u32 n] n × ([16 hash][u32 partitions])`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20 + self.leaves.len() * 20);
        out.extend_from_slice(&self.start.to_be_bytes());
        out.extend_from_slice(&self.end.to_be_bytes());
        out.extend_from_slice(&(self.leaves.len() as u32).to_be_bytes());
        for l in &self.leaves {
            out.extend_from_slice(&l.hash);
            out.extend_from_slice(&l.partitions.to_be_bytes());
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<MerkleTree, String> {
        let mut r = Reader { b, pos: 0 };
        let start = r.i64()?;
        let end = r.i64()?;
        let n = r.u32()? as usize;
        if n == 0 || n > 1 << MAX_TREE_DEPTH || n as u128 > width(start, end) {
            return Err(format!("bad Merkle tree size {n}"));
        }
        let mut leaves = Vec::with_capacity(n);
        for _ in 0..n {
            let hash = r.take(16)?.try_into().map_err(|_| "bad leaf")?;
            leaves.push(Leaf {
                hash,
                partitions: r.u32()?,
            });
        }
        Ok(MerkleTree { start, end, leaves })
    }
}

/// Leaves where the trees differ (they must cover the same range with the
/// same number of leaves).
pub fn differences(trees: &[MerkleTree]) -> Vec<usize> {
    let Some(first) = trees.first() else {
        return Vec::new();
    };
    if trees.iter().all(|t| t.root() == first.root()) {
        return Vec::new();
    }
    (0..first.leaves.len())
        .filter(|&i| trees.iter().any(|t| t.leaves.get(i) != first.leaves.get(i)))
        .collect()
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let s = self
            .b
            .get(self.pos..self.pos.saturating_add(n))
            .ok_or("truncated repair message")?;
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().map_err(|_| "bad u32")?,
        ))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().map_err(|_| "bad i64")?,
        ))
    }
}

// --- the replica side ----------------------------------------------------------

/// Registers `Verb::RepairReq` (called from the cluster's verb setup).
pub fn register_verbs(ms: &Rc<MessagingService>, ctx: &ShardContext) {
    let c = ctx.clone();
    ms.register(
        Verb::RepairReq,
        handler(move |_from, payload| {
            let ctx = c.clone();
            async move {
                let mut r = Reader {
                    b: &payload,
                    pos: 0,
                };
                match r.u8()? {
                    TREE => {
                        let table: TableId = r.take(16)?.try_into().map_err(|_| "bad table id")?;
                        let start = r.i64()?;
                        let end = r.i64()?;
                        let depth = r.u8()?;
                        if depth > MAX_TREE_DEPTH {
                            return Err(format!("Merkle tree depth {depth} is too deep"));
                        }
                        let tree = local_tree(&ctx, table, start, end, depth).await?;
                        Ok(Bytes::from(tree.encode()))
                    }
                    k => Err(format!("unknown repair message {k}")),
                }
            }
        }),
    );
}

/// This node's tree of `table` over `(start, end]`, from a paged scan.
async fn local_tree(
    ctx: &ShardContext,
    table: TableId,
    start: i64,
    end: i64,
    depth: u8,
) -> Result<MerkleTree, String> {
    let mut tree = MerkleTree::new(start, end, depth);
    for mut range in streaming::token_ranges(start, end) {
        loop {
            if ctx.is_stopping() {
                return Err("the node is stopping".into());
            }
            let page = streaming::read_page(ctx, table, &range, streaming::PAGE_PARTITIONS).await?;
            for p in &page {
                tree.add(p);
            }
            match page.last() {
                Some(last) if page.len() == streaming::PAGE_PARTITIONS => {
                    streaming::resume_after(&mut range, last)
                }
                _ => break,
            }
        }
    }
    Ok(tree)
}

// --- the repairing node ------------------------------------------------------

/// What `nodetool repair` asked for.
#[derive(Debug, Clone, Default)]
pub struct RepairOptions {
    /// `None`: every non-system keyspace.
    pub keyspace: Option<String>,
    /// Empty: every table of the keyspace(s).
    pub tables: Vec<String>,
    /// `-pr`: only the ranges whose end token is this node's.
    pub primary_range: bool,
}

/// What a repair did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairSummary {
    pub keyspaces: Vec<String>,
    /// (table, token range) pairs whose trees were compared.
    pub ranges_checked: u64,
    /// ... of which the replicas disagreed.
    pub ranges_mismatched: u64,
    /// Mismatching subranges (leaves) that were synchronised.
    pub subranges_synced: u64,
    /// Partitions sent to a replica that lacked (part of) them.
    pub partitions_streamed: u64,
}

/// Shard 0's repair state: one repair at a time, and its stop switch.
#[derive(Default)]
pub struct RepairService {
    running: Cell<bool>,
    stop: Cell<bool>,
    progress: RefCell<String>,
}

const REPAIR_SERVICE: u64 = u64::MAX - 0x5245;

/// The repair service of shard 0 (made on first use).
pub fn repair_service(ctx: &ShardContext) -> Rc<RepairService> {
    if let Some(s) = ctx
        .service(REPAIR_SERVICE)
        .and_then(|s| s.downcast::<RepairService>().ok())
    {
        return s;
    }
    let s = Rc::new(RepairService::default());
    ctx.insert_service(REPAIR_SERVICE, s.clone());
    s
}

impl RepairService {
    /// Asks the running repair to stop (it fails at its next page).
    pub fn terminate(&self) -> bool {
        if self.running.get() {
            self.stop.set(true);
        }
        self.running.get()
    }

    /// What the running repair does, if one runs.
    pub fn progress(&self) -> Option<String> {
        self.running.get().then(|| self.progress.borrow().clone())
    }

    fn check_stop(&self, ctx: &ShardContext) -> Result<(), String> {
        if self.stop.get() {
            return Err("repair was terminated (force_terminate_repair)".into());
        }
        if ctx.is_stopping() {
            return Err("repair stopped: the node is shutting down".into());
        }
        Ok(())
    }
}

/// A range to repair: `(start, end]` and its replicas' addresses.
struct Job {
    start: i64,
    end: i64,
    replicas: Vec<IpAddr>,
}

/// The ranges of `ks` this node replicates, with their replicas; errors
/// when one of them is down.
fn plan(topo: &Topology, ks: &KeyspaceMetadata, primary_range: bool) -> Result<Vec<Job>, String> {
    let s = strategy(ks);
    if s == ReplicationStrategy::Local {
        return Ok(Vec::new());
    }
    let tokens = topo.ring.tokens();
    let n = tokens.len();
    let mut jobs = Vec::new();
    for i in 0..n {
        let (start, end) = (tokens[(i + n - 1) % n], tokens[i]);
        let reps = topo.ring.natural_replicas(&s, end);
        if !reps.contains(&0) || (primary_range && !topo.local().tokens.contains(&end)) {
            continue;
        }
        for &r in &reps {
            let e = &topo.endpoints[r];
            if !e.alive {
                return Err(format!(
                    "Cannot proceed on repair because a neighbor (/{}) is dead: session failed",
                    e.addr
                ));
            }
            if status_head(&e.status) != "NORMAL" {
                return Err(format!(
                    "Cannot proceed on repair because a neighbor (/{}) is {}: session failed",
                    e.addr, e.status
                ));
            }
        }
        if reps.len() < 2 {
            continue; // one replica: nothing to compare
        }
        jobs.push(Job {
            start,
            end,
            replicas: reps.iter().map(|&r| topo.endpoints[r].addr).collect(),
        });
    }
    Ok(jobs)
}

/// `nodetool repair`: blocks until every selected range is repaired.
pub async fn repair(c: &Rc<ClusterServices>, opts: RepairOptions) -> Result<RepairSummary, String> {
    let rs = repair_service(&c.ctx);
    if rs.running.get() {
        return Err("a repair is already running on this node".into());
    }
    rs.running.set(true);
    rs.stop.set(false);
    let r = run(c, &rs, opts).await;
    rs.running.set(false);
    rs.stop.set(false);
    r
}

async fn run(
    c: &Rc<ClusterServices>,
    rs: &RepairService,
    opts: RepairOptions,
) -> Result<RepairSummary, String> {
    let s = services(&c.ctx).map_err(|e| e.message)?;
    let schema = s.migrations.schema();
    let topo = s.proxy.topology();
    let keyspaces: Vec<Arc<KeyspaceMetadata>> = match &opts.keyspace {
        Some(name) => {
            let ks = schema
                .keyspaces
                .get(name)
                .ok_or_else(|| format!("Keyspace {name} does not exist"))?;
            vec![ks.clone()]
        }
        None => {
            if !opts.tables.is_empty() {
                return Err("tables can only be named with a keyspace".into());
            }
            schema
                .keyspaces
                .values()
                .filter(|k| !k.is_system)
                .cloned()
                .collect()
        }
    };
    let started = Instant::now();
    let mut sum = RepairSummary::default();
    for ks in keyspaces {
        let tables: Vec<Arc<TableMetadata>> = if opts.tables.is_empty() {
            ks.tables
                .values()
                .filter(|t| !t.is_virtual)
                .cloned()
                .collect()
        } else {
            opts.tables
                .iter()
                .map(|t| {
                    ks.tables
                        .get(t)
                        .cloned()
                        .ok_or_else(|| format!("Unknown table {t} in keyspace {}", ks.name))
                })
                .collect::<Result<_, _>>()?
        };
        let jobs = plan(&topo, &ks, opts.primary_range)?;
        log::info!(
            "repair of keyspace {}: {} ranges x {} tables{}",
            ks.name,
            jobs.len(),
            tables.len(),
            if opts.primary_range {
                " (primary ranges)"
            } else {
                ""
            }
        );
        sum.keyspaces.push(ks.name.clone());
        for (k, job) in jobs.iter().enumerate() {
            for table in &tables {
                *rs.progress.borrow_mut() = format!(
                    "keyspace {} table {}: range {} of {} ({},{}]",
                    ks.name,
                    table.name,
                    k + 1,
                    jobs.len(),
                    job.start,
                    job.end
                );
                let engine = crate::cql3::statements::engine_schema(table);
                sum.ranges_checked += 1;
                let before = sum.subranges_synced;
                repair_range(c, rs, &engine, table.id, job, &mut sum).await?;
                if sum.subranges_synced > before {
                    sum.ranges_mismatched += 1;
                }
            }
        }
    }
    log::info!(
        "repair finished in {:.1} s: {} ranges checked, {} mismatched, {} subranges synced, {} partitions streamed",
        started.elapsed().as_secs_f64(),
        sum.ranges_checked,
        sum.ranges_mismatched,
        sum.subranges_synced,
        sum.partitions_streamed
    );
    Ok(sum)
}

/// Asks `to` (or this node) for its tree of `(start, end]`.
async fn tree_of(
    c: &ClusterServices,
    to: IpAddr,
    table: TableId,
    start: i64,
    end: i64,
    depth: u8,
) -> Result<MerkleTree, String> {
    if to == c.local.broadcast_address {
        return local_tree(&c.ctx, table, start, end, depth).await;
    }
    let mut out = vec![TREE];
    out.extend_from_slice(&table);
    out.extend_from_slice(&start.to_be_bytes());
    out.extend_from_slice(&end.to_be_bytes());
    out.push(depth);
    let reply =
        c.ms.send_request(to, Verb::RepairReq, Bytes::from(out), TREE_TIMEOUT)
            .await
            .map_err(|e| format!("Merkle tree from {to}: {e}"))?;
    let tree = MerkleTree::decode(&unstatus(reply).map_err(|e| format!("{to}: {e}"))?)?;
    if (tree.start, tree.end) != (start, end) {
        return Err(format!("{to} answered the tree of another range"));
    }
    Ok(tree)
}

/// Compares the replicas' trees of one range and synchronises the leaves
/// that differ, descending into big ones (iteratively: a bounded stack of
/// subranges).
async fn repair_range(
    c: &ClusterServices,
    rs: &RepairService,
    schema: &engine::schema::TableSchema,
    table: TableId,
    job: &Job,
    sum: &mut RepairSummary,
) -> Result<(), String> {
    let mut todo: Vec<(i64, i64, u32)> = vec![(job.start, job.end, 0)];
    while let Some((start, end, level)) = todo.pop() {
        rs.check_stop(&c.ctx)?;
        let mut trees = Vec::with_capacity(job.replicas.len());
        for &r in &job.replicas {
            trees.push(tree_of(c, r, table, start, end, TREE_DEPTH).await?);
        }
        if trees
            .iter()
            .any(|t| t.leaves.len() != trees[0].leaves.len())
        {
            return Err("replicas answered trees of different shapes".into());
        }
        for i in differences(&trees) {
            let (lo, hi) = trees[0].leaf_range(i);
            let biggest = trees.iter().map(|t| t.leaves[i].partitions).max();
            let splittable = width(lo, hi) > 1;
            if level < MAX_DESCENT && splittable && biggest > Some(MAX_LEAF_PARTITIONS) {
                todo.push((lo, hi, level + 1));
            } else {
                sync_leaf(c, rs, schema, table, lo, hi, &job.replicas, sum).await?;
                sum.subranges_synced += 1;
            }
        }
    }
    Ok(())
}

/// Brings every replica of `(lo, hi]` to the last-write-wins merge of
/// all of them: a k-way merge of their pages by key.
#[allow(clippy::too_many_arguments)]
async fn sync_leaf(
    c: &ClusterServices,
    rs: &RepairService,
    schema: &engine::schema::TableSchema,
    table: TableId,
    lo: i64,
    hi: i64,
    replicas: &[IpAddr],
    sum: &mut RepairSummary,
) -> Result<(), String> {
    const PAGE: usize = streaming::PAGE_PARTITIONS;
    for mut range in streaming::token_ranges(lo, hi) {
        loop {
            rs.check_stop(&c.ctx)?;
            let mut pages: Vec<Vec<PartitionUpdate>> = Vec::with_capacity(replicas.len());
            for &r in replicas {
                pages.push(streaming::fetch_page(c, r, table, &range, PAGE).await?);
            }
            // Keys up to the smallest last key of a full page are complete
            // on every replica; the rest is read again on the next round.
            let horizon = pages
                .iter()
                .filter(|p| p.len() >= PAGE)
                .filter_map(|p| p.last())
                .map(|p| (p.key.token, p.key.key.clone()))
                .min();
            let within = |p: &PartitionUpdate| {
                horizon
                    .as_ref()
                    .is_none_or(|h| (p.key.token, &p.key.key) <= (h.0, &h.1))
            };
            let mut keys: Vec<(i64, Bytes)> = pages
                .iter()
                .flatten()
                .filter(|p| within(p))
                .map(|p| (p.key.token, p.key.key.clone()))
                .collect();
            keys.sort();
            keys.dedup();
            let mut sends: Vec<Vec<PartitionUpdate>> = vec![Vec::new(); replicas.len()];
            for (token, key) in &keys {
                let versions: Vec<Option<&PartitionUpdate>> = pages
                    .iter()
                    .map(|p| {
                        p.binary_search_by(|x| (x.key.token, &x.key.key).cmp(&(*token, key)))
                            .ok()
                            .map(|i| &p[i])
                    })
                    .collect();
                let mut merged: Option<PartitionUpdate> = None;
                for v in versions.iter().flatten() {
                    match &mut merged {
                        None => merged = Some((*v).clone()),
                        Some(m) => engine::reconcile::apply_update(schema, m, v),
                    }
                }
                let Some(merged) = merged else { continue };
                for (j, have) in versions.iter().enumerate() {
                    let mut check = have
                        .cloned()
                        .unwrap_or_else(|| PartitionUpdate::new(merged.key.clone()));
                    engine::reconcile::apply_update(schema, &mut check, &merged);
                    if Some(&check) != *have {
                        sends[j].push(merged.clone());
                    }
                }
            }
            for (j, parts) in sends.into_iter().enumerate() {
                sum.partitions_streamed += parts.len() as u64;
                streaming::send_page(c, replicas[j], table, parts).await?;
            }
            match horizon {
                Some((token, key)) => {
                    let last = PartitionUpdate::new(engine::mutation::PartitionKey { token, key });
                    streaming::resume_after(&mut range, &last);
                }
                None => break,
            }
        }
    }
    Ok(())
}

/// The summary as the admin API answers it.
pub fn summary_json(s: &RepairSummary, seconds: f64) -> String {
    crate::admin::json::Object::new()
        .raw(
            "keyspaces",
            &serde_json::to_string(&s.keyspaces).unwrap_or_else(|_| "[]".into()),
        )
        .num("ranges_checked", s.ranges_checked)
        .num("ranges_mismatched", s.ranges_mismatched)
        .num("subranges_synced", s.subranges_synced)
        .num("partitions_streamed", s.partitions_streamed)
        .raw("seconds", &format!("{seconds:.3}"))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::mutation::PartitionKey;

    fn part(token: i64, key: &str) -> PartitionUpdate {
        PartitionUpdate::new(PartitionKey {
            token,
            key: Bytes::copy_from_slice(key.as_bytes()),
        })
    }

    #[test]
    fn leaves_tile_the_range_in_order() {
        for (start, end, depth) in [
            (-100i64, 100i64, 3u8),
            (100, -100, 4),
            (7, 7, 8),
            (i64::MIN, i64::MAX, 8),
            (0, 3, 8), // fewer tokens than leaves
        ] {
            let t = MerkleTree::new(start, end, depth);
            assert!(t.leaves.len() as u128 <= width(start, end));
            // Leaves are contiguous, non-empty, and cover (start, end].
            let mut at = start;
            let mut covered = 0u128;
            for i in 0..t.leaves.len() {
                let (lo, hi) = t.leaf_range(i);
                assert_eq!(lo, at, "{start} {end} leaf {i}");
                let w = width(lo, hi);
                assert!(w >= 1 && lo != hi, "empty leaf {i}");
                covered += w;
                // Both ends of the leaf map back to it.
                assert_eq!(t.leaf_of(lo.wrapping_add(1)), i);
                assert_eq!(t.leaf_of(hi), i);
                at = hi;
            }
            assert_eq!(at, end);
            assert_eq!(covered, width(start, end));
        }
    }

    #[test]
    fn trees_differ_exactly_where_the_data_does() {
        let mut a = MerkleTree::new(-1000, 1000, 4);
        let mut b = MerkleTree::new(-1000, 1000, 4);
        for (tok, k) in [(-900, "a"), (-10, "b"), (0, "c"), (999, "d")] {
            a.add(&part(tok, k));
            b.add(&part(tok, k));
        }
        assert_eq!(a.root(), b.root());
        assert!(differences(&[a.clone(), b.clone()]).is_empty());
        // A partition only b has, and one whose content differs.
        b.add(&part(500, "e"));
        let mut changed = part(-10, "b");
        changed.tombstone = Some(engine::mutation::DeletionTime {
            timestamp: 5,
            local_deletion_time: 1,
        });
        a.add(&changed);
        b.add(&part(-10, "x"));
        let d = differences(&[a.clone(), b.clone()]);
        assert_eq!(d, vec![a.leaf_of(-10), a.leaf_of(500)]);
        assert_ne!(a.root(), b.root());
        assert_eq!(b.leaves[b.leaf_of(500)].partitions, 1);
        // The wire form round-trips; garbage is an error, not a panic.
        assert_eq!(MerkleTree::decode(&a.encode()).unwrap(), a);
        let enc = a.encode();
        for cut in 0..enc.len() {
            assert!(MerkleTree::decode(&enc[..cut]).is_err());
        }
    }
}
