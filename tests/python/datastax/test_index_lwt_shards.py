"""Local secondary indexes and shard-independent LWT/counter atomicity on a --smp 2 node.

Index queries are checked against a filtered full scan (same rows, same ring order) before
and after a flush, across overwrites and deletes, after a restart and after DROP/CREATE
INDEX on existing data. The concurrency tests go through the plain port 9042 with the
DataStax driver (not shard-aware), one connection per Cluster, so requests land on both
shards and most of them on a shard that does not own the partition.
"""

import random
import threading
import time
import urllib.request

import pytest
from cassandra import InvalidRequest
from cassandra.cluster import Cluster
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import SimpleStatement

from tessera_node import TesseraNode

ADDR = "127.0.0.94"
API = 10094
KS = "ilwt"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = TesseraNode(ADDR, workdir=tmp_path_factory.mktemp("ilwt"), api_port=API,
                    extra_args=["--smp", "2"])
    n.start()
    yield n
    n.stop()


def connect(node):
    c = Cluster(contact_points=[node.addr], port=node.port)
    return c, c.connect()


@pytest.fixture(scope="module")
def session(node):
    c, s = connect(node)
    s.execute(f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = "
              "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    yield s
    c.shutdown()


def flush():
    req = urllib.request.Request(f"http://{ADDR}:{API}/storage_service/flush", method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 200


def rows(session, cql, params=(), fetch_size=None):
    st = SimpleStatement(cql, fetch_size=fetch_size)
    return [tuple(r) for r in session.execute(st, params)]


def oracle(session, table, pred):
    """A full scan filtered in Python: the rows (pk, ck, v) the index must return."""
    return [(r[0], r[1], r[2]) for r in rows(session, f"SELECT pk, ck, v, s, m FROM {table}")
            if pred(r)]


def check_table(session, table, values):
    for x in values:
        want = oracle(session, table, lambda r: r[2] == x)
        for fs in (None, 3, 1000):
            got = rows(session, f"SELECT pk, ck, v FROM {table} WHERE v = %s", (x,), fs)
            assert got == want, f"v = {x}, fetch_size {fs}"
        want_s = oracle(session, table, lambda r: r[3] is not None and x in r[3])
        got_s = rows(session, f"SELECT pk, ck, v FROM {table} WHERE s CONTAINS %s", (x,), 4)
        assert got_s == want_s, f"s CONTAINS {x}"
        key = f"k{x}"
        want_m = oracle(session, table, lambda r: r[4] is not None and key in r[4])
        got_m = rows(session, f"SELECT pk, ck, v FROM {table} WHERE m CONTAINS KEY %s", (key,), 5)
        assert got_m == want_m, f"m CONTAINS KEY {key}"
        # More restrictions: ALLOW FILTERING, as Cassandra requires.
        want_ck = [r for r in want if r[1] >= 3]
        got_ck = rows(session, f"SELECT pk, ck, v FROM {table} WHERE v = %s AND ck >= 3 "
                      "ALLOW FILTERING", (x,), 2)
        assert got_ck == want_ck


def fill(session, table, n_pk=60, n_ck=8, seed=1):
    rnd = random.Random(seed)
    ins = session.prepare(f"INSERT INTO {table} (pk, ck, v, s, m) VALUES (?, ?, ?, ?, ?)")
    args = []
    for pk in range(n_pk):
        for ck in range(n_ck):
            v = rnd.randrange(10)
            args.append((pk, ck, v, {rnd.randrange(10), rnd.randrange(10)},
                         {f"k{rnd.randrange(10)}": v}))
    execute_concurrent_with_args(session, ins, args, concurrency=50)


def mutate(session, table, seed=2):
    rnd = random.Random(seed)
    for _ in range(120):
        pk, ck = rnd.randrange(60), rnd.randrange(8)
        op = rnd.randrange(5)
        if op == 0:
            session.execute(f"UPDATE {table} SET v = %s WHERE pk = %s AND ck = %s",
                            (rnd.randrange(10), pk, ck))
        elif op == 1:
            session.execute(f"DELETE FROM {table} WHERE pk = %s AND ck = %s", (pk, ck))
        elif op == 2:
            session.execute(f"DELETE v FROM {table} WHERE pk = %s AND ck = %s", (pk, ck))
        elif op == 3:
            session.execute(f"UPDATE {table} SET s = s - {{{rnd.randrange(10)}}}, "
                            f"m['k{rnd.randrange(10)}'] = 1 WHERE pk = %s AND ck = %s", (pk, ck))
        else:
            session.execute(f"DELETE FROM {table} WHERE pk = %s", (pk,))


def test_index_matches_filtered_scan(node, session):
    t = f"{KS}.idx"
    session.execute(f"CREATE TABLE {t} (pk int, ck int, v int, s set<int>, m map<text, int>, "
                    "PRIMARY KEY (pk, ck))")
    session.execute(f"CREATE INDEX idx_v ON {t} (v)")
    session.execute(f"CREATE INDEX idx_s ON {t} (s)")
    session.execute(f"CREATE INDEX idx_m ON {t} (keys(m))")
    fill(session, t)
    values = range(10)
    check_table(session, t, values)
    flush()
    check_table(session, t, values)
    mutate(session, t)
    check_table(session, t, values)
    flush()
    mutate(session, t, seed=3)
    check_table(session, t, values)
    # Token restriction with the index.
    tok = rows(session, f"SELECT token(pk) FROM {t} LIMIT 1")[0][0]
    want = [r for r in rows(session, f"SELECT token(pk), pk, ck, v FROM {t}")
            if r[0] > tok and r[3] == 4]
    got = rows(session, f"SELECT token(pk), pk, ck, v FROM {t} WHERE token(pk) > %s AND v = 4",
               (tok,))
    assert got == want and got
    # COUNT(*) through the index.
    assert rows(session, f"SELECT COUNT(*) FROM {t} WHERE v = 5")[0][0] == len(
        oracle(session, t, lambda r: r[2] == 5))


def test_index_refusals_match_cassandra(session):
    t = f"{KS}.refuse"
    session.execute(f"CREATE TABLE {t} (pk int, ck int, v int, w int, PRIMARY KEY (pk, ck))")
    session.execute(f"CREATE INDEX ON {t} (v)")
    msg = ("Cannot execute this query as it might involve data filtering and thus may have "
           "unpredictable performance. If you want to execute this query despite the "
           "performance unpredictability, use ALLOW FILTERING")
    with pytest.raises(InvalidRequest, match="ALLOW FILTERING"):
        session.execute(f"SELECT * FROM {t} WHERE v = 1 AND w = 2")
    with pytest.raises(InvalidRequest) as e:
        session.execute(f"SELECT * FROM {t} WHERE w = 2")
    assert msg in str(e.value)
    session.execute(f"INSERT INTO {t} (pk, ck, v, w) VALUES (1, 1, 1, 2)")
    session.execute(f"INSERT INTO {t} (pk, ck, v, w) VALUES (2, 1, 1, 3)")
    assert rows(session, f"SELECT pk FROM {t} WHERE v = 1 AND w = 2 ALLOW FILTERING") == [(1,)]


def test_indexed_lookup_reads_far_less_than_a_scan(session):
    t = f"{KS}.big"
    session.execute(f"CREATE TABLE {t} (pk int PRIMARY KEY, v int, w int)")
    ins = session.prepare(f"INSERT INTO {t} (pk, v, w) VALUES (?, ?, ?)")
    n = 100_000
    execute_concurrent_with_args(session, ins, [(i, i % 10_000, i % 10_000) for i in range(n)],
                                 concurrency=200)
    session.execute(f"CREATE INDEX ON {t} (v)")

    def best_of(cql, k=3):
        out = None
        for _ in range(k):
            t0 = time.perf_counter()
            r = rows(session, cql)
            dt = time.perf_counter() - t0
            out = (min(out[0], dt), r) if out else (dt, r)
        return out

    t_idx, r_idx = best_of(f"SELECT pk FROM {t} WHERE v = 1234")
    t_scan, r_scan = best_of(f"SELECT pk FROM {t} WHERE w = 1234 ALLOW FILTERING", k=1)
    assert sorted(r_idx) == sorted(r_scan) == [(1234 + 10_000 * i,) for i in range(10)]
    print(f"\nindexed lookup {t_idx * 1000:.1f} ms, filtered scan {t_scan * 1000:.1f} ms "
          f"({n} rows)")
    assert t_idx * 10 < t_scan, (t_idx, t_scan)


# --- LWT and counters through the non-shard-aware port -----------------------------------

THREADS = 8


@pytest.fixture(scope="module")
def sessions(node, session):
    out = [connect(node) for _ in range(THREADS)]
    yield [s for _, s in out]
    for c, _ in out:
        c.shutdown()


def run_threads(fn):
    errors = []

    def wrap(i):
        try:
            fn(i)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=wrap, args=(i,)) for i in range(THREADS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors


def test_counter_increments_are_exact(session, sessions):
    t = f"{KS}.ctr"
    session.execute(f"CREATE TABLE {t} (k int PRIMARY KEY, c counter, d counter)")
    per_thread = 150

    def work(i):
        s = sessions[i]
        up = s.prepare(f"UPDATE {t} SET c = c + 1, d = d + 2 WHERE k = ?")
        for j in range(per_thread):
            s.execute(up, (j % 3,))
            if j % 10 == 0:
                s.execute(f"BEGIN COUNTER BATCH UPDATE {t} SET c = c + 1 WHERE k = 7; "
                          f"UPDATE {t} SET c = c + 1 WHERE k = 7; APPLY BATCH")

    run_threads(work)
    got = {r.k: (r.c, r.d) for r in session.execute(f"SELECT k, c, d FROM {t}")}
    total = THREADS * per_thread
    assert sum(got[k][0] for k in range(3)) == total
    assert sum(got[k][1] for k in range(3)) == 2 * total
    assert got[7][0] == THREADS * 2 * len(range(0, per_thread, 10))


def test_insert_if_not_exists_has_one_winner(session, sessions):
    t = f"{KS}.lwt_ins"
    session.execute(f"CREATE TABLE {t} (k int PRIMARY KEY, owner int)")
    keys = 60
    wins = [[] for _ in range(THREADS)]

    def work(i):
        s = sessions[i]
        ins = s.prepare(f"INSERT INTO {t} (k, owner) VALUES (?, ?) IF NOT EXISTS")
        for k in range(keys):
            r = s.execute(ins, (k, i)).one()
            if r[0]:
                wins[i].append(k)
            else:
                assert r.owner is not None

    run_threads(work)
    all_wins = sorted(k for w in wins for k in w)
    assert all_wins == list(range(keys)), "exactly one winner per key"
    owners = {r.k: r.owner for r in session.execute(f"SELECT k, owner FROM {t}")}
    for i, w in enumerate(wins):
        for k in w:
            assert owners[k] == i


def test_compare_and_set_loses_no_update(session, sessions):
    t = f"{KS}.lwt_cas"
    session.execute(f"CREATE TABLE {t} (k int PRIMARY KEY, v int)")
    session.execute(f"INSERT INTO {t} (k, v) VALUES (1, 0)")
    per_thread = 40
    done = [0] * THREADS

    def work(i):
        s = sessions[i]
        read = s.prepare(f"SELECT v FROM {t} WHERE k = 1")
        cas = s.prepare(f"UPDATE {t} SET v = ? WHERE k = 1 IF v = ?")
        while done[i] < per_thread:
            cur = s.execute(read).one().v
            r = s.execute(cas, (cur + 1, cur)).one()
            if r[0]:
                done[i] += 1
            else:
                assert r.v != cur

    run_threads(work)
    assert session.execute(f"SELECT v FROM {t} WHERE k = 1").one().v == THREADS * per_thread


def test_conditional_batch_on_one_partition(session, sessions):
    t = f"{KS}.lwt_batch"
    session.execute(f"CREATE TABLE {t} (k int, c int, v int, PRIMARY KEY (k, c))")
    session.execute(f"INSERT INTO {t} (k, c, v) VALUES (1, 0, 0)")
    per_thread = 25
    done = [0] * THREADS

    def work(i):
        s = sessions[i]
        while done[i] < per_thread:
            cur = s.execute(f"SELECT v FROM {t} WHERE k = 1 AND c = 0").one().v
            r = s.execute(
                f"BEGIN BATCH UPDATE {t} SET v = {cur + 1} WHERE k = 1 AND c = 0 IF v = {cur}; "
                f"INSERT INTO {t} (k, c, v) VALUES (1, {cur + 1}, {i}); APPLY BATCH").one()
            if r[0]:
                done[i] += 1

    run_threads(work)
    total = THREADS * per_thread
    got = rows(session, f"SELECT c, v FROM {t} WHERE k = 1")
    assert got[0] == (0, total)
    assert [c for c, _ in got[1:]] == list(range(1, total + 1))
    assert sorted(v for _, v in got[1:]) == sorted(
        i for i in range(THREADS) for _ in range(per_thread))
    with pytest.raises(InvalidRequest, match="multiple partitions"):
        session.execute(f"BEGIN BATCH UPDATE {t} SET v = 1 WHERE k = 1 AND c = 0 IF v = 0; "
                        f"INSERT INTO {t} (k, c, v) VALUES (2, 0, 0); APPLY BATCH")


def test_requests_reach_both_shards(node, sessions):
    """The concurrency tests above only prove something if requests crossed shards: the
    connections of the sessions must sit on both shards."""
    import socket
    import struct
    seen = set()
    for _ in range(16):
        s = socket.create_connection((ADDR, node.port))
        s.sendall(struct.pack(">BBhBI", 4, 0, 1, 0x05, 0))
        data = b""
        while len(data) < 9:
            data += s.recv(4096)
        n = struct.unpack(">I", data[5:9])[0]
        while len(data) < 9 + n:
            data += s.recv(4096)
        s.close()
        body = data[9:]
        i = body.find(b"\x00\x0cSCYLLA_SHARD")
        assert i >= 0
        j = i + 2 + 12 + 2
        vlen = struct.unpack(">H", body[j:j + 2])[0]
        seen.add(body[j + 2:j + 2 + vlen].decode())
    assert seen == {"0", "1"}


def test_index_survives_restart_and_rebuilds(node, session):
    t = f"{KS}.idx"
    values = range(10)
    before = {x: oracle(session, t, lambda r, x=x: r[2] == x) for x in values}
    node.stop()
    node.start()
    c, s = connect(node)
    try:
        check_table(s, t, values)
        assert {x: oracle(s, t, lambda r, x=x: r[2] == x) for x in values} == before
        s.execute(f"DROP INDEX {KS}.idx_v")
        with pytest.raises(InvalidRequest, match="ALLOW FILTERING"):
            s.execute(f"SELECT pk FROM {t} WHERE v = 1")
        # Writes while the index does not exist, then CREATE INDEX on existing data.
        s.execute(f"UPDATE {t} SET v = 7 WHERE pk = 1000 AND ck = 1")
        s.execute(f"CREATE INDEX idx_v ON {t} (v)")
        check_table(s, t, values)
        assert (1000, 1, 7) in rows(s, f"SELECT pk, ck, v FROM {t} WHERE v = 7")
        # And across a restart, with the rebuilt index only in the commitlog.
        node.stop()
        node.start()
    finally:
        c.shutdown()
    c, s = connect(node)
    try:
        check_table(s, t, values)
        s.execute(f"DROP TABLE {t}")
        s.execute(f"CREATE TABLE {t} (pk int, ck int, v int, s set<int>, m map<text, int>, "
                  "PRIMARY KEY (pk, ck))")
        s.execute(f"CREATE INDEX idx_v ON {t} (v)")
        assert rows(s, f"SELECT pk FROM {t} WHERE v = 7") == []
    finally:
        c.shutdown()
