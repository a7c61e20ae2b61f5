//! The replicated paths of the coordinator: a write goes to every replica
//! of its token and is acknowledged when the consistency level is met; a
//! read asks as many replicas as the consistency level needs (closest
//! first), reconciles their raw data by last-write-wins and repairs the
//! stale ones before answering.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use engine::mutation::{Mutation, PartitionKey, PartitionUpdate, TableId};
use engine::read::{ReadCommand, ScanBound, TokenRange};
use glommio::channels::local_channel::{self, LocalSender};
use proto::consistency::Consistency;
use proto::error::{DbError, ErrorResponse, RequestFailureReason};

use super::storage_proxy::{
    check_availability, read_failure, replica_failure, write_failure, ReplicaFailure, Replication,
    StorageProxy,
};
use super::topology::Topology;
use crate::cql3::statements::engine_schema;
use crate::schema::{KeyspaceMetadata, TableMetadata};
use crate::shard::ShardContext;

/// Why a replica did not answer a request with data or an ack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaError {
    /// The replica answered that it failed (Cassandra's failure response,
    /// `RequestCallback.onFailure`): counted against the consistency level
    /// at once.
    Failure {
        reason: RequestFailureReason,
        /// The replica's own words (e.g. "commitlog failure: ...").
        message: String,
    },
    /// No answer: timed out, unreachable, overloaded, never sent. The
    /// coordinator keeps waiting for the others until its timeout.
    NoResponse(String),
}

impl ReplicaError {
    /// A failure answered by a replica, with an unknown reason.
    pub fn failure(message: impl Into<String>) -> ReplicaError {
        ReplicaError::Failure {
            reason: RequestFailureReason::Unknown,
            message: message.into(),
        }
    }

    /// The replica's failure as a replica verb reports it: the reason of
    /// a replica-path failure (`StorageProxy::write_error`), else UNKNOWN.
    pub fn from_response(e: &ErrorResponse) -> ReplicaError {
        match replica_failure(e) {
            Some((reason, message)) => ReplicaError::Failure {
                reason,
                message: message.to_string(),
            },
            None => ReplicaError::failure(e.message.clone()),
        }
    }
}

impl std::fmt::Display for ReplicaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplicaError::Failure { reason, message } => write!(f, "{message} ({reason})"),
            ReplicaError::NoResponse(m) => f.write_str(m),
        }
    }
}

/// A replica answering with a failure flag (no handler, a response too
/// large) failed; every other messaging error is the absence of an answer.
impl From<crate::net::MessagingError> for ReplicaError {
    fn from(e: crate::net::MessagingError) -> ReplicaError {
        match e {
            crate::net::MessagingError::Remote(m) => ReplicaError::failure(m),
            e => ReplicaError::NoResponse(e.to_string()),
        }
    }
}

type Fut<T> = Pin<Box<dyn Future<Output = Result<T, ReplicaError>>>>;

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
    /// The digest ([`digest_of`]) of a replica's raw answer to a read.
    fn read_digest(
        &self,
        _to: IpAddr,
        _table: TableId,
        _key: PartitionKey,
        _cmd: ReadCommand,
        _timeout: Duration,
    ) -> Fut<[u8; 16]> {
        Box::pin(async { Err(ReplicaError::failure("digest reads are not supported")) })
    }
    /// The shard this coordinator runs on, to reach shard 0's forwarding
    /// and hints services (`None`: direct sends only, no hints).
    fn context(&self) -> Option<ShardContext> {
        None
    }
}

/// The digest of a replica's raw (tombstone-carrying) answer to a read:
/// MD5 of the partition serialized as on the wire
/// (`engine::serialize::encode_partition`); an absent partition hashes
/// the empty string. Replicas holding the same data agree on it.
pub(crate) fn digest_of(p: Option<&PartitionUpdate>) -> [u8; 16] {
    match p {
        None => crate::schema::digest::md5(b""),
        Some(p) => {
            let mut out = Vec::new();
            engine::serialize::encode_partition(p, &mut out);
            crate::schema::digest::md5(&out)
        }
    }
}

/// A replica's answer to a data or a digest request.
enum ReadAnswer {
    Data(Option<PartitionUpdate>),
    Digest([u8; 16]),
}

/// What became of the write sent to one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Acked,
    /// Not acknowledged, but a hint was stored.
    Hinted,
    /// Not acknowledged (no answer) and not hinted.
    Lost,
    /// The replica answered with a failure (it is hinted too).
    Failed(RequestFailureReason, String),
}

/// Sends one write to the remote replicas and reports each one's outcome.
struct Sender {
    ctx: Option<ShardContext>,
    remote: Option<Rc<dyn RemoteReplicas>>,
    topo: Arc<Topology>,
    mutation: Mutation,
    encoded: Bytes,
    timeout: Duration,
    tx: Rc<LocalSender<(usize, Outcome)>>,
}

impl Sender {
    /// Stores a hint for replica `i` (when there is a hints service).
    fn hinter(&self, i: usize) -> impl Future<Output = Outcome> + 'static {
        let ctx = self.ctx.clone();
        let ep = &self.topo.endpoints[i];
        let (host, addr) = (ep.host_id, ep.addr);
        let m = self.encoded.clone();
        async move {
            let Some(ctx) = ctx else {
                return Outcome::Lost;
            };
            match super::hints::store_hint(&ctx, host, addr, m).await {
                Ok(()) => Outcome::Hinted,
                Err(_) => Outcome::Lost,
            }
        }
    }

    /// Replica `i` is down: hint it without sending.
    fn hint_only(&self, i: usize) {
        let hint = self.hinter(i);
        let tx = self.tx.clone();
        glommio::spawn_local(async move {
            let o = hint.await;
            let _ = tx.try_send((i, o));
        })
        .detach();
    }

    /// Sends to replica `i` directly; hints it if that fails. `counts`:
    /// whether its outcome is reported (pending replicas' is not).
    fn direct(&self, i: usize, counts: bool) {
        let ep = &self.topo.endpoints[i];
        let cross_dc = ep.dc != self.topo.local().dc;
        let send: Fut<()> = match (&self.ctx, &self.remote) {
            (Some(ctx), _) => {
                let (ctx, e, addr, t) = (ctx.clone(), self.encoded.clone(), ep.addr, self.timeout);
                Box::pin(async move {
                    super::forwarding::send_mutation(&ctx, addr, e, t, cross_dc).await
                })
            }
            (None, Some(r)) => r.apply(ep.addr, self.mutation.clone(), self.timeout),
            (None, None) => return,
        };
        let hint = self.hinter(i);
        let tx = self.tx.clone();
        glommio::spawn_local(async move {
            let r = send.await;
            report(&tx, i, counts, r, hint).await;
        })
        .detach();
    }

    /// One message to a remote DC: a forwarder chosen among its live
    /// replicas (by token, to spread the load) relays to the others; each
    /// replica's ack is awaited on its own.
    async fn remote_dc(&self, group: Vec<usize>, token: i64) {
        let Some(ctx) = &self.ctx else {
            for i in group {
                self.direct(i, true);
            }
            return;
        };
        if group.len() == 1 {
            self.direct(group[0], true);
            return;
        }
        let forwarder = group[(token as u64 % group.len() as u64) as usize];
        let others: Vec<IpAddr> = group
            .iter()
            .filter(|i| **i != forwarder)
            .map(|i| self.topo.endpoints[*i].addr)
            .collect();
        let id = super::forwarding::next_write_id(ctx.id());
        let started = super::forwarding::start_forward(
            ctx,
            id,
            self.topo.local().addr,
            self.topo.endpoints[forwarder].addr,
            others,
            self.encoded.clone(),
            self.timeout,
        )
        .await;
        if let Err(e) = &started {
            log::debug!("cannot forward a write: {e}");
        }
        for i in group {
            let hint = self.hinter(i);
            let tx = self.tx.clone();
            let (ctx, addr, t) = (ctx.clone(), self.topo.endpoints[i].addr, self.timeout);
            let failed = started.is_err();
            glommio::spawn_local(async move {
                let r = if failed {
                    Err(ReplicaError::NoResponse("cannot forward".into()))
                } else {
                    super::forwarding::wait_ack(&ctx, id, addr, t).await
                };
                report(&tx, i, true, r, hint).await;
            })
            .detach();
        }
    }
}

/// Reports replica `i`'s answer to the coordinator (if it `counts`): an
/// ack; a failure at once (then the replica is hinted, as Cassandra's
/// `hintOnFailure`); no answer once its hint is stored (or not).
async fn report(
    tx: &LocalSender<(usize, Outcome)>,
    i: usize,
    counts: bool,
    r: Result<(), ReplicaError>,
    hint: impl Future<Output = Outcome>,
) {
    let o = match r {
        Ok(()) => Outcome::Acked,
        Err(ReplicaError::Failure { reason, message }) => {
            if counts {
                let _ = tx.try_send((i, Outcome::Failed(reason, message)));
            }
            hint.await;
            return;
        }
        Err(ReplicaError::NoResponse(_)) => hint.await,
    };
    if counts {
        let _ = tx.try_send((i, o));
    }
}

fn quorum(rf: usize) -> usize {
    rf / 2 + 1
}

/// How many replica answers `cl` needs (Cassandra's `blockFor`), with
/// `replicas` natural replicas of the token (for ALL).
pub(crate) fn block_for(
    rep: &Replication,
    cl: Consistency,
    local_dc: &str,
    replicas: usize,
) -> usize {
    let (total_rf, local_rf) = match rep {
        Replication::Simple(rf) => (*rf, *rf),
        Replication::PerDc(m) => (m.values().sum(), m.get(local_dc).copied().unwrap_or(0)),
        Replication::Local => (1, 1),
    };
    match cl {
        Consistency::Any | Consistency::One | Consistency::LocalOne => 1,
        Consistency::Two => 2,
        Consistency::Three => 3,
        Consistency::Quorum | Consistency::Serial => quorum(total_rf),
        Consistency::All => replicas,
        Consistency::LocalQuorum | Consistency::LocalSerial => quorum(local_rf),
        Consistency::EachQuorum => match rep {
            Replication::PerDc(m) => m.values().filter(|rf| **rf > 0).map(|rf| quorum(*rf)).sum(),
            _ => quorum(total_rf),
        },
    }
}

/// Whether failed replicas make `cl` impossible to meet (Cassandra's
/// `blockFor + failures > candidates`): for LOCAL_* only the local DC's
/// replicas and failures count; for EACH_QUORUM (NetworkTopologyStrategy)
/// any DC that can no longer reach its quorum decides. `replica_dcs` are
/// the DCs of the replicas the request was sent to (the candidates),
/// `failed_dcs` those of the replicas that answered with a failure.
pub(crate) fn cl_unreachable(
    rep: &Replication,
    cl: Consistency,
    local_dc: &str,
    replica_dcs: &[&str],
    failed_dcs: &[&str],
) -> bool {
    if failed_dcs.is_empty() {
        return false;
    }
    let in_dc = |v: &[&str], dc: &str| v.iter().filter(|d| **d == dc).count();
    match (cl, rep) {
        (Consistency::LocalOne | Consistency::LocalQuorum | Consistency::LocalSerial, _) => {
            block_for(rep, cl, local_dc, replica_dcs.len()) + in_dc(failed_dcs, local_dc)
                > in_dc(replica_dcs, local_dc)
        }
        (Consistency::EachQuorum, Replication::PerDc(m)) => m
            .iter()
            .filter(|(_, rf)| **rf > 0)
            .any(|(dc, rf)| quorum(*rf) + in_dc(failed_dcs, dc) > in_dc(replica_dcs, dc)),
        _ => block_for(rep, cl, local_dc, replica_dcs.len()) + failed_dcs.len() > replica_dcs.len(),
    }
}

/// [`cl_unreachable`] over endpoint indexes of `topo`.
pub(crate) fn unreachable_with(
    topo: &Topology,
    rep: &Replication,
    candidates: &[usize],
    cl: Consistency,
    failed: &[(usize, ReplicaFailure)],
) -> bool {
    let dc = |i: usize| topo.endpoints[i].dc.as_str();
    let replica_dcs: Vec<&str> = candidates.iter().map(|i| dc(*i)).collect();
    let failed_dcs: Vec<&str> = failed.iter().map(|(i, _)| dc(*i)).collect();
    cl_unreachable(rep, cl, &topo.local().dc, &replica_dcs, &failed_dcs)
}

/// Whether the replicas in `acked` (endpoint indexes) satisfy `cl`, and
/// (received, block_for) for error reports.
pub(crate) fn satisfied(
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

    /// Sends `m` to every replica of its token: directly to the replicas of
    /// this DC, through one forwarder per remote DC (see
    /// `service::forwarding`); replicas that are down or fail get a hint
    /// (see `service::hints`). Answers once `cl` is met by replica acks
    /// (hints count only for `ANY`), or with WriteFailure as soon as
    /// replicas answering with a failure (this one included) make `cl`
    /// impossible to meet; a failure that leaves it reachable is waited out.
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
        // Pending replicas (a node joining or leaving takes these ranges):
        // they get the write too, but never count toward `cl`.
        let pending = topo.pending_replicas(ks, m.update.key.token);
        self.check_replicas(&topo, &rep, &reps, cl, true)?;
        let remote = self.remote.borrow().clone();
        let ctx = remote.as_ref().and_then(|r| r.context());
        let encoded = {
            let mut out = Vec::new();
            engine::serialize::encode_mutation(&m, &mut out);
            Bytes::from(out)
        };
        let (tx, rx) = local_channel::new_bounded(reps.len() + pending.len() + 1);
        let tx = Rc::new(tx);
        let mut acked = Vec::new();
        let mut hinted = 0usize;
        let mut local_error = None;
        let mut failed: Vec<(usize, ReplicaFailure)> = Vec::new();
        let local_dc = topo.local().dc.clone();
        // Remote DC -> its live replicas, in placement order.
        let mut remote_dcs: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let sender = Sender {
            ctx: ctx.clone(),
            remote: remote.clone(),
            topo: topo.clone(),
            mutation: m.clone(),
            encoded: encoded.clone(),
            timeout: self.write_timeout,
            tx: tx.clone(),
        };
        for &i in &reps {
            let ep = &topo.endpoints[i];
            if i == 0 {
                match self.apply_routed(m.clone()).await {
                    Ok(()) => acked.push(0),
                    Err(e) => match replica_failure(&e) {
                        Some((reason, cause)) => failed.push((
                            0,
                            ReplicaFailure {
                                addr: ep.addr,
                                reason,
                                cause: cause.to_string(),
                            },
                        )),
                        None => local_error = Some(e),
                    },
                }
                continue;
            }
            if remote.is_none() {
                continue;
            }
            if !ep.alive {
                sender.hint_only(i);
            } else if ep.dc == local_dc || ctx.is_none() {
                sender.direct(i, true);
            } else {
                remote_dcs.entry(ep.dc.clone()).or_default().push(i);
            }
        }
        for (_, group) in remote_dcs {
            sender.remote_dc(group, m.update.key.token).await;
        }
        for &i in &pending {
            if i != 0 && topo.endpoints[i].alive && remote.is_some() {
                sender.direct(i, false);
            }
        }
        drop(sender);
        drop(tx);
        let deadline = Instant::now() + self.write_timeout;
        loop {
            let (ok, received, block_for) = satisfied(&topo, &rep, &reps, cl, &acked);
            // `satisfied` counts replica acks only; ANY also takes a stored hint.
            if ok || (cl == Consistency::Any && hinted > 0) {
                return Ok(());
            }
            if unreachable_with(&topo, &rep, &reps, cl, &failed) {
                let failures: Vec<ReplicaFailure> = failed.into_iter().map(|(_, f)| f).collect();
                return Err(write_failure(
                    cl, received, block_for, &failures, write_type,
                ));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let next = if left.is_zero() {
                Err(())
            } else {
                crate::shard::timeout(left, rx.recv()).await.map_err(|_| ())
            };
            match next {
                Ok(Some((i, Outcome::Acked))) => acked.push(i),
                Ok(Some((_, Outcome::Hinted))) => hinted += 1,
                Ok(Some((_, Outcome::Lost))) => {}
                Ok(Some((i, Outcome::Failed(reason, cause)))) => failed.push((
                    i,
                    ReplicaFailure {
                        addr: topo.endpoints[i].addr,
                        reason,
                        cause,
                    },
                )),
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

    /// A read at `cl`: a data request to the closest replica, digest
    /// requests to the others `cl` needs. If every digest matches the
    /// data, that is the answer; otherwise full data is read from those
    /// replicas, reconciled by last-write-wins, the stale replicas are
    /// repaired (blocking) and the reconciled data answers.
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
        let timeout_error = |answered: &[usize], data_present: bool| {
            let (_, received, block_for) = satisfied(&topo, &rep, &reps, cl, answered);
            ErrorResponse::new(
                DbError::ReadTimeout {
                    consistency: cl,
                    received: received as i32,
                    block_for: block_for as i32,
                    data_present,
                },
                format!("Operation timed out - received only {received} responses."),
            )
        };
        // Replicas that answered with a failure: ReadFailure as soon as
        // they make `cl` unreachable among the replicas asked (Cassandra's
        // ReadCallback.onFailure: blockFor + failures > contacts).
        let mut failed: Vec<(usize, ReplicaFailure)> = Vec::new();
        let failure_error =
            |answered: &[usize], failed: &[(usize, ReplicaFailure)], data_present: bool| {
                let (_, received, block_for) = satisfied(&topo, &rep, &reps, cl, answered);
                let failures: Vec<ReplicaFailure> = failed.iter().map(|(_, f)| f.clone()).collect();
                read_failure(cl, received, block_for, &failures, data_present)
            };
        let local_failure = |e: ErrorResponse| -> Result<(usize, ReplicaFailure), ErrorResponse> {
            match replica_failure(&e) {
                Some((reason, cause)) => Ok((
                    0,
                    ReplicaFailure {
                        addr: topo.local().addr,
                        reason,
                        cause: cause.to_string(),
                    },
                )),
                None => Err(e),
            }
        };
        let remote_failure = |i: usize, reason: RequestFailureReason, cause: String| {
            (
                i,
                ReplicaFailure {
                    addr: topo.endpoints[i].addr,
                    reason,
                    cause,
                },
            )
        };
        let Some(&data_target) = targets.first() else {
            return Err(timeout_error(&[], false));
        };
        // Round 1: data from the closest replica, digests from the others.
        let (tx, rx) = local_channel::new_bounded(targets.len().max(1));
        let tx = Rc::new(tx);
        let mut data: Option<Option<PartitionUpdate>> = None;
        let mut digests: Vec<(usize, [u8; 16])> = Vec::new();
        for (n, &i) in targets.iter().enumerate() {
            let want_data = n == 0;
            if i == 0 {
                let p = match self
                    .read_raw_routed(table.id, key.clone(), cmd.clone())
                    .await
                {
                    Ok(p) => p,
                    Err(e) => {
                        failed.push(local_failure(e)?);
                        continue;
                    }
                };
                if want_data {
                    data = Some(p);
                } else {
                    digests.push((0, digest_of(p.as_ref())));
                }
                continue;
            }
            let Some(remote) = remote.as_ref() else {
                continue;
            };
            let addr = topo.endpoints[i].addr;
            let tx = tx.clone();
            if want_data {
                let fut =
                    remote.read_raw(addr, table.id, key.clone(), cmd.clone(), self.read_timeout);
                glommio::spawn_local(async move {
                    let _ = tx.try_send((i, fut.await.map(ReadAnswer::Data)));
                })
                .detach();
            } else {
                let fut =
                    remote.read_digest(addr, table.id, key.clone(), cmd.clone(), self.read_timeout);
                glommio::spawn_local(async move {
                    let _ = tx.try_send((i, fut.await.map(ReadAnswer::Digest)));
                })
                .detach();
            }
        }
        drop(tx);
        let deadline = Instant::now() + self.read_timeout;
        let answered = |data: &Option<Option<PartitionUpdate>>, digests: &[(usize, [u8; 16])]| {
            let mut v: Vec<usize> = digests.iter().map(|(i, _)| *i).collect();
            if data.is_some() {
                v.push(data_target);
            }
            v
        };
        while digests.len() + usize::from(data.is_some()) + failed.len() < targets.len() {
            if unreachable_with(&topo, &rep, &targets, cl, &failed) {
                let answered = answered(&data, &digests);
                return Err(failure_error(&answered, &failed, data.is_some()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let next = if left.is_zero() {
                Err(())
            } else {
                crate::shard::timeout(left, rx.recv()).await.map_err(|_| ())
            };
            match next {
                Ok(Some((_, Ok(ReadAnswer::Data(p))))) => data = Some(p),
                Ok(Some((i, Ok(ReadAnswer::Digest(d))))) => digests.push((i, d)),
                Ok(Some((i, Err(ReplicaError::Failure { reason, message })))) => {
                    failed.push(remote_failure(i, reason, message));
                }
                Ok(Some((_, Err(ReplicaError::NoResponse(_))))) | Ok(None) | Err(()) => {
                    return Err(timeout_error(&answered(&data, &digests), data.is_some()));
                }
            }
        }
        // Every replica asked answered; a failure among them still leaves
        // `cl` short (the replicas asked are exactly the ones it needs).
        let data = match data {
            Some(d) if failed.is_empty() => d,
            data => {
                return Err(failure_error(
                    &answered(&data, &digests),
                    &failed,
                    data.is_some(),
                ))
            }
        };
        let schema = engine_schema(table);
        let expected = digest_of(data.as_ref());
        if digests.iter().all(|(_, d)| *d == expected) {
            return Ok(data.and_then(|raw| engine::read::to_live(&schema, &raw, cmd)));
        }
        // Round 2 (digest mismatch): full data from the digest replicas.
        self.stats
            .digest_mismatches
            .set(self.stats.digest_mismatches.get() + 1);
        let mut answers: Vec<(usize, Option<PartitionUpdate>)> = vec![(data_target, data)];
        let (tx, rx) = local_channel::new_bounded(targets.len().max(1));
        let tx = Rc::new(tx);
        let mut waiting = 0;
        for &(i, _) in &digests {
            if i == 0 {
                match self
                    .read_raw_routed(table.id, key.clone(), cmd.clone())
                    .await
                {
                    Ok(p) => answers.push((0, p)),
                    Err(e) => {
                        failed.push(local_failure(e)?);
                        let done: Vec<usize> = answers.iter().map(|(i, _)| *i).collect();
                        return Err(failure_error(&done, &failed, true));
                    }
                }
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
            waiting += 1;
            glommio::spawn_local(async move {
                let _ = tx.try_send((i, fut.await));
            })
            .detach();
        }
        drop(tx);
        let deadline = Instant::now() + self.read_timeout;
        while waiting > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = if left.is_zero() {
                Err(())
            } else {
                crate::shard::timeout(left, rx.recv()).await.map_err(|_| ())
            };
            match next {
                Ok(Some((i, Ok(p)))) => {
                    answers.push((i, p));
                    waiting -= 1;
                }
                Ok(Some((i, Err(ReplicaError::Failure { reason, message })))) => {
                    // The data replicas of the second round are the ones
                    // `cl` needs: one failure and it cannot be met.
                    failed.push(remote_failure(i, reason, message));
                    let done: Vec<usize> = answers.iter().map(|(i, _)| *i).collect();
                    return Err(failure_error(&done, &failed, true));
                }
                Ok(Some((_, Err(ReplicaError::NoResponse(_))))) | Ok(None) | Err(()) => {
                    let done: Vec<usize> = answers.iter().map(|(i, _)| *i).collect();
                    return Err(timeout_error(&done, true));
                }
            }
        }
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
                self.stats
                    .read_repairs
                    .set(self.stats.read_repairs.get() + 1);
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
        // Every node's part is needed: one failure and the scan fails.
        let block_for = block_for(&rep, cl, &topo.local().dc, topo.endpoints.len());
        let scan_failure = |received: usize, f: ReplicaFailure| {
            let received = received.min(block_for.saturating_sub(1));
            read_failure(cl, received, block_for, &[f], received > 0)
        };
        loop {
            let mut raw: Vec<PartitionUpdate> =
                match self.scan_raw_all_shards(table.id, &range, cmd, limit).await {
                    Ok(raw) => raw,
                    Err(e) => {
                        let Some((reason, cause)) = replica_failure(&e) else {
                            return Err(e);
                        };
                        return Err(scan_failure(
                            0,
                            ReplicaFailure {
                                addr: topo.local().addr,
                                reason,
                                cause: cause.to_string(),
                            },
                        ));
                    }
                };
            for (i, ep) in topo.endpoints.iter().enumerate().skip(1) {
                let (Some(remote), true) = (remote.as_ref(), ep.alive) else {
                    continue;
                };
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
                    Err(ReplicaError::Failure { reason, message }) => {
                        return Err(scan_failure(
                            i,
                            ReplicaFailure {
                                addr: ep.addr,
                                reason,
                                cause: message,
                            },
                        ))
                    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use Consistency::*;

    fn nts(dcs: &[(&str, usize)]) -> Replication {
        Replication::PerDc(dcs.iter().map(|(d, rf)| (d.to_string(), *rf)).collect())
    }

    /// `failed` failures among `replicas` candidates, all in dc1.
    fn unreachable(rep: &Replication, cl: Consistency, replicas: usize, failed: usize) -> bool {
        cl_unreachable(rep, cl, "dc1", &vec!["dc1"; replicas], &vec!["dc1"; failed])
    }

    #[test]
    fn block_for_follows_cassandra() {
        let s3 = Replication::Simple(3);
        let n = nts(&[("dc1", 3), ("dc2", 2), ("dc3", 0)]);
        assert_eq!(block_for(&s3, One, "dc1", 3), 1);
        assert_eq!(block_for(&s3, Any, "dc1", 3), 1);
        assert_eq!(block_for(&s3, Two, "dc1", 3), 2);
        assert_eq!(block_for(&s3, Three, "dc1", 3), 3);
        assert_eq!(block_for(&s3, Quorum, "dc1", 3), 2);
        assert_eq!(block_for(&s3, All, "dc1", 3), 3);
        assert_eq!(block_for(&s3, LocalQuorum, "dc1", 3), 2);
        assert_eq!(block_for(&n, Quorum, "dc1", 5), 3);
        assert_eq!(block_for(&n, LocalQuorum, "dc1", 5), 2);
        assert_eq!(block_for(&n, LocalQuorum, "dc2", 5), 2);
        assert_eq!(block_for(&n, LocalOne, "dc2", 5), 1);
        assert_eq!(block_for(&n, EachQuorum, "dc1", 5), 2 + 2);
        assert_eq!(block_for(&n, All, "dc1", 5), 5);
        assert_eq!(block_for(&Replication::Local, Quorum, "dc1", 1), 1);
    }

    #[test]
    fn no_failure_never_decides() {
        for cl in Consistency::ALL_LEVELS {
            assert!(!unreachable(&Replication::Simple(3), cl, 3, 0), "{cl}");
        }
    }

    #[test]
    fn global_levels_count_every_failure() {
        let s3 = Replication::Simple(3);
        // (cl, largest number of failures that leaves it reachable) at RF 3.
        for (cl, tolerated) in [
            (Any, 2),
            (One, 2),
            (Two, 1),
            (Three, 0),
            (Quorum, 1),
            (Serial, 1),
            (All, 0),
        ] {
            for f in 1..=3 {
                assert_eq!(
                    unreachable(&s3, cl, 3, f),
                    f > tolerated,
                    "{cl} with {f} failures of 3"
                );
            }
        }
        // RF 1: the only replica failing decides at once.
        for cl in [Any, One, Quorum, All, LocalOne, LocalQuorum] {
            assert!(unreachable(&Replication::Simple(1), cl, 1, 1), "{cl}");
        }
        // Fewer candidates than the RF (a 2-node ring, RF 3): QUORUM (2)
        // cannot lose any of them.
        assert!(unreachable(&s3, Quorum, 2, 1));
        assert!(!unreachable(&s3, One, 2, 1));
    }

    #[test]
    fn global_levels_count_failures_in_every_dc() {
        let n = nts(&[("dc1", 3), ("dc2", 3)]);
        let reps = ["dc1", "dc1", "dc1", "dc2", "dc2", "dc2"];
        // QUORUM of 6 is 4: two failures anywhere are tolerated, three are not.
        assert!(!cl_unreachable(&n, Quorum, "dc1", &reps, &["dc2", "dc2"]));
        assert!(!cl_unreachable(&n, Quorum, "dc1", &reps, &["dc1", "dc2"]));
        assert!(cl_unreachable(
            &n,
            Quorum,
            "dc1",
            &reps,
            &["dc1", "dc2", "dc2"]
        ));
        assert!(cl_unreachable(&n, All, "dc1", &reps, &["dc2"]));
        assert!(!cl_unreachable(&n, One, "dc1", &reps, &["dc1"; 3]));
        assert!(!cl_unreachable(&n, Three, "dc1", &reps, &["dc1"; 3]));
        assert!(cl_unreachable(
            &n,
            Three,
            "dc1",
            &reps,
            &["dc1", "dc1", "dc1", "dc2"]
        ));
    }

    #[test]
    fn local_levels_count_only_local_failures() {
        let n = nts(&[("dc1", 3), ("dc2", 3)]);
        let reps = ["dc1", "dc1", "dc1", "dc2", "dc2", "dc2"];
        // Remote failures never matter to LOCAL_*.
        for cl in [LocalOne, LocalQuorum, LocalSerial] {
            assert!(!cl_unreachable(&n, cl, "dc1", &reps, &["dc2"; 3]), "{cl}");
        }
        // LOCAL_QUORUM (2 of 3 local): one local failure is tolerated, two are not.
        assert!(!cl_unreachable(
            &n,
            LocalQuorum,
            "dc1",
            &reps,
            &["dc1", "dc2"]
        ));
        assert!(cl_unreachable(
            &n,
            LocalQuorum,
            "dc1",
            &reps,
            &["dc1", "dc1"]
        ));
        // Seen from dc2 the same failures are remote.
        assert!(!cl_unreachable(
            &n,
            LocalQuorum,
            "dc2",
            &reps,
            &["dc1", "dc1"]
        ));
        // LOCAL_ONE: all three local replicas must fail.
        assert!(!cl_unreachable(&n, LocalOne, "dc1", &reps, &["dc1", "dc1"]));
        assert!(cl_unreachable(&n, LocalOne, "dc1", &reps, &["dc1"; 3]));
        // A local DC with RF 1.
        let m = nts(&[("dc1", 1), ("dc2", 3)]);
        let reps = ["dc1", "dc2", "dc2", "dc2"];
        assert!(cl_unreachable(&m, LocalQuorum, "dc1", &reps, &["dc1"]));
        assert!(!cl_unreachable(
            &m,
            LocalQuorum,
            "dc2",
            &reps,
            &["dc1", "dc2"]
        ));
    }

    #[test]
    fn each_quorum_decides_per_dc() {
        let n = nts(&[("dc1", 3), ("dc2", 3), ("dc3", 0)]);
        let reps = ["dc1", "dc1", "dc1", "dc2", "dc2", "dc2"];
        // One failure in each DC leaves each quorum (2 of 3) reachable...
        assert!(!cl_unreachable(
            &n,
            EachQuorum,
            "dc1",
            &reps,
            &["dc1", "dc2"]
        ));
        // ...two in one DC do not, although 2 + 2 + 2 <= 6 overall.
        assert!(cl_unreachable(
            &n,
            EachQuorum,
            "dc1",
            &reps,
            &["dc2", "dc2"]
        ));
        assert!(cl_unreachable(
            &n,
            EachQuorum,
            "dc2",
            &reps,
            &["dc1", "dc1"]
        ));
        // A DC with RF 5 tolerates two.
        let m = nts(&[("dc1", 5), ("dc2", 1)]);
        let reps = ["dc1", "dc1", "dc1", "dc1", "dc1", "dc2"];
        assert!(!cl_unreachable(
            &m,
            EachQuorum,
            "dc1",
            &reps,
            &["dc1", "dc1"]
        ));
        assert!(cl_unreachable(&m, EachQuorum, "dc1", &reps, &["dc2"]));
        // SimpleStrategy: EACH_QUORUM is QUORUM.
        let s3 = Replication::Simple(3);
        assert!(!unreachable(&s3, EachQuorum, 3, 1));
        assert!(unreachable(&s3, EachQuorum, 3, 2));
    }

    #[test]
    fn replica_errors_tell_failures_from_silence() {
        use crate::net::MessagingError;
        assert_eq!(
            ReplicaError::from(MessagingError::Remote("no handler".into())),
            ReplicaError::failure("no handler")
        );
        for e in [
            MessagingError::Timeout,
            MessagingError::Unreachable,
            MessagingError::Overloaded,
            MessagingError::Closed,
        ] {
            assert!(matches!(ReplicaError::from(e), ReplicaError::NoResponse(_)));
        }
    }
}
