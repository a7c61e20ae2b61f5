"""A replica that fails a write answers WriteFailure (0x1500), not ServerError.

One node, its commitlog on a small loop-mounted disk that really fills up
(`commit_failure_policy: stop_commit`, the helpers of test_commit_failure.py).
Cassandra answers a replica's failure with WriteFailure { consistency,
received, block_for, num_failures (v4) | reason_map (v5), write_type }; the
Python driver raises `cassandra.WriteFailure` for it (a ServerError would be
retried on the next host and end as NoHostAvailable). The message keeps the
cause operators look for ("commitlog failure: ... No space left on device").
"""

import time

import pytest
from cassandra import ConsistencyLevel, WriteFailure
from cassandra.cluster import Cluster
from cassandra.policies import WriteType
from cassandra.query import BatchStatement, BatchType, SimpleStatement

from test_commit_failure import fill, kill9, small_disk  # noqa: F401 - fixture
from tessera_node import TesseraNode

ADDR = "127.0.0.85"
VALUE = "x" * 3000


@pytest.fixture
def node(tmp_path, small_disk):  # noqa: F811 - the imported fixture
    n = TesseraNode(ADDR, workdir=tmp_path / "node", extra_args=[
        "--commitlog-directory", str(small_disk / "commitlog"),
        "--commitlog-segment-size-in-mb", "1",
        "--commitlog-sync", "batch",
        "--commit-failure-policy", "stop_commit",
    ])
    n.start()
    try:
        yield n
    finally:
        kill9(n)


def session(node, version):
    c = Cluster([node.addr], port=node.port, connect_timeout=10, protocol_version=version)
    s = c.connect()
    s.default_timeout = 10
    return c, s


def fill_commitlog(s, disk):
    """Fills the disk, then writes until the commitlog needs a segment it cannot create."""
    fill(disk / "filler")
    insert = s.prepare("INSERT INTO wf.t (k, v) VALUES (?, ?)")
    for k in range(5000):
        try:
            s.execute(insert, (k, VALUE))
        except Exception as e:  # noqa: BLE001 - the failure is the point
            return e
    raise AssertionError("5000 writes never needed a new commitlog segment")


def check_failure(e, write_type, cl, block_for):
    assert isinstance(e, WriteFailure), f"{type(e).__name__}: {e}"
    assert e.write_type == write_type, e
    assert e.consistency == cl, e
    assert e.required_responses == block_for, e
    assert e.received_responses == 0, e
    assert e.failures == 1, e
    assert "commitlog failure" in str(e) and "No space left on device" in str(e), e


def test_commitlog_failure_is_a_write_failure_in_v4_and_v5(node, small_disk):  # noqa: F811
    c4, s4 = session(node, 4)
    c5, s5 = session(node, 5)
    try:
        s4.execute("CREATE KEYSPACE wf WITH replication = "
                   "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        s4.execute("CREATE TABLE wf.t (k int PRIMARY KEY, v text)")
        s4.execute("CREATE TABLE wf.c (k int PRIMARY KEY, n counter)")
        s4.execute("INSERT INTO wf.t (k, v) VALUES (-1, 'before')")
        s5.execute("SELECT v FROM wf.t WHERE k = -1")  # v5 session sees the schema

        # The first refused write: v4 carries the failure count.
        first = fill_commitlog(s4, small_disk)
        check_failure(first, WriteType.SIMPLE, ConsistencyLevel.LOCAL_ONE, 1)
        assert first.error_code_map is None  # v4 has no reason map

        # v5 carries the reason map: this node, UNKNOWN (0).
        t0 = time.monotonic()
        with pytest.raises(WriteFailure) as e5:
            s5.execute(SimpleStatement("INSERT INTO wf.t (k, v) VALUES (100001, 'x')",
                                       consistency_level=ConsistencyLevel.QUORUM))
        assert time.monotonic() - t0 < 5, "a failure is answered at once, not after a timeout"
        check_failure(e5.value, WriteType.SIMPLE, ConsistencyLevel.QUORUM, 1)
        assert e5.value.error_code_map == {ADDR: 0}, e5.value

        # The write type follows the statement: a batch, a counter, a CAS.
        batch = BatchStatement(batch_type=BatchType.UNLOGGED,
                               consistency_level=ConsistencyLevel.ONE)
        batch.add("INSERT INTO wf.t (k, v) VALUES (100002, 'x')")
        batch.add("INSERT INTO wf.t (k, v) VALUES (100003, 'x')")
        with pytest.raises(WriteFailure) as eb:
            s5.execute(batch)
        check_failure(eb.value, WriteType.BATCH, ConsistencyLevel.ONE, 1)
        assert eb.value.error_code_map == {ADDR: 0}, eb.value

        with pytest.raises(WriteFailure) as ec:
            s4.execute(SimpleStatement("UPDATE wf.c SET n = n + 1 WHERE k = 1",
                                       consistency_level=ConsistencyLevel.ALL))
        check_failure(ec.value, WriteType.COUNTER, ConsistencyLevel.ALL, 1)

        with pytest.raises(WriteFailure) as ecas:
            s5.execute("INSERT INTO wf.t (k, v) VALUES (100004, 'x') IF NOT EXISTS")
        check_failure(ecas.value, WriteType.CAS, ConsistencyLevel.LOCAL_ONE, 1)
        assert ecas.value.error_code_map == {ADDR: 0}, ecas.value

        # Reads are still served: only writes failed.
        assert s5.execute("SELECT v FROM wf.t WHERE k = -1").one().v == "before"
    finally:
        c4.shutdown()
        c5.shutdown()


def test_oversized_mutation_stays_invalid(node):
    """Input the node refuses is not a replica failure: InvalidRequest, as before."""
    from cassandra import InvalidRequest
    c, s = session(node, 4)
    try:
        s.execute("CREATE KEYSPACE wf WITH replication = "
                  "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        s.execute("CREATE TABLE wf.t (k int PRIMARY KEY, v text)")
        # 1 MiB segments: a mutation of more than half a segment is too large.
        with pytest.raises(InvalidRequest) as e:
            s.execute("INSERT INTO wf.t (k, v) VALUES (1, %s)", ("y" * (600 << 10),))
        assert "Rejecting mutation" in str(e.value)
    finally:
        c.shutdown()
