//! Boots the node: builds every service once, in dependency order, on each
//! shard, serves clients until asked to stop, then stops them in reverse.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use std::time::Duration;

use engine::commitlog::{CommitLogConfig, ReplayReport, SyncMode};
use engine::compaction::{CompactionExecutor, CompactionJob, CompactionKind};
use engine::{Database, EngineConfig};

use crate::admin::{register_builtin_routes, AdminLimits, AdminServer, Router};
use crate::config::{CommitlogSync, Config};
use crate::cql3::query_processor::QueryProcessor;
use crate::schema::{LocalNodeInfo, Schema};
use crate::service::migration_manager::shard_error;
use crate::service::migration_manager::MigrationManager;
use crate::service::storage_proxy::ShardRouter;
use crate::service::storage_proxy::StorageProxy;
use crate::shard::{ShardConfig, ShardContext, ShardRuntime};
use crate::transport::events::EventBus;
use crate::transport::{TransportLimits, TransportServices};
use engine::mutation::{Mutation, PartitionKey, PartitionUpdate};
use engine::read::{ReadCommand, TokenRange};
use proto::error::ErrorResponse;

/// Identity that must survive restarts: host id and tokens.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    pub host_id: [u8; 16],
    pub tokens: Vec<i64>,
    /// The shard count the commitlog was last written with.
    pub shards: Option<usize>,
    /// Where the snitch placed the node when it first started.
    pub dc: Option<String>,
    pub rack: Option<String>,
}

impl NodeIdentity {
    /// Loads `dir/node_identity`, or creates it with a random host id and
    /// `num_tokens` random tokens.
    pub fn load_or_create(dir: &Path, num_tokens: u32) -> std::io::Result<NodeIdentity> {
        let path = dir.join("node_identity");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let mut host_id = None;
            let mut tokens = Vec::new();
            let mut shards = None;
            let (mut dc, mut rack) = (None, None);
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("host_id=") {
                    host_id = crate::schema::digest::parse_uuid(v.trim());
                } else if let Some(v) = line.strip_prefix("tokens=") {
                    tokens = v.split(',').filter_map(|t| t.trim().parse().ok()).collect();
                } else if let Some(v) = line.strip_prefix("shards=") {
                    shards = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("dc=") {
                    dc = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("rack=") {
                    rack = Some(v.trim().to_string());
                }
            }
            if let (Some(host_id), false) = (host_id, tokens.is_empty()) {
                return Ok(NodeIdentity {
                    host_id,
                    tokens,
                    shards,
                    dc,
                    rack,
                });
            }
            log::warn!(
                "{} is unreadable; generating a new identity",
                path.display()
            );
        }
        let host_id = crate::schema::digest::random_uuid();
        let mut tokens: Vec<i64> = (0..num_tokens.max(1))
            .map(|_| {
                let u = crate::schema::digest::random_uuid();
                i64::from_be_bytes(u[..8].try_into().unwrap_or([0; 8]))
            })
            .filter(|t| *t != i64::MIN)
            .collect();
        tokens.sort_unstable();
        tokens.dedup();
        let identity = NodeIdentity {
            host_id,
            tokens,
            shards: None,
            dc: None,
            rack: None,
        };
        identity.save(dir)?;
        Ok(identity)
    }

    /// Writes `dir/node_identity` atomically.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let path = dir.join("node_identity");
        let mut text = format!(
            "# Tessera node identity: never edit while the node runs\nhost_id={}\ntokens={}\n",
            crate::schema::digest::uuid_to_string(&self.host_id),
            self.tokens
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        if let Some(n) = self.shards {
            text.push_str(&format!("shards={n}\n"));
        }
        if let (Some(dc), Some(rack)) = (&self.dc, &self.rack) {
            text.push_str(&format!("dc={dc}\nrack={rack}\n"));
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// When the shard count changed since the commitlog was written, moves the
/// old segments aside so that every shard can replay what it now owns.
/// A directory left by an interrupted resharding is replayed again.
fn prepare_resharding(
    commitlog_dir: &Path,
    previous: Option<usize>,
    now: usize,
) -> Result<Option<PathBuf>, String> {
    let aside = commitlog_dir.join("resharding");
    let has_segments = |dir: &Path| {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .any(|e| shard_of_segment_file(&e.file_name().to_string_lossy()).is_some())
            })
            .unwrap_or(false)
    };
    let changed = previous.is_some_and(|p| p != now) || (previous.is_none() && now > 1);
    if changed && has_segments(commitlog_dir) {
        log::info!("shard count changed ({} -> {now}): commitlog segments will be replayed by their new owners", previous.map(|p| p.to_string()).unwrap_or_else(|| "?".into()));
        std::fs::create_dir_all(&aside)
            .map_err(|e| format!("cannot create {}: {e}", aside.display()))?;
        for e in std::fs::read_dir(commitlog_dir)
            .map_err(|e| e.to_string())?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            if shard_of_segment_file(&name).is_some() {
                std::fs::rename(e.path(), aside.join(&name))
                    .map_err(|e| format!("cannot move {name}: {e}"))?;
            }
        }
        if let Ok(d) = std::fs::File::open(commitlog_dir) {
            let _ = d.sync_all();
        }
    }
    Ok(aside.exists().then_some(aside))
}

fn data_dir(config: &Config) -> PathBuf {
    config
        .data_file_directories
        .first()
        .cloned()
        .unwrap_or_else(|| config.workdir.join("data"))
}

/// Runs the node until SIGINT/SIGTERM.
pub fn run(config: Config) -> Result<(), String> {
    ensure_ports_free(&config)?;
    let data = data_dir(&config);
    std::fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    // Held until the process exits: one node per data and commitlog directory.
    let _data_lock = DirectoryLock::acquire(&data)?;
    std::fs::create_dir_all(&config.commitlog_directory).map_err(|e| {
        format!(
            "cannot create {}: {e}",
            config.commitlog_directory.display()
        )
    })?;
    let _commitlog_lock = if config.commitlog_directory != data {
        Some(DirectoryLock::acquire(&config.commitlog_directory)?)
    } else {
        None
    };
    let identity = NodeIdentity::load_or_create(&data, config.num_tokens).map_err(|e| {
        format!(
            "cannot read or write the node identity in {}: {e}",
            data.display()
        )
    })?;
    let (dc, rack) = crate::locator::snitch::location(&config)?;
    if let (Some(old_dc), Some(old_rack)) = (&identity.dc, &identity.rack) {
        if *old_dc != dc || *old_rack != rack {
            return Err(format!(
                "Cannot start node if snitch's data center ({dc}) or rack ({rack}) differs from previous data center ({old_dc}) or rack ({old_rack}). Please fix the snitch configuration, decommission and rebootstrap this node"
            ));
        }
    }
    let local = LocalNodeInfo {
        cluster_name: config.cluster_name.clone(),
        data_center: dc,
        rack,
        host_id: identity.host_id,
        broadcast_address: config.broadcast_address,
        listen_address: config.listen_address,
        rpc_address: config.rpc_address,
        rpc_port: config.native_transport_port as i32,
        listen_port: config.storage_port as i32,
        tokens: identity.tokens.clone(),
        release_version: LocalNodeInfo::RELEASE_VERSION.to_string(),
        cql_version: LocalNodeInfo::CQL_VERSION.to_string(),
        native_protocol_version: LocalNodeInfo::NATIVE_PROTOCOL_VERSION.to_string(),
        partitioner: LocalNodeInfo::PARTITIONER.to_string(),
        gossip_generation: (crate::service::client_state::now_micros() / 1_000_000) as i32,
        snitch: format!(
            "org.apache.cassandra.locator.{}",
            config
                .endpoint_snitch
                .rsplit('.')
                .next()
                .unwrap_or("SimpleSnitch")
        ),
    };
    let shard_config = ShardConfig::from_config(&config);
    let count = shard_config.count;
    let reshard_dir = prepare_resharding(&config.commitlog_directory, identity.shards, count)?;
    let reshard_sstables = prepare_sstable_resharding(&data, identity.shards, count)?;
    let compactors = concurrent_compactors(&config);
    let compaction = Arc::new(
        CompactionExecutor::start(compactors, compactors * 2 + count)
            .map_err(|e| format!("cannot start the compaction threads: {e}"))?,
    );
    log::info!("compaction: {compactors} concurrent compactors");
    let boot = Arc::new(Boot {
        native_gate: Arc::new(NativeTransportGate::default()),
        compaction: compaction.clone(),
        reshard_sstables,
        data_dir: data.clone(),
        schema_dir: data.join("system_schema"),
        reshard_dir,
        replayed: Arc::new(std::sync::Barrier::new(count)),
        identity_dir: data.clone(),
        identity,
        config: Arc::new(config),
        local,
    });
    let runtime = ShardRuntime::start(shard_config, move |ctx: ShardContext| {
        let boot = boot.clone();
        async move {
            let r = shard_main(ctx.clone(), boot).await;
            if let Err(e) = &r {
                log::error!("shard {}: {e}", ctx.id());
                ctx.shards().stop();
            }
            r
        }
    })
    .map_err(|e| format!("cannot start shards: {e}"))?;
    let signals = crate::shard::signals::install(runtime.shards().stop_latch())
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let results = runtime.join().map_err(|e| format!("shard failure: {e}"));
    signals.close();
    // Every shard cancelled and collected its jobs; the threads are idle.
    compaction.shutdown();
    let results = results?;
    for r in results {
        r?;
    }
    log::info!("Tessera stopped");
    Ok(())
}

/// Refuses to start when another process listens on one of this node's
/// ports. The shards bind the CQL port with `SO_REUSEPORT` (the kernel
/// spreads connections over them), which would let a second node on the
/// same address bind it too and silently take half of the clients; this
/// fails instead, as Cassandra does. It looks for sockets in `LISTEN` on the
/// address (or the wildcard) in `/proc/net/tcp{,6}` rather than binding: a
/// node killed a moment ago leaves its accepted connections in TIME_WAIT,
/// which must not stop it from restarting.
fn ensure_ports_free(config: &Config) -> Result<(), String> {
    const PORT_RELEASE_WAIT: Duration = Duration::from_secs(10);
    let mut ports = vec![
        (
            config.rpc_address,
            config.native_transport_port,
            "native_transport_port",
        ),
        (config.listen_address, config.storage_port, "storage_port"),
    ];
    if config.native_shard_aware_transport_port != 0 {
        ports.push((
            config.rpc_address,
            config.native_shard_aware_transport_port,
            "native_shard_aware_transport_port",
        ));
    }
    if config.api_port != 0 {
        ports.push((config.api_address, config.api_port, "api_port"));
    }
    // A node killed a moment ago can hold its listening sockets a little
    // longer (io_uring releases files asynchronously): wait for that, but
    // not for a node that is still running.
    let deadline = std::time::Instant::now() + PORT_RELEASE_WAIT;
    for (ip, port, key) in ports {
        if port == 0 {
            continue;
        }
        let addr = SocketAddr::new(ip, port);
        while listening_sockets_on(addr) {
            if std::time::Instant::now() >= deadline {
                return Err(format!(
                    "Failed to bind port {port} on {ip} ({key}): another process listens on it. Is another node running on this address? Set {key} (or the address) in cassandra.yaml to a port you can bind to."
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// Whether a socket listens on `addr`'s port at its address or at the
/// wildcard address, per `/proc/net/tcp` (IPv4) or `/proc/net/tcp6`
/// (false when the table cannot be read).
fn listening_sockets_on(addr: SocketAddr) -> bool {
    let path = if addr.is_ipv4() {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    };
    match std::fs::read_to_string(path) {
        Ok(table) => table
            .lines()
            .skip(1)
            .filter_map(parse_proc_net_tcp_listener)
            .any(|(ip, port)| port == addr.port() && (ip == addr.ip() || ip.is_unspecified())),
        Err(_) => false,
    }
}

/// `(address, port)` of a `/proc/net/tcp{,6}` line in state LISTEN (`0A`).
/// Addresses are printed as 32-bit words in host byte order.
fn parse_proc_net_tcp_listener(line: &str) -> Option<(std::net::IpAddr, u16)> {
    let mut fields = line.split_whitespace();
    let local = fields.nth(1)?;
    let state = fields.nth(1)?;
    if state != "0A" {
        return None;
    }
    let (ip_hex, port_hex) = local.split_once(':')?;
    let port = u16::from_str_radix(port_hex, 16).ok()?;
    let mut bytes = Vec::with_capacity(16);
    for i in (0..ip_hex.len()).step_by(8) {
        let word = u32::from_str_radix(ip_hex.get(i..i + 8)?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    let ip = match bytes.len() {
        4 => std::net::IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        _ => return None,
    };
    Some((ip, port))
}

/// An exclusive `flock` on `<dir>/.lock` for the life of the process, so
/// two nodes never share a data or commitlog directory.
struct DirectoryLock {
    _file: std::fs::File,
}

impl DirectoryLock {
    fn acquire(dir: &std::path::Path) -> Result<DirectoryLock, String> {
        use std::os::fd::AsRawFd;
        let path = dir.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // SAFETY: plain syscall on a descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            return Err(format!(
                "{} is in use by another Tessera process ({e}): one node per directory",
                dir.display()
            ));
        }
        Ok(DirectoryLock { _file: file })
    }
}

/// The services of one shard, reachable from other shards through the
/// shard runtime (see [`services`]).
pub struct ShardServices {
    pub db: Rc<RefCell<Database>>,
    pub migrations: Rc<MigrationManager>,
    pub proxy: Rc<StorageProxy>,
    pub transport: Rc<TransportServices>,
    pub compaction: Rc<CompactionService>,
    /// Whether the CQL ports may accept clients (shared by every shard).
    pub native_gate: Arc<NativeTransportGate>,
}

/// When the CQL ports open. Like Cassandra, a node that bootstraps starts
/// its native transport only once it has joined the ring: until then it
/// holds none of the data it will own, and writes it coordinated would not
/// reach itself. Shard 0 decides (`storage_service`); every shard waits.
#[derive(Debug, Default)]
pub struct NativeTransportGate {
    /// 0: not decided yet, 1: open, 2: closed while bootstrapping.
    state: std::sync::atomic::AtomicU8,
    /// Triggered when the transports stop for good
    /// (`commit_failure_policy: stop`): listeners and connections close.
    stopped: crate::shard::Latch,
    /// Why they stopped.
    stop_reason: std::sync::Mutex<Option<String>>,
}

impl NativeTransportGate {
    const UNDECIDED: u8 = 0;
    const OPEN: u8 = 1;
    const JOINING: u8 = 2;

    /// Clients may connect.
    pub fn open(&self) {
        self.state
            .store(Self::OPEN, std::sync::atomic::Ordering::Release);
    }

    /// The node bootstraps: no clients until [`NativeTransportGate::open`].
    pub fn hold_while_joining(&self) {
        let _ = self.state.compare_exchange(
            Self::UNDECIDED,
            Self::JOINING,
            std::sync::atomic::Ordering::AcqRel,
            std::sync::atomic::Ordering::Acquire,
        );
    }

    fn state(&self) -> u8 {
        self.state.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Stops the client transports of every shard for the rest of the
    /// process's life, as Cassandra's `stopTransports` (the first reason
    /// is kept).
    pub fn stop_transports(&self, why: &str) {
        if let Ok(mut r) = self.stop_reason.lock() {
            if r.is_none() {
                *r = Some(why.to_string());
            }
        }
        self.stopped.trigger();
    }

    /// Resolves once the transports were stopped.
    pub fn transports_stopped(&self) -> crate::shard::LatchWait {
        self.stopped.wait()
    }

    /// Why the transports were stopped, if they were.
    pub fn stop_reason(&self) -> Option<String> {
        if !self.stopped.is_triggered() {
            return None;
        }
        self.stop_reason.lock().ok().and_then(|r| r.clone())
    }

    /// Waits until shard 0 has decided; true if the ports open at once.
    async fn decided_open(&self) -> bool {
        loop {
            match self.state() {
                Self::UNDECIDED => crate::shard::sleep(Duration::from_millis(5)).await,
                s => return s == Self::OPEN,
            }
        }
    }

    /// Waits until the gate is open.
    async fn wait_open(&self) {
        while self.state() != Self::OPEN {
            crate::shard::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `concurrent_compactors`, or automatically half the cores (1 to 8).
fn concurrent_compactors(config: &Config) -> usize {
    match config.concurrent_compactors {
        Some(n) => (n as usize).max(1),
        None => {
            let cores = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            (cores / 2).clamp(1, 8)
        }
    }
}

type CompactionResult = (
    CompactionJob,
    Result<engine::compaction::CompactionOutput, engine::EngineError>,
);

/// One shard's side of background compaction: hands jobs from its
/// `Database` to the node's [`CompactionExecutor`] and completes them on
/// the shard when they come back (Cassandra's `CompactionManager`).
pub struct CompactionService {
    executor: Arc<CompactionExecutor>,
    tx: crossbeam_channel::Sender<CompactionResult>,
    rx: crossbeam_channel::Receiver<CompactionResult>,
    in_flight: Cell<usize>,
    /// Results of major compactions for their waiters (bounded).
    finished: RefCell<std::collections::VecDeque<(u64, Result<(), String>)>>,
}

const FINISHED_MAJOR_COMPACTIONS_KEPT: usize = 64;

impl CompactionService {
    fn new(executor: Arc<CompactionExecutor>) -> Self {
        // Never more results than jobs in flight: at most the queue plus
        // the workers; `send` on the compaction thread never waits long.
        let (tx, rx) = crossbeam_channel::bounded(64);
        CompactionService {
            executor,
            tx,
            rx,
            in_flight: Cell::new(0),
            finished: RefCell::new(Default::default()),
        }
    }

    /// Jobs of this shard queued or running.
    pub fn in_flight(&self) -> usize {
        self.in_flight.get()
    }

    fn submit(&self, job: CompactionJob) -> Result<u64, CompactionJob> {
        let tx = self.tx.clone();
        let id = job.id();
        let done: engine::compaction::CompactionDone = Box::new(move |job, result| {
            let _ = tx.send((job, result));
        });
        match self.executor.submit(job, done) {
            Ok(()) => {
                self.in_flight.set(self.in_flight.get() + 1);
                Ok(id)
            }
            Err(job) => Err(job),
        }
    }

    /// Completes the jobs that came back (installs outputs, deletes inputs).
    fn drain(&self, db: &RefCell<Database>) {
        while let Ok((job, result)) = self.rx.try_recv() {
            self.in_flight.set(self.in_flight.get().saturating_sub(1));
            self.complete(db, job, result);
        }
    }

    fn complete(
        &self,
        db: &RefCell<Database>,
        job: CompactionJob,
        result: Result<engine::compaction::CompactionOutput, engine::EngineError>,
    ) {
        let id = job.id();
        let major = job.kind() == CompactionKind::Major;
        let r = db.borrow_mut().complete_compaction(job, result);
        if major {
            let mut f = self.finished.borrow_mut();
            if f.len() >= FINISHED_MAJOR_COMPACTIONS_KEPT {
                f.pop_front();
            }
            f.push_back((id, r.map_err(|e| e.to_string())));
        } else if let Err(e) = r {
            log::error!("compaction failed: {e}");
        }
    }

    /// Starts the background compactions the tables' strategies ask for,
    /// up to the shard's bound.
    fn start_background(&self, db: &RefCell<Database>) {
        loop {
            let mut d = db.borrow_mut();
            match d.begin_compaction() {
                Ok(Some(job)) => {
                    if let Err(job) = self.submit(job) {
                        // The queue is full: try again at the next tick.
                        d.abort_compaction(job);
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    log::error!("compaction failed to start: {e}");
                    return;
                }
            }
        }
    }

    /// Major compaction of `table` (`nodetool compact`) on a compaction
    /// thread; returns when it is done. Waits for a running compaction of
    /// the table first (no new background one starts meanwhile).
    pub async fn major(
        &self,
        db: &RefCell<Database>,
        table: &engine::mutation::TableId,
    ) -> Result<(), engine::EngineError> {
        let pause = || glommio::timer::sleep(Duration::from_millis(20));
        let id = loop {
            self.drain(db);
            let job = {
                let mut d = db.borrow_mut();
                d.request_major_compaction(table)?;
                if d.compaction_running(table) {
                    None
                } else {
                    match d.begin_major_compaction(table, engine::database::now_seconds())? {
                        None => return Ok(()),
                        Some(job) => match self.submit(job) {
                            Ok(id) => Some(id),
                            Err(job) => {
                                d.abort_compaction(job);
                                None
                            }
                        },
                    }
                }
            };
            if let Some(id) = job {
                break id;
            }
            pause().await;
        };
        loop {
            self.drain(db);
            let done = {
                let mut f = self.finished.borrow_mut();
                f.iter()
                    .position(|(i, _)| *i == id)
                    .and_then(|p| f.remove(p))
            };
            if let Some((_, r)) = done {
                return r.map_err(|e| engine::EngineError::Io(std::io::Error::other(e)));
            }
            pause().await;
        }
    }

    /// Shutdown: cancels this shard's jobs and completes them as they come
    /// back (a job past its log finishes and is installed; at most
    /// `timeout` in all, then the rest is left to recovery at restart).
    fn stop(&self, db: &RefCell<Database>, timeout: Duration) {
        db.borrow_mut().cancel_compactions(None);
        let deadline = std::time::Instant::now() + timeout;
        while self.in_flight.get() > 0 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((job, result)) => {
                    self.in_flight.set(self.in_flight.get() - 1);
                    self.complete(db, job, result);
                }
                Err(_) => {
                    log::warn!(
                        "{} compactions did not stop in time; a restart finishes or rolls them back",
                        self.in_flight.get()
                    );
                    return;
                }
            }
        }
    }
}

/// The registry key of [`ShardServices`] (ids from `Sharded` count up from 0).
const NODE_SERVICES: u64 = u64::MAX;

/// This shard's services.
pub fn services(ctx: &ShardContext) -> Result<Rc<ShardServices>, ErrorResponse> {
    ctx.service(NODE_SERVICES)
        .and_then(|s| s.downcast::<ShardServices>().ok())
        .ok_or_else(|| ErrorResponse::server(format!("shard {} is not serving", ctx.id())))
}

/// Reaches the replica path of other shards through the shard runtime.
struct RuntimeRouter {
    ctx: ShardContext,
}

type Fut<T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, ErrorResponse>>>>;

impl RuntimeRouter {
    fn call<T: Send + 'static>(
        &self,
        shard: usize,
        f: impl FnOnce(Rc<ShardServices>) -> Result<T, ErrorResponse> + Send + 'static,
    ) -> Fut<T> {
        let shards = self.ctx.shards().clone();
        Box::pin(async move {
            shards
                .invoke_on(shard, move |ctx| async move { f(services(&ctx)?) })
                .await
                .map_err(shard_error)?
        })
    }
}

impl ShardRouter for RuntimeRouter {
    fn shard_id(&self) -> usize {
        self.ctx.id()
    }
    fn shard_count(&self) -> usize {
        self.ctx.count()
    }
    fn forward_apply(&self, shard: usize, m: Mutation) -> Fut<()> {
        let shards = self.ctx.shards().clone();
        Box::pin(async move {
            shards
                .invoke_on(shard, move |ctx| async move {
                    let s = services(&ctx)?;
                    s.proxy.replica_apply_durable(&m).await
                })
                .await
                .map_err(shard_error)?
        })
    }
    fn forward_read(
        &self,
        shard: usize,
        table: [u8; 16],
        key: PartitionKey,
        cmd: ReadCommand,
    ) -> Fut<Option<PartitionUpdate>> {
        self.call(shard, move |s| s.proxy.replica_read(&table, &key, &cmd))
    }
    fn forward_scan(
        &self,
        shard: usize,
        table: [u8; 16],
        range: TokenRange,
        cmd: ReadCommand,
        limit: usize,
    ) -> Fut<Vec<PartitionUpdate>> {
        self.call(shard, move |s| {
            s.proxy.replica_scan(&table, &range, &cmd, limit)
        })
    }
    fn forward_read_raw(
        &self,
        shard: usize,
        table: [u8; 16],
        key: PartitionKey,
        cmd: ReadCommand,
    ) -> Fut<Option<PartitionUpdate>> {
        self.call(shard, move |s| s.proxy.replica_read_raw(&table, &key, &cmd))
    }
    fn forward_scan_raw(
        &self,
        shard: usize,
        table: [u8; 16],
        range: TokenRange,
        cmd: ReadCommand,
        limit: usize,
    ) -> Fut<Vec<PartitionUpdate>> {
        self.call(shard, move |s| {
            s.proxy.replica_scan_raw(&table, &range, &cmd, limit)
        })
    }
    fn truncate_all(&self, table: [u8; 16]) -> Fut<()> {
        let shards = self.ctx.shards().clone();
        Box::pin(async move {
            shards
                .invoke_on_all(move |ctx| async move {
                    services(&ctx)?.proxy.replica_truncate(&table);
                    Ok::<(), ErrorResponse>(())
                })
                .await
                .map_err(shard_error)?
                .into_iter()
                .collect::<Result<Vec<()>, _>>()
                .map(|_| ())
        })
    }
    fn forward_task(
        &self,
        shard: usize,
        task: crate::service::storage_proxy::ProxyTask,
    ) -> Fut<Box<dyn std::any::Any + Send>> {
        let shards = self.ctx.shards().clone();
        Box::pin(async move {
            shards
                .invoke_on(shard, move |ctx| async move {
                    let s = services(&ctx)?;
                    Ok::<_, ErrorResponse>(task(s.proxy.clone()).await)
                })
                .await
                .map_err(shard_error)?
        })
    }
}

/// What every shard shares at start-up.
struct Boot {
    config: Arc<Config>,
    /// When the CQL ports open (see [`NativeTransportGate`]).
    native_gate: Arc<NativeTransportGate>,
    /// The node's compaction threads (`concurrent_compactors`).
    compaction: Arc<CompactionExecutor>,
    local: LocalNodeInfo,
    schema_dir: PathBuf,
    /// Commitlog segments of an earlier shard layout, replayed by owner.
    reshard_dir: Option<PathBuf>,
    /// SSTables of an earlier shard layout, re-applied by owner.
    reshard_sstables: Option<PathBuf>,
    data_dir: PathBuf,
    /// Every shard has replayed; then the old segments can go.
    replayed: Arc<std::sync::Barrier>,
    identity_dir: PathBuf,
    identity: NodeIdentity,
}

/// A client port's listener once `gate` lets clients in: at once for a
/// node that does not bootstrap; for one that does, the port stays closed
/// until it has joined and is bound again then. `bound` is the listener
/// bound at start-up (bound here if `None`, so a taken port fails the
/// start). `None` when the node stops first.
async fn gated_listener(
    gate: &NativeTransportGate,
    addr: SocketAddr,
    bound: Option<glommio::net::TcpListener>,
    ctx: &ShardContext,
    what: &str,
) -> Result<Option<glommio::net::TcpListener>, String> {
    let bind = || {
        glommio::net::TcpListener::bind(addr)
            .map_err(|e| format!("cannot listen {what} on {addr}: {e}"))
    };
    let listener = match bound {
        Some(l) => l,
        None => bind()?,
    };
    let stopped = || async {
        ctx.stopped().await;
        None
    };
    match futures_lite::future::or(async { Some(gate.decided_open().await) }, stopped()).await {
        None => return Ok(None),
        Some(true) => return Ok(Some(listener)),
        Some(false) => {}
    }
    drop(listener);
    if ctx.id() == 0 {
        log::info!("Not listening {what} while this node bootstraps");
    }
    let joined = futures_lite::future::or(
        async {
            gate.wait_open().await;
            Some(true)
        },
        stopped(),
    )
    .await;
    if joined.is_none() {
        return Ok(None);
    }
    let l = bind()?;
    log::info!(
        "shard {}: joined the ring; listening {what} on {addr}",
        ctx.id()
    );
    Ok(Some(l))
}

async fn shard_main(ctx: ShardContext, boot: Arc<Boot>) -> Result<(), String> {
    let config = &boot.config;
    let local = boot.local.clone();
    let shard = ctx.id();
    let nr_shards = ctx.count();
    let mut commitlog = CommitLogConfig::new(&config.commitlog_directory, shard as u32);
    commitlog.segment_size = (config.commitlog_segment_size_in_mb as usize).max(1) << 20;
    commitlog.failure_policy = config.commit_failure_policy;
    commitlog.sync = match config.commitlog_sync {
        CommitlogSync::Periodic => SyncMode::Periodic {
            period: Duration::from_millis(config.commitlog_sync_period_in_ms.max(1)),
        },
        CommitlogSync::Batch => SyncMode::Batch {
            window: Duration::from_micros(
                (config.commitlog_sync_batch_window_in_ms * 1000.0).max(0.0) as u64,
            ),
        },
    };
    let shard_dir = boot.data_dir.join(format!("shard{shard}"));
    let mut engine_config = EngineConfig::durable(commitlog, &shard_dir);
    let budget = config
        .memtable_heap_space_in_mb
        .or(config.memtable_offheap_space_in_mb)
        .map(|mb| (mb as usize) << 20)
        .unwrap_or(512 << 20)
        / nr_shards.max(1);
    engine_config.memtable_space_bytes = budget;
    engine_config.memtable_budget_bytes = budget;
    // The SSTable block cache: `file_cache_size_in_mb` split between the
    // shards; by default (None) as much as the memtable space.
    engine_config.block_cache_bytes = config
        .file_cache_size_in_mb
        .map(|mb| ((mb as usize) << 20) / nr_shards.max(1));
    engine_config.background_flush = true;
    let db = Rc::new(RefCell::new(Database::new(engine_config)));
    let events = Rc::new(EventBus::new());
    let schema = match Schema::load(&boot.schema_dir, &local.data_center) {
        Ok(Some(s)) => {
            if shard == 0 {
                log::info!(
                    "loaded schema {} from {}",
                    crate::schema::digest::uuid_to_string(&s.version),
                    boot.schema_dir.display()
                );
            }
            s
        }
        Ok(None) => Schema::new_with_system_keyspaces(&local.data_center),
        Err(e) => {
            return Err(format!(
                "cannot load the schema from {}: {e}",
                boot.schema_dir.display()
            ))
        }
    };
    let migrations = Rc::new(MigrationManager::new(
        schema,
        db.clone(),
        local.clone(),
        events.clone(),
        Some(boot.schema_dir.clone()),
        Some(ctx.clone()),
    ));
    // Tables exist now; replay what the commitlog holds before serving.
    let report = db
        .borrow_mut()
        .start_commitlog()
        .map_err(|e| format!("commitlog replay failed: {e}"))?;
    log_replay(shard, &report);
    if let Some(dir) = &boot.reshard_dir {
        reshard_replay(&db, dir, shard, nr_shards)?;
    }
    if let Some(dir) = &boot.reshard_sstables {
        reshard_sstables(&db, &migrations.schema(), dir, shard, nr_shards)?;
    }
    if boot.reshard_dir.is_some() || boot.reshard_sstables.is_some() {
        // Base rows moved between shards; local index rows must follow.
        crate::index::rebuild_all(&mut db.borrow_mut(), &migrations.schema());
    }
    // Blocking is fine here: no shard serves anything before all are past it.
    boot.replayed.wait();
    if shard == 0 {
        for dir in boot.reshard_dir.iter().chain(boot.reshard_sstables.iter()) {
            std::fs::remove_dir_all(dir)
                .map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
        }
        let mut identity = boot.identity.clone();
        identity.shards = Some(nr_shards);
        identity.dc = Some(boot.local.data_center.clone());
        identity.rack = Some(boot.local.rack.clone());
        identity
            .save(&boot.identity_dir)
            .map_err(|e| format!("cannot record the shard count: {e}"))?;
    }
    // Background work of the shard: commitlog sync ticks, memtable flushes
    // on their own threads (so a flush never stalls the shard), compaction.
    let (flush_tx, flush_rx) = crossbeam_channel::bounded::<(
        engine::FlushJob,
        Result<engine::sstable::SSTable, engine::EngineError>,
    )>(16);
    let flushes_in_flight = Rc::new(Cell::new(0usize));
    let compaction = Rc::new(CompactionService::new(boot.compaction.clone()));
    db.borrow_mut().compaction_manager().max_concurrent = boot.compaction.workers();
    let ticker = {
        let db = db.clone();
        let stop = ctx.stopped();
        let in_flight = flushes_in_flight.clone();
        let flush_rx = flush_rx.clone();
        let compaction = compaction.clone();
        let gate = boot.native_gate.clone();
        let policy = config.commit_failure_policy;
        glommio::spawn_local(async move {
            let tick = async {
                let mut ticks = 0u64;
                let mut failures = 0u64;
                loop {
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                    if let Err(e) = db.borrow_mut().commitlog_tick() {
                        log::error!("commitlog sync failed: {e}");
                    }
                    apply_commit_failure_policy(&db.borrow(), policy, &gate, &mut failures);
                    while let Ok((job, result)) = flush_rx.try_recv() {
                        db.borrow_mut().complete_flush(job, result);
                        in_flight.set(in_flight.get() - 1);
                    }
                    ticks += 1;
                    if ticks.is_multiple_of(5) {
                        let candidates = db.borrow().flush_candidates();
                        for table in candidates {
                            let job = db.borrow_mut().begin_flush(&table);
                            match job {
                                Ok(Some(job)) => {
                                    let tx = flush_tx.clone();
                                    in_flight.set(in_flight.get() + 1);
                                    let spawned = std::thread::Builder::new()
                                        .name(format!("flush-{shard}"))
                                        .spawn(move || {
                                            let r = job.run();
                                            let _ = tx.send((job, r));
                                        });
                                    if let Err(e) = spawned {
                                        log::error!("cannot start a flush thread: {e}");
                                        in_flight.set(in_flight.get() - 1);
                                    }
                                }
                                Ok(None) => {}
                                Err(e) => log::error!("flush failed to start: {e}"),
                            }
                        }
                    }
                    // Compactions run on the compaction threads; the shard
                    // only starts and completes them.
                    compaction.drain(&db);
                    if ticks.is_multiple_of(100) {
                        compaction.start_background(&db);
                    }
                }
            };
            futures_lite::future::or(tick, stop).await;
        })
    };
    let router: Rc<dyn ShardRouter> = Rc::new(RuntimeRouter { ctx: ctx.clone() });
    let topology = Arc::new(crate::service::topology::Topology::single(&local));
    let proxy = Rc::new(
        StorageProxy::new(db.clone(), migrations.clone(), Some(router), topology)
            .with_timeouts(
                Duration::from_millis(config.write_request_timeout_in_ms.max(1)),
                Duration::from_millis(config.read_request_timeout_in_ms.max(1)),
            )
            .with_lwt_timeouts(
                Duration::from_millis(config.cas_contention_timeout_in_ms.max(1)),
                Duration::from_millis(config.counter_write_request_timeout_in_ms.max(1)),
            )
            .with_timestamp_guardrails(
                config
                    .maximum_timestamp_fail_threshold_ms
                    .map(Duration::from_millis),
                config
                    .minimum_timestamp_fail_threshold_ms
                    .map(Duration::from_millis),
            )
            .with_group_commit(match config.commitlog_sync {
                CommitlogSync::Batch => Some(Duration::from_micros(
                    (config.commitlog_sync_batch_window_in_ms * 1000.0).max(0.0) as u64,
                )),
                CommitlogSync::Periodic => None,
            }),
    );
    let qp = Rc::new(QueryProcessor::new(proxy.clone(), migrations.clone()));
    let max_conns = if config.native_transport_max_concurrent_connections <= 0 {
        usize::MAX
    } else {
        config.native_transport_max_concurrent_connections as usize
    };
    let sharding = proto::scylla::ShardingInfo {
        shard: shard as u32,
        nr_shards: nr_shards as u32,
        ignore_msb: crate::service::storage_proxy::SHARDING_IGNORE_MSB,
        shard_aware_port: Some(config.native_shard_aware_transport_port),
    };
    let transport = Rc::new(TransportServices {
        qp,
        events,
        limits: TransportLimits {
            max_frame_bytes: (config.native_transport_max_frame_size_in_mb as usize).max(1)
                * 1024
                * 1024,
            max_connections: max_conns,
            max_outstanding_responses: 1024,
        },
        extra_supported: sharding.supported_options(),
        open_connections: Cell::new(0),
        stopped: boot.native_gate.stopped.clone(),
    });
    let services_rc = Rc::new(ShardServices {
        db: db.clone(),
        migrations,
        proxy,
        transport: transport.clone(),
        compaction: compaction.clone(),
        native_gate: boot.native_gate.clone(),
    });
    ctx.insert_service(NODE_SERVICES, services_rc.clone());

    let admin = if shard == 0 {
        let api_addr = SocketAddr::new(config.api_address, config.api_port);
        let mut router = Router::new();
        register_builtin_routes(&mut router, config, ctx.shards());
        register_node_routes(&mut router, &ctx);
        let server = AdminServer::bind(api_addr, router, AdminLimits::default())
            .map_err(|e| format!("cannot bind the admin API on {api_addr}: {e}"))?;
        log::info!("admin API listening on {api_addr}");
        Some(server)
    } else {
        None
    };
    // Every shard accepts on the native port (SO_REUSEPORT spreads them);
    // shard 0 accepts on the shard-aware port and hands each connection to
    // the shard `client port % shards`.
    let addr = SocketAddr::new(config.rpc_address, config.native_transport_port);
    let listener = glommio::net::TcpListener::bind(addr)
        .map_err(|e| format!("cannot listen for CQL clients on {addr}: {e}"))?;
    log::info!("shard {shard}: Starting listening for CQL clients on {addr} (unencrypted)");
    let gate = boot.native_gate.clone();
    let cql = async {
        let Some(listener) =
            gated_listener(&gate, addr, Some(listener), &ctx, "for CQL clients").await?
        else {
            return Ok(());
        };
        let stop = futures_lite::future::or(ctx.stopped(), gate.transports_stopped());
        crate::transport::serve(listener, transport.clone(), stop).await;
        Ok::<(), String>(())
    };
    let shard_aware = async {
        if shard != 0 || config.native_shard_aware_transport_port == 0 {
            return Ok(());
        }
        let sa_addr = SocketAddr::new(config.rpc_address, config.native_shard_aware_transport_port);
        let Some(sa) =
            gated_listener(&gate, sa_addr, None, &ctx, "for shard-aware CQL clients").await?
        else {
            return Ok(());
        };
        log::info!("Starting listening for shard-aware CQL clients on {sa_addr}");
        let stop = futures_lite::future::or(ctx.stopped(), gate.transports_stopped());
        crate::transport::serve_shard_aware(sa, ctx.clone(), stop).await;
        Ok::<(), String>(())
    };
    let admin_fut = async {
        if let Some(admin) = admin {
            admin.serve(ctx.stopped()).await;
        }
    };
    let cluster_fut = async {
        if shard != 0 {
            return Ok(());
        }
        let c = match crate::service::cluster::ClusterServices::start(
            ctx.clone(),
            config,
            local.clone(),
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                // Without messaging and gossip the node must not serve.
                ctx.shards().stop();
                return Err(e);
            }
        };
        log::info!(
            "internode messaging on {}:{}; seeds {:?}",
            config.listen_address,
            config.storage_port,
            config.seed_provider.seeds
        );
        // `commit_failure_policy: stop` stops gossip with the transports:
        // peers are told this node shut down and mark it down.
        let gossip_stop = async {
            let stopped = futures_lite::future::or(
                async {
                    gate.transports_stopped().await;
                    true
                },
                async {
                    ctx.stopped().await;
                    false
                },
            )
            .await;
            if stopped {
                log::info!("announcing shutdown to gossip peers (transports stopped)");
                c.gossiper.shutdown().await;
            }
        };
        futures_lite::future::zip(c.run(ctx.stopped(), ctx.stopped()), gossip_stop).await;
        Ok::<(), String>(())
    };
    let admin_fut = futures_lite::future::zip(admin_fut, cluster_fut);
    let ((cq, sa), (_, cl)) =
        futures_lite::future::zip(futures_lite::future::zip(cql, shard_aware), admin_fut).await;
    cq?;
    sa?;
    cl?;
    ticker.await;
    compaction.stop(&db, Duration::from_secs(60));
    // Let background flushes finish before the final flush.
    while flushes_in_flight.get() > 0 {
        match flush_rx.recv_timeout(Duration::from_secs(60)) {
            Ok((job, result)) => {
                db.borrow_mut().complete_flush(job, result);
                flushes_in_flight.set(flushes_in_flight.get() - 1);
            }
            Err(_) => break,
        }
    }
    if let Err(e) = db.borrow_mut().flush_all() {
        log::error!("shard {shard}: flush at shutdown failed: {e}");
    }
    if let Err(e) = db.borrow_mut().shutdown() {
        log::error!("shard {shard}: commitlog shutdown failed: {e}");
    }
    log::info!("shard {shard}: stopped");
    Ok(())
}

/// `commit_failure_policy` `stop` and `die`, applied when the shard's
/// commitlog reports a new failure (`stop_commit` and `ignore` are handled
/// by the commitlog itself). `seen` is the failure count already handled.
fn apply_commit_failure_policy(
    db: &Database,
    policy: engine::commitlog::CommitFailurePolicy,
    gate: &NativeTransportGate,
    seen: &mut u64,
) {
    use engine::commitlog::CommitFailurePolicy;
    let Some(cl) = db.commitlog() else {
        return;
    };
    let failures = cl.failures();
    if failures == *seen {
        return;
    }
    *seen = failures;
    let why = cl
        .last_failure()
        .map(|f| f.message.clone())
        .unwrap_or_default();
    match policy {
        CommitFailurePolicy::Die => {
            // No orderly shutdown: it would flush and sync through the
            // failed log. Everything acknowledged is in the commitlog or
            // in SSTables already.
            log::error!("commitlog failure: {why}; exiting (commit_failure_policy: die)");
            log::logger().flush();
            std::process::exit(1);
        }
        CommitFailurePolicy::Stop => {
            if gate.stop_reason().is_none() {
                log::error!(
                    "commitlog failure: {why}; stopping the CQL transports and gossip, the node stays up for inspection (commit_failure_policy: stop)"
                );
            }
            gate.stop_transports(&format!("commitlog failure: {why}"));
        }
        CommitFailurePolicy::StopCommit | CommitFailurePolicy::Ignore => {}
    }
}

/// Replays the segments of an earlier shard layout: each shard applies (and
/// so re-logs) the mutations whose tokens it owns now.
fn reshard_replay(
    db: &Rc<RefCell<Database>>,
    dir: &Path,
    shard: usize,
    nr_shards: usize,
) -> Result<(), String> {
    let mut ids: Vec<u32> = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))? {
        let name = e
            .map_err(|e| e.to_string())?
            .file_name()
            .to_string_lossy()
            .to_string();
        if let Some(id) = shard_of_segment_file(&name) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    let mut applied = 0u64;
    for id in ids {
        let out = engine::commitlog::CommitLogReplayer::for_shard(dir, id)
            .replay()
            .map_err(|e| format!("resharding replay of {}: {e}", dir.display()))?;
        for m in out.mutations {
            let owner = proto::scylla::shard_of_token(
                m.update.key.token,
                nr_shards as u32,
                crate::service::storage_proxy::SHARDING_IGNORE_MSB,
            ) as usize;
            if owner != shard {
                continue;
            }
            let mut d = db.borrow_mut();
            match d.apply(&m) {
                Ok(()) => applied += 1,
                Err(engine::EngineError::NoSuchTable(_)) => {}
                Err(e) => return Err(format!("resharding replay: {e}")),
            }
        }
    }
    db.borrow_mut()
        .sync_commitlog()
        .map_err(|e| format!("resharding replay sync: {e}"))?;
    log::info!(
        "shard {shard}: resharding replay applied {applied} mutations from {}",
        dir.display()
    );
    Ok(())
}

/// When the shard count changed, moves the per-shard SSTable directories
/// aside (an interrupted earlier resharding is picked up again).
fn prepare_sstable_resharding(
    data: &Path,
    previous: Option<usize>,
    now: usize,
) -> Result<Option<PathBuf>, String> {
    let aside = data.join("resharding-sstables");
    let changed = previous.is_some_and(|p| p != now);
    if changed {
        for e in std::fs::read_dir(data)
            .map_err(|e| format!("cannot read {}: {e}", data.display()))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("shard") && e.path().is_dir() {
                std::fs::create_dir_all(&aside)
                    .map_err(|e| format!("cannot create {}: {e}", aside.display()))?;
                std::fs::rename(e.path(), aside.join(&name))
                    .map_err(|e| format!("cannot move {name}: {e}"))?;
            }
        }
    }
    Ok(aside.exists().then_some(aside))
}

/// Re-applies the SSTable content of an earlier shard layout: each shard
/// takes the partitions it owns now (logged like any write).
fn reshard_sstables(
    db: &Rc<RefCell<Database>>,
    schema: &Schema,
    dir: &Path,
    shard: usize,
    nr_shards: usize,
) -> Result<(), String> {
    let mut applied = 0u64;
    for e in std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .flatten()
    {
        if !e.path().is_dir() {
            continue;
        }
        let mut cfg = EngineConfig::in_memory();
        cfg.data_directory = Some(e.path());
        cfg.memtable_budget_bytes = 0;
        let mut old = Database::new(cfg);
        for ks in schema.keyspaces.values() {
            for t in ks.tables.values().filter(|t| !t.is_virtual) {
                old.create_table(Arc::new(crate::cql3::statements::engine_schema(t)));
                let Some(cf) = old.table(&t.id) else { continue };
                let sources: Vec<&dyn engine::reader::MutationSource> = cf
                    .sstables()
                    .iter()
                    .map(|s| &**s as &dyn engine::reader::MutationSource)
                    .collect();
                if sources.is_empty() {
                    continue;
                }
                let range = TokenRange::full();
                let ranges = [engine::mutation::ClusteringRange::full()];
                let mut merger = engine::reader::RawMerger::new(&sources, &range, &ranges);
                while let Some(p) = merger
                    .next_partition(cf.schema())
                    .map_err(|e| format!("resharding {}: {e}", e))?
                {
                    let owner = proto::scylla::shard_of_token(
                        p.key.token,
                        nr_shards as u32,
                        crate::service::storage_proxy::SHARDING_IGNORE_MSB,
                    ) as usize;
                    if owner != shard {
                        continue;
                    }
                    db.borrow_mut()
                        .apply(&Mutation {
                            table: t.id,
                            update: p,
                        })
                        .map_err(|e| format!("resharding: {e}"))?;
                    applied += 1;
                }
            }
        }
    }
    db.borrow_mut()
        .flush_all()
        .map_err(|e| format!("resharding flush: {e}"))?;
    log::info!(
        "shard {shard}: resharding took over {applied} partitions from SSTables in {}",
        dir.display()
    );
    Ok(())
}

/// Admin routes that need the node's services.
fn register_node_routes(router: &mut Router, ctx: &ShardContext) {
    crate::service::admin_routes::register(router, ctx);
    crate::service::admin_routes::register_compaction_routes(router, ctx);
    crate::service::forwarding::register_admin_routes(router, ctx);
    let shards = ctx.shards().clone();
    router.route("GET", "/storage_service/shard_stats", move |_| {
        let shards = shards.clone();
        async move {
            let stats = shards
                .invoke_on_all(|ctx| async move {
                    match services(&ctx) {
                        Ok(s) => format!(
                            "{{\"shard\": {}, \"replica_ops\": {}, \"forwarded\": {}, \"memtable_bytes\": {}, \"commitlog_segments\": {}, \"connections\": {}}}",
                            ctx.id(),
                            s.proxy.stats.replica_ops.get(),
                            s.proxy.stats.forwarded.get(),
                            s.db.borrow().memtable_bytes(),
                            s.db.borrow().commitlog().map(|c| c.segment_count()).unwrap_or(0),
                            s.transport.open_connections.get()
                        ),
                        Err(_) => format!("{{\"shard\": {}}}", ctx.id()),
                    }
                })
                .await
                .unwrap_or_default();
            crate::admin::Response::ok(format!("[{}]", stats.join(", ")))
        }
    });
}

fn log_replay(shard: usize, r: &ReplayReport) {
    log::info!(
        "shard {shard}: commitlog replay: {} segments, {} entries replayed, {} truncated, {} for dropped tables",
        r.segments, r.entries_replayed, r.mutations_truncated, r.mutations_skipped
    );
    if r.torn_bytes_skipped > 0 {
        log::warn!(
            "shard {shard}: commitlog replay skipped a torn tail: {} bytes in segments {:?} (writes not yet acknowledged as durable)",
            r.torn_bytes_skipped, r.torn_segments
        );
    }
    for c in &r.corrupt_segments {
        log::error!("shard {shard}: commitlog corruption, not applied past the damage: {c:?}");
    }
}

/// The shard that wrote a commitlog segment file, from its name.
fn shard_of_segment_file(name: &str) -> Option<u32> {
    let id = engine::commitlog::format::parse_segment_file_name(Path::new(name))?;
    Some(engine::commitlog::format::segment_shard(id))
}

#[cfg(test)]
mod tests {
    use super::parse_proc_net_tcp_listener;

    #[test]
    fn proc_net_tcp_listeners_parse() {
        let v4 = "   0: 0100007F:2382 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0";
        assert_eq!(
            parse_proc_net_tcp_listener(v4),
            Some(("127.0.0.1".parse().unwrap(), 9090))
        );
        let established = "   1: 0100007F:2382 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 12346 1";
        assert_eq!(parse_proc_net_tcp_listener(established), None);
        let time_wait = "   2: 0A00007F:2352 0100007F:D2F0 06 00000000:00000000 03:00001234 00000000     0        0 0 3";
        assert_eq!(parse_proc_net_tcp_listener(time_wait), None);
        let v6 = "   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 999 1";
        assert_eq!(
            parse_proc_net_tcp_listener(v6),
            Some(("::1".parse().unwrap(), 8080))
        );
        assert_eq!(parse_proc_net_tcp_listener("garbage"), None);
        assert_eq!(
            parse_proc_net_tcp_listener("  sl  local_address rem_address   st"),
            None
        );
    }
}
