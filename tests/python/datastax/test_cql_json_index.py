"""INSERT JSON, secondary-index equality queries, and the SELECT features
of the CQL-completeness issue, as Cassandra 4.x answers them."""

import pytest
from cassandra import InvalidRequest


def test_insert_json_and_select_json(session, table):
    t = table("k int, c int, v text, m map<text, int>, s set<int>, PRIMARY KEY (k, c)")
    session.execute(f"""INSERT INTO {t} JSON '{{"k": 1, "c": 2, "v": "x", "m": {{"b": 2, "a": 1}}, "s": [3, 1]}}'""")
    r = session.execute(f"SELECT k, c, v, m, s FROM {t} WHERE k = 1 AND c = 2").one()
    assert (r.k, r.c, r.v, dict(r.m), sorted(r.s)) == (1, 2, "x", {"a": 1, "b": 2}, [1, 3])
    j = session.execute(f"SELECT JSON k, v, m FROM {t} WHERE k = 1").one()[0]
    assert j == '{"k": 1, "v": "x", "m": {"a": 1, "b": 2}}'


def test_insert_json_default_null_and_unset(session, table):
    t = table("k int PRIMARY KEY, a int, b text")
    session.execute(f"""INSERT INTO {t} JSON '{{"k": 1, "a": 1, "b": "x"}}'""")
    session.execute(f"""INSERT INTO {t} JSON '{{"k": 1, "a": 2}}' DEFAULT UNSET""")
    assert tuple(session.execute(f"SELECT a, b FROM {t} WHERE k = 1").one()) == (2, "x")
    session.execute(f"""INSERT INTO {t} JSON '{{"k": 1, "a": 3}}'""")
    assert tuple(session.execute(f"SELECT a, b FROM {t} WHERE k = 1").one()) == (3, None)


def test_insert_json_prepared_with_ttl_and_if_not_exists(session, table):
    t = table("k int PRIMARY KEY, v text")
    p = session.prepare(f"INSERT INTO {t} JSON ? USING TTL 1000")
    session.execute(p, ['{"k": 5, "v": "y"}'])
    r = session.execute(f"SELECT v, ttl(v) FROM {t} WHERE k = 5").one()
    assert r[0] == "y" and 900 < r[1] <= 1000
    r = session.execute(f"""INSERT INTO {t} JSON '{{"k": 5, "v": "z"}}' IF NOT EXISTS""")
    assert tuple(r.one()) == (False, 5, "y")


def test_insert_json_errors(session, table):
    t = table("k int PRIMARY KEY, v int")
    with pytest.raises(InvalidRequest, match="JSON values map contains unrecognized column: nope"):
        session.execute(f"""INSERT INTO {t} JSON '{{"k": 1, "nope": 2}}'""")
    with pytest.raises(InvalidRequest, match="Error decoding JSON value for v"):
        session.execute(f"""INSERT INTO {t} JSON '{{"k": 1, "v": "abc"}}'""")
    with pytest.raises(InvalidRequest, match="Could not decode JSON string as a map"):
        session.execute(f"INSERT INTO {t} JSON 'not json'")
    with pytest.raises(InvalidRequest, match="Invalid null value in condition for column k"):
        session.execute(f"""INSERT INTO {t} JSON '{{"v": 1}}'""")


def test_indexed_column_equality_without_allow_filtering(session, table, ks):
    t = table("k int, c int, v text, w text, PRIMARY KEY (k, c)")
    session.execute(f"CREATE INDEX ON {t} (v)")
    for k in range(3):
        for c in range(3):
            session.execute(f"INSERT INTO {t} (k, c, v, w) VALUES ({k}, {c}, 'v{c}', 'w{k}')")
    rows = sorted((r.k, r.c) for r in session.execute(f"SELECT k, c FROM {t} WHERE v = 'v1'"))
    assert rows == [(0, 1), (1, 1), (2, 1)]
    assert [r.c for r in session.execute(f"SELECT c FROM {t} WHERE k = 2 AND v = 'v2'")] == [2]
    # a column without an index still needs ALLOW FILTERING
    with pytest.raises(InvalidRequest, match="ALLOW FILTERING"):
        session.execute(f"SELECT * FROM {t} WHERE w = 'w1'")


def test_select_features(session, table):
    t = table("k int, c int, d int, v int, s int STATIC, PRIMARY KEY (k, c, d)")
    for k in range(2):
        session.execute(f"UPDATE {t} SET s = {k * 10} WHERE k = {k}")
        for c in range(3):
            for d in range(2):
                session.execute(f"INSERT INTO {t} (k, c, d, v) VALUES ({k}, {c}, {d}, {c * 10 + d})")
    assert sorted(tuple(r) for r in session.execute(f"SELECT DISTINCT k, s FROM {t}")) == [(0, 0), (1, 10)]
    assert [tuple(r) for r in session.execute(f"SELECT c, count(*) FROM {t} WHERE k = 0 GROUP BY k, c")] == [(0, 2), (1, 2), (2, 2)]
    # columns restricted by = may be left out of GROUP BY (Cassandra's rule)
    assert [tuple(r) for r in session.execute(f"SELECT c, count(*) FROM {t} WHERE k = 0 GROUP BY c")] == [(0, 2), (1, 2), (2, 2)]
    assert [tuple(r) for r in session.execute(f"SELECT d, count(*) FROM {t} WHERE k = 0 AND c = 1 GROUP BY d")] == [(0, 1), (1, 1)]
    with pytest.raises(InvalidRequest, match="following their declared order"):
        session.execute(f"SELECT count(*) FROM {t} WHERE k = 0 GROUP BY d")
    with pytest.raises(InvalidRequest, match="following their declared order"):
        session.execute(f"SELECT count(*) FROM {t} GROUP BY c")
    assert [r.v for r in session.execute(f"SELECT v FROM {t} WHERE k = 0 AND c IN (2, 0)")] == [0, 1, 20, 21]
    assert [r.v for r in session.execute(f"SELECT v FROM {t} WHERE k = 0 AND (c, d) > (1, 0)")] == [11, 20, 21]
    assert [r.v for r in session.execute(f"SELECT v FROM {t} WHERE k = 0 AND (c, d) IN ((2, 1), (0, 0))")] == [0, 21]
    with pytest.raises(InvalidRequest, match="Unsupported restriction: v IS NOT NULL"):
        session.execute(f"SELECT * FROM {t} WHERE k = 0 AND v IS NOT NULL")


def test_aggregates_on_decimal_and_varint(session, table):
    from decimal import Decimal
    t = table("k int PRIMARY KEY, d decimal, vi varint")
    session.execute(f"INSERT INTO {t} (k, d, vi) VALUES (1, 1.5, 100000000000000000000)")
    session.execute(f"INSERT INTO {t} (k, d, vi) VALUES (2, 2.25, 3)")
    r = session.execute(f"SELECT sum(d), avg(d), sum(vi), min(d), max(vi) FROM {t}").one()
    assert tuple(r) == (Decimal("3.75"), Decimal("1.875"), 100000000000000000003, Decimal("1.5"), 100000000000000000000)
