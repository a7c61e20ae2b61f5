//! Internode messaging: Cassandra's `MessagingService`.
//!
//! One `MessagingService` runs on shard 0 of each node. Peers are named by
//! IP address; every node listens on the same `storage_port`. Like Cassandra
//! 4, each node keeps **one outbound connection per peer** that it only
//! writes to, and serves **inbound connections** that it only reads from; a
//! response travels back on the responder's own outbound connection, matched
//! to its request by id. Connections are made lazily on the first message,
//! re-made after a failure with exponential backoff (during which sends fail
//! fast with [`MessagingError::Unreachable`]).
//!
//! Everything is bounded: the per-peer outbound queue
//! ([`MessagingConfig::max_queue_per_peer`], else
//! [`MessagingError::Overloaded`]), the map of requests awaiting a response
//! ([`MAX_PENDING_REQUESTS`]), the handlers running for one inbound
//! connection ([`MAX_IN_FLIGHT_PER_CONNECTION`], then the connection stops
//! reading) and every frame ([`MessagingConfig::max_frame`]). Bytes from the
//! network never panic the node: a malformed frame closes that connection
//! only. Every task runs under a [`Gate`] and ends on [`MessagingService::shutdown`].
//!
//! The wire format is in `docs/internode-protocol.md` and [`frame`].

pub mod frame;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::future;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt, BufReader};

use crate::shard::net::{TcpListener, TcpStream};
use crate::shard::{Gate, Latch};
use frame::{FrameHeader, FLAG_EXPECT_RESPONSE, FLAG_FAILURE, FLAG_RESPONSE};

/// Requests awaiting a response, node-wide; beyond it sends fail with
/// [`MessagingError::Overloaded`].
pub const MAX_PENDING_REQUESTS: usize = 64 * 1024;
/// Handlers running for one inbound connection; beyond it the connection
/// stops reading until one finishes (TCP back-pressure on the sender).
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 1024;
/// First reconnection delay after a failed connect.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Longest reconnection delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Frames written to a socket in one batch, at most (in bytes, roughly).
const WRITE_BATCH_BYTES: usize = 256 * 1024;

/// The kinds of internode message (Cassandra's `Verb`), as their wire byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Verb {
    /// Gossip round, step 1: the initiator's digests.
    GossipDigestSyn = 0,
    /// Gossip round, step 2: states the initiator lacks and digests it should send.
    GossipDigestAck = 1,
    /// Gossip round, step 3: the states the receiver asked for.
    GossipDigestAck2 = 2,
    /// A node announces it is shutting down: mark it down at once.
    GossipShutdown = 3,
    /// Liveness probe before marking a node up.
    Echo = 4,
    /// Apply a mutation (a write) on a replica.
    MutationReq = 5,
    /// A replica's acknowledgement of a mutation.
    MutationRsp = 6,
    /// Read data (or a digest) from a replica.
    ReadReq = 7,
    /// A replica's answer to a read.
    ReadRsp = 8,
    /// Push schema mutations to a node.
    SchemaPush = 9,
    /// Ask a node for its schema.
    SchemaPull = 10,
    /// One message per remote DC: the receiver forwards it to the listed
    /// replicas in its DC.
    Forward = 11,
    /// Truncate a table on a replica.
    TruncateReq = 12,
    /// A replica's acknowledgement of a truncate.
    TruncateRsp = 13,
    /// Deliver a hint to the replica that missed the write.
    HintReq = 14,
    /// Acknowledgement of a delivered hint.
    HintRsp = 15,
    /// Range (scan) read on a replica.
    RangeReq = 16,
    /// A replica's answer to a range read.
    RangeRsp = 17,
    /// Repair messages (Merkle trees, sync requests).
    RepairReq = 18,
    /// Answer to a repair message.
    RepairRsp = 19,
    /// Streaming session messages.
    StreamReq = 20,
    /// Answer to a streaming message.
    StreamRsp = 21,
    /// Paxos prepare (lightweight transactions).
    PaxosPrepare = 22,
    /// Paxos propose.
    PaxosPropose = 23,
    /// Paxos commit.
    PaxosCommit = 24,
    /// The generic response verb (`REQUEST_RSP`).
    RequestRsp = 25,
    /// Counter deltas sent to the counter leader replica (`COUNTER_MUTATION_REQ`).
    CounterMutationReq = 26,
}

impl Verb {
    /// Every verb, in wire order.
    pub const ALL: [Verb; 27] = [
        Verb::GossipDigestSyn,
        Verb::GossipDigestAck,
        Verb::GossipDigestAck2,
        Verb::GossipShutdown,
        Verb::Echo,
        Verb::MutationReq,
        Verb::MutationRsp,
        Verb::ReadReq,
        Verb::ReadRsp,
        Verb::SchemaPush,
        Verb::SchemaPull,
        Verb::Forward,
        Verb::TruncateReq,
        Verb::TruncateRsp,
        Verb::HintReq,
        Verb::HintRsp,
        Verb::RangeReq,
        Verb::RangeRsp,
        Verb::RepairReq,
        Verb::RepairRsp,
        Verb::StreamReq,
        Verb::StreamRsp,
        Verb::PaxosPrepare,
        Verb::PaxosPropose,
        Verb::PaxosCommit,
        Verb::RequestRsp,
        Verb::CounterMutationReq,
    ];

    /// The verb of a wire byte, if this node knows it.
    pub fn from_u8(b: u8) -> Option<Verb> {
        Verb::ALL.get(b as usize).copied()
    }

    /// The verb a response to this request carries.
    pub fn response_verb(self) -> Verb {
        match self {
            Verb::MutationReq | Verb::Forward => Verb::MutationRsp,
            Verb::ReadReq => Verb::ReadRsp,
            Verb::TruncateReq => Verb::TruncateRsp,
            Verb::HintReq => Verb::HintRsp,
            Verb::RangeReq => Verb::RangeRsp,
            Verb::RepairReq => Verb::RepairRsp,
            Verb::StreamReq => Verb::StreamRsp,
            _ => Verb::RequestRsp,
        }
    }
}

/// Why a message could not be delivered or answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessagingError {
    /// No response within the request's timeout.
    Timeout,
    /// The peer cannot be connected to (or was not, recently).
    Unreachable,
    /// A bounded queue is full: the peer's outbound queue or the pending
    /// request map.
    Overloaded,
    /// This messaging service is shut down.
    Closed,
    /// The peer answered with a failure.
    Remote(String),
    /// The message is larger than `max_frame`.
    TooLarge {
        /// The frame's size.
        size: usize,
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for MessagingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessagingError::Timeout => f.write_str("timed out waiting for a response"),
            MessagingError::Unreachable => f.write_str("peer unreachable"),
            MessagingError::Overloaded => f.write_str("too many messages queued"),
            MessagingError::Closed => f.write_str("messaging service closed"),
            MessagingError::Remote(m) => write!(f, "remote failure: {m}"),
            MessagingError::TooLarge { size, max } => {
                write!(
                    f,
                    "message of {size} bytes exceeds the {max}-byte frame limit"
                )
            }
        }
    }
}

impl std::error::Error for MessagingError {}

/// Settings of a [`MessagingService`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagingConfig {
    /// Messages queued for one peer before sends fail with `Overloaded`.
    pub max_queue_per_peer: usize,
    /// How long a connection attempt (and an inbound handshake) may take.
    pub connect_timeout: Duration,
    /// Largest frame (verb, flags, id and payload) sent or accepted.
    pub max_frame: usize,
}

impl Default for MessagingConfig {
    fn default() -> Self {
        MessagingConfig {
            max_queue_per_peer: 4096,
            connect_timeout: Duration::from_secs(2),
            max_frame: 256 * 1024 * 1024,
        }
    }
}

/// A verb handler: gets the sender and the payload; `Some(bytes)` is sent
/// back as the response when the sender asked for one.
pub type Handler = Rc<dyn Fn(IpAddr, Bytes) -> Pin<Box<dyn Future<Output = Option<Bytes>>>>>;

/// Counters of a [`MessagingService`], for metrics and `nodetool netstats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessagingStats {
    /// Requests awaiting a response.
    pub pending_requests: usize,
    /// Messages queued across all peers.
    pub queued: usize,
    /// Messages dropped (queue full, peer unreachable, no handler, late response).
    pub dropped: u64,
    /// Inbound connections closed because of malformed bytes.
    pub protocol_errors: u64,
}

struct Outgoing {
    header: FrameHeader,
    payload: Bytes,
}

/// Outbound state for one peer.
struct Peer {
    ip: IpAddr,
    queue: RefCell<VecDeque<Outgoing>>,
    waker: RefCell<Option<Waker>>,
    writer_running: Cell<bool>,
    /// Sends fail fast until then (after a failed connect).
    down_until: Cell<Option<Instant>>,
    backoff: Cell<Duration>,
}

impl Peer {
    fn wake(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

/// A single-use slot a response is delivered into.
#[derive(Default)]
struct Slot {
    value: RefCell<Option<Result<Bytes, MessagingError>>>,
    waker: RefCell<Option<Waker>>,
}

impl Slot {
    fn complete(&self, v: Result<Bytes, MessagingError>) {
        *self.value.borrow_mut() = Some(v);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

struct SlotWait(Rc<Slot>);

impl Future for SlotWait {
    type Output = Result<Bytes, MessagingError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(v) = self.0.value.borrow_mut().take() {
            return Poll::Ready(v);
        }
        *self.0.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

struct PendingRequest {
    to: IpAddr,
    slot: Rc<Slot>,
}

/// Cassandra's `MessagingService` for one node (on shard 0). See the module docs.
pub struct MessagingService {
    local: SocketAddr,
    config: MessagingConfig,
    handlers: RefCell<HashMap<Verb, Handler>>,
    peers: RefCell<HashMap<IpAddr, Rc<Peer>>>,
    pending: RefCell<HashMap<u64, PendingRequest>>,
    next_id: Cell<u64>,
    gate: Gate,
    closing: Latch,
    dropped: Cell<u64>,
    protocol_errors: Cell<u64>,
}

impl fmt::Debug for MessagingService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessagingService")
            .field("local", &self.local)
            .field("stats", &self.stats())
            .finish()
    }
}

/// A bound listening socket; [`Acceptor::serve`] runs the accept loop.
pub struct Acceptor {
    ms: Rc<MessagingService>,
    listener: TcpListener,
}

impl Acceptor {
    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr().map_err(io::Error::from)
    }

    /// Accepts inbound connections until `stop` resolves or the service
    /// shuts down; each connection is served by its own task.
    pub async fn serve(self, stop: impl Future<Output = ()>) {
        let ms = self.ms;
        let stopped = async {
            future::or(stop, ms.closing.wait()).await;
            None
        };
        let accept = async {
            loop {
                match self.listener.accept().await {
                    Ok(s) => {
                        let ms2 = ms.clone();
                        if ms
                            .gate
                            .spawn(async move { ms2.serve_inbound(s).await })
                            .is_err()
                        {
                            return None;
                        }
                    }
                    Err(e) => {
                        log::warn!("internode accept on {} failed: {e}", ms.local);
                        crate::shard::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        };
        let _: Option<()> = future::or(stopped, accept).await;
    }
}

impl MessagingService {
    /// A messaging service for the node listening on `local`
    /// (`listen_address:storage_port`); peers are reached on the same port.
    pub fn new(local: SocketAddr, config: MessagingConfig) -> Rc<MessagingService> {
        Rc::new(MessagingService {
            local,
            config,
            handlers: RefCell::new(HashMap::new()),
            peers: RefCell::new(HashMap::new()),
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(1),
            gate: Gate::new(),
            closing: Latch::new(),
            dropped: Cell::new(0),
            protocol_errors: Cell::new(0),
        })
    }

    /// This node's internode address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// This node's IP (how peers name it).
    pub fn local_ip(&self) -> IpAddr {
        self.local.ip()
    }

    /// Binds the listening socket (so peers can connect as soon as this returns).
    pub fn bind(self: &Rc<Self>) -> io::Result<Acceptor> {
        let listener = TcpListener::bind(self.local).map_err(io::Error::from)?;
        Ok(Acceptor {
            ms: self.clone(),
            listener,
        })
    }

    /// Binds and accepts inbound connections until `stop` resolves (or
    /// [`MessagingService::shutdown`]).
    pub async fn listen(self: &Rc<Self>, stop: impl Future<Output = ()>) -> io::Result<()> {
        self.bind()?.serve(stop).await;
        Ok(())
    }

    /// Registers the handler of `verb` (replacing any earlier one).
    pub fn register(&self, verb: Verb, handler: Handler) {
        self.handlers.borrow_mut().insert(verb, handler);
    }

    /// Counters for metrics.
    pub fn stats(&self) -> MessagingStats {
        MessagingStats {
            pending_requests: self.pending.borrow().len(),
            queued: self
                .peers
                .borrow()
                .values()
                .map(|p| p.queue.borrow().len())
                .sum(),
            dropped: self.dropped.get(),
            protocol_errors: self.protocol_errors.get(),
        }
    }

    /// Whether [`MessagingService::shutdown`] was called.
    pub fn is_closed(&self) -> bool {
        self.closing.is_triggered()
    }

    /// Sends a request and waits up to `timeout` for its response.
    pub async fn send_request(
        self: &Rc<Self>,
        to: IpAddr,
        verb: Verb,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, MessagingError> {
        if self.is_closed() {
            return Err(MessagingError::Closed);
        }
        if self.pending.borrow().len() >= MAX_PENDING_REQUESTS {
            self.dropped.set(self.dropped.get() + 1);
            return Err(MessagingError::Overloaded);
        }
        let id = self.next_id();
        let slot = Rc::new(Slot::default());
        self.pending.borrow_mut().insert(
            id,
            PendingRequest {
                to,
                slot: slot.clone(),
            },
        );
        // Removes the pending entry however this future ends (even if dropped).
        struct Unregister<'a>(&'a MessagingService, u64);
        impl Drop for Unregister<'_> {
            fn drop(&mut self) {
                self.0.pending.borrow_mut().remove(&self.1);
            }
        }
        let _unregister = Unregister(self, id);
        let header = FrameHeader {
            verb: verb as u8,
            flags: FLAG_EXPECT_RESPONSE,
            id,
        };
        self.enqueue(to, header, payload)?;
        match crate::shard::timeout(timeout, SlotWait(slot)).await {
            Ok(r) => r,
            Err(_) => Err(MessagingError::Timeout),
        }
    }

    /// Sends a message that gets no response.
    pub fn send_oneway(
        self: &Rc<Self>,
        to: IpAddr,
        verb: Verb,
        payload: Bytes,
    ) -> Result<(), MessagingError> {
        if self.is_closed() {
            return Err(MessagingError::Closed);
        }
        let header = FrameHeader {
            verb: verb as u8,
            flags: 0,
            id: self.next_id(),
        };
        self.enqueue(to, header, payload)
    }

    /// Closes every connection, fails every pending request with `Closed`
    /// and waits for all of this service's tasks to end.
    pub async fn shutdown(&self) {
        self.closing.trigger();
        for p in self.peers.borrow().values() {
            p.wake();
        }
        let pending: Vec<PendingRequest> =
            self.pending.borrow_mut().drain().map(|(_, p)| p).collect();
        for p in pending {
            p.slot.complete(Err(MessagingError::Closed));
        }
        self.gate.close().await;
    }

    fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1).max(1));
        id
    }

    fn enqueue(
        self: &Rc<Self>,
        to: IpAddr,
        header: FrameHeader,
        payload: Bytes,
    ) -> Result<(), MessagingError> {
        let size = frame::HEADER_LEN + payload.len();
        if size > self.config.max_frame {
            return Err(MessagingError::TooLarge {
                size,
                max: self.config.max_frame,
            });
        }
        if to == self.local.ip() {
            // Loopback: deliver to our own handlers without a socket.
            self.dispatch(to, header, payload, None);
            return Ok(());
        }
        let peer = self.peer(to);
        if let Some(until) = peer.down_until.get() {
            if Instant::now() < until {
                self.dropped.set(self.dropped.get() + 1);
                return Err(MessagingError::Unreachable);
            }
        }
        if peer.queue.borrow().len() >= self.config.max_queue_per_peer {
            self.dropped.set(self.dropped.get() + 1);
            return Err(MessagingError::Overloaded);
        }
        peer.queue
            .borrow_mut()
            .push_back(Outgoing { header, payload });
        if !peer.writer_running.get() {
            peer.writer_running.set(true);
            let ms = self.clone();
            let p = peer.clone();
            if self
                .gate
                .spawn(async move { ms.write_loop(p).await })
                .is_err()
            {
                peer.writer_running.set(false);
                peer.queue.borrow_mut().clear();
                return Err(MessagingError::Closed);
            }
        } else {
            peer.wake();
        }
        Ok(())
    }

    fn peer(&self, ip: IpAddr) -> Rc<Peer> {
        self.peers
            .borrow_mut()
            .entry(ip)
            .or_insert_with(|| {
                Rc::new(Peer {
                    ip,
                    queue: RefCell::new(VecDeque::new()),
                    waker: RefCell::new(None),
                    writer_running: Cell::new(false),
                    down_until: Cell::new(None),
                    backoff: Cell::new(INITIAL_BACKOFF),
                })
            })
            .clone()
    }

    /// Fails the requests among `frames` with `err`.
    fn fail_frames(&self, frames: impl IntoIterator<Item = Outgoing>, err: MessagingError) {
        for f in frames {
            self.dropped.set(self.dropped.get() + 1);
            if f.header.flags & FLAG_EXPECT_RESPONSE != 0 {
                if let Some(p) = self.pending.borrow_mut().remove(&f.header.id) {
                    p.slot.complete(Err(err.clone()));
                }
            }
        }
    }

    async fn connect(&self, ip: IpAddr) -> io::Result<TcpStream> {
        let addr = SocketAddr::new(ip, self.local.port());
        let stream = TcpStream::connect_timeout(addr, self.config.connect_timeout)
            .await
            .map_err(io::Error::from)?;
        stream.set_nodelay(true).map_err(io::Error::from)?;
        let mut stream = stream;
        stream
            .write_all(&frame::encode_handshake(self.local.ip()))
            .await?;
        Ok(stream)
    }

    /// The outbound connection of one peer: connects when there is
    /// something to send, writes queued frames in batches, reconnects.
    async fn write_loop(self: Rc<Self>, peer: Rc<Peer>) {
        let mut stream: Option<TcpStream> = None;
        let mut buf = Vec::new();
        loop {
            // Wait for work, or for the shutdown.
            let has_work = future::poll_fn(|cx| {
                if self.closing.is_triggered() {
                    return Poll::Ready(false);
                }
                if !peer.queue.borrow().is_empty() {
                    return Poll::Ready(true);
                }
                *peer.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            })
            .await;
            if !has_work {
                break;
            }
            if stream.is_none() {
                let attempt = future::or(async { Some(self.connect(peer.ip).await) }, async {
                    self.closing.wait().await;
                    None
                })
                .await;
                match attempt {
                    None => break,
                    Some(Ok(s)) => {
                        log::debug!("connected to {} (internode)", peer.ip);
                        peer.backoff.set(INITIAL_BACKOFF);
                        peer.down_until.set(None);
                        stream = Some(s);
                    }
                    Some(Err(e)) => {
                        let backoff = peer.backoff.get();
                        log::debug!(
                            "cannot connect to {}: {e}; retrying in {backoff:?}",
                            peer.ip
                        );
                        peer.down_until.set(Some(Instant::now() + backoff));
                        peer.backoff.set((backoff * 2).min(MAX_BACKOFF));
                        let frames: Vec<Outgoing> = peer.queue.borrow_mut().drain(..).collect();
                        self.fail_frames(frames, MessagingError::Unreachable);
                        continue;
                    }
                }
            }
            buf.clear();
            while buf.len() < WRITE_BATCH_BYTES {
                let Some(f) = peer.queue.borrow_mut().pop_front() else {
                    break;
                };
                frame::encode_frame(&mut buf, f.header, &f.payload);
            }
            let Some(s) = stream.as_mut() else {
                continue;
            };
            let written = future::or(
                async {
                    Some(
                        async {
                            s.write_all(&buf).await?;
                            s.flush().await
                        }
                        .await,
                    )
                },
                async {
                    self.closing.wait().await;
                    None
                },
            )
            .await;
            match written {
                None => break,
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    // Frames in that batch are lost; their requests time out.
                    log::debug!("connection to {} lost: {e}", peer.ip);
                    stream = None;
                }
            }
            crate::shard::maybe_yield().await;
        }
        if let Some(s) = stream {
            let _ = s.shutdown(std::net::Shutdown::Both).await;
        }
        let frames: Vec<Outgoing> = peer.queue.borrow_mut().drain(..).collect();
        self.fail_frames(frames, MessagingError::Closed);
        peer.writer_running.set(false);
    }

    /// Serves one inbound connection until the peer closes it, it sends
    /// malformed bytes, or the service shuts down.
    async fn serve_inbound(self: Rc<Self>, stream: TcpStream) {
        let remote = stream.peer_addr().ok();
        let result = future::or(self.read_loop(stream), async {
            self.closing.wait().await;
            Ok(())
        })
        .await;
        if let Err(e) = result {
            if e.kind() == io::ErrorKind::InvalidData {
                self.protocol_errors.set(self.protocol_errors.get() + 1);
                log::warn!("closing internode connection from {remote:?}: {e}");
            } else if e.kind() != io::ErrorKind::UnexpectedEof {
                log::debug!("internode connection from {remote:?} ended: {e}");
            }
        }
    }

    async fn read_loop(self: &Rc<Self>, stream: TcpStream) -> io::Result<()> {
        let mut r = BufReader::with_capacity(64 * 1024, stream);
        let invalid = |e: frame::FrameError| io::Error::new(io::ErrorKind::InvalidData, e);
        let from = crate::shard::timeout(self.config.connect_timeout, async {
            let mut prefix = [0u8; frame::HANDSHAKE_PREFIX_LEN];
            r.read_exact(&mut prefix).await?;
            let n = frame::decode_handshake_prefix(&prefix).map_err(invalid)?;
            let mut addr = [0u8; 16];
            r.read_exact(&mut addr[..n]).await?;
            frame::decode_handshake_address(&addr[..n]).map_err(invalid)
        })
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "internode handshake timed out"))??;
        let in_flight = Rc::new(glommio::sync::Semaphore::new(
            MAX_IN_FLIGHT_PER_CONNECTION as u64,
        ));
        loop {
            let mut len = [0u8; 4];
            r.read_exact(&mut len).await?;
            let len = frame::check_length(u32::from_be_bytes(len), self.config.max_frame)
                .map_err(invalid)?;
            let mut body = vec![0u8; len];
            r.read_exact(&mut body).await?;
            let (header, payload) = frame::decode_body(Bytes::from(body)).map_err(invalid)?;
            let permit = if header.flags & FLAG_RESPONSE == 0 {
                match in_flight.acquire_static_permit(1).await {
                    Ok(p) => Some(p),
                    Err(_) => return Ok(()),
                }
            } else {
                None
            };
            self.dispatch(from, header, payload, permit);
        }
    }

    /// Handles one incoming frame (from the network or loopback).
    fn dispatch(
        self: &Rc<Self>,
        from: IpAddr,
        header: FrameHeader,
        payload: Bytes,
        permit: Option<glommio::sync::StaticPermit>,
    ) {
        if header.flags & FLAG_RESPONSE != 0 {
            let entry = {
                let mut pending = self.pending.borrow_mut();
                match pending.get(&header.id) {
                    Some(p) if p.to == from => pending.remove(&header.id),
                    _ => None,
                }
            };
            match entry {
                Some(p) => {
                    let result = if header.flags & FLAG_FAILURE != 0 {
                        Err(MessagingError::Remote(
                            String::from_utf8_lossy(&payload).into_owned(),
                        ))
                    } else {
                        Ok(payload)
                    };
                    p.slot.complete(result);
                }
                None => {
                    // Late (timed out) or unknown: drop it.
                    self.dropped.set(self.dropped.get() + 1);
                }
            }
            return;
        }
        let expects = header.flags & FLAG_EXPECT_RESPONSE != 0;
        let Some(verb) = Verb::from_u8(header.verb) else {
            self.dropped.set(self.dropped.get() + 1);
            if expects {
                self.respond_failure(from, Verb::RequestRsp, header.id, "unknown verb");
            }
            return;
        };
        let handler = self.handlers.borrow().get(&verb).cloned();
        let Some(handler) = handler else {
            self.dropped.set(self.dropped.get() + 1);
            log::debug!("no handler for {verb:?} from {from}");
            if expects {
                let msg = format!("no handler for verb {verb:?}");
                self.respond_failure(from, verb.response_verb(), header.id, &msg);
            }
            return;
        };
        let ms = self.clone();
        let task = async move {
            let _permit = permit;
            let response = handler(from, payload).await;
            if let (true, Some(body)) = (expects, response) {
                ms.respond(from, verb.response_verb(), header.id, FLAG_RESPONSE, body);
            }
        };
        if self.gate.spawn(task).is_err() {
            self.dropped.set(self.dropped.get() + 1);
        }
    }

    fn respond_failure(self: &Rc<Self>, to: IpAddr, verb: Verb, id: u64, msg: &str) {
        let body = Bytes::copy_from_slice(msg.as_bytes());
        self.respond(to, verb, id, FLAG_RESPONSE | FLAG_FAILURE, body);
    }

    fn respond(self: &Rc<Self>, to: IpAddr, verb: Verb, id: u64, flags: u8, body: Bytes) {
        let header = FrameHeader {
            verb: verb as u8,
            flags,
            id,
        };
        if let Err(e) = self.enqueue(to, header, body) {
            if let (MessagingError::TooLarge { .. }, 0) = (&e, flags & FLAG_FAILURE) {
                // Tell the requester instead of letting it time out.
                self.respond_failure(to, verb, id, &e.to_string());
            } else {
                log::debug!("dropping response {verb:?} to {to}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests;
