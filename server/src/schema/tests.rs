//! Tests of DDL rules, system tables, DESCRIBE and persistence, driven by
//! CQL text through the parser.

use std::net::{IpAddr, Ipv4Addr};

use proto::value::{ColumnType, CqlValue};

use super::*;
use crate::cql3::ast::{Describe, QualifiedName, Statement};
use crate::cql3::parser::parse_statement;

fn ctx() -> DdlContext {
    DdlContext {
        now_micros: 1_700_000_000_000_000,
        known_datacenters: vec!["dc1".into(), "dc2".into()],
        local_dc: "dc1".into(),
    }
}

fn stmt(cql: &str) -> Statement {
    parse_statement(cql)
        .unwrap_or_else(|e| panic!("parse {cql}: {e}"))
        .statement
}

fn try_run(s: &Schema, cql: &str) -> Result<(Schema, Option<SchemaChangeEvent>), SchemaError> {
    s.apply_ddl(&stmt(cql), Some("ks"), &ctx())
}

fn run(s: &Schema, cql: &str) -> Schema {
    try_run(s, cql).unwrap_or_else(|e| panic!("{cql}: {e:?}")).0
}

fn err(s: &Schema, cql: &str) -> SchemaError {
    match try_run(s, cql) {
        Ok(_) => panic!("{cql} should fail"),
        Err(e) => e,
    }
}

fn base() -> Schema {
    run(
        &Schema::new_with_system_keyspaces("dc1"),
        "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    )
}

fn local() -> LocalNodeInfo {
    LocalNodeInfo {
        cluster_name: "Test Cluster".into(),
        data_center: "dc1".into(),
        rack: "rack1".into(),
        host_id: [7; 16],
        broadcast_address: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
        listen_address: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
        rpc_address: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
        rpc_port: 9042,
        listen_port: 7000,
        tokens: vec![-5, 100, 3],
        release_version: LocalNodeInfo::RELEASE_VERSION.into(),
        cql_version: LocalNodeInfo::CQL_VERSION.into(),
        native_protocol_version: LocalNodeInfo::NATIVE_PROTOCOL_VERSION.into(),
        partitioner: LocalNodeInfo::PARTITIONER.into(),
        gossip_generation: 1_700_000_000,
        snitch: "org.apache.cassandra.locator.SimpleSnitch".into(),
    }
}

#[test]
fn keyspace_ddl_rules() {
    let s0 = Schema::new_with_system_keyspaces("dc1");
    let (s, ev) = try_run(
        &s0,
        "CREATE KEYSPACE ks WITH replication = {'class': 'NetworkTopologyStrategy', 'replication_factor': 3}",
    )
    .unwrap();
    assert_eq!(
        ev,
        Some(SchemaChangeEvent {
            change: SchemaChange::Created,
            target: SchemaChangeTarget::Keyspace("ks".into())
        })
    );
    let ks = s.keyspace("ks").unwrap();
    assert_eq!(
        ks.replication.class,
        crate::locator::NETWORK_TOPOLOGY_STRATEGY
    );
    assert_eq!(ks.replication.options.len(), 2);
    assert_eq!(ks.replication.options["dc2"], "3");
    assert!(ks.durable_writes);
    assert_ne!(s.version, s0.version);

    let e = err(&s, "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
    assert_eq!(e.code(), 0x2400);
    assert_eq!(e.message(), "Cannot add existing keyspace \"ks\"");
    let (s2, ev) = try_run(
        &s,
        "CREATE KEYSPACE IF NOT EXISTS ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    )
    .unwrap();
    assert_eq!(ev, None);
    assert_eq!(s2, s);

    let e = err(
        &s0,
        "CREATE KEYSPACE k2 WITH replication = {'class': 'Foo'}",
    );
    assert_eq!(
        e,
        SchemaError::Config(
            "Unable to find replication strategy class 'org.apache.cassandra.locator.Foo'".into()
        )
    );
    let e = err(
        &s0,
        "CREATE KEYSPACE k2 WITH replication = {'class': 'SimpleStrategy'}",
    );
    assert_eq!(e.code(), 0x2300);
    let e = err(
        &s0,
        "CREATE KEYSPACE k2 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 'x'}",
    );
    assert_eq!(e.code(), 0x2300);
    let e = err(
        &s0,
        "CREATE KEYSPACE k2 WITH replication = {'class': 'NetworkTopologyStrategy', 'dc9': 1}",
    );
    assert_eq!(e.code(), 0x2300);
    let e = err(
        &s0,
        "CREATE KEYSPACE k2 WITH replication = {'class': 'LocalStrategy'}",
    );
    assert_eq!(e.code(), 0x2200);
    let e = err(&s0, "CREATE KEYSPACE k2 WITH durable_writes = false");
    assert_eq!(
        e,
        SchemaError::Invalid("Missing mandatory option 'replication'".into())
    );
    let e = err(
        &s0,
        "CREATE KEYSPACE k2 WITH replication = {'replication_factor': 1}",
    );
    assert_eq!(
        e,
        SchemaError::Config("Missing replication strategy class".into())
    );
    let e = err(
        &s0,
        "CREATE KEYSPACE k2 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1} AND foo = 1",
    );
    assert_eq!(e, SchemaError::Syntax("Unknown property 'foo'".into()));
    let e = err(
        &s0,
        "CREATE KEYSPACE system WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    );
    assert_eq!(
        e,
        SchemaError::Invalid("System keyspace 'system' is not user-modifiable".into())
    );

    // ALTER: durable_writes only keeps replication; NTS keeps old DC factors.
    let (s3, ev) = try_run(&s, "ALTER KEYSPACE ks WITH durable_writes = false").unwrap();
    assert!(ev.is_some());
    assert!(!s3.keyspace("ks").unwrap().durable_writes);
    assert_eq!(s3.keyspace("ks").unwrap().replication, ks.replication);
    let s4 = run(
        &s,
        "ALTER KEYSPACE ks WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 1}",
    );
    assert_eq!(s4.keyspace("ks").unwrap().replication.options["dc1"], "1");
    // Unchanged: no event.
    let (_, ev) = try_run(&s, "ALTER KEYSPACE ks WITH durable_writes = true").unwrap();
    assert_eq!(ev, None);
    let e = err(&s, "ALTER KEYSPACE nope WITH durable_writes = true");
    assert_eq!(
        e,
        SchemaError::Invalid("Keyspace 'nope' doesn't exist".into())
    );

    // System keyspaces.
    let e = err(&s, "ALTER KEYSPACE system WITH durable_writes = false");
    assert_eq!(
        e,
        SchemaError::Unauthorized("system keyspace is not user-modifiable.".into())
    );
    let s5 = run(
        &s,
        "ALTER KEYSPACE system_auth WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3}",
    );
    assert_eq!(
        s5.keyspace("system_auth").unwrap().replication.class,
        crate::locator::NETWORK_TOPOLOGY_STRATEGY
    );
    assert_ne!(s5.version, s.version);
    let e = err(&s, "DROP KEYSPACE system_auth");
    assert_eq!(
        e,
        SchemaError::Unauthorized("Cannot DROP <keyspace system_auth>".into())
    );
    let e = err(&s, "CREATE TABLE system_auth.t (a int PRIMARY KEY)");
    assert_eq!(
        e,
        SchemaError::Unauthorized("Cannot CREATE <keyspace system_auth>".into())
    );

    // DROP.
    let (s6, ev) = try_run(&s, "DROP KEYSPACE ks").unwrap();
    assert!(s6.keyspace("ks").is_none());
    assert_eq!(ev.unwrap().change, SchemaChange::Dropped);
    assert_eq!(s6.version, s0.version);
    assert_eq!(err(&s6, "DROP KEYSPACE ks").code(), 0x2200);
    assert_eq!(try_run(&s6, "DROP KEYSPACE IF EXISTS ks").unwrap().1, None);
}

#[test]
fn create_table_builds_metadata() {
    let s = run(
        &base(),
        "CREATE TABLE t (k int, c1 text, c2 bigint, v text, s int static, a list<int>, \
         PRIMARY KEY ((k), c1, c2)) WITH CLUSTERING ORDER BY (c1 DESC, c2 ASC) AND comment = 'hi' \
         AND compaction = {'class': 'LeveledCompactionStrategy'}",
    );
    let t = s.table("ks", "t").unwrap();
    let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["k", "c1", "c2", "s", "a", "v"]);
    assert_eq!(t.partition_key_len, 1);
    assert_eq!(t.clustering_key_len, 2);
    assert_eq!(t.columns[1].order, ClusteringOrder::Desc);
    assert_eq!(t.columns[2].order, ClusteringOrder::Asc);
    assert_eq!(t.columns[2].kind, ColumnKind::Clustering(1));
    assert_eq!(t.columns[3].kind, ColumnKind::Static);
    let ids: Vec<u32> = t.value_columns().iter().map(|c| c.id).collect();
    assert_eq!(ids, [0, 1, 2]);
    assert_eq!(t.next_column_id, 3);
    assert_eq!(t.columns[4].ty, ColumnType::List(Box::new(ColumnType::Int)));
    assert_eq!(t.options.comment, "hi");
    assert_eq!(
        t.options.compaction["class"],
        "org.apache.cassandra.db.compaction.LeveledCompactionStrategy"
    );
    assert_eq!(t.id[6] >> 4, 4, "random v4 id");
    assert!(!t.is_counter);

    let e = err(&s, "CREATE TABLE t (k int PRIMARY KEY)");
    assert_eq!(
        e,
        SchemaError::AlreadyExists {
            keyspace: "ks".into(),
            table: "t".into(),
            message: "Cannot add already existing table \"t\" to keyspace \"ks\"".into()
        }
    );
    assert_eq!(
        try_run(&s, "CREATE TABLE IF NOT EXISTS t (k int PRIMARY KEY)")
            .unwrap()
            .1,
        None
    );
}

#[test]
fn create_table_rules() {
    let s = base();
    let cases: &[(&str, SchemaError)] = &[
        (
            "CREATE TABLE t (k int, v int, PRIMARY KEY (x))",
            SchemaError::Invalid("Unknown column 'x' referenced in PRIMARY KEY for table 't'".into()),
        ),
        (
            "CREATE TABLE t (k int, k text, PRIMARY KEY (k))",
            SchemaError::Invalid("Duplicate column 'k' declaration for table 't'".into()),
        ),
        (
            "CREATE TABLE t (k int PRIMARY KEY, s int static)",
            SchemaError::Invalid(
                "Static columns are only useful (and thus allowed) if the table has at least one clustering column"
                    .into(),
            ),
        ),
        (
            "CREATE TABLE t (k int, c int static, PRIMARY KEY (k, c))",
            SchemaError::Invalid("Static column 'c' cannot be part of the PRIMARY KEY".into()),
        ),
        (
            "CREATE TABLE t (k list<int> PRIMARY KEY)",
            SchemaError::Invalid(
                "Invalid non-frozen collection type list<int> for PRIMARY KEY column 'k'".into(),
            ),
        ),
        (
            "CREATE TABLE t (k int PRIMARY KEY, c counter, v int)",
            SchemaError::Invalid("Cannot mix counter and non counter columns in the same table".into()),
        ),
        (
            "CREATE TABLE t (k counter PRIMARY KEY)",
            SchemaError::Invalid("counter type is not supported for PRIMARY KEY column 'k'".into()),
        ),
        (
            "CREATE TABLE t (k int, a int, b int, PRIMARY KEY (k, a, b)) WITH CLUSTERING ORDER BY (b DESC, a ASC)",
            SchemaError::Invalid(
                "Clustering key columns must exactly match columns in CLUSTERING ORDER BY directive"
                    .into(),
            ),
        ),
        (
            "CREATE TABLE t (k int, a int, b int, PRIMARY KEY (k, a, b)) WITH CLUSTERING ORDER BY (b DESC)",
            SchemaError::Invalid(
                "Clustering key columns must exactly match columns in CLUSTERING ORDER BY directive"
                    .into(),
            ),
        ),
        (
            "CREATE TABLE t (k int, a int, b int, PRIMARY KEY (k, a, b)) WITH CLUSTERING ORDER BY (a DESC)",
            SchemaError::Invalid(
                "Clustering key columns must exactly match columns in CLUSTERING ORDER BY directive"
                    .into(),
            ),
        ),
        (
            "CREATE TABLE t (k int, a int, PRIMARY KEY (k, a)) WITH CLUSTERING ORDER BY (a DESC, k ASC)",
            SchemaError::Invalid(
                "Clustering key columns must exactly match columns in CLUSTERING ORDER BY directive"
                    .into(),
            ),
        ),
        (
            "CREATE TABLE t (k int, a int, v int, PRIMARY KEY (k, a)) WITH CLUSTERING ORDER BY (v DESC)",
            SchemaError::Invalid(
                "Clustering key columns must exactly match columns in CLUSTERING ORDER BY directive"
                    .into(),
            ),
        ),
        (
            "CREATE TABLE t (k int, a int, PRIMARY KEY (k, a)) WITH CLUSTERING ORDER BY (a DESC, a ASC)",
            SchemaError::Invalid(
                "Duplicate column 'a' in CLUSTERING ORDER BY clause for table 't'".into(),
            ),
        ),
        (
            "CREATE TABLE t (k int PRIMARY KEY) WITH foo = 1",
            SchemaError::Syntax("Unknown property 'foo'".into()),
        ),
        (
            "CREATE TABLE t (k int PRIMARY KEY, v list<list<int>>)",
            SchemaError::Invalid(
                "Non-frozen collections are not allowed inside collections: list<list<int>>".into(),
            ),
        ),
        (
            "CREATE TABLE t (k int PRIMARY KEY, v frozen<int>)",
            SchemaError::Invalid(
                "frozen<> is only allowed on collections, tuples, and user-defined types (got int)"
                    .into(),
            ),
        ),
        (
            "CREATE TABLE t (k int PRIMARY KEY, v address)",
            SchemaError::Invalid("Unknown type ks.address".into()),
        ),
        (
            "CREATE TABLE nope.t (k int PRIMARY KEY)",
            SchemaError::Invalid("Keyspace 'nope' doesn't exist".into()),
        ),
        (
            "CREATE TABLE t (k int PRIMARY KEY, c counter) WITH default_time_to_live = 5",
            SchemaError::Invalid("Cannot set default_time_to_live on a table with counters".into()),
        ),
        (
            "CREATE TABLE t (k int PRIMARY KEY) WITH gc_grace_seconds = -1",
            SchemaError::Config("gc_grace_seconds must be greater than or equal to 0 (got -1)".into()),
        ),
        (
            "CREATE TABLE system.t (k int PRIMARY KEY)",
            SchemaError::Unauthorized("system keyspace is not user-modifiable.".into()),
        ),
    ];
    for (cql, want) in cases {
        assert_eq!(&err(&s, cql), want, "{cql}");
    }
    let e = s
        .apply_ddl(&stmt("CREATE TABLE t (k int PRIMARY KEY)"), None, &ctx())
        .unwrap_err();
    assert_eq!(
        e,
        SchemaError::Invalid(
            "No keyspace has been specified. USE a keyspace, or explicitly specify keyspace.tablename"
                .into()
        )
    );
    // Counter table.
    let c = run(
        &s,
        "CREATE TABLE c (k int PRIMARY KEY, n counter, m counter)",
    );
    assert!(c.table("ks", "c").unwrap().is_counter);
    // Frozen nested types are canonical.
    let f = run(
        &s,
        "CREATE TABLE f (k frozen<map<text, list<int>>> PRIMARY KEY, v tuple<int, text>)",
    );
    let t = f.table("ks", "f").unwrap();
    assert_eq!(
        types::cql_type_string(&t.columns[0].ty),
        "frozen<map<text, list<int>>>"
    );
    assert_eq!(
        types::cql_type_string(&t.columns[1].ty),
        "frozen<tuple<int, text>>"
    );
}

#[test]
fn alter_table_keeps_column_ids() {
    let s = run(
        &base(),
        "CREATE TABLE t (k int, c int, a int, b text, PRIMARY KEY (k, c))",
    );
    let s = run(&s, "ALTER TABLE t DROP a");
    let t = s.table("ks", "t").unwrap();
    assert!(t.column("a").is_none());
    assert_eq!(t.dropped_columns["a"], (ColumnType::Int, ctx().now_micros));
    let s = run(&s, "ALTER TABLE t ADD a int");
    let t = s.table("ks", "t").unwrap();
    assert_eq!(t.column("a").unwrap().id, 2, "ids are never reused");
    assert_eq!(t.column("b").unwrap().id, 1);
    assert_eq!(t.next_column_id, 3);
    let s = run(&s, "ALTER TABLE t ADD (z int, s text static)");
    let t = s.table("ks", "t").unwrap();
    let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["k", "c", "s", "a", "b", "z"]);
    let s2 = run(&s, "ALTER TABLE t DROP b");
    let e = err(&s2, "ALTER TABLE t ADD b int");
    assert_eq!(
        e,
        SchemaError::Invalid(
            "Cannot re-add previously dropped column 'b' of type int, incompatible with previous type text"
                .into()
        )
    );
    let s3 = run(&s, "ALTER TABLE t DROP s");
    let e = err(&s3, "ALTER TABLE t ADD s text");
    assert_eq!(
        e,
        SchemaError::Invalid(
            "Cannot re-add previously dropped column 's' of kind REGULAR, incompatible with previous kind STATIC"
                .into()
        )
    );

    let cases: &[(&str, SchemaError)] = &[
        (
            "ALTER TABLE t ADD a int",
            SchemaError::Invalid("Column with name 'a' already exists".into()),
        ),
        (
            "ALTER TABLE t DROP nope",
            SchemaError::Invalid("Column nope was not found in table 'ks.t'".into()),
        ),
        (
            "ALTER TABLE t DROP c",
            SchemaError::Invalid("Cannot drop PRIMARY KEY column c".into()),
        ),
        (
            "ALTER TABLE t RENAME a TO q",
            SchemaError::Invalid("Cannot rename non PRIMARY KEY column a".into()),
        ),
        (
            "ALTER TABLE t RENAME c TO a",
            SchemaError::Invalid(
                "Cannot rename column c to a in table 'ks.t'; another column with that name already exists"
                    .into(),
            ),
        ),
        (
            "ALTER TABLE t ADD n counter",
            SchemaError::Config("Cannot have a counter column (\"n\") in a non counter table".into()),
        ),
        (
            "ALTER TABLE nope ADD x int",
            SchemaError::Invalid("Table 'ks.nope' doesn't exist".into()),
        ),
        (
            "ALTER TABLE t WITH id = 5a1c395e-b41f-11e5-9f22-ba0be0483c18",
            SchemaError::Config("Cannot alter table id.".into()),
        ),
        (
            "ALTER TABLE system.local ADD x int",
            SchemaError::Unauthorized("system keyspace is not user-modifiable.".into()),
        ),
        (
            "ALTER TABLE system_auth.roles ADD x int",
            SchemaError::Unauthorized("Cannot ALTER <table system_auth.roles>".into()),
        ),
    ];
    for (cql, want) in cases {
        assert_eq!(&err(&s, cql), want, "{cql}");
    }
    assert_eq!(
        try_run(&s, "ALTER TABLE t ADD IF NOT EXISTS a int")
            .unwrap()
            .1,
        None
    );
    let s = run(&s, "ALTER TABLE t RENAME c TO cc");
    assert_eq!(s.table("ks", "t").unwrap().columns[1].name, "cc");
    let (s, ev) = try_run(&s, "ALTER TABLE t WITH gc_grace_seconds = 5").unwrap();
    assert_eq!(
        ev.unwrap().target,
        SchemaChangeTarget::Table("ks".into(), "t".into())
    );
    let t = s.table("ks", "t").unwrap();
    assert_eq!(t.options.gc_grace_seconds, 5);
    assert_eq!(t.options.comment, "", "other options kept");
    let (s, ev) = try_run(&s, "DROP TABLE t").unwrap();
    assert_eq!(ev.unwrap().change, SchemaChange::Dropped);
    assert_eq!(
        err(&s, "DROP TABLE t"),
        SchemaError::Invalid("Table 'ks.t' doesn't exist".into())
    );
    assert_eq!(try_run(&s, "DROP TABLE IF EXISTS t").unwrap().1, None);
}

#[test]
fn user_types() {
    let s = run(&base(), "CREATE TYPE address (street text, zip int)");
    let s = run(&s, "CREATE TYPE person (name text, addr frozen<address>)");
    let s = run(
        &s,
        "CREATE TABLE t (k int PRIMARY KEY, a address, p frozen<person>, l list<frozen<address>>)",
    );
    let t = s.table("ks", "t").unwrap();
    assert_eq!(
        types::cql_type_string(&t.column("a").unwrap().ty),
        "address"
    );
    assert_eq!(
        types::cql_type_string(&t.column("p").unwrap().ty),
        "frozen<person>"
    );
    assert_eq!(
        types::cql_type_string(&t.column("l").unwrap().ty),
        "list<frozen<address>>"
    );
    assert_eq!(
        err(&s, "CREATE TYPE address (x int)"),
        SchemaError::Invalid("A user type with name 'address' already exists".into())
    );
    assert_eq!(
        err(&s, "CREATE TYPE bad (x int, x text)"),
        SchemaError::Invalid("Duplicate field name 'x' in type 'bad'".into())
    );
    assert_eq!(
        err(&s, "CREATE TYPE bad (x counter)"),
        SchemaError::Invalid("A user type cannot contain counters".into())
    );
    assert_eq!(
        err(&s, "CREATE TYPE bad (x address)"),
        SchemaError::Invalid("A user type cannot contain non-frozen UDTs".into())
    );
    assert_eq!(
        err(&s, "CREATE TABLE u (k int PRIMARY KEY, a other.address)"),
        SchemaError::Invalid(
            "Statement on keyspace ks cannot refer to a user type in keyspace other; user types can only be used in the keyspace they are defined in"
                .into()
        )
    );

    // ALTER TYPE ADD reaches every use.
    let (s2, ev) = try_run(&s, "ALTER TYPE address ADD city text").unwrap();
    assert_eq!(
        ev.unwrap(),
        SchemaChangeEvent {
            change: SchemaChange::Updated,
            target: SchemaChangeTarget::Type("ks".into(), "address".into())
        }
    );
    let t = s2.table("ks", "t").unwrap();
    let ColumnType::Udt { fields, .. } = &t.column("a").unwrap().ty else {
        panic!()
    };
    assert_eq!(fields.len(), 3);
    let ColumnType::Frozen(p) = &t.column("p").unwrap().ty else {
        panic!()
    };
    let ColumnType::Udt { fields, .. } = &**p else {
        panic!()
    };
    let ColumnType::Frozen(addr) = &fields[1].1 else {
        panic!("{fields:?}")
    };
    assert!(matches!(&**addr, ColumnType::Udt { fields, .. } if fields.len() == 3));
    assert_eq!(
        err(&s2, "ALTER TYPE address ADD city int"),
        SchemaError::Invalid(
            "Cannot add field city to type ks.address: a field with name city already exists"
                .into()
        )
    );
    assert_eq!(
        err(&s2, "ALTER TYPE address ADD me frozen<address>"),
        SchemaError::Invalid(
            "Cannot add new field me of type frozen<address> to user type ks.address as this would create a circular reference"
                .into()
        )
    );
    let s3 = run(&s2, "ALTER TYPE address RENAME zip TO postcode");
    assert_eq!(
        s3.keyspace("ks").unwrap().types["address"].field_names,
        ["street", "postcode", "city"]
    );
    assert_eq!(
        err(&s2, "ALTER TYPE address RENAME nope TO x"),
        SchemaError::Invalid("Unkown field nope in user type ks.address".into())
    );
    assert_eq!(
        err(&s2, "ALTER TYPE nope ADD x int"),
        SchemaError::Invalid("Type 'ks.nope' doesn't exist".into())
    );

    // DROP TYPE refuses while used.
    assert_eq!(
        err(&s, "DROP TYPE address"),
        SchemaError::Invalid(
            "Cannot drop user type 'ks.address' as it is still used by user types person".into()
        )
    );
    let s4 = run(&s, "DROP TABLE t");
    assert_eq!(
        err(&s4, "DROP TYPE address"),
        SchemaError::Invalid(
            "Cannot drop user type 'ks.address' as it is still used by user types person".into()
        )
    );
    let s4 = run(&s4, "DROP TYPE person");
    let s4 = run(&s4, "DROP TYPE address");
    assert!(s4.keyspace("ks").unwrap().types.is_empty());
    assert_eq!(try_run(&s4, "DROP TYPE IF EXISTS address").unwrap().1, None);
}

#[test]
fn indexes() {
    let s = run(
        &base(),
        "CREATE TABLE t (k int, c int, v text, m map<text, int>, f frozen<list<int>>, PRIMARY KEY (k, c))",
    );
    let (s, ev) = try_run(&s, "CREATE INDEX ON t (v)").unwrap();
    assert_eq!(
        ev.unwrap().target,
        SchemaChangeTarget::Table("ks".into(), "t".into())
    );
    let t = s.table("ks", "t").unwrap();
    assert_eq!(t.indexes[0].name, "t_v_idx");
    assert_eq!(t.indexes[0].kind, "COMPOSITES");
    assert_eq!(t.indexes[0].options["target"], "v");
    let s = run(&s, "CREATE INDEX mk ON t (KEYS(m))");
    let s = run(&s, "CREATE INDEX ff ON t (FULL(f))");
    let t = s.table("ks", "t").unwrap();
    assert_eq!(t.index("mk").unwrap().options["target"], "keys(m)");
    assert_eq!(t.index("ff").unwrap().options["target"], "full(f)");
    assert_eq!(
        err(&s, "CREATE INDEX mk ON t (c)"),
        SchemaError::Invalid("Index 'mk' already exists".into())
    );
    assert_eq!(
        try_run(&s, "CREATE INDEX IF NOT EXISTS mk ON t (c)")
            .unwrap()
            .1,
        None
    );
    assert_eq!(
        err(&s, "CREATE INDEX ON t (k)"),
        SchemaError::Invalid(
            "Cannot create secondary index on the only partition key column k".into()
        )
    );
    assert_eq!(
        err(&s, "CREATE INDEX x ON t (v)"),
        SchemaError::Invalid("Index x is a duplicate of existing index t_v_idx".into())
    );
    assert_eq!(
        err(&s, "CREATE INDEX ON t (f)"),
        SchemaError::Invalid(
            "Cannot create values() index on frozen column f. Frozen collections are immutable and must be fully indexed by using the 'full(f)' modifier"
                .into()
        )
    );
    assert_eq!(
        err(&s, "ALTER TABLE t DROP v"),
        SchemaError::Invalid(
            "Cannot drop column v because it has dependent secondary indexes (t_v_idx)".into()
        )
    );
    let s = run(&s, "DROP INDEX t_v_idx");
    assert!(s.table("ks", "t").unwrap().index("t_v_idx").is_none());
    assert_eq!(
        err(&s, "DROP INDEX t_v_idx"),
        SchemaError::Invalid("Index 'ks.t_v_idx' doesn't exist'".into())
    );
    // A second default name is uniquified.
    let s = run(&s, "CREATE INDEX ON t (v)");
    let s = run(&s, "CREATE INDEX t_c_idx ON t (c)");
    assert!(s.table("ks", "t").unwrap().index("t_v_idx").is_some());
    let c = run(&s, "CREATE TABLE c (k int PRIMARY KEY, n counter)");
    assert_eq!(
        err(&c, "CREATE INDEX ON c (n)"),
        SchemaError::Invalid("Secondary indexes on counter tables aren't supported".into())
    );
}

#[test]
fn version_is_a_digest_of_the_schema() {
    let s = run(&base(), "CREATE TABLE t (k int PRIMARY KEY, v text)");
    let mut again = s.clone();
    again.recompute_version();
    assert_eq!(again.version, s.version);
    assert_eq!(s.version[6] >> 4, 3, "name-based v3 uuid");
    let s2 = run(&s, "ALTER TABLE t WITH comment = 'x'");
    assert_ne!(s2.version, s.version);
    let s3 = run(&s2, "ALTER TABLE t WITH comment = ''");
    assert_eq!(s3.version, s.version, "same schema, same version");
    assert_eq!(
        Schema::new_with_system_keyspaces("dc1").version,
        Schema::new_with_system_keyspaces("dc2").version
    );
}

fn col_type(s: &Schema, ks: &str, t: &str, c: &str) -> String {
    types::cql_type_string(&s.table(ks, t).unwrap().column(c).unwrap().ty)
}

#[test]
fn system_tables_have_driver_types() {
    let s = Schema::new_with_system_keyspaces("dc1");
    for (t, c, ty) in [
        ("local", "key", "text"),
        ("local", "host_id", "uuid"),
        ("local", "rpc_address", "inet"),
        ("local", "tokens", "set<text>"),
        ("local", "schema_version", "uuid"),
        ("local", "truncated_at", "map<uuid, blob>"),
        ("local", "gossip_generation", "int"),
        ("peers", "peer", "inet"),
        ("peers", "tokens", "set<text>"),
        ("peers_v2", "peer_port", "int"),
        ("peers_v2", "native_address", "inet"),
    ] {
        assert_eq!(col_type(&s, "system", t, c), ty, "system.{t}.{c}");
    }
    for (t, c, ty) in [
        ("keyspaces", "replication", "frozen<map<text, text>>"),
        ("keyspaces", "durable_writes", "boolean"),
        ("tables", "flags", "frozen<set<text>>"),
        ("tables", "id", "uuid"),
        ("tables", "extensions", "frozen<map<text, blob>>"),
        ("tables", "bloom_filter_fp_chance", "double"),
        ("columns", "position", "int"),
        ("columns", "column_name_bytes", "blob"),
        ("types", "field_types", "frozen<list<text>>"),
        ("functions", "argument_types", "frozen<list<text>>"),
        ("views", "base_table_id", "uuid"),
        ("indexes", "options", "frozen<map<text, text>>"),
        ("dropped_columns", "dropped_time", "timestamp"),
    ] {
        assert_eq!(
            col_type(&s, "system_schema", t, c),
            ty,
            "system_schema.{t}.{c}"
        );
    }
    let local = s.table("system", "local").unwrap();
    assert!(local.is_virtual);
    assert_eq!(local.id, digest::system_table_id("system", "local"));
    assert!(!s.table("system_auth", "roles").unwrap().is_virtual);
    assert_eq!(
        s.keyspace("system").unwrap().replication.class,
        crate::locator::LOCAL_STRATEGY
    );
    assert_eq!(
        s.keyspace("system_traces").unwrap().replication.options["replication_factor"],
        "2"
    );
    let peers = s.table("system", "peers_v2").unwrap();
    assert_eq!(peers.partition_key_len, 1);
    assert_eq!(peers.clustering_key_len, 1);
}

fn value<'a>(t: &TableMetadata, row: &'a [Option<CqlValue>], c: &str) -> &'a Option<CqlValue> {
    &row[t.column_index(c).unwrap()]
}

#[test]
fn virtual_rows() {
    let s = run(
        &base(),
        "CREATE TABLE t (k int, c text, v int, PRIMARY KEY (k, c)) WITH CLUSTERING ORDER BY (c DESC)",
    );
    let s = run(&s, "ALTER TABLE t DROP v");
    let s = run(&s, "CREATE TYPE a (x int, y list<text>)");
    let l = local();
    assert!(virtual_table_rows(&s, &l, &[], "ks", "t").is_none());
    assert!(virtual_table_rows(&s, &l, &[], "system_auth", "roles").is_none());

    let lt = s.table("system", "local").unwrap();
    let rows = virtual_table_rows(&s, &l, &[], "system", "local").unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].len(), lt.columns.len());
    assert_eq!(
        value(lt, &rows[0], "key"),
        &Some(CqlValue::Text("local".into()))
    );
    assert_eq!(
        value(lt, &rows[0], "schema_version"),
        &Some(CqlValue::Uuid(s.version))
    );
    assert_eq!(
        value(lt, &rows[0], "tokens"),
        &Some(CqlValue::Set(vec![
            CqlValue::Text("-5".into()),
            CqlValue::Text("100".into()),
            CqlValue::Text("3".into())
        ]))
    );
    assert_eq!(
        value(lt, &rows[0], "partitioner"),
        &Some(CqlValue::Text(
            "org.apache.cassandra.dht.Murmur3Partitioner".into()
        ))
    );
    assert_eq!(
        virtual_table_rows(&s, &l, &[], "system", "peers")
            .unwrap()
            .len(),
        0
    );
    let peer = PeerInfo {
        peer: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
        peer_port: 7000,
        data_center: "dc2".into(),
        rack: "r1".into(),
        host_id: [1; 16],
        rpc_address: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
        native_port: 9042,
        preferred_ip: None,
        preferred_port: None,
        release_version: "4.0.11".into(),
        schema_version: s.version,
        tokens: vec![42],
    };
    let pt = s.table("system", "peers_v2").unwrap();
    let rows = virtual_table_rows(&s, &l, &[peer], "system", "peers_v2").unwrap();
    assert_eq!(
        value(pt, &rows[0], "native_port"),
        &Some(CqlValue::Int(9042))
    );
    assert_eq!(
        value(pt, &rows[0], "data_center"),
        &Some(CqlValue::Text("dc2".into()))
    );

    let ct = s.table("system_schema", "columns").unwrap();
    let rows = virtual_table_rows(&s, &l, &[], "system_schema", "columns").unwrap();
    let mine: Vec<_> = rows
        .iter()
        .filter(|r| value(ct, r, "keyspace_name") == &Some(CqlValue::Text("ks".into())))
        .collect();
    assert_eq!(mine.len(), 2);
    let c = mine
        .iter()
        .find(|r| value(ct, r, "column_name") == &Some(CqlValue::Text("c".into())))
        .unwrap();
    assert_eq!(
        value(ct, c, "kind"),
        &Some(CqlValue::Text("clustering".into()))
    );
    assert_eq!(
        value(ct, c, "clustering_order"),
        &Some(CqlValue::Text("desc".into()))
    );
    assert_eq!(value(ct, c, "position"), &Some(CqlValue::Int(0)));
    assert_eq!(
        value(ct, c, "column_name_bytes"),
        &Some(CqlValue::Blob(b"c".to_vec()))
    );
    // system.local describes itself.
    assert!(rows.iter().any(|r| {
        value(ct, r, "table_name") == &Some(CqlValue::Text("local".into()))
            && value(ct, r, "column_name") == &Some(CqlValue::Text("tokens".into()))
            && value(ct, r, "type") == &Some(CqlValue::Text("set<text>".into()))
    }));

    let kt = s.table("system_schema", "keyspaces").unwrap();
    let rows = virtual_table_rows(&s, &l, &[], "system_schema", "keyspaces").unwrap();
    assert_eq!(rows.len(), 6);
    let ks = rows
        .iter()
        .find(|r| value(kt, r, "keyspace_name") == &Some(CqlValue::Text("ks".into())))
        .unwrap();
    assert_eq!(
        value(kt, ks, "replication"),
        &Some(CqlValue::Map(vec![
            (
                CqlValue::Text("class".into()),
                CqlValue::Text("org.apache.cassandra.locator.SimpleStrategy".into())
            ),
            (
                CqlValue::Text("replication_factor".into()),
                CqlValue::Text("1".into())
            ),
        ]))
    );

    let tt = s.table("system_schema", "tables").unwrap();
    let rows = virtual_table_rows(&s, &l, &[], "system_schema", "tables").unwrap();
    let t = rows
        .iter()
        .find(|r| value(tt, r, "table_name") == &Some(CqlValue::Text("t".into())))
        .unwrap();
    assert_eq!(
        value(tt, t, "flags"),
        &Some(CqlValue::Set(vec![CqlValue::Text("compound".into())]))
    );
    assert_eq!(
        value(tt, t, "id"),
        &Some(CqlValue::Uuid(s.table("ks", "t").unwrap().id))
    );
    assert!(rows.iter().all(|r| r.len() == tt.columns.len()));

    let dt = s.table("system_schema", "dropped_columns").unwrap();
    let rows = virtual_table_rows(&s, &l, &[], "system_schema", "dropped_columns").unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        value(dt, &rows[0], "dropped_time"),
        &Some(CqlValue::Timestamp(1_700_000_000_000))
    );
    assert_eq!(
        value(dt, &rows[0], "type"),
        &Some(CqlValue::Text("int".into()))
    );

    let ty = s.table("system_schema", "types").unwrap();
    let rows = virtual_table_rows(&s, &l, &[], "system_schema", "types").unwrap();
    assert_eq!(
        value(ty, &rows[0], "field_types"),
        &Some(CqlValue::List(vec![
            CqlValue::Text("int".into()),
            CqlValue::Text("list<text>".into())
        ]))
    );
    for t in ["views", "functions", "aggregates", "triggers"] {
        assert_eq!(
            virtual_table_rows(&s, &l, &[], "system_schema", t)
                .unwrap()
                .len(),
            0
        );
    }
}

fn describe_rows(s: &Schema, what: Describe, ks: Option<&str>) -> Vec<DescribeRow> {
    match describe(s, &what, ks, &local(), &[]).unwrap() {
        DescribeOutput::Listing(r) | DescribeOutput::Elements(r) => r,
        other => panic!("{other:?}"),
    }
}

fn qn(ks: Option<&str>, name: &str) -> QualifiedName {
    QualifiedName {
        keyspace: ks.map(|s| s.to_string()),
        name: name.to_string(),
    }
}

#[test]
fn describe_output_matches_cassandra() {
    let s = run(
        &base(),
        "CREATE TABLE t (a int, b text, \"Weird\" int, s int static, c list<int>, f frozen<list<int>>, \
         PRIMARY KEY (a, b)) WITH CLUSTERING ORDER BY (b DESC)",
    );
    let s = run(&s, "CREATE INDEX ON t (\"Weird\")");
    let s = run(&s, "CREATE TABLE single (k int PRIMARY KEY, v text)");
    let s = run(&s, "CREATE TYPE addr (street text, tags set<text>)");
    let rows = describe_rows(&s, Describe::Table(qn(None, "t")), Some("ks"));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].element_type, "table");
    assert_eq!(
        rows[0].create_statement.as_deref().unwrap(),
        "CREATE TABLE ks.t (\n\
         \x20   a int,\n\
         \x20   b text,\n\
         \x20   s int static,\n\
         \x20   \"Weird\" int,\n\
         \x20   f frozen<list<int>>,\n\
         \x20   c list<int>,\n\
         \x20   PRIMARY KEY (a, b)\n\
         ) WITH CLUSTERING ORDER BY (b DESC)\n\
         \x20   AND additional_write_policy = '99p'\n\
         \x20   AND bloom_filter_fp_chance = 0.01\n\
         \x20   AND caching = {'keys': 'ALL', 'rows_per_partition': 'NONE'}\n\
         \x20   AND cdc = false\n\
         \x20   AND comment = ''\n\
         \x20   AND compaction = {'class': 'org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy', 'max_threshold': '32', 'min_threshold': '4'}\n\
         \x20   AND compression = {'chunk_length_in_kb': '16', 'class': 'org.apache.cassandra.io.compress.LZ4Compressor'}\n\
         \x20   AND crc_check_chance = 1.0\n\
         \x20   AND default_time_to_live = 0\n\
         \x20   AND extensions = {}\n\
         \x20   AND gc_grace_seconds = 864000\n\
         \x20   AND max_index_interval = 2048\n\
         \x20   AND memtable_flush_period_in_ms = 0\n\
         \x20   AND min_index_interval = 128\n\
         \x20   AND read_repair = 'BLOCKING'\n\
         \x20   AND speculative_retry = '99p';"
    );
    assert_eq!(
        rows[1].create_statement.as_deref().unwrap(),
        "CREATE INDEX \"t_Weird_idx\" ON ks.t (\"Weird\");"
    );
    let rows = describe_rows(&s, Describe::Table(qn(Some("ks"), "single")), None);
    assert!(rows[0]
        .create_statement
        .as_deref()
        .unwrap()
        .starts_with("CREATE TABLE ks.single (\n    k int PRIMARY KEY,\n    v text\n) WITH additional_write_policy = '99p'\n"));

    let rows = describe_rows(
        &s,
        Describe::Keyspace {
            name: Some("ks".into()),
            only: false,
        },
        None,
    );
    let kinds: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.element_type.as_str(), r.name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("keyspace", "ks"),
            ("type", "addr"),
            ("table", "single"),
            ("table", "t"),
            ("index", "\"t_Weird_idx\"")
        ]
    );
    assert_eq!(
        rows[0].create_statement.as_deref().unwrap(),
        "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': '1'}  AND durable_writes = true;"
    );
    assert_eq!(
        rows[1].create_statement.as_deref().unwrap(),
        "CREATE TYPE ks.addr (\n    street text,\n    tags set<text>\n);"
    );

    let listing = describe_rows(&s, Describe::Keyspaces, None);
    let names: Vec<&str> = listing.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ks",
            "system",
            "system_auth",
            "system_distributed",
            "system_schema",
            "system_traces"
        ]
    );
    assert!(listing.iter().all(|r| r.create_statement.is_none()));
    let tables = describe_rows(&s, Describe::Tables, Some("ks"));
    assert_eq!(tables.len(), 2);
    assert_eq!(tables[0].element_type, "table");

    let schema_rows = describe_rows(&s, Describe::Schema { full: false }, None);
    assert!(schema_rows.iter().all(|r| r.keyspace_name == "ks"));
    let full = describe_rows(&s, Describe::Schema { full: true }, None);
    assert!(full.iter().any(|r| r.keyspace_name == "system"));

    // Generic DESCRIBE name: keyspace, then table, then index.
    let r = describe_rows(&s, Describe::Name(qn(None, "ks")), None);
    assert_eq!(r[0].element_type, "keyspace");
    let r = describe_rows(&s, Describe::Name(qn(None, "single")), Some("ks"));
    assert_eq!(r[0].element_type, "table");
    let r = describe_rows(&s, Describe::Name(qn(None, "t_Weird_idx")), Some("ks"));
    assert_eq!(r[0].element_type, "index");

    let e = |what: Describe, ks: Option<&str>| describe(&s, &what, ks, &local(), &[]).unwrap_err();
    assert_eq!(
        e(Describe::Table(qn(None, "nope")), Some("ks")),
        SchemaError::Invalid("Table 'nope' not found in keyspace 'ks'".into())
    );
    assert_eq!(
        e(
            Describe::Keyspace {
                name: None,
                only: false
            },
            None
        ),
        SchemaError::Invalid("No keyspace specified and no current keyspace".into())
    );
    assert_eq!(
        e(
            Describe::Keyspace {
                name: Some("zz".into()),
                only: true
            },
            None
        ),
        SchemaError::Invalid("'zz' not found in keyspaces".into())
    );
    assert_eq!(
        e(Describe::Name(qn(None, "zz")), Some("ks")),
        SchemaError::Invalid("'zz' not found in keyspace 'ks'".into())
    );
    assert_eq!(
        e(Describe::Type(qn(None, "zz")), Some("ks")),
        SchemaError::Invalid("User defined type 'zz' not found in 'ks'".into())
    );

    match describe(&s, &Describe::Cluster, Some("ks"), &local(), &[]).unwrap() {
        DescribeOutput::Cluster {
            cluster,
            partitioner,
            snitch,
            range_ownership,
        } => {
            assert_eq!(cluster, "Test Cluster");
            assert_eq!(partitioner, "Murmur3Partitioner");
            assert_eq!(snitch, "SimpleSnitch");
            let r = range_ownership.unwrap();
            assert_eq!(r.len(), 3);
            assert_eq!(
                r[0],
                ("-5".to_string(), vec!["/127.0.0.1:7000".to_string()])
            );
        }
        other => panic!("{other:?}"),
    }
    let out = describe(&s, &Describe::Cluster, None, &local(), &[]).unwrap();
    assert_eq!(out.columns().len(), 3);
    assert_eq!(out.rows()[0].len(), 3);
}

#[test]
fn save_and_load_round_trip() {
    let dir = std::env::temp_dir().join(format!(
        "tessera-schema-test-{}",
        digest::uuid_to_string(&digest::random_uuid())
    ));
    assert_eq!(Schema::load(&dir, "dc1").unwrap(), None);
    let mut s = run(
        &Schema::new_with_system_keyspaces("dc1"),
        "CREATE KEYSPACE \"MyKS\" WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3} AND durable_writes = false",
    );
    s = run(
        &s,
        "ALTER KEYSPACE system_auth WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3}",
    );
    s = s
        .apply_ddl(
            &stmt("CREATE TYPE \"MyKS\".inner (a int, b list<text>)"),
            None,
            &ctx(),
        )
        .unwrap()
        .0;
    s = s
        .apply_ddl(&stmt("CREATE TYPE \"MyKS\".flat (x int)"), None, &ctx())
        .unwrap()
        .0;
    s = s
        .apply_ddl(
            &stmt("CREATE TYPE \"MyKS\".outer (i frozen<inner>, m map<text, frozen<inner>>)"),
            None,
            &ctx(),
        )
        .unwrap()
        .0;
    // s2 (a partition key column) is declared last.
    let cql = "CREATE TABLE \"Tab_Le\" (k frozen<outer>, c timeuuid, s text static, v map<text, frozen<list<int>>>, \
         u frozen<inner>, w flat, t tuple<int, frozen<inner>>, d int, s2 bigint, PRIMARY KEY ((k, s2), c)) \
         WITH CLUSTERING ORDER BY (c DESC) \
         AND comment = 'it''s % here' AND gc_grace_seconds = 10 AND bloom_filter_fp_chance = 0.1 \
         AND caching = {'keys': 'NONE', 'rows_per_partition': '7'} AND speculative_retry = '50ms'";
    s = s.apply_ddl(&stmt(cql), Some("MyKS"), &ctx()).unwrap().0;
    for cql in [
        "ALTER TABLE \"Tab_Le\" DROP d",
        "ALTER TABLE \"Tab_Le\" DROP t",
        "ALTER TABLE \"Tab_Le\" ADD z int",
        "CREATE INDEX ix ON \"Tab_Le\" (KEYS(v))",
    ] {
        s = s.apply_ddl(&stmt(cql), Some("MyKS"), &ctx()).unwrap().0;
    }
    s.save(&dir).unwrap();
    let loaded = Schema::load(&dir, "dc1").unwrap().unwrap();
    assert_eq!(loaded, s);
    let t = loaded.table("MyKS", "Tab_Le").unwrap();
    assert_eq!(t.dropped_columns.len(), 2);
    assert_eq!(
        types::cql_type_string(&t.dropped_columns["t"].0),
        "frozen<tuple<int, frozen<tuple<int, frozen<list<text>>>>>>"
    );
    assert_eq!(t.column("z").unwrap().id, 6);
    assert_eq!(t.options.comment, "it's % here");

    // Saving again is atomic and replaces the file.
    let s2 = run(&loaded, "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
    s2.save(&dir).unwrap();
    assert_eq!(Schema::load(&dir, "dc1").unwrap().unwrap(), s2);
    assert!(!dir.join("schema.txt.tmp").exists());

    // A truncated file is rejected.
    let text = std::fs::read_to_string(dir.join("schema.txt")).unwrap();
    std::fs::write(dir.join("schema.txt"), &text[..text.len() - 4]).unwrap();
    let e = Schema::load(&dir, "dc1").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    std::fs::remove_dir_all(&dir).unwrap();
}
