//! DDL: pure functions from a [`Schema`] and a statement to a new schema and
//! the schema-change event to push to clients.
//!
//! Rules, messages and error classes are Cassandra 4.0's
//! (`cql3/statements/schema/*Statement.java`, `ClientState` for the system
//! keyspace guards). Checks happen in Cassandra's order: statement
//! preparation (duplicate declarations, missing PRIMARY KEY), then
//! authorization (system keyspaces), then the statement's `apply`.

use std::collections::BTreeMap;
use std::sync::Arc;

use proto::value::ColumnType;

use crate::cql3::ast::{
    AlterTable, AlterTableOp, AlterType, AlterTypeOp, CqlType, CreateIndex, CreateTable,
    CreateType, IndexTarget, Property, QualifiedName, Statement,
};
use crate::locator::{self, StrategyClass};

use super::options;
use super::types::{self, freeze, is_collection, is_multi_cell, maybe_quote, udt_type};
use super::{
    digest, is_local_system_keyspace, is_replicated_system_keyspace, ClusteringOrder, ColumnKind,
    ColumnMetadata, IndexMetadata, KeyspaceMetadata, ReplicationParams, Schema, SchemaError,
    TableMetadata, TableOptions, UserType,
};

/// What a DDL statement needs besides the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DdlContext {
    /// The statement's time, microseconds since the epoch (drop times).
    pub now_micros: i64,
    /// Datacenters the ring knows (NetworkTopologyStrategy options must name
    /// one of these or the local one).
    pub known_datacenters: Vec<String>,
    /// This node's datacenter.
    pub local_dc: String,
}

/// The kind of change of a `SCHEMA_CHANGE` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaChange {
    /// `CREATED`
    Created,
    /// `UPDATED`
    Updated,
    /// `DROPPED`
    Dropped,
}

/// What a schema change is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SchemaChangeTarget {
    /// `KEYSPACE ks`
    Keyspace(String),
    /// `TABLE ks table`
    Table(String, String),
    /// `TYPE ks type`
    Type(String, String),
}

/// A `SCHEMA_CHANGE` event (also the body of a `SchemaChange` result).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchemaChangeEvent {
    /// Created, updated or dropped.
    pub change: SchemaChange,
    /// The keyspace, table or type.
    pub target: SchemaChangeTarget,
}

impl SchemaChangeEvent {
    fn keyspace(change: SchemaChange, ks: &str) -> Option<SchemaChangeEvent> {
        Some(SchemaChangeEvent {
            change,
            target: SchemaChangeTarget::Keyspace(ks.to_string()),
        })
    }
    fn table(change: SchemaChange, ks: &str, t: &str) -> Option<SchemaChangeEvent> {
        Some(SchemaChangeEvent {
            change,
            target: SchemaChangeTarget::Table(ks.to_string(), t.to_string()),
        })
    }
    fn user_type(change: SchemaChange, ks: &str, t: &str) -> Option<SchemaChangeEvent> {
        Some(SchemaChangeEvent {
            change,
            target: SchemaChangeTarget::Type(ks.to_string(), t.to_string()),
        })
    }
}

/// Cassandra's `SchemaConstants.NAME_LENGTH` (4.0).
pub const NAME_LENGTH: usize = 48;

/// `SchemaConstants.isValidName`: 1..=48 characters of `[A-Za-z0-9_]`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_LENGTH
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn ire(msg: impl Into<String>) -> SchemaError {
    SchemaError::Invalid(msg.into())
}

/// The permission a statement needs, for the system keyspace guards.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Perm {
    Create,
    Alter,
    Drop,
}

impl Perm {
    fn as_str(self) -> &'static str {
        match self {
            Perm::Create => "CREATE",
            Perm::Alter => "ALTER",
            Perm::Drop => "DROP",
        }
    }
}

/// `ClientState.preventSystemKSSchemaModification`: no DDL on `system` and
/// `system_schema`; on replicated system keyspaces only `ALTER KEYSPACE`.
fn guard_system(ks: &str, table: Option<&str>, perm: Perm) -> Result<(), SchemaError> {
    if is_local_system_keyspace(ks) {
        return Err(SchemaError::Unauthorized(format!(
            "{ks} keyspace is not user-modifiable."
        )));
    }
    if is_replicated_system_keyspace(ks) {
        if perm == Perm::Alter && table.is_none() {
            return Ok(());
        }
        let resource = match table {
            Some(t) => format!("<table {ks}.{t}>"),
            None => format!("<keyspace {ks}>"),
        };
        return Err(SchemaError::Unauthorized(format!(
            "Cannot {} {resource}",
            perm.as_str()
        )));
    }
    Ok(())
}

/// `AlterSchemaStatement.execute`'s checks before `apply`.
fn check_statement_keyspace(ks: &str) -> Result<(), SchemaError> {
    if is_local_system_keyspace(ks) {
        return Err(ire(format!(
            "System keyspace '{ks}' is not user-modifiable"
        )));
    }
    if ks == "system_views" || ks == "system_virtual_schema" {
        return Err(ire(format!(
            "Virtual keyspace '{ks}' is not user-modifiable"
        )));
    }
    if !is_valid_name(ks) {
        return Err(ire(format!(
            "Keyspace name must not be empty, more than {NAME_LENGTH} characters long, or contain non-alphanumeric-underscore characters (got '{ks}')"
        )));
    }
    Ok(())
}

/// The keyspace a statement on `name` applies to.
fn statement_keyspace(name: &QualifiedName, current: Option<&str>) -> Result<String, SchemaError> {
    match (&name.keyspace, current) {
        (Some(k), _) => Ok(k.clone()),
        (None, Some(k)) => Ok(k.to_string()),
        (None, None) => Err(ire(
            "No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename",
        )),
    }
}

/// `QualifiedName.toString`: `ks.name` as written.
fn written_name(name: &QualifiedName) -> String {
    match &name.keyspace {
        Some(k) => format!("{k}.{}", name.name),
        None => name.name.clone(),
    }
}

/// A raw (unresolved) type as Cassandra's `CQL3Type.Raw.toString` prints it
/// in error messages.
fn raw_type_string(t: &CqlType) -> String {
    match t {
        CqlType::Native(c) => types::cql_type_string(c),
        CqlType::List(e) => format!("list<{}>", raw_type_string(e)),
        CqlType::Set(e) => format!("set<{}>", raw_type_string(e)),
        CqlType::Map(k, v) => format!("map<{}, {}>", raw_type_string(k), raw_type_string(v)),
        CqlType::Tuple(items) => format!(
            "tuple<{}>",
            items
                .iter()
                .map(raw_type_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        CqlType::Frozen(inner) => format!("frozen<{}>", raw_type_string(inner)),
        CqlType::UserDefined(q) => match &q.keyspace {
            Some(k) => format!("{}.{}", maybe_quote(k), maybe_quote(&q.name)),
            None => maybe_quote(&q.name),
        },
    }
}

fn raw_is_counter(t: &CqlType) -> bool {
    matches!(t, CqlType::Native(ColumnType::Counter))
}

fn raw_is_frozen(t: &CqlType) -> bool {
    matches!(t, CqlType::Frozen(_) | CqlType::Tuple(_))
}

fn raw_is_udt(t: &CqlType) -> bool {
    match t {
        CqlType::UserDefined(_) => true,
        CqlType::Frozen(inner) => raw_is_udt(inner),
        _ => false,
    }
}

fn raw_is_collection(t: &CqlType) -> bool {
    match t {
        CqlType::List(_) | CqlType::Set(_) | CqlType::Map(..) => true,
        CqlType::Frozen(inner) => raw_is_collection(inner),
        _ => false,
    }
}

/// Resolves a type written in DDL against the keyspace's user types
/// (`CQL3Type.Raw.prepare`), producing the canonical schema type.
pub fn resolve_type(
    raw: &CqlType,
    keyspace: &str,
    types: &BTreeMap<String, Arc<UserType>>,
) -> Result<ColumnType, SchemaError> {
    resolve(raw, keyspace, types, false)
}

fn resolve(
    raw: &CqlType,
    ks: &str,
    types: &BTreeMap<String, Arc<UserType>>,
    frozen: bool,
) -> Result<ColumnType, SchemaError> {
    let check_nested = |sub: &CqlType| -> Result<(), SchemaError> {
        if raw_is_counter(sub) {
            return Err(ire(format!(
                "Counters are not allowed inside collections: {}",
                raw_type_string(raw)
            )));
        }
        if !frozen && !raw_is_frozen(sub) {
            if raw_is_collection(sub) {
                return Err(ire(format!(
                    "Non-frozen collections are not allowed inside collections: {}",
                    raw_type_string(raw)
                )));
            }
            if raw_is_udt(sub) {
                return Err(ire(format!(
                    "Non-frozen UDTs are not allowed inside collections: {}",
                    raw_type_string(raw)
                )));
            }
        }
        Ok(())
    };
    let wrap = |t: ColumnType| if frozen { freeze(&t) } else { t };
    match raw {
        CqlType::Native(t) => Ok(t.clone()),
        CqlType::List(e) => {
            check_nested(e)?;
            let e = resolve(e, ks, types, frozen)?;
            Ok(wrap(ColumnType::List(Box::new(e))))
        }
        CqlType::Set(e) => {
            check_nested(e)?;
            let e = resolve(e, ks, types, frozen)?;
            if types::references_duration(&e) {
                return Err(ire(format!(
                    "Durations are not allowed inside sets: {}",
                    raw_type_string(raw)
                )));
            }
            Ok(wrap(ColumnType::Set(Box::new(e))))
        }
        CqlType::Map(k, v) => {
            check_nested(k)?;
            check_nested(v)?;
            let k = resolve(k, ks, types, frozen)?;
            if types::references_duration(&k) {
                return Err(ire(format!(
                    "Durations are not allowed as map keys: {}",
                    raw_type_string(raw)
                )));
            }
            let v = resolve(v, ks, types, frozen)?;
            Ok(wrap(ColumnType::Map(Box::new(k), Box::new(v))))
        }
        CqlType::Tuple(items) => {
            if items.iter().any(raw_is_counter) {
                return Err(ire("Counters are not allowed inside tuples"));
            }
            let items = items
                .iter()
                .map(|t| resolve(t, ks, types, true))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(freeze(&ColumnType::Tuple(items)))
        }
        CqlType::Frozen(inner) => {
            if let CqlType::Native(t) = &**inner {
                return Err(ire(format!(
                    "frozen<> is only allowed on collections, tuples, and user-defined types (got {})",
                    types::cql_type_string(t)
                )));
            }
            let t = resolve(inner, ks, types, true)?;
            Ok(freeze(&t))
        }
        CqlType::UserDefined(q) => {
            if let Some(k) = &q.keyspace {
                if k != ks {
                    return Err(ire(format!(
                        "Statement on keyspace {ks} cannot refer to a user type in keyspace {k}; user types can only be used in the keyspace they are defined in"
                    )));
                }
            }
            let ut = types
                .get(&q.name)
                .ok_or_else(|| ire(format!("Unknown type {ks}.{}", q.name)))?;
            let t = types::refresh_user_types(&udt_type(ut), types);
            Ok(wrap(t))
        }
    }
}

fn non_frozen_udt_with_multicell_field(t: &ColumnType) -> bool {
    match t {
        ColumnType::Udt { fields, .. } => fields.iter().any(|(_, f)| is_multi_cell(f)),
        _ => false,
    }
}

/// Parses keyspace properties (`KeyspaceAttributes.validate`): the
/// `replication` map and `durable_writes`.
fn keyspace_attributes(
    props: &[Property],
) -> Result<(Option<BTreeMap<String, String>>, Option<bool>), SchemaError> {
    let props = options::collect(props)?;
    options::check_known(&props, &["durable_writes", "replication"])?;
    let replication = options::get_map(&props, "replication")?.cloned();
    if let Some(r) = &replication {
        if !r.is_empty() && !r.contains_key("class") {
            return Err(SchemaError::Config(
                "Missing replication strategy class".to_string(),
            ));
        }
    }
    let durable = options::get_simple(&props, "durable_writes")?.map(options::parse_bool);
    Ok((replication, durable))
}

impl Schema {
    /// Applies one DDL statement. Returns the new schema (with a recomputed
    /// version) and the event to send, or the unchanged schema and `None`
    /// when `IF [NOT] EXISTS` made the statement a no-op.
    pub fn apply_ddl(
        &self,
        stmt: &Statement,
        current_keyspace: Option<&str>,
        ctx: &DdlContext,
    ) -> Result<(Schema, Option<SchemaChangeEvent>), SchemaError> {
        let mut next = self.clone();
        let event = match stmt {
            Statement::CreateKeyspace {
                name,
                if_not_exists,
                properties,
            } => next.create_keyspace(name, *if_not_exists, properties, ctx)?,
            Statement::AlterKeyspace {
                name,
                if_exists,
                properties,
            } => next.alter_keyspace(name, *if_exists, properties, ctx)?,
            Statement::DropKeyspace { name, if_exists } => next.drop_keyspace(name, *if_exists)?,
            Statement::CreateTable(ct) => next.create_table(ct, current_keyspace)?,
            Statement::AlterTable(at) => next.alter_table(at, current_keyspace, ctx)?,
            Statement::DropTable { name, if_exists } => {
                next.drop_table(name, *if_exists, current_keyspace)?
            }
            Statement::CreateType(ct) => next.create_type(ct, current_keyspace)?,
            Statement::AlterType(at) => next.alter_type(at, current_keyspace)?,
            Statement::DropType { name, if_exists } => {
                next.drop_type(name, *if_exists, current_keyspace)?
            }
            Statement::CreateIndex(ci) => next.create_index(ci, current_keyspace)?,
            Statement::DropIndex { name, if_exists } => {
                next.drop_index(name, *if_exists, current_keyspace)?
            }
            other => {
                return Err(ire(format!(
                    "{} is not a schema-altering statement",
                    statement_kind(other)
                )))
            }
        };
        if event.is_none() {
            return Ok((self.clone(), None));
        }
        next.recompute_version();
        Ok((next, event))
    }

    fn keyspace_mut(&mut self, ks: &str) -> &mut KeyspaceMetadata {
        Arc::make_mut(
            self.keyspaces
                .get_mut(ks)
                .expect("keyspace checked to exist"),
        )
    }

    fn create_keyspace(
        &mut self,
        name: &str,
        if_not_exists: bool,
        properties: &[Property],
        ctx: &DdlContext,
    ) -> Result<Option<SchemaChangeEvent>, SchemaError> {
        check_statement_keyspace(name)?;
        let (replication, durable) = keyspace_attributes(properties)?;
        let Some(replication) = replication.filter(|_| has_property(properties, "replication"))
        else {
            return Err(ire("Missing mandatory option 'replication'"));
        };
        if self.keyspaces.contains_key(name) {
            if if_not_exists {
                return Ok(None);
            }
            return Err(SchemaError::AlreadyExists {
                keyspace: name.to_string(),
                table: String::new(),
                message: format!("Cannot add existing keyspace \"{name}\""),
            });
        }
        let params = replication_params(name, &replication, None, ctx)?;
        self.keyspaces.insert(
            name.to_string(),
            Arc::new(KeyspaceMetadata {
                name: name.to_string(),
                replication: params,
                durable_writes: durable.unwrap_or(true),
                tables: BTreeMap::new(),
                types: BTreeMap::new(),
                is_system: false,
            }),
        );
        Ok(SchemaChangeEvent::keyspace(SchemaChange::Created, name))
    }

    fn alter_keyspace(
        &mut self,
        name: &str,
        if_exists: bool,
        properties: &[Property],
        ctx: &DdlContext,
    ) -> Result<Option<SchemaChangeEvent>, SchemaError> {
        guard_system(name, None, Perm::Alter)?;
        check_statement_keyspace(name)?;
        let (replication, durable) = keyspace_attributes(properties)?;
        let Some(ks) = self.keyspaces.get(name) else {
            if if_exists {
                return Ok(None);
            }
            return Err(ire(format!("Keyspace '{name}' doesn't exist")));
        };
        let mut new = (**ks).clone();
        if let Some(d) = durable {
            new.durable_writes = d;
        }
        if let Some(r) = replication.filter(|r| r.contains_key("class")) {
            new.replication = replication_params(name, &r, Some(&ks.replication.options), ctx)?;
        }
        if new == **ks {
            return Ok(None);
        }
        self.keyspaces.insert(name.to_string(), Arc::new(new));
        Ok(SchemaChangeEvent::keyspace(SchemaChange::Updated, name))
    }

    fn drop_keyspace(
        &mut self,
        name: &str,
        if_exists: bool,
    ) -> Result<Option<SchemaChangeEvent>, SchemaError> {
        guard_system(name, None, Perm::Drop)?;
        check_statement_keyspace(name)?;
        if self.keyspaces.remove(name).is_some() {
            return Ok(SchemaChangeEvent::keyspace(SchemaChange::Dropped, name));
        }
        if if_exists {
            return Ok(None);
        }
        Err(ire(format!("Keyspace '{name}' doesn't exist")))
    }

    fn create_table(
        &mut self,
        ct: &CreateTable,
        current: Option<&str>,
    ) -> Result<Option<SchemaChangeEvent>, SchemaError> {
        // CreateTableStatement.Raw: declaration checks.
        let shown = written_name(&ct.name);
        let mut seen = std::collections::HashSet::new();
        for c in &ct.columns {
            if !seen.insert(c.name.as_str()) {
                return Err(ire(format!(
                    "Duplicate column '{}' declaration for table '{shown}'",
                    c.name
                )));
            }
        }
        if ct.partition_key.is_empty() {
            return Err(ire(format!(
                "No PRIMARY KEY specifed for table '{shown}' (exactly one required)"
            )));
        }
        let mut seen_order = std::collections::HashSet::new();
        for (c, _) in &ct.clustering_order {
            if !seen_order.insert(c.as_str()) {
                return Err(ire(format!(
                    "Duplicate column '{c}' in CLUSTERING ORDER BY clause for table '{shown}'"
                )));
            }
        }
        let ks_name = statement_keyspace(&ct.name, current)?;
        let table_name = ct.name.name.as_str();
        guard_system(&ks_name, None, Perm::Create)?;
        check_statement_keyspace(&ks_name)?;

        let Some(ks) = self.keyspaces.get(&ks_name) else {
            return Err(ire(format!("Keyspace '{ks_name}' doesn't exist")));
        };
        if ks.tables.contains_key(table_name) {
            if ct.if_not_exists {
                return Ok(None);
            }
            return Err(SchemaError::AlreadyExists {
                keyspace: ks_name.clone(),
                table: table_name.to_string(),
                message: format!(
                    "Cannot add already existing table \"{table_name}\" to keyspace \"{ks_name}\""
                ),
            });
        }
        if ct.compact_storage {
            return Err(ire(
                "Compact tables are not allowed in Cassandra starting with 4.0 version.",
            ));
        }
        let (opts, id) = options::table_options(&TableOptions::default(), &ct.properties)?;

        // Resolve types, in name order as Cassandra does (TreeMap by bytes).
        let mut columns: BTreeMap<&str, (ColumnType, bool)> = BTreeMap::new();
        let mut by_name: Vec<_> = ct.columns.iter().collect();
        by_name.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        for c in by_name {
            let t = resolve_type(&c.ty, &ks_name, &ks.types)?;
            columns.insert(c.name.as_str(), (t, c.is_static));
        }
        for (t, _) in columns.values() {
            if non_frozen_udt_with_multicell_field(t) {
                return Err(ire(
                    "Non-frozen UDTs with nested non-frozen collections are not supported",
                ));
            }
        }
        let mut pk_seen = std::collections::HashSet::new();
        for c in ct.partition_key.iter().chain(ct.clustering_key.iter()) {
            let Some((t, is_static)) = columns.get(c.as_str()) else {
                return Err(ire(format!(
                    "Unknown column '{c}' referenced in PRIMARY KEY for table '{table_name}'"
                )));
            };
            if !pk_seen.insert(c.as_str()) {
                return Err(ire(format!(
                    "Duplicate column '{c}' in PRIMARY KEY clause for table '{table_name}'"
                )));
            }
            if is_multi_cell(t) {
                let kind = if is_collection(t) {
                    "collection"
                } else {
                    "user-defined"
                };
                return Err(ire(format!(
                    "Invalid non-frozen {kind} type {} for PRIMARY KEY column '{c}'",
                    types::cql_type_string(t)
                )));
            }
            if matches!(t, ColumnType::Counter) {
                return Err(ire(format!(
                    "counter type is not supported for PRIMARY KEY column '{c}'"
                )));
            }
            if types::references_duration(t) {
                return Err(ire(format!(
                    "duration type is not supported for PRIMARY KEY column '{c}'"
                )));
            }
            if *is_static {
                return Err(ire(format!(
                    "Static column '{c}' cannot be part of the PRIMARY KEY"
                )));
            }
        }
        // Cassandra 4.0: a CLUSTERING ORDER BY, when given, names every clustering column
        // exactly once and in PRIMARY KEY order (a missing, misplaced or non-clustering
        // column all get the same answer; duplicates were refused above).
        if !ct.clustering_order.is_empty()
            && !ct
                .clustering_order
                .iter()
                .map(|(c, _)| c)
                .eq(ct.clustering_key.iter())
        {
            return Err(ire(
                "Clustering key columns must exactly match columns in CLUSTERING ORDER BY directive",
            ));
        }
        let has_statics = columns.iter().any(|(n, (_, s))| *s && !pk_seen.contains(n));
        if ct.clustering_key.is_empty() && has_statics {
            return Err(ire(
                "Static columns are only useful (and thus allowed) if the table has at least one clustering column",
            ));
        }
        let has_counters = ct.columns.iter().any(|c| raw_is_counter(&c.ty));
        let values: Vec<(String, ColumnType, bool)> = columns
            .iter()
            .filter(|(n, _)| !pk_seen.contains(*n))
            .map(|(n, (t, s))| (n.to_string(), t.clone(), *s))
            .collect();
        if has_counters {
            if values
                .iter()
                .any(|(_, t, _)| !matches!(t, ColumnType::Counter))
            {
                return Err(ire(
                    "Cannot mix counter and non counter columns in the same table",
                ));
            }
            if opts.default_time_to_live > 0 {
                return Err(ire(
                    "Cannot set default_time_to_live on a table with counters",
                ));
            }
        }
        if !is_valid_name(table_name) {
            return Err(SchemaError::Config(format!(
                "Table name must not be empty, more than {NAME_LENGTH} characters long, or contain non-alphanumeric-underscore characters (got \"{table_name}\")"
            )));
        }
        if let Some(id) = id {
            if self.table_by_id(&id).is_some() {
                return Err(SchemaError::Config(format!(
                    "Table id {} is already used",
                    digest::uuid_to_string(&id)
                )));
            }
        }
        let pk = ct
            .partition_key
            .iter()
            .map(|c| (c.clone(), columns[c.as_str()].0.clone()))
            .collect();
        let ck = ct
            .clustering_key
            .iter()
            .map(|c| {
                let desc = ct
                    .clustering_order
                    .iter()
                    .find(|(o, _)| o == c)
                    .map(|(_, d)| *d)
                    .unwrap_or(false);
                let order = if desc {
                    ClusteringOrder::Desc
                } else {
                    ClusteringOrder::Asc
                };
                (c.clone(), columns[c.as_str()].0.clone(), order)
            })
            .collect();
        let mut table = TableMetadata::new(
            &ks_name,
            table_name,
            id.unwrap_or_else(digest::random_uuid),
            pk,
            ck,
            values,
            opts,
        );
        table.is_counter = has_counters;
        self.keyspace_mut(&ks_name)
            .tables
            .insert(table_name.to_string(), Arc::new(table));
        Ok(SchemaChangeEvent::table(
            SchemaChange::Created,
            &ks_name,
            table_name,
        ))
    }

    fn alter_table(
        &mut self,
        at: &AlterTable,
        current: Option<&str>,
        ctx: &DdlContext,
    ) -> Result<Option<SchemaChangeEvent>, SchemaError> {
        let ks_name = statement_keyspace(&at.name, current)?;
        let table_name = at.name.name.as_str();
        guard_system(&ks_name, Some(table_name), Perm::Alter)?;
        check_statement_keyspace(&ks_name)?;
        let Some(table) = self.table(&ks_name, table_name) else {
            if at.if_exists {
                return Ok(None);
            }
            return Err(ire(format!("Table '{ks_name}.{table_name}' doesn't exist")));
        };
        let ks = self.keyspaces[&ks_name].clone();
        let mut t = (**table).clone();
        let shown = t.qualified_name();
        match &at.op {
            AlterTableOp::Add {
                if_not_exists,
                columns,
            } => {
                for c in columns {
                    let ty = resolve_type(&c.ty, &ks_name, &ks.types)?;
                    if t.column(&c.name).is_some() {
                        if *if_not_exists {
                            continue;
                        }
                        return Err(ire(format!("Column with name '{}' already exists", c.name)));
                    }
                    if c.is_static && t.clustering_key_len == 0 {
                        return Err(ire("Static columns are only useful (and thus allowed) if the table has at least one clustering column"));
                    }
                    if non_frozen_udt_with_multicell_field(&ty) {
                        return Err(ire(
                            "Non-frozen UDTs with nested non-frozen collections are not supported",
                        ));
                    }
                    if let Some((dropped_ty, _)) = t.dropped_columns.get(&c.name) {
                        let was_static = t.dropped_static_columns.contains(&c.name);
                        if was_static != c.is_static {
                            let kind = |s: bool| if s { "STATIC" } else { "REGULAR" };
                            return Err(ire(format!(
                                "Cannot re-add previously dropped column '{}' of kind {}, incompatible with previous kind {}",
                                c.name,
                                kind(c.is_static),
                                kind(was_static)
                            )));
                        }
                        if &types::expand_user_types(&ty) != dropped_ty {
                            return Err(ire(format!(
                                "Cannot re-add previously dropped column '{}' of type {}, incompatible with previous type {}",
                                c.name,
                                types::cql_type_string(&ty),
                                types::cql_type_string(dropped_ty)
                            )));
                        }
                        if t.is_counter {
                            return Err(ire(format!(
                                "Cannot re-add previously dropped counter column {}",
                                c.name
                            )));
                        }
                    }
                    let is_counter = matches!(ty, ColumnType::Counter);
                    if t.is_counter && !is_counter {
                        return Err(SchemaError::Config(format!(
                            "Cannot have a non counter column (\"{}\") in a counter table",
                            c.name
                        )));
                    }
                    if !t.is_counter && is_counter {
                        return Err(SchemaError::Config(format!(
                            "Cannot have a counter column (\"{}\") in a non counter table",
                            c.name
                        )));
                    }
                    t.columns.push(ColumnMetadata {
                        name: c.name.clone(),
                        ty,
                        kind: if c.is_static {
                            ColumnKind::Static
                        } else {
                            ColumnKind::Regular
                        },
                        order: ClusteringOrder::None,
                        id: t.next_column_id,
                    });
                    t.next_column_id += 1;
                    t.sort_value_columns();
                }
            }
            AlterTableOp::Drop { if_exists, columns } => {
                for name in columns {
                    let Some(col) = t.column(name).cloned() else {
                        if *if_exists {
                            continue;
                        }
                        return Err(ire(format!(
                            "Column {} was not found in table '{shown}'",
                            maybe_quote(name)
                        )));
                    };
                    if col.kind.is_primary_key() {
                        return Err(ire(format!(
                            "Cannot drop PRIMARY KEY column {}",
                            maybe_quote(name)
                        )));
                    }
                    if matches!(col.ty, ColumnType::Udt { .. }) {
                        return Err(ire(format!(
                            "Cannot drop non-frozen column {} of user type {}",
                            maybe_quote(name),
                            types::cql_type_string(&col.ty)
                        )));
                    }
                    let dependent: Vec<&str> = t
                        .indexes
                        .iter()
                        .filter(|i| index_depends_on(i, name))
                        .map(|i| i.name.as_str())
                        .collect();
                    if !dependent.is_empty() {
                        return Err(ire(format!(
                            "Cannot drop column {} because it has dependent secondary indexes ({})",
                            maybe_quote(name),
                            dependent.join(", ")
                        )));
                    }
                    t.columns.retain(|c| &c.name != name);
                    t.dropped_columns.insert(
                        name.clone(),
                        (types::expand_user_types(&col.ty), ctx.now_micros),
                    );
                    if col.kind == ColumnKind::Static {
                        t.dropped_static_columns.insert(name.clone());
                    } else {
                        t.dropped_static_columns.remove(name);
                    }
                }
            }
            AlterTableOp::Rename(pairs) => {
                for (old, new) in pairs {
                    let Some(idx) = t.column_index(old) else {
                        return Err(ire(format!(
                            "Column {} was not found in table {shown}",
                            maybe_quote(old)
                        )));
                    };
                    if !t.columns[idx].kind.is_primary_key() {
                        return Err(ire(format!(
                            "Cannot rename non PRIMARY KEY column {}",
                            maybe_quote(old)
                        )));
                    }
                    if t.column(new).is_some() {
                        return Err(ire(format!(
                            "Cannot rename column {} to {} in table '{shown}'; another column with that name already exists",
                            maybe_quote(old),
                            maybe_quote(new)
                        )));
                    }
                    let dependent: Vec<&str> = t
                        .indexes
                        .iter()
                        .filter(|i| index_depends_on(i, old))
                        .map(|i| i.name.as_str())
                        .collect();
                    if !dependent.is_empty() {
                        return Err(ire(format!(
                            "Cannot rename column {} because it has dependent secondary indexes ({})",
                            maybe_quote(old),
                            dependent.join(", ")
                        )));
                    }
                    t.columns[idx].name = new.clone();
                }
            }
            AlterTableOp::AlterType { .. } => {
                return Err(ire("Altering column types is no longer supported"));
            }
            AlterTableOp::With(props) => {
                let parsed = options::collect(props)?;
                if parsed.contains_key("id") {
                    options::check_known(&parsed, options::TABLE_PROPERTIES)?;
                    return Err(SchemaError::Config("Cannot alter table id.".to_string()));
                }
                let (opts, _) = options::table_options(&t.options, props)?;
                if t.is_counter && opts.default_time_to_live > 0 {
                    return Err(ire(
                        "Cannot set default_time_to_live on a table with counters",
                    ));
                }
                t.options = opts;
            }
        }
        if t == **table {
            return Ok(None);
        }
        self.keyspace_mut(&ks_name)
            .tables
            .insert(table_name.to_string(), Arc::new(t));
        Ok(SchemaChangeEvent::table(
            SchemaChange::Updated,
            &ks_name,
            table_name,
        ))
    }

    fn drop_table(
        &mut self,
        name: &QualifiedName,
        if_exists: bool,
        current: Option<&str>,
    ) -> Result<Option<SchemaChangeEvent>, SchemaError> {
        let ks_name = statement_keyspace(name, current)?;
        guard_system(&ks_name, Some(&name.name), Perm::Drop)?;
        check_statement_keyspace(&ks_name)?;
        if self.table(&ks_name, &name.name).is_none() {
            if if_exists {
                return Ok(None);
            }
            if !self.keyspaces.contains_key(&ks_name) {
                return Err(ire(format!("Keyspace '{ks_name}' doesn't exist")));
            }
            return Err(ire(format!(
                "Table '{ks_name}.{}' doesn't exist",
                name.name
            )));
        }
        self.keyspace_mut(&ks_name).tables.remove(&name.name);
        Ok(SchemaChangeEvent::table(
            SchemaChange::Dropped,
            &ks_name,
            &name.name,
        ))
    }

    fn create_type(
        &mut self,
        ct: &CreateType,
        current: Option<&str>,
    ) -> Result<Option<SchemaChangeEvent>, SchemaError> {
        let ks_name = statement_keyspace(&ct.name, current)?;
        let type_name = ct.name.name.as_str();
        guard_system(&ks_name, None, Perm::Create)?;
        check_statement_keyspace(&ks_name)?;
        let Some(ks) = self.keyspaces.get(&ks_name) else {
            return Err(ire(format!("Keyspace '{ks_name}' doesn't exist")));
        };
        if ks.types.contains_key(type_name) {
            if ct.if_not_exists {
                return Ok(None);
            }
            return Err(ire(format!(
                "A user type with name '{type_name}' already exists"
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for (f, _) in &ct.fields {
            if !seen.insert(f.as_str()) {
                return Err(ire(format!(
                    "Duplicate field name '{f}' in type '{type_name}'"
                )));
            }
        }
        for (_, t) in &ct.fields {
            if raw_is_counter(t) {
                return Err(ire("A user type cannot contain counters"));
            }
            if matches!(t, CqlType::UserDefined(_)) {
                return Err(ire("A user type cannot contain non-frozen UDTs"));
            }
        }
        let field_types = ct
            .fields
            .iter()
            .map(|(_, t)| resolve_type(t, &ks_name, &ks.types))
            .collect::<Result<Vec<_>, _>>()?;
        let ut = UserType {
            keyspace: ks_name.clone(),
            name: type_name.to_string(),
            field_names: ct.fields.iter().map(|(n, _)| n.clone()).collect(),
            field_types,
        };
        self.keyspace_mut(&ks_name)
            .types
            .insert(type_name.to_string(), Arc::new(ut));
        Ok(SchemaChangeEvent::user_type(
            SchemaChange::Created,
            &ks_name,
            type_name,
        ))
    }

    fn alter_type(
        &mut self,
        at: &AlterType,
        current: Option<&str>,
    ) -> Result<Option<SchemaChangeEvent>, SchemaError> {
        let ks_name = statement_keyspace(&at.name, current)?;
        let type_name = at.name.name.as_str();
        guard_system(&ks_name, None, Perm::Alter)?;
        check_statement_keyspace(&ks_name)?;
        let Some(ut) = self
            .keyspaces
            .get(&ks_name)
            .and_then(|k| k.types.get(type_name))
            .cloned()
        else {
            if at.if_exists {
                return Ok(None);
            }
            return Err(ire(format!("Type '{ks_name}.{type_name}' doesn't exist")));
        };
        let ks = self.keyspaces[&ks_name].clone();
        let type_cql = format!("{}.{}", maybe_quote(&ks_name), maybe_quote(type_name));
        let mut new = (*ut).clone();
        match &at.op {
            AlterTypeOp::Add { field, ty } => {
                if new.field_names.contains(field) {
                    return Err(ire(format!(
                        "Cannot add field {f} to type {type_cql}: a field with name {f} already exists",
                        f = maybe_quote(field)
                    )));
                }
                if raw_is_counter(ty) {
                    return Err(ire("A user type cannot contain counters"));
                }
                if matches!(ty, CqlType::UserDefined(_)) {
                    return Err(ire("A user type cannot contain non-frozen UDTs"));
                }
                let resolved = resolve_type(ty, &ks_name, &ks.types)?;
                if types::references_udt(&resolved, &ks_name, type_name) {
                    return Err(ire(format!(
                        "Cannot add new field {} of type {} to user type {type_cql} as this would create a circular reference",
                        maybe_quote(field),
                        raw_type_string(ty)
                    )));
                }
                let in_pk: Vec<String> = ks
                    .tables
                    .values()
                    .filter(|t| {
                        t.partition_key()
                            .iter()
                            .any(|c| types::references_udt(&c.ty, &ks_name, type_name))
                    })
                    .map(|t| t.qualified_name())
                    .collect();
                if !in_pk.is_empty() {
                    return Err(ire(format!(
                        "Cannot add new field {} of type {} to user type {type_cql} as the type is being used in partitioning key by the following tables: {}",
                        maybe_quote(field),
                        raw_type_string(ty),
                        in_pk.join(", ")
                    )));
                }
                new.field_names.push(field.clone());
                new.field_types.push(resolved);
            }
            AlterTypeOp::Rename(pairs) => {
                for (old, to) in pairs {
                    let Some(i) = new.field_names.iter().position(|f| f == old) else {
                        return Err(ire(format!(
                            "Unkown field {} in user type {ks_name}.{type_name}",
                            maybe_quote(old)
                        )));
                    };
                    new.field_names[i] = to.clone();
                }
                let mut seen = std::collections::HashSet::new();
                for f in &new.field_names {
                    if !seen.insert(f.as_str()) {
                        return Err(ire(format!(
                            "Duplicate field name {} in type {type_cql}",
                            maybe_quote(f)
                        )));
                    }
                }
            }
        }
        let k = self.keyspace_mut(&ks_name);
        k.types.insert(type_name.to_string(), Arc::new(new));
        // Refresh every use of the type: other types, then table columns.
        let snapshot = k.types.clone();
        for (n, t) in snapshot.iter() {
            if n != type_name
                && t.field_types
                    .iter()
                    .any(|f| types::references_udt(f, &ks_name, type_name))
            {
                let mut t2 = (**t).clone();
                t2.field_types = t2
                    .field_types
                    .iter()
                    .map(|f| types::refresh_user_types(f, &snapshot))
                    .collect();
                k.types.insert(n.clone(), Arc::new(t2));
            }
        }
        let all_types = k.types.clone();
        let names: Vec<String> = k.tables.keys().cloned().collect();
        for n in names {
            let t = &k.tables[&n];
            if t.columns
                .iter()
                .any(|c| types::references_udt(&c.ty, &ks_name, type_name))
            {
                let mut t2 = (**t).clone();
                for c in &mut t2.columns {
                    c.ty = types::refresh_user_types(&c.ty, &all_types);
                }
                k.tables.insert(n, Arc::new(t2));
            }
        }
        Ok(SchemaChangeEvent::user_type(
            SchemaChange::Updated,
            &ks_name,
            type_name,
        ))
    }

    fn drop_type(
        &mut self,
        name: &QualifiedName,
        if_exists: bool,
        current: Option<&str>,
    ) -> Result<Option<SchemaChangeEvent>, SchemaError> {
        let ks_name = statement_keyspace(name, current)?;
        let type_name = name.name.as_str();
        guard_system(&ks_name, None, Perm::Drop)?;
        check_statement_keyspace(&ks_name)?;
        let Some(ks) = self.keyspaces.get(&ks_name) else {
            if if_exists {
                return Ok(None);
            }
            return Err(ire(format!("Type '{ks_name}.{type_name}' doesn't exist")));
        };
        if !ks.types.contains_key(type_name) {
            if if_exists {
                return Ok(None);
            }
            return Err(ire(format!("Type '{ks_name}.{type_name}' doesn't exist")));
        }
        let dependent_types: Vec<String> = ks
            .types
            .values()
            .filter(|t| {
                t.name != type_name
                    && t.field_types
                        .iter()
                        .any(|f| types::references_udt(f, &ks_name, type_name))
            })
            .map(|t| t.name.clone())
            .collect();
        if !dependent_types.is_empty() {
            return Err(ire(format!(
                "Cannot drop user type '{ks_name}.{type_name}' as it is still used by user types {}",
                dependent_types.join(", ")
            )));
        }
        let dependent_tables: Vec<String> = ks
            .tables
            .values()
            .filter(|t| {
                t.columns
                    .iter()
                    .any(|c| types::references_udt(&c.ty, &ks_name, type_name))
            })
            .map(|t| t.name.clone())
            .collect();
        if !dependent_tables.is_empty() {
            return Err(ire(format!(
                "Cannot drop user type '{ks_name}.{type_name}' as it is still used by tables {}",
                dependent_tables.join(", ")
            )));
        }
        self.keyspace_mut(&ks_name).types.remove(type_name);
        Ok(SchemaChangeEvent::user_type(
            SchemaChange::Dropped,
            &ks_name,
            type_name,
        ))
    }

    fn create_index(
        &mut self,
        ci: &CreateIndex,
        current: Option<&str>,
    ) -> Result<Option<SchemaChangeEvent>, SchemaError> {
        let ks_name = statement_keyspace(&ci.table, current)?;
        let table_name = ci.table.name.as_str();
        guard_system(&ks_name, Some(table_name), Perm::Alter)?;
        check_statement_keyspace(&ks_name)?;
        let Some(ks) = self.keyspaces.get(&ks_name).cloned() else {
            return Err(ire(format!("Keyspace '{ks_name}' doesn't exist")));
        };
        let Some(table) = ks.tables.get(table_name).cloned() else {
            return Err(ire(format!("Table '{table_name}' doesn't exist")));
        };
        // IndexAttributes: only `options`, and only for custom indexes.
        let props = options::collect(&ci.properties)?;
        options::check_known(&props, &["options"])?;
        let custom_options = options::get_map(&props, "options")?.cloned();
        if ci.custom_class.is_none() && custom_options.is_some() {
            return Err(ire("Cannot specify options for a non-CUSTOM index"));
        }
        if let Some(n) = &ci.name {
            if ks.indexed_table(n).is_some() {
                if ci.if_not_exists {
                    return Ok(None);
                }
                return Err(ire(format!("Index '{n}' already exists")));
            }
        }
        if table.is_counter {
            return Err(ire("Secondary indexes on counter tables aren't supported"));
        }
        let (kind_fn, col_name) = match &ci.target {
            IndexTarget::Values(c) => ("values", c),
            IndexTarget::Keys(c) => ("keys", c),
            IndexTarget::Entries(c) => ("entries", c),
            IndexTarget::Full(c) => ("full", c),
        };
        let Some(column) = table.column(col_name) else {
            return Err(ire(format!("Column '{col_name}' doesn't exist")));
        };
        let quoted = maybe_quote(col_name);
        if types::references_duration(&column.ty) {
            let what = match column.ty.unfrozen() {
                ColumnType::List(_) | ColumnType::Set(_) | ColumnType::Map(..) => {
                    "Secondary indexes are not supported on collections containing durations"
                }
                ColumnType::Tuple(_) => {
                    "Secondary indexes are not supported on tuples containing durations"
                }
                ColumnType::Udt { .. } => {
                    "Secondary indexes are not supported on UDTs containing durations"
                }
                _ => "Secondary indexes are not supported on duration columns",
            };
            return Err(ire(what));
        }
        if matches!(column.kind, ColumnKind::PartitionKey(_)) && table.partition_key_len == 1 {
            return Err(ire(format!(
                "Cannot create secondary index on the only partition key column {quoted}"
            )));
        }
        let frozen_collection =
            matches!(column.ty, ColumnType::Frozen(_)) && is_collection(&column.ty);
        let collection = is_collection(&column.ty);
        if frozen_collection && kind_fn != "full" {
            return Err(ire(format!(
                "Cannot create {kind_fn}() index on frozen column {quoted}. Frozen collections are immutable and must be fully indexed by using the 'full({quoted})' modifier"
            )));
        }
        if !frozen_collection && kind_fn == "full" {
            return Err(ire(
                "full() indexes can only be created on frozen collections",
            ));
        }
        if !collection && kind_fn != "values" {
            return Err(ire(format!(
                "Cannot create {kind_fn}() index on {quoted}. Non-collection columns only support simple indexes"
            )));
        }
        if (kind_fn == "keys" || kind_fn == "entries") && !matches!(column.ty, ColumnType::Map(..))
        {
            return Err(ire(format!(
                "Cannot create index on {kind_fn} of column {quoted} with non-map type"
            )));
        }
        if matches!(column.ty, ColumnType::Udt { .. }) {
            return Err(ire(format!(
                "Cannot create index on non-frozen UDT column {quoted}"
            )));
        }
        let target = if collection {
            format!("{kind_fn}({quoted})")
        } else {
            quoted.clone()
        };
        let mut opts = BTreeMap::new();
        let kind = match &ci.custom_class {
            Some(class) => {
                let full = match class.as_str() {
                    "org.apache.cassandra.index.sasi.SASIIndex" | "SASIIndex" => {
                        return Err(ire(
                            "SASI indexes are disabled. Enable in cassandra.yaml to use.",
                        ))
                    }
                    "StorageAttachedIndex"
                    | "sai"
                    | "SAI"
                    | "org.apache.cassandra.index.sai.StorageAttachedIndex" => {
                        "org.apache.cassandra.index.sai.StorageAttachedIndex".to_string()
                    }
                    other => {
                        return Err(SchemaError::Config(format!(
                            "Unable to find custom indexer class '{other}'"
                        )))
                    }
                };
                if let Some(o) = custom_options {
                    opts.extend(o);
                }
                opts.insert("class_name".to_string(), full);
                "CUSTOM"
            }
            None => "COMPOSITES",
        };
        opts.insert("target".to_string(), target);
        let name = match &ci.name {
            Some(n) => n.clone(),
            None => {
                let base: String = format!("{table_name}_{col_name}_idx")
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let mut candidate = base.clone();
                let mut i = 0;
                while ks.indexed_table(&candidate).is_some() {
                    i += 1;
                    candidate = format!("{base}_{i}");
                }
                candidate
            }
        };
        if !is_valid_name(&name) {
            return Err(SchemaError::Config(format!("Illegal index name {name}")));
        }
        if let Some(existing) = table
            .indexes
            .iter()
            .find(|i| i.kind == kind && i.options == opts)
        {
            if ci.if_not_exists {
                return Ok(None);
            }
            return Err(ire(format!(
                "Index {} is a duplicate of existing index {}",
                name, existing.name
            )));
        }
        let mut t = (*table).clone();
        t.indexes.push(IndexMetadata {
            name,
            kind: kind.to_string(),
            options: opts,
        });
        t.indexes.sort_by(|a, b| a.name.cmp(&b.name));
        self.keyspace_mut(&ks_name)
            .tables
            .insert(table_name.to_string(), Arc::new(t));
        Ok(SchemaChangeEvent::table(
            SchemaChange::Updated,
            &ks_name,
            table_name,
        ))
    }

    fn drop_index(
        &mut self,
        name: &QualifiedName,
        if_exists: bool,
        current: Option<&str>,
    ) -> Result<Option<SchemaChangeEvent>, SchemaError> {
        let ks_name = statement_keyspace(name, current)?;
        let table = self
            .keyspaces
            .get(&ks_name)
            .and_then(|k| k.indexed_table(&name.name))
            .cloned();
        if let Some(t) = &table {
            guard_system(&ks_name, Some(&t.name), Perm::Alter)?;
        }
        check_statement_keyspace(&ks_name)?;
        let Some(table) = table else {
            if if_exists {
                return Ok(None);
            }
            return Err(ire(format!(
                "Index '{ks_name}.{}' doesn't exist'",
                name.name
            )));
        };
        let mut t = (*table).clone();
        t.indexes.retain(|i| i.name != name.name);
        let table_name = t.name.clone();
        self.keyspace_mut(&ks_name)
            .tables
            .insert(table_name.clone(), Arc::new(t));
        Ok(SchemaChangeEvent::table(
            SchemaChange::Updated,
            &ks_name,
            &table_name,
        ))
    }
}

fn has_property(props: &[Property], name: &str) -> bool {
    props.iter().any(|p| p.name == name)
}

/// Builds and validates replication params (`ReplicationParams.fromMap...`
/// + `KeyspaceParams.validate`).
fn replication_params(
    keyspace: &str,
    map: &BTreeMap<String, String>,
    previous: Option<&BTreeMap<String, String>>,
    ctx: &DdlContext,
) -> Result<ReplicationParams, SchemaError> {
    let valid = locator::valid_datacenters(&ctx.local_dc, &ctx.known_datacenters);
    let (class, options) = locator::prepare_replication(map, previous, &valid)
        .map_err(|e| SchemaError::Config(e.0))?;
    if class == StrategyClass::Local {
        return Err(ire(
            "Unable to use given strategy class: LocalStrategy is reserved for internal use.",
        ));
    }
    locator::validate_replication(keyspace, class, &options, &valid)
        .map_err(|e| SchemaError::Config(e.0))?;
    Ok(ReplicationParams {
        class: class.class_name().to_string(),
        options,
    })
}

/// Whether an index's target names `column`.
fn index_depends_on(index: &IndexMetadata, column: &str) -> bool {
    let Some(target) = index.options.get("target") else {
        return false;
    };
    let quoted = maybe_quote(column);
    target == &quoted
        || ["values", "keys", "entries", "full"]
            .iter()
            .any(|f| target == &format!("{f}({quoted})"))
}

fn statement_kind(s: &Statement) -> &'static str {
    match s {
        Statement::Use(_) => "USE",
        Statement::Truncate(_) => "TRUNCATE",
        Statement::Insert(_) => "INSERT",
        Statement::Update(_) => "UPDATE",
        Statement::Delete(_) => "DELETE",
        Statement::Select(_) => "SELECT",
        Statement::Batch(_) => "BATCH",
        Statement::Describe(_) => "DESCRIBE",
        _ => "This statement",
    }
}
