"""Replicas that fail a write: WriteFailure at once when the consistency level
becomes unreachable, success when it does not (Cassandra's
AbstractWriteResponseHandler.onFailure: blockFor + failures > replicas).

Three nodes (127.0.10.1-3, one DC, RF 3, made with scripts/tessera-cluster as
cluster `wf-cluster`); node2's and node3's commitlogs live on small
loop-mounted disks that really fill up (`commit_failure_policy: stop_commit`),
so those replicas answer every write with a commitlog failure. node1
coordinates every request.

* node3 failing: QUORUM writes (2 of 3) keep succeeding, promptly;
* node2 and node3 failing: a QUORUM write answers WriteFailure (received 1,
  block_for 2, 2 failures; v5 reason map {node2: 0, node3: 0}) well before
  write_request_timeout_in_ms (10 s here); a ONE write still succeeds.

Needs root, mkfs.ext4 and loop devices; runs only with TESSERA_TEST_CLUSTER=1.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest
from cassandra import ConsistencyLevel, WriteFailure
from cassandra.cluster import Cluster, ExecutionProfile, EXEC_PROFILE_DEFAULT
from cassandra.policies import WhiteListRoundRobinPolicy, WriteType
from cassandra.query import SimpleStatement

from cluster_helpers import ENABLED, ROOT, SCRIPT, SKIP_REASON, wait_until
from tessera_node import find_binary

CNAME = "wf-cluster"
BASE_IP = "127.0.10."
ADDRS = [f"{BASE_IP}{k}" for k in (1, 2, 3)]
WRITE_TIMEOUT_MS = 10_000
VALUE = "x" * 3000


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def launcher(*args, timeout=120, check=True):
    cmd = [sys.executable, str(SCRIPT), "--root", str(ROOT), "-c", CNAME, *args]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"$ {' '.join(cmd)}\nexit {r.returncode}\n{r.stdout}{r.stderr}")
    return r


def make_disk(tmp_path, name):
    img, mnt = tmp_path / f"{name}.img", tmp_path / f"{name}-mnt"
    mnt.mkdir()
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    r = run("mkfs.ext4", "-q", "-F", str(img))
    if r.returncode != 0:
        pytest.skip(f"mkfs.ext4 failed: {r.stderr.strip()}")
    r = run("mount", "-o", "loop", str(img), str(mnt))
    if r.returncode != 0:
        pytest.skip(f"cannot loop-mount an image here: {r.stderr.strip()}")
    return mnt


def umount(mnt):
    for _ in range(20):
        if run("umount", str(mnt)).returncode == 0:
            return
        time.sleep(0.5)
    run("umount", "-l", str(mnt))


def fill(path):
    chunk = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 20, 4096):
            while True:
                try:
                    f.write(chunk[:size])
                except OSError:
                    break
        try:
            os.fsync(f.fileno())
        except OSError:
            pass


def commitlog_state(addr):
    with urllib.request.urlopen(f"http://{addr}:10000/storage_service/info", timeout=5) as r:
        return json.loads(r.read())["commitlog_state"]


@pytest.fixture
def cluster3(tmp_path):
    if not ENABLED:
        pytest.skip(SKIP_REASON)
    if os.geteuid() != 0 or not shutil.which("mkfs.ext4"):
        pytest.skip("loop-mounted commitlog disks need root and mkfs.ext4")
    if (ROOT / CNAME / "cluster.json").is_file():
        launcher("remove", CNAME, check=False)
    shutil.rmtree(ROOT / CNAME, ignore_errors=True)
    launcher("create", CNAME, "--dcs", "1", "--nodes", "3", "--base-ip", BASE_IP,
             "--bin", str(find_binary()), "--memtable-mb", "32",
             "--commitlog-segment-mb", "1",
             "--yaml", "commit_failure_policy=stop_commit",
             "--yaml", "commitlog_sync=batch",
             "--yaml", "commitlog_sync_batch_window_in_ms=2",
             "--yaml", f"write_request_timeout_in_ms={WRITE_TIMEOUT_MS}")
    disks = {}
    try:
        for node in ("node2", "node3"):
            mnt = make_disk(tmp_path, node)
            disks[node] = mnt
            (mnt / "commitlog").mkdir()
            cl = ROOT / CNAME / node / "commitlog"
            cl.rmdir()
            cl.symlink_to(mnt / "commitlog")
        launcher("start", timeout=180)
        yield disks
    finally:
        launcher("stop", timeout=120, check=False)
        launcher("remove", CNAME, check=False)
        for mnt in disks.values():
            umount(mnt)


def session(version):
    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([ADDRS[0]]),
                               request_timeout=30)
    c = Cluster([ADDRS[0]], protocol_version=version, connect_timeout=10,
                execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    return c, c.connect()


def quorum(query, params=None):
    return SimpleStatement(query, consistency_level=ConsistencyLevel.QUORUM), params


def write_until_refused(s, addr, start):
    """QUORUM writes (each must succeed) until `addr`'s commitlog refuses writes."""
    insert = s.prepare("INSERT INTO wf.t (k, v) VALUES (?, ?)")
    insert.consistency_level = ConsistencyLevel.QUORUM
    for k in range(start, start + 3000):
        t0 = time.monotonic()
        s.execute(insert, (k, VALUE))
        assert time.monotonic() - t0 < WRITE_TIMEOUT_MS / 2000, "a write waited for a timeout"
        if k % 50 == 0 and "refused" in commitlog_state(addr):
            return k
    raise AssertionError(f"{addr}'s commitlog never refused writes: {commitlog_state(addr)}")


def test_failing_replicas_and_quorum(cluster3):
    disks = cluster3
    c4, s4 = session(4)
    c5, s5 = session(5)
    try:
        s4.execute("CREATE KEYSPACE wf WITH replication = "
                   "{'class': 'SimpleStrategy', 'replication_factor': 3}")
        s4.execute("CREATE TABLE wf.t (k int PRIMARY KEY, v text)")
        wait_until(lambda: s5.execute("SELECT k FROM wf.t LIMIT 1") is not None, 30,
                   what="the table reaches the v5 session")
        # Every node up in node1's view (gossip settles after CQL opens).
        wait_until(lambda: s4.execute(*quorum(
            "INSERT INTO wf.t (k, v) VALUES (-1, 'before')")) is not None, 60,
            what="QUORUM writes through node1")

        # One failing replica: QUORUM (2 of 3) is still reachable and met.
        fill(disks["node3"] / "filler")
        k = write_until_refused(s4, ADDRS[2], 0)
        for j in range(k + 1, k + 21):
            s4.execute(*quorum("INSERT INTO wf.t (k, v) VALUES (%s, %s)", (j, VALUE)))

        # Two failing replicas: QUORUM is unreachable, and the answer comes at once.
        fill(disks["node2"] / "filler")
        insert = s4.prepare("INSERT INTO wf.t (k, v) VALUES (?, ?)")
        insert.consistency_level = ConsistencyLevel.QUORUM
        err = None
        for j in range(k + 100, k + 3100):
            t0 = time.monotonic()
            try:
                s4.execute(insert, (j, VALUE))
            except Exception as e:  # noqa: BLE001 - the failure is the point
                err, took = e, time.monotonic() - t0
                break
        assert err is not None, "writes never failed with two full commitlogs"
        assert isinstance(err, WriteFailure), f"{type(err).__name__}: {err}"
        assert took < WRITE_TIMEOUT_MS / 1000 / 3, f"WriteFailure took {took:.1f} s"
        assert err.consistency == ConsistencyLevel.QUORUM
        assert (err.required_responses, err.received_responses) == (2, 1), err
        assert err.failures == 2, err
        assert err.write_type == WriteType.SIMPLE, err
        assert "commitlog failure" in str(err), err

        # v5: the reason map names both failing replicas (UNKNOWN).
        t0 = time.monotonic()
        with pytest.raises(WriteFailure) as e5:
            s5.execute(*quorum("INSERT INTO wf.t (k, v) VALUES (%s, %s)", (99999, "y")))
        assert time.monotonic() - t0 < WRITE_TIMEOUT_MS / 1000 / 3
        assert e5.value.error_code_map == {ADDRS[1]: 0, ADDRS[2]: 0}, e5.value
        assert e5.value.failures == 2, e5.value

        # ONE needs only node1's ack: the failures leave it reachable.
        s4.execute(SimpleStatement("INSERT INTO wf.t (k, v) VALUES (99998, 'one')",
                                   consistency_level=ConsistencyLevel.ONE))
        row = s4.execute(SimpleStatement("SELECT v FROM wf.t WHERE k = 99998",
                                         consistency_level=ConsistencyLevel.ONE)).one()
        assert row is not None and row.v == "one"
    finally:
        c4.shutdown()
        c5.shutdown()
