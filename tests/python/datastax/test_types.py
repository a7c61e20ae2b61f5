"""Every native CQL type round-trips through CQL literals and through bound values."""

import datetime
import ipaddress
import math
import uuid
from decimal import Decimal

import pytest
from cassandra.encoder import Encoder
from cassandra.util import Date, Duration, Time

TU = uuid.UUID("e7b4a2c0-4f2b-11ee-8c99-0242ac120002")  # a version-1 (time) UUID
U4 = uuid.UUID("123e4567-e89b-42d3-a456-556642440000")
HUGE = 2 ** 200 + 12345
TS = datetime.datetime(2024, 2, 29, 13, 14, 15, 678000)

# (column type, CQL literal, Python value to bind, value the driver returns)
CASES = [
    ("ascii", "'plain ascii'", "plain ascii", "plain ascii"),
    ("text", "'héllo wörld ✓ 日本'", "héllo wörld ✓ 日本", "héllo wörld ✓ 日本"),
    ("varchar", "'it''s quoted'", "it's quoted", "it's quoted"),
    ("boolean", "true", True, True),
    ("tinyint", "-128", -128, -128),
    ("smallint", "-32768", -32768, -32768),
    ("int", "-2147483648", -2147483648, -2147483648),
    ("bigint", "9223372036854775807", 9223372036854775807, 9223372036854775807),
    ("varint", str(HUGE), HUGE, HUGE),
    ("float", "1.5", 1.5, 1.5),
    ("double", "3.141592653589793", 3.141592653589793, 3.141592653589793),
    ("decimal", "-12345678901234567890.123456789", Decimal("-12345678901234567890.123456789"),
     Decimal("-12345678901234567890.123456789")),
    ("uuid", str(U4), U4, U4),
    ("timeuuid", str(TU), TU, TU),
    ("timestamp", "'2024-02-29 13:14:15.678+0000'", TS, TS),
    ("date", "'2024-02-29'", datetime.date(2024, 2, 29), Date(datetime.date(2024, 2, 29))),
    ("time", "'13:14:15.123456789'", Time("13:14:15.123456789"), Time("13:14:15.123456789")),
    ("duration", "1y2mo3w4d5h6m7s8ms9us10ns", Duration(14, 25, 18367008009010),
     Duration(14, 25, 18367008009010)),
    ("blob", "0xcafebabe00ff", b"\xca\xfe\xba\xbe\x00\xff", b"\xca\xfe\xba\xbe\x00\xff"),
    ("inet", "'192.168.10.1'", "192.168.10.1", "192.168.10.1"),
    ("inet", "'2001:db8::8a2e:370:7334'", "2001:db8::8a2e:370:7334", "2001:db8::8a2e:370:7334"),
]
IDS = [f"{i:02}-{c[0]}" for i, c in enumerate(CASES)]


@pytest.fixture(scope="module")
def typed(session, ks):
    cols = ", ".join(f"c{i} {c[0]}" for i, c in enumerate(CASES))
    session.execute(f"CREATE TABLE {ks}.typed (k int PRIMARY KEY, {cols})")
    return f"{ks}.typed"


def literal(value):
    """A CQL literal for a Python value (the driver's own encoder turns Decimal into float)."""
    if isinstance(value, Decimal):
        return str(value)
    return Encoder().cql_encode_all_types(value)


def norm(cql_type):
    # text and varchar are one type; the protocol's option id 0x000D is `varchar`
    return "text" if cql_type == "varchar" else cql_type


def same(got, want):
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    return got == want and type(got) is type(want)


@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_literal_round_trip(session, typed, i):
    cql_type, literal, _, expected = CASES[i]
    session.execute(f"INSERT INTO {typed} (k, c{i}) VALUES ({100 + i}, {literal})")
    got = session.execute(f"SELECT c{i} FROM {typed} WHERE k = {100 + i}").one()[0]
    assert same(got, expected), f"{cql_type}: {got!r} != {expected!r}"


@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_bound_round_trip(session, typed, i):
    cql_type, _, bound, expected = CASES[i]
    ins = session.prepare(f"INSERT INTO {typed} (k, c{i}) VALUES (?, ?)")
    got_type = ins.column_metadata[1].type.cql_parameterized_type()
    assert norm(got_type) == norm(cql_type), "PREPARED metadata carries the column's type"
    session.execute(ins, (200 + i, bound))
    sel = session.prepare(f"SELECT c{i} FROM {typed} WHERE k = ?")
    got = session.execute(sel, [200 + i]).one()[0]
    assert same(got, expected), f"{cql_type}: {got!r} != {expected!r}"


def test_all_types_in_one_row(session, typed):
    names = ", ".join(f"c{i}" for i in range(len(CASES)))
    marks = ", ".join("?" for _ in CASES)
    ins = session.prepare(f"INSERT INTO {typed} (k, {names}) VALUES (?, {marks})")
    session.execute(ins, [1] + [c[2] for c in CASES])
    lits = ", ".join(c[1] for c in CASES)
    session.execute(f"INSERT INTO {typed} (k, {names}) VALUES (2, {lits})")
    for k in (1, 2):
        row = session.execute(f"SELECT {names} FROM {typed} WHERE k = {k}").one()
        for i, c in enumerate(CASES):
            assert same(row[i], c[3]), f"k={k} {c[0]}: {row[i]!r} != {c[3]!r}"


def test_column_types_in_metadata(cluster, typed):
    ks, t = typed.split(".")
    cols = cluster.metadata.keyspaces[ks].tables[t].columns
    for i, c in enumerate(CASES):
        assert cols[f"c{i}"].cql_type == c[0].replace("varchar", "text")


@pytest.mark.parametrize("cql_type, lits, bound", [
    ("float", ["NaN", "Infinity", "-Infinity", "-0.0"], [float("nan"), float("inf"), float("-inf"), -0.0]),
    ("double", ["NaN", "Infinity", "-Infinity", "1e308"], [float("nan"), float("inf"), float("-inf"), 1e308]),
])
def test_special_floats(session, table, cql_type, lits, bound):
    t = table(f"k int PRIMARY KEY, v {cql_type}")
    ins = session.prepare(f"INSERT INTO {t} (k, v) VALUES (?, ?)")
    for j, (lit, val) in enumerate(zip(lits, bound)):
        session.execute(f"INSERT INTO {t} (k, v) VALUES ({j}, {lit})")
        session.execute(ins, (100 + j, val))
        for k in (j, 100 + j):
            got = session.execute(f"SELECT v FROM {t} WHERE k = {k}").one().v
            assert same(got, val) and math.copysign(1, got) == math.copysign(1, val), (lit, got)


def test_empty_and_edge_values(session, table):
    t = table("k int PRIMARY KEY, s text, b blob, vi varint, d decimal, ts timestamp, i inet")
    session.execute(f"INSERT INTO {t} (k, s, b, vi, d, ts, i) VALUES "
                    "(1, '', 0x, -" + str(HUGE) + ", 0.000001, -1000, '::1')")
    row = session.execute(f"SELECT s, b, vi, d, ts, i FROM {t} WHERE k = 1").one()
    assert row.s == "" and row.b == b""
    assert row.vi == -HUGE
    assert row.d == Decimal("0.000001")
    assert row.ts == datetime.datetime(1969, 12, 31, 23, 59, 59)
    assert ipaddress.ip_address(row.i) == ipaddress.ip_address("::1")
    ins = session.prepare(f"INSERT INTO {t} (k, s, b, vi, ts) VALUES (?, ?, ?, ?, ?)")
    session.execute(ins, (2, "", b"", 0, datetime.datetime(1970, 1, 1)))
    row = session.execute(f"SELECT s, b, vi, ts FROM {t} WHERE k = 2").one()
    assert (row.s, row.b, row.vi, row.ts) == ("", b"", 0, datetime.datetime(1970, 1, 1))


def test_timestamp_literal_forms(session, table):
    t = table("k int PRIMARY KEY, ts timestamp")
    want = datetime.datetime(2024, 2, 29, 13, 14, 15)
    for k, lit in enumerate(["'2024-02-29 13:14:15+0000'", "'2024-02-29T13:14:15Z'",
                             "1709212455000", "'2024-02-29 14:14:15+0100'"]):
        session.execute(f"INSERT INTO {t} (k, ts) VALUES ({k}, {lit})")
        assert session.execute(f"SELECT ts FROM {t} WHERE k = {k}").one().ts == want, lit


# Types that may be keys: bound as partition key, then as clustering column (order checked).
KEY_CASES = [
    ("ascii", ["a", "b", "c"]),
    ("text", ["", "a", "ab", "b", "é"]),
    ("boolean", [False, True]),
    ("tinyint", [-128, -1, 0, 1, 127]),
    ("smallint", [-32768, -1, 0, 32767]),
    ("int", [-2147483648, -5, 0, 7, 2147483647]),
    ("bigint", [-(2 ** 63), -1, 0, 2 ** 63 - 1]),
    ("varint", [-HUGE, -256, -1, 0, 1, 255, 256, HUGE]),
    ("float", [-3.4028234663852886e38, -1.5, 0.0, 2.25, 16777216.0]),
    ("double", [-1e300, -0.5, 0.0, 1.0, 1e300]),
    ("decimal", [Decimal("-100.5"), Decimal("-1"), Decimal("0.001"), Decimal("0.01"), Decimal("12345678901234567890.5")]),
    ("timestamp", [datetime.datetime(1960, 1, 1), datetime.datetime(1970, 1, 1), TS]),
    ("date", [datetime.date(1900, 1, 1), datetime.date(1970, 1, 1), datetime.date(2024, 2, 29)]),
    ("time", [Time(0), Time("00:00:01"), Time("23:59:59.999999999")]),
    ("blob", [b"", b"\x00", b"\x00\x01", b"\x7f", b"\x80", b"\xff"]),
    ("timeuuid", [uuid.UUID("00000000-0000-1000-8000-000000000000"), TU,
                  uuid.UUID("ffffffff-ffff-1fff-bfff-ffffffffffff")]),
    ("inet", ["1.2.3.4", "10.0.0.1", "255.255.255.255"]),
    ("uuid", [U4]),
]


@pytest.mark.parametrize("cql_type, values", KEY_CASES, ids=[c[0] for c in KEY_CASES])
def test_types_as_keys_and_clustering_order(session, table, cql_type, values):
    t = table(f"p {cql_type}, c {cql_type}, v int, PRIMARY KEY (p, c)")
    ins = session.prepare(f"INSERT INTO {t} (p, c, v) VALUES (?, ?, ?)")
    # an empty value may be a clustering value but never a partition key
    keys = [v for v in values if v not in ("", b"")]
    for j, val in enumerate(reversed(values)):
        session.execute(ins, (keys[0], val, j))
    for j, val in enumerate(keys):
        session.execute(ins, (val, keys[0], j))
    sel = session.prepare(f"SELECT c FROM {t} WHERE p = ?")
    got = [r.c for r in session.execute(sel, [keys[0]])]
    want = [Date(v) if cql_type == "date" else v for v in values]
    assert got == want, "clustering order follows the type's comparator"
    for val in keys:
        q = f"SELECT p, c FROM {t} WHERE p = {literal(val)} AND c = {literal(keys[0])}"
        row = session.execute(q).one()
        assert row is not None, f"partition {val!r} readable through a literal too"
