//! Counter updates in a cluster, through a leader replica (Cassandra's
//! counter leader, `StorageProxy.mutateCounter`).
//!
//! The coordinator turns the statement into deltas (the update evaluated
//! against an empty partition: each counter cell holds its increment) and
//! sends them to the *leader*: the first live replica of the token in
//! placement order (itself, when that is this node). The leader adds the
//! deltas to its current values on the shard owning the token — read, add
//! and write with no suspension point, so increments through one leader
//! are never lost — and replicates the resulting cells to the other
//! replicas at the request's consistency.
//!
//! Unlike Cassandra, the leader is not "the coordinator if it is a
//! replica": the replicated cells are last-write-wins totals, not
//! Cassandra's per-replica counter shards, so every coordinator must
//! agree on one leader per token. Limitation (`docs/lwt.md`): while
//! coordinators disagree on which replica is the first live one (a node
//! failing or coming back, before gossip converges), or when the leader's
//! own copy is stale (it came back and has not received its hints yet),
//! increments can be lost.

use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use engine::mutation::{Cell as DataCell, ColumnData, Mutation, PartitionUpdate, Row};
use engine::read::ReadCommand;
use proto::consistency::Consistency;
use proto::error::{DbError, ErrorResponse};

use super::replication::{block_for, ReplicaError};
use super::storage_proxy::{
    check_availability, replica_failure, write_failure, ReplicaFailure, Replication, StorageProxy,
};
use crate::net::{MessagingService, Verb};
use crate::node::services;
use crate::schema::{KeyspaceMetadata, TableMetadata};
use crate::shard::ShardContext;

/// Adds the counter deltas of `delta` to `current` (live content of the
/// same partition): the cells to write. Each new cell is timestamped after
/// the cell it replaces.
pub fn add_deltas(
    current: Option<&PartitionUpdate>,
    delta: &PartitionUpdate,
) -> Result<PartitionUpdate, ErrorResponse> {
    let add = |cur_row: Option<&Row>, row: &Row| -> Result<Row, ErrorResponse> {
        let mut out = Row {
            liveness: row.liveness,
            deletion: row.deletion,
            columns: Vec::with_capacity(row.columns.len()),
        };
        for (id, data) in &row.columns {
            let ColumnData::Simple(d) = data else {
                return Err(ErrorResponse::server(
                    "counter update with a collection cell",
                ));
            };
            let Some(v) = d.value.as_ref() else {
                out.columns.push((*id, data.clone()));
                continue;
            };
            let dv = i64::from_be_bytes(
                v[..]
                    .try_into()
                    .map_err(|_| ErrorResponse::invalid("Invalid counter increment"))?,
            );
            let cur = cur_row.and_then(|r| {
                r.columns.iter().find_map(|(c, data)| match data {
                    ColumnData::Simple(cell) if c == id => Some(cell),
                    _ => None,
                })
            });
            let (value, ts) = match cur {
                Some(DataCell {
                    value: Some(v),
                    timestamp,
                    ..
                }) if v.len() == 8 => (
                    i64::from_be_bytes(v[..].try_into().unwrap_or_default()),
                    *timestamp,
                ),
                _ => (0, i64::MIN),
            };
            out.columns.push((
                *id,
                ColumnData::Simple(DataCell {
                    timestamp: d.timestamp.max(ts.saturating_add(1)),
                    ttl: 0,
                    expiry: 0,
                    value: Some(Bytes::copy_from_slice(
                        &value.wrapping_add(dv).to_be_bytes(),
                    )),
                }),
            ));
        }
        Ok(out)
    };
    let mut out = PartitionUpdate::new(delta.key.clone());
    out.tombstone = delta.tombstone;
    out.range_tombstones = delta.range_tombstones.clone();
    if let Some(s) = &delta.static_row {
        out.static_row = Some(add(current.and_then(|c| c.static_row.as_ref()), s)?);
    }
    for (ck, row) in &delta.rows {
        let cur = current.and_then(|c| c.rows.iter().find(|(k, _)| k == ck).map(|(_, r)| r));
        out.rows.push((ck.clone(), add(cur, row)?));
    }
    Ok(out)
}

impl StorageProxy {
    /// Replica path of the counter leader: must run on the shard owning the
    /// key. Reads the current values, adds `delta`, writes the result and
    /// returns it (to be replicated).
    pub async fn replica_counter_apply(
        &self,
        delta: Mutation,
        now: i32,
    ) -> Result<Mutation, ErrorResponse> {
        self.stats.replica_ops.set(self.stats.replica_ops.get() + 1);
        // No await from the read to the write.
        let current = self
            .db
            .borrow()
            .read_partition(&delta.table, &delta.update.key, &ReadCommand::full(now))
            .map_err(|e| self.read_error(&delta.table, e))?;
        let update = add_deltas(current.as_ref(), &delta.update)?;
        let m = Mutation {
            table: delta.table,
            update,
        };
        self.apply_index_entries(&m)?;
        let pos = self
            .db
            .borrow_mut()
            .apply_deferred(&m)
            .map_err(|e| self.write_error(e))?;
        self.wait_durable(pos).await?;
        Ok(m)
    }

    /// The leader's part: applies `deltas` on the owner shard, then sends the
    /// resulting cells to every replica and waits for `cl`.
    pub async fn counter_leader_apply(
        &self,
        ks: &KeyspaceMetadata,
        deltas: Vec<Mutation>,
        cl: Consistency,
    ) -> Result<(), ErrorResponse> {
        self.check_counter_availability(ks, deltas.first().map(|m| m.update.key.token), cl)?;
        let now = (crate::service::client_state::now_micros() / 1_000_000) as i32;
        for delta in deltas {
            let token = delta.update.key.token;
            let result = match self.owner_shard_of(delta.update.key.token) {
                None => self.replica_counter_apply(delta, now).await,
                Some(owner) => {
                    self.on_shard(owner, move |p| {
                        Box::pin(async move { p.replica_counter_apply(delta, now).await })
                    })
                    .await
                }
            };
            // The leader failed: nothing was replicated, so `cl` cannot be
            // met (WriteFailure COUNTER naming this node).
            let result = result.map_err(|e| match replica_failure(&e) {
                Some((reason, cause)) => {
                    let topo = self.topology();
                    let failure = ReplicaFailure {
                        addr: topo.local().addr,
                        reason,
                        cause: cause.to_string(),
                    };
                    let n = topo.replicas(ks, token).len();
                    let block = block_for(&Replication::of(ks), cl, &topo.local().dc, n);
                    write_failure(cl, 0, block, &[failure], "COUNTER")
                }
                None => e,
            })?;
            // Re-applying the result on this node is idempotent (same cells).
            self.mutate_replicated(ks, result, cl, "COUNTER").await?;
        }
        Ok(())
    }

    fn check_counter_availability(
        &self,
        ks: &KeyspaceMetadata,
        token: Option<i64>,
        cl: Consistency,
    ) -> Result<(), ErrorResponse> {
        let Some(token) = token else { return Ok(()) };
        let topo = self.topology();
        let reps = topo.replicas(ks, token);
        let live = |dc: &str| {
            reps.iter()
                .filter(|i| topo.endpoints[**i].alive && topo.endpoints[**i].dc == dc)
                .count()
        };
        check_availability(&Replication::of(ks), cl, &topo.local().dc, &live, true)
    }

    /// A counter update in a cluster (see the module doc): `f` evaluated on
    /// an empty partition gives the deltas; the leader applies them.
    #[allow(clippy::too_many_arguments)]
    pub async fn counter_write<T, F>(
        &self,
        ks: &KeyspaceMetadata,
        table: &TableMetadata,
        key: engine::mutation::PartitionKey,
        cl: Consistency,
        f: F,
    ) -> Result<T, ErrorResponse>
    where
        F: FnOnce(Option<PartitionUpdate>) -> Result<(Vec<Mutation>, T), ErrorResponse>,
    {
        if matches!(cl, Consistency::Serial | Consistency::LocalSerial) {
            return Err(ErrorResponse::invalid(
                "You must use conditional updates for serializable writes",
            ));
        }
        let (deltas, out) = f(None)?;
        if deltas.is_empty() {
            return Ok(out);
        }
        if deltas
            .iter()
            .any(|m| m.table != table.id || m.update.key != key)
        {
            return Err(ErrorResponse::server(
                "internal error: counter update outside its partition",
            ));
        }
        self.check_counter_availability(ks, Some(key.token), cl)?;
        let topo = self.topology();
        let reps = topo.replicas(ks, key.token);
        // Every coordinator must pick the same leader (see the module doc):
        // the first live replica in placement order.
        let Some(leader) = reps.iter().copied().find(|i| topo.endpoints[*i].alive) else {
            return Err(ErrorResponse::unavailable(cl, 1, 0));
        };
        if leader == 0 {
            self.counter_leader_apply(ks, deltas, cl).await?;
            return Ok(out);
        }
        let ctx = self
            .remote
            .borrow()
            .as_ref()
            .and_then(|r| r.context())
            .ok_or_else(|| ErrorResponse::server("no messaging to reach the counter leader"))?;
        let to = topo.endpoints[leader].addr;
        for m in deltas {
            let mut payload = cl.as_u16().to_be_bytes().to_vec();
            engine::serialize::encode_mutation(&m, &mut payload);
            let r = send_counter(&ctx, to, Bytes::from(payload), self.counter_write_timeout).await;
            let block_for = match cl {
                Consistency::All => reps.len(),
                Consistency::Quorum | Consistency::LocalQuorum | Consistency::EachQuorum => {
                    reps.len() / 2 + 1
                }
                Consistency::Two => 2,
                Consistency::Three => 3,
                _ => 1,
            };
            // The leader answered that it (or the replicas it wrote to)
            // failed: WriteFailure COUNTER at once, naming the leader.
            if let Err(ReplicaError::Failure { reason, message }) = r {
                let failure = ReplicaFailure {
                    addr: to,
                    reason,
                    cause: message,
                };
                return Err(write_failure(cl, 0, block_for, &[failure], "COUNTER"));
            }
            if let Err(e) = r {
                log::debug!("counter leader {to} failed: {e}");
                return Err(ErrorResponse::new(
                    DbError::WriteTimeout {
                        consistency: cl,
                        received: 0,
                        block_for: block_for as i32,
                        write_type: "COUNTER".to_string(),
                    },
                    format!("Operation timed out - the counter leader {to} did not answer: {e}"),
                ));
            }
        }
        Ok(out)
    }
}

async fn send_counter(
    ctx: &ShardContext,
    to: IpAddr,
    payload: Bytes,
    timeout: Duration,
) -> Result<(), ReplicaError> {
    let r = ctx
        .shards()
        .invoke_on(0, move |ctx| async move {
            let Some(c) = super::cluster::cluster(&ctx) else {
                return Err("not in a cluster".to_string());
            };
            c.ms.send_request(to, Verb::CounterMutationReq, payload, timeout)
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| ReplicaError::NoResponse(e.to_string()))?
        .map_err(ReplicaError::NoResponse)?;
    leader_reply(r)
}

/// The leader's answer: status 2 is a failure with its reason (the
/// leader's own, or its replicas' WriteFailure); anything else that is not
/// a success (status 1: unavailable, timed out) is treated as no answer,
/// as before failures were told apart.
fn leader_reply(r: Bytes) -> Result<(), ReplicaError> {
    match r.first() {
        Some(2) => super::forwarding::decode_reply(r).map(|_| ()),
        _ => super::cluster::unstatus(r)
            .map(|_| ())
            .map_err(ReplicaError::NoResponse),
    }
}

/// Registers `CounterMutationReq` (`[u16 consistency][mutation]`:
/// the deltas, applied by this node as the leader). A replica failure
/// (the leader's own or its replicas') goes back with its reason (status
/// 2); other errors as a message (status 1).
pub fn register_verbs(ms: &Rc<MessagingService>, ctx: &ShardContext) {
    let c = ctx.clone();
    let handler: crate::net::Handler = Rc::new(move |_, payload| {
        let ctx = c.clone();
        Box::pin(async move {
            let r = async {
                let raw = payload.get(..2).ok_or("truncated counter mutation")?;
                let cl =
                    proto::consistency::Consistency::from_u16(u16::from_be_bytes([raw[0], raw[1]]))
                        .ok_or("bad consistency")?;
                let m = engine::serialize::decode_mutation(&payload.slice(2..))
                    .map_err(|e| e.to_string())?;
                let s = services(&ctx).map_err(|e| e.message)?;
                let schema = s.migrations.schema();
                let table = schema.table_by_id(&m.table).ok_or("unknown table")?;
                let ks = schema
                    .keyspace(&table.keyspace)
                    .cloned()
                    .ok_or("unknown keyspace")?;
                Ok::<_, String>(s.proxy.counter_leader_apply(&ks, vec![m], cl).await)
            }
            .await;
            Some(match r {
                Ok(Ok(())) => super::cluster::status(Ok(Bytes::new())),
                Ok(Err(e)) if replica_failure(&e).is_some() => {
                    super::forwarding::encode_failure(&ReplicaError::from_response(&e))
                }
                Ok(Err(e)) => super::cluster::status(Err(e.message)),
                Err(e) => super::cluster::status(Err(e)),
            })
        })
    });
    ms.register(Verb::CounterMutationReq, handler);
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::mutation::PartitionKey;

    #[test]
    fn only_a_reasoned_leader_answer_is_a_failure() {
        assert!(leader_reply(Bytes::from_static(&[0])).is_ok());
        // Status 2: the leader (or its replicas) failed, with a reason.
        let failed = super::super::forwarding::encode_failure(&ReplicaError::Failure {
            reason: proto::error::RequestFailureReason::Unknown,
            message: "commitlog failure: full".into(),
        });
        match leader_reply(failed) {
            Err(ReplicaError::Failure { message, .. }) => assert!(message.contains("commitlog")),
            other => panic!("{other:?}"),
        }
        // Status 1 (unavailable, timed out at the leader) stays "no
        // answer": the coordinator keeps answering WriteTimeout for it.
        let mut b = vec![1u8];
        b.extend_from_slice(b"Operation timed out");
        assert!(matches!(
            leader_reply(Bytes::from(b)),
            Err(ReplicaError::NoResponse(_))
        ));
        assert!(matches!(
            leader_reply(Bytes::new()),
            Err(ReplicaError::NoResponse(_))
        ));
    }

    fn cell(v: i64, ts: i64) -> ColumnData {
        ColumnData::Simple(DataCell {
            timestamp: ts,
            ttl: 0,
            expiry: 0,
            value: Some(Bytes::copy_from_slice(&v.to_be_bytes())),
        })
    }

    fn part(rows: Vec<(u8, Vec<(u32, ColumnData)>)>) -> PartitionUpdate {
        let mut p = PartitionUpdate::new(PartitionKey {
            token: 1,
            key: Bytes::from_static(b"k"),
        });
        for (ck, columns) in rows {
            p.rows.push((
                vec![Bytes::copy_from_slice(&[ck])],
                Row {
                    liveness: None,
                    deletion: None,
                    columns,
                },
            ));
        }
        p
    }

    #[test]
    fn deltas_add_to_current_values_after_their_timestamps() {
        let current = part(vec![(1, vec![(1, cell(10, 500)), (2, cell(-3, 10))])]);
        let delta = part(vec![
            (
                1,
                vec![(1, cell(5, 100)), (2, cell(4, 100)), (3, cell(7, 100))],
            ),
            (2, vec![(1, cell(-2, 100))]),
        ]);
        let out = add_deltas(Some(&current), &delta).unwrap();
        let get = |r: usize, c: usize| match &out.rows[r].1.columns[c].1 {
            ColumnData::Simple(c) => (
                i64::from_be_bytes(c.value.as_ref().unwrap()[..].try_into().unwrap()),
                c.timestamp,
            ),
            _ => panic!(),
        };
        assert_eq!(get(0, 0), (15, 501));
        assert_eq!(get(0, 1), (1, 100));
        assert_eq!(get(0, 2), (7, 100));
        assert_eq!(get(1, 0), (-2, 100));
        let none = add_deltas(None, &delta).unwrap();
        assert_eq!(none.rows.len(), 2);
    }
}
