//! Hinted handoff: writes a replica missed (it was down, or did not answer
//! in time) are kept on the coordinator, per target host id, in
//! `hints_directory`, and replayed ([`Verb::HintReq`]) once gossip sees the
//! target up again; delivered hints are deleted.
//!
//! Everything runs on shard 0 (where the MessagingService lives): other
//! shards store hints with [`store_hint`]. The file format is in
//! `docs/hints-format.md`: a header naming the host, then entries
//! `[u32 len][u32 crc32(len)][body][u32 crc32(body)]`.
//!
//! Bounds: a file is closed at [`MAX_FILE_BYTES`] and a new one started;
//! a host holds at most [`MAX_HOST_BYTES`] of hints and the node
//! [`MAX_TOTAL_BYTES`]; beyond them (or when the disk fails) the hint is
//! not stored and the write counts as not acknowledged by that replica, as
//! it would without hints. No hints are stored for a node down longer than
//! `max_hint_window_in_ms`. Delivery reads one file at a time.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use proto::crc::Crc32;

use crate::net::{MessagingService, Verb};
use crate::node::services;
use crate::schema::digest::{parse_uuid, uuid_to_string};
use crate::shard::ShardContext;

const HINTS_SERVICE: u64 = u64::MAX - 0x4849;
/// File magic: "THNT".
pub const MAGIC: [u8; 4] = *b"THNT";
/// Format version written in the header.
pub const VERSION: u8 = 1;
/// Header: magic, version, three reserved zero bytes, host id.
pub const HEADER_LEN: usize = 4 + 1 + 3 + 16;
/// A hints file is closed once it holds this much; a new one is started.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Hints kept for one host at most.
pub const MAX_HOST_BYTES: u64 = 256 * 1024 * 1024;
/// Hints kept on this node at most.
pub const MAX_TOTAL_BYTES: u64 = 1024 * 1024 * 1024;
/// Largest entry body accepted when reading (a larger length is corruption).
pub const MAX_ENTRY_BYTES: usize = 64 * 1024 * 1024;
/// How often the dispatcher looks for hosts to deliver to (and syncs files).
pub const DISPATCH_INTERVAL: Duration = Duration::from_millis(500);
/// How long a host whose delivery failed waits before the next attempt.
const DELIVERY_RETRY_DELAY: Duration = Duration::from_secs(2);
/// Timeout of one hint delivery.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Counters of hinted handoff on this node.
#[derive(Debug, Default)]
pub struct HintStats {
    pub stored: Cell<u64>,
    pub store_failed: Cell<u64>,
    pub not_stored_window: Cell<u64>,
    pub delivered: Cell<u64>,
    pub delivery_failed: Cell<u64>,
    pub corrupt: Cell<u64>,
    pub received: Cell<u64>,
}

/// One closed or open hints file.
#[derive(Debug)]
struct HintFile {
    path: PathBuf,
    bytes: u64,
    /// Entries at offsets below this were delivered already.
    delivered_to: u64,
}

#[derive(Default)]
struct HostHints {
    /// By sequence number.
    files: BTreeMap<u64, HintFile>,
    /// The file being appended to (its sequence number).
    writer: Option<(u64, File)>,
    dirty: bool,
}

impl HostHints {
    fn bytes(&self) -> u64 {
        self.files.values().map(|f| f.bytes).sum()
    }
}

/// Shard 0's hint store and dispatcher.
pub struct HintsManager {
    dir: PathBuf,
    enabled: bool,
    window: Duration,
    ms: Rc<MessagingService>,
    hosts: RefCell<HashMap<[u8; 16], HostHints>>,
    next_seq: Cell<u64>,
    total: Cell<u64>,
    down_since: RefCell<HashMap<IpAddr, Instant>>,
    delivering: RefCell<HashSet<[u8; 16]>>,
    /// Hosts whose last delivery failed are not retried before then.
    retry_after: RefCell<HashMap<[u8; 16], Instant>>,
    pub stats: HintStats,
}

/// Shard 0's hints manager, once the cluster services started.
pub fn hints(ctx: &ShardContext) -> Option<Rc<HintsManager>> {
    ctx.service(HINTS_SERVICE)
        .and_then(|s| s.downcast::<HintsManager>().ok())
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn crc32(b: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(b);
    c.value()
}

/// `<host id>-<sequence>.hints`.
fn file_name(host: &[u8; 16], seq: u64) -> String {
    format!("{}-{seq:020}.hints", uuid_to_string(host))
}

fn parse_file_name(name: &str) -> Option<([u8; 16], u64)> {
    let stem = name.strip_suffix(".hints")?;
    // A UUID string is 36 characters.
    let (host, seq) = (stem.get(..36)?, stem.get(37..)?);
    if stem.as_bytes().get(36) != Some(&b'-') {
        return None;
    }
    Some((parse_uuid(host)?, seq.parse().ok()?))
}

/// The file header for `host`.
pub fn encode_header(host: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(host);
    out
}

/// One entry: `[u32 len][u32 crc32(len)][body][u32 crc32(body)]`, the body
/// `[i64 created_at ms][mutation]`.
pub fn encode_entry(created_at_ms: i64, mutation: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(8 + mutation.len());
    body.extend_from_slice(&created_at_ms.to_be_bytes());
    body.extend_from_slice(mutation);
    let len = (body.len() as u32).to_be_bytes();
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32(&len).to_be_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out
}

/// What reading a hints file found.
#[derive(Debug, PartialEq)]
pub struct ParsedFile {
    pub host: [u8; 16],
    /// (offset of the entry, created_at ms, mutation bytes)
    pub entries: Vec<(u64, i64, Bytes)>,
    /// Why reading stopped early (a torn or corrupt entry), if it did.
    pub corrupt: Option<String>,
}

/// Parses a whole hints file; never panics on bad bytes.
pub fn parse_file(b: &Bytes) -> Result<ParsedFile, String> {
    if b.len() < HEADER_LEN || b[..4] != MAGIC {
        return Err("not a hints file (bad magic)".into());
    }
    if b[4] != VERSION {
        return Err(format!("unsupported hints file version {}", b[4]));
    }
    let mut host = [0u8; 16];
    host.copy_from_slice(&b[8..24]);
    let mut entries = Vec::new();
    let mut pos = HEADER_LEN;
    let mut corrupt = None;
    while pos < b.len() {
        let at = pos;
        let Some(head) = b.get(pos..pos + 8) else {
            corrupt = Some(format!("torn entry header at offset {at}"));
            break;
        };
        let len_bytes: [u8; 4] = head[..4].try_into().unwrap_or_default();
        let crc = u32::from_be_bytes(head[4..8].try_into().unwrap_or_default());
        if crc32(&len_bytes) != crc {
            corrupt = Some(format!("bad length checksum at offset {at}"));
            break;
        }
        let len = u32::from_be_bytes(len_bytes) as usize;
        if !(8..=MAX_ENTRY_BYTES).contains(&len) {
            corrupt = Some(format!("bad entry length {len} at offset {at}"));
            break;
        }
        let Some(body) = b.get(pos + 8..pos + 8 + len) else {
            corrupt = Some(format!("torn entry at offset {at}"));
            break;
        };
        let Some(crc) = b.get(pos + 8 + len..pos + 12 + len) else {
            corrupt = Some(format!("torn entry at offset {at}"));
            break;
        };
        if crc32(body) != u32::from_be_bytes(crc.try_into().unwrap_or_default()) {
            corrupt = Some(format!("bad entry checksum at offset {at}"));
            break;
        }
        let created = i64::from_be_bytes(body[..8].try_into().unwrap_or_default());
        entries.push((at as u64, created, b.slice(pos + 8 + 8..pos + 8 + len)));
        pos += 12 + len;
    }
    Ok(ParsedFile {
        host,
        entries,
        corrupt,
    })
}

/// Registers HintReq and starts the dispatcher (on shard 0).
pub fn register(ms: &Rc<MessagingService>, ctx: &ShardContext, config: &crate::config::Config) {
    let m = Rc::new(HintsManager::open(
        config.hints_directory.clone(),
        config.hinted_handoff_enabled,
        Duration::from_millis(config.max_hint_window_in_ms),
        ms.clone(),
    ));
    ctx.insert_service(HINTS_SERVICE, m.clone());
    let c = ctx.clone();
    let m2 = m.clone();
    ms.register(
        Verb::HintReq,
        Rc::new(move |_from, payload: Bytes| {
            let ctx = c.clone();
            let m = m2.clone();
            Box::pin(async move {
                m.stats.received.set(m.stats.received.get() + 1);
                let r = async {
                    let mu =
                        engine::serialize::decode_mutation(&payload).map_err(|e| e.to_string())?;
                    let s = services(&ctx).map_err(|e| e.message)?;
                    s.proxy.apply_routed(mu).await.map_err(|e| e.message)
                }
                .await;
                Some(super::forwarding::encode_status(&r))
            })
        }),
    );
    let c = ctx.clone();
    glommio::spawn_local(async move { m.dispatch_loop(c).await }).detach();
}

impl HintsManager {
    /// Opens the hints directory and indexes the files already there.
    pub fn open(dir: PathBuf, enabled: bool, window: Duration, ms: Rc<MessagingService>) -> Self {
        let m = HintsManager {
            dir,
            enabled,
            window,
            ms,
            hosts: RefCell::new(HashMap::new()),
            next_seq: Cell::new(1),
            total: Cell::new(0),
            down_since: RefCell::new(HashMap::new()),
            delivering: RefCell::new(HashSet::new()),
            retry_after: RefCell::new(HashMap::new()),
            stats: HintStats::default(),
        };
        if let Err(e) = fs::create_dir_all(&m.dir) {
            log::warn!("cannot create hints directory {}: {e}", m.dir.display());
        }
        let mut found = 0;
        if let Ok(rd) = fs::read_dir(&m.dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let Some((host, seq)) = parse_file_name(&name) else {
                    continue;
                };
                let bytes = e.metadata().map(|md| md.len()).unwrap_or(0);
                m.next_seq.set(m.next_seq.get().max(seq + 1));
                m.total.set(m.total.get() + bytes);
                m.hosts.borrow_mut().entry(host).or_default().files.insert(
                    seq,
                    HintFile {
                        path: e.path(),
                        bytes,
                        delivered_to: 0,
                    },
                );
                found += 1;
            }
        }
        if found > 0 {
            log::info!(
                "hinted handoff: {found} hints files ({} bytes) in {}",
                m.total.get(),
                m.dir.display()
            );
        }
        m
    }

    /// Stores a hint of `mutation` (encoded) for the node `host`.
    pub fn store(&self, host: [u8; 16], addr: IpAddr, mutation: &[u8]) -> Result<(), String> {
        let r = self.store_inner(host, addr, mutation);
        match &r {
            Ok(()) => self.stats.stored.set(self.stats.stored.get() + 1),
            Err(e) => {
                self.stats
                    .store_failed
                    .set(self.stats.store_failed.get() + 1);
                log::debug!("no hint stored for {addr}: {e}");
            }
        }
        r
    }

    fn store_inner(&self, host: [u8; 16], addr: IpAddr, mutation: &[u8]) -> Result<(), String> {
        if !self.enabled {
            return Err("hinted handoff is disabled".into());
        }
        if let Some(since) = self.down_since.borrow().get(&addr) {
            if since.elapsed() > self.window {
                self.stats
                    .not_stored_window
                    .set(self.stats.not_stored_window.get() + 1);
                return Err(format!(
                    "{addr} has been down longer than max_hint_window_in_ms"
                ));
            }
        }
        let entry = encode_entry(now_millis(), mutation);
        let size = entry.len() as u64;
        let mut hosts = self.hosts.borrow_mut();
        let h = hosts.entry(host).or_default();
        if self.total.get() + size > MAX_TOTAL_BYTES || h.bytes() + size > MAX_HOST_BYTES {
            return Err("hints storage is full".into());
        }
        // Rotate a full file.
        if let Some((seq, _)) = &h.writer {
            if h.files.get(seq).map(|f| f.bytes).unwrap_or(0) + size > MAX_FILE_BYTES {
                h.writer = None;
            }
        }
        if h.writer.is_none() {
            let seq = self.next_seq.get();
            self.next_seq.set(seq + 1);
            let path = self.dir.join(file_name(&host, seq));
            let mut f = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            let header = encode_header(&host);
            f.write_all(&header)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            self.total.set(self.total.get() + header.len() as u64);
            h.files.insert(
                seq,
                HintFile {
                    path,
                    bytes: header.len() as u64,
                    delivered_to: 0,
                },
            );
            h.writer = Some((seq, f));
        }
        let Some((seq, f)) = h.writer.as_mut() else {
            return Err("no hints writer".into());
        };
        let seq = *seq;
        if let Err(e) = f.write_all(&entry) {
            // A partial entry is detected by its checksum on replay; start a new file.
            h.writer = None;
            return Err(format!("cannot write a hint: {e}"));
        }
        h.dirty = true;
        if let Some(file) = h.files.get_mut(&seq) {
            file.bytes += size;
        }
        self.total.set(self.total.get() + size);
        Ok(())
    }

    /// Syncs the files written since the last sync.
    fn sync(&self) {
        for h in self.hosts.borrow_mut().values_mut() {
            if h.dirty {
                if let Some((_, f)) = &h.writer {
                    if let Err(e) = f.sync_data() {
                        log::warn!("hints sync failed: {e}");
                    }
                }
                h.dirty = false;
            }
        }
    }

    /// Hosts with hints, their files and bytes.
    pub fn pending(&self) -> Vec<([u8; 16], usize, u64)> {
        let mut v: Vec<_> = self
            .hosts
            .borrow()
            .iter()
            .filter(|(_, h)| !h.files.is_empty())
            .map(|(k, h)| (*k, h.files.len(), h.bytes()))
            .collect();
        v.sort();
        v
    }

    async fn dispatch_loop(self: Rc<Self>, ctx: ShardContext) {
        let stop = ctx.stopped();
        futures_lite::future::or(
            async {
                stop.await;
            },
            async {
                loop {
                    crate::shard::sleep(DISPATCH_INTERVAL).await;
                    self.tick(&ctx).await;
                }
            },
        )
        .await;
        self.sync();
        log::info!("hinted handoff dispatcher stopped");
    }

    /// One round: note who is down, sync, deliver to live hosts with hints.
    async fn tick(&self, ctx: &ShardContext) {
        self.sync();
        let Ok(s) = services(ctx) else { return };
        let topo = s.proxy.topology();
        {
            let mut down = self.down_since.borrow_mut();
            for e in topo.endpoints.iter().skip(1) {
                if e.alive {
                    down.remove(&e.addr);
                } else {
                    down.entry(e.addr).or_insert_with(Instant::now);
                }
            }
        }
        let targets: Vec<([u8; 16], IpAddr)> = {
            let hosts = self.hosts.borrow();
            topo.endpoints
                .iter()
                .skip(1)
                .filter(|e| e.alive && e.status == "NORMAL")
                .filter(|e| hosts.get(&e.host_id).is_some_and(|h| !h.files.is_empty()))
                .map(|e| (e.host_id, e.addr))
                .collect()
        };
        let now = Instant::now();
        self.retry_after.borrow_mut().retain(|_, t| *t > now);
        for (host, addr) in targets {
            if self.retry_after.borrow().contains_key(&host) {
                continue;
            }
            if !self.delivering.borrow_mut().insert(host) {
                continue;
            }
            self.deliver(host, addr, ctx).await;
            self.delivering.borrow_mut().remove(&host);
        }
    }

    /// Replays every hint of `host` to `addr`, deleting delivered files;
    /// stops at the first failure (the rest waits for the next round).
    async fn deliver(&self, host: [u8; 16], addr: IpAddr, ctx: &ShardContext) {
        // New hints go to a new file from now on.
        let seqs: Vec<u64> = {
            let mut hosts = self.hosts.borrow_mut();
            let Some(h) = hosts.get_mut(&host) else {
                return;
            };
            h.writer = None;
            h.files.keys().copied().collect()
        };
        let mut delivered = 0u64;
        for seq in seqs {
            if ctx.is_stopping() {
                return;
            }
            let (path, from) = {
                let hosts = self.hosts.borrow();
                let Some(f) = hosts.get(&host).and_then(|h| h.files.get(&seq)) else {
                    continue;
                };
                (f.path.clone(), f.delivered_to)
            };
            let parsed = match fs::read(&path) {
                Ok(b) => parse_file(&Bytes::from(b)),
                Err(e) => Err(format!("cannot read {}: {e}", path.display())),
            };
            let parsed = match parsed {
                Ok(p) => p,
                Err(e) => {
                    log::warn!("dropping hints file {}: {e}", path.display());
                    self.stats.corrupt.set(self.stats.corrupt.get() + 1);
                    self.remove_file(host, seq);
                    continue;
                }
            };
            if let Some(why) = &parsed.corrupt {
                log::warn!(
                    "hints file {}: {why}; the hints after it are lost",
                    path.display()
                );
                self.stats.corrupt.set(self.stats.corrupt.get() + 1);
            }
            for (offset, _created, mutation) in parsed.entries {
                if offset < from {
                    continue;
                }
                let r = self
                    .ms
                    .send_request(addr, Verb::HintReq, mutation, DELIVERY_TIMEOUT)
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|b| super::forwarding::decode_status(&b));
                if let Err(e) = r {
                    self.stats
                        .delivery_failed
                        .set(self.stats.delivery_failed.get() + 1);
                    log::debug!("hint delivery to {addr} paused: {e}");
                    self.retry_after
                        .borrow_mut()
                        .insert(host, Instant::now() + DELIVERY_RETRY_DELAY);
                    return;
                }
                self.stats.delivered.set(self.stats.delivered.get() + 1);
                delivered += 1;
                if let Some(f) = self
                    .hosts
                    .borrow_mut()
                    .get_mut(&host)
                    .and_then(|h| h.files.get_mut(&seq))
                {
                    f.delivered_to = offset + 1;
                }
            }
            self.remove_file(host, seq);
        }
        if delivered > 0 {
            log::info!("delivered {delivered} hints to {addr}");
        }
    }

    /// Deletes every hint stored for `host` (it left the ring or was
    /// removed: Cassandra's `HintsService.excise`). Returns the files
    /// deleted.
    pub fn drop_host(&self, host: [u8; 16]) -> usize {
        let seqs: Vec<u64> = self
            .hosts
            .borrow()
            .get(&host)
            .map(|h| h.files.keys().copied().collect())
            .unwrap_or_default();
        for &seq in &seqs {
            self.remove_file(host, seq);
        }
        seqs.len()
    }

    fn remove_file(&self, host: [u8; 16], seq: u64) {
        let mut hosts = self.hosts.borrow_mut();
        let Some(h) = hosts.get_mut(&host) else {
            return;
        };
        if h.writer.as_ref().is_some_and(|(s, _)| *s == seq) {
            h.writer = None;
        }
        if let Some(f) = h.files.remove(&seq) {
            self.total.set(self.total.get().saturating_sub(f.bytes));
            if let Err(e) = fs::remove_file(&f.path) {
                log::warn!("cannot delete {}: {e}", f.path.display());
            }
        }
        if h.files.is_empty() {
            hosts.remove(&host);
        }
    }

    /// Counters and pending hints, as a JSON object.
    pub fn stats_json(&self) -> String {
        let s = &self.stats;
        let pending: Vec<String> = self
            .pending()
            .into_iter()
            .map(|(h, files, bytes)| {
                format!(
                    "{{\"host_id\": \"{}\", \"files\": {files}, \"bytes\": {bytes}}}",
                    uuid_to_string(&h)
                )
            })
            .collect();
        format!(
            "{{\"enabled\": {}, \"hints_directory\": {}, \"stored\": {}, \"store_failed\": {}, \"not_stored_window\": {}, \"delivered\": {}, \"delivery_failed\": {}, \"corrupt_files\": {}, \"received\": {}, \"total_bytes\": {}, \"pending\": [{}]}}",
            self.enabled,
            serde_json::Value::String(self.dir.display().to_string()),
            s.stored.get(),
            s.store_failed.get(),
            s.not_stored_window.get(),
            s.delivered.get(),
            s.delivery_failed.get(),
            s.corrupt.get(),
            s.received.get(),
            self.total.get(),
            pending.join(", ")
        )
    }

    #[cfg(test)]
    fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

/// Stores a hint on shard 0 (from any shard).
pub(crate) async fn store_hint(
    ctx: &ShardContext,
    host: [u8; 16],
    addr: IpAddr,
    mutation: Bytes,
) -> Result<(), String> {
    ctx.invoke_on(0, move |ctx| async move {
        let h = hints(&ctx).ok_or("hinted handoff is not running")?;
        h.store(host, addr, &mutation)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// `GET /hinted_handoff/stats`.
pub fn register_admin_routes(router: &mut crate::admin::Router, ctx: &ShardContext) {
    let c = ctx.clone();
    router.route("GET", "/hinted_handoff/stats", move |_| {
        let ctx = c.clone();
        async move {
            match hints(&ctx) {
                Some(h) => crate::admin::Response::ok(h.stats_json()),
                None => crate::admin::Response::error(503, "not in a cluster yet"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> [u8; 16] {
        [7u8; 16]
    }

    #[test]
    fn file_names_round_trip() {
        let n = file_name(&host(), 42);
        assert_eq!(parse_file_name(&n), Some((host(), 42)));
        assert_eq!(parse_file_name("x.hints"), None);
        assert_eq!(parse_file_name("probe"), None);
    }

    #[test]
    fn entries_round_trip_and_corruption_is_detected() {
        let mut f = encode_header(&host());
        f.extend(encode_entry(1, b"first"));
        let second_at = f.len();
        f.extend(encode_entry(2, b"second"));
        let p = parse_file(&Bytes::from(f.clone())).unwrap();
        assert_eq!(p.host, host());
        assert_eq!(p.corrupt, None);
        assert_eq!(
            p.entries
                .iter()
                .map(|(_, c, m)| (*c, m.to_vec()))
                .collect::<Vec<_>>(),
            vec![(1, b"first".to_vec()), (2, b"second".to_vec())]
        );
        // A flipped bit in the second body: the first entry survives.
        let mut bad = f.clone();
        bad[second_at + 8 + 9] ^= 1;
        let p = parse_file(&Bytes::from(bad)).unwrap();
        assert_eq!(p.entries.len(), 1);
        assert!(p.corrupt.unwrap().contains("checksum"));
        // Every truncation parses without panicking and keeps whole entries only.
        for n in HEADER_LEN..f.len() {
            let p = parse_file(&Bytes::from(f[..n].to_vec())).unwrap();
            assert_eq!(p.entries.len(), usize::from(n >= second_at));
            assert_eq!(
                p.corrupt.is_some(),
                n != HEADER_LEN && n != second_at,
                "cut at {n}"
            );
        }
        assert!(parse_file(&Bytes::from_static(b"nope")).is_err());
    }

    #[test]
    fn store_then_reopen_finds_the_hints() {
        let dir = std::env::temp_dir().join(format!("tessera-hints-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let addr: IpAddr = "127.0.6.9".parse().unwrap();
        let ms = MessagingService::new(
            "127.0.6.9:7000".parse().unwrap(),
            crate::net::MessagingConfig::default(),
        );
        let m = HintsManager::open(dir.clone(), true, Duration::from_secs(3600), ms.clone());
        m.store(host(), addr, b"m1").unwrap();
        m.store(host(), addr, b"m2").unwrap();
        m.sync();
        assert_eq!(m.pending().len(), 1);
        let total = m.total.get();
        drop(m);
        let m = HintsManager::open(dir.clone(), true, Duration::from_secs(3600), ms.clone());
        assert_eq!(m.total.get(), total);
        let files: Vec<_> = fs::read_dir(m.dir()).unwrap().flatten().collect();
        assert_eq!(files.len(), 1);
        let p = parse_file(&Bytes::from(fs::read(files[0].path()).unwrap())).unwrap();
        assert_eq!(p.entries.len(), 2);
        // Disabled: nothing is stored, and it is an error (not a panic).
        let off = HintsManager::open(dir.clone(), false, Duration::from_secs(1), ms.clone());
        assert!(off.store(host(), addr, b"m3").is_err());
        // A node down longer than the window gets no hints.
        let w = HintsManager::open(dir.clone(), true, Duration::from_millis(0), ms);
        w.down_since
            .borrow_mut()
            .insert(addr, Instant::now() - Duration::from_millis(5));
        assert!(w.store(host(), addr, b"m4").is_err());
        drop(w);
        // A host that left the ring: its hints are deleted, others' stay.
        let m = HintsManager::open(dir.clone(), true, Duration::from_secs(3600), off.ms.clone());
        m.store([9u8; 16], addr, b"other").unwrap();
        assert_eq!(m.pending().len(), 2);
        assert_eq!(m.drop_host(host()), 1);
        assert_eq!(m.pending().len(), 1);
        assert_eq!(m.pending()[0].0, [9u8; 16]);
        assert_eq!(fs::read_dir(m.dir()).unwrap().count(), 1);
        assert_eq!(m.drop_host(host()), 0);
        let _ = fs::remove_dir_all(&dir);
    }
}
