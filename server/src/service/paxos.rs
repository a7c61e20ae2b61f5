//! Lightweight transactions in a cluster: Cassandra's classic Paxos
//! (`StorageProxy.cas`, `PaxosState`), one instance per partition.
//!
//! The coordinator of a conditional statement (or of a read at `SERIAL` /
//! `LOCAL_SERIAL`) runs, for the partition's replicas (every replica for
//! `SERIAL`, the local datacenter's for `LOCAL_SERIAL`):
//!
//! 1. **prepare**: a new ballot (a time UUID, above every ballot this node
//!    made or saw in a rejection) is sent to the replicas; a quorum must
//!    promise it. A promise carries the replica's most recent commit and the
//!    proposal it accepted last.
//! 2. **repair**: an accepted proposal newer than the most recent commit is
//!    re-proposed with the new ballot and committed, then the round starts
//!    over; replicas of the quorum that missed the most recent commit get it.
//! 3. **read** the partition at `QUORUM` / `LOCAL_QUORUM` and evaluate the
//!    conditions (the caller's closure).
//! 4. **propose** the update (an empty one when the conditions fail, so that
//!    what was read stays linearizable — CASSANDRA-12126); a quorum must
//!    accept it.
//! 5. **commit**: every replica applies the update and records it as its
//!    most recent commit; the coordinator waits for the request's
//!    (commit) consistency level.
//!
//! A rejected prepare or proposal means contention: the coordinator sleeps
//! a random 0–100 ms and starts over, until `cas_contention_timeout_in_ms`,
//! then answers `WriteTimeout` with write type `CAS`.
//!
//! The replica state of a partition (promised ballot, accepted proposal,
//! most recent commit) lives on the replica's shard that owns the token, in
//! the local table `system.paxos` (through the commitlog, with a TTL), and
//! each verb reads, decides and writes it with no suspension point in
//! between. Wire format: `docs/internode-protocol.md`; guarantees:
//! `docs/lwt.md`.

use std::cell::Cell;
use std::cmp::Ordering;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use engine::mutation::{
    Cell as DataCell, ColumnData, Mutation, PartitionKey, PartitionUpdate, Row, TableId,
};
use engine::read::ReadCommand;
use glommio::channels::local_channel;
use proto::consistency::Consistency;
use proto::error::{DbError, ErrorResponse};

use super::replication::{satisfied, unreachable_with, ReplicaError};
use super::storage_proxy::{
    read_failure, replica_failure, write_failure, ReplicaFailure, Replication, StorageProxy,
};
use super::topology::Topology;
use crate::cql3::statements::engine_schema;
use crate::net::{MessagingService, Verb};
use crate::node::services;
use crate::schema::{KeyspaceMetadata, TableMetadata};
use crate::shard::ShardContext;

// --- ballots ----------------------------------------------------------------

/// A Paxos ballot: a version 1 (time) UUID. Ballots order by their time,
/// then by their clock-sequence-and-node half (unique per coordinator
/// shard), so two coordinators never make equal ballots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ballot(pub [u8; 16]);

impl Ballot {
    /// 100 ns ticks since the UUID epoch.
    pub fn ticks(&self) -> i64 {
        crate::cql3::functions::timeuuid_ticks(&self.0)
    }

    fn lsb(&self) -> u64 {
        u64::from_be_bytes(self.0[8..].try_into().unwrap_or([0; 8]))
    }

    /// Microseconds since the Unix epoch.
    pub fn micros(&self) -> i64 {
        (self.ticks() - crate::cql3::functions::UUID_EPOCH_OFFSET).div_euclid(10)
    }

    pub fn from_parts(ticks: i64, lsb: u64) -> Ballot {
        Ballot(crate::cql3::functions::make_timeuuid(ticks, lsb))
    }
}

impl Ord for Ballot {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ticks(), self.lsb()).cmp(&(other.ticks(), other.lsb()))
    }
}

impl PartialOrd for Ballot {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Makes one coordinator shard's ballots: strictly increasing, above the
/// clock and above any ballot seen in a rejection.
#[derive(Debug)]
pub struct BallotClock {
    last_ticks: Cell<i64>,
    /// The clock-sequence-and-node half: this node and shard.
    lsb: u64,
}

impl BallotClock {
    /// `node`: 48 bits naming the node (from its host id); `shard`: this shard.
    pub fn new(node: u64, shard: usize) -> BallotClock {
        let clock_seq = (shard as u64) & 0x3fff;
        BallotClock {
            last_ticks: Cell::new(0),
            lsb: 0x8000_0000_0000_0000
                | (clock_seq << 48)
                | (node & 0xffff_ffff_ffff)
                | 0x0100_0000_0000,
        }
    }

    /// A ballot above the clock (`now_micros`), every earlier ballot of this
    /// clock, and `floor`.
    pub fn next(&self, now_micros: i64, floor: Option<Ballot>) -> Ballot {
        let now = now_micros
            .saturating_mul(10)
            .saturating_add(crate::cql3::functions::UUID_EPOCH_OFFSET);
        let mut t = now.max(self.last_ticks.get().saturating_add(1));
        if let Some(f) = floor {
            t = t.max(f.ticks().saturating_add(1));
        }
        self.last_ticks.set(t);
        Ballot::from_parts(t, self.lsb)
    }
}

// --- the replica state machine --------------------------------------------------

/// A proposal or a commit: an update of one partition under a ballot.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub ballot: Ballot,
    pub update: PartitionUpdate,
}

/// What a replica answers to a prepare.
#[derive(Debug, Clone, PartialEq)]
pub enum PrepareResponse {
    /// Promised: it will accept nothing below this ballot. Carries the
    /// proposal it accepted last and its most recent commit.
    Promise {
        accepted: Option<Commit>,
        committed: Option<Commit>,
    },
    /// It promised (or committed) a ballot at least as high.
    Reject { promised: Ballot },
}

/// One replica's Paxos state of one partition (Cassandra's `PaxosState`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PaxosState {
    pub promised: Option<Ballot>,
    pub accepted: Option<Commit>,
    pub committed: Option<Commit>,
}

impl PaxosState {
    /// The highest ballot this replica promised or saw committed.
    fn floor(&self) -> Option<Ballot> {
        let c = self.committed.as_ref().map(|c| c.ballot);
        self.promised.max(c)
    }

    /// Promises `ballot` if it is above everything promised or committed.
    pub fn prepare(&mut self, ballot: Ballot) -> PrepareResponse {
        match self.floor() {
            Some(f) if ballot <= f => PrepareResponse::Reject { promised: f },
            _ => {
                self.promised = Some(ballot);
                PrepareResponse::Promise {
                    accepted: self.accepted.clone(),
                    committed: self.committed.clone(),
                }
            }
        }
    }

    /// Accepts a proposal whose ballot is at least the promised one.
    /// Returns whether it was accepted, and the promised ballot.
    pub fn propose(&mut self, proposal: Commit) -> (bool, Option<Ballot>) {
        match self.promised {
            Some(p) if proposal.ballot < p => (false, Some(p)),
            _ => {
                self.promised = Some(proposal.ballot);
                self.accepted = Some(proposal);
                (true, self.promised)
            }
        }
    }

    /// Records a commit (the caller applies its update to the data). A
    /// commit is never refused: it was accepted by a quorum.
    pub fn commit(&mut self, commit: Commit) {
        if self
            .accepted
            .as_ref()
            .is_some_and(|a| a.ballot <= commit.ballot)
        {
            self.accepted = None;
        }
        if self
            .committed
            .as_ref()
            .is_none_or(|c| c.ballot < commit.ballot)
        {
            self.committed = Some(commit);
        }
    }
}

// --- the verbs' payloads ---------------------------------------------------------

/// A request to one replica (`PaxosPrepare`, `PaxosPropose`, `PaxosCommit`).
#[derive(Debug, Clone, PartialEq)]
pub enum ReplicaOp {
    Prepare {
        table: TableId,
        key: PartitionKey,
        ballot: Ballot,
    },
    Propose {
        table: TableId,
        proposal: Commit,
    },
    Commit {
        table: TableId,
        commit: Commit,
    },
}

impl ReplicaOp {
    fn verb(&self) -> Verb {
        match self {
            ReplicaOp::Prepare { .. } => Verb::PaxosPrepare,
            ReplicaOp::Propose { .. } => Verb::PaxosPropose,
            ReplicaOp::Commit { .. } => Verb::PaxosCommit,
        }
    }

    fn token(&self) -> i64 {
        match self {
            ReplicaOp::Prepare { key, .. } => key.token,
            ReplicaOp::Propose { proposal: c, .. } | ReplicaOp::Commit { commit: c, .. } => {
                c.update.key.token
            }
        }
    }

    /// `[16 table id][16 ballot]` then, for prepare, `[i64 token][u32 len][key]`,
    /// otherwise the update as `engine::serialize::encode_partition`.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::new();
        match self {
            ReplicaOp::Prepare { table, key, ballot } => {
                out.extend_from_slice(table);
                out.extend_from_slice(&ballot.0);
                out.extend_from_slice(&key.token.to_be_bytes());
                out.extend_from_slice(&(key.key.len() as u32).to_be_bytes());
                out.extend_from_slice(&key.key);
            }
            ReplicaOp::Propose { table, proposal: c } | ReplicaOp::Commit { table, commit: c } => {
                out.extend_from_slice(table);
                out.extend_from_slice(&c.ballot.0);
                engine::serialize::encode_partition(&c.update, &mut out);
            }
        }
        Bytes::from(out)
    }

    pub fn decode(verb: Verb, b: &Bytes) -> Result<ReplicaOp, String> {
        let table: TableId = b
            .get(..16)
            .and_then(|s| s.try_into().ok())
            .ok_or("truncated paxos payload")?;
        let ballot = Ballot(
            b.get(16..32)
                .and_then(|s| s.try_into().ok())
                .ok_or("truncated paxos payload")?,
        );
        match verb {
            Verb::PaxosPrepare => {
                let token = i64::from_be_bytes(
                    b.get(32..40)
                        .and_then(|s| s.try_into().ok())
                        .ok_or("truncated paxos payload")?,
                );
                let len = u32::from_be_bytes(
                    b.get(40..44)
                        .and_then(|s| s.try_into().ok())
                        .ok_or("truncated paxos payload")?,
                ) as usize;
                let end = 44usize.checked_add(len).ok_or("bad key length")?;
                if b.len() < end {
                    return Err("truncated paxos payload".into());
                }
                Ok(ReplicaOp::Prepare {
                    table,
                    key: PartitionKey {
                        token,
                        key: b.slice(44..end),
                    },
                    ballot,
                })
            }
            Verb::PaxosPropose | Verb::PaxosCommit => {
                let mut pos = 32;
                let update = engine::serialize::decode_partition_at(b, &mut pos)
                    .map_err(|e| e.to_string())?;
                let c = Commit { ballot, update };
                Ok(if verb == Verb::PaxosPropose {
                    ReplicaOp::Propose { table, proposal: c }
                } else {
                    ReplicaOp::Commit { table, commit: c }
                })
            }
            _ => Err("not a paxos verb".into()),
        }
    }
}

/// A replica's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplicaReply {
    Prepare(PrepareResponse),
    /// Accepted?, and the replica's promised ballot.
    Propose(bool, Option<Ballot>),
    Commit,
}

fn put_commit(out: &mut Vec<u8>, c: &Option<Commit>) {
    match c {
        None => out.push(0),
        Some(c) => {
            out.push(1);
            out.extend_from_slice(&c.ballot.0);
            engine::serialize::encode_partition(&c.update, out);
        }
    }
}

fn get_commit(b: &Bytes, pos: &mut usize) -> Result<Option<Commit>, String> {
    let flag = *b.get(*pos).ok_or("truncated paxos reply")?;
    *pos += 1;
    if flag == 0 {
        return Ok(None);
    }
    let ballot = Ballot(
        b.get(*pos..*pos + 16)
            .and_then(|s| s.try_into().ok())
            .ok_or("truncated paxos reply")?,
    );
    *pos += 16;
    let update = engine::serialize::decode_partition_at(b, pos).map_err(|e| e.to_string())?;
    Ok(Some(Commit { ballot, update }))
}

impl ReplicaReply {
    /// Prepare: `[u8 0][commit accepted][commit committed]` (a promise) or
    /// `[u8 1][16 promised]` (a rejection), where `commit` is `[u8 0]` or
    /// `[u8 1][16 ballot][partition]`. Propose: `[u8 accepted][u8 has][16
    /// promised]`. Commit: empty.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::new();
        match self {
            ReplicaReply::Prepare(PrepareResponse::Promise {
                accepted,
                committed,
            }) => {
                out.push(0);
                put_commit(&mut out, accepted);
                put_commit(&mut out, committed);
            }
            ReplicaReply::Prepare(PrepareResponse::Reject { promised }) => {
                out.push(1);
                out.extend_from_slice(&promised.0);
            }
            ReplicaReply::Propose(ok, promised) => {
                out.push(u8::from(*ok));
                match promised {
                    Some(p) => {
                        out.push(1);
                        out.extend_from_slice(&p.0);
                    }
                    None => out.push(0),
                }
            }
            ReplicaReply::Commit => {}
        }
        Bytes::from(out)
    }

    pub fn decode(verb: Verb, b: &Bytes) -> Result<ReplicaReply, String> {
        let truncated = || "truncated paxos reply".to_string();
        match verb {
            Verb::PaxosPrepare => match b.first() {
                Some(0) => {
                    let mut pos = 1;
                    let accepted = get_commit(b, &mut pos)?;
                    let committed = get_commit(b, &mut pos)?;
                    Ok(ReplicaReply::Prepare(PrepareResponse::Promise {
                        accepted,
                        committed,
                    }))
                }
                Some(1) => Ok(ReplicaReply::Prepare(PrepareResponse::Reject {
                    promised: Ballot(
                        b.get(1..17)
                            .and_then(|s| s.try_into().ok())
                            .ok_or_else(truncated)?,
                    ),
                })),
                _ => Err("bad paxos prepare reply".into()),
            },
            Verb::PaxosPropose => {
                let ok = *b.first().ok_or_else(truncated)? == 1;
                let promised = match b.get(1) {
                    Some(1) => Some(Ballot(
                        b.get(2..18)
                            .and_then(|s| s.try_into().ok())
                            .ok_or_else(truncated)?,
                    )),
                    _ => None,
                };
                Ok(ReplicaReply::Propose(ok, promised))
            }
            Verb::PaxosCommit => Ok(ReplicaReply::Commit),
            _ => Err("not a paxos verb".into()),
        }
    }
}

// --- persistence in system.paxos ----------------------------------------------------

/// How long Paxos state outlives its last change: Cassandra's
/// `max(3 hours, gc_grace_seconds)` of the table.
fn paxos_ttl(table: Option<&TableMetadata>) -> i32 {
    let gc = table.map(|t| t.options.gc_grace_seconds).unwrap_or(0);
    gc.max(3 * 3600)
}

/// Column ids of `system.paxos`.
struct PaxosColumns {
    in_progress_ballot: u32,
    proposal: u32,
    proposal_ballot: u32,
    proposal_version: u32,
    most_recent_commit: u32,
    most_recent_commit_at: u32,
    most_recent_commit_version: u32,
}

impl PaxosColumns {
    fn of(t: &TableMetadata) -> Result<PaxosColumns, ErrorResponse> {
        let id = |n: &str| {
            t.columns
                .iter()
                .find(|c| c.name == n)
                .map(|c| c.id)
                .ok_or_else(|| ErrorResponse::server(format!("system.paxos has no column {n}")))
        };
        Ok(PaxosColumns {
            in_progress_ballot: id("in_progress_ballot")?,
            proposal: id("proposal")?,
            proposal_ballot: id("proposal_ballot")?,
            proposal_version: id("proposal_version")?,
            most_recent_commit: id("most_recent_commit")?,
            most_recent_commit_at: id("most_recent_commit_at")?,
            most_recent_commit_version: id("most_recent_commit_version")?,
        })
    }
}

/// The version written in `proposal_version` / `most_recent_commit_version`
/// (our encoding of the partition, `engine::serialize`).
const PAXOS_FORMAT_VERSION: i32 = 1;

fn cell_bytes(row: &Row, id: u32) -> Option<&Bytes> {
    row.columns.iter().find_map(|(c, d)| match d {
        ColumnData::Simple(DataCell { value: Some(v), .. }) if *c == id => Some(v),
        _ => None,
    })
}

fn ballot_of(row: &Row, id: u32) -> Option<Ballot> {
    cell_bytes(row, id).and_then(|b| b[..].try_into().ok().map(Ballot))
}

fn commit_of(row: &Row, update: u32, ballot: u32) -> Option<Commit> {
    let b = ballot_of(row, ballot)?;
    let raw = cell_bytes(row, update)?;
    let mut pos = 0;
    let update = engine::serialize::decode_partition_at(raw, &mut pos).ok()?;
    Some(Commit { ballot: b, update })
}

/// Decodes the state of `table`'s partition from its live `system.paxos` row.
fn decode_state(cols: &PaxosColumns, row: Option<&Row>) -> PaxosState {
    let Some(row) = row else {
        return PaxosState::default();
    };
    PaxosState {
        promised: ballot_of(row, cols.in_progress_ballot),
        accepted: commit_of(row, cols.proposal, cols.proposal_ballot),
        committed: commit_of(row, cols.most_recent_commit, cols.most_recent_commit_at),
    }
}

/// The `system.paxos` mutation that turns `old` into `new` (only changed
/// columns are written; a cleared proposal is deleted).
#[allow(clippy::too_many_arguments)]
fn state_mutation(
    paxos: &TableMetadata,
    cols: &PaxosColumns,
    table: &TableId,
    key: &PartitionKey,
    old: &PaxosState,
    new: &PaxosState,
    ts: i64,
    ttl: i32,
    now: i32,
) -> Option<Mutation> {
    let live = |v: Bytes| {
        ColumnData::Simple(DataCell {
            timestamp: ts,
            ttl,
            expiry: now.saturating_add(ttl),
            value: Some(v),
        })
    };
    let dead = || {
        ColumnData::Simple(DataCell {
            timestamp: ts,
            ttl: 0,
            expiry: now,
            value: None,
        })
    };
    let encode = |p: &PartitionUpdate| {
        let mut out = Vec::new();
        engine::serialize::encode_partition(p, &mut out);
        Bytes::from(out)
    };
    let version = Bytes::copy_from_slice(&PAXOS_FORMAT_VERSION.to_be_bytes());
    let mut columns = Vec::new();
    if new.promised != old.promised {
        if let Some(p) = new.promised {
            columns.push((cols.in_progress_ballot, live(Bytes::copy_from_slice(&p.0))));
        }
    }
    if new.accepted != old.accepted {
        match &new.accepted {
            Some(a) => {
                columns.push((cols.proposal, live(encode(&a.update))));
                columns.push((
                    cols.proposal_ballot,
                    live(Bytes::copy_from_slice(&a.ballot.0)),
                ));
                columns.push((cols.proposal_version, live(version.clone())));
            }
            None => {
                columns.push((cols.proposal, dead()));
                columns.push((cols.proposal_ballot, dead()));
                columns.push((cols.proposal_version, dead()));
            }
        }
    }
    if new.committed != old.committed {
        if let Some(c) = &new.committed {
            columns.push((cols.most_recent_commit, live(encode(&c.update))));
            columns.push((
                cols.most_recent_commit_at,
                live(Bytes::copy_from_slice(&c.ballot.0)),
            ));
            columns.push((cols.most_recent_commit_version, live(version)));
        }
    }
    if columns.is_empty() {
        return None;
    }
    columns.sort_by_key(|(id, _)| *id);
    let mut update = PartitionUpdate::new(PartitionKey {
        token: key.token,
        key: key.key.clone(),
    });
    update.rows.push((
        vec![Bytes::copy_from_slice(table)],
        Row {
            liveness: None,
            deletion: None,
            columns,
        },
    ));
    Some(Mutation {
        table: paxos.id,
        update,
    })
}

// --- the replica side ---------------------------------------------------------------

impl StorageProxy {
    /// Replica path of the Paxos verbs: must run on the shard owning the
    /// partition. Reads the partition's state from `system.paxos`, applies
    /// the verb, writes the new state (and, for a commit, the update) —
    /// with no suspension point in between — then waits for durability.
    pub async fn replica_paxos(&self, op: ReplicaOp) -> Result<ReplicaReply, ErrorResponse> {
        self.stats.replica_ops.set(self.stats.replica_ops.get() + 1);
        let schema = self.node.schema();
        let paxos = schema
            .table("system", "paxos")
            .cloned()
            .ok_or_else(|| ErrorResponse::server("system.paxos is missing"))?;
        let cols = PaxosColumns::of(&paxos)?;
        let (table, key) = match &op {
            ReplicaOp::Prepare { table, key, .. } => (*table, key.clone()),
            ReplicaOp::Propose { table, proposal: c } | ReplicaOp::Commit { table, commit: c } => {
                (*table, c.update.key.clone())
            }
        };
        let user_table = schema
            .table_by_id(&table)
            .cloned()
            .ok_or_else(|| ErrorResponse::server("paxos: unknown table"))?;
        let now_micros = crate::service::client_state::now_micros();
        let now = (now_micros / 1_000_000) as i32;
        // From here to the last apply_deferred there is no await.
        let raw = {
            let db = self.db.borrow();
            let cf = db
                .table(&paxos.id)
                .ok_or_else(|| ErrorResponse::server("system.paxos has no storage"))?;
            let sources = cf.sources();
            let cmd = ReadCommand::full(now);
            engine::reader::read_merged_raw(cf.schema(), &sources, &key, &cmd.ranges)
                .map_err(|e| self.read_error(&paxos.id, e))?
        };
        let eschema = engine_schema(&paxos);
        let live = raw
            .as_ref()
            .and_then(|r| engine::read::to_live(&eschema, r, &ReadCommand::full(now)));
        let row = live.as_ref().and_then(|p| {
            p.rows
                .iter()
                .find(|(ck, _)| ck.len() == 1 && ck[0][..] == table[..])
                .map(|(_, r)| r)
        });
        let old = decode_state(&cols, row);
        let mut state = old.clone();
        let mut data = None;
        let reply = match op {
            ReplicaOp::Prepare { ballot, .. } => ReplicaReply::Prepare(state.prepare(ballot)),
            ReplicaOp::Propose { proposal, .. } => {
                let (ok, promised) = state.propose(proposal);
                ReplicaReply::Propose(ok, promised)
            }
            ReplicaOp::Commit { commit, .. } => {
                if !commit.update.rows.is_empty()
                    || commit.update.static_row.is_some()
                    || commit.update.tombstone.is_some()
                    || !commit.update.range_tombstones.is_empty()
                {
                    data = Some(Mutation {
                        table,
                        update: commit.update.clone(),
                    });
                }
                state.commit(commit);
                ReplicaReply::Commit
            }
        };
        // Later than every cell of the row, so the new state always wins.
        let ts = crate::cql3::statements::modification::after_current(now_micros, raw.as_ref());
        let m = state_mutation(
            &paxos,
            &cols,
            &table,
            &key,
            &old,
            &state,
            ts,
            paxos_ttl(Some(&user_table)),
            now,
        );
        let mut last = None;
        if let Some(d) = &data {
            self.apply_index_entries(d)?;
            last = self
                .db
                .borrow_mut()
                .apply_deferred(d)
                .map_err(|e| self.write_error(e))?;
        }
        if let Some(m) = &m {
            let pos = self
                .db
                .borrow_mut()
                .apply_deferred(m)
                .map_err(|e| self.write_error(e))?;
            last = pos.or(last);
        }
        self.wait_durable(last).await?;
        Ok(reply)
    }

    /// Runs a Paxos verb on the shard of this node owning its token.
    pub async fn paxos_routed(&self, op: ReplicaOp) -> Result<ReplicaReply, ErrorResponse> {
        match self.owner_shard_of(op.token()) {
            None => self.replica_paxos(op).await,
            Some(owner) => {
                self.on_shard(owner, move |p| {
                    Box::pin(async move { p.replica_paxos(op).await })
                })
                .await
            }
        }
    }
}

/// Registers the Paxos verbs on shard 0's MessagingService.
pub fn register_verbs(ms: &Rc<MessagingService>, ctx: &ShardContext) {
    for verb in [Verb::PaxosPrepare, Verb::PaxosPropose, Verb::PaxosCommit] {
        let c = ctx.clone();
        // A replica's failure goes back with its RequestFailureReason
        // (status 2): the coordinator counts it (see `paxos_round`).
        let handler: crate::net::Handler = Rc::new(move |_, payload| {
            let ctx = c.clone();
            Box::pin(async move {
                let r = async {
                    let op = ReplicaOp::decode(verb, &payload).map_err(ReplicaError::failure)?;
                    let s = services(&ctx).map_err(|e| ReplicaError::from_response(&e))?;
                    let r = s
                        .proxy
                        .paxos_routed(op)
                        .await
                        .map_err(|e| ReplicaError::from_response(&e))?;
                    Ok::<_, ReplicaError>(r.encode())
                }
                .await;
                Some(match r {
                    Ok(b) => super::cluster::status(Ok(b)),
                    Err(e) => super::forwarding::encode_failure(&e),
                })
            })
        });
        ms.register(verb, handler);
    }
}

// --- the coordinator ------------------------------------------------------------------

/// The replicas taking part in a Paxos round of one partition.
struct Participants {
    topo: Arc<Topology>,
    rep: Replication,
    /// Every natural replica (commits go to all of them).
    all: Vec<usize>,
    /// The live replicas that take part (all of them, or the local DC's).
    live: Vec<usize>,
    /// Promises / acceptances needed.
    required: usize,
}

/// Why a round did not complete.
enum RoundError {
    /// Contention: retry after a pause, with a ballot above this one.
    Retry(Option<Ballot>),
    /// An earlier round was completed: start over at once.
    Again,
    /// Replicas answered with failures and too few are left to reach the
    /// quorum (Cassandra: failures + required > participants).
    Failed {
        phase: Phase,
        received: usize,
        failures: Vec<ReplicaFailure>,
    },
    Fatal(ErrorResponse),
}

/// The phase of a round whose replicas failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Prepare or propose (a write of system.paxos): WriteFailure CAS.
    Consensus,
    /// The quorum read: ReadFailure.
    Read,
}

/// True when `failures` of `candidates` replicas leave fewer than
/// `required` that could still answer.
fn quorum_unreachable(candidates: usize, required: usize, failures: usize) -> bool {
    failures > candidates.saturating_sub(required)
}

/// The client's answer to a round whose replicas failed: WriteFailure
/// (write type CAS) at the serial consistency for a CAS, ReadFailure for a
/// serial read or for the quorum read (at its QUORUM / LOCAL_QUORUM, as
/// Cassandra's `readOne` inside `cas` answers).
fn round_failure(
    is_cas: bool,
    serial: Consistency,
    required: usize,
    phase: Phase,
    received: usize,
    failures: &[ReplicaFailure],
) -> ErrorResponse {
    match phase {
        Phase::Consensus if is_cas => write_failure(serial, received, required, failures, "CAS"),
        Phase::Consensus => read_failure(serial, received, required, failures, false),
        Phase::Read if is_cas => read_failure(
            read_consistency(serial),
            received,
            required,
            failures,
            false,
        ),
        Phase::Read => read_failure(serial, received, required, failures, false),
    }
}

impl From<ErrorResponse> for RoundError {
    fn from(e: ErrorResponse) -> Self {
        RoundError::Fatal(e)
    }
}

/// The request consistency used for the quorum read of a Paxos round.
fn read_consistency(serial: Consistency) -> Consistency {
    if serial == Consistency::LocalSerial {
        Consistency::LocalQuorum
    } else {
        Consistency::Quorum
    }
}

fn is_empty_update(p: &PartitionUpdate) -> bool {
    p.rows.is_empty()
        && p.static_row.is_none()
        && p.tombstone.is_none()
        && p.range_tombstones.is_empty()
}

impl StorageProxy {
    fn participants(
        &self,
        ks: &KeyspaceMetadata,
        token: i64,
        serial: Consistency,
    ) -> Result<Participants, ErrorResponse> {
        if !matches!(serial, Consistency::Serial | Consistency::LocalSerial) {
            return Err(ErrorResponse::invalid(format!(
                "Invalid consistency for conditional update. Must be one of SERIAL or LOCAL_SERIAL (got {})",
                serial.name()
            )));
        }
        let topo = self.topology();
        let rep = Replication::of(ks);
        let all = topo.replicas(ks, token);
        let local_dc = topo.local().dc.clone();
        let (members, rf): (Vec<usize>, usize) = if serial == Consistency::LocalSerial {
            let rf = match &rep {
                Replication::Simple(rf) => *rf,
                Replication::PerDc(m) => m.get(&local_dc).copied().unwrap_or(0),
                Replication::Local => 1,
            };
            (
                all.iter()
                    .copied()
                    .filter(|i| topo.endpoints[*i].dc == local_dc)
                    .collect(),
                rf,
            )
        } else {
            let rf = match &rep {
                Replication::Simple(rf) => *rf,
                Replication::PerDc(m) => m.values().sum(),
                Replication::Local => 1,
            };
            (all.clone(), rf)
        };
        let required = rf.max(members.len()) / 2 + 1;
        let live: Vec<usize> = members
            .into_iter()
            .filter(|i| topo.endpoints[*i].alive)
            .collect();
        if live.len() < required {
            return Err(ErrorResponse::unavailable(
                serial,
                required as i32,
                live.len() as i32,
            ));
        }
        Ok(Participants {
            topo,
            rep,
            all,
            live,
            required,
        })
    }

    /// Sends `op` to `targets` (this node inline, others through shard 0's
    /// MessagingService) and collects answers until `done` says so, every
    /// target answered, or the write timeout passes.
    async fn paxos_round(
        &self,
        topo: &Topology,
        targets: &[usize],
        op: ReplicaOp,
        done: &dyn Fn(&[(usize, ReplicaReply)], usize) -> bool,
    ) -> (Vec<(usize, ReplicaReply)>, Vec<(usize, ReplicaFailure)>) {
        let verb = op.verb();
        let ctx = self.remote.borrow().as_ref().and_then(|r| r.context());
        let (tx, rx) = local_channel::new_bounded(targets.len().max(1));
        let tx = Rc::new(tx);
        let payload = op.encode();
        let mut expected = 0usize;
        let mut replies: Vec<(usize, ReplicaReply)> = Vec::new();
        // Replicas that answered with a failure (this one included).
        let mut failed: Vec<(usize, ReplicaFailure)> = Vec::new();
        for &i in targets {
            if i == 0 {
                continue;
            }
            let Some(ctx) = ctx.clone() else { continue };
            expected += 1;
            let to = topo.endpoints[i].addr;
            let (payload, tx, timeout) = (payload.clone(), tx.clone(), self.write_timeout);
            glommio::spawn_local(async move {
                let r = send_paxos(&ctx, to, verb, payload, timeout).await;
                let _ = tx.try_send((i, r));
            })
            .detach();
        }
        drop(tx);
        if targets.contains(&0) {
            match self.paxos_routed(op).await {
                Ok(r) => replies.push((0, r)),
                Err(e) => match replica_failure(&e) {
                    Some((reason, cause)) => failed.push((
                        0,
                        ReplicaFailure {
                            addr: topo.endpoints[0].addr,
                            reason,
                            cause: cause.to_string(),
                        },
                    )),
                    None => log::debug!("paxos {verb:?} on this node failed: {}", e.message),
                },
            }
        }
        let deadline = Instant::now() + self.write_timeout;
        while expected > 0 && !done(&replies, failed.len()) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match crate::shard::timeout(left, rx.recv()).await {
                Ok(Some((i, r))) => {
                    expected -= 1;
                    match r {
                        Ok(r) => replies.push((i, r)),
                        Err(ReplicaError::Failure { reason, message }) => failed.push((
                            i,
                            ReplicaFailure {
                                addr: topo.endpoints[i].addr,
                                reason,
                                cause: message,
                            },
                        )),
                        Err(e) => log::debug!("paxos {verb:?} to replica {i} failed: {e}"),
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        (replies, failed)
    }

    /// Prepare with a new ballot, finish what an earlier round left
    /// half-done, and return the promised ballot.
    async fn begin_and_repair(
        &self,
        p: &Participants,
        ks: &KeyspaceMetadata,
        table: &TableMetadata,
        key: &PartitionKey,
        floor: Option<Ballot>,
        commit_cl: Consistency,
    ) -> Result<(Ballot, Vec<usize>), RoundError> {
        let ballot = self
            .ballots
            .next(crate::service::client_state::now_micros(), floor);
        let required = p.required;
        let promises = |r: &[(usize, ReplicaReply)]| {
            r.iter()
                .filter(|(_, r)| {
                    matches!(r, ReplicaReply::Prepare(PrepareResponse::Promise { .. }))
                })
                .count()
        };
        let total = p.live.len();
        let (replies, failed) = self
            .paxos_round(
                &p.topo,
                &p.live,
                ReplicaOp::Prepare {
                    table: table.id,
                    key: key.clone(),
                    ballot,
                },
                &|r, failed| {
                    promises(r) >= required
                        || r.len() - promises(r) + failed > total - required
                        || quorum_unreachable(total, required, failed)
                },
            )
            .await;
        let mut highest_rejection: Option<Ballot> = None;
        let mut accepted: Option<Commit> = None;
        let mut committed: Option<Commit> = None;
        let mut promised_by: Vec<(usize, Option<Ballot>)> = Vec::new();
        for (i, r) in &replies {
            match r {
                ReplicaReply::Prepare(PrepareResponse::Reject { promised }) => {
                    highest_rejection = highest_rejection.max(Some(*promised));
                }
                ReplicaReply::Prepare(PrepareResponse::Promise {
                    accepted: a,
                    committed: c,
                }) => {
                    promised_by.push((*i, c.as_ref().map(|c| c.ballot)));
                    if let Some(a) = a {
                        if accepted.as_ref().is_none_or(|x| a.ballot > x.ballot) {
                            accepted = Some(a.clone());
                        }
                    }
                    if let Some(c) = c {
                        if committed.as_ref().is_none_or(|x| c.ballot > x.ballot) {
                            committed = Some(c.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        if promised_by.len() < required && quorum_unreachable(total, required, failed.len()) {
            return Err(RoundError::Failed {
                phase: Phase::Consensus,
                received: promised_by.len(),
                failures: failed.into_iter().map(|(_, f)| f).collect(),
            });
        }
        if promised_by.len() < required {
            self.paxos_stats
                .contended
                .set(self.paxos_stats.contended.get() + 1);
            return Err(RoundError::Retry(highest_rejection.max(Some(ballot))));
        }
        // An accepted proposal newer than the last commit may have reached a
        // quorum: it must be committed before anything else is decided. (An
        // empty one — conditions that failed, a serial read — changes no
        // data, and our promises already supersede it.)
        if let Some(a) = accepted {
            if !is_empty_update(&a.update) && committed.as_ref().is_none_or(|c| a.ballot > c.ballot)
            {
                self.paxos_stats
                    .repaired_in_progress
                    .set(self.paxos_stats.repaired_in_progress.get() + 1);
                let refreshed = Commit {
                    ballot,
                    update: a.update,
                };
                if !self.propose(p, table, refreshed.clone()).await? {
                    return Err(RoundError::Retry(Some(ballot)));
                }
                self.commit(p, ks, table, refreshed, commit_cl).await?;
                return Err(RoundError::Again);
            }
        }
        // Replicas of the quorum that missed the last commit get it now (a
        // later proposal must be learnt on top of it).
        if let Some(c) = committed {
            let missing: Vec<usize> = promised_by
                .iter()
                .filter(|(_, b)| *b != Some(c.ballot))
                .map(|(i, _)| *i)
                .collect();
            if !missing.is_empty() {
                let n = missing.len();
                let (replies, _) = self
                    .paxos_round(
                        &p.topo,
                        &missing,
                        ReplicaOp::Commit {
                            table: table.id,
                            commit: c,
                        },
                        &|r, failed| r.len() + failed >= n,
                    )
                    .await;
                if replies.len() < n {
                    return Err(RoundError::Retry(Some(ballot)));
                }
            }
        }
        Ok((ballot, promised_by.iter().map(|(i, _)| *i).collect()))
    }

    /// Reads the partition from the replicas that just promised (a quorum of
    /// live participants, so no time is lost on a replica that is down but
    /// not known to be) and reconciles their raw answers by last-write-wins.
    async fn read_quorum(
        &self,
        p: &Participants,
        quorum: &[usize],
        table: &TableMetadata,
        key: &PartitionKey,
        cmd: &ReadCommand,
    ) -> Result<Option<PartitionUpdate>, RoundError> {
        let remote = self.remote.borrow().clone();
        let (tx, rx) = local_channel::new_bounded(quorum.len().max(1));
        let tx = Rc::new(tx);
        let mut expected = 0usize;
        for &i in quorum {
            let Some(remote) = remote.as_ref().filter(|_| i != 0) else {
                continue;
            };
            expected += 1;
            let addr = p.topo.endpoints[i].addr;
            let fut = remote.read_raw(addr, table.id, key.clone(), cmd.clone(), self.read_timeout);
            let tx = tx.clone();
            glommio::spawn_local(async move {
                let _ = tx.try_send((addr, fut.await));
            })
            .detach();
        }
        drop(tx);
        let mut answers: Vec<Option<PartitionUpdate>> = Vec::new();
        let mut failures: Vec<ReplicaFailure> = Vec::new();
        if quorum.contains(&0) {
            match self
                .read_raw_routed(table.id, key.clone(), cmd.clone())
                .await
            {
                Ok(a) => answers.push(a),
                Err(e) => match replica_failure(&e) {
                    Some((reason, cause)) => failures.push(ReplicaFailure {
                        addr: p.topo.endpoints[0].addr,
                        reason,
                        cause: cause.to_string(),
                    }),
                    None => return Err(RoundError::Fatal(e)),
                },
            }
        }
        let unreachable = |failures: &[ReplicaFailure]| {
            quorum_unreachable(quorum.len(), p.required, failures.len())
        };
        let deadline = Instant::now() + self.read_timeout;
        while answers.len() < p.required && expected > 0 && !unreachable(&failures) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match crate::shard::timeout(left, rx.recv()).await {
                Ok(Some((addr, r))) => {
                    expected -= 1;
                    match r {
                        Ok(a) => answers.push(a),
                        Err(ReplicaError::Failure { reason, message }) => {
                            failures.push(ReplicaFailure {
                                addr,
                                reason,
                                cause: message,
                            })
                        }
                        Err(e) => log::debug!("paxos read failed: {e}"),
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        if answers.len() < p.required && unreachable(&failures) {
            return Err(RoundError::Failed {
                phase: Phase::Read,
                received: answers.len(),
                failures,
            });
        }
        if answers.len() < p.required {
            return Err(RoundError::Retry(None));
        }
        let schema = engine_schema(table);
        let mut merged: Option<PartitionUpdate> = None;
        for a in answers.into_iter().flatten() {
            match &mut merged {
                None => merged = Some(a),
                Some(m) => engine::reconcile::apply_update(&schema, m, &a),
            }
        }
        Ok(merged.and_then(|raw| engine::read::to_live(&schema, &raw, cmd)))
    }

    /// Proposes to the participants; true when a quorum accepted. Gives up
    /// as soon as a quorum can no longer accept.
    async fn propose(
        &self,
        p: &Participants,
        table: &TableMetadata,
        proposal: Commit,
    ) -> Result<bool, RoundError> {
        Ok(self.propose_outcome(p, table, proposal, true).await?.0)
    }

    /// Proposes to the participants: (a quorum accepted, no replica
    /// accepted — every live participant answered and refused, how many
    /// accepted). Without
    /// `fail_fast` it waits for every answer (or the timeout) when no
    /// quorum accepts, so that "fully refused" is known (Cassandra's
    /// `timeoutIfPartial`).
    async fn propose_outcome(
        &self,
        p: &Participants,
        table: &TableMetadata,
        proposal: Commit,
        fail_fast: bool,
    ) -> Result<(bool, bool, usize), RoundError> {
        let required = p.required;
        let total = p.live.len();
        let accepts = |r: &[(usize, ReplicaReply)]| {
            r.iter()
                .filter(|(_, r)| matches!(r, ReplicaReply::Propose(true, _)))
                .count()
        };
        let (replies, failed) = self
            .paxos_round(
                &p.topo,
                &p.live,
                ReplicaOp::Propose {
                    table: table.id,
                    proposal,
                },
                &|r, failed| {
                    accepts(r) >= required
                        || r.len() + failed == total
                        || quorum_unreachable(total, required, failed)
                        || (fail_fast && r.len() - accepts(r) > total - required)
                },
            )
            .await;
        let n = accepts(&replies);
        // Replicas that failed cannot have accepted: a quorum out of reach
        // because of them is a failure, whatever the others said.
        if n < required && quorum_unreachable(total, required, failed.len()) {
            return Err(RoundError::Failed {
                phase: Phase::Consensus,
                received: n,
                failures: failed.into_iter().map(|(_, f)| f).collect(),
            });
        }
        Ok((n >= required, n == 0 && replies.len() == total, n))
    }

    /// Commits to every live replica and waits for `cl`.
    async fn commit(
        &self,
        p: &Participants,
        ks: &KeyspaceMetadata,
        table: &TableMetadata,
        commit: Commit,
        cl: Consistency,
    ) -> Result<(), RoundError> {
        let _ = ks;
        let targets: Vec<usize> = p
            .all
            .iter()
            .copied()
            .filter(|i| p.topo.endpoints[*i].alive)
            .collect();
        let (topo, rep, all) = (&p.topo, &p.rep, &p.all);
        let ok = |r: &[(usize, ReplicaReply)], _: usize| {
            let acked: Vec<usize> = r.iter().map(|(i, _)| *i).collect();
            satisfied(topo, rep, all, cl, &acked).0
        };
        let (replies, failed) = self
            .paxos_round(
                topo,
                &targets,
                ReplicaOp::Commit {
                    table: table.id,
                    commit,
                },
                &ok,
            )
            .await;
        let acked: Vec<usize> = replies.iter().map(|(i, _)| *i).collect();
        let (done, received, block_for) = satisfied(topo, rep, all, cl, &acked);
        if done || cl == Consistency::Any {
            return Ok(());
        }
        if unreachable_with(topo, rep, all, cl, &failed) {
            let failures: Vec<ReplicaFailure> = failed.into_iter().map(|(_, f)| f).collect();
            return Err(RoundError::Fatal(write_failure(
                cl, received, block_for, &failures, "CAS",
            )));
        }
        Err(RoundError::Fatal(ErrorResponse::new(
            DbError::WriteTimeout {
                consistency: cl,
                received: received as i32,
                block_for: block_for as i32,
                write_type: "SIMPLE".to_string(),
            },
            format!("Operation timed out - received only {received} responses."),
        )))
    }

    /// What follows one round of the CAS and serial-read loops: `Some` answer
    /// (the result, a fatal error, or `timeout()` once contention has
    /// lasted past `deadline`), or `None` to start another round, above
    /// the ballot a rejection named.
    async fn after_round<T>(
        &self,
        round: Result<T, RoundError>,
        deadline: Instant,
        floor: &mut Option<Ballot>,
        timeout: impl FnOnce() -> ErrorResponse,
        failure: impl FnOnce(Phase, usize, &[ReplicaFailure]) -> ErrorResponse,
    ) -> Option<Result<T, ErrorResponse>> {
        let stats = &self.paxos_stats;
        match round {
            Ok(out) => {
                stats.rounds.set(stats.rounds.get() + 1);
                Some(Ok(out))
            }
            Err(RoundError::Fatal(e)) => Some(Err(e)),
            Err(RoundError::Failed {
                phase,
                received,
                failures,
            }) => Some(Err(failure(phase, received, &failures))),
            Err(RoundError::Again) if Instant::now() < deadline => None,
            Err(r) => {
                if let RoundError::Retry(b) = r {
                    *floor = (*floor).max(b);
                }
                if self.contention_pause(deadline).await {
                    None
                } else {
                    stats.timeouts.set(stats.timeouts.get() + 1);
                    Some(Err(timeout()))
                }
            }
        }
    }

    /// Sleeps 0–100 ms (random) unless that passes `deadline`; false when
    /// the deadline has passed.
    async fn contention_pause(&self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let pause = Duration::from_millis(crate::cql3::functions::random_u64() % 100);
        glommio::timer::sleep(pause.min(left)).await;
        Instant::now() < deadline
    }

    /// A lightweight transaction on one partition (Cassandra's
    /// `StorageProxy.cas`): `f` sees the partition as read at the serial
    /// quorum inside a Paxos round and returns the mutations to commit
    /// (none when its conditions fail) and its result. `f` runs again
    /// when a round loses to a concurrent one.
    #[allow(clippy::too_many_arguments)]
    pub async fn cas<T, F>(
        &self,
        ks: &KeyspaceMetadata,
        table: &TableMetadata,
        key: PartitionKey,
        now: i32,
        commit_cl: Consistency,
        serial: Consistency,
        f: F,
    ) -> Result<T, ErrorResponse>
    where
        F: Fn(Option<PartitionUpdate>) -> Result<(Vec<Mutation>, T), ErrorResponse>,
    {
        let p = self.participants(ks, key.token, serial)?;
        let deadline = Instant::now() + self.cas_contention_timeout;
        let mut floor = None;
        loop {
            let attempt = async {
                let (ballot, quorum) = self
                    .begin_and_repair(&p, ks, table, &key, floor, commit_cl)
                    .await?;
                let cmd = ReadCommand::full(now);
                let current = self.read_quorum(&p, &quorum, table, &key, &cmd).await?;
                let (muts, out) = f(current)?;
                let schema = engine_schema(table);
                let mut update = PartitionUpdate::new(key.clone());
                for m in &muts {
                    if m.table != table.id || m.update.key != key {
                        return Err(RoundError::Fatal(ErrorResponse::server(
                            "internal error: conditional update outside its partition",
                        )));
                    }
                    engine::reconcile::apply_update(&schema, &mut update, &m.update);
                }
                // Conditions that fail still propose (an empty update), so
                // that no earlier, half-accepted proposal can be completed
                // after what this round read (CASSANDRA-12126).
                let proposal = Commit { ballot, update };
                let empty = is_empty_update(&proposal.update);
                let (accepted, refused, accepts) = self
                    .propose_outcome(&p, table, proposal.clone(), empty)
                    .await?;
                if !accepted {
                    if !empty && !refused {
                        // Some replica may have accepted it: a later round
                        // can still complete it, so its outcome is unknown
                        // (Cassandra's timeoutIfPartial), never "not applied".
                        return Err(RoundError::Fatal(ErrorResponse::new(
                            DbError::WriteTimeout {
                                consistency: serial,
                                received: accepts as i32,
                                block_for: p.required as i32,
                                write_type: "CAS".to_string(),
                            },
                            format!(
                                "CAS operation result is unknown - proposal accepted by {accepts} but not a quorum."
                            ),
                        )));
                    }
                    return Err(RoundError::Retry(Some(ballot)));
                }
                if !empty {
                    self.commit(&p, ks, table, proposal, commit_cl).await?;
                }
                Ok(out)
            };
            let timeout = || {
                ErrorResponse::new(
                    DbError::WriteTimeout {
                        consistency: serial,
                        received: 0,
                        block_for: p.required as i32,
                        write_type: "CAS".to_string(),
                    },
                    "CAS operation timed out - encountered contentions",
                )
            };
            let failure = |phase, received, failures: &[ReplicaFailure]| {
                round_failure(true, serial, p.required, phase, received, failures)
            };
            let round = attempt.await;
            if let Some(answer) = self
                .after_round(round, deadline, &mut floor, timeout, failure)
                .await
            {
                return answer;
            }
        }
    }

    /// A read at `SERIAL` / `LOCAL_SERIAL` of one partition: a Paxos round
    /// (prepare, finish any in-progress proposal, quorum read, empty
    /// proposal), so it sees every committed and every possibly-accepted
    /// update.
    pub async fn paxos_read(
        &self,
        ks: &KeyspaceMetadata,
        table: &TableMetadata,
        key: &PartitionKey,
        cmd: &ReadCommand,
        serial: Consistency,
    ) -> Result<Option<PartitionUpdate>, ErrorResponse> {
        let p = self.participants(ks, key.token, serial)?;
        let deadline = Instant::now() + self.cas_contention_timeout;
        let mut floor = None;
        loop {
            let attempt = async {
                let (ballot, quorum) = self
                    .begin_and_repair(&p, ks, table, key, floor, read_consistency(serial))
                    .await?;
                let current = self.read_quorum(&p, &quorum, table, key, cmd).await?;
                let empty = Commit {
                    ballot,
                    update: PartitionUpdate::new(key.clone()),
                };
                if !self.propose(&p, table, empty).await? {
                    return Err(RoundError::Retry(Some(ballot)));
                }
                Ok(current)
            };
            let timeout = || {
                ErrorResponse::new(
                    DbError::ReadTimeout {
                        consistency: serial,
                        received: 0,
                        block_for: p.required as i32,
                        data_present: false,
                    },
                    "SERIAL read timed out - encountered contentions",
                )
            };
            let failure = |phase, received, failures: &[ReplicaFailure]| {
                round_failure(false, serial, p.required, phase, received, failures)
            };
            let round = attempt.await;
            if let Some(answer) = self
                .after_round(round, deadline, &mut floor, timeout, failure)
                .await
            {
                return answer;
            }
        }
    }
}

/// Sends a Paxos verb through shard 0's MessagingService: the reply, the
/// replica's failure (it answered so), or no answer.
async fn send_paxos(
    ctx: &ShardContext,
    to: IpAddr,
    verb: Verb,
    payload: Bytes,
    timeout: Duration,
) -> Result<ReplicaReply, ReplicaError> {
    let r = ctx
        .shards()
        .invoke_on(0, move |ctx| async move {
            let Some(c) = super::cluster::cluster(&ctx) else {
                return Err("not in a cluster".to_string());
            };
            c.ms.send_request(to, verb, payload, timeout)
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| ReplicaError::NoResponse(e.to_string()))?
        .map_err(ReplicaError::NoResponse)?;
    let body = super::forwarding::decode_reply(r)?;
    ReplicaReply::decode(verb, &body).map_err(ReplicaError::failure)
}

/// Counters of this shard's Paxos coordinator (admin API).
#[derive(Debug, Default)]
pub struct PaxosStats {
    /// Transactions and serial reads completed.
    pub rounds: Cell<u64>,
    /// Prepares that did not get a quorum of promises.
    pub contended: Cell<u64>,
    /// In-progress proposals of earlier rounds completed.
    pub repaired_in_progress: Cell<u64>,
    /// Requests that gave up after `cas_contention_timeout_in_ms`.
    pub timeouts: Cell<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(last: u8) -> ReplicaFailure {
        ReplicaFailure {
            addr: IpAddr::from([127, 0, 0, last]),
            reason: proto::error::RequestFailureReason::Unknown,
            cause: "commitlog failure: No space left on device".into(),
        }
    }

    #[test]
    fn failures_end_a_round_once_the_quorum_is_out_of_reach() {
        // RF 3, quorum 2: one failure leaves two that may still answer.
        assert!(!quorum_unreachable(3, 2, 0));
        assert!(!quorum_unreachable(3, 2, 1));
        assert!(quorum_unreachable(3, 2, 2));
        // RF 5, quorum 3.
        assert!(!quorum_unreachable(5, 3, 2));
        assert!(quorum_unreachable(5, 3, 3));
        // A single replica: its failure is the end.
        assert!(quorum_unreachable(1, 1, 1));
        // A read from just a quorum of promisers: any failure ends it.
        assert!(quorum_unreachable(2, 2, 1));
    }

    #[test]
    fn failed_rounds_answer_write_or_read_failure() {
        let f = [failure(2), failure(3)];
        let e = round_failure(true, Consistency::Serial, 2, Phase::Consensus, 1, &f);
        match &e.error {
            DbError::WriteFailure {
                consistency,
                received,
                block_for,
                num_failures,
                reason_map,
                write_type,
            } => {
                assert_eq!(*consistency, Consistency::Serial);
                assert_eq!((*received, *block_for, *num_failures), (1, 2, 2));
                assert_eq!(reason_map.len(), 2);
                assert_eq!(write_type, "CAS");
            }
            other => panic!("not a WriteFailure: {other:?}"),
        }
        assert!(e.message.contains("commitlog failure"), "{}", e.message);
        // The quorum read of a CAS fails at its QUORUM / LOCAL_QUORUM.
        let e = round_failure(true, Consistency::LocalSerial, 2, Phase::Read, 0, &f);
        assert!(matches!(
            e.error,
            DbError::ReadFailure {
                consistency: Consistency::LocalQuorum,
                block_for: 2,
                ..
            }
        ));
        // A serial read fails as a read, at its serial consistency, in
        // either phase.
        for phase in [Phase::Consensus, Phase::Read] {
            let e = round_failure(false, Consistency::Serial, 2, phase, 0, &f);
            assert!(
                matches!(
                    e.error,
                    DbError::ReadFailure {
                        consistency: Consistency::Serial,
                        num_failures: 2,
                        ..
                    }
                ),
                "{:?}",
                e.error
            );
        }
    }

    fn key() -> PartitionKey {
        PartitionKey {
            token: 42,
            key: Bytes::from_static(b"pk"),
        }
    }

    fn update(v: u8) -> PartitionUpdate {
        let mut p = PartitionUpdate::new(key());
        p.rows.push((
            vec![Bytes::copy_from_slice(&[v])],
            Row {
                liveness: None,
                deletion: None,
                columns: vec![(
                    1,
                    ColumnData::Simple(DataCell {
                        timestamp: 7,
                        ttl: 0,
                        expiry: 0,
                        value: Some(Bytes::copy_from_slice(&[v])),
                    }),
                )],
            },
        ));
        p
    }

    fn b(ticks: i64, lsb: u64) -> Ballot {
        Ballot::from_parts(ticks, lsb)
    }

    #[test]
    fn ballots_order_by_time_then_node() {
        // Time first, whatever the byte order of the UUID's time fields.
        assert!(b(0x1_0000_0000, 5) > b(0xffff_ffff, 9));
        assert!(b(0x1_0000_0000_0000, 0) > b(0xffff_ffff_ffff, u64::MAX));
        assert!(b(100, 2) > b(100, 1));
        assert_eq!(b(100, 1).cmp(&b(100, 1)), Ordering::Equal);
        assert_eq!(b(123_456, 1).ticks(), 123_456);
    }

    #[test]
    fn ballot_clock_is_strictly_increasing_and_above_its_floor() {
        let clock = BallotClock::new(0xabcdef, 3);
        let other = BallotClock::new(0xabcdef, 4);
        let a = clock.next(1_000, None);
        let c = clock.next(1_000, None); // same clock reading
        assert!(c > a);
        let d = clock.next(0, None); // the clock went backwards
        assert!(d > c);
        // Two shards of one node never make the same ballot.
        assert_ne!(other.next(1_000, None), a);
        // Above a rejection's ballot, even one far in the future.
        let seen = b(a.ticks() + 10_000_000, u64::MAX);
        let e = clock.next(1_000, Some(seen));
        assert!(e > seen);
        assert!(clock.next(1_000, None) > e);
        assert_eq!(a.micros(), 1_000);
    }

    #[test]
    fn prepare_promises_only_above_everything_promised_or_committed() {
        let mut s = PaxosState::default();
        assert!(matches!(
            s.prepare(b(10, 1)),
            PrepareResponse::Promise {
                accepted: None,
                committed: None
            }
        ));
        assert_eq!(
            s.prepare(b(10, 1)),
            PrepareResponse::Reject { promised: b(10, 1) }
        );
        assert_eq!(
            s.prepare(b(9, 9)),
            PrepareResponse::Reject { promised: b(10, 1) }
        );
        assert!(matches!(
            s.prepare(b(11, 0)),
            PrepareResponse::Promise { .. }
        ));
        // A commit seen without a promise still raises the floor.
        let mut t = PaxosState::default();
        t.commit(Commit {
            ballot: b(50, 0),
            update: update(1),
        });
        assert_eq!(
            t.prepare(b(40, 0)),
            PrepareResponse::Reject { promised: b(50, 0) }
        );
    }

    #[test]
    fn propose_never_accepts_below_the_promise() {
        let mut s = PaxosState::default();
        s.prepare(b(20, 0));
        let (ok, p) = s.propose(Commit {
            ballot: b(19, 0),
            update: update(1),
        });
        assert!(!ok);
        assert_eq!(p, Some(b(20, 0)));
        assert_eq!(s.accepted, None);
        // Equal to the promise: accepted.
        assert!(
            s.propose(Commit {
                ballot: b(20, 0),
                update: update(2),
            })
            .0
        );
        // A higher prepare wins; the accepted proposal comes back with the promise.
        match s.prepare(b(30, 0)) {
            PrepareResponse::Promise { accepted, .. } => {
                assert_eq!(accepted.unwrap().update, update(2))
            }
            r => panic!("{r:?}"),
        }
        // The older proposer can no longer get its value accepted.
        assert!(
            !s.propose(Commit {
                ballot: b(20, 0),
                update: update(3),
            })
            .0
        );
        assert_eq!(s.accepted.as_ref().unwrap().ballot, b(20, 0));
    }

    #[test]
    fn commit_clears_older_proposals_and_keeps_the_newest_commit() {
        let mut s = PaxosState::default();
        s.prepare(b(10, 0));
        s.propose(Commit {
            ballot: b(10, 0),
            update: update(1),
        });
        s.commit(Commit {
            ballot: b(10, 0),
            update: update(1),
        });
        assert_eq!(s.accepted, None);
        assert_eq!(s.committed.as_ref().unwrap().ballot, b(10, 0));
        // A late, older commit does not replace the newer one.
        s.commit(Commit {
            ballot: b(5, 0),
            update: update(9),
        });
        assert_eq!(s.committed.as_ref().unwrap().update, update(1));
        // A proposal newer than a commit survives it.
        s.prepare(b(30, 0));
        s.propose(Commit {
            ballot: b(30, 0),
            update: update(4),
        });
        s.commit(Commit {
            ballot: b(20, 0),
            update: update(2),
        });
        assert_eq!(s.accepted.as_ref().unwrap().ballot, b(30, 0));
    }

    #[test]
    fn verbs_round_trip_on_the_wire() {
        let ops = vec![
            ReplicaOp::Prepare {
                table: [7; 16],
                key: key(),
                ballot: b(99, 1),
            },
            ReplicaOp::Propose {
                table: [7; 16],
                proposal: Commit {
                    ballot: b(99, 1),
                    update: update(3),
                },
            },
            ReplicaOp::Commit {
                table: [7; 16],
                commit: Commit {
                    ballot: b(99, 1),
                    update: update(4),
                },
            },
        ];
        for op in ops {
            let e = op.encode();
            assert_eq!(ReplicaOp::decode(op.verb(), &e).unwrap(), op);
            // Truncated payloads are errors, never panics.
            for n in 0..e.len() {
                let _ = ReplicaOp::decode(op.verb(), &e.slice(..n));
            }
        }
        let replies = vec![
            (
                Verb::PaxosPrepare,
                ReplicaReply::Prepare(PrepareResponse::Promise {
                    accepted: Some(Commit {
                        ballot: b(5, 5),
                        update: update(1),
                    }),
                    committed: None,
                }),
            ),
            (
                Verb::PaxosPrepare,
                ReplicaReply::Prepare(PrepareResponse::Reject { promised: b(6, 6) }),
            ),
            (
                Verb::PaxosPropose,
                ReplicaReply::Propose(true, Some(b(1, 1))),
            ),
            (Verb::PaxosPropose, ReplicaReply::Propose(false, None)),
            (Verb::PaxosCommit, ReplicaReply::Commit),
        ];
        for (verb, r) in replies {
            let e = r.encode();
            assert_eq!(ReplicaReply::decode(verb, &e).unwrap(), r);
            for n in 0..e.len() {
                let _ = ReplicaReply::decode(verb, &e.slice(..n));
            }
        }
    }

    #[test]
    fn state_survives_its_system_paxos_row() {
        let schema = crate::schema::Schema::new_with_system_keyspaces("dc1");
        let paxos = schema.table("system", "paxos").unwrap().clone();
        let cols = PaxosColumns::of(&paxos).unwrap();
        let mut s = PaxosState::default();
        s.prepare(b(10, 1));
        s.propose(Commit {
            ballot: b(10, 1),
            update: update(1),
        });
        let m = state_mutation(
            &paxos,
            &cols,
            &[3; 16],
            &key(),
            &PaxosState::default(),
            &s,
            100,
            3600,
            1000,
        )
        .unwrap();
        assert_eq!(m.update.key.key, key().key);
        let row = &m.update.rows[0].1;
        assert_eq!(decode_state(&cols, Some(row)), s);
        // Nothing changed: nothing written.
        assert!(state_mutation(&paxos, &cols, &[3; 16], &key(), &s, &s, 100, 3600, 1000).is_none());
    }
}
