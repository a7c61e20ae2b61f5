"""A replica that fails a write answers WriteFailure (0x1500), not ServerError.

One node, its commitlog on a small loop-mounted disk that really fills up
(`commit_failure_policy: stop_commit`, the helpers of test_commit_failure.py).
Cassandra answers a replica's failure with WriteFailure { consistency,
received, block_for, num_failures (v4) | reason_map (v5), write_type }; the
Python driver raises `cassandra.WriteFailure` for it (a ServerError would be
retried on the next host and end as NoHostAvailable). The message keeps the
cause operators look for ("commitlog failure: ... No space left on device").
"""

import os
import time

import pytest
from cassandra import ConsistencyLevel, WriteFailure
from cassandra.cluster import Cluster
from cassandra.policies import WriteType
from cassandra.query import BatchStatement, BatchType, SimpleStatement

from test_commit_failure import fill, kill9, small_disk  # noqa: F401 - fixture
from tessera_node import TesseraNode

# TESSERA_WF_ADDR / TESSERA_WF_READ_ADDR move the nodes (e.g. off addresses
# another run on the same machine uses).
ADDR = os.environ.get("TESSERA_WF_ADDR", "127.0.0.85")
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
        s4.execute("CREATE TABLE wf.l (k int PRIMARY KEY, l list<text>)")
        s4.execute("INSERT INTO wf.t (k, v) VALUES (-1, 'before')")
        s4.execute("INSERT INTO wf.l (k, l) VALUES (1, ['a', 'b'])")
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

        # The write type follows the statement (Cassandra's rules): an
        # unlogged batch of two partitions is UNLOGGED_BATCH, a logged one
        # BATCH, a counter update COUNTER, a condition CAS, and a list
        # element set (it reads, but is not conditional) SIMPLE.
        batch = BatchStatement(batch_type=BatchType.UNLOGGED,
                               consistency_level=ConsistencyLevel.ONE)
        batch.add("INSERT INTO wf.t (k, v) VALUES (100002, 'x')")
        batch.add("INSERT INTO wf.t (k, v) VALUES (100003, 'x')")
        with pytest.raises(WriteFailure) as eb:
            s5.execute(batch)
        check_failure(eb.value, WriteType.UNLOGGED_BATCH, ConsistencyLevel.ONE, 1)
        assert eb.value.error_code_map == {ADDR: 0}, eb.value

        logged = BatchStatement(batch_type=BatchType.LOGGED,
                                consistency_level=ConsistencyLevel.ONE)
        logged.add("INSERT INTO wf.t (k, v) VALUES (100005, 'x')")
        logged.add("INSERT INTO wf.t (k, v) VALUES (100006, 'x')")
        with pytest.raises(WriteFailure) as el:
            s4.execute(logged)
        check_failure(el.value, WriteType.BATCH, ConsistencyLevel.ONE, 1)

        with pytest.raises(WriteFailure) as elist:
            s5.execute("UPDATE wf.l SET l[0] = 'y' WHERE k = 1")
        check_failure(elist.value, WriteType.SIMPLE, ConsistencyLevel.LOCAL_ONE, 1)
        assert elist.value.error_code_map == {ADDR: 0}, elist.value

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


# --- reads: a corrupt SSTable block is a ReadFailure ------------------------

READ_ADDR = os.environ.get("TESSERA_WF_READ_ADDR", "127.0.0.87")


def corrupt_data_blocks(path):
    """Flips a byte inside every data block's LZ4 payload (its CRC32C then
    fails when the block is read; the metadata sections stay intact, so the
    file still opens). Layout: docs/sstable-format.md."""
    data = bytearray(path.read_bytes())
    index_offset = int.from_bytes(data[len(data) - 76:len(data) - 68], "big")
    off, blocks = 16, 0
    while off < index_offset:
        compressed = int.from_bytes(data[off + 4:off + 8], "big")
        data[off + 8 + compressed // 2] ^= 0xFF
        off += 8 + compressed + 4
        blocks += 1
    assert off == index_offset, "data blocks do not end where the index starts"
    path.write_bytes(bytes(data))
    return blocks


def test_corrupt_sstable_block_is_a_read_failure(tmp_path):
    import json
    import urllib.request

    from cassandra import ReadFailure

    n = TesseraNode(READ_ADDR, workdir=tmp_path / "node", extra_args=["--smp", "1"])
    n.start()
    try:
        c, s = session(n, 4)
        try:
            s.execute("CREATE KEYSPACE rf WITH replication = "
                      "{'class': 'SimpleStrategy', 'replication_factor': 1}")
            s.execute("CREATE TABLE rf.t (k int PRIMARY KEY, v text)")
            insert = s.prepare("INSERT INTO rf.t (k, v) VALUES (?, ?)")
            for k in range(200):
                s.execute(insert, (k, f"value {k}" * 20))
        finally:
            c.shutdown()
        req = urllib.request.Request(
            f"http://{n.addr}:{n.api_port}/storage_service/flush", method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            json.loads(r.read())
        # (Rows the commitlog replays are merged with the SSTable on reads,
        # so the damaged blocks are read either way.)
        kill9(n)
        tables = list((tmp_path / "node").rglob("SSTable-1-*.db"))
        rf_tables = [p for p in tables if p.stat().st_size > 10_000]
        assert rf_tables, f"no flushed SSTable found among {tables}"
        assert sum(corrupt_data_blocks(p) for p in rf_tables) >= 1
        n.start()
        c4, s4 = session(n, 4)
        c5, s5 = session(n, 5)
        try:
            with pytest.raises(ReadFailure) as e4:
                s4.execute("SELECT v FROM rf.t WHERE k = 7")
            e = e4.value
            assert e.consistency == ConsistencyLevel.LOCAL_ONE, e
            assert (e.required_responses, e.received_responses, e.failures) == (1, 0, 1), e
            assert e.data_retrieved is False, e
            assert "corrupt" in str(e).lower(), e
            with pytest.raises(ReadFailure) as e5:
                s5.execute(SimpleStatement("SELECT v FROM rf.t WHERE k = 7",
                                           consistency_level=ConsistencyLevel.QUORUM))
            assert e5.value.error_code_map == {READ_ADDR: 0}, e5.value
            assert e5.value.required_responses == 1, e5.value
            # A range scan reads the same blocks.
            with pytest.raises(ReadFailure) as es:
                s5.execute("SELECT * FROM rf.t")
            assert es.value.error_code_map == {READ_ADDR: 0}, es.value
        finally:
            c4.shutdown()
            c5.shutdown()
    finally:
        kill9(n)
