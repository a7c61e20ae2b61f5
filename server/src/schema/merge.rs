//! Reconciling schemas changed concurrently on different nodes.
//!
//! Cassandra keeps the schema in tables and merges them like any data:
//! last write wins per row, a drop is a tombstone. Tessera does the same
//! at the granularity of *schema entities* — a keyspace's own parameters
//! (replication, `durable_writes`), a table, a user type. Every DDL stamps
//! the entities it created, changed or dropped with the coordinator's
//! clock ([`Schema::stamp_changes`]); two schemas merge entity by entity,
//! the newer stamp winning ([`Schema::merge`]). A drop keeps its stamp
//! (a tombstone) so a node that missed it cannot bring the entity back.
//!
//! The merge is commutative, associative and idempotent, so nodes that
//! exchange schemas in any order converge on the same schema — and, since
//! the schema version is a digest of the live content, on the same
//! version. Ties (equal stamps) go to the drop, then to the greater
//! content, so both sides pick the same winner.
//!
//! Limits: a table is one entity, so two *concurrent* `ALTER TABLE`s of
//! the same table keep only the later one (Cassandra merges per column);
//! a table created in a keyspace that another node concurrently dropped
//! goes away with the keyspace.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{
    is_local_system_keyspace, KeyspaceMetadata, Schema, SchemaChange, SchemaChangeEvent,
    SchemaChangeTarget,
};

/// A unit of the schema that is merged as a whole.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SchemaEntity {
    /// A keyspace's replication and `durable_writes` (not its tables).
    Keyspace(String),
    /// A user type `(keyspace, name)`.
    Type(String, String),
    /// A table `(keyspace, name)`.
    Table(String, String),
}

impl SchemaEntity {
    /// The keyspace the entity lives in.
    pub fn keyspace(&self) -> &str {
        match self {
            SchemaEntity::Keyspace(k) | SchemaEntity::Type(k, _) | SchemaEntity::Table(k, _) => k,
        }
    }
}

/// When an entity last changed, and whether that change dropped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaStamp {
    /// Microseconds since the epoch, from the node that made the change.
    pub micros: i64,
    /// The change was a drop (the stamp is a tombstone).
    pub dropped: bool,
}

/// The state of one entity in one schema, as the merge compares it.
struct Side<'a> {
    micros: i64,
    content: Option<Content<'a>>,
}

#[derive(Clone, Copy)]
enum Content<'a> {
    Keyspace(&'a KeyspaceMetadata),
    Type(&'a Arc<super::UserType>),
    Table(&'a Arc<super::TableMetadata>),
}

impl Content<'_> {
    /// A deterministic rendering, for equality and for breaking ties.
    fn key(&self) -> String {
        match self {
            Content::Keyspace(k) => format!("{:?}/{}", k.replication, k.durable_writes),
            Content::Type(t) => format!("{t:?}"),
            Content::Table(t) => format!("{t:?}"),
        }
    }
}

fn same(a: Option<Content<'_>>, b: Option<Content<'_>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(Content::Keyspace(x)), Some(Content::Keyspace(y))) => {
            x.replication == y.replication && x.durable_writes == y.durable_writes
        }
        (Some(Content::Type(x)), Some(Content::Type(y))) => x == y,
        (Some(Content::Table(x)), Some(Content::Table(y))) => x == y,
        _ => false,
    }
}

fn content<'a>(s: &'a Schema, e: &SchemaEntity) -> Option<Content<'a>> {
    match e {
        SchemaEntity::Keyspace(k) => s.keyspaces.get(k).map(|k| Content::Keyspace(k)),
        SchemaEntity::Type(k, t) => s.keyspaces.get(k)?.types.get(t).map(Content::Type),
        SchemaEntity::Table(k, t) => s.keyspaces.get(k)?.tables.get(t).map(Content::Table),
    }
}

/// Every entity present in `s`, except in the node-local system keyspaces.
fn live_entities(s: &Schema) -> BTreeSet<SchemaEntity> {
    let mut out = BTreeSet::new();
    for ks in s.keyspaces.values() {
        if is_local_system_keyspace(&ks.name) {
            continue;
        }
        out.insert(SchemaEntity::Keyspace(ks.name.clone()));
        for t in ks.types.keys() {
            out.insert(SchemaEntity::Type(ks.name.clone(), t.clone()));
        }
        for t in ks.tables.values() {
            if !t.is_virtual {
                out.insert(SchemaEntity::Table(ks.name.clone(), t.name.clone()));
            }
        }
    }
    out
}

fn side<'a>(s: &'a Schema, e: &SchemaEntity) -> Side<'a> {
    let content = content(s, e);
    let stamp = s.history.get(e);
    let micros = match (stamp, content.is_some()) {
        (Some(st), _) => st.micros,
        // Present without a stamp: made before stamps existed (or a
        // built-in keyspace) — older than any stamped change.
        (None, true) => 0,
        (None, false) => i64::MIN,
    };
    Side { micros, content }
}

/// Whether `b` beats `a`: the newer stamp; on a tie the drop; then the
/// greater content.
fn beats(a: &Side<'_>, b: &Side<'_>) -> bool {
    if a.micros != b.micros {
        return b.micros > a.micros;
    }
    match (&a.content, &b.content) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(x), Some(y)) => y.key() > x.key(),
    }
}

/// The events a driver should see for the change from `old` to `new`.
pub fn diff_events(old: &Schema, new: &Schema) -> Vec<SchemaChangeEvent> {
    let mut all = live_entities(old);
    all.extend(live_entities(new));
    let mut created_or_updated = Vec::new();
    let mut dropped = Vec::new();
    for e in all {
        let (o, n) = (content(old, &e), content(new, &e));
        if same(o, n) {
            continue;
        }
        let change = match (o.is_some(), n.is_some()) {
            (false, true) => SchemaChange::Created,
            (true, true) => SchemaChange::Updated,
            _ => SchemaChange::Dropped,
        };
        let target = match &e {
            SchemaEntity::Keyspace(k) => SchemaChangeTarget::Keyspace(k.clone()),
            SchemaEntity::Type(k, t) => SchemaChangeTarget::Type(k.clone(), t.clone()),
            SchemaEntity::Table(k, t) => SchemaChangeTarget::Table(k.clone(), t.clone()),
        };
        let ev = SchemaChangeEvent { change, target };
        if change == SchemaChange::Dropped {
            dropped.push(ev);
        } else {
            created_or_updated.push(ev);
        }
    }
    // Keyspaces are created before what they hold and dropped after it.
    dropped.reverse();
    created_or_updated.extend(dropped);
    created_or_updated
}

impl Schema {
    /// Stamps every entity that differs between `old` and `self` (the
    /// result of a DDL applied to `old`) with `micros`, or just after its
    /// previous stamp if the clock is behind it.
    pub fn stamp_changes(&mut self, old: &Schema, micros: i64) {
        let mut all = live_entities(old);
        all.extend(live_entities(self));
        let mut stamps = Vec::new();
        for e in all {
            let (o, n) = (content(old, &e), content(self, &e));
            if same(o, n) {
                continue;
            }
            let prev = old.history.get(&e).map(|s| s.micros).unwrap_or(i64::MIN);
            let at = micros.max(prev.saturating_add(1));
            stamps.push((
                e,
                SchemaStamp {
                    micros: at,
                    dropped: n.is_none(),
                },
            ));
        }
        self.history.extend(stamps);
    }

    /// Merges another node's schema into this one, entity by entity (see
    /// the module documentation). The result's version is recomputed.
    pub fn merge(&self, other: &Schema) -> Schema {
        let mut out = self.clone();
        let mut all = live_entities(self);
        all.extend(live_entities(other));
        all.extend(self.history.keys().cloned());
        all.extend(other.history.keys().cloned());
        all.retain(|e| !is_local_system_keyspace(e.keyspace()));
        // BTreeSet order: keyspaces before types before tables.
        let mut history: BTreeMap<SchemaEntity, SchemaStamp> = BTreeMap::new();
        for e in &all {
            let a = side(self, e);
            let b = side(other, e);
            let (winner, from_other) = if beats(&a, &b) {
                (&b, true)
            } else {
                (&a, false)
            };
            if winner.micros != i64::MIN {
                history.insert(
                    e.clone(),
                    SchemaStamp {
                        micros: winner.micros,
                        dropped: winner.content.is_none(),
                    },
                );
            }
            if !from_other {
                continue;
            }
            match (e, winner.content) {
                (SchemaEntity::Keyspace(k), None) => {
                    out.keyspaces.remove(k);
                }
                (SchemaEntity::Keyspace(k), Some(Content::Keyspace(theirs))) => {
                    match out.keyspaces.get_mut(k) {
                        Some(mine) => {
                            let m = Arc::make_mut(mine);
                            m.replication = theirs.replication.clone();
                            m.durable_writes = theirs.durable_writes;
                        }
                        None => {
                            let mut fresh = theirs.clone();
                            fresh.tables = BTreeMap::new();
                            fresh.types = BTreeMap::new();
                            out.keyspaces.insert(k.clone(), Arc::new(fresh));
                        }
                    }
                }
                (SchemaEntity::Type(k, t), c) => {
                    if let Some(ks) = out.keyspaces.get_mut(k) {
                        let ks = Arc::make_mut(ks);
                        match c {
                            Some(Content::Type(ut)) => {
                                ks.types.insert(t.clone(), ut.clone());
                            }
                            _ => {
                                ks.types.remove(t);
                            }
                        }
                    }
                }
                (SchemaEntity::Table(k, t), c) => {
                    if let Some(ks) = out.keyspaces.get_mut(k) {
                        let ks = Arc::make_mut(ks);
                        match c {
                            Some(Content::Table(tm)) => {
                                ks.tables.insert(t.clone(), tm.clone());
                            }
                            _ => {
                                ks.tables.remove(t);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        out.history = history;
        out.recompute_version();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cql3::parser::parse_statement;
    use crate::schema::DdlContext;

    fn ddl(s: &Schema, cql: &str, micros: i64) -> Schema {
        let stmt = parse_statement(cql).expect("parse").statement;
        let ctx = DdlContext {
            now_micros: micros,
            known_datacenters: vec!["datacenter1".into()],
            local_dc: "datacenter1".into(),
        };
        let (mut new, _) = s.apply_ddl(&stmt, Some("ks"), &ctx).expect("ddl");
        new.stamp_changes(s, micros);
        new
    }

    fn base() -> Schema {
        let s = Schema::new_with_system_keyspaces("datacenter1");
        ddl(
            &s,
            "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
            10,
        )
    }

    fn tables(s: &Schema) -> Vec<String> {
        s.keyspaces["ks"].tables.keys().cloned().collect()
    }

    #[test]
    fn concurrent_creates_both_survive_in_any_order() {
        let b = base();
        let n1 = ddl(&b, "CREATE TABLE ks.a (k int PRIMARY KEY)", 20);
        let n2 = ddl(&b, "CREATE TABLE ks.b (k int PRIMARY KEY)", 21);
        let m12 = n1.merge(&n2);
        let m21 = n2.merge(&n1);
        assert_eq!(tables(&m12), vec!["a", "b"]);
        assert_eq!(m12, m21);
        assert_eq!(m12.version, m21.version);
        // Idempotent.
        assert_eq!(m12.merge(&m21), m12);
        assert_eq!(m12.merge(&n1), m12);
    }

    #[test]
    fn a_drop_is_not_undone_by_a_node_that_missed_it() {
        let b = ddl(&base(), "CREATE TABLE ks.a (k int PRIMARY KEY)", 20);
        let dropped = ddl(&b, "DROP TABLE ks.a", 30);
        let m = b.merge(&dropped);
        assert!(tables(&m).is_empty());
        assert_eq!(dropped.merge(&b), m);
        // A later re-create wins over the tombstone.
        let again = ddl(&dropped, "CREATE TABLE ks.a (k int PRIMARY KEY, v int)", 40);
        let m2 = m.merge(&again);
        assert_eq!(tables(&m2), vec!["a"]);
        assert!(m2.keyspaces["ks"].tables["a"].column("v").is_some());
    }

    #[test]
    fn later_alter_wins_and_keyspace_drop_takes_its_tables() {
        let b = ddl(&base(), "CREATE TABLE ks.a (k int PRIMARY KEY)", 20);
        let n1 = ddl(&b, "ALTER TABLE ks.a ADD x int", 30);
        let n2 = ddl(&b, "ALTER TABLE ks.a ADD y int", 31);
        let m = n1.merge(&n2);
        assert!(m.keyspaces["ks"].tables["a"].column("y").is_some());
        assert_eq!(n2.merge(&n1), m);

        let gone = ddl(&b, "DROP KEYSPACE ks", 50);
        let m = n1.merge(&gone);
        assert!(!m.keyspaces.contains_key("ks"));
        assert_eq!(gone.merge(&n1), m);
    }

    #[test]
    fn stamps_survive_the_text_format() {
        let b = ddl(&base(), "CREATE TABLE ks.a (k int PRIMARY KEY)", 20);
        let d = ddl(&b, "DROP TABLE ks.a", 30);
        let back = Schema::from_text(&d.to_text(), "datacenter1").expect("parse");
        assert_eq!(back.history, d.history);
        assert_eq!(back.version, d.version);
    }

    #[test]
    fn events_describe_the_difference() {
        let b = base();
        let n = ddl(&b, "CREATE TABLE ks.a (k int PRIMARY KEY)", 20);
        let ev = diff_events(&b, &n);
        assert_eq!(
            ev,
            vec![SchemaChangeEvent {
                change: SchemaChange::Created,
                target: SchemaChangeTarget::Table("ks".into(), "a".into()),
            }]
        );
    }
}
