"""Prepared statements (positional and named markers), paging and batches."""

import pytest
from cassandra import ConsistencyLevel
from cassandra.query import (UNSET_VALUE, BatchStatement, BatchType, SimpleStatement)


@pytest.fixture
def kcv(table):
    return table("k int, c int, v text, PRIMARY KEY (k, c)")


def test_positional_markers(session, kcv):
    ins = session.prepare(f"INSERT INTO {kcv} (k, c, v) VALUES (?, ?, ?)")
    assert [c.name for c in ins.column_metadata] == ["k", "c", "v"]
    assert ins.routing_key_indexes == [0]
    for c in range(5):
        session.execute(ins, (1, c, f"v{c}"))
    sel = session.prepare(f"SELECT c, v FROM {kcv} WHERE k = ? AND c >= ? LIMIT ?")
    assert [c[2] for c in sel.result_metadata] == ["c", "v"]  # (keyspace, table, name, type)
    assert [tuple(r) for r in session.execute(sel, (1, 2, 2))] == [(2, "v2"), (3, "v3")]
    one = session.prepare(f"SELECT v FROM {kcv} WHERE k = ? AND c = ?")
    assert session.execute(one, [1, 4]).one().v == "v4"
    assert session.execute(one, [2, 4]).one() is None


def test_named_markers(session, kcv):
    ins = session.prepare(f"INSERT INTO {kcv} (k, c, v) VALUES (:key, :ck, :val)")
    # the server names the bind variables after the markers
    assert [c.name for c in ins.column_metadata] == ["key", "ck", "val"]
    session.execute(ins, {"key": 3, "ck": 1, "val": "named"})
    session.execute(ins, {"val": "order does not matter", "ck": 2, "key": 3})
    sel = session.prepare(f"SELECT c, v FROM {kcv} WHERE k = :key AND c IN (:a, :b)")
    rows = session.execute(sel, {"key": 3, "a": 1, "b": 2})
    assert [tuple(r) for r in rows] == [(1, "named"), (2, "order does not matter")]
    upd = session.prepare(f"UPDATE {kcv} SET v = :v WHERE k = :k AND c = :c")
    session.execute(upd, {"v": "updated", "k": 3, "c": 1})
    assert session.execute(f"SELECT v FROM {kcv} WHERE k = 3 AND c = 1").one().v == "updated"


def test_null_and_unset_bound_values(session, kcv):
    ins = session.prepare(f"INSERT INTO {kcv} (k, c, v) VALUES (?, ?, ?)")
    session.execute(ins, (5, 1, "keep"))
    session.execute(ins, (5, 1, UNSET_VALUE))  # unset: leaves v alone
    assert session.execute(f"SELECT v FROM {kcv} WHERE k = 5 AND c = 1").one().v == "keep"
    session.execute(ins, (5, 1, None))  # null: deletes v
    assert session.execute(f"SELECT v FROM {kcv} WHERE k = 5 AND c = 1").one().v is None


def test_prepared_delete_and_consistency(session, kcv):
    ins = session.prepare(f"INSERT INTO {kcv} (k, c, v) VALUES (?, ?, ?)")
    ins.consistency_level = ConsistencyLevel.QUORUM
    for c in range(4):
        session.execute(ins, (6, c, "x"))
    dele = session.prepare(f"DELETE FROM {kcv} WHERE k = ? AND c > ?")
    session.execute(dele, (6, 1))
    assert [r.c for r in session.execute(f"SELECT c FROM {kcv} WHERE k = 6")] == [0, 1]


def fill(session, t, k, n):
    ins = session.prepare(f"INSERT INTO {t} (k, c, v) VALUES (?, ?, ?)")
    for c in range(n):
        session.execute(ins, (k, c, f"v{c}"))


@pytest.mark.parametrize("prepared", [False, True])
def test_paging_one_partition(session, kcv, prepared):
    fill(session, kcv, 1, 100)
    q = f"SELECT c, v FROM {kcv} WHERE k = ?"
    if prepared:
        stmt = session.prepare(q)
        stmt.fetch_size = 7
        rs = session.execute(stmt, [1])
    else:
        rs = session.execute(SimpleStatement(q.replace("?", "%s"), fetch_size=7), [1])
    assert len(rs.current_rows) == 7
    assert rs.has_more_pages
    assert [r.c for r in rs] == list(range(100)), "every row exactly once, in order"


def test_paging_state_resumes(session, kcv):
    fill(session, kcv, 2, 20)
    stmt = SimpleStatement(f"SELECT c FROM {kcv} WHERE k = 2", fetch_size=7)
    pages = []
    state = None
    while True:
        rs = session.execute(stmt, paging_state=state)
        pages.append([r.c for r in rs.current_rows])
        state = rs.paging_state
        if state is None:
            break
        assert len(pages) < 10
    assert pages == [list(range(0, 7)), list(range(7, 14)), list(range(14, 20))]


def test_paging_with_limit_and_desc(session, kcv):
    fill(session, kcv, 3, 50)
    rs = session.execute(SimpleStatement(
        f"SELECT c FROM {kcv} WHERE k = 3 ORDER BY c DESC LIMIT 30", fetch_size=7))
    assert [r.c for r in rs] == list(range(49, 19, -1))


def test_paging_across_partitions_in_full_scan(session, kcv):
    """Pages of 7 over partitions of 1..23 rows and one of 100: pages end inside partitions."""
    ins = session.prepare(f"INSERT INTO {kcv} (k, c, v) VALUES (?, ?, ?)")
    expected = set()
    for k in range(30):
        for c in range(100 if k == 0 else (k * 7) % 23 + 1):
            session.execute(ins, (k, c, "x"))
            expected.add((k, c))
    rs = session.execute(SimpleStatement(f"SELECT k, c, token(k) FROM {kcv}", fetch_size=7))
    rows = [tuple(r) for r in rs]
    assert len(rows) == len(expected), "every row exactly once"
    assert {(k, c) for k, c, _ in rows} == expected
    # partitions in token order, clustering order inside each partition
    assert rows == sorted(rows, key=lambda r: (r[2], r[1]))


def test_paging_full_scan_prepared(session, kcv):
    ins = session.prepare(f"INSERT INTO {kcv} (k, c, v) VALUES (?, ?, ?)")
    for k in range(40):
        for c in range(k % 5 + 1):
            session.execute(ins, (k, c, "x"))
    sel = session.prepare(f"SELECT k, c FROM {kcv}")
    sel.fetch_size = 3
    got = sorted(tuple(r) for r in session.execute(sel))
    assert got == sorted((k, c) for k in range(40) for c in range(k % 5 + 1))


def test_count_over_many_pages(session, kcv):
    fill(session, kcv, 4, 100)
    rs = session.execute(SimpleStatement(f"SELECT COUNT(*) FROM {kcv} WHERE k = 4", fetch_size=7))
    assert rs.one().count == 100


@pytest.mark.parametrize("kind", [BatchType.LOGGED, BatchType.UNLOGGED])
def test_batch_statement(session, kcv, kind):
    ins = session.prepare(f"INSERT INTO {kcv} (k, c, v) VALUES (?, ?, ?)")
    batch = BatchStatement(batch_type=kind)
    for c in range(5):
        batch.add(ins, (10, c, f"b{c}"))
    batch.add(SimpleStatement(f"UPDATE {kcv} SET v = %s WHERE k = %s AND c = %s"), ("simple", 11, 0))
    batch.add(f"INSERT INTO {kcv} (k, c, v) VALUES (12, 0, 'text')")
    session.execute(batch)
    assert [r.v for r in session.execute(f"SELECT v FROM {kcv} WHERE k = 10")] == [f"b{c}" for c in range(5)]
    assert session.execute(f"SELECT v FROM {kcv} WHERE k = 11 AND c = 0").one().v == "simple"
    assert session.execute(f"SELECT v FROM {kcv} WHERE k = 12 AND c = 0").one().v == "text"
    dels = BatchStatement(batch_type=kind)
    dels.add(session.prepare(f"DELETE FROM {kcv} WHERE k = ? AND c = ?"), (10, 0))
    dels.add(session.prepare(f"DELETE FROM {kcv} WHERE k = ?"), (11,))
    session.execute(dels)
    assert [r.c for r in session.execute(f"SELECT c FROM {kcv} WHERE k = 10")] == [1, 2, 3, 4]
    assert session.execute(f"SELECT * FROM {kcv} WHERE k = 11").one() is None


@pytest.mark.parametrize("begin", ["BEGIN BATCH", "BEGIN UNLOGGED BATCH"])
def test_batch_cql_text(session, kcv, begin):
    session.execute(
        f"{begin} "
        f"INSERT INTO {kcv} (k, c, v) VALUES (20, 1, 'one'); "
        f"INSERT INTO {kcv} (k, c, v) VALUES (21, 1, 'two'); "
        f"UPDATE {kcv} SET v = 'three' WHERE k = 20 AND c = 2; "
        f"DELETE FROM {kcv} WHERE k = 21 AND c = 1; "
        "APPLY BATCH;")
    assert [tuple(r) for r in session.execute(f"SELECT c, v FROM {kcv} WHERE k = 20")] \
        == [(1, "one"), (2, "three")]
    assert session.execute(f"SELECT * FROM {kcv} WHERE k = 21").one() is None


def test_prepared_batch_text_with_markers(session, kcv):
    stmt = session.prepare(
        f"BEGIN BATCH INSERT INTO {kcv} (k, c, v) VALUES (?, ?, ?); "
        f"INSERT INTO {kcv} (k, c, v) VALUES (?, ?, ?); APPLY BATCH")
    session.execute(stmt, (30, 1, "p1", 30, 2, "p2"))
    assert [r.v for r in session.execute(f"SELECT v FROM {kcv} WHERE k = 30")] == ["p1", "p2"]
