"""The coordinator's replication pipeline on a 2-DC x 3-node cluster (TESSERA_TEST_CLUSTER=1).

Its own cluster (`pytest-repl`, nodes at 127.0.6.1-6 unless TESSERA_TEST_REPL_BASE_IP says
otherwise), separate from test_cluster.py's: node1-3 in dc1, node4-6 in dc2, one rack per DC.
node1 runs with `hinted_handoff_enabled: false`, so a replica that misses a write coordinated
by node1 stays stale until a read repairs it.

- one Forward message per remote DC per write (counters of the admin API), reaching every
  dc2 replica;
- digest reads: a QUORUM read returns the newest value and repairs the stale replica;
- hinted handoff: a replica killed with -9 gets the writes it missed once it is back;
- CL ANY succeeds with every replica of the key down (a hint is stored), ONE does not.
"""

import json
import os
import shutil
import time
import urllib.request

import pytest
from cassandra import ConsistencyLevel as CL
from cassandra import Unavailable
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import (ConstantReconnectionPolicy, FallthroughRetryPolicy,
                                WhiteListRoundRobinPolicy)
from cassandra.query import SimpleStatement

from cluster_helpers import DOWN_WAIT, ENABLED, LOGDIR, ROOT, SCRIPT, SKIP_REASON, wait_until
from tessera_node import find_binary

import subprocess
import sys

pytestmark = pytest.mark.timeout(120)

NAME = "pytest-repl"
BASE_IP = os.environ.get("TESSERA_TEST_REPL_BASE_IP", "127.0.6.")
KS = "ks_repl"
N = 20  # writes per phase


def script(*args, timeout=90, check=True):
    cmd = [sys.executable, str(SCRIPT), "--root", str(ROOT), "-c", NAME, *args]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"$ {' '.join(cmd)}\nexit {r.returncode}\n{r.stdout}{r.stderr}")
    return r


class Repl:
    def __init__(self):
        meta = json.loads((ROOT / NAME / "cluster.json").read_text())
        self.dir = ROOT / NAME
        self.nodes = {n["name"]: n for n in meta["nodes"]}

    def addr(self, name):
        return self.nodes[name]["address"]

    def name_of(self, addr):
        return next(n for n, v in self.nodes.items() if v["address"] == addr)

    def api(self, name, path, method="GET"):
        req = urllib.request.Request(f"http://{self.addr(name)}:10000{path}", method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
            return json.loads(body) if body.strip() else None


@pytest.fixture(scope="module")
def repl():
    if not ENABLED:
        pytest.skip(SKIP_REASON)
    if (ROOT / NAME / "cluster.json").is_file():
        script("remove", NAME, check=False)
    shutil.rmtree(ROOT / NAME, ignore_errors=True)
    script("create", NAME, "--dcs", "2", "--nodes", "3", "--racks", "1", "--base-ip", BASE_IP,
           "--bin", str(find_binary()), "--memtable-mb", "16")
    lc = Repl()
    with open(lc.dir / "node1" / "cassandra.yaml", "a") as f:
        f.write("hinted_handoff_enabled: false\n")
    try:
        script("start", timeout=120)
        yield lc
    finally:
        LOGDIR.mkdir(parents=True, exist_ok=True)
        for name in lc.nodes:
            src = lc.dir / name / "node.log"
            if src.is_file():
                shutil.copyfile(src, LOGDIR / f"repl-{name}.log")
        if os.environ.get("TESSERA_TEST_CLUSTER_KEEP") != "1":
            script("remove", NAME, check=False)


_clusters = []


def session_for(lc, name):
    """A session that only ever talks to `name`."""
    addr = lc.addr(name)
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([addr]),
                               retry_policy=FallthroughRetryPolicy(), request_timeout=15)
    c = Cluster(contact_points=[addr], execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                reconnection_policy=ConstantReconnectionPolicy(0.5, None), connect_timeout=5,
                control_connection_timeout=5, schema_metadata_enabled=False,
                token_metadata_enabled=False)
    _clusters.append(c)
    return c.connect()


@pytest.fixture(scope="module")
def sessions(repl):
    def all_peers_seen():
        return all(len(list(s.execute("SELECT peer FROM system.peers"))) == 5
                   for s in out.values())
    out = {name: wait_until(lambda n=name: session_for(repl, n), 30, 1, f"connect {name}")
           for name in repl.nodes}
    wait_until(all_peers_seen, 40, 0.5, "every node to see the other five")
    yield out
    for c in _clusters:
        c.shutdown()


def q(session, cql, cl):
    return session.execute(SimpleStatement(cql, consistency_level=cl))


def until_ok(session, cql, cl, timeout, what):
    """Retries `cql` while the coordinator still answers Unavailable (its gossip view lags)."""
    def attempt():
        try:
            return q(session, cql, cl) or True
        except Unavailable:
            return False
    return wait_until(attempt, timeout, 0.5, what)


@pytest.fixture(scope="module")
def ks(sessions):
    s = sessions["node1"]
    s.execute(f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = "
              "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 3}")
    s.execute(f"CREATE TABLE IF NOT EXISTS {KS}.kv (k int PRIMARY KEY, v text)")
    s.execute(f"CREATE KEYSPACE IF NOT EXISTS {KS}_any WITH replication = "
              "{'class': 'NetworkTopologyStrategy', 'dc2': 1}")
    s.execute(f"CREATE TABLE IF NOT EXISTS {KS}_any.kv (k int PRIMARY KEY, v text)")
    # Every node knows both tables before the tests write.
    for name, sess in sessions.items():
        wait_until(lambda ss=sess: q(ss, f"SELECT * FROM {KS}_any.kv WHERE k = 0", CL.ONE)
                   is not None, 30, 0.5, f"schema on {name}")
    return KS


def fwd(lc, name):
    return lc.api(name, "/storage_proxy/forwarding")


DC2 = ("node4", "node5", "node6")


def test_one_forward_message_per_remote_dc(repl, sessions, ks):
    before = {n: fwd(repl, n) for n in repl.nodes}
    s = sessions["node1"]
    for k in range(N):
        q(s, f"INSERT INTO {ks}.kv (k, v) VALUES ({k}, 'eq{k}')", CL.EACH_QUORUM)
    for k in range(N, 2 * N):
        q(s, f"INSERT INTO {ks}.kv (k, v) VALUES ({k}, 'lq{k}')", CL.LOCAL_QUORUM)
    writes = 2 * N

    def delta(name, key):
        return fwd(repl, name)[key] - before[name][key]

    # Relayed acks of LOCAL_QUORUM writes may still be on their way.
    wait_until(lambda: delta("node1", "acks_received") == 2 * writes, 10, 0.2,
               "node1 to receive the relayed replicas' acks")
    c = fwd(repl, "node1")
    assert c["forward_sent"] - before["node1"]["forward_sent"] == writes, c
    assert c["cross_dc_direct"] - before["node1"]["cross_dc_direct"] == 0, c
    assert c["forward_fallbacks"] - before["node1"]["forward_fallbacks"] == 0, c
    assert c["acks_late"] - before["node1"]["acks_late"] == 0, c
    # dc2: exactly one forwarder per write, which relays to the two other replicas.
    as_fwd = sum(delta(n, "forward_received_as_forwarder") for n in DC2)
    relayed = sum(delta(n, "forward_relayed") for n in DC2)
    received = sum(delta(n, "forward_received") for n in DC2)
    assert (as_fwd, relayed, received) == (writes, 2 * writes, 3 * writes)
    # dc1 nodes never forward (they are reached directly).
    assert sum(delta(n, "forward_received") for n in ("node1", "node2", "node3")) == 0
    # Every dc2 replica has every row (reading each replica alone).
    for n in DC2:
        rows = {r.k: r.v for r in q(sessions[n], f"SELECT k, v FROM {ks}.kv", CL.ONE)}
        for k in range(writes):
            assert rows.get(k) == (f"eq{k}" if k < N else f"lq{k}"), (n, k, rows.get(k))


def test_quorum_read_returns_newest_and_repairs(repl, sessions, ks):
    s1 = sessions["node1"]  # hinted_handoff_enabled: false
    key = 1000
    q(s1, f"INSERT INTO {ks}.kv (k, v) VALUES ({key}, 'old')", CL.ALL)
    # The periodic commitlog may not have synced it yet: make it survive the kill -9.
    repl.api("node2", "/storage_service/flush", method="POST")
    script("kill", "node2")
    # node2 misses this write: node1 keeps no hints.
    q(s1, f"INSERT INTO {ks}.kv (k, v) VALUES ({key}, 'new')", CL.ONE)
    script("start", "node2", timeout=120)
    s2 = sessions["node2"]
    sel = f"SELECT v FROM {ks}.kv WHERE k = {key}"
    # node2 alone still has the old value: it really missed the write.
    row = wait_until(lambda: q(s2, sel, CL.ONE).one(), 30, 0.5, "node2 to serve reads again")
    assert row.v == "old"
    before = repl.api("node2", "/storage_proxy/read_repair")
    rows = until_ok(s2, sel, CL.QUORUM, 30, "a QUORUM read through node2")
    assert rows.one().v == "new"
    after = repl.api("node2", "/storage_proxy/read_repair")
    assert after["digest_mismatches"] > before["digest_mismatches"], (before, after)
    assert after["read_repairs"] > before["read_repairs"], (before, after)
    # The repair was blocking: node2's own copy is new now.
    assert q(s2, sel, CL.ONE).one().v == "new"
    # Matching digests: no second round.
    m = repl.api("node2", "/storage_proxy/read_repair")["digest_mismatches"]
    assert q(s2, sel, CL.QUORUM).one().v == "new"
    assert repl.api("node2", "/storage_proxy/read_repair")["digest_mismatches"] == m


def test_hinted_handoff_replays_to_restarted_replica(repl, sessions, ks):
    s2 = sessions["node2"]
    victim = "node5"
    hints_dir = repl.dir / "node2" / "hints"
    before = repl.api("node2", "/hinted_handoff/stats")
    script("kill", victim)
    for k in range(2000, 2000 + N):
        q(s2, f"INSERT INTO {ks}.kv (k, v) VALUES ({k}, 'h{k}')", CL.ONE)
    # A write the victim did not ack is hinted at once if node2 knows it is down, else after
    # the write timeout (2 s).
    stats = wait_until(
        lambda: (st := repl.api("node2", "/hinted_handoff/stats"))["stored"]
        - before["stored"] >= N and st, 15, 0.3, "node2 to store the hints")
    assert stats["pending"], stats
    assert list(hints_dir.glob("*.hints")), "no hints file on disk"
    script("start", victim, timeout=120)
    wait_until(lambda: repl.api("node2", "/hinted_handoff/stats")["delivered"]
               - before["delivered"] >= N, 40, 0.5, "node2 to deliver the hints")
    wait_until(lambda: not repl.api("node2", "/hinted_handoff/stats")["pending"], 10, 0.5,
               "delivered hints to be deleted")
    assert not list(hints_dir.glob("*.hints"))
    s5 = sessions[victim]
    got = wait_until(lambda: {r.k: r.v for r in q(s5, f"SELECT k, v FROM {ks}.kv", CL.ONE)},
                     30, 0.5, "node5 to serve reads again")
    missing = [k for k in range(2000, 2000 + N) if got.get(k) != f"h{k}"]
    assert not missing, f"node5 lacks {missing}"


@pytest.mark.timeout(int(DOWN_WAIT + 150))
def test_any_succeeds_with_every_replica_down(repl, sessions, ks):
    s2 = sessions["node2"]
    key = 7
    replicas = repl.api("node2", f"/storage_service/natural_endpoints/{ks}_any?cf=kv&key={key}")
    assert len(replicas) == 1, replicas
    victim = repl.name_of(replicas[0])
    assert victim in DC2
    before = repl.api("node2", "/hinted_handoff/stats")
    script("kill", victim)
    # Once node2 sees the replica down, ONE is Unavailable...
    def one_unavailable():
        try:
            q(s2, f"INSERT INTO {ks}_any.kv (k, v) VALUES ({key}, 'one')", CL.ONE)
            return False
        except Unavailable:
            return True
    wait_until(one_unavailable, DOWN_WAIT, 0.5, "ONE to be Unavailable with the replica down")
    # ...and ANY succeeds, with a hint stored (ONE's attempts above were hinted too).
    before = repl.api("node2", "/hinted_handoff/stats")
    q(s2, f"INSERT INTO {ks}_any.kv (k, v) VALUES ({key}, 'any')", CL.ANY)
    st = repl.api("node2", "/hinted_handoff/stats")
    assert st["stored"] == before["stored"] + 1, (before, st)
    script("start", victim, timeout=120)
    s = sessions[victim]
    sel = f"SELECT v FROM {ks}_any.kv WHERE k = {key}"
    wait_until(lambda: (r := q(s, sel, CL.ONE).one()) is not None and r.v == "any", 40, 0.5,
               "the ANY write to reach the replica by its hint")


def until_unavailable(session, cql, cl, timeout, what, alive=None):
    """Retries `cql` until the coordinator answers Unavailable (with `alive` live replicas,
    when given: its failure detector convicts the killed nodes one by one within seconds);
    returns the exception."""
    box = {}

    def attempt():
        try:
            q(session, cql, cl)
            return False
        except Unavailable as e:
            box["e"] = e
            return alive is None or e.alive_replicas == alive

    wait_until(attempt, timeout, 0.5, what)
    return box["e"]


@pytest.mark.timeout(int(3 * DOWN_WAIT + 60))
def test_dc2_down_then_dc1_minority(repl, sessions, ks):
    """The issue's availability matrix on NTS {'dc1': 3, 'dc2': 3}: with dc2 down, dc1 keeps
    serving LOCAL_QUORUM while EACH_QUORUM and QUORUM are Unavailable; with two of dc1's nodes
    down too, LOCAL_QUORUM in dc1 is Unavailable. (Last test: it leaves nodes down.)"""
    s1 = sessions["node1"]
    q(s1, f"INSERT INTO {ks}.kv (k, v) VALUES (3000, 'before')", CL.ALL)
    for victim in DC2:
        script("kill", victim)
    e = until_unavailable(s1, f"INSERT INTO {ks}.kv (k, v) VALUES (3001, 'eq')",
                          CL.EACH_QUORUM, DOWN_WAIT, "EACH_QUORUM Unavailable with dc2 down", alive=0)
    assert (e.consistency, e.required_replicas, e.alive_replicas) == (CL.EACH_QUORUM, 2, 0), e
    e = until_unavailable(s1, f"SELECT v FROM {ks}.kv WHERE k = 3000", CL.QUORUM, 10,
                          "QUORUM Unavailable with dc2 down", alive=3)
    assert (e.consistency, e.required_replicas, e.alive_replicas) == (CL.QUORUM, 4, 3), e
    with pytest.raises(Unavailable):
        q(s1, f"INSERT INTO {ks}.kv (k, v) VALUES (3002, 'q')", CL.QUORUM)
    # dc1 keeps serving LOCAL_QUORUM, through each of its nodes
    for name in ("node1", "node2", "node3"):
        s = sessions[name]
        q(s, f"INSERT INTO {ks}.kv (k, v) VALUES (3003, '{name}')", CL.LOCAL_QUORUM)
        assert q(s, f"SELECT v FROM {ks}.kv WHERE k = 3003", CL.LOCAL_QUORUM).one().v == name
        assert q(s, f"SELECT v FROM {ks}.kv WHERE k = 3000", CL.LOCAL_QUORUM).one().v == "before"
    # two of dc1's three nodes down: LOCAL_QUORUM in dc1 is Unavailable, LOCAL_ONE still works
    script("kill", "node2")
    script("kill", "node3")
    e = until_unavailable(s1, f"INSERT INTO {ks}.kv (k, v) VALUES (3004, 'lq')",
                          CL.LOCAL_QUORUM, DOWN_WAIT, "LOCAL_QUORUM Unavailable with 2 of 3 dc1 nodes down",
                          alive=1)
    assert (e.consistency, e.required_replicas, e.alive_replicas) == (CL.LOCAL_QUORUM, 2, 1), e
    with pytest.raises(Unavailable):
        q(s1, f"SELECT v FROM {ks}.kv WHERE k = 3000", CL.LOCAL_QUORUM)
    assert q(s1, f"SELECT v FROM {ks}.kv WHERE k = 3000", CL.LOCAL_ONE).one().v == "before"
