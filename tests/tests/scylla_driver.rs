//! The Rust `scylla` driver (1.9, protocol v4, prepares every metadata query) against a real
//! node. Each test starts its own node on its own loopback address, so the tests run in
//! parallel under both `cargo test` and `cargo nextest`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use futures::TryStreamExt;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::cluster::metadata::{ColumnKind, ColumnType, NativeType, Strategy};
use scylla::errors::{DbError, ExecutionError, PrepareError, RequestAttemptError};
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::unprepared::Statement;
use scylla::value::{
    CqlDate, CqlDecimal, CqlDuration, CqlTime, CqlTimestamp, CqlTimeuuid, CqlValue, CqlVarint,
};
use tessera_tests::Node;
use uuid::Uuid;

async fn connect(node: &Node) -> Session {
    SessionBuilder::new()
        .known_node(node.contact_point())
        .build()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "scylla driver could not connect to {}: {e}",
                node.contact_point()
            )
        })
}

async fn run(session: &Session, cql: &str) {
    session
        .query_unpaged(cql, &[])
        .await
        .unwrap_or_else(|e| panic!("{cql}: {e}"));
}

async fn create_keyspace(session: &Session, ks: &str) {
    run(
        session,
        &format!(
            "CREATE KEYSPACE {ks} WITH replication = \
             {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_and_sees_schema_metadata() {
    let Some(node) = Node::start_or_skip("127.0.0.61", 9042, "connects_and_sees_schema_metadata")
    else {
        return;
    };
    let session = connect(&node).await;

    let state = session.get_cluster_state();
    let nodes = state.get_nodes_info();
    assert_eq!(nodes.len(), 1, "one node in the cluster");
    assert_eq!(nodes[0].address.ip(), IpAddr::from_str(&node.addr).unwrap());
    assert_eq!(nodes[0].datacenter.as_deref(), Some("datacenter1"));
    assert!(
        state.get_keyspace("system_schema").is_some(),
        "system_schema in metadata"
    );

    create_keyspace(&session, "rs_meta").await;
    run(
        &session,
        "CREATE TABLE rs_meta.t (a int, b text, c timestamp, d bigint, s text STATIC, v blob, \
         PRIMARY KEY ((a, b), c, d)) WITH CLUSTERING ORDER BY (c DESC, d ASC)",
    )
    .await;
    session
        .await_schema_agreement()
        .await
        .expect("schema agreement");
    session.refresh_metadata().await.expect("refresh metadata");

    let state = session.get_cluster_state();
    let ks = state
        .get_keyspace("rs_meta")
        .expect("keyspace rs_meta in cluster state");
    match &ks.strategy {
        Strategy::SimpleStrategy { replication_factor } => assert_eq!(*replication_factor, 1),
        other => panic!("expected SimpleStrategy, got {other:?}"),
    }
    assert!(ks.durable_writes);
    let t = ks
        .tables
        .get("t")
        .expect("table rs_meta.t in cluster state");
    assert_eq!(t.partition_key, vec!["a", "b"]);
    assert_eq!(t.clustering_key, vec!["c", "d"]);
    let expect = [
        ("a", ColumnKind::PartitionKey, NativeType::Int),
        ("b", ColumnKind::PartitionKey, NativeType::Text),
        ("c", ColumnKind::Clustering, NativeType::Timestamp),
        ("d", ColumnKind::Clustering, NativeType::BigInt),
        ("s", ColumnKind::Static, NativeType::Text),
        ("v", ColumnKind::Regular, NativeType::Blob),
    ];
    assert_eq!(t.columns.len(), expect.len());
    for (name, kind, typ) in expect {
        let col = t
            .columns
            .get(name)
            .unwrap_or_else(|| panic!("column {name}"));
        assert_eq!(col.kind, kind, "kind of {name}");
        assert_eq!(col.typ, ColumnType::Native(typ), "type of {name}");
    }

    // the token-aware routing the driver computes must find our only node
    let prepared = session
        .prepare("INSERT INTO rs_meta.t (a, b, c, d, v) VALUES (?, ?, ?, ?, ?)")
        .await
        .expect("prepare");
    session
        .execute_unpaged(
            &prepared,
            (1i32, "x", CqlTimestamp(5), 6i64, vec![1u8, 2, 3]),
        )
        .await
        .expect("insert");
    let rows = session
        .query_unpaged("SELECT v FROM rs_meta.t WHERE a = 1 AND b = 'x'", &[])
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let (v,): (Vec<u8>,) = rows.single_row().unwrap();
    assert_eq!(v, vec![1, 2, 3]);

    run(&session, "DROP KEYSPACE rs_meta").await;
    session.await_schema_agreement().await.unwrap();
    session.refresh_metadata().await.unwrap();
    assert!(session
        .get_cluster_state()
        .get_keyspace("rs_meta")
        .is_none());
}

/// Every native type `CqlValue` represents (counter excluded: it needs a counter table).
fn typed_values() -> Vec<(&'static str, CqlValue, &'static str)> {
    let huge = {
        // 2^200 + 12345 as a minimal two's-complement big-endian byte string
        let mut b = vec![0u8; 26];
        b[0] = 0x01;
        b[24] = 0x30;
        b[25] = 0x39;
        b
    };
    vec![
        (
            "ascii",
            CqlValue::Ascii("plain ascii".into()),
            "'plain ascii'",
        ),
        (
            "text",
            CqlValue::Text("héllo ✓ 日本".into()),
            "'héllo ✓ 日本'",
        ),
        ("boolean", CqlValue::Boolean(true), "true"),
        ("tinyint", CqlValue::TinyInt(-128), "-128"),
        ("smallint", CqlValue::SmallInt(-32768), "-32768"),
        ("int", CqlValue::Int(i32::MIN), "-2147483648"),
        ("bigint", CqlValue::BigInt(i64::MAX), "9223372036854775807"),
        (
            "varint",
            CqlValue::Varint(CqlVarint::from_signed_bytes_be(huge)),
            "1606938044258990275541962092341162602522202993782792835313721",
        ),
        ("float", CqlValue::Float(1.5), "1.5"),
        (
            "double",
            CqlValue::Double(std::f64::consts::PI),
            "3.141592653589793",
        ),
        (
            "decimal",
            // -12345.6789 = -123456789 * 10^-4
            CqlValue::Decimal(CqlDecimal::from_signed_be_bytes_and_exponent(
                (-123456789i32).to_be_bytes().to_vec(),
                4,
            )),
            "-12345.6789",
        ),
        (
            "uuid",
            CqlValue::Uuid(Uuid::parse_str("123e4567-e89b-42d3-a456-556642440000").unwrap()),
            "123e4567-e89b-42d3-a456-556642440000",
        ),
        (
            "timeuuid",
            CqlValue::Timeuuid(
                CqlTimeuuid::from_str("e7b4a2c0-4f2b-11ee-8c99-0242ac120002").unwrap(),
            ),
            "e7b4a2c0-4f2b-11ee-8c99-0242ac120002",
        ),
        // 2024-02-29 13:14:15.678 UTC
        (
            "timestamp",
            CqlValue::Timestamp(CqlTimestamp(1_709_212_455_678)),
            "'2024-02-29 13:14:15.678+0000'",
        ),
        // days since epoch 19782 = 2024-02-29, offset by 2^31
        (
            "date",
            CqlValue::Date(CqlDate((1u32 << 31) + 19_782)),
            "'2024-02-29'",
        ),
        (
            "time",
            CqlValue::Time(CqlTime(
                ((13 * 3600 + 14 * 60 + 15) * 1_000_000_000) + 123_456_789,
            )),
            "'13:14:15.123456789'",
        ),
        (
            "duration",
            CqlValue::Duration(CqlDuration {
                months: 14,
                days: 25,
                nanoseconds: 18_367_008_009_010,
            }),
            "1y2mo3w4d5h6m7s8ms9us10ns",
        ),
        (
            "blob",
            CqlValue::Blob(vec![0xca, 0xfe, 0xba, 0xbe, 0x00, 0xff]),
            "0xcafebabe00ff",
        ),
        (
            "inet",
            CqlValue::Inet(IpAddr::V4(Ipv4Addr::new(192, 168, 10, 1))),
            "'192.168.10.1'",
        ),
        (
            "inet",
            CqlValue::Inet(IpAddr::V6(
                Ipv6Addr::from_str("2001:db8::8a2e:370:7334").unwrap(),
            )),
            "'2001:db8::8a2e:370:7334'",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_native_type_round_trips() {
    let Some(node) = Node::start_or_skip("127.0.0.62", 9042, "every_native_type_round_trips")
    else {
        return;
    };
    let session = connect(&node).await;
    create_keyspace(&session, "rs_types").await;
    let values = typed_values();
    let cols: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, (t, _, _))| format!("c{i} {t}"))
        .collect();
    run(
        &session,
        &format!(
            "CREATE TABLE rs_types.t (k int PRIMARY KEY, {})",
            cols.join(", ")
        ),
    )
    .await;
    session.await_schema_agreement().await.unwrap();

    for (i, (typ, value, literal)) in values.iter().enumerate() {
        let i = i as i32;
        // bound value
        let ins = session
            .prepare(format!("INSERT INTO rs_types.t (k, c{i}) VALUES (?, ?)"))
            .await
            .unwrap_or_else(|e| panic!("prepare insert {typ}: {e}"));
        session
            .execute_unpaged(&ins, (i, value))
            .await
            .unwrap_or_else(|e| panic!("insert bound {typ}: {e}"));
        // literal
        run(
            &session,
            &format!(
                "INSERT INTO rs_types.t (k, c{i}) VALUES ({}, {literal})",
                1000 + i
            ),
        )
        .await;

        let sel = session
            .prepare(format!("SELECT c{i} FROM rs_types.t WHERE k = ?"))
            .await
            .unwrap_or_else(|e| panic!("prepare select {typ}: {e}"));
        for k in [i, 1000 + i] {
            let rows = session
                .execute_unpaged(&sel, (k,))
                .await
                .unwrap_or_else(|e| panic!("select {typ}: {e}"))
                .into_rows_result()
                .unwrap();
            let (got,): (Option<CqlValue>,) = rows
                .single_row()
                .unwrap_or_else(|e| panic!("row for {typ} k={k}: {e}"));
            assert_eq!(got.as_ref(), Some(value), "{typ} (k={k}) round trip");
        }
    }

    // the whole row at once, through one prepared statement with every type bound
    let names: Vec<String> = (0..values.len()).map(|i| format!("c{i}")).collect();
    let marks = vec!["?"; values.len() + 1].join(", ");
    let ins = session
        .prepare(format!(
            "INSERT INTO rs_types.t (k, {}) VALUES ({marks})",
            names.join(", ")
        ))
        .await
        .unwrap();
    let mut row: Vec<CqlValue> = vec![CqlValue::Int(-1)];
    row.extend(values.iter().map(|(_, v, _)| v.clone()));
    session
        .execute_unpaged(&ins, row)
        .await
        .expect("insert all types");
    let rows = session
        .query_unpaged(
            format!("SELECT {} FROM rs_types.t WHERE k = -1", names.join(", ")),
            &[],
        )
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let got: scylla::value::Row = rows.single_row().unwrap();
    for (i, (typ, value, _)) in values.iter().enumerate() {
        assert_eq!(
            got.columns[i].as_ref(),
            Some(value),
            "{typ} in the all-types row"
        );
    }
    // the result metadata carries each column's type
    let specs = rows.column_specs();
    assert_eq!(specs.len(), values.len());
    assert_eq!(
        specs.get_by_index(0).unwrap().typ(),
        &ColumnType::Native(NativeType::Ascii)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_with_execute_iter() {
    let Some(node) = Node::start_or_skip("127.0.0.63", 9042, "paging_with_execute_iter") else {
        return;
    };
    let session = connect(&node).await;
    create_keyspace(&session, "rs_paging").await;
    run(
        &session,
        "CREATE TABLE rs_paging.t (k int, c int, v text, PRIMARY KEY (k, c))",
    )
    .await;
    session.await_schema_agreement().await.unwrap();
    let ins = session
        .prepare("INSERT INTO rs_paging.t (k, c, v) VALUES (?, ?, ?)")
        .await
        .unwrap();
    for c in 0..100i32 {
        session
            .execute_unpaged(&ins, (1i32, c, format!("v{c}")))
            .await
            .unwrap();
    }
    for k in 2..32i32 {
        for c in 0..5i32 {
            session.execute_unpaged(&ins, (k, c, "x")).await.unwrap();
        }
    }

    // one partition, 100 rows, pages of 7: every row once, in clustering order
    let mut sel = session
        .prepare("SELECT c, v FROM rs_paging.t WHERE k = ?")
        .await
        .unwrap();
    sel.set_page_size(7);
    let rows: Vec<(i32, String)> = session
        .execute_iter(sel.clone(), (1i32,))
        .await
        .unwrap()
        .rows_stream::<(i32, String)>()
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rows.len(), 100);
    for (i, (c, v)) in rows.iter().enumerate() {
        assert_eq!((*c, v.as_str()), (i as i32, format!("v{i}").as_str()));
    }

    // single pages: 7 rows each, resumed through the paging state
    let (res, state) = session
        .execute_single_page(&sel, (1i32,), scylla::response::PagingState::start())
        .await
        .unwrap();
    let first: Vec<(i32, String)> = res
        .into_rows_result()
        .unwrap()
        .rows()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        first.iter().map(|r| r.0).collect::<Vec<_>>(),
        (0..7).collect::<Vec<_>>()
    );
    let scylla::response::PagingStateResponse::HasMorePages { state } = state else {
        panic!("more pages expected after the first 7 of 100 rows");
    };
    let (res, _) = session
        .execute_single_page(&sel, (1i32,), state)
        .await
        .unwrap();
    let second: Vec<(i32, String)> = res
        .into_rows_result()
        .unwrap()
        .rows()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        second.iter().map(|r| r.0).collect::<Vec<_>>(),
        (7..14).collect::<Vec<_>>()
    );

    // a full scan across partitions, unprepared, pages of 7
    let scan = Statement::new("SELECT k, c FROM rs_paging.t").with_page_size(7);
    let all: Vec<(i32, i32)> = session
        .query_iter(scan, &[])
        .await
        .unwrap()
        .rows_stream::<(i32, i32)>()
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 250);
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 250, "no row returned twice");
    // rows of one partition arrive together and in clustering order
    let mut seen = std::collections::HashSet::new();
    let mut prev: Option<(i32, i32)> = None;
    for &(k, c) in &all {
        match prev {
            Some((pk, pc)) if pk == k => assert!(c > pc, "clustering order inside partition {k}"),
            _ => assert!(seen.insert(k), "partition {k} split across the scan"),
        }
        prev = Some((k, c));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches() {
    let Some(node) = Node::start_or_skip("127.0.0.64", 9042, "batches") else {
        return;
    };
    let session = connect(&node).await;
    create_keyspace(&session, "rs_batch").await;
    run(
        &session,
        "CREATE TABLE rs_batch.t (k int, c int, v text, PRIMARY KEY (k, c))",
    )
    .await;
    session.await_schema_agreement().await.unwrap();
    let ins = session
        .prepare("INSERT INTO rs_batch.t (k, c, v) VALUES (?, ?, ?)")
        .await
        .unwrap();

    for (kind, k) in [(BatchType::Logged, 1i32), (BatchType::Unlogged, 2i32)] {
        let mut batch = Batch::new(kind);
        batch.append_statement(ins.clone());
        batch.append_statement(ins.clone());
        batch.append_statement("UPDATE rs_batch.t SET v = ? WHERE k = ? AND c = ?");
        batch.append_statement("INSERT INTO rs_batch.t (k, c, v) VALUES (99, 0, 'literal')");
        session
            .batch(&batch, ((k, 0i32, "a"), (k, 1i32, "b"), ("c", k, 2i32), ()))
            .await
            .unwrap_or_else(|e| panic!("{kind:?} batch: {e}"));
        let rows: Vec<(i32, String)> = session
            .query_unpaged(format!("SELECT c, v FROM rs_batch.t WHERE k = {k}"), &[])
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .rows()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![(0, "a".into()), (1, "b".into()), (2, "c".into())]
        );
    }
    let mut dels = Batch::new(BatchType::Logged);
    dels.append_statement("DELETE FROM rs_batch.t WHERE k = ?");
    dels.append_statement("DELETE FROM rs_batch.t WHERE k = ? AND c = ?");
    session.batch(&dels, ((1i32,), (2i32, 0i32))).await.unwrap();
    let rows = session
        .query_unpaged("SELECT k, c FROM rs_batch.t", &[])
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let mut left: Vec<(i32, i32)> = rows.rows().unwrap().collect::<Result<_, _>>().unwrap();
    left.sort();
    assert_eq!(left, vec![(2, 1), (2, 2), (99, 0)]);
}

fn db_error(e: &ExecutionError) -> Option<&DbError> {
    match e {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(db, _))
        | ExecutionError::PrepareError(PrepareError::AllAttemptsFailed {
            first_attempt: RequestAttemptError::DbError(db, _),
        }) => Some(db),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_their_codes() {
    let Some(node) = Node::start_or_skip("127.0.0.65", 9042, "errors_carry_their_codes") else {
        return;
    };
    let session = connect(&node).await;
    create_keyspace(&session, "rs_err").await;
    run(
        &session,
        "CREATE TABLE rs_err.t (k int PRIMARY KEY, v text)",
    )
    .await;

    let e = session
        .query_unpaged("SELEC * FROM rs_err.t", &[])
        .await
        .unwrap_err();
    assert_eq!(db_error(&e), Some(&DbError::SyntaxError), "{e}");
    let e = session
        .query_unpaged("SELECT * FROM rs_err.nope", &[])
        .await
        .unwrap_err();
    assert_eq!(db_error(&e), Some(&DbError::Invalid), "{e}");
    let e = session
        .query_unpaged("CREATE TABLE rs_err.t (k int PRIMARY KEY)", &[])
        .await
        .unwrap_err();
    match db_error(&e) {
        Some(DbError::AlreadyExists { keyspace, table }) => {
            assert_eq!((keyspace.as_str(), table.as_str()), ("rs_err", "t"))
        }
        other => panic!("expected AlreadyExists, got {other:?} ({e})"),
    }
    let e = session
        .query_unpaged(
            "CREATE KEYSPACE rs_bad WITH replication = {'class': 'NoSuchStrategy'}",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(db_error(&e), Some(&DbError::ConfigError), "{e}");
    match session
        .prepare("SELECT * FROM rs_err.nope WHERE k = ?")
        .await
    {
        Err(PrepareError::AllAttemptsFailed {
            first_attempt: RequestAttemptError::DbError(db, _),
        }) => {
            assert_eq!(db, DbError::Invalid)
        }
        other => panic!("expected Invalid from PREPARE, got {other:?}"),
    }
    // the session is still healthy
    session
        .query_unpaged("INSERT INTO rs_err.t (k, v) VALUES (1, 'ok')", &[])
        .await
        .unwrap();
}
