//! The replicated paths of the coordinator: a write goes to every replica
//! of its token and is acknowledged when the consistency level is met; a
//! read asks as many replicas as the consistency level needs (closest
//! first), reconciles their raw data by last-write-wins and repairs the
//! stale ones before answering.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use engine::mutation::{Mutation, PartitionKey, PartitionUpdate, TableId};
use engine::read::{ReadCommand, ScanBound, TokenRange};
use glommio::channels::local_channel;
use proto::consistency::Consistency;
use proto::error::{DbError, ErrorResponse};

use super::storage_proxy::{check_availability, Replication, StorageProxy};
use super::topology::Topology;
use crate::cql3::statements::engine_schema;
use crate::schema::{KeyspaceMetadata, TableMetadata};

type Fut<T> = Pin<Box<dyn Future<Output = Result<T, String>>>>;

/// The replica paths of other nodes, reached through the MessagingService.
pub trait RemoteReplicas {
    fn apply(&self, to: IpAddr, m: Mutation, timeout: Duration) -> Fut<()>;
    fn read_raw(
        &self,
        to: IpAddr,
        table: TableId,
        key: PartitionKey,
        cmd: ReadCommand,
        timeout: Duration,
    ) -> Fut<Option<PartitionUpdate>>;
    fn scan_raw(
        &self,
        to: IpAddr,
        table: TableId,
        range: TokenRange,
        cmd: ReadCommand,
        limit: usize,
        timeout: Duration,
    ) -> Fut<Vec<PartitionUpdate>>;
    fn truncate(&self, to: IpAddr, table: TableId, timeout: Duration) -> Fut<()>;
}

fn quorum(rf: usize) -> usize {
    rf / 2 + 1
}

/// Whether the replicas in `acked` (endpoint indexes) satisfy `cl`, and
/// (received, block_for) for error reports.
fn satisfied(
    topo: &Topology,
    rep: &Replication,
    reps: &[usize],
    cl: Consistency,
    acked: &[usize],
) -> (bool, usize, usize) {
    let local_dc = &topo.local().dc;
    let in_dc = |dc: &str| {
        acked
            .iter()
            .filter(|i| topo.endpoints[**i].dc == dc)
            .count()
    };
    let rf_in = |dc: &str| match rep {
        Replication::Simple(rf) => *rf,
        Replication::PerDc(m) => m.get(dc).copied().unwrap_or(0),
        Replication::Local => 1,
    };
    let total_rf = match rep {
        Replication::Simple(rf) => *rf,
        Replication::PerDc(m) => m.values().sum(),
        Replication::Local => 1,
    };
    let need = |n: usize, have: usize| (have >= n, have, n);
    match cl {
        Consistency::Any | Consistency::One => need(1, acked.len()),
        Consistency::Two => need(2, acked.len()),
        Consistency::Three => need(3, acked.len()),
        Consistency::Quorum | Consistency::Serial => need(quorum(total_rf), acked.len()),
        Consistency::All => need(reps.len().max(total_rf.min(reps.len())), acked.len()),
        Consistency::LocalOne => need(1, in_dc(local_dc)),
        Consistency::LocalQuorum | Consistency::LocalSerial => {
            need(quorum(rf_in(local_dc)), in_dc(local_dc))
        }
        Consistency::EachQuorum => match rep {
            Replication::PerDc(m) => {
                let mut ok = true;
                let (mut have, mut n) = (0, 0);
                for (dc, rf) in m {
                    if *rf == 0 {
                        continue;
                    }
                    let h = in_dc(dc);
                    ok &= h >= quorum(*rf);
                    have += h;
                    n += quorum(*rf);
                }
                (ok, have, n)
            }
            _ => need(quorum(total_rf), acked.len()),
        },
    }
}

impl StorageProxy {
    fn check_replicas(
        &self,
        topo: &Topology,
        rep: &Replication,
        reps: &[usize],
        cl: Consistency,
        is_write: bool,
    ) -> Result<(), ErrorResponse> {
        if is_write && matches!(cl, Consistency::Serial | Consistency::LocalSerial) {
            return Err(ErrorResponse::invalid(
                "You must use conditional updates for serializable writes",
            ));
        }
        let live = |dc: &str| {
            reps.iter()
                .filter(|i| topo.endpoints[**i].alive && topo.endpoints[**i].dc == dc)
                .count()
        };
        check_availability(rep, cl, &topo.local().dc, &live, is_write)
    }

    /// Sends `m` to every live replica of its token; answers once `cl` is met.
    pub(crate) async fn mutate_replicated(
        &self,
        ks: &KeyspaceMetadata,
        m: Mutation,
        cl: Consistency,
        write_type: &str,
    ) -> Result<(), ErrorResponse> {
        let topo = self.topology();
        let rep = Replication::of(ks);
        let reps = topo.replicas(ks, m.update.key.token);
        self.check_replicas(&topo, &rep, &reps, cl, true)?;
        let remote = self.remote.borrow().clone();
        let (tx, rx) = local_channel::new_bounded(reps.len().max(1));
        let tx = Rc::new(tx);
        let mut acked = Vec::new();
        let mut local_error = None;
        for &i in &reps {
            let ep = &topo.endpoints[i];
            if i == 0 {
                match self.apply_routed(m.clone()).await {
                    Ok(()) => acked.push(0),
                    Err(e) => local_error = Some(e),
                }
                continue;
            }
            let (Some(remote), true) = (remote.as_ref(), ep.alive) else {
                continue;
            };
            let fut = remote.apply(ep.addr, m.clone(), self.write_timeout);
            let tx = tx.clone();
            glommio::spawn_local(async move {
                let ok = fut.await.is_ok();
                let _ = tx.try_send((i, ok));
            })
            .detach();
        }
        drop(tx);
        let deadline = Instant::now() + self.write_timeout;
        loop {
            let (ok, received, block_for) = satisfied(&topo, &rep, &reps, cl, &acked);
            if ok || cl == Consistency::Any {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let next = if left.is_zero() {
                Err(())
            } else {
                crate::shard::timeout(left, rx.recv()).await.map_err(|_| ())
            };
            match next {
                Ok(Some((i, true))) => acked.push(i),
                Ok(Some((_, false))) => {}
                Ok(None) | Err(()) => {
                    if let Some(e) = local_error {
                        if reps.len() == 1 {
                            return Err(e);
                        }
                    }
                    return Err(ErrorResponse::new(
                        DbError::WriteTimeout {
                            consistency: cl,
                            received: received as i32,
                            block_for: block_for as i32,
                            write_type: write_type.to_string(),
                        },
                        format!("Operation timed out - received only {received} responses."),
                    ));
                }
            }
        }
    }

    /// Replicas to read from for `cl`, closest first: this node, its
    /// datacenter, then the others.
    fn read_targets(
        &self,
        topo: &Topology,
        rep: &Replication,
        reps: &[usize],
        cl: Consistency,
    ) -> Vec<usize> {
        let local_dc = &topo.local().dc;
        let mut live: Vec<usize> = reps
            .iter()
            .copied()
            .filter(|i| topo.endpoints[*i].alive)
            .collect();
        live.sort_by_key(|i| (*i != 0, topo.endpoints[*i].dc != *local_dc));
        let mut chosen = Vec::new();
        for i in live {
            if satisfied(topo, rep, reps, cl, &chosen).0 {
                break;
            }
            let dc = &topo.endpoints[i].dc;
            let useful = match cl {
                Consistency::LocalOne | Consistency::LocalQuorum | Consistency::LocalSerial => {
                    dc == local_dc
                }
                _ => true,
            };
            if useful {
                chosen.push(i);
            }
        }
        chosen
    }

    pub(crate) async fn read_replicated(
        &self,
        ks: &KeyspaceMetadata,
        table: &TableMetadata,
        key: &PartitionKey,
        cmd: &ReadCommand,
        cl: Consistency,
    ) -> Result<Option<PartitionUpdate>, ErrorResponse> {
        let topo = self.topology();
        let rep = Replication::of(ks);
        let reps = topo.replicas(ks, key.token);
        self.check_replicas(&topo, &rep, &reps, cl, false)?;
        let targets = self.read_targets(&topo, &rep, &reps, cl);
        let remote = self.remote.borrow().clone();
        let (tx, rx) = local_channel::new_bounded(targets.len().max(1));
        let tx = Rc::new(tx);
        let mut answers: Vec<(usize, Option<PartitionUpdate>)> = Vec::new();
        for &i in &targets {
            if i == 0 {
                answers.push((
                    0,
                    self.read_raw_routed(table.id, key.clone(), cmd.clone())
                        .await?,
                ));
                continue;
            }
            let Some(remote) = remote.as_ref() else {
                continue;
            };
            let fut = remote.read_raw(
                topo.endpoints[i].addr,
                table.id,
                key.clone(),
                cmd.clone(),
                self.read_timeout,
            );
            let tx = tx.clone();
            glommio::spawn_local(async move {
                let r = fut.await;
                let _ = tx.try_send((i, r));
            })
            .detach();
        }
        drop(tx);
        let deadline = Instant::now() + self.read_timeout;
        while answers.len() < targets.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = if left.is_zero() {
                Err(())
            } else {
                crate::shard::timeout(left, rx.recv()).await.map_err(|_| ())
            };
            match next {
                Ok(Some((i, Ok(p)))) => answers.push((i, p)),
                Ok(Some((_, Err(_)))) | Ok(None) | Err(()) => {
                    let (_, received, block_for) = satisfied(
                        &topo,
                        &rep,
                        &reps,
                        cl,
                        &answers.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
                    );
                    return Err(ErrorResponse::new(
                        DbError::ReadTimeout {
                            consistency: cl,
                            received: received as i32,
                            block_for: block_for as i32,
                            data_present: !answers.is_empty(),
                        },
                        format!("Operation timed out - received only {received} responses."),
                    ));
                }
            }
        }
        let schema = engine_schema(table);
        let mut merged: Option<PartitionUpdate> = None;
        for (_, p) in &answers {
            if let Some(p) = p {
                match &mut merged {
                    None => merged = Some(p.clone()),
                    Some(m) => engine::reconcile::apply_update(&schema, m, p),
                }
            }
        }
        // Blocking read repair: stale replicas get the reconciled data first.
        if let Some(m) = &merged {
            let mut repairs = Vec::new();
            for (i, p) in &answers {
                let mut check = p
                    .clone()
                    .unwrap_or_else(|| PartitionUpdate::new(key.clone()));
                engine::reconcile::apply_update(&schema, &mut check, m);
                if Some(&check) != p.as_ref() {
                    repairs.push(*i);
                }
            }
            for i in repairs {
                let mutation = Mutation {
                    table: table.id,
                    update: m.clone(),
                };
                if i == 0 {
                    let _ = self.apply_routed(mutation).await;
                } else if let Some(remote) = remote.as_ref() {
                    let _ = remote
                        .apply(topo.endpoints[i].addr, mutation, self.write_timeout)
                        .await;
                }
            }
        }
        Ok(merged.and_then(|raw| engine::read::to_live(&schema, &raw, cmd)))
    }

    /// A range scan in a cluster: every live node contributes the
    /// partitions it holds; duplicates are reconciled.
    pub(crate) async fn scan_replicated(
        &self,
        ks: &KeyspaceMetadata,
        table: &TableMetadata,
        range: &TokenRange,
        cmd: &ReadCommand,
        limit: usize,
        cl: Consistency,
    ) -> Result<Vec<PartitionUpdate>, ErrorResponse> {
        let topo = self.topology();
        let rep = Replication::of(ks);
        let all: Vec<usize> = (0..topo.endpoints.len()).collect();
        self.check_replicas(&topo, &rep, &all, cl, false)?;
        let schema = engine_schema(table);
        let remote = self.remote.borrow().clone();
        let mut out = Vec::new();
        let mut range = range.clone();
        loop {
            let mut raw: Vec<PartitionUpdate> = self
                .scan_raw_all_shards(table.id, &range, cmd, limit)
                .await?;
            for (i, ep) in topo.endpoints.iter().enumerate().skip(1) {
                let (Some(remote), true) = (remote.as_ref(), ep.alive) else {
                    continue;
                };
                let _ = i;
                match remote
                    .scan_raw(
                        ep.addr,
                        table.id,
                        range.clone(),
                        cmd.clone(),
                        limit,
                        self.read_timeout,
                    )
                    .await
                {
                    Ok(p) => raw.extend(p),
                    Err(e) => {
                        return Err(ErrorResponse::new(
                            DbError::ReadTimeout {
                                consistency: cl,
                                received: 0,
                                block_for: 1,
                                data_present: false,
                            },
                            format!("Operation timed out: {e}"),
                        ))
                    }
                }
            }
            raw.sort_by(|a, b| (a.key.token, &a.key.key).cmp(&(b.key.token, &b.key.key)));
            let mut merged: Vec<PartitionUpdate> = Vec::new();
            for p in raw {
                match merged.last_mut() {
                    Some(m) if m.key == p.key => engine::reconcile::apply_update(&schema, m, &p),
                    _ => merged.push(p),
                }
            }
            let exhausted = merged.len() < limit;
            merged.truncate(limit);
            let last = merged.last().map(|p| p.key.clone());
            for p in merged {
                if let Some(live) = engine::read::to_live(&schema, &p, cmd) {
                    out.push(live);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
            match (exhausted, last) {
                (false, Some(k)) => {
                    range.start = ScanBound::Key {
                        token: k.token,
                        key: k.key,
                        inclusive: false,
                    }
                }
                _ => return Ok(out),
            }
        }
    }
}
