"""CQL behaviours that Apache Cassandra 4 has, pinned with the DataStax driver.

Every expectation here (results, exception classes, and the key part of the error message)
is what Cassandra 4.0 answers; the behaviours were picked from Cassandra's own CQL
validation tests (test/unit/org/apache/cassandra/cql3/validation/...) as the ones an
application or ORM is likely to hit.
"""

import datetime
import decimal
import json
import time
import uuid

import pytest
from cassandra import InvalidRequest
from cassandra.protocol import ConfigurationException, SyntaxException
from cassandra.query import BatchStatement, BatchType, SimpleStatement


def refused(session, cql, message, exc=InvalidRequest):
    """Runs `cql`, which must fail with `exc` whose message contains `message`."""
    with pytest.raises(exc) as e:
        session.execute(cql)
    assert message in str(e.value), f"{cql!r}: {e.value}"


def rows(session, cql, *args, fetch_size=None):
    st = SimpleStatement(cql, fetch_size=fetch_size)
    return list(session.execute(st, args or None))


def one(session, cql, *args):
    r = rows(session, cql, *args)
    assert len(r) == 1, r
    return r[0]


# ---------------------------------------------------------------------------------------
# collections

def test_empty_collections_are_null(session, table):
    t = table("k int PRIMARY KEY, l list<int>, s set<int>, m map<int, int>")
    session.execute(f"INSERT INTO {t} (k, l, s, m) VALUES (1, [], {{}}, {{}})")
    r = one(session, f"SELECT l, s, m FROM {t} WHERE k = 1")
    assert (r.l, r.s, r.m) == (None, None, None)
    session.execute(f"UPDATE {t} SET s = {{1}}, l = [1] WHERE k = 2")
    session.execute(f"UPDATE {t} SET s = s - {{1}}, l = l - [1] WHERE k = 2")
    # A row made by UPDATE lives only through its cells: emptied, it is gone.
    assert rows(session, f"SELECT l, s FROM {t} WHERE k = 2") == []


@pytest.mark.parametrize("lit", ["[1, null]", "{1, null}", "{1: null}", "{null: 1}"])
def test_null_inside_collection_literal_refused(session, table, lit):
    t = table("k int PRIMARY KEY, l list<int>, s set<int>, m map<int, int>")
    col = {"[": "l", "{": "s" if ":" not in lit else "m"}[lit[0]]
    refused(session, f"INSERT INTO {t} (k, {col}) VALUES (1, {lit})",
            "null is not supported inside collections")


def test_collection_set_to_null_deletes_it(session, table):
    t = table("k int PRIMARY KEY, l list<int>, m map<text, int>, v int")
    session.execute(f"INSERT INTO {t} (k, l, m, v) VALUES (1, [1, 2], {{'a': 1}}, 1)")
    session.execute(f"UPDATE {t} SET l = null, m = null WHERE k = 1")
    r = one(session, f"SELECT l, m, v FROM {t} WHERE k = 1")
    assert (r.l, r.m, r.v) == (None, None, 1)


def test_set_literal_duplicates_collapse_and_sort(session, table):
    t = table("k int PRIMARY KEY, s set<int>, m map<int, text>")
    session.execute(f"INSERT INTO {t} (k, s, m) VALUES (1, {{3, 1, 3, 2}}, {{2: 'b', 1: 'a', 2: 'c'}})")
    r = one(session, f"SELECT s, m FROM {t} WHERE k = 1")
    assert list(r.s) == [1, 2, 3]
    assert list(r.m.items()) == [(1, "a"), (2, "c")]


def test_list_append_prepend_and_remove_all_occurrences(session, table):
    t = table("k int PRIMARY KEY, l list<int>")
    session.execute(f"UPDATE {t} SET l = l + [2, 3] WHERE k = 1")
    session.execute(f"UPDATE {t} SET l = [0, 1] + l WHERE k = 1")
    session.execute(f"UPDATE {t} SET l = l + [1] WHERE k = 1")
    assert one(session, f"SELECT l FROM {t} WHERE k = 1").l == [0, 1, 2, 3, 1]
    session.execute(f"UPDATE {t} SET l = l - [1, 3] WHERE k = 1")
    assert one(session, f"SELECT l FROM {t} WHERE k = 1").l == [0, 2]


def test_list_index_out_of_bounds(session, table):
    t = table("k int PRIMARY KEY, l list<int>")
    session.execute(f"INSERT INTO {t} (k, l) VALUES (1, [1])")
    refused(session, f"UPDATE {t} SET l[5] = 1 WHERE k = 1", "List index 5 out of bound, list has size 1")
    refused(session, f"UPDATE {t} SET l[0] = 1 WHERE k = 2",
            "Attempted to set an element on a list which is null")


def test_map_and_set_element_operations(session, table):
    t = table("k int PRIMARY KEY, m map<text, int>, s set<text>")
    session.execute(f"UPDATE {t} SET m = m + {{'a': 1, 'b': 2}}, s = s + {{'x', 'y'}} WHERE k = 1")
    session.execute(f"UPDATE {t} SET m['c'] = 3 WHERE k = 1")
    session.execute(f"DELETE m['a'] FROM {t} WHERE k = 1")
    session.execute(f"UPDATE {t} SET m = m - {{'b'}}, s = s - {{'x'}} WHERE k = 1")
    r = one(session, f"SELECT m, s FROM {t} WHERE k = 1")
    assert dict(r.m) == {"c": 3} and set(r.s) == {"y"}


def test_collection_element_and_slice_selection(session, table):
    t = table("k int PRIMARY KEY, m map<text, int>, s set<int>")
    session.execute(f"INSERT INTO {t} (k, m, s) VALUES (1, {{'a': 1, 'b': 2, 'c': 3, 'd': 4}}, {{1, 2, 3, 4}})")
    r = one(session, f"SELECT m['b'], m['zz'], s[3] FROM {t} WHERE k = 1")
    assert tuple(r) == (2, None, 3)
    r = one(session, f"SELECT m['b'..'c'], s[2..] FROM {t} WHERE k = 1")
    assert dict(r[0]) == {"b": 2, "c": 3}
    assert set(r[1]) == {2, 3, 4}


def test_bind_markers_in_element_and_slice_selection(session, table):
    t = table("k int PRIMARY KEY, m map<text, int>, s set<int>, fm frozen<map<int, text>>")
    session.execute(f"INSERT INTO {t} (k, m, s, fm) VALUES (1, {{'a': 1, 'b': 2, 'c': 3, 'd': 4}}, "
                    "{1, 2, 3, 4}, {1: 'x', 2: 'y'})")
    ps = session.prepare(f"SELECT m[?], s[?], fm[?] FROM {t} WHERE k = ?")
    # Markers in the selection come first, typed as the collection's key.
    assert [c.type.typename for c in ps.column_metadata] == ["varchar", "int", "int", "int"]
    assert tuple(session.execute(ps, ("b", 3, 2, 1)).one()) == (2, 3, "y")
    assert tuple(session.execute(ps, ("zz", 9, 7, 1)).one()) == (None, None, None)
    ps = session.prepare(f"SELECT m[?..?], s[?..] FROM {t} WHERE k = ?")
    r = session.execute(ps, ("b", "c", 3, 1)).one()
    assert dict(r[0]) == {"b": 2, "c": 3} and set(r[1]) == {3, 4}
    # The same prepared statement, other keys: nothing is fixed at PREPARE.
    r = session.execute(ps, ("a", "a", 1, 1)).one()
    assert dict(r[0]) == {"a": 1} and set(r[1]) == {1, 2, 3, 4}
    with pytest.raises(InvalidRequest):
        session.execute(f"SELECT m[%s] FROM {t} WHERE k = 1", (None,))


def test_frozen_collection_operations_refused(session, table):
    t = table("k int PRIMARY KEY, f frozen<list<int>>, fm frozen<map<int, int>>")
    session.execute(f"INSERT INTO {t} (k, f, fm) VALUES (1, [1, 2], {{1: 1}})")
    refused(session, f"UPDATE {t} SET f[0] = 5 WHERE k = 1",
            "Invalid operation (f[0] = 5) for frozen collection column f")
    refused(session, f"UPDATE {t} SET f = f + [3] WHERE k = 1",
            "Invalid operation (f = f + [3]) for frozen collection column f")
    refused(session, f"DELETE fm[1] FROM {t} WHERE k = 1",
            "Invalid deletion operation for frozen collection column fm")


def test_frozen_collection_equality_in_where(session, table):
    t = table("k int, c frozen<list<int>>, f frozen<set<text>>, PRIMARY KEY (k, c)")
    session.execute(f"INSERT INTO {t} (k, c, f) VALUES (1, [1, 2], {{'a', 'b'}})")
    session.execute(f"INSERT INTO {t} (k, c, f) VALUES (1, [1, 3], {{'a'}})")
    assert len(rows(session, f"SELECT * FROM {t} WHERE k = 1 AND c = [1, 2]")) == 1
    assert len(rows(session, f"SELECT * FROM {t} WHERE k = 1 AND c > [1, 2]")) == 1
    r = rows(session, f"SELECT c FROM {t} WHERE f = {{'b', 'a'}} ALLOW FILTERING")
    assert [x.c for x in r] == [[1, 2]]
    r = rows(session, f"SELECT c FROM {t} WHERE f CONTAINS 'a' ALLOW FILTERING")
    assert len(r) == 2


def test_contains_on_non_collection_refused(session, table):
    t = table("k int PRIMARY KEY, v int")
    refused(session, f"SELECT * FROM {t} WHERE v CONTAINS 1 ALLOW FILTERING",
            "Cannot use CONTAINS on non-collection column v")


def test_writetime_and_ttl_of_non_frozen_collections_refused(session, table):
    t = table("k int PRIMARY KEY, l list<int>, f frozen<list<int>>")
    session.execute(f"INSERT INTO {t} (k, l, f) VALUES (1, [1], [1]) USING TTL 1000 AND TIMESTAMP 42")
    refused(session, f"SELECT writetime(l) FROM {t}",
            "Cannot use selection function writeTime on non-frozen collection l")
    refused(session, f"SELECT ttl(l) FROM {t}",
            "Cannot use selection function ttl on non-frozen collection l")
    r = one(session, f"SELECT writetime(f), ttl(f) FROM {t} WHERE k = 1")
    assert r[0] == 42 and 990 <= r[1] <= 1000
    refused(session, f"SELECT writetime(k) FROM {t}",
            "Cannot use selection function writeTime on PRIMARY KEY part k")


def test_collection_wrong_literal_kind_refused(session, table):
    t = table("k int PRIMARY KEY, l list<int>, s set<int>")
    refused(session, f"UPDATE {t} SET l = l + {{1}} WHERE k = 1", "Invalid set literal for l of type list<int>")
    refused(session, f"INSERT INTO {t} (k, s) VALUES (1, [1])", "Invalid list literal for s of type set<int>")


# ---------------------------------------------------------------------------------------
# user types and tuples

@pytest.fixture(scope="module")
def addr(session, ks):
    session.execute(f"CREATE TYPE IF NOT EXISTS {ks}.conf_addr (street text, zip int)")
    return f"{ks}.conf_addr"


def test_udt_field_selection_and_missing_fields(session, table, addr):
    t = table(f"k int PRIMARY KEY, a frozen<{addr}>, b {addr}")
    session.execute(f"INSERT INTO {t} (k, a, b) VALUES (1, {{street: 'main'}}, {{zip: 7}})")
    r = one(session, f"SELECT a.street, a.zip, b.zip, b.street FROM {t} WHERE k = 1")
    assert tuple(r) == ("main", None, 7, None)
    assert r._fields[0] == "a_street"


def test_udt_unknown_field_refused(session, table, addr):
    t = table(f"k int PRIMARY KEY, a frozen<{addr}>")
    refused(session, f"INSERT INTO {t} (k, a) VALUES (1, {{nope: 1}})",
            "Unknown field 'nope' in value of user defined type conf_addr")
    refused(session, f"SELECT a.nope FROM {t}", "nope")


def test_non_frozen_udt_field_update(session, table, addr):
    t = table(f"k int PRIMARY KEY, a {addr}, f frozen<{addr}>")
    session.execute(f"INSERT INTO {t} (k, a) VALUES (1, {{street: 's', zip: 1}})")
    session.execute(f"UPDATE {t} SET a.zip = 2 WHERE k = 1")
    session.execute(f"DELETE a.street FROM {t} WHERE k = 1")
    r = one(session, f"SELECT a FROM {t} WHERE k = 1")
    assert (r.a.street, r.a.zip) == (None, 2)
    refused(session, f"UPDATE {t} SET f.zip = 2 WHERE k = 1", "frozen UDT column f")


def test_udt_field_selection_on_non_udt_refused(session, table):
    t = table("k int PRIMARY KEY, v int")
    refused(session, f"SELECT v.x FROM {t}", "Invalid field selection: v of type int is not a user type")


def test_drop_type_in_use_refused(session, ks, table):
    session.execute(f"CREATE TYPE {ks}.conf_used (x int)")
    t = table(f"k int PRIMARY KEY, u frozen<{ks}.conf_used>")
    refused(session, f"DROP TYPE {ks}.conf_used",
            f"Cannot drop user type '{ks}.conf_used' as it is still used by table")
    session.execute(f"DROP TABLE {t}")
    session.execute(f"DROP TYPE {ks}.conf_used")


def test_alter_type_add_field_reads_null(session, ks, table):
    session.execute(f"CREATE TYPE {ks}.conf_grow (a int)")
    t = table(f"k int PRIMARY KEY, u frozen<{ks}.conf_grow>")
    session.execute(f"INSERT INTO {t} (k, u) VALUES (1, {{a: 1}})")
    session.execute(f"ALTER TYPE {ks}.conf_grow ADD b text")
    session.execute(f"INSERT INTO {t} (k, u) VALUES (2, {{a: 2, b: 'x'}})")
    assert tuple(one(session, f"SELECT u.a, u.b FROM {t} WHERE k = 1")) == (1, None)
    assert tuple(one(session, f"SELECT u.a, u.b FROM {t} WHERE k = 2")) == (2, "x")


def test_udt_equality_filter(session, table, addr):
    t = table(f"k int PRIMARY KEY, a frozen<{addr}>")
    session.execute(f"INSERT INTO {t} (k, a) VALUES (1, {{street: 's', zip: 1}})")
    session.execute(f"INSERT INTO {t} (k, a) VALUES (2, {{street: 's', zip: 2}})")
    r = rows(session, f"SELECT k FROM {t} WHERE a = {{street: 's', zip: 2}} ALLOW FILTERING")
    assert [x.k for x in r] == [2]


def test_tuple_literals(session, table):
    t = table("k int PRIMARY KEY, t tuple<int, text, boolean>")
    session.execute(f"INSERT INTO {t} (k, t) VALUES (1, (1, 'a'))")
    assert one(session, f"SELECT t FROM {t} WHERE k = 1").t == (1, "a", None)
    refused(session, f"INSERT INTO {t} (k, t) VALUES (2, (1, 'a', true, 4))",
            "Invalid tuple literal for t: too many elements. Type frozen<tuple<int, text, boolean>> expects 3 but got 4")
    refused(session, f"INSERT INTO {t} (k, t) VALUES (2, ('a', 'a', true))",
            "Invalid tuple literal for t: component 0 is not of type int")


def test_multi_column_relations(session, table):
    t = table("k int, a int, b int, v int, PRIMARY KEY (k, a, b)")
    for a in range(3):
        for b in range(3):
            session.execute(f"INSERT INTO {t} (k, a, b, v) VALUES (0, {a}, {b}, {a * 3 + b})")
    r = rows(session, f"SELECT v FROM {t} WHERE k = 0 AND (a, b) > (1, 1)")
    assert [x.v for x in r] == [5, 6, 7, 8]
    r = rows(session, f"SELECT v FROM {t} WHERE k = 0 AND (a, b) >= (0, 2) AND (a, b) < (1, 2)")
    assert [x.v for x in r] == [2, 3, 4]
    r = rows(session, f"SELECT v FROM {t} WHERE k = 0 AND (a, b) IN ((2, 0), (0, 1))")
    assert [x.v for x in r] == [1, 6]
    r = rows(session, f"SELECT v FROM {t} WHERE k = 0 AND (a) > (1)")
    assert [x.v for x in r] == [6, 7, 8]
    refused(session, f"SELECT v FROM {t} WHERE k = 0 AND (b, a) > (1, 1)",
            "Clustering columns must appear in the PRIMARY KEY order in multi-column relations")


def test_multi_column_slice_on_mixed_order_table(session, table):
    t = table("k int, a int, b int, PRIMARY KEY (k, a, b)", "CLUSTERING ORDER BY (a ASC, b DESC)")
    for a in range(2):
        for b in range(3):
            session.execute(f"INSERT INTO {t} (k, a, b) VALUES (0, {a}, {b})")
    r = rows(session, f"SELECT a, b FROM {t} WHERE k = 0 AND (a, b) > (0, 1)")
    assert [tuple(x) for x in r] == [(0, 2), (1, 2), (1, 1), (1, 0)]
    r = rows(session, f"SELECT a, b FROM {t} WHERE k = 0 AND (a, b) > (0, 1) ORDER BY a DESC, b ASC")
    assert [tuple(x) for x in r] == [(1, 0), (1, 1), (1, 2), (0, 2)]


MIXED_SLICES = [
    "(a, b, c) > (1, 1, 1)", "(a, b, c) >= (1, 1, 1)", "(a, b, c) < (1, 1, 1)",
    "(a, b, c) <= (1, 1, 1)", "(a, b) > (1, 1)", "(a, b) <= (1, 0)", "(a) > (0)",
    "(a, b, c) > (0, 2, 1) AND (a, b, c) < (2, 0, 1)",
    "(a, b, c) >= (0, 1, 0) AND (a, b) <= (1, 1)",
    "(a, b) > (0, 1) AND (a, b, c) <= (2, 1, 0)",
    "(a, b, c) > (1, 1, 0) AND (a, b, c) < (1, 1, 2)",
    "(a, b, c) > (1, 1, 1) AND (a, b, c) < (1, 1, 1)",
    "(a, b, c) > (2, 0, 0) AND (a, b, c) < (0, 2, 2)",
    "(a, b, c) >= (1, 2, 2) AND (a, b) < (2, 0)",
]


def _tuple_slice_holds(where, row):
    """Evaluates a WHERE of MIXED_SLICES on (a, b, c) as CQL does: tuple order."""
    ok = True
    for rel in where.split(" AND "):
        lhs, rest = rel.split(") ", 1)
        op, rhs = rest.split(" ", 1)
        n = lhs.count(",") + 1
        bound = tuple(int(v) for v in rhs.strip("()").split(","))
        x = row[:n]
        ok &= {">": x > bound, ">=": x >= bound, "<": x < bound, "<=": x <= bound}[op]
    return ok


@pytest.mark.parametrize("desc", ["a ASC, b DESC, c ASC", "a DESC, b ASC, c DESC", "a ASC, b ASC, c DESC"])
def test_multi_column_slices_mixed_order_match_tuple_order(session, table, desc):
    t = table("k int, a int, b int, c int, PRIMARY KEY (k, a, b, c)", f"CLUSTERING ORDER BY ({desc})")
    all_rows = [(a, b, c) for a in range(3) for b in range(3) for c in range(3)]
    for a, b, c in all_rows:
        session.execute(f"INSERT INTO {t} (k, a, b, c) VALUES (0, {a}, {b}, {c})")
    order = [(-1 if "DESC" in d else 1) for d in desc.split(", ")]
    clustering_order = sorted(all_rows, key=lambda r: tuple(o * v for o, v in zip(order, r)))
    reverse_by = ", ".join(f"{col} {'ASC' if o < 0 else 'DESC'}" for col, o in zip("abc", order))
    for where in MIXED_SLICES:
        expected = [r for r in clustering_order if _tuple_slice_holds(where, r)]
        q = f"SELECT a, b, c FROM {t} WHERE k = 0 AND {where}"
        got = [tuple(x) for x in rows(session, q)]
        assert got == expected, q
        # Paged, and in reverse order (paged too).
        assert [tuple(x) for x in rows(session, q, fetch_size=2)] == expected, q
        qr = f"{q} ORDER BY {reverse_by}"
        assert [tuple(x) for x in rows(session, qr)] == expected[::-1], qr
        assert [tuple(x) for x in rows(session, qr, fetch_size=3)] == expected[::-1], qr
    # Prepared, with the bounds bound.
    ps = session.prepare(f"SELECT a, b, c FROM {t} WHERE k = 0 AND (a, b) > (?, ?) AND (a, b, c) <= ?")
    got = [tuple(x) for x in session.execute(ps, (0, 1, (2, 1, 0)))]
    assert got == [r for r in clustering_order if (0, 1) < r[:2] and r <= (2, 1, 0)]


# ---------------------------------------------------------------------------------------
# counters

def test_counter_refusals(session, table):
    t = table("k int PRIMARY KEY, c counter")
    refused(session, f"INSERT INTO {t} (k, c) VALUES (1, 1)",
            "INSERT statements are not allowed on counter tables, use UPDATE instead")
    refused(session, f"UPDATE {t} SET c = 5 WHERE k = 1",
            "Cannot set the value of counter column c (counters can only be incremented/decremented, not set)")
    refused(session, f"UPDATE {t} USING TTL 10 SET c = c + 1 WHERE k = 1",
            "Cannot provide custom TTL for counter updates")
    refused(session, f"UPDATE {t} SET c = c + 1 WHERE k = 1 IF c = 0",
            "Conditional updates are not supported on counter tables")
    refused(session, f"UPDATE {t} SET c = c + 1 WHERE k = 1 IF EXISTS",
            "Conditional updates are not supported on counter tables")


def test_counter_non_counter_operation_refused(session, table):
    t = table("k int PRIMARY KEY, v int")
    refused(session, f"UPDATE {t} SET v = v + 1 WHERE k = 1",
            "Invalid operation (v = v + 1) for non counter column v")


def test_counter_table_definitions_refused(session, ks):
    refused(session, f"CREATE TABLE {ks}.cnt_mix (k int PRIMARY KEY, c counter, v int)",
            "Cannot mix counter and non counter columns in the same table")
    refused(session, f"CREATE TABLE {ks}.cnt_pk (k counter PRIMARY KEY, v int)",
            "counter type is not supported for PRIMARY KEY column 'k'")
    refused(session, f"CREATE TABLE {ks}.cnt_ttl (k int PRIMARY KEY, c counter) WITH default_time_to_live = 5",
            "Cannot set default_time_to_live on a table with counters")


def test_counter_arithmetic_and_delete(session, table):
    t = table("k int PRIMARY KEY, c counter, d counter")
    session.execute(f"UPDATE {t} SET c = c + 5, d = d - 2 WHERE k = 1")
    session.execute(f"UPDATE {t} SET c = c - 7, d = d + -3 WHERE k = 1")
    r = one(session, f"SELECT c, d FROM {t} WHERE k = 1")
    assert (r.c, r.d) == (-2, -5)
    assert one(session, f"SELECT sum(c) AS s FROM {t}").s == -2
    session.execute(f"DELETE c FROM {t} WHERE k = 1")
    r = one(session, f"SELECT c, d FROM {t} WHERE k = 1")
    assert (r.c, r.d) == (None, -5)


def test_counter_batches(session, table):
    c = table("k int PRIMARY KEY, c counter")
    t = table("k int PRIMARY KEY, v int")
    refused(session, f"BEGIN BATCH UPDATE {c} SET c = c + 1 WHERE k = 1; APPLY BATCH",
            "Cannot include a counter statement in a logged batch")
    refused(session, f"BEGIN COUNTER BATCH UPDATE {c} SET c = c + 1 WHERE k = 1; "
                     f"INSERT INTO {t} (k, v) VALUES (1, 1); APPLY BATCH",
            "Cannot include non-counter statement in a counter batch")
    refused(session, f"BEGIN UNLOGGED BATCH UPDATE {c} SET c = c + 1 WHERE k = 1; "
                     f"INSERT INTO {t} (k, v) VALUES (1, 1); APPLY BATCH",
            "Counter and non-counter mutations cannot exist in the same batch")
    session.execute(f"BEGIN UNLOGGED BATCH UPDATE {c} SET c = c + 1 WHERE k = 1; "
                    f"UPDATE {c} SET c = c + 2 WHERE k = 1; APPLY BATCH")
    session.execute(f"BEGIN COUNTER BATCH UPDATE {c} SET c = c + 1 WHERE k = 1; APPLY BATCH")
    assert one(session, f"SELECT c FROM {c} WHERE k = 1").c == 4


# ---------------------------------------------------------------------------------------
# JSON

def test_select_json_of_every_type(session, ks, table):
    session.execute(f"CREATE TYPE IF NOT EXISTS {ks}.conf_json_udt (a int, \"B\" text)")
    t = table("k int PRIMARY KEY, a ascii, bi bigint, bl blob, bo boolean, da date, de decimal, "
              "do double, du duration, fl float, ine inet, i int, si smallint, te text, ti time, "
              "ts timestamp, tu timeuuid, ty tinyint, u uuid, vc varchar, vi varint, "
              f"l list<text>, s set<int>, m map<int, text>, mt map<text, int>, tup tuple<int, text>, "
              f"ud frozen<{ks}.conf_json_udt>")
    session.execute(
        f"INSERT INTO {t} (k, a, bi, bl, bo, da, de, do, du, fl, ine, i, si, te, ti, ts, tu, ty, u, vc, vi, "
        "l, s, m, mt, tup, ud) VALUES (1, 'asc', 9223372036854775807, 0xcafe, true, '2011-02-03', 1.5, "
        "2.5, 1h2m, 1.25, '127.0.0.1', -7, 3, 'te\"xt', '04:05:06.123', '2011-02-03 04:05:00+0000', "
        "d2177dd0-eaa2-11de-a572-001b779c76e3, 8, 550e8400-e29b-41d4-a716-446655440000, 'vc', "
        "123456789012345678901234567890, ['x', 'y'], {2, 1}, {1: 'one'}, {'k': 2}, (1, 'a'), "
        "{a: 1, \"B\": 'b'})")
    raw = one(session, f"SELECT JSON * FROM {t} WHERE k = 1")[0]
    expected = {
        '"a"': '"asc"', '"bi"': "9223372036854775807", '"bl"': '"0xcafe"', '"bo"': "true",
        '"da"': '"2011-02-03"', '"de"': "1.5", '"do"': "2.5", '"du"': '"1h2m"', '"fl"': "1.25",
        '"ine"': '"127.0.0.1"', '"i"': "-7", '"si"': "3", '"te"': '"te\\"xt"',
        '"ti"': '"04:05:06.123000000"', '"ts"': '"2011-02-03 04:05:00.000Z"',
        '"tu"': '"d2177dd0-eaa2-11de-a572-001b779c76e3"', '"ty"': "8",
        '"u"': '"550e8400-e29b-41d4-a716-446655440000"', '"vc"': '"vc"',
        '"vi"': "123456789012345678901234567890", '"l"': '["x", "y"]', '"s"': "[1, 2]",
        '"m"': '{"1": "one"}', '"mt"': '{"k": 2}', '"tup"': '[1, "a"]', '"ud"': '{"a": 1, "\\"B\\"": "b"}',
    }
    for key, val in expected.items():
        assert f"{key}: {val}" in raw, f"{key}: {val} not in {raw}"
    # Round trip through INSERT JSON.
    doc = raw.replace("'", "''").replace('"k": 1', '"k": 2')
    session.execute(f"INSERT INTO {t} JSON '{doc}'")
    assert one(session, f"SELECT JSON * FROM {t} WHERE k = 2")[0] == raw.replace('"k": 1', '"k": 2')


def test_select_json_keys_aliases_and_case(session, table):
    t = table('k int PRIMARY KEY, "MixedCase" int, v int')
    session.execute(f'INSERT INTO {t} (k, "MixedCase", v) VALUES (1, 2, null)')
    assert one(session, f"SELECT JSON * FROM {t}")[0] == '{"k": 1, "\\"MixedCase\\"": 2, "v": null}'
    assert one(session, f"SELECT JSON k AS key, v FROM {t}")[0] == '{"key": 1, "v": null}'
    assert one(session, f"SELECT JSON count(*) FROM {t}")[0] == '{"count": 1}'
    assert one(session, f"SELECT JSON writetime(v), ttl(\"MixedCase\") FROM {t}")[0] == \
        '{"\\"writetime(v)\\"": null, "\\"ttl(MixedCase)\\"": null}'


def test_to_json_and_from_json(session, table):
    t = table("k int PRIMARY KEY, m map<int, text>, ts timestamp")
    session.execute(f"INSERT INTO {t} (k, m) VALUES (1, fromJson('{{\"3\": \"c\"}}'))")
    session.execute(f"UPDATE {t} SET ts = fromJson('\"2020-01-02 03:04:05.678Z\"') WHERE k = 1")
    r = one(session, f"SELECT toJson(m), toJson(ts) FROM {t} WHERE k = 1")
    assert tuple(r) == ('{"3": "c"}', '"2020-01-02 03:04:05.678Z"')
    assert r._fields[0] == "system_tojson_m"


def test_insert_json_refusals(session, table):
    t = table("k int PRIMARY KEY, v int")
    refused(session, f"INSERT INTO {t} JSON '{{\"k\": 1, \"zz\": 2}}'",
            "JSON values map contains unrecognized column: zz")
    refused(session, f"INSERT INTO {t} JSON '{{\"k\": 1, \"v\": \"x\"}}'", "Error decoding JSON value for v")
    refused(session, f"INSERT INTO {t} JSON '[1]'", "Could not decode JSON string as a map")


# ---------------------------------------------------------------------------------------
# paging

def test_paging_over_partition_with_static_and_deletes(session, table):
    t = table("k int, c int, s int static, v int, PRIMARY KEY (k, c)")
    for c in range(20):
        session.execute(f"INSERT INTO {t} (k, c, s, v) VALUES (1, {c}, 7, {c})")
    for c in range(0, 20, 3):
        session.execute(f"DELETE FROM {t} WHERE k = 1 AND c = {c}")
    session.execute(f"DELETE FROM {t} WHERE k = 1 AND c > 14 AND c < 18")
    expect = [c for c in range(20) if c % 3 and not 14 < c < 18]
    for fs in (1, 2, 5, 100):
        r = rows(session, f"SELECT c, s, v FROM {t} WHERE k = 1", fetch_size=fs)
        assert [x.c for x in r] == expect, fs
        assert all(x.s == 7 for x in r)
        r = rows(session, f"SELECT c, s FROM {t} WHERE k = 1 ORDER BY c DESC", fetch_size=fs)
        assert [x.c for x in r] == expect[::-1], fs


def test_paging_static_only_partitions(session, table):
    t = table("k int, c int, s int static, v int, PRIMARY KEY (k, c)")
    for k in range(6):
        session.execute(f"INSERT INTO {t} (k, s) VALUES ({k}, {k})")
        if k % 2:
            session.execute(f"INSERT INTO {t} (k, c, v) VALUES ({k}, 1, 1)")
            session.execute(f"INSERT INTO {t} (k, c, v) VALUES ({k}, 2, 2)")
    for fs in (1, 2, 3, 100):
        r = rows(session, f"SELECT k, c, s FROM {t}", fetch_size=fs)
        got = sorted((x.k, x.c, x.s) for x in r)
        want = sorted([(k, None, k) for k in range(0, 6, 2)] +
                      [(k, c, k) for k in range(1, 6, 2) for c in (1, 2)])
        assert got == want, fs
        r = rows(session, f"SELECT DISTINCT k, s FROM {t}", fetch_size=fs)
        assert sorted((x.k, x.s) for x in r) == [(k, k) for k in range(6)]
    # A static-only partition answers one row when selected alone, none when sliced.
    assert [tuple(x) for x in rows(session, f"SELECT k, c, s, v FROM {t} WHERE k = 0")] == [(0, None, 0, None)]
    assert rows(session, f"SELECT k, c, s FROM {t} WHERE k = 0 AND c > 0") == []
    assert rows(session, f"SELECT * FROM {t} WHERE k = 0 AND c = 1") == []


def test_in_with_order_by_and_paging(session, table):
    t = table("k int, c int, v int, PRIMARY KEY (k, c)")
    for k in range(3):
        for c in range(3):
            session.execute(f"INSERT INTO {t} (k, c, v) VALUES ({k}, {c}, {k * 10 + c})")
    q = f"SELECT k, c FROM {t} WHERE k IN (2, 0) ORDER BY c DESC"
    with pytest.raises(InvalidRequest) as e:
        session.execute(SimpleStatement(q, fetch_size=2))
    assert "Cannot page queries with both ORDER BY and a IN restriction on the partition key" in str(e.value)
    r = rows(session, q)
    assert [x.c for x in r] == [2, 2, 1, 1, 0, 0]
    r = rows(session, f"SELECT k, c FROM {t} WHERE k IN (2, 0) ORDER BY c DESC LIMIT 3")
    assert [x.c for x in r] == [2, 2, 1]
    # IN on the clustering column with ORDER BY pages fine (one partition).
    r = rows(session, f"SELECT c FROM {t} WHERE k = 1 AND c IN (0, 2, 1) ORDER BY c DESC", fetch_size=1)
    assert [x.c for x in r] == [2, 1, 0]


def test_limit_and_per_partition_limit_with_paging(session, table):
    t = table("k int, c int, PRIMARY KEY (k, c)")
    for k in range(4):
        for c in range(5):
            session.execute(f"INSERT INTO {t} (k, c) VALUES ({k}, {c})")
    for fs in (1, 3, 100):
        r = rows(session, f"SELECT k, c FROM {t} PER PARTITION LIMIT 2", fetch_size=fs)
        assert len(r) == 8 and all(x.c < 2 for x in r), fs
        r = rows(session, f"SELECT k, c FROM {t} PER PARTITION LIMIT 2 LIMIT 5", fetch_size=fs)
        assert len(r) == 5, fs
        r = rows(session, f"SELECT k, c FROM {t} WHERE k IN (1, 3) PER PARTITION LIMIT 3", fetch_size=fs)
        assert [(x.k, x.c) for x in r] == [(1, 0), (1, 1), (1, 2), (3, 0), (3, 1), (3, 2)], fs
    refused(session, f"SELECT * FROM {t} LIMIT 0", "LIMIT must be strictly positive")
    refused(session, f"SELECT * FROM {t} PER PARTITION LIMIT 0", "PER PARTITION LIMIT must be strictly positive")
    refused(session, f"SELECT DISTINCT k FROM {t} PER PARTITION LIMIT 1",
            "PER PARTITION LIMIT is not allowed with SELECT DISTINCT queries")


def test_limit_bound_marker(session, table):
    t = table("k int, c int, PRIMARY KEY (k, c)")
    for c in range(5):
        session.execute(f"INSERT INTO {t} (k, c) VALUES (0, {c})")
    p = session.prepare(f"SELECT c FROM {t} WHERE k = 0 LIMIT ?")
    assert [x.c for x in session.execute(p, [2])] == [0, 1]
    with pytest.raises(InvalidRequest) as e:
        session.execute(p, [-1])
    assert "LIMIT must be strictly positive" in str(e.value)


# ---------------------------------------------------------------------------------------
# restrictions and filtering

@pytest.fixture(scope="module")
def rt(session, ks):
    session.execute(f"CREATE TABLE {ks}.conf_rt (a int, b int, c int, d int, v int, s int static, "
                    "PRIMARY KEY ((a, b), c, d))")
    return f"{ks}.conf_rt"


@pytest.mark.parametrize("where,message", [
    ("a = 1 AND b = 1 AND d = 1",
     'PRIMARY KEY column "d" cannot be restricted as preceding column "c" is not restricted'),
    ("a = 1 AND b = 1 AND c > 1 AND d = 1",
     'Clustering column "d" cannot be restricted (preceding column "c" is restricted by a non-EQ relation)'),
    ("a = 1 AND b = 1 AND v = 1", "Cannot execute this query as it might involve data filtering"),
    ("a = 1", "Cannot execute this query as it might involve data filtering"),
    ("a > 1 AND b = 1", "Cannot execute this query as it might involve data filtering"),
    ("a = 1 AND b = 1 AND c = 1 AND c = 2", "c cannot be restricted by more than one relation if it includes an Equal"),
    ("a = 1 AND b = 1 AND v LIKE 'x%' ALLOW FILTERING",
     "LIKE restriction is only supported on properly indexed columns. v LIKE 'x%' is not valid."),
    ("a = 1 AND b = 1 AND v IS NOT NULL", "Unsupported restriction: v IS NOT NULL"),
    ("a = 1 AND b = 1 AND nope = 1", "Undefined column name nope"),
    ("a = 1 AND b = 1 AND c > 1 AND c > 2", "More than one restriction was found for the start bound on c"),
])
def test_select_restriction_refusals(session, rt, where, message):
    refused(session, f"SELECT * FROM {rt} WHERE {where}", message)


def test_filtering_results(session, rt):
    for a in range(2):
        for c in range(3):
            session.execute(f"INSERT INTO {rt} (a, b, c, d, v, s) VALUES ({a}, 0, {c}, 0, {c % 2}, {a})")
    r = rows(session, f"SELECT a, c FROM {rt} WHERE v = 1 ALLOW FILTERING")
    assert sorted((x.a, x.c) for x in r) == [(0, 1), (1, 1)]
    r = rows(session, f"SELECT a, c FROM {rt} WHERE s = 1 ALLOW FILTERING")
    assert sorted((x.a, x.c) for x in r) == [(1, 0), (1, 1), (1, 2)]
    r = rows(session, f"SELECT a, c FROM {rt} WHERE c >= 1 AND v = 0 ALLOW FILTERING")
    assert sorted((x.a, x.c) for x in r) == [(0, 2), (1, 2)]
    r = rows(session, f"SELECT a, c FROM {rt} WHERE a = 0 AND b = 0 AND v IN (0) ALLOW FILTERING")
    assert [x.c for x in r] == [0, 2]
    r = rows(session, f"SELECT a FROM {rt} WHERE a = 1 ALLOW FILTERING")
    assert len(r) == 3
    assert rows(session, f"SELECT * FROM {rt} WHERE a IN () AND b = 0") == []
    assert rows(session, f"SELECT * FROM {rt} WHERE a = 0 AND b = 0 AND c > 2 AND c < 1") == []


def test_token_restrictions(session, table):
    t = table("k int PRIMARY KEY, v int")
    for k in range(10):
        session.execute(f"INSERT INTO {t} (k, v) VALUES ({k}, {k})")
    all_rows = rows(session, f"SELECT k, token(k) AS tk FROM {t}")
    toks = [x.tk for x in all_rows]
    assert toks == sorted(toks)
    mid = toks[4]
    r = rows(session, f"SELECT k FROM {t} WHERE token(k) > {mid}")
    assert [x.k for x in r] == [x.k for x in all_rows[5:]]
    r = rows(session, f"SELECT k FROM {t} WHERE token(k) > {mid} AND token(k) <= {toks[6]}")
    assert len(r) == 2
    refused(session, f"SELECT k FROM {t} WHERE token(k) = 1 AND k = 1",
            "Columns of the partition key cannot be restricted by both token() and = or IN")


# ---------------------------------------------------------------------------------------
# select features

@pytest.fixture(scope="module")
def ot(session, ks):
    session.execute(f"CREATE TABLE {ks}.conf_ot (k int, c1 int, c2 int, v int, PRIMARY KEY (k, c1, c2))")
    return f"{ks}.conf_ot"


@pytest.mark.parametrize("q,message", [
    ("SELECT * FROM {t} WHERE k = 1 ORDER BY v", "Order by is currently only supported on the clustered columns of the PRIMARY KEY, got v"),
    ("SELECT * FROM {t} ORDER BY c1", "ORDER BY is only supported when the partition key is restricted by an EQ or an IN."),
    ("SELECT * FROM {t} WHERE k = 1 ORDER BY c2", "Order by currently only supports the ordering of columns following their declared order in the PRIMARY KEY"),
    ("SELECT * FROM {t} WHERE k = 1 ORDER BY c1 ASC, c2 DESC", "Unsupported order by relation"),
    ("SELECT * FROM {t} WHERE k = 1 ORDER BY nope", "Undefined column name nope"),
    ("SELECT DISTINCT v FROM {t}", "SELECT DISTINCT queries must only request partition key columns and/or static columns (not v)"),
    ("SELECT * FROM {t} WHERE k = 1 GROUP BY v", "Group by is currently only supported on the columns of the PRIMARY KEY, got v"),
    ("SELECT * FROM {t} WHERE k = 1 GROUP BY c2", "Group by currently only support groups of columns following their declared order in the PRIMARY KEY"),
    ("SELECT nope FROM {t}", "Undefined column name nope"),
    ("SELECT k FROM {t} WHERE k = 1 AND c1 = 1 AND c2 = 1 AND v > 1 AND v < 0", "Cannot execute this query as it might involve data filtering"),
])
def test_select_clause_refusals(session, ot, q, message):
    refused(session, q.format(t=ot), message)


def test_select_distinct_requires_whole_partition_key(session, rt):
    refused(session, f"SELECT DISTINCT a FROM {rt}",
            "SELECT DISTINCT queries must request all the partition key columns (missing b)")
    refused(session, f"SELECT DISTINCT a, b, v FROM {rt}",
            "SELECT DISTINCT queries must only request partition key columns and/or static columns (not v)")


def test_order_by_with_clustering_in_and_slices(session, ot):
    for c1 in range(3):
        for c2 in range(2):
            session.execute(f"INSERT INTO {ot} (k, c1, c2, v) VALUES (5, {c1}, {c2}, {c1 * 2 + c2})")
    r = rows(session, f"SELECT v FROM {ot} WHERE k = 5 AND c1 IN (2, 0) ORDER BY c1 DESC, c2 DESC")
    assert [x.v for x in r] == [5, 4, 1, 0]
    r = rows(session, f"SELECT v FROM {ot} WHERE k = 5 AND c1 = 1 AND c2 IN (1, 0)")
    assert [x.v for x in r] == [2, 3]
    r = rows(session, f"SELECT v FROM {ot} WHERE k = 5 AND c1 > 0 ORDER BY c1 DESC LIMIT 3")
    assert [x.v for x in r] == [5, 4, 3]
    r = rows(session, f"SELECT v FROM {ot} WHERE k = 5 AND c1 IN (0, 1) AND c2 > 0")
    assert [x.v for x in r] == [1, 3]


def test_group_by_and_aggregates(session, table):
    t = table("k int, c int, d int, v int, PRIMARY KEY (k, c, d)")
    for k in range(2):
        for c in range(2):
            for d in range(3):
                session.execute(f"INSERT INTO {t} (k, c, d, v) VALUES ({k}, {c}, {d}, {d})")
    r = rows(session, f"SELECT k, count(*), sum(v), max(d) FROM {t} GROUP BY k")
    assert sorted(tuple(x) for x in r) == [(0, 6, 6, 2), (1, 6, 6, 2)]
    r = rows(session, f"SELECT k, c, count(*) FROM {t} WHERE k = 1 GROUP BY k, c")
    assert [tuple(x) for x in r] == [(1, 0, 3), (1, 1, 3)]
    r = rows(session, f"SELECT c, d FROM {t} WHERE k = 0 GROUP BY k, c")
    assert [tuple(x) for x in r] == [(0, 0), (1, 0)]
    r = rows(session, f"SELECT k, c, count(*) FROM {t} WHERE k = 1 GROUP BY k, c LIMIT 1")
    assert [tuple(x) for x in r] == [(1, 0, 3)]
    r = rows(session, f"SELECT k, c, count(*) FROM {t} GROUP BY k, c PER PARTITION LIMIT 1")
    assert sorted(tuple(x) for x in r) == [(0, 0, 3), (1, 0, 3)]


def test_aggregates_on_empty_and_integer_semantics(session, table):
    t = table("k int PRIMARY KEY, i int, d double, s text")
    r = one(session, f"SELECT count(*), count(i), max(i), min(s), sum(i), avg(d) FROM {t}")
    assert tuple(r) == (0, 0, None, None, 0, 0.0)
    session.execute(f"INSERT INTO {t} (k, i, d, s) VALUES (1, 1, 1.0, 'b')")
    session.execute(f"INSERT INTO {t} (k, i, d, s) VALUES (2, 2, 2.0, 'a')")
    session.execute(f"INSERT INTO {t} (k) VALUES (3)")
    r = one(session, f"SELECT count(*), count(i), avg(i), avg(d), min(s), max(s) FROM {t}")
    assert tuple(r) == (3, 2, 1, 1.5, "a", "b")
    r = one(session, f"SELECT k, max(i) FROM {t} WHERE k = 2")
    assert tuple(r) == (2, 2)
    session.execute(f"INSERT INTO {t} (k, i) VALUES (4, 2147483647)")
    assert one(session, f"SELECT sum(i) FROM {t}")[0] == -2147483646  # int sum overflows like Java


def test_cast_and_conversion_functions(session, table):
    t = table("k int PRIMARY KEY, i int, d double, ts timestamp, b blob")
    session.execute(f"INSERT INTO {t} (k, i, d, ts, b) VALUES (1, 42, 1.5, '2020-01-02 03:04:05+0000', textAsBlob('hi'))")
    r = one(session, f"SELECT CAST(i AS text), CAST(d AS int), CAST(i AS double), blobAsText(b), "
                     f"toDate(ts), toUnixTimestamp(ts), CAST(ts AS date) FROM {t} WHERE k = 1")
    assert r[0] == "42" and r[1] == 1 and r[2] == 42.0 and r[3] == "hi"
    assert str(r[4]) == "2020-01-02" and r[5] == 1577934245000 and str(r[6]) == "2020-01-02"
    assert r._fields[0] == "cast_i_as_text"
    assert one(session, f"SELECT intAsBlob(i) FROM {t} WHERE k = 1")[0] == b"\x00\x00\x00\x2a"


def test_writetime_ttl_selection_names(session, table):
    t = table("k int PRIMARY KEY, v int")
    session.execute(f"INSERT INTO {t} (k, v) VALUES (1, 1) USING TIMESTAMP 1000")
    r = one(session, f"SELECT writetime(v), ttl(v), v AS x FROM {t}")
    assert r._fields == ("writetime_v", "ttl_v", "x")
    assert tuple(r) == (1000, None, 1)


# ---------------------------------------------------------------------------------------
# INSERT / UPDATE / DELETE

@pytest.mark.parametrize("cql,message", [
    ("INSERT INTO {t} (k, c) VALUES (1, 1, 1)", "Unmatched column names/values"),
    ("INSERT INTO {t} (k, c, v, v) VALUES (1, 1, 1, 1)", "Multiple definitions found for column v"),
    ("INSERT INTO {t} (k, v) VALUES (1, 1)", "Some clustering keys are missing: c"),
    ("INSERT INTO {t} (c, v) VALUES (1, 1)", "Some partition key parts are missing: k"),
    ("INSERT INTO {t} (k, c, v) VALUES (null, 1, 1)", "Invalid null value in condition for column k"),
    ("INSERT INTO {t} (k, c, v) VALUES (1, null, 1)", "Invalid null value in condition for column c"),
    ("UPDATE {t} SET k = 2 WHERE k = 1 AND c = 1", "PRIMARY KEY part k found in SET part"),
    ("UPDATE {t} SET v = 1 WHERE k = 1 AND c > 1", "Slice restrictions are not supported on the clustering columns in UPDATE statements"),
    ("UPDATE {t} SET v = 1 WHERE k = 1", "Some clustering keys are missing: c"),
    ("UPDATE {t} SET v = 1 WHERE k = 1 AND c = 1 AND v = 1", "Non PRIMARY KEY columns found in where clause: v"),
    ("DELETE FROM {t} WHERE k > 1", "Only EQ and IN relation are supported on the partition key (unless you use the token() function)"),
    ("DELETE v FROM {t} WHERE k = 1 AND c > 1", "Range deletions are not supported for specific columns"),
    ("DELETE FROM {t} WHERE k = 1 AND v = 1", "Non PRIMARY KEY columns found in where clause: v"),
    ("DELETE FROM {t} WHERE k = 1 AND c > 1 IF v = 1", "DELETE statements must restrict all PRIMARY KEY columns with equality relations in order to use IF conditions"),
    ("UPDATE {t} USING TTL -1 SET v = 1 WHERE k = 1 AND c = 1", "A TTL must be greater or equal to 0, but was -1"),
    ("UPDATE {t} USING TTL 630720001 SET v = 1 WHERE k = 1 AND c = 1", "ttl is too large. requested (630720001) maximum (630720000)"),
    ("INSERT INTO {t} (k, c, v) VALUES (1, 1, 1) IF NOT EXISTS USING TIMESTAMP 5", "Cannot provide custom timestamp for conditional updates"),
    ("DELETE FROM {t} USING TTL 5 WHERE k = 1", "TTL"),
])
def test_modification_refusals(session, table, cql, message):
    t = table("k int, c int, v int, s int static, PRIMARY KEY (k, c)")
    exc = SyntaxException if "USING TTL 5 WHERE" in cql else InvalidRequest
    refused(session, cql.format(t=t), message, exc)


def test_empty_text_partition_key_refused(session, table):
    t = table("k text PRIMARY KEY, v int")
    refused(session, f"INSERT INTO {t} (k, v) VALUES ('', 1)", "Key may not be empty")
    t2 = table("k text, c text, v int, PRIMARY KEY (k, c)")
    session.execute(f"INSERT INTO {t2} (k, c, v) VALUES ('a', '', 1)")  # empty clustering is fine
    assert one(session, f"SELECT c FROM {t2} WHERE k = 'a'").c == ""


def test_static_column_writes(session, table):
    t = table("k int, c int, s int static, v int, PRIMARY KEY (k, c)")
    session.execute(f"UPDATE {t} SET s = 1 WHERE k = 1")
    session.execute(f"INSERT INTO {t} (k, s) VALUES (2, 2)")
    assert [tuple(x) for x in rows(session, f"SELECT k, c, s, v FROM {t} WHERE k = 1")] == [(1, None, 1, None)]
    session.execute(f"INSERT INTO {t} (k, c, v) VALUES (2, 1, 1)")
    session.execute(f"DELETE FROM {t} WHERE k = 2 AND c = 1")
    assert [tuple(x) for x in rows(session, f"SELECT k, c, s, v FROM {t} WHERE k = 2")] == [(2, None, 2, None)]
    refused(session, f"UPDATE {t} SET s = 3 WHERE k = 1 AND c > 1",
            "Slice restrictions are not supported on the clustering columns in UPDATE statements")
    refused(session, f"INSERT INTO {t} (k, v) VALUES (1, 1)", "Some clustering keys are missing: c")
    refused(session, f"CREATE TABLE {t}_x (k int PRIMARY KEY, s int static)",
            "Static columns are only useful (and thus allowed) if the table has at least one clustering column")
    # A conditional update on the static column alone.
    r = one(session, f"UPDATE {t} SET s = 5 WHERE k = 1 IF s = 1")
    assert r[0] is True
    assert one(session, f"SELECT s FROM {t} WHERE k = 1").s == 5


def test_lwt_conditions_on_elements_and_fields(session, table, addr):
    t = table(f"k int PRIMARY KEY, l list<int>, m map<text, int>, u {addr}, v int")
    session.execute(f"INSERT INTO {t} (k, l, m, u, v) VALUES (1, [1, 2], {{'a': 1}}, {{zip: 3}}, 5)")
    assert one(session, f"UPDATE {t} SET v = 6 WHERE k = 1 IF l[1] = 2 AND m['a'] = 1")[0] is True
    assert one(session, f"UPDATE {t} SET v = 7 WHERE k = 1 IF u.zip = 3")[0] is True
    assert one(session, f"UPDATE {t} SET v = 8 WHERE k = 1 IF v IN (1, 7)")[0] is True
    r = one(session, f"UPDATE {t} SET v = 9 WHERE k = 1 IF v > 10")
    assert r[0] is False and r.v == 8
    r = one(session, f"UPDATE {t} SET v = 9 WHERE k = 1 IF m['zz'] = null")
    assert r[0] is True
    r = one(session, f"UPDATE {t} SET v = 1 WHERE k = 2 IF v = 1")
    assert r[0] is False and len(r) == 1


@pytest.mark.parametrize("frozen", [False, True])
def test_lwt_conditions_on_udt_fields(session, table, addr, frozen):
    ty = f"frozen<{addr}>" if frozen else addr
    t = table(f"k int PRIMARY KEY, u {ty}, v int")
    session.execute(f"INSERT INTO {t} (k, u, v) VALUES (1, {{street: 'main', zip: 3}}, 0)")
    assert one(session, f"UPDATE {t} SET v = 1 WHERE k = 1 IF u.zip = 3")[0] is True
    assert one(session, f"UPDATE {t} SET v = 2 WHERE k = 1 IF u.zip > 1 AND u.street = 'main'")[0] is True
    assert one(session, f"UPDATE {t} SET v = 3 WHERE k = 1 IF u.zip IN (1, 3)")[0] is True
    assert one(session, f"UPDATE {t} SET v = 4 WHERE k = 1 IF u.zip != 4")[0] is True
    # A failed condition answers the column's current value (the whole UDT).
    for cond in ["u.zip = 4", "u.zip > 3", "u.zip IN (1, 2)", "u.street = null", "u.zip < 3"]:
        r = one(session, f"UPDATE {t} SET v = 9 WHERE k = 1 IF {cond}")
        assert r[0] is False, cond
        assert r._fields == ("applied", "u"), cond
        assert (r.u.street, r.u.zip) == ("main", 3), cond
    assert one(session, f"SELECT v FROM {t} WHERE k = 1").v == 4
    # Prepared: the marker's receiver is the field, typed as the field.
    ps = session.prepare(f"UPDATE {t} SET v = ? WHERE k = ? IF u.zip = ?")
    assert [c.type.typename for c in ps.column_metadata] == ["int", "int", "int"]
    assert session.execute(ps, (5, 1, 3)).one()[0] is True
    ps_in = session.prepare(f"UPDATE {t} SET v = 6 WHERE k = 1 IF u.zip IN ?")
    assert session.execute(ps_in, ([2, 3],)).one()[0] is True
    # A missing field reads as null; a missing row fails with no columns.
    session.execute(f"INSERT INTO {t} (k, u) VALUES (2, {{street: 'x'}})")
    assert one(session, f"UPDATE {t} SET v = 1 WHERE k = 2 IF u.zip = null")[0] is True
    r = one(session, f"UPDATE {t} SET v = 1 WHERE k = 3 IF u.zip = 3")
    assert r[0] is False and len(r) == 1
    # DELETE with a field condition.
    r = one(session, f"DELETE FROM {t} WHERE k = 1 IF u.zip = 4")
    assert r[0] is False and r.u.zip == 3
    assert one(session, f"DELETE FROM {t} WHERE k = 1 IF u.zip = 3")[0] is True
    assert rows(session, f"SELECT * FROM {t} WHERE k = 1") == []
    refused(session, f"UPDATE {t} SET v = 1 WHERE k = 2 IF u.nope = 1", "Unknown field nope for column u")


def test_insert_if_not_exists_returns_existing_row(session, table):
    t = table("k int, c int, v int, PRIMARY KEY (k, c)")
    assert one(session, f"INSERT INTO {t} (k, c, v) VALUES (1, 1, 1) IF NOT EXISTS USING TTL 100")[0] is True
    r = one(session, f"INSERT INTO {t} (k, c, v) VALUES (1, 1, 2) IF NOT EXISTS")
    assert r[0] is False and (r.k, r.c, r.v) == (1, 1, 1)
    assert r._fields == ("applied", "k", "c", "v")


# ---------------------------------------------------------------------------------------
# batches

def test_batch_refusals(session, table):
    t = table("k int, c int, v int, PRIMARY KEY (k, c)")
    t2 = table("k int PRIMARY KEY, v int")
    refused(session, f"BEGIN BATCH INSERT INTO {t} (k, c, v) VALUES (1, 1, 1) IF NOT EXISTS; "
                     f"INSERT INTO {t} (k, c, v) VALUES (2, 1, 1); APPLY BATCH",
            "Batch with conditions cannot span multiple partitions")
    refused(session, f"BEGIN BATCH INSERT INTO {t} (k, c, v) VALUES (1, 1, 1) IF NOT EXISTS; "
                     f"INSERT INTO {t2} (k, v) VALUES (1, 1); APPLY BATCH",
            "Batch with conditions cannot span multiple tables")
    refused(session, f"BEGIN BATCH USING TIMESTAMP 5 INSERT INTO {t} (k, c, v) VALUES (1, 1, 1) IF NOT EXISTS; APPLY BATCH",
            "Cannot provide custom timestamp for conditional BATCH")
    refused(session, f"BEGIN BATCH USING TIMESTAMP 5 INSERT INTO {t} (k, c, v) VALUES (1, 1, 1) USING TIMESTAMP 6; APPLY BATCH",
            "Timestamp must be set either on BATCH or individual statements")
    refused(session, f"BEGIN BATCH USING TTL 5 INSERT INTO {t} (k, c, v) VALUES (1, 1, 1); APPLY BATCH",
            "Global TTL on the BATCH statement is not supported")
    refused(session, f"BEGIN BATCH SELECT * FROM {t}; APPLY BATCH", "", SyntaxException)


def test_batch_timestamps_and_ttls(session, table):
    t = table("k int, c int, v int, w int, PRIMARY KEY (k, c)")
    session.execute(f"BEGIN UNLOGGED BATCH USING TIMESTAMP 100 "
                    f"INSERT INTO {t} (k, c, v) VALUES (1, 1, 1) USING TTL 1000; "
                    f"UPDATE {t} SET w = 2 WHERE k = 2 AND c = 1; APPLY BATCH")
    r = one(session, f"SELECT writetime(v), ttl(v) FROM {t} WHERE k = 1 AND c = 1")
    assert r[0] == 100 and 990 <= r[1] <= 1000
    assert one(session, f"SELECT writetime(w) FROM {t} WHERE k = 2 AND c = 1")[0] == 100
    session.execute(f"BEGIN BATCH INSERT INTO {t} (k, c, v) VALUES (3, 1, 1) USING TIMESTAMP 7 AND TTL 500; "
                    f"UPDATE {t} USING TTL 600 AND TIMESTAMP 8 SET w = 1 WHERE k = 3 AND c = 1; APPLY BATCH")
    r = one(session, f"SELECT writetime(v), ttl(v), writetime(w), ttl(w) FROM {t} WHERE k = 3 AND c = 1")
    assert r[0] == 7 and 490 <= r[1] <= 500 and r[2] == 8 and 590 <= r[3] <= 600
    # Later statements in a batch win over earlier ones with the same timestamp.
    session.execute(f"BEGIN BATCH INSERT INTO {t} (k, c, v) VALUES (4, 1, 1); "
                    f"INSERT INTO {t} (k, c, v) VALUES (4, 1, 2); APPLY BATCH")
    assert one(session, f"SELECT v FROM {t} WHERE k = 4 AND c = 1").v == 2
    # DELETE then INSERT with the same batch timestamp: the tombstone wins.
    session.execute(f"BEGIN BATCH DELETE FROM {t} WHERE k = 4; INSERT INTO {t} (k, c, v) VALUES (4, 2, 2); APPLY BATCH")
    assert rows(session, f"SELECT * FROM {t} WHERE k = 4") == []


def test_conditional_batch_applies_all_or_nothing(session, table):
    t = table("k int, c int, v int, PRIMARY KEY (k, c)")
    session.execute(f"INSERT INTO {t} (k, c, v) VALUES (1, 1, 1)")
    r = rows(session, f"BEGIN BATCH INSERT INTO {t} (k, c, v) VALUES (1, 2, 2) IF NOT EXISTS; "
                      f"UPDATE {t} SET v = 5 WHERE k = 1 AND c = 1 IF v = 1; APPLY BATCH")
    assert r[0][0] is True
    r = rows(session, f"BEGIN BATCH INSERT INTO {t} (k, c, v) VALUES (1, 3, 3) IF NOT EXISTS; "
                      f"UPDATE {t} SET v = 6 WHERE k = 1 AND c = 1 IF v = 1; APPLY BATCH")
    assert r[0][0] is False
    assert [(x.c, x.v) for x in rows(session, f"SELECT c, v FROM {t} WHERE k = 1")] == [(1, 5), (2, 2)]


def test_driver_batch_with_prepared_and_timestamp(session, table):
    t = table("k int PRIMARY KEY, v int")
    p = session.prepare(f"INSERT INTO {t} (k, v) VALUES (?, ?) USING TTL ?")
    b = BatchStatement(batch_type=BatchType.UNLOGGED)
    b.add(p, (1, 1, 100))
    b.add(p, (2, 2, 0))
    b.add(SimpleStatement(f"UPDATE {t} SET v = 3 WHERE k = 3"))
    session.execute(b)
    r = rows(session, f"SELECT k, v, writetime(v), ttl(v) FROM {t}")
    got = {x.k: (x.v, x[2], x[3]) for x in r}
    # Every statement of a batch is written with the batch's one timestamp.
    ts = got[1][1]
    assert got[2] == (2, ts, None) and got[3] == (3, ts, None)
    assert got[1][0] == 1 and 90 <= got[1][2] <= 100


# ---------------------------------------------------------------------------------------
# TTL and timestamps

def test_ttl_zero_and_unset_mean_no_ttl(session, table):
    t = table("k int PRIMARY KEY, v int", "default_time_to_live = 1000")
    session.execute(f"INSERT INTO {t} (k, v) VALUES (1, 1) USING TTL 0")
    assert one(session, f"SELECT ttl(v) FROM {t} WHERE k = 1")[0] is None
    session.execute(f"INSERT INTO {t} (k, v) VALUES (2, 2)")
    assert 990 <= one(session, f"SELECT ttl(v) FROM {t} WHERE k = 2")[0] <= 1000
    p = session.prepare(f"INSERT INTO {t} (k, v) VALUES (?, ?) USING TTL ?")
    session.execute(p, (3, 3, None))  # null TTL: no TTL at all
    assert one(session, f"SELECT ttl(v) FROM {t} WHERE k = 3")[0] is None


def test_row_with_ttl_disappears_but_update_row_does_not_keep_marker(session, table):
    t = table("k int PRIMARY KEY, a int, b int")
    session.execute(f"INSERT INTO {t} (k, a) VALUES (1, 1) USING TTL 1")
    session.execute(f"UPDATE {t} USING TTL 1 SET b = 1 WHERE k = 2")
    session.execute(f"INSERT INTO {t} (k, a) VALUES (3, 1)")
    session.execute(f"UPDATE {t} USING TTL 1 SET a = 2 WHERE k = 3")
    time.sleep(2.2)
    assert rows(session, f"SELECT * FROM {t} WHERE k = 1") == []
    assert rows(session, f"SELECT * FROM {t} WHERE k = 2") == []
    # The row marker of the INSERT has no TTL: the row stays with a null a.
    assert [tuple(x) for x in rows(session, f"SELECT * FROM {t} WHERE k = 3")] == [(3, None, None)]


def test_using_timestamp_bound_and_negative(session, table):
    t = table("k int PRIMARY KEY, v int")
    p = session.prepare(f"UPDATE {t} USING TIMESTAMP ? SET v = ? WHERE k = ?")
    session.execute(p, (50, 1, 1))
    session.execute(p, (40, 2, 1))
    assert tuple(one(session, f"SELECT v, writetime(v) FROM {t} WHERE k = 1")) == (1, 50)
    session.execute(f"DELETE FROM {t} USING TIMESTAMP 49 WHERE k = 1")
    assert one(session, f"SELECT v FROM {t} WHERE k = 1").v == 1
    session.execute(f"DELETE FROM {t} USING TIMESTAMP 50 WHERE k = 1")
    assert rows(session, f"SELECT v FROM {t} WHERE k = 1") == []


# ---------------------------------------------------------------------------------------
# schema changes

def test_alter_table_refusals(session, table):
    t = table("k int, c int, v int, PRIMARY KEY (k, c)")
    refused(session, f"ALTER TABLE {t} ALTER v TYPE bigint", "Altering column types is no longer supported")
    refused(session, f"ALTER TABLE {t} DROP c", "Cannot drop PRIMARY KEY column c")
    refused(session, f"ALTER TABLE {t} ADD v text", "Column with name 'v' already exists")
    refused(session, f"ALTER TABLE {t} DROP nope", "Column nope was not found in table")
    refused(session, f"ALTER TABLE {t} RENAME v TO w", "Cannot rename non PRIMARY KEY column v")
    refused(session, f"ALTER TABLE {t} ADD n counter", 'Cannot have a counter column ("n") in a non counter table',
            ConfigurationException)
    session.execute(f"ALTER TABLE {t} RENAME c TO cc")
    session.execute(f"INSERT INTO {t} (k, cc, v) VALUES (1, 1, 1)")
    assert one(session, f"SELECT cc FROM {t} WHERE k = 1").cc == 1


def test_drop_column_with_index_refused(session, ks, table):
    t = table("k int PRIMARY KEY, v int")
    session.execute(f"CREATE INDEX conf_v_idx ON {t} (v)")
    refused(session, f"ALTER TABLE {t} DROP v", "Cannot drop column v because it has dependent secondary indexes (conf_v_idx)")
    session.execute(f"DROP INDEX {ks}.conf_v_idx")
    session.execute(f"ALTER TABLE {t} DROP v")


def test_drop_then_add_column_hides_old_data(session, table):
    t = table("k int PRIMARY KEY, v int, w int")
    session.execute(f"INSERT INTO {t} (k, v, w) VALUES (1, 1, 1)")
    session.execute(f"ALTER TABLE {t} DROP v")
    time.sleep(0.01)
    session.execute(f"ALTER TABLE {t} ADD v int")
    assert tuple(one(session, f"SELECT v, w FROM {t} WHERE k = 1")) == (None, 1)


def test_create_table_refusals(session, ks):
    refused(session, f"CREATE TABLE {ks}.conf_nopk (k int, v int)", "No PRIMARY KEY specifed for table")
    refused(session, f"CREATE TABLE {ks}.conf_dur (k int, c duration, PRIMARY KEY (k, c))",
            "duration type is not supported for PRIMARY KEY column 'c'")
    refused(session, f"CREATE TABLE {ks}.conf_coll (k list<int> PRIMARY KEY)",
            "Invalid non-frozen collection type list<int> for PRIMARY KEY column 'k'")
    refused(session, f"CREATE TABLE {ks}.conf_two (k int PRIMARY KEY, v int PRIMARY KEY)",
            "Multiple PRIMARY KEYs specified (exactly one required)", (SyntaxException, InvalidRequest))
    refused(session, f"CREATE TABLE {ks}.conf_dup (k int PRIMARY KEY, k int)", "Duplicate column 'k' declaration for table")
    refused(session, f"DROP TABLE {ks}.conf_missing", f"Table '{ks}.conf_missing' doesn't exist")
    refused(session, "DROP KEYSPACE conf_missing_ks", "Keyspace 'conf_missing_ks' doesn't exist")
    session.execute(f"DROP TABLE IF EXISTS {ks}.conf_missing")


@pytest.mark.parametrize("pk,order", [
    ("(k, a, b)", "b DESC, a ASC"),   # wrong order
    ("(k, a, b)", "b DESC"),          # a missing
    ("(k, a, b)", "a DESC"),          # b missing (a prefix is not enough in Cassandra 4.0)
    ("(k, a)", "a DESC, k ASC"),      # k is not a clustering column
    ("(k, a)", "v DESC"),             # nor is a regular column
])
def test_clustering_order_must_match_clustering_columns(session, ks, pk, order):
    refused(session, f"CREATE TABLE {ks}.conf_order (k int, a int, b int, v int, PRIMARY KEY {pk}) "
                     f"WITH CLUSTERING ORDER BY ({order})",
            "Clustering key columns must exactly match columns in CLUSTERING ORDER BY directive")
    refused(session, f"CREATE TABLE {ks}.conf_order (k int, a int, PRIMARY KEY (k, a)) "
                     "WITH CLUSTERING ORDER BY (a DESC, a ASC)",
            "Duplicate column 'a' in CLUSTERING ORDER BY clause for table")
    session.execute(f"CREATE TABLE {ks}.conf_order (k int, a int, b int, PRIMARY KEY (k, a, b)) "
                    "WITH CLUSTERING ORDER BY (a DESC, b ASC)")
    session.execute(f"DROP TABLE {ks}.conf_order")


def test_reserved_keywords_and_quoting(session, ks):
    refused(session, f"CREATE TABLE {ks}.conf_kw (select int PRIMARY KEY)", "", SyntaxException)
    session.execute(f'CREATE TABLE {ks}.conf_kw ("select" int PRIMARY KEY, key int, ttl int, '
                    'type int, value int, "from" int, count int, "AND" int)')
    session.execute(f'INSERT INTO {ks}.conf_kw ("select", key, ttl, type, value, "from", count, "AND") '
                    'VALUES (1, 2, 3, 4, 5, 6, 7, 8)')
    r = one(session, f'SELECT "select", key, ttl, type, value, "from", count, "AND" FROM {ks}.conf_kw '
                     'WHERE "select" = 1')
    assert tuple(r) == (1, 2, 3, 4, 5, 6, 7, 8)


def test_case_sensitive_identifiers(session, ks):
    session.execute(f'CREATE TABLE {ks}."CaseTab" (k int PRIMARY KEY, "Val" int, val int)')
    session.execute(f'INSERT INTO {ks}."CaseTab" (k, "Val", val) VALUES (1, 2, 3)')
    r = one(session, f'SELECT "Val", val, VAL FROM {ks}."CaseTab" WHERE K = 1')
    assert tuple(r) == (2, 3, 3)
    assert r._fields[:2] == ("Val", "val")
    refused(session, f'SELECT * FROM {ks}.casetab', "casetab")
    refused(session, f'SELECT "VAL" FROM {ks}."CaseTab"', "Undefined column name VAL")
    meta = session.cluster.metadata
    session.cluster.refresh_table_metadata(ks, "CaseTab")
    assert "Val" in meta.keyspaces[ks].tables["CaseTab"].columns


def test_create_keyspace_refusals(session):
    refused(session, "CREATE KEYSPACE conf_bad WITH replication = {'class': 'SimpleStrategy'}",
            "SimpleStrategy requires a replication_factor strategy option", ConfigurationException)
    refused(session, "CREATE KEYSPACE conf_bad2 WITH replication = {'class': 'NoSuchStrategy', 'replication_factor': 1}",
            "Unable to find replication strategy class 'org.apache.cassandra.locator.NoSuchStrategy'",
            ConfigurationException)
    refused(session, 'CREATE KEYSPACE "conf-bad" WITH replication = {\'class\': \'SimpleStrategy\', \'replication_factor\': 1}',
            "")


# ---------------------------------------------------------------------------------------
# types

@pytest.mark.parametrize("typ,lit", [
    ("int", "2147483648"),
    ("tinyint", "128"),
    ("smallint", "40000"),
    ("bigint", "9223372036854775808"),
    ("int", "'1'"),
    ("text", "1"),
    ("uuid", "'abc'"),
    ("inet", "'1.2.3.400'"),
    ("date", "'2020-13-01'"),
    ("timestamp", "'not a time'"),
    ("boolean", "1"),
    ("blob", "'abc'"),
    ("timeuuid", "550e8400-e29b-41d4-a716-446655440000"),
])
def test_invalid_literals_refused(session, table, typ, lit):
    t = table(f"k int PRIMARY KEY, v {typ}")
    with pytest.raises(InvalidRequest):
        session.execute(f"INSERT INTO {t} (k, v) VALUES (1, {lit})")


def test_numeric_literal_edges(session, table):
    t = table("k int PRIMARY KEY, b bigint, d double, f float, de decimal, vi varint, ti tinyint")
    session.execute(f"INSERT INTO {t} (k, b, d, f, de, vi, ti) VALUES "
                    "(1, -9223372036854775808, 1e308, 3.5, -0.000001, -99999999999999999999, -128)")
    r = one(session, f"SELECT b, d, f, de, vi, ti FROM {t} WHERE k = 1")
    assert r.b == -9223372036854775808 and r.d == 1e308 and r.f == 3.5
    assert r.de == decimal.Decimal("-0.000001") and r.vi == -99999999999999999999 and r.ti == -128
    session.execute(f"INSERT INTO {t} (k, d, f) VALUES (2, NaN, -Infinity)")
    r = one(session, f"SELECT d, f FROM {t} WHERE k = 2")
    assert r.d != r.d and r.f == float("-inf")
    # An integer literal fits a double/float/decimal column.
    session.execute(f"INSERT INTO {t} (k, d, de) VALUES (3, 5, 7)")
    assert tuple(one(session, f"SELECT d, de FROM {t} WHERE k = 3")) == (5.0, decimal.Decimal(7))


def test_time_functions(session, table):
    t = table("k int PRIMARY KEY, tu timeuuid, ts timestamp, d date")
    session.execute(f"INSERT INTO {t} (k, tu, ts, d) VALUES (1, now(), currentTimestamp(), currentDate())")
    r = one(session, f"SELECT tu, ts, d, toTimestamp(tu), dateOf(tu), unixTimestampOf(tu) FROM {t} WHERE k = 1")
    now = datetime.datetime.utcnow()
    assert abs((r.ts - now).total_seconds()) < 60
    assert r.d == now.date() or abs((now.date() - r.d.date()).days) <= 1
    assert abs((r[3] - r.ts).total_seconds()) < 5
    r2 = rows(session, f"SELECT k FROM {t} WHERE k = 1 AND tu > maxTimeuuid('2000-01-01') AND tu < minTimeuuid('2100-01-01') ALLOW FILTERING")
    assert len(r2) == 1


def test_duration_literals(session, table):
    t = table("k int PRIMARY KEY, d duration")
    session.execute(f"INSERT INTO {t} (k, d) VALUES (1, 1y2mo3w4d5h6m7s8ms9us10ns)")
    session.execute(f"INSERT INTO {t} (k, d) VALUES (2, P1Y2M3DT4H5M6S)")
    session.execute(f"INSERT INTO {t} (k, d) VALUES (3, -2d)")
    r = {x.k: x.d for x in rows(session, f"SELECT k, d FROM {t}")}
    assert (r[1].months, r[1].days) == (14, 25)
    assert r[1].nanoseconds == ((5 * 60 + 6) * 60 + 7) * 10**9 + 8 * 10**6 + 9 * 10**3 + 10
    assert (r[2].months, r[2].days, r[2].nanoseconds) == (14, 3, (4 * 3600 + 5 * 60 + 6) * 10**9)
    assert (r[3].months, r[3].days, r[3].nanoseconds) == (0, -2, 0)
    refused(session, f"SELECT * FROM {t} WHERE d > 1h ALLOW FILTERING",
            "Slice restrictions are not supported on duration columns")


def test_blob_and_uuid_functions(session, table):
    t = table("k uuid PRIMARY KEY, v blob")
    session.execute(f"INSERT INTO {t} (k, v) VALUES (uuid(), bigintAsBlob(3))")
    r = one(session, f"SELECT k, v, blobAsBigint(v) FROM {t}")
    assert isinstance(r.k, uuid.UUID) and r.k.version == 4
    assert r.v == b"\x00" * 7 + b"\x03" and r[2] == 3
    refused(session, f"SELECT blobAsInt(v) FROM {t}", "")
