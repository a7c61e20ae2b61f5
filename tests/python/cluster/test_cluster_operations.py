"""Cluster operations: repair, adding a datacenter (rebuild), removenode, removing a datacenter
(runs with TESSERA_TEST_CLUSTER=1).

Its own cluster `pytest-ops` on TESSERA_TEST_OPS_BASE_IP (default 127.0.9.) + K: node1 and
node2 in dc1 (seeds node1), every node with `hinted_handoff_enabled: false` (so only repair can
bring a missed write back), 16 tokens, ring_delay_ms 2000, and keyspace ks_ops at
NetworkTopologyStrategy {'dc1': 2}. The tests run in file order and share the cluster:

1. repair: node2 is killed -9; rows are inserted, overwritten and deleted at ONE through node1;
   node2 comes back still stale (checked); `nodetool repair ks_ops` on node1 reports mismatches
   and streamed partitions; every row (and every delete) then reads at ONE from node2 alone;
   a second repair finds nothing to do.
2. a new datacenter: node3 and node4 join dc2 with auto_bootstrap false (empty), the keyspace
   is altered to {'dc1': 2, 'dc2': 2}, `nodetool rebuild -- dc1` on each (after a rebuild from
   an unknown DC is refused), then every row reads at LOCAL_ONE from node3 alone and node4
   alone.
3. removenode: node5 bootstraps into dc2, rows are written (some have node5 but not node4 as a
   dc2 replica), node5 is killed -9, `removenode` of a live node is refused with Cassandra's
   message, `removenode <node5's host id>` on node1 streams; node5 leaves every node's
   `nodetool status`, system.peers and the driver's metadata; every row reads at LOCAL_ONE
   from node4 alone and node3 alone (its new replicas).
4. the datacenter goes away: ALTER to {'dc1': 2}, decommission node3 and node4; every row is
   intact at ONE on node1 alone and node2 alone.
"""

import os
import re
import shutil
import time

import pytest
from cassandra import ConsistencyLevel as CL
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import (ConstantReconnectionPolicy, FallthroughRetryPolicy,
                                RoundRobinPolicy, WhiteListRoundRobinPolicy)
from cassandra.query import SimpleStatement

from cluster_helpers import DOWN_WAIT, ENABLED, LOGDIR, ROOT, SKIP_REASON, run_script, wait_until
from tessera_node import find_binary

pytestmark = pytest.mark.timeout(240)

NAME = "pytest-ops"
BASE = os.environ.get("TESSERA_TEST_OPS_BASE_IP", "127.0.9.")
KS = "ks_ops"
ROWS = 300
STATUS_LINE = re.compile(r"^([UD][NLJM])\s+(\S+)\s")


def tool(*args, timeout=60, check=True):
    return run_script("-c", NAME, *args, timeout=timeout, check=check)


def nodetool(node, *args, check=True, timeout=60):
    return tool("nodetool", node, *args, check=check, timeout=timeout)


def addr(k):
    return f"{BASE}{k}"


def status(node):
    r = nodetool(node, "status", check=False)
    assert r.returncode == 0, f"nodetool status on {node}: {r.stdout}{r.stderr}"
    return {m.group(2): m.group(1) for m in map(STATUS_LINE.match, r.stdout.splitlines()) if m}


def expect_status(node, want, timeout=30):
    seen = {}

    def check():
        seen["got"] = status(node)
        return seen["got"] == want

    try:
        wait_until(check, timeout=timeout, interval=0.3, what=f"nodetool status on {node}")
    except AssertionError as e:
        raise AssertionError(f"{e}\nwanted {want}\ngot {seen.get('got')}") from None


def _cluster(points, lbp, **kw):
    return Cluster(contact_points=points, protocol_version=4,
                   execution_profiles={EXEC_PROFILE_DEFAULT: ExecutionProfile(
                       load_balancing_policy=lbp, retry_policy=FallthroughRetryPolicy(),
                       request_timeout=15)},
                   reconnection_policy=ConstantReconnectionPolicy(1.0, None),
                   connect_timeout=5, control_connection_timeout=5,
                   max_schema_agreement_wait=20, **kw)


def value(k, gen=0):
    return f"v{k}.{gen}-" + "x" * (k % 40)


@pytest.fixture(scope="module")
def ops():
    if not ENABLED:
        pytest.skip(SKIP_REASON)
    if (ROOT / NAME / "cluster.json").is_file():
        tool("remove", NAME, check=False)
    shutil.rmtree(ROOT / NAME, ignore_errors=True)
    tool("create", NAME, "--dcs", "1", "--nodes", "2", "--base-ip", BASE,
         "--bin", str(find_binary()), "--memtable-mb", "32", "--num-tokens", "16",
         "--ring-delay-ms", "2000", "--yaml", "hinted_handoff_enabled=false")
    state = {"clusters": [], "sessions": {}}

    def only(k):
        """A session whose every request is coordinated by node k (made once)."""
        if k not in state["sessions"]:
            c = _cluster([addr(k)], WhiteListRoundRobinPolicy([addr(k)]),
                         schema_metadata_enabled=False, token_metadata_enabled=False)
            state["clusters"].append(c)
            s = c.connect(KS)
            p = s.prepare("SELECT v FROM kv WHERE k = ?")
            state["sessions"][k] = (c, s, p)
        return state["sessions"][k]

    def forget(k):
        c, _, _ = state["sessions"].pop(k, (None, None, None))
        if c is not None:
            c.shutdown()
            state["clusters"].remove(c)

    def read_all(k, cl, expected):
        """Keys whose row read at `cl` through node k alone differs from `expected`."""
        _, s, p = only(k)
        p.consistency_level = cl
        bad = []
        for key, want in expected.items():
            row = s.execute(p, (key,)).one()
            got = None if row is None else row.v
            if got != want:
                bad.append((key, want, got))
        return bad

    state.update(only=only, forget=forget, read_all=read_all)
    try:
        tool("start", timeout=90)
        expect_status("node1", {addr(1): "UN", addr(2): "UN"})
        # DDL through node1 alone; node2 must know the table before it coordinates.
        ddl_cluster = _cluster([addr(1)], WhiteListRoundRobinPolicy([addr(1)]))
        state["clusters"].append(ddl_cluster)
        ddl = ddl_cluster.connect()
        ddl.execute(f"CREATE KEYSPACE {KS} WITH replication = "
                    "{'class': 'NetworkTopologyStrategy', 'dc1': 2}")
        ddl.execute(f"CREATE TABLE {KS}.kv (k int PRIMARY KEY, v text)")
        wait_until(lambda: only(2), timeout=20, what="node2 to know the table")
        main = _cluster([addr(1), addr(2)], RoundRobinPolicy())
        state["clusters"].append(main)
        s = main.connect()
        ins = s.prepare(f"INSERT INTO {KS}.kv (k, v) VALUES (?, ?)")
        ins.consistency_level = CL.ALL
        for k in range(ROWS):
            s.execute(ins, (k, value(k)))
        state.update(main=main, s=s, ddl=ddl, expected={k: value(k) for k in range(ROWS)})
        yield state
    finally:
        for c in state.get("clusters", []):
            c.shutdown()
        LOGDIR.mkdir(parents=True, exist_ok=True)
        for k in range(1, 6):
            src = ROOT / NAME / f"node{k}" / "node.log"
            if src.is_file():
                shutil.copyfile(src, LOGDIR / f"ops-node{k}.log")
        if os.environ.get("TESSERA_TEST_CLUSTER_KEEP") != "1":
            tool("remove", NAME, check=False)


def repair_numbers(text):
    m = re.search(r"Ranges checked: (\d+), mismatched: (\d+); subranges synced: (\d+); "
                  r"partitions streamed: (\d+)", text)
    assert m, text
    assert "Repair completed successfully" in text, text
    return tuple(int(x) for x in m.groups())


def test_repair_brings_back_missed_writes_and_deletes(ops):
    s, expected = ops["only"](1)[1], ops["expected"]
    # node2's rows survive its kill -9 (the commitlog's write-behind); flushing too makes
    # node1 keep part in SSTables, part in memtables, and node2 read from SSTables.
    nodetool("node1", "flush")
    nodetool("node2", "flush")
    ops["forget"](2)
    tool("kill", "node2")
    wait_until(lambda: status("node1").get(addr(2)) == "DN", timeout=DOWN_WAIT, interval=0.3,
               what="node1 to see node2 down")
    # With node2 down (and no hints), writes at ONE reach node1 only.
    one = lambda cql: SimpleStatement(cql, consistency_level=CL.ONE)  # noqa: E731
    deleted = list(range(0, 20))
    overwritten = list(range(20, 40))
    added = list(range(ROWS, ROWS + 60))
    for k in deleted:
        s.execute(one(f"DELETE FROM {KS}.kv WHERE k = {k}"))
        expected[k] = None
    for k in overwritten + added:
        s.execute(one(f"INSERT INTO {KS}.kv (k, v) VALUES ({k}, '{value(k, 1)}')"))
        expected[k] = value(k, 1)
    tool("start", "node2", timeout=90)
    expect_status("node1", {addr(1): "UN", addr(2): "UN"})
    expect_status("node2", {addr(1): "UN", addr(2): "UN"})

    # node2 alone is stale: the check below can fail.
    stale = ops["read_all"](2, CL.ONE, expected)
    stale_keys = {k for k, _, _ in stale}
    assert set(deleted + overwritten + added) <= stale_keys, sorted(stale_keys)[:20]

    r = nodetool("node1", "repair", KS, timeout=120)
    checked, mismatched, synced, streamed = repair_numbers(r.stdout)
    assert checked > 0 and mismatched > 0 and synced > 0, r.stdout
    assert streamed >= len(deleted) + len(overwritten) + len(added), r.stdout

    missing = ops["read_all"](2, CL.ONE, expected)
    assert not missing, f"{len(missing)} rows still wrong on node2 after repair: {missing[:10]}"
    # Every replica now holds the same data: a second repair streams nothing.
    again = repair_numbers(nodetool("node2", "repair", "-pr", "--", KS, "kv").stdout)
    assert again[1:] == (0, 0, 0), again
    # A table that does not exist is an error, not a silent success.
    r = nodetool("node1", "repair", KS, "nope", check=False)
    assert r.returncode != 0 and "Unknown table nope" in r.stdout + r.stderr, r.stdout + r.stderr


def test_add_datacenter_with_rebuild(ops):
    expected = ops["expected"]
    for _ in (3, 4):
        tool("add", "--dc", "dc2", "--no-bootstrap", "--start", timeout=90)
    both = {addr(k): "UN" for k in range(1, 5)}
    for k in (1, 2, 3, 4):
        expect_status(f"node{k}", both)
    ops["ddl"].execute(f"ALTER KEYSPACE {KS} WITH replication = "
                       "{'class': 'NetworkTopologyStrategy', 'dc1': 2, 'dc2': 2}")
    wait_until(lambda: "ks_ops" in [r.keyspace_name for r in ops["only"](3)[1].execute(
        "SELECT keyspace_name, replication FROM system_schema.keyspaces")
        if "dc2" in str(r.replication)], timeout=20, what="node3 to see the new replication")
    # Empty before the rebuild (so the check below can fail).
    before = ops["read_all"](3, CL.LOCAL_ONE, {k: expected[k] for k in range(40, 60)})
    assert len(before) == 20, before

    r = nodetool("node3", "rebuild", "--", "dc9", check=False)
    assert r.returncode != 0 and "Provided datacenter 'dc9' is not a valid datacenter" in \
        r.stdout + r.stderr, r.stdout + r.stderr
    for k in (3, 4):
        r = nodetool(f"node{k}", "rebuild", "--", "dc1", timeout=120)
        assert re.search(r"Rebuild streamed [1-9]\d* partitions", r.stdout), r.stdout
    for k in (3, 4):
        missing = ops["read_all"](k, CL.LOCAL_ONE, expected)
        assert not missing, f"node{k} lacks {len(missing)} rows after rebuild: {missing[:10]}"


def test_removenode_restores_replicas(ops):
    s, main, expected = ops["s"], ops["main"], ops["expected"]
    tool("add", "--dc", "dc2", "--start", timeout=120)  # node5 bootstraps into dc2
    five = {addr(k): "UN" for k in range(1, 6)}
    expect_status("node1", five, timeout=60)
    expect_status("node4", five, timeout=30)
    ins = s.prepare(f"INSERT INTO {KS}.kv (k, v) VALUES (?, ?)")
    ins.consistency_level = CL.ALL
    new = range(ROWS + 100, ROWS + 250)
    for k in new:
        s.execute(ins, (k, value(k, 2)))
        expected[k] = value(k, 2)
    # Some of them have node5 but not node4 as a dc2 replica: node4 lacks them until removal.
    wait_until(lambda: len(main.metadata.all_hosts()) == 5, timeout=20,
               what="the driver to know node5")
    main.refresh_schema_metadata()

    def replicas(k):
        return {str(h.address) for h in main.metadata.get_replicas(KS, ins.bind((k, "")).routing_key)}

    gained = [k for k in new if addr(5) in replicas(k) and addr(4) not in replicas(k)]
    assert gained, "no row with node5 and without node4 among its replicas"
    host5 = {str(r.peer): r.host_id for r in ops["only"](1)[1].execute(
        "SELECT peer, host_id FROM system.peers")}[addr(5)]
    host1 = {str(r.peer): r.host_id for r in ops["only"](2)[1].execute(
        "SELECT peer, host_id FROM system.peers")}[addr(1)]

    tool("kill", "node5")
    r = nodetool("node2", "removenode", str(host1), check=False)
    assert r.returncode != 0
    assert (f"Node /{addr(1)} is alive and owns this ID. Use decommission command to remove it "
            "from the ring") in r.stdout + r.stderr, r.stdout + r.stderr
    wait_until(lambda: status("node1").get(addr(5)) == "DN", timeout=DOWN_WAIT, interval=0.3,
               what="node1 to see node5 down")
    assert "No removals in process" in nodetool("node1", "removenode", "status").stdout
    r = nodetool("node1", "removenode", str(host5), timeout=120)
    assert re.search(r"streamed [1-9]\d* partitions", r.stdout), r.stdout

    four = {addr(k): "UN" for k in range(1, 5)}
    for k in range(1, 5):
        expect_status(f"node{k}", four, timeout=30)
        peers = {str(r.peer) for r in ops["only"](k)[1].execute("SELECT peer FROM system.peers")}
        assert peers == {addr(j) for j in range(1, 5) if j != k}, (k, peers)
    wait_until(lambda: addr(5) not in {str(h.address) for h in main.metadata.all_hosts()},
               timeout=20, what="the driver to drop node5 (REMOVED_NODE)")
    # node4 and node3 are now the dc2 replicas of every row: each alone holds them all.
    for k in (4, 3):
        missing = ops["read_all"](k, CL.LOCAL_ONE, expected)
        assert not missing, f"node{k} lacks {len(missing)} rows after removenode " \
                            f"({len(gained)} moved to node4): {missing[:10]}"


def test_remove_datacenter(ops):
    expected = ops["expected"]
    ops["ddl"].execute(f"ALTER KEYSPACE {KS} WITH replication = "
                       "{'class': 'NetworkTopologyStrategy', 'dc1': 2}")
    time.sleep(1)  # the schema change reaches every node
    for k in (3, 4):
        ops["forget"](k)
        tool("decommission", f"node{k}", timeout=120)
    expect_status("node1", {addr(1): "UN", addr(2): "UN"}, timeout=30)
    for k in (1, 2):
        missing = ops["read_all"](k, CL.ONE, expected)
        assert not missing, f"node{k} lacks {len(missing)} rows: {missing[:10]}"
