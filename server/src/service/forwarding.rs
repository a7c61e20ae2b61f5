//! Cross-datacenter write forwarding: one message per remote datacenter.
//!
//! The coordinator sends a write directly to the replicas of its own DC,
//! and for each remote DC sends ONE [`Verb::Forward`] request to one live
//! replica there (the *forwarder*), listing the other replicas of that DC.
//! The forwarder relays the mutation to them (a one-way `Forward` of kind
//! *relayed*), applies it locally and answers the coordinator's request;
//! each relayed replica applies it and acknowledges the **coordinator**
//! directly with a one-way [`Verb::MutationRsp`] carrying the coordinator's
//! write id (as Cassandra's forwarded replicas answer the original
//! coordinator with its message id). So the coordinator counts acks per
//! replica and every consistency level stays exact.
//!
//! All of this runs on shard 0, where the MessagingService lives: a
//! coordinator on another shard registers the write's acks there
//! ([`start_forward`]) and waits for each replica's ack ([`wait_ack`]).
//! The map of awaited acks is bounded ([`MAX_PENDING_ACKS`]).
//!
//! If the forwarder cannot be reached (unreachable, overloaded), shard 0
//! falls back to sending the mutation directly to the other replicas of
//! that DC; if it times out, the others may still ack (or are hinted).
//!
//! Wire format: `docs/internode-protocol.md`, "Forward".

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;

use proto::error::RequestFailureReason;

use super::replication::ReplicaError;
use crate::net::{Handler, MessagingError, MessagingService, Verb};
use crate::node::services;
use crate::shard::ShardContext;

/// Service id of [`Forwarding`] in shard 0's context.
const FORWARDING_SERVICE: u64 = u64::MAX - 0x4657;
/// Acks awaited at once on this node; beyond it forwarded writes fail fast
/// (and their replicas are hinted).
pub const MAX_PENDING_ACKS: usize = 64 * 1024;
/// Replicas one Forward message may list (more is a malformed message).
pub const MAX_FORWARD_TARGETS: usize = 256;

/// A `Forward` sent by a coordinator: apply, relay, answer by response.
const KIND_FORWARDER: u8 = 0;
/// A `Forward` relayed by a forwarder: apply, ack the coordinator.
const KIND_RELAYED: u8 = 1;

/// Counters of forwarding on this node (shard 0), for the admin API.
#[derive(Debug, Default)]
pub struct ForwardStats {
    /// `Forward` requests this node sent as a coordinator (one per remote DC per write).
    pub forward_sent: Cell<u64>,
    /// `Forward` messages received (from coordinators and from forwarders).
    pub forward_received: Cell<u64>,
    /// Of those, the ones received from a coordinator (this node forwarded).
    pub forward_received_as_forwarder: Cell<u64>,
    /// Relayed copies this node sent to the other replicas of its DC.
    pub forward_relayed: Cell<u64>,
    /// Forwarders that could not be reached, replaced by direct sends.
    pub forward_fallbacks: Cell<u64>,
    /// Mutations this node sent directly to a replica in another DC.
    pub cross_dc_direct: Cell<u64>,
    /// Acks of relayed replicas received as a coordinator.
    pub acks_received: Cell<u64>,
    /// Acks that arrived after their write was given up (or unknown).
    pub acks_late: Cell<u64>,
}

/// One awaited ack.
struct AckSlot {
    value: RefCell<Option<Result<(), ReplicaError>>>,
    waker: RefCell<Option<Waker>>,
    deadline: Instant,
}

struct AckWait(Rc<AckSlot>);

impl Future for AckWait {
    type Output = Result<(), ReplicaError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(v) = self.0.value.borrow_mut().take() {
            return Poll::Ready(v);
        }
        *self.0.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Shard 0's forwarding state.
pub struct Forwarding {
    ms: Rc<MessagingService>,
    pending: RefCell<HashMap<(u64, IpAddr), Rc<AckSlot>>>,
    last_sweep: Cell<Instant>,
    pub stats: ForwardStats,
}

/// Shard 0's forwarding service, once the cluster services started.
pub fn forwarding(ctx: &ShardContext) -> Option<Rc<Forwarding>> {
    ctx.service(FORWARDING_SERVICE)
        .and_then(|s| s.downcast::<Forwarding>().ok())
}

/// Registers the Forward and MutationRsp verbs and the hint verbs, and
/// starts hinted handoff (called once, on shard 0, by the cluster services).
pub fn register(ms: &Rc<MessagingService>, ctx: &ShardContext, config: &crate::config::Config) {
    let f = Rc::new(Forwarding {
        ms: ms.clone(),
        pending: RefCell::new(HashMap::new()),
        last_sweep: Cell::new(Instant::now()),
        stats: ForwardStats::default(),
    });
    ctx.insert_service(FORWARDING_SERVICE, f.clone());
    let c = ctx.clone();
    let fw = f.clone();
    ms.register(
        Verb::Forward,
        handler(move |from, payload| {
            let ctx = c.clone();
            let fw = fw.clone();
            async move { fw.on_forward(&ctx, from, payload).await }
        }),
    );
    let fw = f.clone();
    ms.register(
        Verb::MutationRsp,
        handler(move |from, payload| {
            let fw = fw.clone();
            async move {
                fw.on_ack(from, &payload);
                None
            }
        }),
    );
    super::hints::register(ms, ctx, config);
}

fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(IpAddr, Bytes) -> Fut + 'static,
    Fut: Future<Output = Option<Bytes>> + 'static,
{
    let f = Rc::new(f);
    Rc::new(move |from, payload| {
        let f = f.clone();
        Box::pin(async move { f(from, payload).await })
    })
}

/// `[u8 0]` on success, `[u8 1][UTF-8 message]` on failure (the status
/// byte of the replica verbs).
pub(crate) fn encode_status(r: &Result<(), String>) -> Bytes {
    match r {
        Ok(()) => Bytes::from_static(&[0]),
        Err(e) => {
            let mut out = vec![1u8];
            out.extend_from_slice(e.as_bytes());
            Bytes::from(out)
        }
    }
}

/// A replica's failure with its reason: `[u8 2][u16 RequestFailureReason
/// code][UTF-8 message]` (status 1 means the reason is UNKNOWN). A
/// `NoResponse` (the replica could not reach a shard of its own) is
/// reported as an UNKNOWN failure: the replica did answer.
pub(crate) fn encode_failure(e: &ReplicaError) -> Bytes {
    let (reason, message) = match e {
        ReplicaError::Failure { reason, message } => (*reason, message.as_str()),
        ReplicaError::NoResponse(m) => (RequestFailureReason::Unknown, m.as_str()),
    };
    let mut out = Vec::with_capacity(3 + message.len());
    out.push(2);
    out.extend_from_slice(&reason.code().to_be_bytes());
    out.extend_from_slice(message.as_bytes());
    Bytes::from(out)
}

/// The status of a replica verb's answer: the payload after it, or the
/// replica's failure (status 1 or 2).
pub(crate) fn decode_reply(b: Bytes) -> Result<Bytes, ReplicaError> {
    match b.first() {
        Some(0) => Ok(b.slice(1..)),
        Some(1) => Err(ReplicaError::failure(String::from_utf8_lossy(&b[1..]))),
        Some(2) if b.len() >= 3 => Err(ReplicaError::Failure {
            reason: RequestFailureReason::from_code(u16::from_be_bytes([b[1], b[2]])),
            message: String::from_utf8_lossy(&b[3..]).into_owned(),
        }),
        _ => Err(ReplicaError::failure("malformed response")),
    }
}

/// [`encode_status`] of a write, with the failure's reason.
fn encode_write_status(r: &Result<(), ReplicaError>) -> Bytes {
    match r {
        Ok(()) => encode_status(&Ok(())),
        Err(e) => encode_failure(e),
    }
}

/// The status alone (`Ok` for any success payload).
pub(crate) fn decode_status(b: &[u8]) -> Result<(), String> {
    decode_reply(Bytes::copy_from_slice(b))
        .map(|_| ())
        .map_err(|e| match e {
            ReplicaError::Failure { message, .. } | ReplicaError::NoResponse(message) => message,
        })
}

pub(crate) fn put_addr(out: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(v) => {
            out.push(4);
            out.extend_from_slice(&v.octets());
        }
        IpAddr::V6(v) => {
            out.push(16);
            out.extend_from_slice(&v.octets());
        }
    }
}

/// Reads an address at `*pos`.
pub(crate) fn get_addr(b: &[u8], pos: &mut usize) -> Result<IpAddr, String> {
    let n = *b.get(*pos).ok_or("truncated address")? as usize;
    let s = b.get(*pos + 1..*pos + 1 + n).ok_or("truncated address")?;
    *pos += 1 + n;
    match n {
        4 => Ok(IpAddr::V4(Ipv4Addr::new(s[0], s[1], s[2], s[3]))),
        16 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(s);
            Ok(IpAddr::V6(Ipv6Addr::from(o)))
        }
        _ => Err(format!("bad address length {n}")),
    }
}

/// A decoded `Forward` payload.
#[derive(Debug, Clone, PartialEq)]
struct ForwardMessage {
    kind: u8,
    id: u64,
    coordinator: IpAddr,
    targets: Vec<IpAddr>,
    mutation: Bytes,
}

/// `[u8 kind][u64 id][address coordinator][u16 n][n × address][mutation]`.
fn encode_forward(kind: u8, id: u64, coordinator: IpAddr, targets: &[IpAddr], m: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(m.len() + 32 + targets.len() * 5);
    out.push(kind);
    out.extend_from_slice(&id.to_be_bytes());
    put_addr(&mut out, coordinator);
    out.extend_from_slice(&(targets.len() as u16).to_be_bytes());
    for t in targets {
        put_addr(&mut out, *t);
    }
    out.extend_from_slice(m);
    Bytes::from(out)
}

fn decode_forward(b: &Bytes) -> Result<ForwardMessage, String> {
    let kind = *b.first().ok_or("empty Forward")?;
    if kind != KIND_FORWARDER && kind != KIND_RELAYED {
        return Err(format!("unknown Forward kind {kind}"));
    }
    let id = u64::from_be_bytes(
        b.get(1..9)
            .ok_or("truncated Forward")?
            .try_into()
            .map_err(|_| "bad id")?,
    );
    let mut pos = 9;
    let coordinator = get_addr(b, &mut pos)?;
    let n = u16::from_be_bytes(
        b.get(pos..pos + 2)
            .ok_or("truncated Forward")?
            .try_into()
            .map_err(|_| "bad count")?,
    ) as usize;
    pos += 2;
    if n > MAX_FORWARD_TARGETS {
        return Err(format!("Forward lists {n} replicas"));
    }
    let mut targets = Vec::with_capacity(n);
    for _ in 0..n {
        targets.push(get_addr(b, &mut pos)?);
    }
    Ok(ForwardMessage {
        kind,
        id,
        coordinator,
        targets,
        mutation: b.slice(pos..),
    })
}

/// `[u64 id][status]`: a relayed replica's ack to the coordinator.
fn encode_ack(id: u64, r: &Result<(), ReplicaError>) -> Bytes {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(&encode_write_status(r));
    Bytes::from(out)
}

async fn apply_here(ctx: &ShardContext, mutation: &Bytes) -> Result<(), ReplicaError> {
    let m = engine::serialize::decode_mutation(mutation)
        .map_err(|e| ReplicaError::failure(e.to_string()))?;
    let s = services(ctx).map_err(|e| ReplicaError::failure(e.message))?;
    s.proxy
        .apply_routed(m)
        .await
        .map_err(|e| ReplicaError::from_response(&e))
}

impl Forwarding {
    /// A `Forward` arrived (from a coordinator, or relayed by a forwarder).
    async fn on_forward(&self, ctx: &ShardContext, from: IpAddr, payload: Bytes) -> Option<Bytes> {
        self.stats
            .forward_received
            .set(self.stats.forward_received.get() + 1);
        let msg = match decode_forward(&payload) {
            Ok(m) => m,
            Err(e) => {
                log::warn!("malformed Forward from {from}: {e}");
                return Some(encode_failure(&ReplicaError::failure(e)));
            }
        };
        if msg.kind == KIND_FORWARDER {
            self.stats
                .forward_received_as_forwarder
                .set(self.stats.forward_received_as_forwarder.get() + 1);
            let relayed = encode_forward(KIND_RELAYED, msg.id, msg.coordinator, &[], &msg.mutation);
            for t in &msg.targets {
                match self.ms.send_oneway(*t, Verb::Forward, relayed.clone()) {
                    Ok(()) => self
                        .stats
                        .forward_relayed
                        .set(self.stats.forward_relayed.get() + 1),
                    Err(e) => log::debug!("cannot relay a write to {t}: {e}"),
                }
            }
            let r = apply_here(ctx, &msg.mutation).await;
            Some(encode_write_status(&r))
        } else {
            let r = apply_here(ctx, &msg.mutation).await;
            if let Err(e) =
                self.ms
                    .send_oneway(msg.coordinator, Verb::MutationRsp, encode_ack(msg.id, &r))
            {
                log::debug!("cannot ack write {} to {}: {e}", msg.id, msg.coordinator);
            }
            None
        }
    }

    /// A relayed replica's ack arrived (we coordinate that write).
    fn on_ack(&self, from: IpAddr, payload: &Bytes) {
        let Some(id) = payload.get(..8).and_then(|b| b.try_into().ok()) else {
            return;
        };
        let id = u64::from_be_bytes(id);
        self.stats
            .acks_received
            .set(self.stats.acks_received.get() + 1);
        self.complete(id, from, decode_reply(payload.slice(8..)).map(|_| ()));
    }

    fn slot(&self, id: u64, ip: IpAddr, deadline: Instant) -> Result<Rc<AckSlot>, ReplicaError> {
        let mut p = self.pending.borrow_mut();
        if let Some(s) = p.get(&(id, ip)) {
            return Ok(s.clone());
        }
        if p.len() >= MAX_PENDING_ACKS {
            return Err(ReplicaError::NoResponse(
                "too many forwarded writes in flight".into(),
            ));
        }
        let s = Rc::new(AckSlot {
            value: RefCell::new(None),
            waker: RefCell::new(None),
            deadline,
        });
        p.insert((id, ip), s.clone());
        Ok(s)
    }

    fn complete(&self, id: u64, ip: IpAddr, r: Result<(), ReplicaError>) {
        let slot = self.pending.borrow().get(&(id, ip)).cloned();
        match slot {
            Some(s) => {
                if s.value.borrow().is_none() {
                    *s.value.borrow_mut() = Some(r);
                    if let Some(w) = s.waker.borrow_mut().take() {
                        w.wake();
                    }
                }
            }
            None => self.stats.acks_late.set(self.stats.acks_late.get() + 1),
        }
    }

    /// Drops slots nobody waits for any more (at most once a second).
    fn sweep(&self) {
        let now = Instant::now();
        if now.duration_since(self.last_sweep.get()) < Duration::from_secs(1) {
            return;
        }
        self.last_sweep.set(now);
        self.pending
            .borrow_mut()
            .retain(|_, s| s.deadline + Duration::from_secs(1) > now || s.waker.borrow().is_some());
    }

    /// Registers the acks of one forwarded write and sends the Forward.
    fn start(
        self: &Rc<Self>,
        id: u64,
        coordinator: IpAddr,
        forwarder: IpAddr,
        others: Vec<IpAddr>,
        mutation: Bytes,
        timeout: Duration,
    ) -> Result<(), ReplicaError> {
        self.sweep();
        let deadline = Instant::now() + timeout;
        for ip in std::iter::once(&forwarder).chain(others.iter()) {
            self.slot(id, *ip, deadline)?;
        }
        let payload = encode_forward(KIND_FORWARDER, id, coordinator, &others, &mutation);
        self.stats
            .forward_sent
            .set(self.stats.forward_sent.get() + 1);
        let me = self.clone();
        glommio::spawn_local(async move {
            let r = me
                .ms
                .send_request(forwarder, Verb::Forward, payload, timeout)
                .await;
            let fallback = matches!(
                r,
                Err(MessagingError::Unreachable) | Err(MessagingError::Overloaded)
            );
            me.complete(
                id,
                forwarder,
                r.map_err(ReplicaError::from)
                    .and_then(decode_reply)
                    .map(|_| ()),
            );
            if fallback && !others.is_empty() {
                // The forwarder is unreachable: reach its DC directly.
                me.stats
                    .forward_fallbacks
                    .set(me.stats.forward_fallbacks.get() + 1);
                let left = deadline.saturating_duration_since(Instant::now());
                for t in others {
                    let me2 = me.clone();
                    let m = mutation.clone();
                    glommio::spawn_local(async move {
                        let r = me2.send_mutation(t, m, left, true).await;
                        me2.complete(id, t, r);
                    })
                    .detach();
                }
            }
        })
        .detach();
        Ok(())
    }

    /// Sends a MutationReq and waits for its ack.
    async fn send_mutation(
        &self,
        to: IpAddr,
        mutation: Bytes,
        timeout: Duration,
        cross_dc: bool,
    ) -> Result<(), ReplicaError> {
        if cross_dc {
            self.stats
                .cross_dc_direct
                .set(self.stats.cross_dc_direct.get() + 1);
        }
        let r = self
            .ms
            .send_request(to, Verb::MutationReq, mutation, timeout)
            .await?;
        decode_reply(r).map(|_| ())
    }

    /// Waits for the ack of `ip` for write `id`, at most `timeout`.
    async fn wait(&self, id: u64, ip: IpAddr, timeout: Duration) -> Result<(), ReplicaError> {
        let slot = self.slot(id, ip, Instant::now() + timeout)?;
        let r = crate::shard::timeout(timeout, AckWait(slot)).await;
        self.pending.borrow_mut().remove(&(id, ip));
        r.unwrap_or_else(|_| {
            Err(ReplicaError::NoResponse(
                "timed out waiting for a response".into(),
            ))
        })
    }

    /// The counters, as a JSON object.
    pub fn stats_json(&self) -> String {
        let s = &self.stats;
        format!(
            "{{\"forward_sent\": {}, \"forward_received\": {}, \"forward_received_as_forwarder\": {}, \"forward_relayed\": {}, \"forward_fallbacks\": {}, \"cross_dc_direct\": {}, \"acks_received\": {}, \"acks_late\": {}, \"pending_acks\": {}}}",
            s.forward_sent.get(),
            s.forward_received.get(),
            s.forward_received_as_forwarder.get(),
            s.forward_relayed.get(),
            s.forward_fallbacks.get(),
            s.cross_dc_direct.get(),
            s.acks_received.get(),
            s.acks_late.get(),
            self.pending.borrow().len()
        )
    }
}

thread_local! {
    static NEXT_WRITE_ID: Cell<u64> = const { Cell::new(1) };
}

/// A write id unique on this node: the shard in the top byte.
pub(crate) fn next_write_id(shard: usize) -> u64 {
    NEXT_WRITE_ID.with(|c| {
        let n = c.get();
        c.set(n.wrapping_add(1) & 0x00FF_FFFF_FFFF_FFFF);
        ((shard as u64 & 0xFF) << 56) | n
    })
}

// --- the coordinator side (any shard) --------------------------------------

/// Registers write `id`'s acks on shard 0 and sends one Forward to
/// `forwarder` listing `others`.
pub(crate) async fn start_forward(
    ctx: &ShardContext,
    id: u64,
    coordinator: IpAddr,
    forwarder: IpAddr,
    others: Vec<IpAddr>,
    mutation: Bytes,
    timeout: Duration,
) -> Result<(), ReplicaError> {
    ctx.invoke_on(0, move |ctx| async move {
        let f = forwarding(&ctx).ok_or_else(not_in_cluster)?;
        f.start(id, coordinator, forwarder, others, mutation, timeout)
    })
    .await
    .map_err(|e| ReplicaError::NoResponse(e.to_string()))?
}

fn not_in_cluster() -> ReplicaError {
    ReplicaError::NoResponse("not in a cluster".into())
}

/// Waits (on shard 0) for `ip`'s ack of forwarded write `id`.
pub(crate) async fn wait_ack(
    ctx: &ShardContext,
    id: u64,
    ip: IpAddr,
    timeout: Duration,
) -> Result<(), ReplicaError> {
    ctx.invoke_on(0, move |ctx| async move {
        let f = forwarding(&ctx).ok_or_else(not_in_cluster)?;
        f.wait(id, ip, timeout).await
    })
    .await
    .map_err(|e| ReplicaError::NoResponse(e.to_string()))?
}

/// Sends a mutation straight to one replica (through shard 0) and waits
/// for its ack; `cross_dc` counts it as a cross-DC message.
pub(crate) async fn send_mutation(
    ctx: &ShardContext,
    to: IpAddr,
    mutation: Bytes,
    timeout: Duration,
    cross_dc: bool,
) -> Result<(), ReplicaError> {
    ctx.invoke_on(0, move |ctx| async move {
        let f = forwarding(&ctx).ok_or_else(not_in_cluster)?;
        f.send_mutation(to, mutation, timeout, cross_dc).await
    })
    .await
    .map_err(|e| ReplicaError::NoResponse(e.to_string()))?
}

/// `GET /storage_proxy/forwarding` and `GET /hinted_handoff/stats`.
pub fn register_admin_routes(router: &mut crate::admin::Router, ctx: &ShardContext) {
    let c = ctx.clone();
    router.route("GET", "/storage_proxy/forwarding", move |_| {
        let ctx = c.clone();
        async move {
            match forwarding(&ctx) {
                Some(f) => crate::admin::Response::ok(f.stats_json()),
                None => crate::admin::Response::error(503, "not in a cluster yet"),
            }
        }
    });
    let shards = ctx.shards().clone();
    router.route("GET", "/storage_proxy/read_repair", move |_| {
        let shards = shards.clone();
        async move {
            let per_shard = shards
                .invoke_on_all(|ctx| async move {
                    services(&ctx)
                        .map(|s| {
                            (
                                s.proxy.stats.digest_mismatches.get(),
                                s.proxy.stats.read_repairs.get(),
                            )
                        })
                        .unwrap_or((0, 0))
                })
                .await
                .unwrap_or_default();
            let (m, r) = per_shard
                .iter()
                .fold((0, 0), |(a, b), (x, y)| (a + x, b + y));
            crate::admin::Response::ok(format!(
                "{{\"digest_mismatches\": {m}, \"read_repairs\": {r}}}"
            ))
        }
    });
    super::hints::register_admin_routes(router, ctx);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_payload_round_trips() {
        let a: IpAddr = "127.0.6.4".parse().unwrap();
        let b: IpAddr = "::1".parse().unwrap();
        let c: IpAddr = "10.0.0.1".parse().unwrap();
        let p = encode_forward(KIND_FORWARDER, 0x0102_0304_0506_0708, c, &[a, b], b"mut");
        let m = decode_forward(&p).unwrap();
        assert_eq!(m.kind, KIND_FORWARDER);
        assert_eq!(m.id, 0x0102_0304_0506_0708);
        assert_eq!(m.coordinator, c);
        assert_eq!(m.targets, vec![a, b]);
        assert_eq!(&m.mutation[..], b"mut");
    }

    #[test]
    fn malformed_forward_payloads_are_errors() {
        let c: IpAddr = "10.0.0.1".parse().unwrap();
        let p = encode_forward(KIND_RELAYED, 7, c, &[c], b"x");
        // Every truncation inside the header is refused, never a panic.
        let header = p.len() - 1;
        for n in 0..header {
            assert!(
                decode_forward(&p.slice(..n)).is_err(),
                "prefix {n} accepted"
            );
        }
        let mut bad = p.to_vec();
        bad[0] = 9;
        assert!(decode_forward(&Bytes::from(bad)).is_err());
    }

    #[test]
    fn replica_failures_carry_their_reason() {
        let e = ReplicaError::Failure {
            reason: RequestFailureReason::IncompatibleSchema,
            message: "unknown table".into(),
        };
        assert_eq!(decode_reply(encode_failure(&e)), Err(e.clone()));
        // Status 1 (no reason) is an UNKNOWN failure; success keeps its payload.
        assert_eq!(
            decode_reply(encode_status(&Err("boom".into()))),
            Err(ReplicaError::failure("boom"))
        );
        assert_eq!(
            decode_reply(Bytes::from_static(&[0, 7])),
            Ok(Bytes::from_static(&[7]))
        );
        // The older decoder sees the message of a reasoned failure.
        assert_eq!(
            decode_status(&encode_failure(&e)),
            Err("unknown table".into())
        );
        // Truncated or unknown statuses are failures, never panics.
        for b in [&[][..], &[2][..], &[2, 0][..], &[9][..]] {
            assert!(matches!(
                decode_reply(Bytes::copy_from_slice(b)),
                Err(ReplicaError::Failure { .. })
            ));
        }
    }

    #[test]
    fn write_ids_carry_the_shard() {
        let a = next_write_id(3);
        let b = next_write_id(3);
        assert_eq!(a >> 56, 3);
        assert_ne!(a, b);
    }
}
