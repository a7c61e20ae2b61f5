"""A 2-DC x 2-node cluster driven by the DataStax driver (runs with TESSERA_TEST_CLUSTER=1).

Layout (scripts/tessera-cluster create --dcs 2 --nodes 2 --racks 2): node1 dc1/rack1 (seed),
node2 dc1/rack2, node3 dc2/rack1 (seed), node4 dc2/rack2, at BASE_IP+K. 2 x 2 rather than
the issue's 2 x 3: six nodes plus the driver are too slow on the 2-core test machines.
Keyspace: NetworkTopologyStrategy {'dc1': 2, 'dc2': 2}, so every node holds every row and
LOCAL_QUORUM needs both nodes of a DC.

The tests run in file order and share the cluster: test_kill_dc2_node kills node4 and
test_restart_dc2_node brings it back.
"""

import os
import re
import time

import pytest
from cassandra import ConsistencyLevel as CL
from cassandra import Unavailable
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import (ConstantReconnectionPolicy, DCAwareRoundRobinPolicy,
                                FallthroughRetryPolicy, WhiteListRoundRobinPolicy)
from cassandra.query import SimpleStatement

from cluster_helpers import DOWN_WAIT, wait_until

pytestmark = pytest.mark.timeout(60)

KS = "ks_cluster"
RF = {"dc1": 2, "dc2": 2}
NUM_TOKENS = 16
VICTIM = "node4"  # dc2, not a seed

# rows written while VICTIM was down, checked at ALL after it is back: key -> value
_written_while_down = {}


def _profile(lbp):
    # Fallthrough: an Unavailable must reach the test, not be retried on another host.
    return ExecutionProfile(load_balancing_policy=lbp, retry_policy=FallthroughRetryPolicy(),
                            request_timeout=15)


def _cluster(contact_points, lbp, **kw):
    return Cluster(contact_points=contact_points,
                   execution_profiles={EXEC_PROFILE_DEFAULT: _profile(lbp)},
                   reconnection_policy=ConstantReconnectionPolicy(1.0, None),
                   connect_timeout=5, control_connection_timeout=5,
                   max_schema_agreement_wait=20, **kw)


def q(session, cql, cl, params=None):
    return session.execute(SimpleStatement(cql, consistency_level=cl), params)


def coordinator_dc(lc, result):
    host = result.response_future.coordinator_host
    return lc.by_addr[str(host.address)]["dc"] if host is not None else None


# ---------------------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="module")
def node_sessions(local_cluster):
    """address -> a session that only ever talks to that node (WhiteList policy)."""
    clusters, sessions = [], {}
    for addr in local_cluster.addresses():
        c = _cluster([addr], WhiteListRoundRobinPolicy([addr]),
                     schema_metadata_enabled=False, token_metadata_enabled=False)
        clusters.append(c)
        sessions[addr] = c.connect()
    yield sessions
    for c in clusters:
        c.shutdown()


def _peers(session):
    return list(session.execute(
        "SELECT peer, rpc_address, data_center, rack, host_id, tokens, schema_version "
        "FROM system.peers"))


def _local(session):
    return session.execute(
        "SELECT host_id, data_center, rack, tokens, schema_version, cluster_name "
        "FROM system.local WHERE key = 'local'").one()


@pytest.fixture(scope="module")
def converged(local_cluster, node_sessions):
    """Waits (up to 30 s) until every node's system.peers lists the other nodes; True if so."""
    n = len(local_cluster.nodes)
    try:
        wait_until(lambda: all(len(_peers(s)) == n - 1 for s in node_sessions.values()),
                   timeout=30, what="every node's system.peers to list the other nodes")
        return True
    except AssertionError:
        return False


@pytest.fixture(scope="module")
def dc_sessions(local_cluster, converged):
    """dc -> a session with DCAwareRoundRobinPolicy(local_dc=dc), contact points in that DC."""
    clusters, sessions = [], {}
    for dc in local_cluster.dcs():
        c = _cluster(local_cluster.addresses(dc), DCAwareRoundRobinPolicy(local_dc=dc))
        clusters.append(c)
        sessions[dc] = c.connect()
    yield sessions
    for c in clusters:
        c.shutdown()


@pytest.fixture(scope="module")
def ks(dc_sessions):
    s = dc_sessions["dc1"]
    s.execute(f"DROP KEYSPACE IF EXISTS {KS}")
    rf = ", ".join(f"'{dc}': {n}" for dc, n in RF.items())
    s.execute(f"CREATE KEYSPACE {KS} WITH replication = "
              f"{{'class': 'NetworkTopologyStrategy', {rf}}}")
    s.execute(f"CREATE TABLE {KS}.kv (k int PRIMARY KEY, v text)")
    return KS


# ---------------------------------------------------------------------------------------
# nodetool

STATUS_LINE = re.compile(r"^([UD][NLJM])\s+(\S+)\s")


def parse_status(text):
    """`nodetool status` output -> {address: (state, dc)}."""
    out, dc = {}, None
    for line in text.splitlines():
        if line.startswith("Datacenter:"):
            dc = line.split(":", 1)[1].strip()
            continue
        m = STATUS_LINE.match(line)
        if m:
            out[m.group(2)] = (m.group(1), dc)
    return out


def status_from(lc, node):
    r = lc.nodetool(node, "status", check=False)
    if r.returncode != 0:
        raise AssertionError(f"nodetool status on {node} failed: {r.stdout}{r.stderr}")
    return parse_status(r.stdout), r.stdout


def expect_status(lc, node, down=(), timeout=15):
    """Polls `nodetool status` on `node` until every node is listed in its DC, UN except `down` (DN)."""
    want = {n["address"]: ("DN" if n["name"] in down else "UN", n["dc"]) for n in lc.nodes}
    seen = {}

    def check():
        got, text = status_from(lc, node)
        seen["text"] = text
        return got == want

    try:
        wait_until(check, timeout=timeout, interval=0.5, what=f"nodetool status on {node}")
    except AssertionError as e:
        raise AssertionError(f"{e}\nwanted {want}\n--- nodetool status on {node} ---\n"
                             f"{seen.get('text', '(no answer)')}") from None
    return seen["text"]


# ---------------------------------------------------------------------------------------
# (a) membership as system.peers and the driver see it

def test_peers_and_driver_metadata(local_cluster, node_sessions, converged):
    lc = local_cluster
    locals_ = {addr: _local(s) for addr, s in node_sessions.items()}
    for addr, row in locals_.items():
        n = lc.by_addr[addr]
        assert (row.data_center, row.rack) == (n["dc"], n["rack"]), f"system.local on {addr}"
        assert row.cluster_name == "pytest-cluster"
        assert row.host_id is not None
        assert len(row.tokens) == NUM_TOKENS, f"{addr} owns {len(row.tokens)} tokens"
    assert len({r.host_id for r in locals_.values()}) == len(locals_), "host ids must differ"
    all_tokens = [t for r in locals_.values() for t in r.tokens]
    assert len(set(all_tokens)) == len(all_tokens), "two nodes share a token"

    problems = []
    for addr, s in node_sessions.items():
        rows = {str(r.peer): r for r in _peers(s)}
        others = set(lc.addresses()) - {addr}
        if set(rows) != others:
            problems.append(f"{addr}: system.peers lists {sorted(rows)}, want {sorted(others)}")
            continue
        for peer, r in rows.items():
            n, ref = lc.by_addr[peer], locals_[peer]
            got = (str(r.rpc_address), r.data_center, r.rack, r.host_id, set(r.tokens or ()))
            want = (peer, n["dc"], n["rack"], ref.host_id, set(ref.tokens))
            if got != want:
                problems.append(f"{addr}: peer {peer} is {got[:4]} (+{len(got[4])} tokens), "
                                f"want {want[:4]} (+{len(want[4])} tokens)")
    assert converged and not problems, "\n".join(problems) or "peers did not converge"

    c = _cluster(lc.addresses("dc1"), DCAwareRoundRobinPolicy(local_dc="dc1"))
    try:
        c.connect()
        hosts = {str(h.address): h for h in c.metadata.all_hosts()}
        assert set(hosts) == set(lc.addresses())
        assert {h.datacenter for h in hosts.values()} == {"dc1", "dc2"}
        for addr, h in hosts.items():
            n = lc.by_addr[addr]
            assert (h.datacenter, h.rack, h.host_id) == (n["dc"], n["rack"], locals_[addr].host_id)
        assert len(c.metadata.token_map.ring) == NUM_TOKENS * len(lc.nodes)
    finally:
        c.shutdown()


# ---------------------------------------------------------------------------------------
# (b) LOCAL_QUORUM across DCs

def test_local_quorum_write_dc1_read_dc2(local_cluster, dc_sessions, ks):
    dc1, dc2 = dc_sessions["dc1"], dc_sessions["dc2"]
    keys = range(20)
    for k in keys:
        r = q(dc1, f"INSERT INTO {ks}.kv (k, v) VALUES (%s, %s)", CL.LOCAL_QUORUM, (k, f"v{k}"))
        assert coordinator_dc(local_cluster, r) == "dc1"

    def read_all():
        got = {}
        for k in keys:
            r = q(dc2, f"SELECT v FROM {ks}.kv WHERE k = %s", CL.LOCAL_QUORUM, (k,))
            assert coordinator_dc(local_cluster, r) == "dc2"
            row = r.one()
            got[k] = row.v if row else None
        assert got == {k: f"v{k}" for k in keys}, got
        return True

    # dc1's LOCAL_QUORUM does not wait for dc2: allow the cross-DC copy a moment.
    wait_until(read_all, timeout=10, what="dc2 LOCAL_QUORUM reads of rows written in dc1")


# ---------------------------------------------------------------------------------------
# (c) schema made on one node is seen on all

def _schema_versions(node_sessions):
    out = {}
    for addr, s in node_sessions.items():
        out[addr] = {"local": _local(s).schema_version,
                     "peers": {str(p.peer): p.schema_version for p in _peers(s)}}
    return out


def test_schema_agreement(local_cluster, node_sessions, dc_sessions, ks):
    lc = local_cluster
    # DDL through the DC-aware sessions: the driver waits for schema agreement only when
    # its schema metadata is enabled (node_sessions have it off).
    r = dc_sessions["dc2"].execute(f"CREATE TABLE {ks}.schema_t (k int PRIMARY KEY, a text)")
    assert coordinator_dc(lc, r) == "dc2"
    assert r.response_future.is_schema_agreed, "driver's schema-agreement wait timed out"

    def columns_everywhere(cols):
        for s in node_sessions.values():
            got = {row.column_name for row in s.execute(
                "SELECT column_name FROM system_schema.columns "
                "WHERE keyspace_name = %s AND table_name = 'schema_t'", (ks,))}
            if got != cols:
                return False
        return True

    wait_until(lambda: columns_everywhere({"k", "a"}), timeout=15,
               what="schema_t (created in dc2) on every node")
    r = dc_sessions["dc1"].execute(f"ALTER TABLE {ks}.schema_t ADD b int")
    assert coordinator_dc(lc, r) == "dc1"
    assert r.response_future.is_schema_agreed, "driver's schema-agreement wait timed out"
    wait_until(lambda: columns_everywhere({"k", "a", "b"}), timeout=15,
               what="column b (added in dc1) on every node")

    def agreed():
        v = _schema_versions(node_sessions)
        versions = {x["local"] for x in v.values()}
        versions |= {sv for x in v.values() for sv in x["peers"].values()}
        assert len(versions) == 1 and None not in versions, v
        return True

    wait_until(agreed, timeout=15, what="one schema_version in system.local and system.peers")

    # the new column is usable through a coordinator in the other DC
    q(node_sessions[lc.by_name["node4"]["address"]],
      f"INSERT INTO {ks}.schema_t (k, a, b) VALUES (1, 'x', 2)", CL.LOCAL_QUORUM)
    row = wait_until(lambda: q(node_sessions[lc.by_name["node1"]["address"]],
                               f"SELECT a, b FROM {ks}.schema_t WHERE k = 1", CL.ALL).one(),
                     timeout=10, what="row written on node4 read at ALL on node1")
    assert (row.a, row.b) == ("x", 2)


def _tables_on(session, ks):
    return {r.table_name for r in session.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (ks,))}


def _wait_tables_everywhere(node_sessions, ks, present=(), absent=(), timeout=20, what=""):
    def check():
        for addr, s in node_sessions.items():
            got = _tables_on(s, ks)
            assert set(present) <= got and not (set(absent) & got), f"{addr}: {sorted(got)}"
        v = _schema_versions(node_sessions)
        versions = {x["local"] for x in v.values()}
        versions |= {sv for x in v.values() for sv in x["peers"].values()}
        assert len(versions) == 1 and None not in versions, v
        return True

    wait_until(check, timeout=timeout, interval=0.5, what=what)


def test_concurrent_ddl_converges(local_cluster, node_sessions, ks):
    """DDL made at the same moment on nodes of different DCs is merged, not lost: every
    node ends with every table and one schema_version (last change wins per table)."""
    import threading
    lc = local_cluster
    plan = [("node1", "conc_a"), ("node3", "conc_b"), ("node2", "conc_c"), ("node4", "doomed")]
    errors = []
    barrier = threading.Barrier(len(plan))

    def create(node, table):
        try:
            s = node_sessions[lc.by_name[node]["address"]]
            barrier.wait(timeout=10)
            s.execute(f"CREATE TABLE {ks}.{table} (k int PRIMARY KEY, v int)")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{node} {table}: {e!r}")

    threads = [threading.Thread(target=create, args=p) for p in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    _wait_tables_everywhere(node_sessions, ks, present=[t for _, t in plan],
                            what="tables created concurrently on 4 nodes, on every node")
    # each is usable through a coordinator that did not create it
    for node, table in plan:
        other = lc.by_name["node1" if node != "node1" else "node3"]["address"]
        q(node_sessions[other], f"INSERT INTO {ks}.{table} (k, v) VALUES (1, 1)", CL.ALL)


# ---------------------------------------------------------------------------------------
# (f) nodetool status, everyone up

def test_nodetool_status_all_up(local_cluster, converged):
    text = expect_status(local_cluster, "node1")
    assert "Datacenter: dc1" in text and "Datacenter: dc2" in text
    expect_status(local_cluster, "node3")


# ---------------------------------------------------------------------------------------
# (d) a dc2 node killed

def until_unavailable(session, cql, cl, timeout, t0, what):
    """Repeats a statement until it fails with Unavailable; returns that exception.

    Until the coordinator marks the dead node down it answers with timeouts instead."""
    outcomes = []

    def attempt():
        try:
            q(session, cql, cl)
        except Unavailable as e:
            return e
        except Exception as e:  # noqa: BLE001 - reported if it never turns into Unavailable
            outcomes.append(f"{time.monotonic() - t0:.1f}s: {type(e).__name__}: {e}")
            return None
        outcomes.append(f"{time.monotonic() - t0:.1f}s: succeeded")
        return None

    try:
        return wait_until(attempt, timeout=timeout, interval=0.5, what=what)
    except AssertionError as err:
        raise AssertionError(f"{err}\nlast attempts (time since kill -9):\n"
                             + "\n".join(outcomes[-6:])) from None


@pytest.mark.timeout(max(60, DOWN_WAIT + 45))
def test_kill_dc2_node(local_cluster, node_sessions, dc_sessions, ks):
    lc = local_cluster
    dc1, dc2 = dc_sessions["dc1"], dc_sessions["dc2"]
    q(dc1, f"INSERT INTO {ks}.kv (k, v) VALUES (100, 'before')", CL.ALL)
    lc.kill(VICTIM)
    t0 = time.monotonic()

    e = until_unavailable(dc2, f"INSERT INTO {ks}.kv (k, v) VALUES (101, 'lq')", CL.LOCAL_QUORUM,
                          DOWN_WAIT, t0,
                          f"LOCAL_QUORUM writes in dc2 to get Unavailable after kill -9 {VICTIM}")
    marked_down_after = time.monotonic() - t0
    print(f"{VICTIM} marked down (LOCAL_QUORUM Unavailable in dc2) {marked_down_after:.1f}s after kill -9")
    assert (e.consistency, e.required_replicas, e.alive_replicas) == (CL.LOCAL_QUORUM, 2, 1), \
        f"{e} (after {marked_down_after:.1f}s)"

    with pytest.raises(Unavailable) as ei:
        q(dc2, f"SELECT v FROM {ks}.kv WHERE k = 100", CL.LOCAL_QUORUM)
    assert (ei.value.required_replicas, ei.value.alive_replicas) == (2, 1), ei.value

    # dc1 still has both replicas
    q(dc1, f"INSERT INTO {ks}.kv (k, v) VALUES (102, 'dc1-lq')", CL.LOCAL_QUORUM)
    _written_while_down[102] = "dc1-lq"
    assert q(dc1, f"SELECT v FROM {ks}.kv WHERE k = 100", CL.LOCAL_QUORUM).one().v == "before"
    assert q(dc1, f"SELECT v FROM {ks}.kv WHERE k = 102", CL.LOCAL_QUORUM).one().v == "dc1-lq"

    # EACH_QUORUM needs a quorum in dc2 too: Unavailable from either dc1 coordinator (each
    # runs its own failure detector, so allow it a few more seconds to convict node4)
    for n in lc.nodes:
        if n["dc"] != "dc1":
            continue
        s = node_sessions[n["address"]]
        e = until_unavailable(s, f"INSERT INTO {ks}.kv (k, v) VALUES (103, 'eq')", CL.EACH_QUORUM,
                              10, t0, f"EACH_QUORUM writes through {n['name']} to get Unavailable")
        assert (e.consistency, e.required_replicas, e.alive_replicas) == \
            (CL.EACH_QUORUM, 2, 1), e
        with pytest.raises(Unavailable):
            q(s, f"SELECT v FROM {ks}.kv WHERE k = 100", CL.EACH_QUORUM)

    # ONE (and LOCAL_ONE) through the surviving dc2 node
    r = q(dc2, f"INSERT INTO {ks}.kv (k, v) VALUES (104, 'one')", CL.ONE)
    assert coordinator_dc(lc, r) == "dc2"
    _written_while_down[104] = "one"
    assert q(dc2, f"SELECT v FROM {ks}.kv WHERE k = 100", CL.ONE).one().v == "before"
    assert q(dc2, f"SELECT v FROM {ks}.kv WHERE k = 104", CL.LOCAL_ONE).one().v == "one"

    # (f) nodetool on a survivor in each DC shows the victim DN
    expect_status(lc, "node1", down={VICTIM})
    expect_status(lc, "node3", down={VICTIM}, timeout=5)

    # schema changed while the victim is down: it must not bring `doomed` back on restart
    s1 = node_sessions[lc.by_name["node1"]["address"]]
    s1.execute(f"DROP TABLE IF EXISTS {ks}.doomed")
    s1.execute(f"CREATE TABLE IF NOT EXISTS {ks}.born_while_down (k int PRIMARY KEY)")


# ---------------------------------------------------------------------------------------
# (e) ... and restarted

def test_restart_dc2_node(local_cluster, node_sessions, dc_sessions, ks):
    lc = local_cluster
    dc1, dc2 = dc_sessions["dc1"], dc_sessions["dc2"]
    victim_addr = lc.by_name[VICTIM]["address"]
    lc.start(VICTIM)  # no-op if test_kill_dc2_node failed before killing it
    deadline = time.monotonic() + 45

    def left():
        return max(1.0, deadline - time.monotonic())

    def driver_sees_up():
        h = [h for h in dc2.cluster.metadata.all_hosts() if str(h.address) == victim_addr]
        return bool(h) and h[0].is_up

    wait_until(driver_sees_up, timeout=left(), what=f"the driver to mark {VICTIM} up")

    want = {100: "before", **_written_while_down}

    def read_at_all():
        # through every node as coordinator: the restarted one must see the others up too
        for addr, s in node_sessions.items():
            got = {k: q(s, f"SELECT v FROM {ks}.kv WHERE k = %s", CL.ALL, (k,)).one()
                   for k in want}
            got = {k: (r.v if r else None) for k, r in got.items()}
            assert got == want, f"coordinator {addr}: {got}"
        return True

    wait_until(read_at_all, timeout=left(), interval=0.5,
               what=f"reads at ALL through every node after {VICTIM} restarted")

    # the drop and the create it missed reach it; its stale copy of `doomed` is not merged back
    _wait_tables_everywhere(node_sessions, ks, present=["born_while_down"], absent=["doomed"],
                            timeout=left(), what=f"schema changes made while {VICTIM} was down")

    q(dc2, f"INSERT INTO {ks}.kv (k, v) VALUES (105, 'after')", CL.LOCAL_QUORUM)
    assert q(dc2, f"SELECT v FROM {ks}.kv WHERE k = 105", CL.LOCAL_QUORUM).one().v == "after"
    q(dc1, f"INSERT INTO {ks}.kv (k, v) VALUES (106, 'eq')", CL.EACH_QUORUM)
    assert q(dc2, f"SELECT v FROM {ks}.kv WHERE k = 106", CL.ALL).one().v == "eq"

    # (f) nodetool: UN everywhere again, seen from dc1 and from the restarted node
    expect_status(lc, "node1", timeout=left())
    expect_status(lc, VICTIM, timeout=left())
