"""A shard-aware driver (scylla-driver) against a 2-shard node: each prepared statement
goes straight to the shard that owns its token, and the node's shard for a token is the
one the driver's own oracle (`ShardingInfo.shard_id_from_token`) computes."""

import json
import struct
import time
import urllib.request

import pytest
from cassandra.cluster import Cluster
from cassandra.murmur3 import murmur3
from cassandra.shard_info import _ShardingInfo

from tessera_node import TesseraNode

ADDR = "127.0.0.83"


@pytest.fixture(scope="module")
def smp2(tmp_path_factory):
    n = TesseraNode(ADDR, workdir=tmp_path_factory.mktemp("smp2s"), api_port=10083,
                    extra_args=["--smp", "2"])
    n.start()
    yield n
    n.stop()


def shard_stats(node):
    url = f"http://{node.addr}:{node.api_port}/storage_service/shard_stats"
    with urllib.request.urlopen(url) as r:
        return {x["shard"]: x for x in json.loads(r.read())}


def test_token_aware_prepared_statements_cross_no_shard(smp2):
    c = Cluster([ADDR])
    s = c.connect()
    s.execute("CREATE KEYSPACE IF NOT EXISTS sh WITH replication = "
              "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.execute("CREATE TABLE IF NOT EXISTS sh.kv (k int PRIMARY KEY, v int)")
    ins = s.prepare("INSERT INTO sh.kv (k, v) VALUES (?, ?)")
    sel = s.prepare("SELECT v FROM sh.kv WHERE k = ?")
    # Let the driver open its per-shard connections through the shard-aware port.
    deadline = time.monotonic() + 10
    host = c.metadata.all_hosts()[0]
    while time.monotonic() < deadline:
        pool = s.get_pool_state().get(host, {})
        if pool and pool.get("open_count", 0) >= 2:
            break
        time.sleep(0.2)
    before = shard_stats(smp2)
    n = 400
    for k in range(n):
        s.execute(ins, (k, k * 3))
    for k in range(n):
        assert s.execute(sel, (k,)).one().v == k * 3
    after = shard_stats(smp2)
    forwarded = sum(after[i]["forwarded"] - before[i]["forwarded"] for i in (0, 1))
    assert forwarded == 0, f"{forwarded} requests crossed shards"
    oracle = _ShardingInfo(0, 2, "org.apache.cassandra.dht.Murmur3Partitioner",
                           "biased-token-round-robin", 12, 19042, None)
    expected = {0: 0, 1: 0}
    for k in range(n):
        expected[oracle.shard_id_from_token(murmur3(struct.pack(">i", k)))] += 2
    for shard in (0, 1):
        got = after[shard]["replica_ops"] - before[shard]["replica_ops"]
        assert got == expected[shard], (shard, got, expected)
    c.shutdown()
