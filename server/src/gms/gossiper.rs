//! Cassandra's `Gossiper`: membership by periodic three-way gossip.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::future;

use super::failure_detector::{FailureDetector, DEFAULT_PHI_CONVICT_THRESHOLD};
use super::messages::{GossipDigest, GossipDigestAck, GossipDigestAck2, GossipDigestSyn};
use super::state::{
    is_dead_status, ApplicationState, EndpointSnapshot, EndpointState, HeartBeatState,
    VersionedValue, STATUS_SHUTDOWN,
};
use crate::net::{Handler, MessagingService, Verb};
use crate::shard::{Gate, Latch};

/// Endpoints this node tracks at most; states of further ones are ignored.
pub const MAX_ENDPOINTS: usize = 4096;

/// Settings of a [`Gossiper`].
#[derive(Debug, Clone, PartialEq)]
pub struct GossipConfig {
    /// `cluster_name`: gossip from other clusters is ignored.
    pub cluster_name: String,
    /// The partitioner's class name (must match too).
    pub partitioner: String,
    /// Time between gossip rounds (Cassandra: 1 s).
    pub interval: Duration,
    /// `phi_convict_threshold` (Cassandra: 8).
    pub phi_convict_threshold: f64,
    /// How long an `Echo` (before marking a node alive) may take.
    pub echo_timeout: Duration,
    /// How long a graceful shutdown waits for peers to take the news.
    pub shutdown_announce_timeout: Duration,
}

impl Default for GossipConfig {
    fn default() -> Self {
        GossipConfig {
            cluster_name: "Test Cluster".into(),
            partitioner: "org.apache.cassandra.dht.Murmur3Partitioner".into(),
            interval: Duration::from_secs(1),
            phi_convict_threshold: DEFAULT_PHI_CONVICT_THRESHOLD,
            echo_timeout: Duration::from_secs(2),
            shutdown_announce_timeout: Duration::from_secs(2),
        }
    }
}

/// Gets told about changes to the cluster's endpoints (Cassandra's
/// `IEndpointStateChangeSubscriber`). Called on shard 0, synchronously:
/// keep them short and spawn real work.
pub trait EndpointStateSubscriber {
    /// A new endpoint, or a known one with a new generation (a restart).
    fn on_join(&self, _ip: IpAddr) {}
    /// An application state of `ip` changed (also for this node's own states).
    fn on_change(&self, _ip: IpAddr, _state: ApplicationState, _value: &str) {}
    /// `ip` is now considered alive.
    fn on_alive(&self, _ip: IpAddr) {}
    /// `ip` is now considered down.
    fn on_dead(&self, _ip: IpAddr) {}
    /// `ip` was removed from gossip.
    fn on_remove(&self, _ip: IpAddr) {}
}

enum Event {
    Join(IpAddr),
    Change(IpAddr, ApplicationState, String),
    Alive(IpAddr),
    Dead(IpAddr),
    Remove(IpAddr),
}

/// One node's gossiper (runs on shard 0). See the module docs of [`crate::gms`].
pub struct Gossiper {
    ms: Rc<MessagingService>,
    local: IpAddr,
    seeds: Vec<IpAddr>,
    config: GossipConfig,
    endpoints: RefCell<HashMap<IpAddr, EndpointState>>,
    live: RefCell<BTreeSet<IpAddr>>,
    unreachable: RefCell<BTreeMap<IpAddr, Instant>>,
    fd: FailureDetector,
    version: Cell<i32>,
    subscribers: RefCell<Vec<Rc<dyn EndpointStateSubscriber>>>,
    echo_in_flight: RefCell<HashSet<IpAddr>>,
    rng: Cell<u64>,
    gate: Gate,
    stopping: Latch,
}

impl std::fmt::Debug for Gossiper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gossiper")
            .field("local", &self.local)
            .field("live", &self.live.borrow())
            .field("unreachable", &self.unreachable.borrow().keys())
            .finish()
    }
}

impl Gossiper {
    /// A gossiper with Cassandra's defaults ([`GossipConfig::default`]).
    pub fn new(
        ms: Rc<MessagingService>,
        local: IpAddr,
        seeds: Vec<IpAddr>,
        generation: i32,
        initial_states: Vec<(ApplicationState, String)>,
    ) -> Rc<Gossiper> {
        Gossiper::with_config(
            ms,
            local,
            seeds,
            generation,
            initial_states,
            GossipConfig::default(),
        )
    }

    /// A gossiper for this node; registers its verb handlers on `ms`.
    pub fn with_config(
        ms: Rc<MessagingService>,
        local: IpAddr,
        seeds: Vec<IpAddr>,
        generation: i32,
        initial_states: Vec<(ApplicationState, String)>,
        config: GossipConfig,
    ) -> Rc<Gossiper> {
        let mut seeds: Vec<IpAddr> = seeds.into_iter().filter(|s| *s != local).collect();
        seeds.sort();
        seeds.dedup();
        let mut state = EndpointState::new(HeartBeatState {
            generation,
            version: 0,
        });
        state.alive = true;
        let mut version = 0;
        for (k, v) in initial_states {
            version += 1;
            state.states.insert(k, VersionedValue { value: v, version });
        }
        let seed = Instant::now().elapsed().as_nanos() as u64
            ^ (std::process::id() as u64) << 32
            ^ match local {
                IpAddr::V4(a) => u32::from(a) as u64,
                IpAddr::V6(a) => u128::from(a) as u64,
            }
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
        let g = Rc::new(Gossiper {
            ms: ms.clone(),
            local,
            seeds,
            fd: FailureDetector::new(config.phi_convict_threshold, config.interval),
            config,
            endpoints: RefCell::new(HashMap::from([(local, state)])),
            live: RefCell::new(BTreeSet::new()),
            unreachable: RefCell::new(BTreeMap::new()),
            version: Cell::new(version),
            subscribers: RefCell::new(Vec::new()),
            echo_in_flight: RefCell::new(HashSet::new()),
            rng: Cell::new(seed | 1),
            gate: Gate::new(),
            stopping: Latch::new(),
        });
        g.register_handlers();
        g
    }

    fn register_handlers(self: &Rc<Self>) {
        fn handler(
            g: &Rc<Gossiper>,
            f: fn(&Rc<Gossiper>, IpAddr, Bytes) -> Option<Bytes>,
        ) -> Handler {
            let weak: Weak<Gossiper> = Rc::downgrade(g);
            Rc::new(move |from, payload| {
                let out = weak.upgrade().and_then(|g| f(&g, from, payload));
                Box::pin(async move { out })
            })
        }
        self.ms
            .register(Verb::GossipDigestSyn, handler(self, Gossiper::handle_syn));
        self.ms
            .register(Verb::GossipDigestAck, handler(self, Gossiper::handle_ack));
        self.ms
            .register(Verb::GossipDigestAck2, handler(self, Gossiper::handle_ack2));
        self.ms.register(
            Verb::GossipShutdown,
            handler(self, Gossiper::handle_shutdown),
        );
        self.ms
            .register(Verb::Echo, handler(self, Gossiper::handle_echo));
    }

    /// This node's address.
    pub fn local(&self) -> IpAddr {
        self.local
    }

    /// The failure detector.
    pub fn failure_detector(&self) -> &FailureDetector {
        &self.fd
    }

    /// Registers a subscriber for endpoint events.
    pub fn subscribe(&self, s: Rc<dyn EndpointStateSubscriber>) {
        self.subscribers.borrow_mut().push(s);
    }

    /// Sets one of this node's states (with a new version) for gossip to spread.
    pub fn add_local_state(&self, key: ApplicationState, value: String) {
        let version = self.next_version();
        if let Some(s) = self.endpoints.borrow_mut().get_mut(&self.local) {
            s.states.insert(
                key,
                VersionedValue {
                    value: value.clone(),
                    version,
                },
            );
        }
        self.notify(vec![Event::Change(self.local, key, value)]);
    }

    /// Every known endpoint (this node included) and its state.
    pub fn endpoint_states(&self) -> Vec<(IpAddr, EndpointSnapshot)> {
        let mut v: Vec<_> = self
            .endpoints
            .borrow()
            .iter()
            .map(|(ip, s)| (*ip, s.snapshot()))
            .collect();
        v.sort_by_key(|(ip, _)| *ip);
        v
    }

    /// One endpoint's state.
    pub fn endpoint_state(&self, ip: IpAddr) -> Option<EndpointSnapshot> {
        self.endpoints
            .borrow()
            .get(&ip)
            .map(EndpointState::snapshot)
    }

    /// Other endpoints considered alive.
    pub fn live_members(&self) -> Vec<IpAddr> {
        self.live.borrow().iter().copied().collect()
    }

    /// Other endpoints considered down.
    pub fn unreachable_members(&self) -> Vec<IpAddr> {
        self.unreachable.borrow().keys().copied().collect()
    }

    /// Whether `ip` is considered alive (this node always is).
    pub fn is_alive(&self, ip: IpAddr) -> bool {
        ip == self.local || self.live.borrow().contains(&ip)
    }

    /// Runs gossip rounds every `interval` until `stop` resolves or
    /// [`Gossiper::shutdown`] is called.
    pub async fn run(self: &Rc<Self>, stop: impl Future<Output = ()>) {
        let rounds = async {
            loop {
                crate::shard::sleep(self.config.interval).await;
                if self.stopping.is_triggered() {
                    break;
                }
                self.round();
            }
        };
        future::or(future::or(stop, self.stopping.wait()), rounds).await;
    }

    /// Graceful shutdown: sets `STATUS` to `shutdown`, tells every live
    /// member (`GossipShutdown`, so they mark this node down at once), stops
    /// [`Gossiper::run`] and waits for this gossiper's tasks.
    pub async fn shutdown(&self) {
        if self.stopping.is_triggered() {
            return;
        }
        // A node that left the ring keeps saying so: peers must not take it
        // back as a member that merely shut down.
        let left = self
            .endpoints
            .borrow()
            .get(&self.local)
            .and_then(|s| s.status().map(is_dead_status))
            .unwrap_or(false);
        if left {
            self.stopping.trigger();
            self.gate.close().await;
            return;
        }
        self.add_local_state(ApplicationState::Status, STATUS_SHUTDOWN.to_string());
        self.stopping.trigger();
        let timeout = self.config.shutdown_announce_timeout;
        let sends: Vec<_> = self
            .live_members()
            .into_iter()
            .map(|ip| {
                let ms = self.ms.clone();
                crate::shard::spawn(async move {
                    let _ = ms
                        .send_request(ip, Verb::GossipShutdown, Bytes::new(), timeout)
                        .await;
                })
            })
            .collect();
        for s in sends {
            s.await;
        }
        self.gate.close().await;
    }

    /// Forgets `ip` (Cassandra's `removeEndpoint`).
    pub fn remove_endpoint(&self, ip: IpAddr) {
        if ip == self.local {
            return;
        }
        let known = self.endpoints.borrow_mut().remove(&ip).is_some();
        self.live.borrow_mut().remove(&ip);
        self.unreachable.borrow_mut().remove(&ip);
        self.fd.remove(ip);
        if known {
            self.notify(vec![Event::Remove(ip)]);
        }
    }

    /// Sets the `STATUS` of another, dead endpoint on its behalf
    /// (Cassandra's `advertiseRemoving` / `advertiseTokenRemoved`, for
    /// `removenode`). The endpoint's state gets a new generation, so every
    /// node takes it over whatever versions it has seen of it. Refused for
    /// this node and for an unknown or live endpoint.
    pub fn advertise_on_behalf(&self, ip: IpAddr, status: String) -> Result<(), String> {
        if ip == self.local {
            return Err("cannot advertise a state of this node on its behalf".into());
        }
        {
            let mut eps = self.endpoints.borrow_mut();
            let s = eps
                .get_mut(&ip)
                .ok_or_else(|| format!("/{ip} is not known to gossip"))?;
            if s.alive {
                return Err(format!("/{ip} is alive"));
            }
            s.heartbeat.generation = s.heartbeat.generation.saturating_add(1);
            let version = s.max_version().saturating_add(1);
            s.states.insert(
                ApplicationState::Status,
                VersionedValue {
                    value: status.clone(),
                    version,
                },
            );
            s.update_timestamp = Instant::now();
        }
        self.notify(vec![Event::Change(ip, ApplicationState::Status, status)]);
        Ok(())
    }

    fn next_version(&self) -> i32 {
        let v = self.version.get().saturating_add(1);
        self.version.set(v);
        v
    }

    fn random(&self, n: usize) -> usize {
        // xorshift64*
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }

    fn random_f64(&self) -> f64 {
        self.random(1 << 30) as f64 / (1u64 << 30) as f64
    }

    fn notify(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let subs = self.subscribers.borrow().clone();
        for e in &events {
            for s in &subs {
                match e {
                    Event::Join(ip) => s.on_join(*ip),
                    Event::Change(ip, k, v) => s.on_change(*ip, *k, v),
                    Event::Alive(ip) => s.on_alive(*ip),
                    Event::Dead(ip) => s.on_dead(*ip),
                    Event::Remove(ip) => s.on_remove(*ip),
                }
            }
        }
    }

    /// One gossip round (Cassandra's `GossipTask`).
    fn round(self: &Rc<Self>) {
        let version = self.next_version();
        if let Some(s) = self.endpoints.borrow_mut().get_mut(&self.local) {
            s.heartbeat.version = version;
        }
        let mut digests: Vec<GossipDigest> = self
            .endpoints
            .borrow()
            .iter()
            .map(|(ip, s)| GossipDigest {
                endpoint: *ip,
                generation: s.heartbeat.generation,
                max_version: s.max_version(),
            })
            .collect();
        for i in (1..digests.len()).rev() {
            digests.swap(i, self.random(i + 1));
        }
        let syn = GossipDigestSyn {
            cluster_name: self.config.cluster_name.clone(),
            partitioner: self.config.partitioner.clone(),
            digests,
        }
        .encode();

        let live = self.live_members();
        let unreachable = self.unreachable_members();
        // Gossip to a random live member.
        let gossiped_to_seed = self.send_gossip(&syn, &live);
        // Maybe to an unreachable member.
        if !unreachable.is_empty() {
            let prob = unreachable.len() as f64 / (live.len() + 1) as f64;
            if self.random_f64() < prob {
                self.send_gossip(&syn, &unreachable);
            }
        }
        // Maybe to a seed.
        if !gossiped_to_seed || live.len() < self.seeds.len() {
            if live.is_empty() {
                self.send_gossip(&syn, &self.seeds);
            } else if !self.seeds.is_empty() {
                let prob = self.seeds.len() as f64 / (live.len() + unreachable.len()) as f64;
                if self.random_f64() <= prob {
                    self.send_gossip(&syn, &self.seeds);
                }
            }
        }
        self.status_check();
    }

    /// Sends the SYN to one random member of `to`; whether it was a seed.
    fn send_gossip(&self, syn: &Bytes, to: &[IpAddr]) -> bool {
        if to.is_empty() {
            return false;
        }
        let ip = to[self.random(to.len())];
        if let Err(e) = self.ms.send_oneway(ip, Verb::GossipDigestSyn, syn.clone()) {
            log::trace!("gossip SYN to {ip}: {e}");
        }
        self.seeds.contains(&ip)
    }

    /// Convicts endpoints whose phi is too high (Cassandra's `doStatusCheck`).
    fn status_check(&self) {
        let ips: Vec<IpAddr> = self
            .endpoints
            .borrow()
            .keys()
            .copied()
            .filter(|ip| *ip != self.local)
            .collect();
        for ip in ips {
            if self.fd.interpret(ip) {
                self.convict(ip);
            }
        }
    }

    fn convict(&self, ip: IpAddr) {
        let alive = self.endpoints.borrow().get(&ip).is_some_and(|s| s.alive);
        if alive {
            log::info!(
                "InetAddress /{ip} is now DOWN (phi {:.1})",
                self.fd.phi(ip).unwrap_or(0.0)
            );
            self.mark_dead(ip);
        }
    }

    fn mark_dead(&self, ip: IpAddr) {
        if let Some(s) = self.endpoints.borrow_mut().get_mut(&ip) {
            s.alive = false;
        }
        self.live.borrow_mut().remove(&ip);
        self.unreachable.borrow_mut().insert(ip, Instant::now());
        self.notify(vec![Event::Dead(ip)]);
    }

    /// Checks `ip` with an `Echo` and marks it alive when it answers.
    fn mark_alive(self: &Rc<Self>, ip: IpAddr) {
        if self.stopping.is_triggered() || !self.echo_in_flight.borrow_mut().insert(ip) {
            return;
        }
        let weak = Rc::downgrade(self);
        let ms = self.ms.clone();
        let timeout = self.config.echo_timeout;
        let task = async move {
            let r = ms.send_request(ip, Verb::Echo, Bytes::new(), timeout).await;
            if let Some(g) = weak.upgrade() {
                g.echo_in_flight.borrow_mut().remove(&ip);
                if r.is_ok() {
                    g.real_mark_alive(ip);
                }
            }
        };
        if self.gate.spawn(task).is_err() {
            self.echo_in_flight.borrow_mut().remove(&ip);
        }
    }

    fn real_mark_alive(&self, ip: IpAddr) {
        {
            let mut eps = self.endpoints.borrow_mut();
            let Some(s) = eps.get_mut(&ip) else {
                return;
            };
            if s.alive || s.is_dead_state() {
                return;
            }
            s.alive = true;
            s.update_timestamp = Instant::now();
        }
        self.live.borrow_mut().insert(ip);
        self.unreachable.borrow_mut().remove(&ip);
        log::info!("InetAddress /{ip} is now UP");
        self.notify(vec![Event::Alive(ip)]);
    }

    fn digest_reply_states(&self, ip: IpAddr, newer_than: i32) -> Option<EndpointState> {
        self.endpoints
            .borrow()
            .get(&ip)
            .map(|s| s.newer_than(newer_than))
    }

    fn handle_syn(self: &Rc<Self>, from: IpAddr, payload: Bytes) -> Option<Bytes> {
        if self.stopping.is_triggered() {
            return None;
        }
        let syn = match GossipDigestSyn::decode(&payload) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("gossip SYN from {from}: {e}");
                return None;
            }
        };
        if syn.cluster_name != self.config.cluster_name {
            log::warn!(
                "ClusterName mismatch from {from} {}!={}",
                syn.cluster_name,
                self.config.cluster_name
            );
            return None;
        }
        if syn.partitioner != self.config.partitioner {
            log::warn!(
                "Partitioner mismatch from {from} {}!={}",
                syn.partitioner,
                self.config.partitioner
            );
            return None;
        }
        let mut ack = GossipDigestAck::default();
        for d in &syn.digests {
            let local = self
                .endpoints
                .borrow()
                .get(&d.endpoint)
                .map(|s| (s.heartbeat.generation, s.max_version()));
            match local {
                None => ack.digests.push(GossipDigest {
                    max_version: 0,
                    ..*d
                }),
                Some((gen, _)) if d.generation > gen => ack.digests.push(GossipDigest {
                    max_version: 0,
                    ..*d
                }),
                Some((gen, _)) if d.generation < gen => {
                    if let Some(s) = self.digest_reply_states(d.endpoint, 0) {
                        ack.states.push((d.endpoint, s));
                    }
                }
                Some((gen, max)) => {
                    if d.max_version > max {
                        ack.digests.push(GossipDigest {
                            endpoint: d.endpoint,
                            generation: gen,
                            max_version: max,
                        });
                    } else if d.max_version < max {
                        if let Some(s) = self.digest_reply_states(d.endpoint, d.max_version) {
                            ack.states.push((d.endpoint, s));
                        }
                    }
                }
            }
        }
        if let Err(e) = self
            .ms
            .send_oneway(from, Verb::GossipDigestAck, ack.encode())
        {
            log::trace!("gossip ACK to {from}: {e}");
        }
        None
    }

    fn handle_ack(self: &Rc<Self>, from: IpAddr, payload: Bytes) -> Option<Bytes> {
        if self.stopping.is_triggered() {
            return None;
        }
        let ack = match GossipDigestAck::decode(&payload) {
            Ok(a) => a,
            Err(e) => {
                log::warn!("gossip ACK from {from}: {e}");
                return None;
            }
        };
        self.apply_state_locally(ack.states);
        let mut ack2 = GossipDigestAck2::default();
        for d in &ack.digests {
            if let Some(s) = self.digest_reply_states(d.endpoint, d.max_version) {
                ack2.states.push((d.endpoint, s));
            }
        }
        if let Err(e) = self
            .ms
            .send_oneway(from, Verb::GossipDigestAck2, ack2.encode())
        {
            log::trace!("gossip ACK2 to {from}: {e}");
        }
        None
    }

    fn handle_ack2(self: &Rc<Self>, from: IpAddr, payload: Bytes) -> Option<Bytes> {
        if self.stopping.is_triggered() {
            return None;
        }
        match GossipDigestAck2::decode(&payload) {
            Ok(a) => self.apply_state_locally(a.states),
            Err(e) => log::warn!("gossip ACK2 from {from}: {e}"),
        }
        None
    }

    fn handle_echo(self: &Rc<Self>, _from: IpAddr, _payload: Bytes) -> Option<Bytes> {
        // A node shutting down does not answer: peers must not mark it up.
        (!self.stopping.is_triggered()).then(Bytes::new)
    }

    /// Cassandra's `markAsShutdown`: `from` is going away; mark it down now.
    fn handle_shutdown(self: &Rc<Self>, from: IpAddr, _payload: Bytes) -> Option<Bytes> {
        if self.stopping.is_triggered() || from == self.local {
            return Some(Bytes::new());
        }
        let version = self.next_version();
        let known = {
            let mut eps = self.endpoints.borrow_mut();
            match eps.get_mut(&from) {
                Some(s) => {
                    s.states.insert(
                        ApplicationState::Status,
                        VersionedValue {
                            value: STATUS_SHUTDOWN.into(),
                            version,
                        },
                    );
                    s.heartbeat.version = i32::MAX;
                    true
                }
                None => false,
            }
        };
        if known {
            log::info!("InetAddress /{from} is now DOWN, node is shutting down");
            self.fd.remove(from);
            self.notify(vec![Event::Change(
                from,
                ApplicationState::Status,
                STATUS_SHUTDOWN.into(),
            )]);
            self.mark_dead(from);
        }
        Some(Bytes::new())
    }

    /// Merges states learnt from gossip (Cassandra's `notifyFailureDetector`
    /// plus `applyStateLocally`).
    fn apply_state_locally(self: &Rc<Self>, states: Vec<(IpAddr, EndpointState)>) {
        for (ip, remote) in states {
            if ip == self.local {
                continue;
            }
            let local = self
                .endpoints
                .borrow()
                .get(&ip)
                .map(|s| (s.heartbeat, s.max_version(), s.alive));
            match local {
                None => {
                    if self.endpoints.borrow().len() >= MAX_ENDPOINTS {
                        log::warn!("ignoring gossip about {ip}: {MAX_ENDPOINTS} endpoints known");
                        continue;
                    }
                    self.fd.report(ip);
                    self.handle_major_state_change(ip, remote);
                }
                Some((hb, _, alive)) if remote.heartbeat.generation > hb.generation => {
                    if !alive {
                        self.fd.remove(ip);
                    }
                    self.fd.report(ip);
                    self.handle_major_state_change(ip, remote);
                }
                Some((hb, local_max, _)) if remote.heartbeat.generation == hb.generation => {
                    if remote.heartbeat.version > hb.version {
                        self.fd.report(ip);
                    }
                    if remote.max_version() > local_max {
                        self.apply_new_states(ip, remote);
                    }
                    let revive = self
                        .endpoints
                        .borrow()
                        .get(&ip)
                        .is_some_and(|s| !s.alive && !s.is_dead_state());
                    if revive {
                        self.mark_alive(ip);
                    }
                }
                Some(_) => {
                    // An older generation: stale news.
                }
            }
        }
    }

    /// A new endpoint, or a restart: replace its state, notify, check it is up.
    fn handle_major_state_change(self: &Rc<Self>, ip: IpAddr, mut remote: EndpointState) {
        let was_alive = {
            let eps = self.endpoints.borrow();
            match eps.get(&ip) {
                Some(s) => {
                    log::info!("Node /{ip} has restarted, now UP");
                    s.alive
                }
                None => {
                    log::info!("Node /{ip} is now part of the cluster");
                    false
                }
            }
        };
        remote.alive = false;
        remote.update_timestamp = Instant::now();
        let dead_state = remote.is_dead_state();
        let mut events = vec![Event::Join(ip)];
        for (k, v) in &remote.states {
            events.push(Event::Change(ip, *k, v.value.clone()));
        }
        self.endpoints.borrow_mut().insert(ip, remote);
        if was_alive {
            // A restart while we thought it alive: it went down in between.
            self.live.borrow_mut().remove(&ip);
            self.unreachable.borrow_mut().insert(ip, Instant::now());
            events.push(Event::Dead(ip));
        } else {
            self.unreachable.borrow_mut().insert(ip, Instant::now());
        }
        self.notify(events);
        if !dead_state {
            self.mark_alive(ip);
        }
    }

    /// Same generation, newer versions: take the heartbeat and newer states.
    fn apply_new_states(&self, ip: IpAddr, remote: EndpointState) {
        let mut events = Vec::new();
        let became_dead = {
            let mut eps = self.endpoints.borrow_mut();
            let Some(s) = eps.get_mut(&ip) else {
                return;
            };
            if remote.heartbeat.version > s.heartbeat.version {
                s.heartbeat = remote.heartbeat;
            }
            for (k, v) in remote.states {
                let newer = s.states.get(&k).is_none_or(|old| v.version > old.version);
                if newer {
                    events.push(Event::Change(ip, k, v.value.clone()));
                    s.states.insert(k, v);
                }
            }
            s.update_timestamp = Instant::now();
            s.alive && s.status().is_some_and(is_dead_status)
        };
        self.notify(events);
        if became_dead {
            // Its status says it left or shut down.
            self.fd.remove(ip);
            self.mark_dead(ip);
        }
    }
}
