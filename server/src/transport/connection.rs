//! One client connection: decode envelopes (and v5 segments), run
//! requests, encode responses. A malformed frame closes only this
//! connection, after an ERROR when the protocol allows one.

use std::cell::Cell;
use std::rc::Rc;

use bytes::{Buf, Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel::{self, LocalReceiver};
use glommio::net::TcpStream;
use proto::error::{ErrorResponse, FrameError};
use proto::frame::{self, flags, opcode, Envelope};
use proto::request::{Request, RequestMessage};
use proto::response::{self, PreparedMetadata, Response, ResultBody, ResultMetadata, RowsWriter};
use proto::segment::{self, SegmentAssembler};
use proto::types;

use super::events::{Outgoing, EVENT_SCHEMA, EVENT_STATUS, EVENT_TOPOLOGY};
use super::TransportServices;
use crate::cql3::query_processor::{ExecResult, TraceSession};
use crate::cql3::statements::ResultSet;
use crate::service::client_state::ClientState;

/// The CQL versions this node speaks; the first is the one drivers echo.
pub const CQL_VERSIONS: &[&str] = &["3.4.5"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Lz4,
}

/// Per-connection settings shared with the writer task.
struct Shared {
    version: Cell<u8>,
    compression: Cell<Compression>,
    /// v5 segment framing is on (after READY/AUTHENTICATE of a v5 STARTUP).
    framed: Cell<bool>,
}

pub struct Connection {
    services: Rc<TransportServices>,
    shared: Rc<Shared>,
    tx: Rc<local_channel::LocalSender<Outgoing>>,
    client: ClientState,
    started: bool,
    subscription: Option<u64>,
    assembler: SegmentAssembler,
    /// The connection's two ends, for `system_traces` (client, coordinator).
    peer: Option<std::net::SocketAddr>,
    local: Option<std::net::SocketAddr>,
    /// Tracing session id of the request being answered, sent in its response.
    trace_id: Option<[u8; 16]>,
}

/// A traced request, from its arrival until its trace is recorded.
struct TraceStart {
    id: [u8; 16],
    started: std::time::Instant,
    started_at_millis: i64,
    request: &'static str,
    parameters: Vec<(String, String)>,
}

type Error = Box<dyn std::error::Error>;

impl Connection {
    pub async fn run(stream: TcpStream, services: Rc<TransportServices>) -> Result<(), Error> {
        stream.set_nodelay(true)?;
        let peer = stream.peer_addr().ok();
        let local = stream.local_addr().ok();
        let (mut reader, writer) = futures_lite::io::split(stream);
        let (tx, rx) = local_channel::new_bounded(services.limits.max_outstanding_responses);
        let shared = Rc::new(Shared {
            version: Cell::new(0),
            compression: Cell::new(Compression::None),
            framed: Cell::new(false),
        });
        let writer_task = glommio::spawn_local(write_loop(writer, rx, shared.clone())).detach();
        let mut conn = Connection {
            services: services.clone(),
            shared,
            tx: Rc::new(tx),
            client: ClientState::default(),
            started: false,
            subscription: None,
            assembler: SegmentAssembler::new(),
            peer,
            local,
            trace_id: None,
        };
        // Transports stopped (`commit_failure_policy: stop`): the
        // connection closes; drivers see the node go away.
        let stopped = services.stopped.wait();
        let result = futures_lite::future::or(conn.read_loop(&mut reader), async {
            stopped.await;
            Ok(())
        })
        .await;
        if let Some(id) = conn.subscription.take() {
            services.events.unsubscribe(id);
        }
        drop(conn);
        // The writer drains what was queued, then ends as the channel closes.
        let _ = writer_task.await;
        result
    }

    async fn read_loop<R: futures_lite::AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
    ) -> Result<(), Error> {
        let max = self.services.limits.max_frame_bytes;
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = reader.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut out = Vec::new();
            let mut framed_out = self.shared.framed.get();
            let result = self
                .process_buffer(&mut buf, max, &mut out, &mut framed_out)
                .await;
            if !out.is_empty() {
                self.send(out, framed_out).await?;
            }
            result?;
        }
    }

    async fn send(&self, bytes: Vec<u8>, framed: bool) -> Result<(), Error> {
        self.tx
            .send(Outgoing::Frames { bytes, framed })
            .await
            .map_err(|_| "connection writer closed")?;
        Ok(())
    }

    /// Handles every complete envelope in `buf`; responses go to `out`.
    /// An error closes the connection (after `out` is sent).
    async fn process_buffer(
        &mut self,
        buf: &mut BytesMut,
        max: usize,
        out: &mut Vec<u8>,
        framed_out: &mut bool,
    ) -> Result<(), Error> {
        loop {
            let env = if self.shared.framed.get() {
                match self.next_framed_envelope(buf, max) {
                    Ok(Some(env)) => env,
                    Ok(None) => return Ok(()),
                    Err(e) => {
                        self.frame_error(e, out);
                        return Err("malformed segment".into());
                    }
                }
            } else {
                match frame::decode_envelope_from_bytes(buf, max) {
                    Ok(Some(env)) => env,
                    Ok(None) => return Ok(()),
                    Err(e) => {
                        self.frame_error(e, out);
                        return Err("malformed frame".into());
                    }
                }
            };
            let was_framed = self.shared.framed.get();
            if was_framed != *framed_out {
                // Framing switches only right after READY; flush what came before.
                let before = std::mem::take(out);
                if !before.is_empty() {
                    self.send(before, *framed_out).await?;
                }
                *framed_out = was_framed;
            }
            let keep_open = self.handle(env, out).await;
            if self.shared.framed.get() != *framed_out {
                // READY of a v5 STARTUP goes out unframed; what follows is framed.
                let before = std::mem::take(out);
                self.send(before, *framed_out).await?;
                *framed_out = self.shared.framed.get();
            }
            if !keep_open {
                return Err("protocol error".into());
            }
        }
    }

    fn next_framed_envelope(
        &mut self,
        buf: &mut BytesMut,
        max: usize,
    ) -> Result<Option<Envelope>, FrameError> {
        loop {
            if let Some(env) = self.assembler.next_envelope(max)? {
                return Ok(Some(env));
            }
            if self.assembler.pending() > max + frame::HEADER_LEN {
                return Err(FrameError::TooLarge {
                    stream: 0,
                    length: self.assembler.pending() as u32,
                    max,
                });
            }
            let compressed = self.shared.compression.get() == Compression::Lz4;
            match segment::decode_segment(buf, compressed)? {
                None => return Ok(None),
                Some((seg, used)) => {
                    buf.advance(used);
                    self.assembler.push(&seg)?;
                }
            }
        }
    }

    fn frame_error(&self, e: FrameError, out: &mut Vec<u8>) {
        let (version, stream, msg) = match &e {
            FrameError::UnsupportedVersion { version, stream } => {
                let v = if *version > frame::MAX_VERSION {
                    frame::MAX_VERSION.min(4)
                } else {
                    (*version).max(1)
                };
                (v, *stream, frame::unsupported_version_message(*version))
            }
            FrameError::TooLarge {
                stream,
                length,
                max,
            } => (
                self.version_or_default(),
                *stream,
                format!(
                    "Request is too big: length {length} exceeds maximum allowed length {max}."
                ),
            ),
            FrameError::WrongDirection { stream } => (
                self.version_or_default(),
                *stream,
                "Unexpected response frame from a client".to_string(),
            ),
            other => (self.version_or_default(), 0, other.to_string()),
        };
        log::debug!("closing connection after protocol error: {msg}");
        let err = Response::Error(ErrorResponse::protocol(msg));
        response::encode_response(out, version, stream, &err, None, &[]);
    }

    fn version_or_default(&self) -> u8 {
        match self.shared.version.get() {
            0 => 4,
            v => v,
        }
    }

    /// Runs one request; false when the connection must close.
    async fn handle(&mut self, env: Envelope, out: &mut Vec<u8>) -> bool {
        let h = env.header;
        let stream = h.stream;
        let established = self.shared.version.get();
        if established == 0 {
            self.shared.version.set(h.version);
        } else if established != h.version {
            let msg = format!("Invalid message version. Got {} but previous messages on this connection had version {established}", h.version);
            self.write(out, stream, Response::Error(ErrorResponse::protocol(msg)));
            return false;
        }
        let version = h.version;
        let mut body = env.body;
        if h.flags & flags::COMPRESSION != 0 && version < 5 {
            if self.shared.compression.get() != Compression::Lz4 {
                self.write(
                    out,
                    stream,
                    Response::Error(ErrorResponse::protocol(
                        "Compressed frame received but no compression was negotiated",
                    )),
                );
                return false;
            }
            match proto::compression::decompress_v4_body(
                &body,
                self.services.limits.max_frame_bytes,
            ) {
                Ok(b) => body = Bytes::from(b),
                Err(e) => {
                    self.write(
                        out,
                        stream,
                        Response::Error(ErrorResponse::protocol(format!(
                            "Failed to decompress frame: {e}"
                        ))),
                    );
                    return false;
                }
            }
        }
        let msg = match Request::decode_with_flags(version, h.flags, h.opcode, &body) {
            Ok(m) => m,
            Err(e) => {
                self.write(
                    out,
                    stream,
                    Response::Error(ErrorResponse::protocol(e.to_string())),
                );
                return false;
            }
        };
        let RequestMessage {
            request, tracing, ..
        } = msg;
        self.trace_id = None;
        let mut trace = if tracing && self.started {
            self.begin_trace(&request)
        } else {
            None
        };
        match request {
            Request::Options => {
                let mut opts: Vec<(String, Vec<String>)> = vec![
                    (
                        "CQL_VERSION".into(),
                        CQL_VERSIONS.iter().map(|s| s.to_string()).collect(),
                    ),
                    ("COMPRESSION".into(), vec!["lz4".into()]),
                    (
                        "PROTOCOL_VERSIONS".into(),
                        vec!["3/v3".into(), "4/v4".into(), "5/v5".into()],
                    ),
                ];
                opts.extend(self.services.extra_supported.iter().cloned());
                self.write(out, stream, Response::Supported(opts));
                true
            }
            Request::Startup(options) => {
                if self.started {
                    self.write(
                        out,
                        stream,
                        Response::Error(ErrorResponse::protocol(
                            "Unexpected message STARTUP, the connection is already initialized",
                        )),
                    );
                    return false;
                }
                let get = |k: &str| {
                    options
                        .iter()
                        .find(|(key, _)| key.eq_ignore_ascii_case(k))
                        .map(|(_, v)| v.as_str())
                };
                match get("COMPRESSION") {
                    None => {}
                    Some(c) if c.eq_ignore_ascii_case("lz4") => {
                        self.shared.compression.set(Compression::Lz4)
                    }
                    Some(c) => {
                        self.write(
                            out,
                            stream,
                            Response::Error(ErrorResponse::protocol(format!(
                                "Unknown compression algorithm: {c}"
                            ))),
                        );
                        return false;
                    }
                }
                if get("CQL_VERSION").is_none() {
                    self.write(
                        out,
                        stream,
                        Response::Error(ErrorResponse::protocol(
                            "Missing value CQL_VERSION in STARTUP message",
                        )),
                    );
                    return false;
                }
                self.started = true;
                self.write(out, stream, Response::Ready);
                if version >= 5 {
                    self.shared.framed.set(true);
                }
                true
            }
            Request::AuthResponse(_) => {
                self.write(
                    out,
                    stream,
                    Response::Error(ErrorResponse::protocol(
                        "Unexpected message AUTH_RESPONSE: authentication is not enabled",
                    )),
                );
                false
            }
            _ if !self.started => {
                self.write(
                    out,
                    stream,
                    Response::Error(ErrorResponse::protocol(format!(
                        "Unexpected message {}, expecting STARTUP or OPTIONS",
                        frame::opcode::name(h.opcode)
                    ))),
                );
                false
            }
            Request::Register(kinds) => {
                let mut mask = 0;
                for k in &kinds {
                    mask |= match k.as_str() {
                        "TOPOLOGY_CHANGE" => EVENT_TOPOLOGY,
                        "STATUS_CHANGE" => EVENT_STATUS,
                        "SCHEMA_CHANGE" => EVENT_SCHEMA,
                        other => {
                            self.write(
                                out,
                                stream,
                                Response::Error(ErrorResponse::protocol(format!(
                                    "Invalid value '{other}' for Type"
                                ))),
                            );
                            return false;
                        }
                    };
                }
                if let Some(id) = self.subscription.take() {
                    self.services.events.unsubscribe(id);
                }
                self.subscription = Some(self.services.events.subscribe(mask, self.tx.clone()));
                self.write(out, stream, Response::Ready);
                true
            }
            Request::Query(q) => {
                let r = self
                    .services
                    .qp
                    .query(&q.query, &q.params, &mut self.client)
                    .await;
                self.end_trace(trace.take()).await;
                self.write_result(out, version, stream, r, q.params.skip_metadata, None);
                true
            }
            Request::Prepare(p) => {
                let r = self
                    .services
                    .qp
                    .prepare(&p.query, p.keyspace.as_deref(), &self.client);
                self.end_trace(trace.take()).await;
                match r {
                    Ok(prepared) => {
                        let result_metadata = ResultMetadata::new(prepared.result_columns.clone());
                        let body = ResultBody::Prepared(response::Prepared {
                            id: prepared.id.clone(),
                            result_metadata_id: (version >= 5)
                                .then(|| metadata_id(&prepared.result_columns)),
                            variables: PreparedMetadata {
                                pk_indexes: prepared.pk_indexes.clone(),
                                columns: prepared.bind_specs.clone(),
                            },
                            result_metadata,
                        });
                        self.write(out, stream, Response::Result(body));
                    }
                    Err(e) => self.write(out, stream, Response::Error(e)),
                }
                true
            }
            Request::Execute(x) => {
                let r = self
                    .services
                    .qp
                    .execute(&x.id, &x.params, &mut self.client)
                    .await;
                self.end_trace(trace.take()).await;
                self.write_result(
                    out,
                    version,
                    stream,
                    r,
                    x.params.skip_metadata,
                    x.result_metadata_id.as_ref(),
                );
                true
            }
            Request::Batch(b) => {
                let r = self.services.qp.batch(&b, &mut self.client).await;
                self.end_trace(trace.take()).await;
                self.write_result(out, version, stream, r, false, None);
                true
            }
        }
    }

    /// What `system_traces.sessions` says about a request the client asked to
    /// trace (QUERY, PREPARE, EXECUTE and BATCH are traced, as in Cassandra).
    fn begin_trace(&self, request: &Request) -> Option<TraceStart> {
        let mut parameters = Vec::new();
        let mut query_params = |p: &proto::request::query::QueryParameters| {
            parameters.push((
                "consistency_level".to_string(),
                p.consistency.name().to_string(),
            ));
            if let Some(n) = p.page_size {
                parameters.push(("page_size".to_string(), n.to_string()));
            }
            if let Some(c) = p.serial_consistency {
                parameters.push(("serial_consistency_level".to_string(), c.name().to_string()));
            }
        };
        let request = match request {
            Request::Query(q) => {
                query_params(&q.params);
                parameters.push(("query".to_string(), q.query.clone()));
                "Execute CQL3 query"
            }
            Request::Prepare(p) => {
                parameters.push(("query".to_string(), p.query.clone()));
                "Preparing CQL3 query"
            }
            Request::Execute(x) => {
                query_params(&x.params);
                if let Some(p) = self.services.qp.get_prepared(&x.id) {
                    parameters.push(("query".to_string(), p.query.clone()));
                }
                "Execute CQL3 prepared query"
            }
            Request::Batch(b) => {
                parameters.push((
                    "consistency_level".to_string(),
                    b.consistency.name().to_string(),
                ));
                "Execute batch of CQL3 queries"
            }
            _ => return None,
        };
        Some(TraceStart {
            id: crate::cql3::functions::now_timeuuid(),
            started: std::time::Instant::now(),
            started_at_millis: crate::service::client_state::now_micros() / 1000,
            request,
            parameters,
        })
    }

    /// Records a traced request in `system_traces`; its response then carries
    /// the session id. A trace that cannot be written is logged, and the
    /// response goes out untraced.
    async fn end_trace(&mut self, t: Option<TraceStart>) {
        let (Some(t), Some(local)) = (t, self.local) else {
            return;
        };
        let elapsed = t.started.elapsed().as_micros() as i64;
        let session = TraceSession {
            session_id: t.id,
            client: self.peer.map(|a| a.ip()).unwrap_or(local.ip()),
            coordinator: local,
            request: t.request.to_string(),
            parameters: t.parameters,
            started_at_millis: t.started_at_millis,
            duration_micros: elapsed,
            events: vec![
                (format!("{}: started", t.request), 0),
                (format!("{}: finished", t.request), elapsed),
            ],
        };
        match self.services.qp.record_trace(&session).await {
            Ok(()) => self.trace_id = Some(t.id),
            Err(e) => log::warn!("could not record tracing session: {}", e.message),
        }
    }

    fn write(&self, out: &mut Vec<u8>, stream: i16, resp: Response) {
        let version = self.version_or_default();
        let start =
            response::encode_response(out, version, stream, &resp, self.trace_id.as_ref(), &[]);
        self.maybe_compress(out, start, version);
    }

    fn maybe_compress(&self, out: &mut Vec<u8>, start: usize, version: u8) {
        // v5 compresses segments, not envelopes; tiny bodies aren't worth it.
        if version < 5 && self.shared.compression.get() == Compression::Lz4 && self.started {
            response::compress_envelope(out, start);
        }
    }

    fn write_result(
        &self,
        out: &mut Vec<u8>,
        version: u8,
        stream: i16,
        r: Result<ExecResult, ErrorResponse>,
        skip_metadata: bool,
        client_metadata_id: Option<&Bytes>,
    ) {
        match r {
            Err(e) => self.write(out, stream, Response::Error(e)),
            Ok(ExecResult::Void) => self.write(out, stream, Response::Result(ResultBody::Void)),
            Ok(ExecResult::SetKeyspace(k)) => {
                self.write(out, stream, Response::Result(ResultBody::SetKeyspace(k)))
            }
            Ok(ExecResult::SchemaChange(ev)) => self.write(
                out,
                stream,
                Response::Result(ResultBody::SchemaChange(super::events::to_protocol(&ev))),
            ),
            Ok(ExecResult::Rows(rs)) => {
                let header_flags = if self.trace_id.is_some() {
                    flags::TRACING
                } else {
                    0
                };
                let start =
                    frame::begin_envelope(out, version, header_flags, stream, opcode::RESULT);
                if let Some(id) = &self.trace_id {
                    types::write_uuid(out, id);
                }
                encode_rows(out, version, &rs, skip_metadata, client_metadata_id);
                frame::finish_envelope(out, start);
                self.maybe_compress(out, start, version);
            }
        }
    }
}

/// A v5 result metadata id: a digest of the result columns.
fn metadata_id(columns: &[proto::response::ColumnSpec]) -> Bytes {
    let mut data = Vec::new();
    for c in columns {
        data.extend_from_slice(c.keyspace.as_bytes());
        data.push(0);
        data.extend_from_slice(c.table.as_bytes());
        data.push(0);
        data.extend_from_slice(c.name.as_bytes());
        data.push(0);
        data.extend_from_slice(c.ty.to_string().as_bytes());
        data.push(0);
    }
    Bytes::copy_from_slice(&crate::schema::digest::md5(&data))
}

fn encode_rows(
    out: &mut Vec<u8>,
    version: u8,
    rs: &ResultSet,
    skip_metadata: bool,
    client_metadata_id: Option<&Bytes>,
) {
    types::write_int(out, 2);
    let mut meta = ResultMetadata::new(rs.columns.clone());
    meta.paging_state = rs.paging_state.clone();
    if version >= 5 {
        if let Some(id) = client_metadata_id {
            let current = metadata_id(&rs.columns);
            if *id != current {
                meta.new_metadata_id = Some(current);
            } else {
                meta.no_metadata = skip_metadata;
            }
        }
    } else {
        meta.no_metadata = skip_metadata;
    }
    let mut w = RowsWriter::new(out, version, &meta);
    for row in &rs.rows {
        for cell in row {
            w.cell(cell.as_deref());
        }
        w.end_row();
    }
    w.finish(rs.paging_state.as_deref());
}

async fn write_loop<W: futures_lite::AsyncWrite + Unpin>(
    mut writer: W,
    rx: LocalReceiver<Outgoing>,
    shared: Rc<Shared>,
) {
    let mut wire = Vec::with_capacity(64 * 1024);
    while let Some(first) = rx.recv().await {
        wire.clear();
        let mut pending = Some(first);
        // Coalesce everything already queued into one write.
        while let Some(msg) = pending.take() {
            match msg {
                Outgoing::Frames { bytes, framed } => put(&mut wire, &bytes, framed, &shared),
                Outgoing::Event(ev) => {
                    let version = match shared.version.get() {
                        0 => 4,
                        v => v,
                    };
                    let mut env = Vec::new();
                    let start = response::encode_response(
                        &mut env,
                        version,
                        -1,
                        &Response::Event((*ev).clone()),
                        None,
                        &[],
                    );
                    if version < 5 && shared.compression.get() == Compression::Lz4 {
                        response::compress_envelope(&mut env, start);
                    }
                    put(&mut wire, &env, shared.framed.get(), &shared);
                }
            }
            if wire.len() < 256 * 1024 {
                if let Some(next) = futures_lite::future::poll_once(rx.recv()).await.flatten() {
                    pending = Some(next);
                }
            }
        }
        if writer.write_all(&wire).await.is_err() || writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.close().await;
}

fn put(wire: &mut Vec<u8>, envelopes: &[u8], framed: bool, shared: &Shared) {
    if framed {
        segment::encode_envelopes(
            envelopes,
            shared.compression.get() == Compression::Lz4,
            wire,
        );
    } else {
        wire.extend_from_slice(envelopes);
    }
}
