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
use crate::schema::{DdlContext, LocalNodeInfo, Schema, SchemaChangeEvent, SchemaError, TableMetadata};
use crate::service::client_state::now_micros;
use crate::service::storage_proxy::NodeInfoSource;
use crate::transport::events::EventBus;

/// Maps a schema error to its protocol error.
pub fn schema_error(e: &SchemaError) -> ErrorResponse {
    match e {
        SchemaError::AlreadyExists { keyspace, table, message } => {
            ErrorResponse::new(DbError::AlreadyExists { keyspace: keyspace.clone(), table: table.clone() }, message.clone())
        }
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
}

impl MigrationManager {
    pub fn new(schema: Schema, db: Rc<RefCell<Database>>, local: LocalNodeInfo, events: Rc<EventBus>, schema_dir: Option<PathBuf>) -> Self {
        {
            let mut d = db.borrow_mut();
            for ks in schema.keyspaces.values() {
                for t in ks.tables.values() {
                    if !t.is_virtual && !d.has_table(&t.id) {
                        d.create_table(Arc::new(engine_schema(t)));
                    }
                }
            }
        }
        MigrationManager { schema: RefCell::new(Arc::new(schema)), db, local: RefCell::new(local), events, schema_dir }
    }

    pub fn schema(&self) -> Arc<Schema> {
        self.schema.borrow().clone()
    }

    pub fn local_info(&self) -> LocalNodeInfo {
        self.local.borrow().clone()
    }

    /// Applies a DDL statement; returns the event (None for a no-op).
    pub async fn announce(&self, stmt: &Statement, keyspace: Option<&str>) -> Result<Option<SchemaChangeEvent>, ErrorResponse> {
        let old = self.schema();
        let local_dc = self.local.borrow().data_center.clone();
        let ctx = DdlContext { now_micros: now_micros(), known_datacenters: vec![local_dc.clone()], local_dc };
        let (new, event) = old.apply_ddl(stmt, keyspace, &ctx).map_err(|e| schema_error(&e))?;
        if event.is_none() {
            return Ok(None);
        }
        if let Some(dir) = &self.schema_dir {
            new.save(dir).map_err(|e| ErrorResponse::server(format!("failed to persist schema: {e}")))?;
        }
        self.sync_engine(&old, &new);
        *self.schema.borrow_mut() = Arc::new(new);
        if let Some(ev) = &event {
            self.events.schema_changed(ev);
        }
        Ok(event)
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
                let kept = new.table(&t.keyspace, &t.name).is_some_and(|n| n.id == t.id);
                if !kept && !t.is_virtual {
                    db.drop_table(&t.id);
                }
            }
        }
    }

    pub async fn truncate(&self, table: &TableMetadata) -> Result<(), ErrorResponse> {
        self.db.borrow_mut().truncate(&table.id);
        Ok(())
    }
}

impl NodeInfoSource for MigrationManager {
    fn schema(&self) -> Arc<Schema> {
        MigrationManager::schema(self)
    }

    fn local_dc(&self) -> String {
        self.local.borrow().data_center.clone()
    }

    fn virtual_rows(&self, schema: &Schema, keyspace: &str, table: &str) -> Option<Vec<Vec<Option<CqlValue>>>> {
        let local = self.local.borrow();
        crate::schema::virtual_table_rows(schema, &local, &[], keyspace, table)
    }
}
