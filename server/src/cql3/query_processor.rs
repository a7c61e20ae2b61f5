//! QUERY, PREPARE, EXECUTE and BATCH: parse, prepare (cached), execute.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use proto::consistency::Consistency;
use proto::error::ErrorResponse;
use proto::request::batch::{BatchQueryKind, BatchRequest};
use proto::request::query::QueryParameters;
use proto::types::Value;
use proto::value::ColumnType;

use super::ast::{self, BatchKind, ParsedStatement, Statement};
use super::eval::EvalCtx;
use super::parser::parse_statement;
use super::statements::batch::{
    batch_mutations, batch_timestamp, execute_with_reads, validate_batch,
};
use super::statements::modification::{Existing, Lwt, ModificationStatement};
use super::statements::select::{SelectOptions, SelectStatement};
use super::statements::{keyspace_of, resolve_table, BindCollector, ColumnSpec, ResultSet};
use crate::schema::{SchemaChangeEvent, TableMetadata};
use crate::service::client_state::{ClientState, TimestampGenerator};
use crate::service::migration_manager::MigrationManager;
use crate::service::storage_proxy::StorageProxy;

/// The outcome of a statement, before it is put on the wire.
#[derive(Debug)]
pub enum ExecResult {
    Void,
    Rows(ResultSet),
    SetKeyspace(String),
    SchemaChange(SchemaChangeEvent),
}

/// A prepared statement resolved against the schema.
#[derive(Debug)]
pub enum CqlStatement {
    Select(SelectStatement),
    Modification(ModificationStatement),
    Batch {
        kind: BatchKind,
        timestamp: Option<ast::Term>,
        statements: Vec<ModificationStatement>,
    },
    Ddl(Statement),
    Use(String),
    Truncate(Arc<TableMetadata>),
    Describe(ast::Describe),
}

/// A prepared statement and what PREPARE reports about it.
#[derive(Debug)]
pub struct Prepared {
    pub id: Bytes,
    pub query: String,
    pub keyspace: Option<String>,
    pub schema_version: [u8; 16],
    pub statement: CqlStatement,
    pub bind_markers: Vec<Option<String>>,
    pub bind_specs: Vec<ColumnSpec>,
    pub pk_indexes: Vec<u16>,
    pub result_columns: Vec<ColumnSpec>,
}

/// How long trace rows live, in seconds (Cassandra's `tracing_ttl`).
const TRACE_TTL: u32 = 86_400;

/// A request the client asked to trace (the TRACING flag): what
/// `system_traces.sessions` and `system_traces.events` record about it.
#[derive(Debug, Clone)]
pub struct TraceSession {
    /// The time UUID returned to the client in the response's tracing id.
    pub session_id: [u8; 16],
    pub client: std::net::IpAddr,
    pub coordinator: std::net::SocketAddr,
    /// `Execute CQL3 query`, `Preparing CQL3 query`, ...
    pub request: String,
    /// `query`, `consistency_level`, `page_size`, ...
    pub parameters: Vec<(String, String)>,
    pub started_at_millis: i64,
    pub duration_micros: i64,
    /// (activity, microseconds since the request started)
    pub events: Vec<(String, i64)>,
}

/// Bound on the prepared statement cache (entries).
const PREPARED_CACHE_CAPACITY: usize = 20_000;

/// Executes CQL for the connections of one shard.
pub struct QueryProcessor {
    proxy: Rc<StorageProxy>,
    migrations: Rc<MigrationManager>,
    prepared: RefCell<HashMap<Bytes, Rc<Prepared>>>,
    timestamps: TimestampGenerator,
}

fn syntax(e: super::parser::SyntaxError) -> ErrorResponse {
    ErrorResponse::syntax(e.to_string())
}

fn describe_columns() -> Vec<ColumnSpec> {
    ["keyspace_name", "type", "name", "create_statement"]
        .iter()
        .map(|n| ColumnSpec {
            keyspace: String::new(),
            table: String::new(),
            name: n.to_string(),
            ty: ColumnType::Text,
        })
        .collect()
}

impl QueryProcessor {
    pub fn new(proxy: Rc<StorageProxy>, migrations: Rc<MigrationManager>) -> Self {
        QueryProcessor {
            proxy,
            migrations,
            prepared: RefCell::new(HashMap::new()),
            timestamps: TimestampGenerator::new(),
        }
    }

    /// Prepares a parsed statement against the current schema.
    fn prepare_parsed(
        &self,
        parsed: ParsedStatement,
        keyspace: Option<&str>,
        query: &str,
    ) -> Result<Prepared, ErrorResponse> {
        let schema = self.migrations.schema();
        let markers = parsed.bind_markers.clone();
        let (statement, bind_specs, pk_indexes, result_columns) = match parsed.statement {
            Statement::Select(sel) => {
                let table = resolve_table(&schema, &sel.table, keyspace)?;
                let mut binds = BindCollector::new(&table.keyspace, &table.name, &markers);
                let stmt = SelectStatement::prepare(table.clone(), &sel, &mut binds)?;
                let specs = binds.finish()?;
                let pk = stmt.pk_bind_indexes();
                let cols = stmt.result_columns.clone();
                (CqlStatement::Select(stmt), specs, pk, cols)
            }
            Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) => {
                let (stmt, specs) =
                    self.prepare_modification(&parsed.statement, keyspace, &markers)?;
                let pk = stmt.pk_bind_indexes();
                (CqlStatement::Modification(stmt), specs, pk, Vec::new())
            }
            Statement::Batch(b) => {
                if b.statements.is_empty() {
                    return Err(ErrorResponse::invalid("Empty batch"));
                }
                if b.using.ttl.is_some() {
                    return Err(ErrorResponse::invalid(
                        "Global TTL on the BATCH statement is not supported.",
                    ));
                }
                let mut statements = Vec::new();
                let mut specs: Vec<Option<ColumnSpec>> = vec![None; markers.len()];
                for s in &b.statements {
                    let (stmt, _) =
                        self.prepare_modification_with(s, keyspace, &markers, &mut specs)?;
                    statements.push(stmt);
                }
                validate_batch(
                    b.kind,
                    &statements.iter().collect::<Vec<_>>(),
                    b.using.timestamp.is_some(),
                )?;
                let mut binds = BindCollector::new("", "", &markers);
                binds.specs = specs;
                if let Some(t) = &b.using.timestamp {
                    binds.note(t, "[timestamp]", &ColumnType::BigInt);
                }
                let specs = binds.finish()?;
                (
                    CqlStatement::Batch {
                        kind: b.kind,
                        timestamp: b.using.timestamp.clone(),
                        statements,
                    },
                    specs,
                    Vec::new(),
                    Vec::new(),
                )
            }
            Statement::Use(ks) => (CqlStatement::Use(ks), Vec::new(), Vec::new(), Vec::new()),
            Statement::Truncate(name) => {
                let table = resolve_table(&schema, &name, keyspace)?;
                if table.is_virtual
                    || schema
                        .keyspace(&table.keyspace)
                        .is_some_and(|k| k.is_system)
                {
                    return Err(ErrorResponse::unauthorized(format!(
                        "Cannot TRUNCATE system table {}.{}",
                        table.keyspace, table.name
                    )));
                }
                (
                    CqlStatement::Truncate(table),
                    Vec::new(),
                    Vec::new(),
                    Vec::new(),
                )
            }
            Statement::Describe(d) => (
                CqlStatement::Describe(d),
                Vec::new(),
                Vec::new(),
                describe_columns(),
            ),
            Statement::Unsupported(what) => {
                return Err(ErrorResponse::invalid(format!(
                    "{what} statements are not supported by Tessera"
                )));
            }
            ddl => {
                if !markers.is_empty() {
                    return Err(ErrorResponse::invalid(
                        "Bind variables are not allowed in schema statements",
                    ));
                }
                (CqlStatement::Ddl(ddl), Vec::new(), Vec::new(), Vec::new())
            }
        };
        Ok(Prepared {
            id: statement_id(query, keyspace),
            query: query.to_string(),
            keyspace: keyspace.map(str::to_string),
            schema_version: schema.version,
            statement,
            bind_markers: markers,
            bind_specs,
            pk_indexes,
            result_columns,
        })
    }

    fn prepare_modification(
        &self,
        s: &Statement,
        keyspace: Option<&str>,
        markers: &[Option<String>],
    ) -> Result<(ModificationStatement, Vec<ColumnSpec>), ErrorResponse> {
        let mut specs = vec![None; markers.len()];
        let (stmt, _) = self.prepare_modification_with(s, keyspace, markers, &mut specs)?;
        let mut binds = BindCollector::new("", "", markers);
        binds.specs = specs;
        Ok((stmt, binds.finish()?))
    }

    fn prepare_modification_with(
        &self,
        s: &Statement,
        keyspace: Option<&str>,
        markers: &[Option<String>],
        specs: &mut Vec<Option<ColumnSpec>>,
    ) -> Result<(ModificationStatement, ()), ErrorResponse> {
        let schema = self.migrations.schema();
        let name = match s {
            Statement::Insert(i) => &i.table,
            Statement::Update(u) => &u.table,
            Statement::Delete(d) => &d.table,
            _ => {
                return Err(ErrorResponse::invalid(
                    "Only INSERT, UPDATE and DELETE are allowed in a batch",
                ))
            }
        };
        let table = resolve_table(&schema, name, keyspace)?;
        if table.is_virtual
            || schema
                .keyspace(&table.keyspace)
                .is_some_and(|k| k.is_system)
        {
            return Err(ErrorResponse::unauthorized(format!(
                "{}.{} is a system table and cannot be modified",
                table.keyspace, table.name
            )));
        }
        let mut binds = BindCollector::new(&table.keyspace, &table.name, markers);
        binds.specs = std::mem::take(specs);
        let stmt = match s {
            Statement::Insert(i) => {
                ModificationStatement::prepare_insert(table.clone(), i, &mut binds)?
            }
            Statement::Update(u) => {
                ModificationStatement::prepare_update(table.clone(), u, &mut binds)?
            }
            Statement::Delete(d) => {
                ModificationStatement::prepare_delete(table.clone(), d, &mut binds)?
            }
            _ => unreachable!("checked above"),
        };
        *specs = binds.specs;
        Ok((stmt, ()))
    }

    /// PREPARE: parses, resolves and caches.
    pub fn prepare(
        &self,
        query: &str,
        keyspace: Option<&str>,
        state: &ClientState,
    ) -> Result<Rc<Prepared>, ErrorResponse> {
        let ks = keyspace.or(state.keyspace.as_deref());
        let id = statement_id(query, ks);
        if let Some(p) = self.prepared.borrow().get(&id) {
            if p.schema_version == self.migrations.schema().version {
                return Ok(p.clone());
            }
        }
        let parsed = parse_statement(query).map_err(syntax)?;
        let prepared = Rc::new(self.prepare_parsed(parsed, ks, query)?);
        let mut cache = self.prepared.borrow_mut();
        if cache.len() >= PREPARED_CACHE_CAPACITY {
            if let Some(k) = cache.keys().next().cloned() {
                cache.remove(&k);
            }
        }
        cache.insert(id, prepared.clone());
        Ok(prepared)
    }

    /// QUERY: an unprepared statement.
    pub async fn query(
        &self,
        query: &str,
        params: &QueryParameters,
        state: &mut ClientState,
    ) -> Result<ExecResult, ErrorResponse> {
        let parsed = parse_statement(query).map_err(syntax)?;
        let ks = params.keyspace.clone().or_else(|| state.keyspace.clone());
        let prepared = self.prepare_parsed(parsed, ks.as_deref(), query)?;
        let values = order_values(&prepared, params)?;
        self.run(&prepared, &values, params, state).await
    }

    /// EXECUTE: a statement prepared before, re-prepared if the schema changed.
    pub async fn execute(
        &self,
        id: &Bytes,
        params: &QueryParameters,
        state: &mut ClientState,
    ) -> Result<ExecResult, ErrorResponse> {
        let found = self.prepared.borrow().get(id).cloned();
        let Some(mut prepared) = found else {
            return Err(ErrorResponse::unprepared(id.clone()));
        };
        if prepared.schema_version != self.migrations.schema().version {
            let parsed = parse_statement(&prepared.query).map_err(syntax)?;
            let fresh = Rc::new(self.prepare_parsed(
                parsed,
                prepared.keyspace.as_deref(),
                &prepared.query,
            )?);
            if fresh.result_columns != prepared.result_columns
                || fresh.bind_specs != prepared.bind_specs
            {
                // The table changed shape (ALTER TABLE): like Cassandra, forget the
                // statement so the client re-prepares and learns the new metadata. A
                // client that skips result metadata (gocql) would otherwise decode the
                // new rows with the old columns.
                self.prepared.borrow_mut().remove(id);
                return Err(ErrorResponse::unprepared(id.clone()));
            }
            self.prepared.borrow_mut().insert(id.clone(), fresh.clone());
            prepared = fresh;
        }
        let values = order_values(&prepared, params)?;
        self.run(&prepared, &values, params, state).await
    }

    /// Looks up a prepared statement (for the transport's metadata).
    pub fn get_prepared(&self, id: &Bytes) -> Option<Rc<Prepared>> {
        self.prepared.borrow().get(id).cloned()
    }

    /// Writes a traced request's `system_traces.sessions` row and its
    /// `system_traces.events` rows (kept `TRACE_TTL` seconds, as Cassandra's
    /// `tracing_ttl`), before the response carrying the session id leaves.
    pub async fn record_trace(&self, t: &TraceSession) -> Result<(), ErrorResponse> {
        let q = |s: &str| s.replace('\'', "''");
        let id = proto::value::format_uuid(&t.session_id);
        let params: Vec<String> = t
            .parameters
            .iter()
            .map(|(k, v)| format!("'{}': '{}'", q(k), q(v)))
            .collect();
        let mut stmts = vec![format!(
            "INSERT INTO system_traces.sessions (session_id, client, command, coordinator, \
             coordinator_port, duration, parameters, request, started_at) VALUES ({id}, '{}', \
             'QUERY', '{}', {}, {}, {{{}}}, '{}', {}) USING TTL {TRACE_TTL}",
            t.client,
            t.coordinator.ip(),
            t.coordinator.port(),
            t.duration_micros,
            params.join(", "),
            q(&t.request),
            t.started_at_millis,
        )];
        for (activity, elapsed) in &t.events {
            stmts.push(format!(
                "INSERT INTO system_traces.events (session_id, event_id, activity, source, \
                 source_elapsed, source_port, thread) VALUES ({id}, {}, '{}', '{}', {elapsed}, \
                 {}, 'shard') USING TTL {TRACE_TTL}",
                proto::value::format_uuid(&super::functions::now_timeuuid()),
                q(activity),
                t.coordinator.ip(),
                t.coordinator.port(),
            ));
        }
        for cql in &stmts {
            // system_traces is written by the node only: no client-facing checks.
            let parsed = parse_statement(cql).map_err(syntax)?;
            let Statement::Insert(ins) = &parsed.statement else {
                return Err(ErrorResponse::server("trace statement is not an INSERT"));
            };
            let table = resolve_table(&self.migrations.schema(), &ins.table, None)?;
            let mut binds = BindCollector::new(&table.keyspace, &table.name, &[]);
            let stmt = ModificationStatement::prepare_insert(table.clone(), ins, &mut binds)?;
            let ctx = EvalCtx {
                values: &[],
                now_micros: crate::service::client_state::now_micros(),
            };
            let mut muts = Vec::new();
            stmt.mutations(&ctx, self.timestamps.next(), None, &mut muts)?;
            let ks = self.proxy.keyspace(&table.keyspace)?;
            self.proxy.mutate(&ks, muts, Consistency::One).await?;
        }
        Ok(())
    }

    async fn run(
        &self,
        p: &Prepared,
        values: &[Value],
        params: &QueryParameters,
        state: &mut ClientState,
    ) -> Result<ExecResult, ErrorResponse> {
        let now_micros = match params.now_in_seconds {
            Some(s) => s as i64 * 1_000_000,
            None => crate::service::client_state::now_micros(),
        };
        let ctx = EvalCtx { values, now_micros };
        match &p.statement {
            CqlStatement::Select(sel) => {
                let opts = SelectOptions {
                    ctx,
                    consistency: params.consistency,
                    page_size: params.effective_page_size(),
                    paging_state: params.paging_state.as_deref(),
                };
                Ok(ExecResult::Rows(sel.execute(&self.proxy, &opts).await?))
            }
            CqlStatement::Modification(m) => {
                let ks = self.proxy.keyspace(&m.table.keyspace)?;
                let conditional = !matches!(m.lwt, Lwt::None);
                if conditional
                    && matches!(
                        params.consistency,
                        Consistency::Serial | Consistency::LocalSerial
                    )
                {
                    return Err(ErrorResponse::invalid(
                        "SERIAL is not supported as conditional update commit consistency. Use ANY if you mean \"make sure it is accepted but I don't care how many replicas commit it for non-SERIAL reads\"",
                    ));
                }
                // A conditional update takes its timestamp from the node (the
                // Paxos ballot in Cassandra); the driver's default one is ignored.
                let ts = match params.timestamp {
                    Some(t) if !conditional => t,
                    _ => self.timestamps.next(),
                };
                // Read-before-write (conditions, counters, list elements):
                // one read-check-write on the shard owning each partition,
                // wherever the request arrived (statements/modification.rs).
                if m.requires_read() {
                    let cl = if conditional && params.consistency == Consistency::Any {
                        Consistency::One
                    } else {
                        params.consistency
                    };
                    return Ok(
                        match m
                            .execute_read_write(
                                &self.proxy,
                                &ks,
                                &ctx,
                                ts,
                                cl,
                                serial_of(params.serial_consistency),
                            )
                            .await?
                        {
                            Some(rs) => ExecResult::Rows(rs),
                            None => ExecResult::Void,
                        },
                    );
                }
                let existing: Option<Existing> = None;
                let mut result = ExecResult::Void;
                if conditional {
                    let (applied, rs) = m.check_conditions(
                        &ctx,
                        existing.as_ref().unwrap_or(&Existing::default()),
                    )?;
                    result = ExecResult::Rows(rs);
                    if !applied {
                        return Ok(result);
                    }
                }
                let mut muts = Vec::new();
                m.mutations(&ctx, ts, existing.as_ref(), &mut muts)?;
                let cl = if conditional && params.consistency == Consistency::Any {
                    Consistency::One
                } else {
                    params.consistency
                };
                self.proxy.mutate(&ks, muts, cl).await?;
                Ok(result)
            }
            CqlStatement::Batch {
                kind,
                timestamp,
                statements,
            } => {
                let ts = match batch_timestamp(timestamp.as_ref(), &ctx)? {
                    Some(t) => t,
                    None => params.timestamp.unwrap_or_else(|| self.timestamps.next()),
                };
                if statements.iter().any(|s| s.requires_read()) {
                    let stmts: Vec<&ModificationStatement> = statements.iter().collect();
                    let ts = self.conditional_batch_timestamp(&stmts, timestamp.is_some(), ts)?;
                    let pairs: Vec<_> = statements
                        .iter()
                        .map(|s| (s, EvalCtx { values, now_micros }))
                        .collect();
                    return Ok(
                        match execute_with_reads(
                            &self.proxy,
                            *kind,
                            &pairs,
                            ts,
                            params.consistency,
                            serial_of(params.serial_consistency),
                        )
                        .await?
                        {
                            Some(rs) => ExecResult::Rows(rs),
                            None => ExecResult::Void,
                        },
                    );
                }
                let mut pairs: Vec<(&ModificationStatement, EvalCtx<'_>, Option<Existing>)> =
                    Vec::with_capacity(statements.len());
                for s in statements {
                    let c = EvalCtx { values, now_micros };
                    let existing = self.read_for_batch(s, &c).await?;
                    pairs.push((s, c, existing));
                }
                let muts = batch_mutations(*kind, &pairs, ts)?;
                self.apply_batch(statements.iter().collect(), muts, params.consistency, *kind)
                    .await?;
                Ok(ExecResult::Void)
            }
            CqlStatement::Use(ks) => {
                if self.migrations.schema().keyspace(ks).is_none() {
                    return Err(ErrorResponse::invalid(format!(
                        "Keyspace '{ks}' does not exist"
                    )));
                }
                state.keyspace = Some(ks.clone());
                Ok(ExecResult::SetKeyspace(ks.clone()))
            }
            CqlStatement::Truncate(t) => {
                self.proxy.truncate(t).await?;
                Ok(ExecResult::Void)
            }
            CqlStatement::Describe(d) => {
                let schema = self.migrations.schema();
                let local = self.migrations.local_info();
                let out = crate::schema::describe(
                    &schema,
                    d,
                    state.keyspace.as_deref(),
                    &local,
                    &self.migrations.peers(),
                )
                .map_err(|e| crate::service::migration_manager::schema_error(&e))?;
                let columns = out
                    .columns()
                    .into_iter()
                    .map(|(n, ty)| ColumnSpec {
                        keyspace: String::new(),
                        table: String::new(),
                        name: n.to_string(),
                        ty,
                    })
                    .collect();
                let rows = out
                    .rows()
                    .into_iter()
                    .map(|r| {
                        r.into_iter()
                            .map(|v| {
                                v.map(|v| {
                                    let mut b = Vec::new();
                                    proto::value::serialize(&v, &mut b);
                                    Bytes::from(b)
                                })
                            })
                            .collect()
                    })
                    .collect();
                Ok(ExecResult::Rows(ResultSet {
                    columns,
                    rows,
                    paging_state: None,
                }))
            }
            CqlStatement::Ddl(stmt) => {
                match self
                    .migrations
                    .announce(stmt, state.keyspace.as_deref())
                    .await?
                {
                    Some(ev) => Ok(ExecResult::SchemaChange(ev)),
                    None => Ok(ExecResult::Void),
                }
            }
        }
    }

    /// The timestamp of a batch: a conditional batch takes the node's (the
    /// driver's default one is ignored, as for a conditional statement) and
    /// refuses `USING TIMESTAMP`.
    fn conditional_batch_timestamp(
        &self,
        stmts: &[&ModificationStatement],
        explicit: bool,
        ts: i64,
    ) -> Result<i64, ErrorResponse> {
        if !stmts.iter().any(|s| !matches!(s.lwt, Lwt::None)) {
            return Ok(ts);
        }
        if explicit {
            return Err(ErrorResponse::invalid(
                "Cannot provide custom timestamp for conditional BATCH",
            ));
        }
        Ok(self.timestamps.next())
    }

    /// Reads the current content of the partitions `m` writes.
    async fn read_existing(
        &self,
        m: &ModificationStatement,
        ctx: &EvalCtx<'_>,
        ks: &crate::schema::KeyspaceMetadata,
    ) -> Result<Existing, ErrorResponse> {
        let cmd = engine::read::ReadCommand::full(super::statements::now_seconds(ctx.now_micros));
        let mut parts = Vec::new();
        for key in m.partition_keys(ctx)? {
            if let Some(p) = self
                .proxy
                .read_partition(ks, &m.table, &key, &cmd, Consistency::One)
                .await?
            {
                parts.push(p);
            }
        }
        Ok(Existing { parts })
    }

    async fn read_for_batch(
        &self,
        m: &ModificationStatement,
        ctx: &EvalCtx<'_>,
    ) -> Result<Option<Existing>, ErrorResponse> {
        if !m.requires_read() || !matches!(m.lwt, Lwt::None) {
            return Ok(None);
        }
        let ks = self.proxy.keyspace(&m.table.keyspace)?;
        Ok(Some(self.read_existing(m, ctx, &ks).await?))
    }

    async fn apply_batch(
        &self,
        stmts: Vec<&ModificationStatement>,
        muts: Vec<engine::mutation::Mutation>,
        cl: Consistency,
        kind: BatchKind,
    ) -> Result<(), ErrorResponse> {
        let mut by_table: HashMap<[u8; 16], Arc<crate::schema::KeyspaceMetadata>> = HashMap::new();
        for s in &stmts {
            by_table.insert(s.table.id, self.proxy.keyspace(&s.table.keyspace)?);
        }
        let pairs = muts
            .into_iter()
            .map(|m| {
                let ks = by_table
                    .get(&m.table)
                    .cloned()
                    .ok_or_else(|| ErrorResponse::server("batch table vanished"))?;
                Ok((ks, m))
            })
            .collect::<Result<Vec<_>, ErrorResponse>>()?;
        self.proxy.mutate_many(pairs, cl, kind).await
    }

    /// BATCH request: statements given as text or prepared ids.
    pub async fn batch(
        &self,
        req: &BatchRequest,
        state: &mut ClientState,
    ) -> Result<ExecResult, ErrorResponse> {
        let kind = match req.kind {
            0 => BatchKind::Logged,
            1 => BatchKind::Unlogged,
            2 => BatchKind::Counter,
            k => {
                return Err(ErrorResponse::protocol(format!(
                    "Invalid BATCH message type {k}"
                )))
            }
        };
        if req.statements.is_empty() {
            return Err(ErrorResponse::invalid("Empty batch"));
        }
        let ks = req.keyspace.clone().or_else(|| state.keyspace.clone());
        let mut prepared = Vec::with_capacity(req.statements.len());
        for s in &req.statements {
            let p = match &s.kind {
                BatchQueryKind::Query(q) => {
                    let parsed = parse_statement(q).map_err(syntax)?;
                    Rc::new(self.prepare_parsed(parsed, ks.as_deref(), q)?)
                }
                BatchQueryKind::Prepared(id) => {
                    let found = self.prepared.borrow().get(id).cloned();
                    match found {
                        Some(p) if p.schema_version == self.migrations.schema().version => p,
                        Some(p) => {
                            let parsed = parse_statement(&p.query).map_err(syntax)?;
                            Rc::new(self.prepare_parsed(parsed, p.keyspace.as_deref(), &p.query)?)
                        }
                        None => return Err(ErrorResponse::unprepared(id.clone())),
                    }
                }
            };
            if !matches!(p.statement, CqlStatement::Modification(_)) {
                return Err(ErrorResponse::invalid("Invalid statement in batch: only UPDATE, INSERT and DELETE statements are allowed."));
            }
            if s.values.len() != p.bind_specs.len() {
                return Err(ErrorResponse::invalid(format!(
                    "There were {} markers(?) in CQL but {} bound variables",
                    p.bind_specs.len(),
                    s.values.len()
                )));
            }
            prepared.push(p);
        }
        let now_micros = match req.now_in_seconds {
            Some(s) => s as i64 * 1_000_000,
            None => crate::service::client_state::now_micros(),
        };
        let ts = req.timestamp.unwrap_or_else(|| self.timestamps.next());
        let stmts: Vec<&ModificationStatement> = prepared
            .iter()
            .map(|p| match &p.statement {
                CqlStatement::Modification(m) => m,
                _ => unreachable!("checked above"),
            })
            .collect();
        validate_batch(kind, &stmts, false)?;
        if stmts.iter().any(|s| s.requires_read()) {
            let ts = self.conditional_batch_timestamp(&stmts, false, ts)?;
            let pairs: Vec<_> = stmts
                .iter()
                .zip(&req.statements)
                .map(|(m, s)| {
                    (
                        *m,
                        EvalCtx {
                            values: &s.values,
                            now_micros,
                        },
                    )
                })
                .collect();
            return Ok(
                match execute_with_reads(
                    &self.proxy,
                    kind,
                    &pairs,
                    ts,
                    req.consistency,
                    serial_of(req.serial_consistency),
                )
                .await?
                {
                    Some(rs) => ExecResult::Rows(rs),
                    None => ExecResult::Void,
                },
            );
        }
        let mut pairs: Vec<(&ModificationStatement, EvalCtx<'_>, Option<Existing>)> =
            Vec::with_capacity(stmts.len());
        for (m, s) in stmts.iter().zip(&req.statements) {
            let c = EvalCtx {
                values: &s.values,
                now_micros,
            };
            let existing = self.read_for_batch(m, &c).await?;
            pairs.push((*m, c, existing));
        }
        let muts = batch_mutations(kind, &pairs, ts)?;
        self.apply_batch(stmts, muts, req.consistency, kind).await?;
        Ok(ExecResult::Void)
    }
}

/// The serial consistency of a request: SERIAL unless the client named one
/// (an invalid one is refused by the Paxos coordinator).
fn serial_of(c: Option<Consistency>) -> Consistency {
    c.unwrap_or(Consistency::Serial)
}

/// Cassandra-style statement id: MD5 of keyspace and query text.
pub fn statement_id(query: &str, keyspace: Option<&str>) -> Bytes {
    let mut data = Vec::with_capacity(query.len() + 32);
    if let Some(ks) = keyspace {
        data.extend_from_slice(ks.as_bytes());
    }
    data.extend_from_slice(query.as_bytes());
    Bytes::copy_from_slice(&crate::schema::digest::md5(&data))
}

/// Puts bound values in marker order (named values are matched by name).
fn order_values(p: &Prepared, params: &QueryParameters) -> Result<Vec<Value>, ErrorResponse> {
    let n = p.bind_specs.len();
    match &params.names {
        None => {
            if params.values.len() != n {
                return Err(ErrorResponse::invalid(format!(
                    "There were {n} markers(?) in CQL but {} bound variables",
                    params.values.len()
                )));
            }
            Ok(params.values.clone())
        }
        Some(names) => {
            let mut out = Vec::with_capacity(n);
            for spec in &p.bind_specs {
                let pos = names
                    .iter()
                    .position(|x| x == &spec.name || x.eq_ignore_ascii_case(&spec.name));
                match pos {
                    Some(i) => out.push(params.values.get(i).cloned().unwrap_or(Value::NotSet)),
                    None => {
                        return Err(ErrorResponse::invalid(format!(
                            "No value was bound for {}",
                            spec.name
                        )))
                    }
                }
            }
            Ok(out)
        }
    }
}

/// The keyspace a QUERY runs in (for error messages).
pub fn effective_keyspace<'a>(
    name: &'a ast::QualifiedName,
    state: &'a ClientState,
) -> Result<&'a str, ErrorResponse> {
    keyspace_of(name, state.keyspace.as_deref())
}
