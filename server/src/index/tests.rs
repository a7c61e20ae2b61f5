use super::*;
use engine::mutation::Cell as DataCell;
use engine::EngineConfig;

fn live(v: &[u8], ts: i64) -> ColumnData {
    ColumnData::Simple(DataCell {
        timestamp: ts,
        ttl: 0,
        expiry: 0,
        value: Some(Bytes::copy_from_slice(v)),
    })
}

fn pk(k: u8) -> PartitionKey {
    let key = Bytes::copy_from_slice(&[k]);
    PartitionKey {
        token: crate::dht::murmur3::murmur3_token(&key),
        key,
    }
}

const BASE: TableId = [7; 16];

fn value_index() -> LocalIndex {
    LocalIndex {
        name: "i".into(),
        table_id: index_table_id(&BASE, "i"),
        base: BASE,
        column: 2,
        column_id: 1,
        kind: TargetKind::Value,
        is_set: false,
    }
}

fn base_write(k: u8, ck: u8, v: &[u8], ts: i64) -> Mutation {
    let mut u = PartitionUpdate::new(pk(k));
    u.rows.push((
        vec![Bytes::copy_from_slice(&[ck])],
        Row {
            liveness: Some(LivenessInfo {
                timestamp: ts,
                ttl: 0,
                expiry: 0,
            }),
            deletion: None,
            columns: vec![(1, live(v, ts))],
        },
    ));
    Mutation {
        table: BASE,
        update: u,
    }
}

fn db_with_tables(idx: &LocalIndex) -> Database {
    let mut db = Database::new(EngineConfig::in_memory());
    let ck = ClusteringColumn {
        ty: KeyType::Bytes,
        reversed: false,
    };
    db.create_table(Arc::new(TableSchema::new(BASE, vec![ck.clone()], 864000)));
    let mut cl = vec![
        ClusteringColumn {
            ty: KeyType::BigInt,
            reversed: false,
        },
        ClusteringColumn {
            ty: KeyType::Bytes,
            reversed: false,
        },
    ];
    cl.push(ck);
    db.create_table(Arc::new(TableSchema::new(idx.table_id, cl, 864000)));
    db
}

fn write(db: &mut Database, idx: &LocalIndex, m: Mutation) {
    for im in index_mutations(std::slice::from_ref(idx), &m) {
        db.apply(&im).unwrap();
    }
    db.apply(&m).unwrap();
}

fn lookup_all(db: &mut Database, idx: &LocalIndex, value: &[u8], limit: usize) -> Vec<(u8, u8)> {
    let reg = IndexRegistry::default();
    let schema = db.table(&BASE).unwrap().schema().clone();
    let value = Bytes::copy_from_slice(value);
    let range = TokenRange::full();
    let cmd = ReadCommand::full(engine::database::now_seconds());
    let mut after: Option<IndexPosition> = None;
    let mut out = Vec::new();
    loop {
        let q = IndexLookup {
            idx,
            base_schema: &schema,
            value: &value,
            range: &range,
            after: after.as_ref(),
            cmd: &cmd,
            limit,
        };
        let page = lookup(db, &reg, &q).unwrap();
        for p in &page.parts {
            for (ck, _) in &p.rows {
                out.push((p.key.key[0], ck[0][0]));
                after = Some(IndexPosition {
                    key: p.key.clone(),
                    clustering: Some(ck.clone()),
                });
            }
        }
        if page.exhausted {
            return out;
        }
    }
}

fn ring_order(mut v: Vec<(u8, u8)>) -> Vec<(u8, u8)> {
    v.sort_by_key(|(k, c)| (pk(*k).token, *k, *c));
    v
}

#[test]
fn index_rows_carry_the_cell_timestamp_and_base_position() {
    let idx = value_index();
    let m = base_write(3, 9, b"x", 42);
    let ims = index_mutations(std::slice::from_ref(&idx), &m);
    assert_eq!(ims.len(), 1);
    assert_eq!(ims[0].table, idx.table_id);
    assert_eq!(&ims[0].update.key.key[..], b"x");
    let (c, r) = &ims[0].update.rows[0];
    assert_eq!(
        c,
        &index_clustering(&pk(3), &vec![Bytes::from_static(&[9])])
    );
    assert_eq!(r.liveness.unwrap().timestamp, 42);
}

#[test]
fn lookup_finds_matches_in_ring_order_and_pages() {
    let idx = value_index();
    let mut db = db_with_tables(&idx);
    let mut want = Vec::new();
    for k in 0..50u8 {
        for c in 0..3u8 {
            let v: &[u8] = if (k + c) % 3 == 0 { b"a" } else { b"b" };
            write(&mut db, &idx, base_write(k, c, v, 10));
            if v == b"a" {
                want.push((k, c));
            }
        }
    }
    let want = ring_order(want);
    assert_eq!(lookup_all(&mut db, &idx, b"a", 1000), want);
    assert_eq!(lookup_all(&mut db, &idx, b"a", 1), want);
    assert_eq!(lookup_all(&mut db, &idx, b"a", 7), want);
    assert!(lookup_all(&mut db, &idx, b"zz", 10).is_empty());
}

#[test]
fn stale_entries_are_filtered_and_deleted() {
    let idx = value_index();
    let mut db = db_with_tables(&idx);
    write(&mut db, &idx, base_write(1, 1, b"a", 10));
    write(&mut db, &idx, base_write(2, 1, b"a", 10));
    // Overwrite: the old index row for "a" is stale.
    write(&mut db, &idx, base_write(1, 1, b"b", 20));
    assert_eq!(lookup_all(&mut db, &idx, b"a", 10), vec![(2, 1)]);
    assert_eq!(lookup_all(&mut db, &idx, b"b", 10), vec![(1, 1)]);
    // The stale row was deleted at its own timestamp: a later write of "a"
    // is indexed again.
    let ip = db
        .read_partition(
            &idx.table_id,
            &index_key(&Bytes::from_static(b"a")),
            &ReadCommand::full(engine::database::now_seconds()),
        )
        .unwrap()
        .unwrap();
    assert_eq!(ip.rows.len(), 1);
    write(&mut db, &idx, base_write(1, 1, b"a", 30));
    assert_eq!(
        lookup_all(&mut db, &idx, b"a", 10),
        ring_order(vec![(1, 1), (2, 1)])
    );
}

#[test]
fn merge_keeps_only_rows_every_shard_has_passed() {
    let schema = TableSchema::new(
        BASE,
        vec![ClusteringColumn {
            ty: KeyType::Bytes,
            reversed: false,
        }],
        0,
    );
    let page = |keys: &[(u8, u8)], exhausted: bool| {
        let mut parts: Vec<PartitionUpdate> = Vec::new();
        for (k, c) in ring_order(keys.to_vec()) {
            let row = (vec![Bytes::copy_from_slice(&[c])], Row::default());
            match parts.last_mut() {
                Some(p) if p.key == pk(k) => p.rows.push(row),
                _ => {
                    let mut p = PartitionUpdate::new(pk(k));
                    p.rows.push(row);
                    parts.push(p);
                }
            }
        }
        IndexPage { parts, exhausted }
    };
    let a = ring_order(vec![(1, 0), (2, 0), (3, 0), (4, 0)]);
    let b = ring_order(vec![(5, 0), (6, 0), (7, 0), (8, 0)]);
    // Shard A has more after its last row: rows of B past it must wait.
    let merged = query::merge_pages(&schema, vec![page(&a, false), page(&b, true)]);
    assert!(!merged.exhausted);
    let last_a = *a.last().unwrap();
    let got: Vec<(u8, u8)> = merged
        .parts
        .iter()
        .flat_map(|p| p.rows.iter().map(move |(c, _)| (p.key.key[0], c[0][0])))
        .collect();
    let mut all = a.clone();
    all.extend(b.iter().copied());
    let all = ring_order(all);
    let cut = all.iter().position(|x| *x == last_a).unwrap();
    assert_eq!(got, all[..=cut].to_vec());
    let merged = query::merge_pages(&schema, vec![page(&a, true), page(&b, true)]);
    assert!(merged.exhausted);
    assert_eq!(merged.parts.iter().map(|p| p.rows.len()).sum::<usize>(), 8);
}

#[test]
fn targets_parse_like_cassandra_writes_them() {
    assert_eq!(parse_target("v"), (None, "v".to_string()));
    assert_eq!(parse_target("keys(m)"), (Some("keys"), "m".to_string()));
    assert_eq!(
        parse_target("values(\"Odd\"\"Name\")"),
        (Some("values"), "Odd\"Name".to_string())
    );
    assert_eq!(parse_target("full(f)"), (Some("full"), "f".to_string()));
}
