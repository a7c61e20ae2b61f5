"""USING TTL / USING TIMESTAMP, WRITETIME(), TTL() and last-write-wins reconciliation."""

import time

import pytest


@pytest.fixture
def kv(table):
    return table("k int, c int, v text, w int, PRIMARY KEY (k, c)")


def get(session, t, k=1, c=1, cols="v"):
    return session.execute(f"SELECT {cols} FROM {t} WHERE k = {k} AND c = {c}").one()


def test_writetime_of_explicit_timestamp(session, kv):
    session.execute(f"INSERT INTO {kv} (k, c, v, w) VALUES (1, 1, 'a', 1) USING TIMESTAMP 1234567")
    row = get(session, kv, cols="WRITETIME(v), writetime(w) AS ww")
    assert row[0] == 1234567 and row.ww == 1234567


def test_writetime_defaults_to_now_in_microseconds(session, kv):
    before = int(time.time() * 1e6)
    session.execute(f"INSERT INTO {kv} (k, c, v) VALUES (1, 1, 'a')")
    after = int(time.time() * 1e6)
    wt = get(session, kv, cols="WRITETIME(v)")[0]
    assert before - 5_000_000 <= wt <= after + 5_000_000


def test_older_timestamp_does_not_overwrite(session, kv):
    session.execute(f"INSERT INTO {kv} (k, c, v) VALUES (1, 1, 'new') USING TIMESTAMP 2000")
    session.execute(f"INSERT INTO {kv} (k, c, v) VALUES (1, 1, 'old') USING TIMESTAMP 1999")
    session.execute(f"UPDATE {kv} USING TIMESTAMP 1000 SET v = 'older' WHERE k = 1 AND c = 1")
    assert get(session, kv).v == "new"
    session.execute(f"UPDATE {kv} USING TIMESTAMP 2001 SET v = 'newer' WHERE k = 1 AND c = 1")
    assert get(session, kv).v == "newer"


@pytest.mark.parametrize("first, second", [("a", "b"), ("b", "a")])
def test_equal_timestamps_greater_value_wins(session, kv, first, second):
    session.execute(f"INSERT INTO {kv} (k, c, v) VALUES (1, 1, '{first}') USING TIMESTAMP 5000")
    session.execute(f"INSERT INTO {kv} (k, c, v) VALUES (1, 1, '{second}') USING TIMESTAMP 5000")
    assert get(session, kv).v == "b"


def test_equal_timestamps_greater_int_value_wins(session, kv):
    session.execute(f"INSERT INTO {kv} (k, c, w) VALUES (1, 1, 7) USING TIMESTAMP 5000")
    session.execute(f"INSERT INTO {kv} (k, c, w) VALUES (1, 1, 3) USING TIMESTAMP 5000")
    assert get(session, kv, cols="w").w == 7


@pytest.mark.parametrize("delete_first", [False, True])
def test_tombstone_wins_timestamp_tie(session, kv, delete_first):
    write = f"INSERT INTO {kv} (k, c, v) VALUES (1, 1, 'live') USING TIMESTAMP 7000"
    delete = f"DELETE FROM {kv} USING TIMESTAMP 7000 WHERE k = 1 AND c = 1"
    for q in ([delete, write] if delete_first else [write, delete]):
        session.execute(q)
    assert list(session.execute(f"SELECT * FROM {kv} WHERE k = 1")) == []


def test_cell_tombstone_wins_tie(session, kv):
    session.execute(f"INSERT INTO {kv} (k, c, v, w) VALUES (1, 1, 'live', 1) USING TIMESTAMP 7000")
    session.execute(f"DELETE v FROM {kv} USING TIMESTAMP 7000 WHERE k = 1 AND c = 1")
    assert tuple(get(session, kv, cols="v, w")) == (None, 1)


def test_older_delete_does_not_remove_newer_data(session, kv):
    session.execute(f"INSERT INTO {kv} (k, c, v) VALUES (1, 1, 'keep') USING TIMESTAMP 9000")
    session.execute(f"DELETE FROM {kv} USING TIMESTAMP 8999 WHERE k = 1")
    assert get(session, kv).v == "keep"
    session.execute(f"DELETE FROM {kv} USING TIMESTAMP 9001 WHERE k = 1")
    assert get(session, kv) is None
    # a write older than the partition tombstone stays hidden
    session.execute(f"INSERT INTO {kv} (k, c, v) VALUES (1, 2, 'hidden') USING TIMESTAMP 9000")
    assert list(session.execute(f"SELECT * FROM {kv} WHERE k = 1")) == []


def test_ttl_reported_and_expires(session, kv):
    session.execute(f"INSERT INTO {kv} (k, c, v, w) VALUES (1, 1, 'short', 1) USING TTL 2")
    session.execute(f"INSERT INTO {kv} (k, c, v) VALUES (1, 2, 'long') USING TTL 1000")
    ttl = get(session, kv, c=2, cols="TTL(v)")[0]
    assert 990 <= ttl <= 1000
    assert get(session, kv, c=1, cols="ttl(v) AS t").t in (1, 2)
    time.sleep(3.2)
    assert get(session, kv, c=1) is None, "the row (marker and cells) expired with its TTL"
    assert get(session, kv, c=2).v == "long"


def test_ttl_on_update_expires_only_that_cell(session, kv):
    session.execute(f"INSERT INTO {kv} (k, c, v, w) VALUES (1, 1, 'stay', 5)")
    session.execute(f"UPDATE {kv} USING TTL 1 SET w = 6 WHERE k = 1 AND c = 1")
    assert get(session, kv, cols="TTL(v), TTL(w)")[0] is None
    time.sleep(2.2)
    assert tuple(get(session, kv, cols="v, w")) == ("stay", None)


def test_timestamp_and_ttl_together(session, kv):
    ts = int(time.time() * 1e6)
    session.execute(f"INSERT INTO {kv} (k, c, v) VALUES (1, 1, 'x') USING TIMESTAMP {ts} AND TTL 500")
    row = get(session, kv, cols="WRITETIME(v), TTL(v)")
    assert row[0] == ts and 490 <= row[1] <= 500


def test_default_time_to_live(session, table):
    t = table("k int PRIMARY KEY, v text", "default_time_to_live = 300")
    session.execute(f"INSERT INTO {t} (k, v) VALUES (1, 'x')")
    assert 290 <= session.execute(f"SELECT TTL(v) FROM {t} WHERE k = 1").one()[0] <= 300
    session.execute(f"INSERT INTO {t} (k, v) VALUES (2, 'y') USING TTL 0")
    assert session.execute(f"SELECT TTL(v) FROM {t} WHERE k = 2").one()[0] is None


def test_batch_using_timestamp(session, kv):
    session.execute(
        "BEGIN BATCH USING TIMESTAMP 4242 "
        f"INSERT INTO {kv} (k, c, v) VALUES (1, 1, 'b1'); "
        f"INSERT INTO {kv} (k, c, v) VALUES (1, 2, 'b2'); "
        "APPLY BATCH")
    assert [r[0] for r in session.execute(f"SELECT WRITETIME(v) FROM {kv} WHERE k = 1")] == [4242, 4242]


def test_timestamp_guardrails_refuse_far_future_and_past_writes(tmp_path):
    """Cassandra 5's maximum/minimum_timestamp_fail_threshold guardrails: a write stamped
    further from now than the bound is refused (InvalidRequest) and nothing is applied, whether
    the timestamp comes from USING TIMESTAMP, a batch or the client's default timestamp."""
    import os

    from cassandra import InvalidRequest
    from cassandra.cluster import Cluster
    from cassandra.query import BatchStatement, SimpleStatement

    from tessera_node import TesseraNode

    addr = os.environ.get("TESSERA_TEST_GUARDRAIL_ADDR", "127.0.0.150")
    node = TesseraNode(addr, workdir=tmp_path, extra_args=[
        "--maximum-timestamp-fail-threshold", "1d",
        "--minimum-timestamp-fail-threshold", "3650d"]).start()
    cluster = Cluster([addr], connect_timeout=10)
    try:
        s = cluster.connect()
        s.execute("CREATE KEYSPACE g WITH replication = "
                  "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        s.execute("CREATE TABLE g.t (k int PRIMARY KEY, v text)")
        now = int(time.time() * 1e6)
        day = 86_400_000_000
        s.execute(f"INSERT INTO g.t (k, v) VALUES (1, 'ok') USING TIMESTAMP {now + day // 2}")
        with pytest.raises(InvalidRequest, match="Guardrail maximum_timestamp violated: "
                           "The modification to table g.t has a timestamp"):
            s.execute(f"INSERT INTO g.t (k, v) VALUES (2, 'future') USING TIMESTAMP {now + 2 * day}")
        with pytest.raises(InvalidRequest, match="Guardrail minimum_timestamp violated"):
            s.execute("UPDATE g.t USING TIMESTAMP 1000 SET v = 'past' WHERE k = 3")
        batch = BatchStatement()
        batch.add(SimpleStatement("INSERT INTO g.t (k, v) VALUES (4, 'b')"))
        batch.add(SimpleStatement(f"INSERT INTO g.t (k, v) VALUES (5, 'b') USING TIMESTAMP "
                                  f"{now + 2 * day}"))
        with pytest.raises(InvalidRequest, match="maximum_timestamp"):
            s.execute(batch)
        # The client's own (default) timestamp far in the future.
        skewed = Cluster([addr], connect_timeout=10,
                         timestamp_generator=lambda: int(time.time() * 1e6) + 3 * day)
        try:
            with pytest.raises(InvalidRequest, match="maximum_timestamp"):
                skewed.connect().execute("INSERT INTO g.t (k, v) VALUES (6, 'client ts')")
        finally:
            skewed.shutdown()
        keys = sorted(r.k for r in s.execute("SELECT k FROM g.t"))
        assert keys == [1], keys
    finally:
        cluster.shutdown()
        node.stop()
