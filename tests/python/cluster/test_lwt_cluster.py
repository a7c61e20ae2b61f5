"""Lightweight transactions and counters on a 3-node cluster (TESSERA_TEST_CLUSTER=1).

Its own cluster (`pytest-lwt`, nodes at 127.0.8.1-3 unless TESSERA_TEST_LWT_BASE_IP says
otherwise), one DC, RF=3, two shards per node (so the Paxos verbs also hop to the owner
shard). One WhiteList session per node: every statement below is coordinated by the node
the thread talks to, so the races really are between coordinators.

- INSERT ... IF NOT EXISTS raced by threads on all three coordinators: exactly one
  [applied] = True per key, and a SERIAL read sees the winner's row;
- a CAS increment loop (UPDATE ... IF v = ?) from all three coordinators: the final value
  equals the number of successful CASes (no lost update);
- counter increments through all three coordinators: the exact total;
- one node killed (-9): LWT at SERIAL still works; two killed: Unavailable (2 required,
  1 alive).
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest
from cassandra import ConsistencyLevel as CL
from cassandra import Unavailable, WriteTimeout
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import (ConstantReconnectionPolicy, FallthroughRetryPolicy,
                                WhiteListRoundRobinPolicy)
from cassandra.query import SimpleStatement

from cluster_helpers import DOWN_WAIT, ENABLED, LOGDIR, ROOT, SCRIPT, SKIP_REASON, wait_until
from tessera_node import find_binary

pytestmark = pytest.mark.timeout(180)

NAME = "pytest-lwt"
BASE_IP = os.environ.get("TESSERA_TEST_LWT_BASE_IP", "127.0.8.")
KS = "ks_lwt"
NODES = ("node1", "node2", "node3")


def script(*args, timeout=90, check=True):
    cmd = [sys.executable, str(SCRIPT), "--root", str(ROOT), "-c", NAME, *args]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"$ {' '.join(cmd)}\nexit {r.returncode}\n{r.stdout}{r.stderr}")
    return r


@pytest.fixture(scope="module")
def lwt_cluster():
    if not ENABLED:
        pytest.skip(SKIP_REASON)
    if (ROOT / NAME / "cluster.json").is_file():
        script("remove", NAME, check=False)
    shutil.rmtree(ROOT / NAME, ignore_errors=True)
    script("create", NAME, "--dcs", "1", "--nodes", "3", "--racks", "1", "--base-ip", BASE_IP,
           "--bin", str(find_binary()), "--memtable-mb", "16", "--smp", "2")
    meta = json.loads((ROOT / NAME / "cluster.json").read_text())
    nodes = {n["name"]: n["address"] for n in meta["nodes"]}
    for name in nodes:
        with open(ROOT / NAME / name / "cassandra.yaml", "a") as f:
            # Contention is the point of these tests: give CAS rounds time to win.
            f.write("cas_contention_timeout_in_ms: 10000\n")
    try:
        script("start", timeout=120)
        yield nodes
    finally:
        LOGDIR.mkdir(parents=True, exist_ok=True)
        for name in nodes:
            src = ROOT / NAME / name / "node.log"
            if src.is_file():
                shutil.copyfile(src, LOGDIR / f"lwt-{name}.log")
        if os.environ.get("TESSERA_TEST_CLUSTER_KEEP") != "1":
            script("remove", NAME, check=False)


_clusters = []


def session_for(addr):
    """A session that only ever talks to `addr`."""
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([addr]),
                               retry_policy=FallthroughRetryPolicy(), request_timeout=30)
    c = Cluster(contact_points=[addr], execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                reconnection_policy=ConstantReconnectionPolicy(0.5, None), connect_timeout=5,
                control_connection_timeout=5, schema_metadata_enabled=False,
                token_metadata_enabled=False, protocol_version=4)
    _clusters.append(c)
    return c.connect()


@pytest.fixture(scope="module")
def sessions(lwt_cluster):
    out = {n: wait_until(lambda a=a: session_for(a), 30, 1, f"connect {n}")
           for n, a in lwt_cluster.items()}
    wait_until(lambda: all(len(list(s.execute("SELECT peer FROM system.peers"))) == 2
                           for s in out.values()), 40, 0.5, "every node to see the other two")
    s = out["node1"]
    s.execute(f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = "
              "{'class': 'NetworkTopologyStrategy', 'dc1': 3}")
    s.execute(f"CREATE TABLE IF NOT EXISTS {KS}.owners (k int PRIMARY KEY, owner text)")
    s.execute(f"CREATE TABLE IF NOT EXISTS {KS}.cas (k int PRIMARY KEY, v int)")
    s.execute(f"CREATE TABLE IF NOT EXISTS {KS}.hits (k int PRIMARY KEY, n counter)")
    s.execute(f"CREATE TABLE IF NOT EXISTS {KS}.kill (k int PRIMARY KEY, v int)")
    for name, sess in out.items():
        for t in ("owners", "cas", "hits", "kill"):
            wait_until(lambda ss=sess, t=t: ss.execute(f"SELECT * FROM {KS}.{t} LIMIT 1") or True,
                       30, 0.5, f"schema of {t} on {name}")
    yield out
    for c in _clusters:
        c.shutdown()


def stmt(cql, cl=CL.QUORUM, serial=CL.SERIAL):
    return SimpleStatement(cql, consistency_level=cl, serial_consistency_level=serial)


def run_threads(n, target):
    errors = []

    def wrap(i):
        try:
            target(i)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"thread {i}: {e!r}")
    threads = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors


def test_insert_if_not_exists_race_has_one_winner(sessions):
    keys, per_node = 12, 3
    n = per_node * len(NODES)
    barrier = threading.Barrier(n)
    applied = {k: [] for k in keys_range(keys)}
    unknown = {k: [] for k in keys_range(keys)}
    lock = threading.Lock()

    def worker(i):
        s = sessions[NODES[i % len(NODES)]]
        me = f"w{i}"
        for k in keys_range(keys):
            barrier.wait(30)
            try:
                r = s.execute(stmt(f"INSERT INTO {KS}.owners (k, owner) VALUES ({k}, '{me}') "
                                   "IF NOT EXISTS")).one()
                with lock:
                    if r[0]:
                        applied[k].append(me)
            except WriteTimeout:
                with lock:
                    unknown[k].append(me)
    run_threads(n, worker)
    reader = sessions["node2"]
    for k in keys_range(keys):
        assert len(applied[k]) <= 1, f"key {k}: {applied[k]} all won"
        row = reader.execute(stmt(f"SELECT owner FROM {KS}.owners WHERE k = {k}",
                                  cl=CL.SERIAL)).one()
        assert row is not None, f"key {k}: no row"
        if applied[k]:
            assert row.owner == applied[k][0], (k, row.owner, applied[k])
        else:
            assert row.owner in unknown[k], (k, row.owner, unknown[k])
    # Timeouts are legal under contention, but they must be rare with a 10 s budget.
    assert sum(len(v) for v in unknown.values()) <= keys, unknown


def keys_range(n):
    return range(100, 100 + n)


def test_cas_increment_loop_loses_no_update(sessions):
    key, per_node, each = 1, 2, 12
    n = per_node * len(NODES)
    sessions["node1"].execute(stmt(f"INSERT INTO {KS}.cas (k, v) VALUES ({key}, 0)"))
    done = [0] * n
    unknown = [0] * n

    def worker(i):
        s = sessions[NODES[i % len(NODES)]]
        cur = s.execute(stmt(f"SELECT v FROM {KS}.cas WHERE k = {key}", cl=CL.SERIAL)).one().v
        while done[i] + unknown[i] < each:
            try:
                r = s.execute(stmt(f"UPDATE {KS}.cas SET v = {cur + 1} WHERE k = {key} "
                                   f"IF v = {cur}")).one()
            except WriteTimeout:
                unknown[i] += 1
                cur = s.execute(stmt(f"SELECT v FROM {KS}.cas WHERE k = {key}",
                                     cl=CL.SERIAL)).one().v
                continue
            if r[0]:
                done[i] += 1
                cur += 1
            else:
                cur = r.v  # the value that made the condition fail
    run_threads(n, worker)
    final = sessions["node3"].execute(stmt(f"SELECT v FROM {KS}.cas WHERE k = {key}",
                                           cl=CL.SERIAL)).one().v
    ok, lost = sum(done), sum(unknown)
    assert ok + lost == n * each
    assert ok <= final <= ok + lost, (final, ok, lost)
    if lost == 0:
        assert final == ok == n * each


def test_counters_through_every_coordinator_are_exact(sessions):
    keys, per_node, each = (1, 2, 3), 2, 40
    n = per_node * len(NODES)

    def worker(i):
        s = sessions[NODES[i % len(NODES)]]
        for j in range(each):
            k = keys[j % len(keys)]
            s.execute(stmt(f"UPDATE {KS}.hits SET n = n + 1 WHERE k = {k}"))
    run_threads(n, worker)
    total = 0
    for k in keys:
        for name in NODES:
            row = sessions[name].execute(stmt(f"SELECT n FROM {KS}.hits WHERE k = {k}",
                                              cl=CL.ALL)).one()
            assert row is not None
        total += row.n
    assert total == n * each, total


def test_serial_read_sees_last_commit(sessions):
    s1, s2 = sessions["node1"], sessions["node3"]
    for v in range(5):
        r = s1.execute(stmt(f"INSERT INTO {KS}.kill (k, v) VALUES (7, {v}) IF NOT EXISTS"
                            if v == 0 else f"UPDATE {KS}.kill SET v = {v} WHERE k = 7 "
                            f"IF v = {v - 1}", cl=CL.ONE)).one()
        assert r[0], r
        # Commit at ONE: only one replica is sure to have it, but SERIAL still sees it.
        got = s2.execute(stmt(f"SELECT v FROM {KS}.kill WHERE k = 7", cl=CL.SERIAL)).one()
        assert got.v == v


def test_lwt_with_nodes_down(lwt_cluster, sessions):
    s1 = sessions["node1"]
    s1.execute(stmt(f"INSERT INTO {KS}.kill (k, v) VALUES (1, 0) IF NOT EXISTS"))
    script("kill", "node3")
    # A quorum (2 of 3) is alive: LWT keeps working at SERIAL, before and after node1 notices.
    for v in range(1, 4):
        r = s1.execute(stmt(f"UPDATE {KS}.kill SET v = {v} WHERE k = 1 IF v = {v - 1}")).one()
        assert r[0], r
    assert s1.execute(stmt(f"SELECT v FROM {KS}.kill WHERE k = 1", cl=CL.SERIAL)).one().v == 3
    script("kill", "node2")

    def unavailable():
        try:
            s1.execute(stmt(f"UPDATE {KS}.kill SET v = 99 WHERE k = 1 IF v = 3"))
        except Unavailable as e:
            return e
        except WriteTimeout:
            return None  # node1 does not know node2 is down yet
        raise AssertionError("a CAS with one replica of three alive succeeded")
    e = wait_until(unavailable, DOWN_WAIT, 0.5, "Unavailable from node1")
    assert (e.required_replicas, e.alive_replicas) == (2, 1), e
    assert e.consistency == CL.SERIAL, e
    with pytest.raises(Unavailable):
        s1.execute(stmt(f"SELECT v FROM {KS}.kill WHERE k = 1", cl=CL.SERIAL))
    # Nothing was applied by the failed attempts.
    assert s1.execute(stmt(f"SELECT v FROM {KS}.kill WHERE k = 1", cl=CL.ONE)).one().v == 3
