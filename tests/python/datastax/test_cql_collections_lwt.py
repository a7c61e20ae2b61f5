"""Collections (ordering, list element operations that read first, CONTAINS),
lightweight transactions and counters, as Cassandra 4.x behaves."""

import uuid

import pytest
from cassandra import InvalidRequest
from cassandra.query import BatchStatement, BatchType, SimpleStatement


# ---------------------------------------------------------------- collections

def test_set_and_map_are_returned_in_element_order(session, table):
    t = table("k int PRIMARY KEY, s set<int>, m map<int, text>, ts set<text>, u set<uuid>")
    session.execute(f"INSERT INTO {t} (k, s, m, ts) VALUES (0, {{256, 1, -1, 3}}, {{300: 'c', -5: 'a', 2: 'b'}}, {{'b', 'a', 'ab'}})")
    session.execute(f"UPDATE {t} SET s = s + {{-1000, 65536}} WHERE k = 0")
    r = session.execute(f"SELECT s, m, ts FROM {t} WHERE k = 0").one()
    assert list(r.s) == [-1000, -1, 1, 3, 256, 65536]
    assert list(r.m.items()) == [(-5, "a"), (2, "b"), (300, "c")]
    assert list(r.ts) == ["a", "ab", "b"]


def test_list_set_by_index(session, table):
    t = table("k int PRIMARY KEY, l list<text>")
    session.execute(f"INSERT INTO {t} (k, l) VALUES (0, ['a', 'b', 'c'])")
    session.execute(f"UPDATE {t} SET l[1] = 'B' WHERE k = 0")
    assert session.execute(f"SELECT l FROM {t} WHERE k = 0").one().l == ["a", "B", "c"]
    p = session.prepare(f"UPDATE {t} SET l[?] = ? WHERE k = ?")
    session.execute(p, (2, "C", 0))
    assert session.execute(f"SELECT l FROM {t} WHERE k = 0").one().l == ["a", "B", "C"]
    with pytest.raises(InvalidRequest, match="List index 3 out of bound, list has size 3"):
        session.execute(f"UPDATE {t} SET l[3] = 'x' WHERE k = 0")
    with pytest.raises(InvalidRequest, match="Attempted to set an element on a list which is null"):
        session.execute(f"UPDATE {t} SET l[0] = 'x' WHERE k = 1")


def test_list_delete_by_index_and_remove_by_value(session, table):
    t = table("k int PRIMARY KEY, l list<int>")
    session.execute(f"INSERT INTO {t} (k, l) VALUES (0, [1, 2, 3, 2, 4])")
    session.execute(f"DELETE l[0] FROM {t} WHERE k = 0")
    assert session.execute(f"SELECT l FROM {t} WHERE k = 0").one().l == [2, 3, 2, 4]
    session.execute(f"UPDATE {t} SET l = l - [2] WHERE k = 0")
    assert session.execute(f"SELECT l FROM {t} WHERE k = 0").one().l == [3, 4]
    with pytest.raises(InvalidRequest, match="List index 5 out of bound, list has size 2"):
        session.execute(f"DELETE l[5] FROM {t} WHERE k = 0")
    session.execute(f"UPDATE {t} SET l = l - [3, 4] WHERE k = 0")
    assert session.execute(f"SELECT l FROM {t} WHERE k = 0").one().l is None


def test_list_ops_in_a_batch(session, table):
    t = table("k int PRIMARY KEY, l list<int>, v int")
    session.execute(f"INSERT INTO {t} (k, l) VALUES (0, [1, 2, 3])")
    session.execute(f"BEGIN BATCH UPDATE {t} SET l[0] = 10 WHERE k = 0; UPDATE {t} SET v = 1 WHERE k = 0; APPLY BATCH")
    r = session.execute(f"SELECT l, v FROM {t} WHERE k = 0").one()
    assert (r.l, r.v) == ([10, 2, 3], 1)


def test_contains_and_contains_key(session, table):
    t = table("k int PRIMARY KEY, s set<text>, m map<text, int>, l list<int>")
    session.execute(f"INSERT INTO {t} (k, s, m, l) VALUES (1, {{'a', 'b'}}, {{'x': 1, 'y': 2}}, [5, 6])")
    session.execute(f"INSERT INTO {t} (k, s, m, l) VALUES (2, {{'c'}}, {{'z': 2}}, [7])")
    ks = lambda q: sorted(r.k for r in session.execute(q))
    assert ks(f"SELECT k FROM {t} WHERE s CONTAINS 'a' ALLOW FILTERING") == [1]
    assert ks(f"SELECT k FROM {t} WHERE m CONTAINS KEY 'z' ALLOW FILTERING") == [2]
    assert ks(f"SELECT k FROM {t} WHERE m CONTAINS 2 ALLOW FILTERING") == [1, 2]
    assert ks(f"SELECT k FROM {t} WHERE l CONTAINS 6 ALLOW FILTERING") == [1]
    with pytest.raises(InvalidRequest, match="ALLOW FILTERING"):
        session.execute(f"SELECT k FROM {t} WHERE s CONTAINS 'a'")


def test_collection_tombstones(session, table):
    t = table("k int PRIMARY KEY, s set<int>, m map<int, int>")
    session.execute(f"INSERT INTO {t} (k, s, m) VALUES (0, {{1, 2}}, {{1: 1}})")
    session.execute(f"UPDATE {t} SET s = {{3}} WHERE k = 0")
    assert session.execute(f"SELECT s FROM {t} WHERE k = 0").one().s == {3}
    session.execute(f"DELETE m FROM {t} WHERE k = 0")
    session.execute(f"UPDATE {t} SET m[2] = 2 WHERE k = 0")
    assert session.execute(f"SELECT m FROM {t} WHERE k = 0").one().m == {2: 2}
    session.execute(f"UPDATE {t} SET s = null WHERE k = 0")
    assert session.execute(f"SELECT s FROM {t} WHERE k = 0").one().s is None


def test_frozen_collections_as_keys(session, table):
    t = table("k frozen<list<int>>, c frozen<set<text>>, v int, PRIMARY KEY (k, c)")
    session.execute(f"INSERT INTO {t} (k, c, v) VALUES ([1, 2], {{'b'}}, 1)")
    session.execute(f"INSERT INTO {t} (k, c, v) VALUES ([1, 2], {{'a', 'z'}}, 2)")
    rows = list(session.execute(f"SELECT c, v FROM {t} WHERE k = [1, 2]"))
    assert [(sorted(r.c), r.v) for r in rows] == [(["a", "z"], 2), (["b"], 1)]


# ---------------------------------------------------------------- LWT

def test_insert_if_not_exists(session, table):
    t = table("k int PRIMARY KEY, v text, w int")
    r = session.execute(f"INSERT INTO {t} (k, v) VALUES (1, 'a') IF NOT EXISTS")
    assert r.column_names == ["[applied]"] and r.one()[0] is True
    r = session.execute(f"INSERT INTO {t} (k, v) VALUES (1, 'b') IF NOT EXISTS")
    assert r.column_names == ["[applied]", "k", "v", "w"]
    assert tuple(r.one()) == (False, 1, "a", None)
    assert r.was_applied is False
    assert session.execute(f"SELECT v FROM {t} WHERE k = 1").one().v == "a"


def test_update_if_exists_and_delete_if_exists(session, table):
    t = table("k int, c int, v text, PRIMARY KEY (k, c)")
    r = session.execute(f"UPDATE {t} SET v = 'x' WHERE k = 1 AND c = 1 IF EXISTS")
    assert r.column_names == ["[applied]"] and r.one()[0] is False
    assert session.execute(f"SELECT * FROM {t}").one() is None
    session.execute(f"INSERT INTO {t} (k, c, v) VALUES (1, 1, 'a')")
    assert session.execute(f"UPDATE {t} SET v = 'x' WHERE k = 1 AND c = 1 IF EXISTS").one()[0] is True
    assert session.execute(f"SELECT v FROM {t} WHERE k = 1 AND c = 1").one().v == "x"
    assert session.execute(f"DELETE FROM {t} WHERE k = 1 AND c = 1 IF EXISTS").one()[0] is True
    assert session.execute(f"SELECT * FROM {t}").one() is None
    assert session.execute(f"DELETE FROM {t} WHERE k = 1 AND c = 1 IF EXISTS").one()[0] is False


def test_update_if_conditions(session, table):
    t = table("k int PRIMARY KEY, v int, w text, m map<text, int>, l list<int>")
    session.execute(f"INSERT INTO {t} (k, v, w, m, l) VALUES (1, 10, 'a', {{'x': 1}}, [5, 6])")
    r = session.execute(f"UPDATE {t} SET v = 11 WHERE k = 1 IF v = 9")
    assert r.column_names == ["[applied]", "v"] and tuple(r.one()) == (False, 10)
    r = session.execute(f"UPDATE {t} SET v = 11 WHERE k = 1 IF v = 10 AND w = 'a'")
    assert r.column_names == ["[applied]"] and r.one()[0] is True
    assert session.execute(f"UPDATE {t} SET v = 12 WHERE k = 1 IF v > 10 AND v <= 11").one()[0] is True
    assert session.execute(f"UPDATE {t} SET v = 13 WHERE k = 1 IF v IN (1, 12)").one()[0] is True
    assert session.execute(f"UPDATE {t} SET v = 14 WHERE k = 1 IF v != 13").one()[0] is False
    assert session.execute(f"UPDATE {t} SET w = 'b' WHERE k = 1 IF m['x'] = 1 AND l[1] = 6").one()[0] is True
    r = session.execute(f"UPDATE {t} SET w = 'c' WHERE k = 1 IF m['y'] = 1")
    assert tuple(r.one()) == (False, {"x": 1})
    assert session.execute(f"UPDATE {t} SET w = 'c' WHERE k = 1 IF m['y'] = null").one()[0] is True
    p = session.prepare(f"UPDATE {t} SET v = ? WHERE k = ? IF v = ?")
    assert session.execute(p, (20, 1, 13)).one()[0] is True
    assert session.execute(f"SELECT v, w FROM {t} WHERE k = 1").one() == (20, "c")
    # a missing row: conditions see nulls
    r = session.execute(f"UPDATE {t} SET v = 1 WHERE k = 2 IF v = 3")
    assert r.column_names == ["[applied]"] and r.one()[0] is False
    assert session.execute(f"UPDATE {t} SET v = 1 WHERE k = 2 IF v = null").one()[0] is True


def test_delete_if_condition(session, table):
    t = table("k int PRIMARY KEY, v int")
    session.execute(f"INSERT INTO {t} (k, v) VALUES (1, 1)")
    assert session.execute(f"DELETE FROM {t} WHERE k = 1 IF v = 2").one()[0] is False
    assert session.execute(f"DELETE FROM {t} WHERE k = 1 IF v = 1").one()[0] is True
    assert session.execute(f"SELECT * FROM {t} WHERE k = 1").one() is None


def test_lwt_errors(session, table):
    t = table("k int, c int, v int, PRIMARY KEY (k, c)")
    with pytest.raises(InvalidRequest, match="Cannot provide custom timestamp for conditional updates"):
        session.execute(f"UPDATE {t} USING TIMESTAMP 5 SET v = 1 WHERE k = 1 AND c = 1 IF v = 1")
    with pytest.raises(InvalidRequest, match="IN on the partition key is not supported with conditional updates"):
        session.execute(f"UPDATE {t} SET v = 1 WHERE k IN (1, 2) AND c = 1 IF v = 1")
    with pytest.raises(InvalidRequest, match="PRIMARY KEY column 'c' cannot have IF conditions"):
        session.execute(f"UPDATE {t} SET v = 1 WHERE k = 1 AND c = 1 IF c = 1")
    with pytest.raises(InvalidRequest, match="Invalid comparison with null"):
        session.execute(f"UPDATE {t} SET v = 1 WHERE k = 1 AND c = 1 IF v > null")


def test_lwt_is_atomic_under_concurrency(session, table):
    t = table("k int PRIMARY KEY, v int")
    session.execute(f"INSERT INTO {t} (k, v) VALUES (0, 0)")
    p = session.prepare(f"UPDATE {t} SET v = ? WHERE k = 0 IF v = ?")
    applied = 0
    # 8 clients race on each step; exactly one may win.
    for step in range(20):
        futures = [session.execute_async(p, (step + 1, step)) for _ in range(8)]
        wins = sum(1 for f in futures if f.result().one()[0])
        assert wins == 1
        applied += wins
    assert session.execute(f"SELECT v FROM {t} WHERE k = 0").one().v == 20


# ---------------------------------------------------------------- counters

def test_counter_increments(session, table):
    t = table("k int, c int, n counter, m counter, PRIMARY KEY (k, c)")
    session.execute(f"UPDATE {t} SET n = n + 5 WHERE k = 1 AND c = 1")
    session.execute(f"UPDATE {t} SET n = n - 2, m = m + 1 WHERE k = 1 AND c = 1")
    p = session.prepare(f"UPDATE {t} SET n = n + ? WHERE k = ? AND c = ?")
    session.execute(p, (10, 1, 1))
    r = session.execute(f"SELECT n, m FROM {t} WHERE k = 1 AND c = 1").one()
    assert (r.n, r.m) == (13, 1)
    futures = [session.execute_async(p, (1, 1, 2)) for _ in range(50)]
    for f in futures:
        f.result()
    assert session.execute(f"SELECT n FROM {t} WHERE k = 1 AND c = 2").one().n == 50


def test_counter_batch(session, table):
    t = table("k int PRIMARY KEY, n counter")
    session.execute(f"BEGIN COUNTER BATCH UPDATE {t} SET n = n + 1 WHERE k = 1; UPDATE {t} SET n = n + 2 WHERE k = 2; APPLY BATCH")
    assert sorted((r.k, r.n) for r in session.execute(f"SELECT k, n FROM {t}")) == [(1, 1), (2, 2)]
    with pytest.raises(InvalidRequest, match="Cannot include a counter statement in a logged batch"):
        session.execute(f"BEGIN BATCH UPDATE {t} SET n = n + 1 WHERE k = 1; APPLY BATCH")


def test_counter_restrictions(session, table):
    t = table("k int PRIMARY KEY, n counter")
    with pytest.raises(InvalidRequest, match="INSERT statements are not allowed on counter tables, use UPDATE instead"):
        session.execute(f"INSERT INTO {t} (k, n) VALUES (1, 1)")
    with pytest.raises(InvalidRequest, match="Cannot provide custom TTL for counter updates"):
        session.execute(f"UPDATE {t} USING TTL 10 SET n = n + 1 WHERE k = 1")
    with pytest.raises(InvalidRequest, match="Cannot set the value of counter column n"):
        session.execute(f"UPDATE {t} SET n = 5 WHERE k = 1")
    with pytest.raises(InvalidRequest, match="Conditional updates are not supported on counter tables"):
        session.execute(f"UPDATE {t} SET n = n + 1 WHERE k = 1 IF EXISTS")
    with pytest.raises(InvalidRequest):
        session.execute(f"CREATE TABLE {t}_mixed (k int PRIMARY KEY, n counter, v int)")


def test_failed_conditional_batch_answers_every_conditioned_row(session, table):
    """Cassandra's answer to a conditional batch that does not apply: [applied] = false,
    the primary key columns and the conditioned columns, one row per conditioned row
    (gocql's TestCAS scans them)."""
    t = table("title text, revid int, last_modified int, body text, PRIMARY KEY (title, revid)")
    session.execute(f"INSERT INTO {t} (title, revid, last_modified, body) VALUES ('a', 2, 20, 'x')")
    session.execute(f"INSERT INTO {t} (title, revid, last_modified, body) VALUES ('a', 1, 10, 'y')")
    rs = session.execute(
        f"BEGIN BATCH "
        f"UPDATE {t} SET body = 'n' WHERE title = 'a' AND revid = 2 IF last_modified = 20; "
        f"UPDATE {t} SET body = 'n' WHERE title = 'a' AND revid = 1 IF last_modified = 99; "
        f"APPLY BATCH")
    assert rs.column_names == ["[applied]", "title", "revid", "last_modified"]
    assert [tuple(r) for r in rs] == [(False, "a", 1, 10), (False, "a", 2, 20)]
    assert {r.body for r in session.execute(f"SELECT body FROM {t} WHERE title = 'a'")} == {"x", "y"}
    # rows that do not exist are not listed; with none at all only [applied] comes back
    rs = session.execute(
        f"BEGIN BATCH "
        f"UPDATE {t} SET body = 'n' WHERE title = 'b' AND revid = 1 IF last_modified = 1; "
        f"APPLY BATCH")
    assert [tuple(r) for r in rs] == [(False,)]
    # IF NOT EXISTS in the batch: every column of the existing rows
    rs = session.execute(
        f"BEGIN BATCH "
        f"INSERT INTO {t} (title, revid, last_modified) VALUES ('a', 1, 5) IF NOT EXISTS; "
        f"UPDATE {t} SET body = 'n' WHERE title = 'a' AND revid = 3 IF last_modified = 1; "
        f"APPLY BATCH")
    assert rs.column_names == ["[applied]", "title", "revid", "body", "last_modified"]
    assert [tuple(r) for r in rs] == [(False, "a", 1, "y", 10)]
    # and when every condition holds: just [applied] = true, and the writes are made
    rs = session.execute(
        f"BEGIN BATCH "
        f"UPDATE {t} SET body = 'n1' WHERE title = 'a' AND revid = 1 IF last_modified = 10; "
        f"UPDATE {t} SET body = 'n2' WHERE title = 'a' AND revid = 2 IF last_modified = 20; "
        f"APPLY BATCH")
    assert [tuple(r) for r in rs] == [(True,)]
    assert [r.body for r in session.execute(f"SELECT body FROM {t} WHERE title = 'a'")] == ["n1", "n2"]
