"""INSERT / UPDATE / DELETE and the SELECT features of the foundation issue."""

import json

import pytest
from cassandra import InvalidRequest


@pytest.fixture
def ev(session, table):
    """Composite partition key (a, b), clustering c ASC, static s."""
    name = table("a int, b text, c int, v text, n int, s text STATIC, PRIMARY KEY ((a, b), c)")
    for c in range(10):
        session.execute(f"INSERT INTO {name} (a, b, c, v, n) VALUES (1, 'x', {c}, 'v{c}', {c % 3})")
    return name


def cs(rows):
    return [r.c for r in rows]


def test_insert_and_select_by_full_key(session, ev):
    row = session.execute(f"SELECT a, b, c, v, n FROM {ev} WHERE a = 1 AND b = 'x' AND c = 4").one()
    assert tuple(row) == (1, "x", 4, "v4", 1)
    assert session.execute(f"SELECT * FROM {ev} WHERE a = 1 AND b = 'x' AND c = 42").one() is None
    assert list(session.execute(f"SELECT * FROM {ev} WHERE a = 1 AND b = 'nope'")) == []


def test_select_partition_in_clustering_order(session, ev):
    assert cs(session.execute(f"SELECT c FROM {ev} WHERE a = 1 AND b = 'x'")) == list(range(10))


def test_select_star_column_order(session, ev):
    rs = session.execute(f"SELECT * FROM {ev} WHERE a = 1 AND b = 'x' AND c = 0")
    # partition key, clustering, then static and regular columns in name order
    assert rs.column_names == ["a", "b", "c", "s", "n", "v"]


def test_update_is_an_upsert(session, ev):
    session.execute(f"UPDATE {ev} SET v = 'new', n = 100 WHERE a = 1 AND b = 'x' AND c = 3")
    session.execute(f"UPDATE {ev} SET v = 'created' WHERE a = 2 AND b = 'y' AND c = 0")
    assert session.execute(f"SELECT v, n FROM {ev} WHERE a = 1 AND b = 'x' AND c = 3").one() \
        == ("new", 100)
    assert session.execute(f"SELECT v, n FROM {ev} WHERE a = 2 AND b = 'y' AND c = 0").one() \
        == ("created", None)
    # INSERT overwrites only the columns it names
    session.execute(f"INSERT INTO {ev} (a, b, c, v) VALUES (1, 'x', 3, 'again')")
    assert session.execute(f"SELECT v, n FROM {ev} WHERE a = 1 AND b = 'x' AND c = 3").one() \
        == ("again", 100)


def test_static_column_shared_by_partition(session, ev):
    session.execute(f"UPDATE {ev} SET s = 'shared' WHERE a = 1 AND b = 'x'")
    assert {r.s for r in session.execute(f"SELECT s FROM {ev} WHERE a = 1 AND b = 'x'")} == {"shared"}
    session.execute(f"INSERT INTO {ev} (a, b, c, s) VALUES (1, 'x', 5, 'via row')")
    rows = list(session.execute(f"SELECT c, s FROM {ev} WHERE a = 1 AND b = 'x'"))
    assert len(rows) == 10 and {r.s for r in rows} == {"via row"}
    # a partition holding only a static value yields one row with null clustering
    session.execute(f"INSERT INTO {ev} (a, b, s) VALUES (7, 'only', 'st')")
    rows = list(session.execute(f"SELECT a, b, c, s, v FROM {ev} WHERE a = 7 AND b = 'only'"))
    assert [tuple(r) for r in rows] == [(7, "only", None, "st", None)]


def test_delete_partition(session, ev):
    session.execute(f"UPDATE {ev} SET s = 'st' WHERE a = 1 AND b = 'x'")
    session.execute(f"DELETE FROM {ev} WHERE a = 1 AND b = 'x'")
    assert list(session.execute(f"SELECT * FROM {ev} WHERE a = 1 AND b = 'x'")) == []
    session.execute(f"INSERT INTO {ev} (a, b, c, v) VALUES (1, 'x', 1, 'back')")
    assert [tuple(r) for r in session.execute(f"SELECT c, v, s FROM {ev} WHERE a = 1 AND b = 'x'")] \
        == [(1, "back", None)]


def test_delete_row(session, ev):
    session.execute(f"DELETE FROM {ev} WHERE a = 1 AND b = 'x' AND c = 4")
    assert cs(session.execute(f"SELECT c FROM {ev} WHERE a = 1 AND b = 'x'")) == [0, 1, 2, 3, 5, 6, 7, 8, 9]


def test_delete_cell(session, ev):
    session.execute(f"DELETE v FROM {ev} WHERE a = 1 AND b = 'x' AND c = 2")
    assert session.execute(f"SELECT v, n FROM {ev} WHERE a = 1 AND b = 'x' AND c = 2").one() == (None, 2)
    session.execute(f"DELETE v, n FROM {ev} WHERE a = 1 AND b = 'x' AND c = 2")
    # INSERT wrote a row marker, so the row outlives its cells
    assert tuple(session.execute(f"SELECT c, v, n FROM {ev} WHERE a = 1 AND b = 'x' AND c = 2").one()) \
        == (2, None, None)


def test_row_made_by_update_dies_with_its_cells(session, ev):
    session.execute(f"UPDATE {ev} SET v = 'u' WHERE a = 3 AND b = 'z' AND c = 1")
    session.execute(f"DELETE v FROM {ev} WHERE a = 3 AND b = 'z' AND c = 1")
    assert list(session.execute(f"SELECT * FROM {ev} WHERE a = 3 AND b = 'z'")) == []


def test_delete_clustering_range(session, ev):
    session.execute(f"DELETE FROM {ev} WHERE a = 1 AND b = 'x' AND c >= 3 AND c < 6")
    assert cs(session.execute(f"SELECT c FROM {ev} WHERE a = 1 AND b = 'x'")) == [0, 1, 2, 6, 7, 8, 9]
    session.execute(f"DELETE FROM {ev} WHERE a = 1 AND b = 'x' AND c > 7")
    assert cs(session.execute(f"SELECT c FROM {ev} WHERE a = 1 AND b = 'x'")) == [0, 1, 2, 6, 7]
    # a write after the range tombstone shows again
    session.execute(f"INSERT INTO {ev} (a, b, c, v) VALUES (1, 'x', 4, 'again')")
    assert cs(session.execute(f"SELECT c FROM {ev} WHERE a = 1 AND b = 'x'")) == [0, 1, 2, 4, 6, 7]


def test_partition_key_in(session, ev):
    for b in ("y", "z"):
        session.execute(f"INSERT INTO {ev} (a, b, c, v) VALUES (1, '{b}', 0, '{b}')")
    rows = session.execute(f"SELECT b, c FROM {ev} WHERE a = 1 AND b IN ('y', 'z', 'missing')")
    assert sorted(tuple(r) for r in rows) == [("y", 0), ("z", 0)]
    rows = session.execute(f"SELECT b, c FROM {ev} WHERE a IN (1, 2) AND b IN ('x', 'y') AND c = 0")
    assert sorted(tuple(r) for r in rows) == [("x", 0), ("y", 0)]


def test_clustering_in(session, ev):
    assert cs(session.execute(f"SELECT c FROM {ev} WHERE a = 1 AND b = 'x' AND c IN (7, 1, 3)")) == [1, 3, 7]


@pytest.mark.parametrize("where, expected", [
    ("c > 2 AND c <= 5", [3, 4, 5]),
    ("c >= 8", [8, 9]),
    ("c < 2", [0, 1]),
    ("c > 3 AND c < 4", []),
    ("c >= 4 AND c <= 4", [4]),
])
def test_clustering_slices(session, ev, where, expected):
    assert cs(session.execute(f"SELECT c FROM {ev} WHERE a = 1 AND b = 'x' AND {where}")) == expected


def test_slices_on_desc_table(session, table):
    t = table("k int, c int, v int, PRIMARY KEY (k, c)", "CLUSTERING ORDER BY (c DESC)")
    for c in range(10):
        session.execute(f"INSERT INTO {t} (k, c, v) VALUES (0, {c}, {c})")
    assert cs(session.execute(f"SELECT c FROM {t} WHERE k = 0")) == list(range(9, -1, -1))
    assert cs(session.execute(f"SELECT c FROM {t} WHERE k = 0 AND c > 2 AND c <= 5")) == [5, 4, 3]
    assert cs(session.execute(f"SELECT c FROM {t} WHERE k = 0 ORDER BY c ASC")) == list(range(10))
    assert cs(session.execute(f"SELECT c FROM {t} WHERE k = 0 AND c < 3 ORDER BY c ASC LIMIT 2")) == [0, 1]
    assert cs(session.execute(f"SELECT c FROM {t} WHERE k = 0 LIMIT 3")) == [9, 8, 7]


def test_order_by(session, ev):
    assert cs(session.execute(f"SELECT c FROM {ev} WHERE a = 1 AND b = 'x' ORDER BY c DESC")) \
        == list(range(9, -1, -1))
    assert cs(session.execute(f"SELECT c FROM {ev} WHERE a = 1 AND b = 'x' ORDER BY c ASC")) \
        == list(range(10))
    assert cs(session.execute(
        f"SELECT c FROM {ev} WHERE a = 1 AND b = 'x' AND c >= 5 ORDER BY c DESC")) == [9, 8, 7, 6, 5]


def test_limit(session, ev):
    assert cs(session.execute(f"SELECT c FROM {ev} WHERE a = 1 AND b = 'x' LIMIT 3")) == [0, 1, 2]
    assert cs(session.execute(f"SELECT c FROM {ev} WHERE a = 1 AND b = 'x' ORDER BY c DESC LIMIT 2")) == [9, 8]
    assert len(list(session.execute(f"SELECT c FROM {ev} LIMIT 4"))) == 4


def test_per_partition_limit(session, ev):
    for a in (2, 3):
        for c in range(5):
            session.execute(f"INSERT INTO {ev} (a, b, c) VALUES ({a}, 'p', {c})")
    rows = list(session.execute(f"SELECT a, b, c FROM {ev} PER PARTITION LIMIT 2"))
    by_part = {}
    for r in rows:
        by_part.setdefault((r.a, r.b), []).append(r.c)
    assert by_part == {(1, "x"): [0, 1], (2, "p"): [0, 1], (3, "p"): [0, 1]}
    rows = list(session.execute(f"SELECT a, c FROM {ev} PER PARTITION LIMIT 1 LIMIT 2"))
    assert len(rows) == 2 and all(r.c == 0 for r in rows)


def test_count(session, ev):
    assert session.execute(f"SELECT COUNT(*) FROM {ev} WHERE a = 1 AND b = 'x'").one().count == 10
    assert session.execute(f"SELECT count(*) AS total FROM {ev} WHERE a = 1 AND b = 'x' AND c > 6").one().total == 3
    assert session.execute(f"SELECT COUNT(*) FROM {ev} WHERE a = 9 AND b = 'none'").one().count == 0
    assert session.execute(f"SELECT COUNT(*) FROM {ev}").one()[0] == 10


def test_aliases(session, ev):
    rs = session.execute(f"SELECT c AS ck, v AS value, n FROM {ev} WHERE a = 1 AND b = 'x' AND c = 5")
    assert rs.column_names == ["ck", "value", "n"]
    row = rs.one()
    assert (row.ck, row.value, row.n) == (5, "v5", 2)


def test_to_json(session, ev):
    session.execute(f"UPDATE {ev} SET s = 'q\"uote' WHERE a = 1 AND b = 'x'")
    row = session.execute(
        f"SELECT toJson(v) AS jv, toJson(n), toJson(s) AS js, toJson(c) FROM {ev} "
        "WHERE a = 1 AND b = 'x' AND c = 4").one()
    assert row.jv == '"v4"'
    assert json.loads(row[1]) == 1
    assert json.loads(row.js) == 'q"uote'
    assert row[3] == "4"


def test_token_function_and_partition_order(session, ev):
    for a in range(2, 30):
        session.execute(f"INSERT INTO {ev} (a, b, c) VALUES ({a}, 'k{a}', 0)")
    rows = list(session.execute(f"SELECT a, b, token(a, b) FROM {ev} WHERE c = 0 ALLOW FILTERING"))
    assert len(rows) == 29
    tokens = [r[2] for r in rows]
    assert all(isinstance(t, int) for t in tokens)
    assert tokens == sorted(tokens), "a full scan returns partitions in token order"
    # token ranges select exactly the partitions in that range
    mid = tokens[14]
    above = {(r.a, r.b) for r in session.execute(f"SELECT a, b FROM {ev} WHERE token(a, b) > {mid}")}
    assert above == {(r.a, r.b) for r in rows if r[2] > mid}
    # token() of literal key values on the right side (Cassandra computes it)
    pivot = rows[14]
    above = {(r.a, r.b) for r in session.execute(
        f"SELECT a, b FROM {ev} WHERE token(a, b) > token({pivot.a}, '{pivot.b}')")}
    assert above == {(r.a, r.b) for r in rows if r[2] > mid}
    between = {(r.a, r.b) for r in session.execute(
        f"SELECT a, b FROM {ev} WHERE token(a, b) >= token({rows[3].a}, '{rows[3].b}') "
        f"AND token(a, b) <= token({rows[5].a}, '{rows[5].b}')")}
    assert between == {(r.a, r.b) for r in rows[3:6]}
    with pytest.raises(InvalidRequest, match="token"):
        session.execute(f"SELECT a FROM {ev} WHERE token(a, b) > token(1)")


def test_allow_filtering(session, ev):
    rows = session.execute(f"SELECT c FROM {ev} WHERE n = 1 ALLOW FILTERING")
    assert sorted(cs(rows)) == [1, 4, 7]
    rows = session.execute(f"SELECT c FROM {ev} WHERE a = 1 AND b = 'x' AND n = 2 ALLOW FILTERING")
    assert cs(rows) == [2, 5, 8]
    with pytest.raises(InvalidRequest):
        session.execute(f"SELECT c FROM {ev} WHERE n = 1")


def test_select_distinct_partition_keys(session, ev):
    session.execute(f"INSERT INTO {ev} (a, b, c) VALUES (5, 'd', 0)")
    rows = session.execute(f"SELECT DISTINCT a, b FROM {ev}")
    assert sorted(tuple(r) for r in rows) == [(1, "x"), (5, "d")]
