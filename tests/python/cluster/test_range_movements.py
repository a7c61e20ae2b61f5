"""Joining and leaving the ring: bootstrap and decommission (runs with TESSERA_TEST_CLUSTER=1).

Its own 1-DC cluster of three nodes (node1 seed, node2, node3) on BASE+1..3 with
TESSERA_TEST_MOVEMENT_BASE_IP (default 127.0.5.), ring_delay_ms 2000, 16 tokens each, and a
keyspace at SimpleStrategy RF=2. The tests run in file order and share the cluster:

1. node4 is added with `tessera-cluster add`: it shows as UJ while it bootstraps, rows
   written meanwhile reach it as a pending replica, then it is UN, in every node's
   system.peers, in `nodetool ring` and `info`. Then node1..node3 are killed -9 and every row
   node4 replicates (per the driver's token map, cross-checked with `nodetool getendpoints`)
   is read at ONE from node4 alone, while a row it does not replicate is Unavailable.
2. The killed nodes come back; decommissioning node2 is refused while a keyspace has RF=4
   (Cassandra's message), then succeeds once it is RF=3: node2 exits, leaves system.peers,
   `nodetool status` and the driver's metadata, and every row is read at ONE from *each* of
   its replicas alone (so every new replica really holds it), and at QUORUM.
"""

import os
import re
import shutil
import socket
import time

import pytest
from cassandra import ConsistencyLevel as CL
from cassandra import Unavailable
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import (ConstantReconnectionPolicy, FallthroughRetryPolicy,
                                RoundRobinPolicy, WhiteListRoundRobinPolicy)
from cassandra.query import SimpleStatement

from cluster_helpers import DOWN_WAIT, ENABLED, LOGDIR, ROOT, SKIP_REASON, run_script, wait_until
from tessera_node import find_binary

pytestmark = pytest.mark.timeout(240)

NAME = "pytest-movement"
BASE = os.environ.get("TESSERA_TEST_MOVEMENT_BASE_IP", "127.0.5.")
KS = "ks_move"
ROWS = 400          # loaded before node4 joins
JOIN_ROWS = 150     # written while node4 bootstraps
NUM_TOKENS = 16

STATUS_LINE = re.compile(r"^([UD][NLJM])\s+(\S+)\s")


def tool(*args, timeout=60, check=True):
    return run_script("-c", NAME, *args, timeout=timeout, check=check)


def nodetool(node, *args, check=True):
    return tool("nodetool", node, *args, check=check)


def addr(k):
    return f"{BASE}{k}"


def parse_status(text):
    return {m.group(2): m.group(1) for m in map(STATUS_LINE.match, text.splitlines()) if m}


def status(node):
    r = nodetool(node, "status", check=False)
    assert r.returncode == 0, f"nodetool status on {node}: {r.stdout}{r.stderr}"
    return parse_status(r.stdout), r.stdout


def expect_status(node, want, timeout=30):
    seen = {}

    def check():
        got, seen["text"] = status(node)
        return got == want

    try:
        wait_until(check, timeout=timeout, interval=0.3, what=f"nodetool status on {node}")
    except AssertionError as e:
        raise AssertionError(f"{e}\nwanted {want}\n{seen.get('text')}") from None


def _cluster(points, lbp, **kw):
    return Cluster(contact_points=points, protocol_version=4,
                   execution_profiles={EXEC_PROFILE_DEFAULT: ExecutionProfile(
                       load_balancing_policy=lbp, retry_policy=FallthroughRetryPolicy(),
                       request_timeout=15)},
                   reconnection_policy=ConstantReconnectionPolicy(1.0, None),
                   connect_timeout=5, control_connection_timeout=5,
                   max_schema_agreement_wait=20, **kw)


def only(address):
    """A session whose every request is coordinated by `address`."""
    c = _cluster([address], WhiteListRoundRobinPolicy([address]),
                 schema_metadata_enabled=False, token_metadata_enabled=False)
    return c, c.connect()


def q(session, cql, cl, params=None):
    return session.execute(SimpleStatement(cql, consistency_level=cl), params)


def value(k):
    return f"v{k}-" + "x" * (k % 50)


@pytest.fixture(scope="module")
def movement():
    if not ENABLED:
        pytest.skip(SKIP_REASON)
    if (ROOT / NAME / "cluster.json").is_file():
        tool("remove", NAME, check=False)
    shutil.rmtree(ROOT / NAME, ignore_errors=True)
    tool("create", NAME, "--dcs", "1", "--nodes", "3", "--base-ip", BASE,
         "--bin", str(find_binary()), "--memtable-mb", "32", "--num-tokens", str(NUM_TOKENS),
         "--ring-delay-ms", "2000")
    state = {}
    try:
        tool("start", timeout=120)
        for k in (1, 2, 3):
            expect_status(f"node{k}", {addr(1): "UN", addr(2): "UN", addr(3): "UN"})
        yield state
    finally:
        for c in state.get("clusters", []):
            c.shutdown()
        LOGDIR.mkdir(parents=True, exist_ok=True)
        for k in range(1, 5):
            src = ROOT / NAME / f"node{k}" / "node.log"
            if src.is_file():
                shutil.copyfile(src, LOGDIR / f"movement-node{k}.log")
        if os.environ.get("TESSERA_TEST_CLUSTER_KEEP") != "1":
            tool("remove", NAME, check=False)


def test_bootstrap_streams_and_pending_writes(movement):
    main = _cluster([addr(1), addr(2), addr(3)], RoundRobinPolicy())
    movement.setdefault("clusters", []).append(main)
    s = main.connect()
    s.execute(f"CREATE KEYSPACE {KS} WITH replication = "
              "{'class': 'SimpleStrategy', 'replication_factor': 2}")
    s.execute(f"CREATE TABLE {KS}.kv (k int PRIMARY KEY, v text)")
    ins = s.prepare(f"INSERT INTO {KS}.kv (k, v) VALUES (?, ?)")
    ins.consistency_level = CL.ALL
    for k in range(ROWS):
        s.execute(ins, (k, value(k)))
    nodetool("node1", "flush")  # part of the data comes from SSTables, part from memtables

    tool("add", "--start", timeout=120)
    # node4 joins: UJ first (BOOT for at least ring_delay), and not a peer yet.
    wait_until(lambda: addr(4) in status("node1")[0], timeout=30, interval=0.2,
               what="node4 in nodetool status")
    first = status("node1")[0][addr(4)]
    assert first == "UJ", f"node4 first seen as {first}, expected UJ (joining)"
    # Like Cassandra, a bootstrapping node serves no clients until it has joined: its CQL
    # port is closed (if it already joined by now, it must say it is UN itself).
    try:
        socket.create_connection((addr(4), 9042), timeout=2).close()
        assert status("node4")[0].get(addr(4)) == "UN", "node4 accepted CQL while joining"
    except OSError:
        pass
    peers = {str(r.peer) for r in s.execute("SELECT peer FROM system.peers")}
    assert addr(4) not in peers or status("node1")[0][addr(4)] == "UN", peers
    # Writes while it streams: node4 gets them as a pending replica.
    for k in range(ROWS, ROWS + JOIN_ROWS):
        s.execute(ins, (k, value(k)))
    expect_status("node1", {addr(k): "UN" for k in range(1, 5)}, timeout=60)
    expect_status("node4", {addr(k): "UN" for k in range(1, 5)}, timeout=30)

    for k in (1, 2, 3):
        c, sk = only(addr(k))
        movement["clusters"].append(c)
        wait_until(lambda: addr(4) in {str(r.peer) for r in sk.execute(
            "SELECT peer FROM system.peers")}, timeout=20, what=f"node4 in node{k}'s system.peers")

    # nodetool ring: every token of every node; info: this node's facts.
    ring = nodetool("node1", "ring").stdout
    token_lines = [ln for ln in ring.splitlines() if ln.startswith(BASE)]
    assert len(token_lines) == 4 * NUM_TOKENS, ring
    assert {ln.split()[0] for ln in token_lines} == {addr(k) for k in range(1, 5)}, ring
    assert all(" Up " in ln and " Normal " in ln for ln in token_lines), ring
    info = nodetool("node4", "info").stdout
    assert re.search(r"^Gossip active\s*: true$", info, re.M), info
    assert re.search(r"^Data Center\s*: dc1$", info, re.M), info
    assert f"all {NUM_TOKENS} tokens" in info, info

    # Which keys node4 replicates: the driver's token map (it learnt about node4 from
    # NEW_NODE), checked against nodetool getendpoints for a few keys.
    wait_until(lambda: len(main.metadata.all_hosts()) == 4, timeout=20,
               what="the driver to know node4")
    main.refresh_nodes()
    main.refresh_schema_metadata()
    tm = main.metadata.token_map
    all_keys = range(ROWS + JOIN_ROWS)

    def replicas(k):
        return {str(h.address) for h in main.metadata.get_replicas(KS, ins.bind((k, "")).routing_key)}

    mine = [k for k in all_keys if addr(4) in replicas(k)]
    others = [k for k in all_keys if addr(4) not in replicas(k)]
    assert tm is not None and mine and others, (len(mine), len(others))
    for k in mine[:3] + others[:3]:
        eps = set(nodetool("node1", "getendpoints", KS, "kv", str(k)).stdout.split())
        assert eps == replicas(k), (k, eps, replicas(k))
    assert any(k >= ROWS for k in mine), "no key written during the bootstrap lands on node4"

    # Kill every original node: node4 alone must hold each of its rows.
    tool("kill", "node1")
    tool("kill", "node2")
    tool("kill", "node3")
    c4, s4 = only(addr(4))
    movement["clusters"].append(c4)
    sel = s4.prepare(f"SELECT v FROM {KS}.kv WHERE k = ?")
    sel.consistency_level = CL.ONE
    missing = [k for k in mine if (row := s4.execute(sel, (k,)).one()) is None or row.v != value(k)]
    assert not missing, f"node4 lacks {len(missing)} of its {len(mine)} rows: {missing[:20]}"
    # ... and the check can fail: a row node4 does not replicate is unavailable there.
    wait_until(lambda: status("node4")[0].get(addr(1)) == "DN", timeout=DOWN_WAIT,
               what="node4 to see node1 down")

    def unavailable():
        try:
            s4.execute(sel, (others[0],))
            return False
        except Unavailable:
            return True

    wait_until(unavailable, timeout=DOWN_WAIT, what="a row node4 does not hold to be Unavailable")


def test_decommission(movement):
    tool("start", timeout=120)
    want = {addr(k): "UN" for k in range(1, 5)}
    expect_status("node1", want, timeout=60)
    expect_status("node2", want, timeout=30)
    main = _cluster([addr(1), addr(3), addr(4)], RoundRobinPolicy())
    movement["clusters"].append(main)
    s = main.connect()

    # Refused while a keyspace needs every node.
    s.execute("CREATE KEYSPACE ks_all WITH replication = "
              "{'class': 'SimpleStrategy', 'replication_factor': 4}")
    # node2 was just restarted: the driver's schema-agreement wait may not have counted it,
    # so wait until node2 itself knows the keyspace before asking it to leave.
    c2, s2 = only(addr(2))
    movement["clusters"].append(c2)
    wait_until(lambda: s2.execute("SELECT keyspace_name FROM system_schema.keyspaces "
                                  "WHERE keyspace_name = 'ks_all'").one() is not None,
               timeout=20, what="ks_all on node2")
    r = nodetool("node2", "decommission", check=False)
    assert r.returncode != 0
    assert ("Not enough live nodes to maintain replication factor in keyspace ks_all "
            "(RF = 4, N = 4)") in r.stdout + r.stderr, r.stdout + r.stderr
    s.execute("ALTER KEYSPACE ks_all WITH replication = "
              "{'class': 'SimpleStrategy', 'replication_factor': 3}")
    time.sleep(1)  # the schema change reaches node2

    t0 = time.monotonic()
    tool("decommission", "node2", timeout=180)
    took = time.monotonic() - t0
    left = {addr(1): "UN", addr(3): "UN", addr(4): "UN"}
    for k in (1, 3, 4):
        expect_status(f"node{k}", left, timeout=30)
        c, sk = only(addr(k))
        movement["clusters"].append(c)
        peers = {str(r.peer) for r in sk.execute("SELECT peer FROM system.peers")}
        assert peers == {addr(j) for j in (1, 3, 4) if j != k}, (k, peers)
    wait_until(lambda: addr(2) not in {str(h.address) for h in main.metadata.all_hosts()},
               timeout=20, what="the driver to drop node2 (REMOVED_NODE)")

    # Every row, read at ONE from each of its replicas alone.
    main.refresh_schema_metadata()
    ins = s.prepare(f"INSERT INTO {KS}.kv (k, v) VALUES (?, ?)")
    per_node = {a: only(a) for a in (addr(1), addr(3), addr(4))}
    for c, _ in per_node.values():
        movement["clusters"].append(c)
    sels = {}
    for a, (_, sk) in per_node.items():
        p = sk.prepare(f"SELECT v FROM {KS}.kv WHERE k = ?")
        p.consistency_level = CL.ONE
        sels[a] = (sk, p)
    missing = []
    for k in range(ROWS + JOIN_ROWS):
        reps = {str(h.address) for h in main.metadata.get_replicas(KS, ins.bind((k, "")).routing_key)}
        assert len(reps) == 2 and addr(2) not in reps, (k, reps)
        for a in reps:
            sk, p = sels[a]
            row = sk.execute(p, (k,)).one()
            if row is None or row.v != value(k):
                missing.append((k, a))
    assert not missing, f"{len(missing)} (row, replica) pairs lack data: {missing[:20]}"
    rows = {r.k: r.v for r in q(s, f"SELECT k, v FROM {KS}.kv", CL.QUORUM)}
    assert rows == {k: value(k) for k in range(ROWS + JOIN_ROWS)}
    print(f"decommission of node2 took {took:.1f}s")
