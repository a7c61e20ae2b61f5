//! Schema changes: applies DDL to the schema, keeps the engine's tables in
//! step, persists the schema and announces the change to clients.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use engine::Database;
use proto::error::{DbError, ErrorResponse};
use proto::value::CqlValue;

use crate::cql3::ast::Statement;
use crate::cql3::statements::engine_schema;
use crate::schema::{DdlContext, LocalNodeInfo, Schema, SchemaChangeEvent, SchemaError};
use crate::service::client_state::now_micros;
use crate::service::storage_proxy::NodeInfoSource;
use crate::shard::{ShardContext, ShardError};
use crate::transport::events::EventBus;

/// Maps a failure to reach another shard.
pub fn shard_error(e: ShardError) -> ErrorResponse {
    match e {
        ShardError::Overloaded => ErrorResponse::overloaded(format!("{e}")),
        e => ErrorResponse::server(format!("cross-shard call failed: {e}")),
    }
}

/// Maps a schema error to its protocol error.
pub fn schema_error(e: &SchemaError) -> ErrorResponse {
    match e {
        SchemaError::AlreadyExists {
            keyspace,
            table,
            message,
        } => ErrorResponse::new(
            DbError::AlreadyExists {
                keyspace: keyspace.clone(),
                table: table.clone(),
            },
            message.clone(),
        ),
        SchemaError::Invalid(m) => ErrorResponse::invalid(m.clone()),
        SchemaError::Config(m) => ErrorResponse::config(m.clone()),
        SchemaError::Syntax(m) => ErrorResponse::syntax(m.clone()),
        SchemaError::Unauthorized(m) => ErrorResponse::unauthorized(m.clone()),
    }
}

/// Owns the node's schema (on this shard).
pub struct MigrationManager {
    schema: RefCell<Arc<Schema>>,
    db: Rc<RefCell<Database>>,
    local: RefCell<LocalNodeInfo>,
    events: Rc<EventBus>,
    /// Where the schema is persisted (`None`: not persisted).
    schema_dir: Option<PathBuf>,
    /// The shard this instance lives on (`None` outside a shard runtime).
    ctx: Option<ShardContext>,
    /// Serialises DDL on shard 0, where every schema change is made.
    ddl_lock: glommio::sync::Semaphore,
    /// The other nodes, for `system.peers`.
    peers: RefCell<Vec<crate::schema::PeerInfo>>,
    /// Datacenters known to the cluster (NetworkTopologyStrategy checks).
    known_dcs: RefCell<Vec<String>>,
    /// Called on shard 0 after a local schema change (cluster propagation).
    on_change: RefCell<Option<Rc<dyn Fn(Arc<Schema>)>>>,
}

impl MigrationManager {
    pub fn new(
        schema: Schema,
        db: Rc<RefCell<Database>>,
        local: LocalNodeInfo,
        events: Rc<EventBus>,
        schema_dir: Option<PathBuf>,
        ctx: Option<ShardContext>,
    ) -> Self {
        {
            let mut d = db.borrow_mut();
            for ks in schema.keyspaces.values() {
                for t in ks.tables.values() {
                    if !t.is_virtual && !d.has_table(&t.id) {
                        d.create_table(Arc::new(engine_schema(t)));
                    }
                }
            }
            // Hidden local index tables (before commitlog replay, which
            // routes their mutations to them).
            crate::index::create_index_tables(&mut d, &schema);
        }
        MigrationManager {
            schema: RefCell::new(Arc::new(schema)),
            db,
            local: RefCell::new(local),
            events,
            schema_dir,
            ctx,
            ddl_lock: glommio::sync::Semaphore::new(1),
            peers: RefCell::new(Vec::new()),
            known_dcs: RefCell::new(Vec::new()),
            on_change: RefCell::new(None),
        }
    }

    pub fn schema(&self) -> Arc<Schema> {
        self.schema.borrow().clone()
    }

    pub fn local_info(&self) -> LocalNodeInfo {
        self.local.borrow().clone()
    }

    /// Applies a DDL statement; returns the event (None for a no-op).
    ///
    /// Every schema change is made on shard 0 (one at a time), persisted,
    /// then installed on every shard before the statement is answered.
    pub async fn announce(
        &self,
        stmt: &Statement,
        keyspace: Option<&str>,
    ) -> Result<Option<SchemaChangeEvent>, ErrorResponse> {
        match &self.ctx {
            Some(ctx) if ctx.id() != 0 => {
                let stmt = stmt.clone();
                let keyspace = keyspace.map(str::to_string);
                ctx.shards()
                    .invoke_on(0, move |ctx| async move {
                        let s = crate::node::services(&ctx)?;
                        s.migrations
                            .announce_local(&stmt, keyspace.as_deref())
                            .await
                    })
                    .await
                    .map_err(shard_error)?
            }
            _ => self.announce_local(stmt, keyspace).await,
        }
    }

    async fn announce_local(
        &self,
        stmt: &Statement,
        keyspace: Option<&str>,
    ) -> Result<Option<SchemaChangeEvent>, ErrorResponse> {
        let _permit = self
            .ddl_lock
            .acquire_permit(1)
            .await
            .map_err(|e| ErrorResponse::server(format!("schema lock: {e}")))?;
        let old = self.schema();
        let local_dc = self.local.borrow().data_center.clone();
        let mut known = self.known_dcs.borrow().clone();
        if !known.contains(&local_dc) {
            known.push(local_dc.clone());
        }
        let ctx = DdlContext {
            now_micros: now_micros(),
            known_datacenters: known,
            local_dc,
        };
        let now = ctx.now_micros;
        let (mut new, event) = old
            .apply_ddl(stmt, keyspace, &ctx)
            .map_err(|e| schema_error(&e))?;
        if event.is_none() {
            return Ok(None);
        }
        new.stamp_changes(&old, now);
        if let Some(dir) = &self.schema_dir {
            new.save(dir)
                .map_err(|e| ErrorResponse::server(format!("failed to persist schema: {e}")))?;
        }
        let new = Arc::new(new);
        match &self.ctx {
            Some(ctx) if ctx.count() > 1 => {
                let ev = event.clone();
                let shared = new.clone();
                ctx.shards()
                    .invoke_on_all(move |ctx| {
                        let new = shared.clone();
                        let ev = ev.clone();
                        async move {
                            let s = crate::node::services(&ctx)?;
                            s.migrations.install(new, ev.as_ref());
                            Ok::<(), ErrorResponse>(())
                        }
                    })
                    .await
                    .map_err(shard_error)?
                    .into_iter()
                    .collect::<Result<Vec<()>, ErrorResponse>>()?;
            }
            _ => self.install(new.clone(), event.as_ref()),
        }
        let hook = self.on_change.borrow().clone();
        if let Some(hook) = hook {
            hook(new);
        }
        Ok(event)
    }

    /// Merges a schema received from another node into ours (on shard 0;
    /// last change wins per keyspace, table and type — see
    /// `schema/merge.rs`), then persists the result, installs it on every
    /// shard and tells this node's clients what changed. Returns whether
    /// our schema changed.
    pub async fn merge_remote(&self, theirs: &Schema) -> Result<bool, ErrorResponse> {
        let _permit = self
            .ddl_lock
            .acquire_permit(1)
            .await
            .map_err(|e| ErrorResponse::server(format!("schema lock: {e}")))?;
        let ours = self.schema();
        let new = ours.merge(theirs);
        if new == *ours {
            return Ok(false);
        }
        let events = crate::schema::merge::diff_events(&ours, &new);
        if let Some(dir) = &self.schema_dir {
            new.save(dir)
                .map_err(|e| ErrorResponse::server(format!("failed to persist schema: {e}")))?;
        }
        let new = Arc::new(new);
        let events = Arc::new(events);
        match &self.ctx {
            Some(ctx) if ctx.count() > 1 => {
                ctx.shards()
                    .invoke_on_all(move |ctx| {
                        let new = new.clone();
                        let events = events.clone();
                        async move {
                            if let Ok(s) = crate::node::services(&ctx) {
                                s.migrations.install_all(new, &events);
                            }
                        }
                    })
                    .await
                    .map_err(shard_error)?;
            }
            _ => self.install_all(new, &events),
        }
        Ok(true)
    }

    /// Makes `new` this shard's schema and sends each of `events` to this
    /// shard's clients.
    pub fn install_all(&self, new: Arc<Schema>, events: &[SchemaChangeEvent]) {
        self.install(new, None);
        for ev in events {
            self.events.schema_changed(ev);
        }
    }

    /// Sets what this node knows of the others (for `system.peers` and DDL checks).
    pub fn set_cluster_view(&self, peers: Vec<crate::schema::PeerInfo>, dcs: Vec<String>) {
        *self.peers.borrow_mut() = peers;
        *self.known_dcs.borrow_mut() = dcs;
    }

    /// The other nodes as last seen by gossip.
    pub fn peers(&self) -> Vec<crate::schema::PeerInfo> {
        self.peers.borrow().clone()
    }

    /// Registers the hook called after each local schema change (shard 0).
    pub fn set_on_change(&self, f: Rc<dyn Fn(Arc<Schema>)>) {
        *self.on_change.borrow_mut() = Some(f);
    }

    /// Makes `new` this shard's schema and tells this shard's clients.
    pub fn install(&self, new: Arc<Schema>, event: Option<&SchemaChangeEvent>) {
        let old = self.schema();
        self.sync_engine(&old, &new);
        *self.schema.borrow_mut() = new;
        if let Some(ev) = event {
            self.events.schema_changed(ev);
        }
    }

    /// Creates, alters and drops engine tables to match `new`.
    fn sync_engine(&self, old: &Schema, new: &Schema) {
        let mut db = self.db.borrow_mut();
        for ks in new.keyspaces.values() {
            for t in ks.tables.values() {
                if t.is_virtual {
                    continue;
                }
                match old.table(&t.keyspace, &t.name) {
                    Some(o) if o.id == t.id => {
                        if **o != **t {
                            db.alter_table(Arc::new(engine_schema(t)));
                        }
                    }
                    _ => db.create_table(Arc::new(engine_schema(t))),
                }
            }
        }
        for ks in old.keyspaces.values() {
            for t in ks.tables.values() {
                let kept = new
                    .table(&t.keyspace, &t.name)
                    .is_some_and(|n| n.id == t.id);
                if !kept && !t.is_virtual {
                    db.drop_table(&t.id);
                }
            }
        }
        // Local secondary index tables: created (and built from this
        // shard's data) or dropped with their index or base table.
        crate::index::sync_index_tables(&mut db, old, new);
    }
}

impl NodeInfoSource for MigrationManager {
    fn schema(&self) -> Arc<Schema> {
        MigrationManager::schema(self)
    }

    fn local_dc(&self) -> String {
        self.local.borrow().data_center.clone()
    }

    fn virtual_rows(
        &self,
        schema: &Schema,
        keyspace: &str,
        table: &str,
    ) -> Option<Vec<Vec<Option<CqlValue>>>> {
        let local = self.local.borrow();
        let peers = self.peers.borrow();
        crate::schema::virtual_table_rows(schema, &local, &peers, keyspace, table)
    }
}
