//! Parser tests: a table of statements that must parse (many of them what
//! real drivers and tools send), expected trees for a representative subset,
//! syntax errors for broken input, and a no-panic fuzz loop.

use super::*;

/// Statements that must parse (to anything but `Unsupported`).
const VALID: &[&str] = &[
    // What drivers send at connect time (see notes/clients.md).
    "SELECT * FROM system.peers_v2",
    "SELECT * FROM system.peers",
    "SELECT * FROM system.local WHERE key='local'",
    "select * from system.local where key = 'local'",
    "SELECT * FROM system_schema.keyspaces",
    "SELECT * FROM system_schema.tables",
    "SELECT * FROM system_schema.columns",
    "SELECT * FROM system_schema.types",
    "SELECT * FROM system_schema.functions",
    "SELECT * FROM system_schema.aggregates",
    "SELECT * FROM system_schema.triggers",
    "SELECT * FROM system_schema.indexes",
    "SELECT * FROM system_schema.views",
    "SELECT * from system_virtual_schema.keyspaces",
    "SELECT * from system_virtual_schema.tables",
    "SELECT * from system_virtual_schema.columns",
    "SELECT peer, host_id, rpc_address, schema_version FROM system.peers",
    "SELECT schema_version FROM system.local WHERE key='local'",
    "SELECT broadcast_address, cluster_name, data_center, host_id, listen_address, partitioner, rack, release_version, rpc_address, schema_version, tokens FROM system.local WHERE key='local' USING TIMEOUT 2000ms",
    "SELECT peer, data_center, host_id, rack, release_version, rpc_address, schema_version, tokens FROM system.peers USING TIMEOUT 2000ms",
    "SELECT * FROM system_schema.keyspaces USING TIMEOUT 5000ms",
    "SELECT * FROM system.versions WHERE key = 'local'",
    "SELECT host_id, rpc_address, data_center, rack, tokens FROM system.peers USING TIMEOUT 30000ms",
    "SELECT host_id, rpc_address, data_center, rack, tokens, cluster_name FROM system.local WHERE key='local' USING TIMEOUT 30000ms",
    "SELECT keyspace_name, type_name, field_names, field_types FROM system_schema.types USING TIMEOUT 30000ms",
    "SELECT keyspace_name, initial_tablets FROM system_schema.scylla_keyspaces USING TIMEOUT 30000ms",
    "SELECT keyspace_name, table_name, column_name, kind, position, type FROM system_schema.columns USING TIMEOUT 30000ms",
    "SELECT keyspace_name, table_name, partitioner FROM system_schema.scylla_tables USING TIMEOUT 30000ms",
    "SELECT keyspace_name, table_name FROM system_schema.tables USING TIMEOUT 30000ms",
    "SELECT keyspace_name, view_name, base_table_name FROM system_schema.views USING TIMEOUT 30000ms",
    "SELECT keyspace_name, replication, durable_writes FROM system_schema.keyspaces USING TIMEOUT 30000ms",
    "SELECT keyspace_name, replication, durable_writes FROM system_schema.keyspaces where keyspace_name in ?",
    "SELECT keyspace_name, toJson(replication) AS replication FROM system_schema.keyspaces",
    "SELECT cluster_name, release_version FROM system.local",
    "SELECT * FROM system_traces.sessions WHERE session_id = ?",
    "SELECT * FROM system_traces.events WHERE session_id = ?",
    // latte / cassandra-stress style.
    "INSERT INTO latte.basic (id, data) VALUES (:id, :data)",
    "TRUNCATE TABLE latte.basic",
    "TRUNCATE latte.basic",
    "CREATE KEYSPACE IF NOT EXISTS latte WITH REPLICATION = { 'class' : 'SimpleStrategy', 'replication_factor' : 1 }",
    "CREATE TABLE IF NOT EXISTS latte.basic(id bigint PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS \"standard1\" (\n  key blob,\n  \"C0\" blob,\n  \"C1\" blob,\n  PRIMARY KEY (key)\n) WITH COMPACT STORAGE\n  AND compression = {}",
    "CREATE TABLE keyspace1.counter1 (key blob PRIMARY KEY, \"C0\" counter, \"C1\" counter) WITH COMPACT STORAGE",
    "UPDATE keyspace1.counter1 SET \"C0\" = \"C0\" + ?, \"C1\" = \"C1\" + ? WHERE key = ?",
    "SELECT * FROM \"standard1\" WHERE key = ? LIMIT 1",
    // Keyspaces.
    "CREATE KEYSPACE ks WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': '2'} AND durable_writes = false",
    "CREATE SCHEMA ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
    "ALTER KEYSPACE ks WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 0}",
    "ALTER KEYSPACE IF EXISTS ks WITH durable_writes = true",
    "DROP KEYSPACE ks",
    "DROP KEYSPACE IF EXISTS \"MyKs\"",
    "USE ks",
    "USE \"MyKs\";",
    // Tables.
    "CREATE TABLE t (a int, b int, c text, d map<text, int>, s int static, PRIMARY KEY ((a, b), c))",
    "CREATE TABLE t (a int, b int, c int, PRIMARY KEY (a, b, c)) WITH CLUSTERING ORDER BY (b DESC, c ASC) AND comment = 'hi' AND gc_grace_seconds = 10",
    "CREATE TABLE ks.t (k int PRIMARY KEY, v frozen<list<tuple<int, text>>>, u ks.addr, x 'org.apache.cassandra.db.marshal.Int32Type',) WITH compaction = {'class': 'LeveledCompactionStrategy', 'sstable_size_in_mb': 160} AND caching = {'keys': 'ALL', 'rows_per_partition': 'NONE'} AND bloom_filter_fp_chance = 0.01 AND speculative_retry = '99PERCENTILE' AND default_time_to_live = 0",
    "CREATE COLUMNFAMILY t (k int PRIMARY KEY)",
    "CREATE TABLE t (key text PRIMARY KEY, type int, ttl int, count int, timestamp int, value int, values int, writetime int, json int, distinct int, as int, keys int, static int, frozen int, list int, map int, tuple int, exists int, custom int, cluster int, tables int, types int, time int, date int, text int)",
    "CREATE TABLE t (k int, c timeuuid, v blob, PRIMARY KEY (k, c)) WITH CLUSTERING ORDER BY (c DESC) AND COMPACT STORAGE",
    "ALTER TABLE t ADD c int",
    "ALTER TABLE t ADD IF NOT EXISTS (c int, d text static)",
    "ALTER TABLE t DROP c",
    "ALTER TABLE t DROP IF EXISTS (c, d)",
    "ALTER TABLE t RENAME a TO b AND c TO d",
    "ALTER TABLE t ALTER c TYPE blob",
    "ALTER TABLE IF EXISTS ks.t WITH comment = 'x' AND compaction = {'class': 'SizeTieredCompactionStrategy', 'enabled': true}",
    "DROP TABLE t",
    "DROP TABLE IF EXISTS ks.t",
    "DROP COLUMNFAMILY ks.t",
    // Types.
    "CREATE TYPE addr (street text, zip int)",
    "CREATE TYPE IF NOT EXISTS ks.addr (street text, phones frozen<set<text>>,)",
    "ALTER TYPE ks.addr ADD country text",
    "ALTER TYPE addr RENAME zip TO postcode AND street TO road",
    "DROP TYPE IF EXISTS ks.addr",
    // Indexes.
    "CREATE INDEX ON t (v)",
    "CREATE INDEX IF NOT EXISTS idx ON ks.t (keys(m))",
    "CREATE INDEX i2 ON t (values(l))",
    "CREATE INDEX i3 ON t (entries(m))",
    "CREATE INDEX i4 ON t (full(f))",
    "CREATE CUSTOM INDEX i5 ON t (v) USING 'org.apache.cassandra.index.sasi.SASIIndex' WITH OPTIONS = {'mode': 'CONTAINS'}",
    "DROP INDEX i",
    "DROP INDEX IF EXISTS ks.i",
    // DML.
    "INSERT INTO t (a, b) VALUES (1, 'x') IF NOT EXISTS USING TTL 10 AND TIMESTAMP 123",
    "INSERT INTO t (a, b) VALUES (?, ?) USING TIMESTAMP ? AND TTL ?",
    "INSERT INTO t (a, b) VALUES (?, ?) USING TIMEOUT 500ms",
    "INSERT INTO t JSON '{\"a\": 1}'",
    "INSERT INTO t JSON ? DEFAULT UNSET",
    "INSERT INTO t JSON :j DEFAULT NULL IF NOT EXISTS",
    "INSERT INTO t (a, b, c, d, e, f, g, h, i) VALUES (-1, 1.5e10, true, 0xcafe, 123e4567-e89b-12d3-a456-426655440000, 1h30m, NaN, -Infinity, null)",
    "INSERT INTO t (l, s, m, tu, u) VALUES ([1, 2], {1, 2}, {'a': 1}, (1, 'x'), {street: 'a', \"Zip\": 1})",
    "INSERT INTO t (a, b) VALUES ((int) ?, (frozen<list<int>>) [1])",
    "INSERT INTO t (a, b) VALUES (now(), uuid())",
    "INSERT INTO t (a) VALUES (ks.myfunc(1, ?))",
    "INSERT INTO t (a) VALUES ($$pg 'style'$$)",
    "UPDATE t SET a = 1, b = b + {1}, m['k'] = 1, l = [1] + l, u.f = 1 WHERE k = 1",
    "UPDATE t USING TTL 5 SET a = ? WHERE k = ? IF EXISTS",
    "UPDATE t SET a = 1 WHERE k = 1 IF a = 2 AND m['x'] = 3 AND b IN (1, 2) AND c != null",
    "UPDATE t SET c = c - 1, d = d -1, s = s - {'a'}, l += [3], m -= {'k'} WHERE k = 1",
    "UPDATE t USING TIMESTAMP 1 AND TIMEOUT 1s SET v = 1 WHERE k IN (1, 2) AND c >= 3",
    "DELETE FROM t WHERE k = 1",
    "DELETE a, m['k'], u.f FROM t USING TIMESTAMP ? WHERE k = ? IF EXISTS",
    "DELETE FROM ks.t WHERE k = 1 AND c > 2 AND c <= 5 IF v = 1",
    // Selects.
    "SELECT JSON DISTINCT a, b FROM t",
    "SELECT DISTINCT k FROM t",
    "SELECT json FROM t",
    "SELECT json, distinct FROM t",
    "SELECT count(*) FROM t",
    "SELECT COUNT(1) FROM t",
    "SELECT count(a) AS n FROM t",
    "SELECT writetime(v), ttl(v), tojson(m), token(a, b), max(c), blobasint(x) FROM t",
    "SELECT CAST(c AS text), u.f, u.g.h, 1, 'lit', ? FROM t",
    "SELECT a FROM t WHERE a = ? AND b IN (1, 2) AND c IN ? AND d > ? AND e != 1 AND f CONTAINS ? AND g CONTAINS KEY ? AND h LIKE 'x%'",
    "SELECT a FROM t WHERE (a, b) > (1, 2) AND (a, b) IN ((1, 2), (3, 4)) AND (c) = ? AND (a, b) IN ?",
    "SELECT a FROM t WHERE token(a, b) > token(?, ?) AND token(a) <= 123",
    "SELECT a FROM t WHERE c IS NOT NULL",
    "SELECT a FROM t WHERE (a = 1) AND ((b = 2))",
    "SELECT a, b FROM t WHERE k = 1 GROUP BY a, b ORDER BY c DESC, d ASC PER PARTITION LIMIT 2 LIMIT 10 ALLOW FILTERING",
    "SELECT * FROM t LIMIT ? ALLOW FILTERING USING TIMEOUT 2000ms",
    "SELECT * FROM t WHERE k = 1 BYPASS CACHE",
    "SELECT a AS \"A\", b as bee FROM t",
    "SELECT \"MyCol\" FROM \"MyTable\"",
    "SELECT (int) ? FROM t",
    "SELECT key, type, ttl, value, timestamp FROM t",
    "SELECT ks.f(a) FROM t",
    "SELECT * FROM t WHERE m = {'a': 1} AND s = {1, 2} AND l = [] AND e = {}",
    "SELECT * FROM t WHERE d = P1Y2M AND e = PT1H AND f = P2W AND g = -3d AND h = 12mo3d",
    // Batches.
    "BEGIN BATCH APPLY BATCH",
    "BEGIN BATCH INSERT INTO t (a) VALUES (1); UPDATE t SET a = 2 WHERE k = 1; DELETE FROM t WHERE k = 2; APPLY BATCH;",
    "BEGIN UNLOGGED BATCH USING TIMESTAMP 5 INSERT INTO t (a) VALUES (?) INSERT INTO t (a) VALUES (?) APPLY BATCH",
    "BEGIN COUNTER BATCH UPDATE c SET n = n + 1 WHERE k = 1; APPLY BATCH",
    // Describe.
    "DESCRIBE CLUSTER",
    "DESCRIBE KEYSPACES",
    "DESC KEYSPACE",
    "DESCRIBE KEYSPACE ks",
    "DESCRIBE ONLY KEYSPACE ks",
    "DESCRIBE TABLES",
    "DESCRIBE TABLE ks.t",
    "DESC COLUMNFAMILY t",
    "DESCRIBE TYPES",
    "DESCRIBE TYPE ks.addr",
    "DESCRIBE FUNCTIONS",
    "DESCRIBE AGGREGATES",
    "DESCRIBE INDEX ks.i",
    "DESCRIBE SCHEMA",
    "DESCRIBE FULL SCHEMA",
    "DESCRIBE ks",
    "DESCRIBE ks.t",
    "DESCRIBE KEYSPACE ks WITH INTERNALS",
    // Comments and whitespace.
    "  -- leading comment\n SELECT * FROM t /* inline */ WHERE k = 1 ; // trailing",
    "/* a */ SELECT * FROM t; -- x",
];

fn ok(q: &str) -> ParsedStatement {
    match parse_statement(q) {
        Ok(p) => p,
        Err(e) => panic!("failed to parse {q:?}: {e}"),
    }
}

fn stmt(q: &str) -> Statement {
    ok(q).statement
}

fn err(q: &str) -> SyntaxError {
    match parse_statement(q) {
        Ok(p) => panic!("{q:?} parsed but should not: {p:?}"),
        Err(e) => e,
    }
}

#[test]
fn valid_statements_parse() {
    for q in VALID {
        let p = ok(q);
        assert!(
            !matches!(p.statement, Statement::Unsupported(_)),
            "{q:?} parsed as {:?}",
            p.statement
        );
    }
}

fn qn(ks: Option<&str>, name: &str) -> QualifiedName {
    QualifiedName {
        keyspace: ks.map(str::to_string),
        name: name.to_string(),
    }
}

fn int(s: &str) -> Term {
    Term::Literal(Literal::Integer(s.into()))
}

fn string(s: &str) -> Term {
    Term::Literal(Literal::String(s.into()))
}

fn bind(index: usize, name: Option<&str>) -> Term {
    Term::Bind(BindMarker {
        index,
        name: name.map(str::to_string),
    })
}

fn col(c: &str) -> Selector {
    Selector::Column(c.into())
}

fn select_base(table: QualifiedName) -> Select {
    Select {
        table,
        distinct: false,
        json: false,
        selection: Selection::Star,
        where_clause: vec![],
        group_by: vec![],
        order_by: vec![],
        per_partition_limit: None,
        limit: None,
        allow_filtering: false,
        using: Using::default(),
    }
}

#[test]
fn select_local_with_timeout() {
    let p =
        ok("SELECT cluster_name, tokens FROM system.local WHERE key='local' USING TIMEOUT 2000ms");
    let mut s = select_base(qn(Some("system"), "local"));
    s.selection = Selection::Items(vec![
        SelectItem {
            selector: col("cluster_name"),
            alias: None,
        },
        SelectItem {
            selector: col("tokens"),
            alias: None,
        },
    ]);
    s.where_clause = vec![Relation::Single {
        column: "key".into(),
        op: Operator::Eq,
        value: string("local"),
    }];
    s.using.timeout = Some(Term::Literal(Literal::Duration("2000ms".into())));
    assert_eq!(p.statement, Statement::Select(s));
    assert!(p.bind_markers.is_empty());
}

#[test]
fn select_tojson_alias_and_case() {
    let s = stmt("select KEYSPACE_NAME, toJson(Replication) AS Replication, \"Q\"\"x\" FROM System_Schema.\"KeySpaces\"");
    let mut e = select_base(qn(Some("system_schema"), "KeySpaces"));
    e.selection = Selection::Items(vec![
        SelectItem {
            selector: col("keyspace_name"),
            alias: None,
        },
        SelectItem {
            selector: Selector::Function {
                name: "tojson".into(),
                args: vec![col("replication")],
            },
            alias: Some("replication".into()),
        },
        SelectItem {
            selector: col("Q\"x"),
            alias: None,
        },
    ]);
    assert_eq!(s, Statement::Select(e));
}

#[test]
fn select_full_clauses() {
    let p = ok("SELECT JSON DISTINCT count(*), COUNT(1), writetime(v), ttl(v), CAST(c AS text), u.f FROM t \
                WHERE k IN ? AND (a, b) >= (1, :x) AND token(k) > token(?) AND c CONTAINS KEY 'z' \
                GROUP BY k ORDER BY c DESC PER PARTITION LIMIT 3 LIMIT :lim ALLOW FILTERING");
    assert_eq!(
        p.bind_markers,
        vec![None, Some("x".to_string()), None, Some("lim".to_string())]
    );
    let Statement::Select(s) = p.statement else {
        panic!("not a select")
    };
    assert!(s.json && s.distinct && s.allow_filtering);
    assert_eq!(
        s.selection,
        Selection::Items(vec![
            SelectItem {
                selector: Selector::CountStar,
                alias: None
            },
            SelectItem {
                selector: Selector::CountStar,
                alias: None
            },
            SelectItem {
                selector: Selector::WriteTime("v".into()),
                alias: None
            },
            SelectItem {
                selector: Selector::Ttl("v".into()),
                alias: None
            },
            SelectItem {
                selector: Selector::Cast {
                    selector: Box::new(col("c")),
                    ty: CqlType::Native(ColumnType::Text)
                },
                alias: None
            },
            SelectItem {
                selector: Selector::Field {
                    selector: Box::new(col("u")),
                    field: "f".into()
                },
                alias: None
            },
        ])
    );
    assert_eq!(
        s.where_clause,
        vec![
            Relation::Single {
                column: "k".into(),
                op: Operator::In,
                value: bind(0, None)
            },
            Relation::MultiColumn {
                columns: vec!["a".into(), "b".into()],
                op: Operator::Gte,
                value: Term::Tuple(vec![int("1"), bind(1, Some("x"))])
            },
            Relation::Token {
                columns: vec!["k".into()],
                op: Operator::Gt,
                value: Term::FunctionCall {
                    name: "token".into(),
                    args: vec![bind(2, None)]
                }
            },
            Relation::Single {
                column: "c".into(),
                op: Operator::ContainsKey,
                value: string("z")
            },
        ]
    );
    assert_eq!(s.group_by, vec!["k".to_string()]);
    assert_eq!(s.order_by, vec![("c".to_string(), true)]);
    assert_eq!(s.per_partition_limit, Some(int("3")));
    assert_eq!(s.limit, Some(bind(3, Some("lim"))));
}

#[test]
fn select_in_list_and_multi_in() {
    let Statement::Select(s) =
        stmt("SELECT * FROM t WHERE a IN (1, 2) AND (b, c) IN ((1, 2), (3, 4)) AND d IN ()")
    else {
        panic!()
    };
    assert_eq!(
        s.where_clause,
        vec![
            Relation::Single {
                column: "a".into(),
                op: Operator::In,
                value: Term::Tuple(vec![int("1"), int("2")])
            },
            Relation::MultiColumn {
                columns: vec!["b".into(), "c".into()],
                op: Operator::In,
                value: Term::Tuple(vec![
                    Term::Tuple(vec![int("1"), int("2")]),
                    Term::Tuple(vec![int("3"), int("4")])
                ])
            },
            Relation::Single {
                column: "d".into(),
                op: Operator::In,
                value: Term::Tuple(vec![])
            },
        ]
    );
}

#[test]
fn insert_named_markers() {
    let p =
        ok("INSERT INTO latte.basic (id, data) VALUES (:id, :Data) USING TTL ? AND TIMESTAMP 42");
    assert_eq!(
        p.bind_markers,
        vec![Some("id".to_string()), Some("data".to_string()), None]
    );
    assert_eq!(
        p.statement,
        Statement::Insert(Insert {
            table: qn(Some("latte"), "basic"),
            columns: vec!["id".into(), "data".into()],
            values: vec![bind(0, Some("id")), bind(1, Some("data"))],
            json: None,
            json_default_unset: false,
            if_not_exists: false,
            using: Using {
                timestamp: Some(int("42")),
                ttl: Some(bind(2, None)),
                timeout: None
            },
        })
    );
}

#[test]
fn insert_literals() {
    let Statement::Insert(i) = stmt(
        "INSERT INTO t (a) VALUES (-1, 1.5e10, TRUE, 0xCAfe, 123E4567-e89b-12d3-a456-426655440000, 1h30m, nan, -Infinity, NULL, 'it''s', $$a'b$$, -NaN, 0x, -P1D)",
    ) else {
        panic!()
    };
    let lits: Vec<Literal> = i
        .values
        .into_iter()
        .map(|t| match t {
            Term::Literal(l) => l,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        lits,
        vec![
            Literal::Integer("-1".into()),
            Literal::Float("1.5e10".into()),
            Literal::Boolean(true),
            Literal::Blob(vec![0xca, 0xfe]),
            Literal::Uuid("123E4567-e89b-12d3-a456-426655440000".into()),
            Literal::Duration("1h30m".into()),
            Literal::Float("NaN".into()),
            Literal::Float("-Infinity".into()),
            Literal::Null,
            Literal::String("it's".into()),
            Literal::String("a'b".into()),
            Literal::Float("NaN".into()),
            Literal::Blob(vec![]),
            Literal::Duration("-P1D".into()),
        ]
    );
}

#[test]
fn insert_collections_udt_hints() {
    let Statement::Insert(i) = stmt(
        "INSERT INTO t (a) VALUES ([1, 2], {1}, {'k': [1]}, (1, 'x'), {street: 'a', \"Zip\": 1}, {}, (int) ?, (frozen<tuple<int, text>>) (1, 'a'), now(), KS.F(1))",
    ) else {
        panic!()
    };
    assert_eq!(
        i.values,
        vec![
            Term::List(vec![int("1"), int("2")]),
            Term::Set(vec![int("1")]),
            Term::Map(vec![(string("k"), Term::List(vec![int("1")]))]),
            Term::Tuple(vec![int("1"), string("x")]),
            Term::Udt(vec![
                ("street".into(), string("a")),
                ("Zip".into(), int("1"))
            ]),
            Term::Map(vec![]),
            Term::TypeHint {
                ty: CqlType::Native(ColumnType::Int),
                term: Box::new(bind(0, None))
            },
            Term::TypeHint {
                ty: CqlType::Frozen(Box::new(CqlType::Tuple(vec![
                    CqlType::Native(ColumnType::Int),
                    CqlType::Native(ColumnType::Text)
                ]))),
                term: Box::new(Term::Tuple(vec![int("1"), string("a")]))
            },
            Term::FunctionCall {
                name: "now".into(),
                args: vec![]
            },
            Term::FunctionCall {
                name: "ks.f".into(),
                args: vec![int("1")]
            },
        ]
    );
}

#[test]
fn insert_json() {
    assert_eq!(
        stmt("INSERT INTO t JSON ? DEFAULT UNSET IF NOT EXISTS USING TTL 3"),
        Statement::Insert(Insert {
            table: qn(None, "t"),
            columns: vec![],
            values: vec![],
            json: Some(bind(0, None)),
            json_default_unset: true,
            if_not_exists: true,
            using: Using {
                ttl: Some(int("3")),
                ..Using::default()
            },
        })
    );
}

#[test]
fn update_assignments_and_conditions() {
    let Statement::Update(u) = stmt(
        "UPDATE ks.t USING TIMESTAMP 7 SET a = 1, b = b + {1}, m['k'] = 1, l = [1] + l, u.f = 1, c = c - {2}, n = n -1, s += {3}, r -= [4] \
         WHERE k = 1 IF a = 2 AND m['x'] IN (1, 2)",
    ) else {
        panic!()
    };
    assert_eq!(u.table, qn(Some("ks"), "t"));
    assert_eq!(u.using.timestamp, Some(int("7")));
    assert_eq!(
        u.assignments,
        vec![
            Assignment::Set {
                column: "a".into(),
                value: int("1")
            },
            Assignment::Append {
                column: "b".into(),
                value: Term::Set(vec![int("1")])
            },
            Assignment::SetElement {
                column: "m".into(),
                key: string("k"),
                value: int("1")
            },
            Assignment::Prepend {
                column: "l".into(),
                value: Term::List(vec![int("1")])
            },
            Assignment::SetField {
                column: "u".into(),
                field: "f".into(),
                value: int("1")
            },
            Assignment::Remove {
                column: "c".into(),
                value: Term::Set(vec![int("2")])
            },
            Assignment::Append {
                column: "n".into(),
                value: int("-1")
            },
            Assignment::Append {
                column: "s".into(),
                value: Term::Set(vec![int("3")])
            },
            Assignment::Remove {
                column: "r".into(),
                value: Term::List(vec![int("4")])
            },
        ]
    );
    assert!(!u.if_exists);
    assert_eq!(
        u.conditions,
        vec![
            Condition {
                column: "a".into(),
                element: None,
                field: None,
                op: Operator::Eq,
                value: int("2")
            },
            Condition {
                column: "m".into(),
                element: Some(string("x")),
                field: None,
                op: Operator::In,
                value: Term::Tuple(vec![int("1"), int("2")])
            },
        ]
    );
}

#[test]
fn delete_targets() {
    assert_eq!(
        stmt("DELETE a, m['k'], u.f FROM t USING TIMESTAMP ? WHERE k = ? IF EXISTS"),
        Statement::Delete(Delete {
            table: qn(None, "t"),
            targets: vec![
                DeleteTarget::Column("a".into()),
                DeleteTarget::Element {
                    column: "m".into(),
                    key: string("k")
                },
                DeleteTarget::Field {
                    column: "u".into(),
                    field: "f".into()
                },
            ],
            using: Using {
                timestamp: Some(bind(0, None)),
                ..Using::default()
            },
            where_clause: vec![Relation::Single {
                column: "k".into(),
                op: Operator::Eq,
                value: bind(1, None)
            }],
            if_exists: true,
            conditions: vec![],
        })
    );
}

#[test]
fn batch_numbering() {
    let p = ok("BEGIN UNLOGGED BATCH USING TIMESTAMP 5 INSERT INTO t (a) VALUES (?); UPDATE t SET a = :x WHERE k = ? APPLY BATCH;");
    assert_eq!(p.bind_markers, vec![None, Some("x".into()), None]);
    let Statement::Batch(b) = p.statement else {
        panic!()
    };
    assert_eq!(b.kind, BatchKind::Unlogged);
    assert_eq!(b.using.timestamp, Some(int("5")));
    assert_eq!(b.statements.len(), 2);
    assert!(matches!(b.statements[1], Statement::Update(_)));
}

#[test]
fn create_keyspace_properties() {
    assert_eq!(
        stmt("CREATE KEYSPACE IF NOT EXISTS Ks WITH replication = {'class': 'NetworkTopologyStrategy', 'DC1': 3} AND DURABLE_WRITES = false"),
        Statement::CreateKeyspace {
            name: "ks".into(),
            if_not_exists: true,
            properties: vec![
                Property {
                    name: "replication".into(),
                    value: PropertyValue::Map(vec![
                        (
                            Literal::String("class".into()),
                            Literal::String("NetworkTopologyStrategy".into())
                        ),
                        (Literal::String("DC1".into()), Literal::Integer("3".into())),
                    ])
                },
                Property {
                    name: "durable_writes".into(),
                    value: PropertyValue::Constant(Literal::Boolean(false))
                },
            ],
        }
    );
}

#[test]
fn create_table_full() {
    let Statement::CreateTable(ct) = stmt(
        "CREATE TABLE IF NOT EXISTS ks.t (a int, b int, c text, \"D\" map<text, frozen<list<int>>>, s int STATIC, PRIMARY KEY ((a, b), c)) \
         WITH CLUSTERING ORDER BY (c DESC) AND COMPACT STORAGE AND comment = 'x' AND compaction = {'class': 'LCS'}",
    ) else {
        panic!()
    };
    assert_eq!(ct.name, qn(Some("ks"), "t"));
    assert!(ct.if_not_exists && ct.compact_storage);
    assert_eq!(ct.partition_key, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(ct.clustering_key, vec!["c".to_string()]);
    assert_eq!(ct.clustering_order, vec![("c".to_string(), true)]);
    assert_eq!(ct.columns.len(), 5);
    assert_eq!(
        ct.columns[3],
        ColumnDef {
            name: "D".into(),
            ty: CqlType::Map(
                Box::new(CqlType::Native(ColumnType::Text)),
                Box::new(CqlType::Frozen(Box::new(CqlType::List(Box::new(
                    CqlType::Native(ColumnType::Int)
                )))))
            ),
            is_static: false
        }
    );
    assert!(ct.columns[4].is_static);
    assert_eq!(
        ct.properties,
        vec![
            Property {
                name: "comment".into(),
                value: PropertyValue::Constant(Literal::String("x".into()))
            },
            Property {
                name: "compaction".into(),
                value: PropertyValue::Map(vec![(
                    Literal::String("class".into()),
                    Literal::String("LCS".into())
                )])
            },
        ]
    );
    let Statement::CreateTable(ct) = stmt("CREATE TABLE t (k int PRIMARY KEY, v int)") else {
        panic!()
    };
    assert_eq!(ct.partition_key, vec!["k".to_string()]);
    assert!(ct.clustering_key.is_empty());
}

#[test]
fn alter_table_ops() {
    let op = |q: &str| match stmt(q) {
        Statement::AlterTable(a) => a.op,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        op("ALTER TABLE t ADD IF NOT EXISTS (c int, d text static)"),
        AlterTableOp::Add {
            if_not_exists: true,
            columns: vec![
                ColumnDef {
                    name: "c".into(),
                    ty: CqlType::Native(ColumnType::Int),
                    is_static: false
                },
                ColumnDef {
                    name: "d".into(),
                    ty: CqlType::Native(ColumnType::Text),
                    is_static: true
                },
            ]
        }
    );
    assert_eq!(
        op("ALTER TABLE t DROP (c, d)"),
        AlterTableOp::Drop {
            if_exists: false,
            columns: vec!["c".into(), "d".into()]
        }
    );
    assert_eq!(
        op("ALTER TABLE t RENAME a TO b AND c TO d"),
        AlterTableOp::Rename(vec![("a".into(), "b".into()), ("c".into(), "d".into())])
    );
    assert_eq!(
        op("ALTER TABLE t ALTER c TYPE blob"),
        AlterTableOp::AlterType {
            column: "c".into(),
            ty: CqlType::Native(ColumnType::Blob)
        }
    );
}

#[test]
fn create_index_forms() {
    assert_eq!(
        stmt("CREATE CUSTOM INDEX IF NOT EXISTS idx ON ks.t (keys(m)) USING 'Foo' WITH OPTIONS = {'a': 'b'}"),
        Statement::CreateIndex(CreateIndex {
            name: Some("idx".into()),
            table: qn(Some("ks"), "t"),
            if_not_exists: true,
            target: IndexTarget::Keys("m".into()),
            custom_class: Some("Foo".into()),
            properties: vec![Property {
                name: "options".into(),
                value: PropertyValue::Map(vec![(
                    Literal::String("a".into()),
                    Literal::String("b".into())
                )])
            }],
        })
    );
    let Statement::CreateIndex(ci) = stmt("CREATE INDEX ON t (values)") else {
        panic!()
    };
    assert_eq!(ci.name, None);
    assert_eq!(ci.target, IndexTarget::Values("values".into()));
}

#[test]
fn describe_forms() {
    let d = |q: &str| match stmt(q) {
        Statement::Describe(d) => d,
        other => panic!("{other:?}"),
    };
    assert_eq!(d("DESCRIBE CLUSTER"), Describe::Cluster);
    assert_eq!(d("desc keyspaces"), Describe::Keyspaces);
    assert_eq!(
        d("DESCRIBE KEYSPACE"),
        Describe::Keyspace {
            name: None,
            only: false
        }
    );
    assert_eq!(
        d("DESCRIBE ONLY KEYSPACE \"Ks\""),
        Describe::Keyspace {
            name: Some("Ks".into()),
            only: true
        }
    );
    assert_eq!(d("DESCRIBE TABLES"), Describe::Tables);
    assert_eq!(
        d("DESCRIBE TABLE ks.t"),
        Describe::Table(qn(Some("ks"), "t"))
    );
    assert_eq!(d("DESCRIBE TYPES"), Describe::Types);
    assert_eq!(d("DESCRIBE TYPE a"), Describe::Type(qn(None, "a")));
    assert_eq!(d("DESCRIBE FUNCTIONS"), Describe::Functions);
    assert_eq!(d("DESCRIBE AGGREGATES"), Describe::Aggregates);
    assert_eq!(d("DESCRIBE INDEX i"), Describe::Index(qn(None, "i")));
    assert_eq!(d("DESCRIBE SCHEMA"), Describe::Schema { full: false });
    assert_eq!(d("DESCRIBE FULL SCHEMA"), Describe::Schema { full: true });
    assert_eq!(d("DESCRIBE ks.t"), Describe::Name(qn(Some("ks"), "t")));
    assert_eq!(d("DESCRIBE foo"), Describe::Name(qn(None, "foo")));
}

#[test]
fn misc_statements() {
    assert_eq!(stmt("USE \"MyKs\""), Statement::Use("MyKs".into()));
    assert_eq!(stmt("use MyKs;"), Statement::Use("myks".into()));
    assert_eq!(
        stmt("TRUNCATE TABLE ks.t"),
        Statement::Truncate(qn(Some("ks"), "t"))
    );
    assert_eq!(
        stmt("DROP TABLE IF EXISTS t"),
        Statement::DropTable {
            name: qn(None, "t"),
            if_exists: true
        }
    );
    assert_eq!(
        stmt("DROP KEYSPACE ks"),
        Statement::DropKeyspace {
            name: "ks".into(),
            if_exists: false
        }
    );
    assert_eq!(
        stmt("CREATE TYPE ks.addr (street text, zip int)"),
        Statement::CreateType(CreateType {
            name: qn(Some("ks"), "addr"),
            if_not_exists: false,
            fields: vec![
                ("street".into(), CqlType::Native(ColumnType::Text)),
                ("zip".into(), CqlType::Native(ColumnType::Int)),
            ],
        })
    );
    assert_eq!(
        stmt("ALTER TYPE addr ADD country text"),
        Statement::AlterType(AlterType {
            name: qn(None, "addr"),
            if_exists: false,
            op: AlterTypeOp::Add {
                field: "country".into(),
                ty: CqlType::Native(ColumnType::Text)
            },
        })
    );
}

#[test]
fn unsupported_statements() {
    let cases = [
        ("CREATE ROLE alice WITH PASSWORD = 'x' AND LOGIN = true", "CREATE ROLE"),
        ("CREATE USER bob WITH PASSWORD 'x' SUPERUSER", "CREATE USER"),
        ("ALTER ROLE alice WITH PASSWORD = 'y'", "ALTER ROLE"),
        ("DROP USER IF EXISTS bob", "DROP USER"),
        ("GRANT SELECT ON KEYSPACE ks TO alice", "GRANT"),
        ("REVOKE ALL ON ALL KEYSPACES FROM alice", "REVOKE"),
        ("LIST ROLES", "LIST ROLES"),
        ("LIST USERS", "LIST USERS"),
        ("LIST ALL PERMISSIONS OF alice", "LIST PERMISSIONS"),
        (
            "CREATE OR REPLACE FUNCTION f(a int) CALLED ON NULL INPUT RETURNS int LANGUAGE java AS $$ return a; $$",
            "CREATE FUNCTION",
        ),
        ("CREATE AGGREGATE a(int) SFUNC s STYPE int", "CREATE AGGREGATE"),
        ("DROP FUNCTION ks.f", "DROP FUNCTION"),
        ("DROP AGGREGATE ks.a", "DROP AGGREGATE"),
        (
            "CREATE MATERIALIZED VIEW v AS SELECT * FROM t WHERE k IS NOT NULL PRIMARY KEY (k)",
            "CREATE MATERIALIZED VIEW",
        ),
        ("ALTER MATERIALIZED VIEW v WITH comment = 'x'", "ALTER MATERIALIZED VIEW"),
        ("DROP MATERIALIZED VIEW v", "DROP MATERIALIZED VIEW"),
        ("CREATE TRIGGER tr ON t USING 'x'", "CREATE TRIGGER"),
        ("DROP TRIGGER tr ON t", "DROP TRIGGER"),
    ];
    for (q, what) in cases {
        assert_eq!(stmt(q), Statement::Unsupported(what.into()), "{q}");
    }
    // Valid CQL with constructs the AST cannot hold yet.
    for q in [
        "SELECT * FROM t WHERE m['k'] = 1 ALLOW FILTERING",
        "ALTER TABLE t DROP COMPACT STORAGE",
        "CREATE INDEX ON t (a, b)",
    ] {
        assert!(
            matches!(stmt(q), Statement::Unsupported(_)),
            "{q} should be unsupported"
        );
    }
}

#[test]
fn identifiers_and_keywords() {
    // Unreserved keywords are identifiers.
    let Statement::Select(s) = stmt("SELECT key, TTL, count, type FROM keyspaces WHERE value = 1")
    else {
        panic!()
    };
    assert_eq!(
        s.selection,
        Selection::Items(
            ["key", "ttl", "count", "type"]
                .iter()
                .map(|c| SelectItem {
                    selector: col(c),
                    alias: None
                })
                .collect()
        )
    );
    // Reserved keywords are not, unless quoted.
    for q in [
        "SELECT select FROM t",
        "CREATE TABLE t (from int PRIMARY KEY)",
        "SELECT * FROM table",
        "UPDATE t SET limit = 1 WHERE k = 1",
        "CREATE TABLE t (token int PRIMARY KEY)",
        "SELECT * FROM t WHERE null = 1",
    ] {
        err(q);
    }
    ok("SELECT \"select\" FROM \"table\"");
    ok("CREATE TABLE t (\"from\" int PRIMARY KEY)");
}

#[test]
fn syntax_errors() {
    let e = err("SELECT * FROMM t");
    assert_eq!((e.line, e.col), (1, 9));
    assert_eq!(
        e.to_string(),
        "line 1:9 mismatched input 'FROMM' expecting FROM (SELECT * [FROMM] t)"
    );
    let e = err("SELEC * FROM t");
    assert!(e
        .to_string()
        .starts_with("line 1:0 no viable alternative at input 'SELEC'"));
    let e = err("SELECT *\nFROM t\nWHERE");
    assert_eq!((e.line, e.col), (3, 5));
    assert!(e.message.contains("'<EOF>'"), "{}", e.message);
    let e = err("SELECT * FROM t WHERE k = 'abc");
    assert!(e.message.contains("<EOF>"));
    let e = err("INSERT INTO t (a) VALUES (0xabc)");
    assert!(e.message.contains("even length"));
    let e = err("SELECT * FROM t; SELECT * FROM t");
    assert!(e.message.contains("expecting EOF"), "{}", e.message);
    let e = err("CREATE TABLE t (a int PRIMARY KEY, b int, PRIMARY KEY (b))");
    assert!(e.message.contains("Multiple PRIMARY KEYs"));
    let e = err("SELECT COUNT(2) FROM t");
    assert!(e.message.contains("Only COUNT(1)"));
    let e = err("CREATE KEYSPACE k WITH a = 1 AND a = 2");
    assert!(e.message.contains("Multiple definition for property a"));
}

/// Statements that must fail to parse.
const INVALID: &[&str] = &[
    "",
    ";",
    "SELECT",
    "SELECT * FROM",
    "SELECT * FROM t WHERE",
    "SELECT * FROM t WHERE a",
    "SELECT * FROM t WHERE a = ",
    "SELECT * FROM t LIMIT",
    "SELECT * FROM t LIMIT 'x'",
    "SELECT * FROM t ORDER c",
    "SELECT a b FROM t",
    "SELECT * FROM t USING TTL 1",
    "SELECT * FROM a.b.c",
    "INSERT INTO t VALUES (1)",
    "INSERT INTO t (a) VALUES",
    "INSERT INTO t (a) VALUES (1) USING TTL 1 IF NOT EXISTS",
    "INSERT INTO t (a) VALUES (1,)",
    "INSERT INTO t (a) VALUES ([1, 2)",
    "INSERT INTO t (a) VALUES ({1: 2, 3})",
    "INSERT INTO t (a) VALUES (a)",
    "UPDATE t SET a = 1",
    "UPDATE t SET a = b + 1 WHERE k = 1",
    "UPDATE t SET a = 1 + b WHERE k = 1",
    "UPDATE t SET a = a 1 WHERE k = 1",
    "DELETE FROM t",
    "DELETE FROM t USING TTL 1 WHERE k = 1",
    "BEGIN BATCH SELECT * FROM t APPLY BATCH",
    "BEGIN BATCH INSERT INTO t (a) VALUES (1)",
    "CREATE TABLE t (a int",
    "CREATE TABLE t (a int PRIMARY KEY) WITH CLUSTERING ORDER BY (a)",
    "CREATE TABLE t (a list PRIMARY KEY)",
    "CREATE TABLE t (a map<int> PRIMARY KEY)",
    "CREATE TYPE int (a int)",
    "CREATE TYPE ks.text (a int)",
    "CREATE KEYSPACE ks",
    "CREATE KEYSPACE ks WITH replication = {'a': {'b': 1}}",
    "CREATE CUSTOM INDEX ON t (a)",
    "CREATE INDEX ON t (a) USING 'org.Foo'",
    "CREATE INDEX ON t (foo(a))",
    "ALTER TABLE t",
    "DROP",
    "DROP t",
    "USE",
    "DESCRIBE",
    "DESCRIBE TABLE",
    "FOO BAR",
    "SELECT * FROM t WHERE k = 1 ALLOW",
    "SELECT * FROM t # comment",
    "SELECT * FROM t WHERE k = $abc",
    "SELECT * FROM t WHERE k = 'a' 'b'",
    "SELECT (a, b) FROM t",
    "SELECT * FROM t WHERE (a, b) = 1",
    "SELECT * FROM t WHERE token(a) IN (1)",
    "SELECT * FROM t /* unterminated",
];

#[test]
fn invalid_statements_fail() {
    for q in INVALID {
        if let Ok(p) = parse_statement(q) {
            panic!("{q:?} should fail, got {p:?}");
        }
    }
}

#[test]
fn types() {
    use CqlType::*;
    assert_eq!(
        parse_type("frozen<map<text, list<int>>>").unwrap(),
        Frozen(Box::new(Map(
            Box::new(Native(ColumnType::Text)),
            Box::new(List(Box::new(Native(ColumnType::Int))))
        )))
    );
    assert_eq!(
        parse_type("ks.my_udt").unwrap(),
        UserDefined(qn(Some("ks"), "my_udt"))
    );
    assert_eq!(
        parse_type("\"MyUdt\"").unwrap(),
        UserDefined(qn(None, "MyUdt"))
    );
    assert_eq!(
        parse_type("'org.apache.cassandra.db.marshal.Int32Type'").unwrap(),
        Native(ColumnType::Custom(
            "org.apache.cassandra.db.marshal.Int32Type".into()
        ))
    );
    assert_eq!(
        parse_type("tuple<int, varchar, set<timeuuid>>").unwrap(),
        Tuple(vec![
            Native(ColumnType::Int),
            Native(ColumnType::Text),
            Set(Box::new(Native(ColumnType::Timeuuid)))
        ])
    );
    for (name, ty) in [
        ("ascii", ColumnType::Ascii),
        ("BIGINT", ColumnType::BigInt),
        ("blob", ColumnType::Blob),
        ("boolean", ColumnType::Boolean),
        ("counter", ColumnType::Counter),
        ("decimal", ColumnType::Decimal),
        ("double", ColumnType::Double),
        ("duration", ColumnType::Duration),
        ("float", ColumnType::Float),
        ("inet", ColumnType::Inet),
        ("int", ColumnType::Int),
        ("smallint", ColumnType::SmallInt),
        ("text", ColumnType::Text),
        ("varchar", ColumnType::Text),
        ("timestamp", ColumnType::Timestamp),
        ("tinyint", ColumnType::TinyInt),
        ("uuid", ColumnType::Uuid),
        ("varint", ColumnType::Varint),
        ("timeuuid", ColumnType::Timeuuid),
        ("date", ColumnType::Date),
        ("time", ColumnType::Time),
    ] {
        assert_eq!(parse_type(name).unwrap(), Native(ty), "{name}");
    }
    for bad in [
        "", "list", "list<>", "map<int>", "set", "frozen<", "int int", "ks.int", "tuple<>",
        "select",
    ] {
        assert!(parse_type(bad).is_err(), "{bad:?} should fail");
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!(
        "INSERT INTO t (a) VALUES ({}1{})",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(err(&deep).message.contains("nested too deeply"));
    let deep = format!(
        "SELECT * FROM t WHERE {}a = 1{}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    err(&deep);
    let deep = format!("{}int{}", "list<".repeat(100_000), ">".repeat(100_000));
    assert!(parse_type(&deep).is_err());
    let deep = format!(
        "SELECT {}a{} FROM t",
        "f(".repeat(100_000),
        ")".repeat(100_000)
    );
    err(&deep);
}

/// xorshift64*, so the fuzz test is deterministic and dependency-free.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const FRAGMENTS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ";",
    ".",
    "=",
    "<",
    ">",
    "<=",
    "!=",
    "+",
    "-",
    "*",
    "?",
    ":",
    ":x",
    "'",
    "''",
    "\"",
    "$$",
    "..",
    "0x",
    "1",
    "-1",
    "1.5e",
    "1h",
    "P1Y",
    "PT",
    "NaN",
    "-Infinity",
    "null",
    "true",
    "token",
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "IN",
    "IF",
    "EXISTS",
    "NOT",
    "USING",
    "TTL",
    "TIMESTAMP",
    "TIMEOUT",
    "WITH",
    "PRIMARY",
    "KEY",
    "frozen<",
    "map<",
    "list<",
    "tuple<",
    "int",
    "CONTAINS",
    "LIKE",
    "IS",
    "AS",
    "CAST",
    "count",
    "BEGIN",
    "BATCH",
    "APPLY",
    "--",
    "/*",
    "*/",
    "//",
    "\n",
    " ",
    "µ",
    "é",
    "\u{0}",
    "ks.",
    "a",
    "\"Q\"",
];

fn mutate(rng: &mut XorShift, base: &str) -> String {
    let mut s: Vec<u8> = base.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let pos = rng.below(s.len() + 1);
        match rng.below(6) {
            0 if !s.is_empty() => {
                // Delete a run of bytes.
                let len = 1 + rng.below(8);
                let end = (pos + len).min(s.len());
                s.drain(pos.min(end)..end);
            }
            1 => {
                let f = FRAGMENTS[rng.below(FRAGMENTS.len())];
                s.splice(pos..pos, f.bytes());
            }
            2 if !s.is_empty() => {
                let p = pos.min(s.len() - 1);
                s[p] = rng.next() as u8;
            }
            3 => {
                // Duplicate a slice of the statement somewhere else.
                let a = rng.below(s.len() + 1);
                let b = (a + rng.below(20)).min(s.len());
                let piece: Vec<u8> = s[a..b].to_vec();
                s.splice(pos..pos, piece);
            }
            4 => s.truncate(pos),
            _ => {
                let other = VALID[rng.below(VALID.len())].as_bytes();
                let a = rng.below(other.len() + 1);
                let b = (a + rng.below(30)).min(other.len());
                s.splice(pos..pos, other[a..b].iter().copied());
            }
        }
    }
    String::from_utf8_lossy(&s).into_owned()
}

#[test]
fn fuzz_no_panic() {
    let iterations: usize = std::env::var("CQL_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let seed: u64 = std::env::var("CQL_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let mut rng = XorShift(seed | 1);
    let mut parsed = 0usize;
    for _ in 0..iterations {
        let base = VALID[rng.below(VALID.len())];
        let input = mutate(&mut rng, base);
        match parse_statement(&input) {
            Ok(_) => parsed += 1,
            Err(e) => {
                // Errors must point inside the input.
                let lines = input.split('\n').count();
                assert!(e.line >= 1 && e.line <= lines, "{input:?}: {e}");
                let _ = e.to_string();
            }
        }
        let _ = parse_type(&input);
    }
    // Mutations are mild enough that some still parse; all of them failing
    // would mean the fuzzer is not exercising the parser past the lexer.
    assert!(
        parsed > iterations / 100,
        "only {parsed} of {iterations} parsed"
    );
}

#[test]
fn collection_element_and_slice_selectors() {
    let Statement::Select(s) = stmt("SELECT m['k'], s[1..], m[..'z'] FROM t") else {
        panic!("not a SELECT");
    };
    let Selection::Items(items) = &s.selection else {
        panic!("not items");
    };
    let col = |c: &str| Box::new(Selector::Column(c.into()));
    let text = |v: &str| Term::Literal(Literal::String(v.into()));
    assert_eq!(
        items[0].selector,
        Selector::Element {
            selector: col("m"),
            key: text("k"),
        }
    );
    assert_eq!(
        items[1].selector,
        Selector::Slice {
            selector: col("s"),
            from: Some(Term::Literal(Literal::Integer("1".into()))),
            to: None,
        }
    );
    assert_eq!(
        items[2].selector,
        Selector::Slice {
            selector: col("m"),
            from: None,
            to: Some(text("z")),
        }
    );
    // Terms print as Cassandra shows them in messages.
    assert_eq!(text("it's").to_string(), "'it''s'");
    let list = Term::List(vec![Term::Literal(Literal::Integer("1".into())), text("a")]);
    assert_eq!(list.to_string(), "[1, 'a']");
}

#[test]
fn condition_on_user_type_field() {
    let Statement::Update(u) = stmt("UPDATE t SET a = 1 WHERE k = 1 IF u.zip IN (1, 2)") else {
        panic!("not an UPDATE");
    };
    assert_eq!(
        u.conditions,
        vec![Condition {
            column: "u".into(),
            element: None,
            field: Some("zip".into()),
            op: Operator::In,
            value: Term::Tuple(vec![int("1"), int("2")])
        }]
    );
}
