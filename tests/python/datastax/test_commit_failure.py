"""`commit_failure_policy` with a commitlog disk that really fills up.

The commitlog directory is a small loop-mounted ext4 image (O_DIRECT needs a
real filesystem). A filler file takes the free space; writes go on until the
log needs a new segment, whose preallocation fails with ENOSPC:

* `stop_commit` / `ignore`: those writes fail with an error naming the
  commitlog failure, reads keep working, and once the filler is deleted writes
  succeed again without a restart;
* `stop`: the CQL port closes, the admin API stays up and says why;
* `die`: the process exits with a non-zero status.

In every case each acknowledged write (`commitlog_sync: batch`) is there after
a `kill -9` and a restart. Needs root and a loop device; skipped otherwise.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest
from cassandra.cluster import Cluster, NoHostAvailable

from tessera_node import TesseraNode, port_open

ADDR = "127.0.0.70"
VALUE = "x" * 3000


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB ext4 filesystem mounted on a loop device; unmounted always."""
    if os.geteuid() != 0:
        pytest.skip("mounting a loop-device filesystem needs root")
    if not shutil.which("mkfs.ext4") or not shutil.which("mount"):
        pytest.skip("mkfs.ext4 or mount is not installed")
    img = tmp_path / "commitlog.img"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    r = run("mkfs.ext4", "-q", "-F", str(img))
    if r.returncode != 0:
        pytest.skip(f"mkfs.ext4 failed: {r.stderr.strip()}")
    r = run("mount", "-o", "loop", str(img), str(mnt))
    if r.returncode != 0:
        pytest.skip(f"cannot loop-mount an image here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        for _ in range(20):
            if run("umount", str(mnt)).returncode == 0:
                break
            time.sleep(0.5)
        else:
            run("umount", "-l", str(mnt))


def fill(path):
    """Writes `path` until the filesystem is full (as root: reserved blocks too)."""
    chunk = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break
        while True:  # the last partial megabyte
            try:
                f.write(b"\0" * 4096)
            except OSError:
                break
        try:
            os.fsync(f.fileno())
        except OSError:
            pass


def api(node, path):
    url = f"http://{node.addr}:{node.api_port}{path}"
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def start_node(tmp_path, disk, policy):
    node = TesseraNode(ADDR, workdir=tmp_path / "node", extra_args=[
        "--commitlog-directory", str(disk / "commitlog"),
        "--commitlog-segment-size-in-mb", "1",
        "--commitlog-sync", "batch",
        "--commit-failure-policy", policy,
    ])
    node.start()
    return node


def connect(node):
    c = Cluster([node.addr], port=node.port, connect_timeout=10, protocol_version=4)
    s = c.connect()
    s.default_timeout = 10
    return c, s


def kill9(node):
    if node.alive():
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait()
    if node._log:
        node._log.close()
        node._log = None


def commitlog_error(e):
    """The error a driver sees for a write the commitlog refused."""
    if isinstance(e, NoHostAvailable):  # ServerError, retried on no other host
        return " ".join(str(v) for v in e.errors.values())
    return str(e)


def write_until_failure(session, acked, start=0, limit=5000):
    insert = session.prepare("INSERT INTO cf.t (k, v) VALUES (?, ?)")
    for k in range(start, start + limit):
        try:
            session.execute(insert, (k, VALUE))
        except Exception as e:  # noqa: BLE001 - the failure is the point
            return k, e
        acked.add(k)
    raise AssertionError(f"{limit} writes never needed a new commitlog segment")


@pytest.fixture
def node_box():
    nodes = []
    yield nodes
    for n in nodes:
        kill9(n)


def setup_schema(session):
    session.execute("CREATE KEYSPACE cf WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute("CREATE TABLE cf.t (k int PRIMARY KEY, v text)")


def fill_disk_until_refused(session, disk, acked):
    """Creates the schema, writes once (the first segment is created), fills the disk and
    writes until the log needs a segment it cannot create; returns (filler, failed_at, error)."""
    setup_schema(session)
    session.execute("INSERT INTO cf.t (k, v) VALUES (-1, 'before')")
    acked.add(-1)
    filler = disk / "filler"
    fill(filler)
    failed_at, err = write_until_failure(session, acked)
    assert len(acked) > 10, "writes into the preallocated segment must succeed"
    return filler, failed_at, err


def check_all_there(node, acked):
    c, s = connect(node)
    try:
        rows = {r.k for r in s.execute("SELECT k FROM cf.t")}
    finally:
        c.shutdown()
    missing = acked - rows
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {sorted(missing)[:10]}"


@pytest.mark.parametrize("policy", ["stop_commit", "ignore"])
def test_full_disk_fails_writes_then_recovers_without_restart(
        tmp_path, small_disk, node_box, policy):
    node = start_node(tmp_path, small_disk, policy)
    node_box.append(node)
    c, s = connect(node)
    acked = set()
    try:
        filler, failed_at, err = fill_disk_until_refused(s, small_disk, acked)
        msg = commitlog_error(err)
        assert "commitlog failure" in msg and "No space left on device" in msg, msg
        # Writes keep failing promptly while the disk is full...
        t0 = time.monotonic()
        with pytest.raises(Exception) as again:
            s.execute("INSERT INTO cf.t (k, v) VALUES (%s, %s)", (failed_at + 1, VALUE))
        assert "commitlog failure" in commitlog_error(again.value)
        assert time.monotonic() - t0 < 5
        # ...reads are served...
        assert s.execute("SELECT v FROM cf.t WHERE k = -1").one().v == "before"
        assert s.execute("SELECT k FROM cf.t WHERE k = %s", (max(acked),)).one() is not None
        # ...and the admin API says why.
        info = api(node, "/storage_service/info")
        assert "writes refused until a segment can be created" in info["commitlog_state"], info
        assert info["native_transport_active"] is True
        # Space comes back: writes succeed again, no restart.
        os.unlink(filler)
        deadline = time.monotonic() + 15
        k = failed_at + 100
        while True:
            try:
                s.execute("INSERT INTO cf.t (k, v) VALUES (%s, %s)", (k, VALUE))
                acked.add(k)
                break
            except Exception as e:  # noqa: BLE001
                assert "commitlog failure" in commitlog_error(e)
                assert time.monotonic() < deadline, "writes never resumed after freeing space"
                time.sleep(0.2)
        for k in range(failed_at + 101, failed_at + 400):  # into further segments
            s.execute("INSERT INTO cf.t (k, v) VALUES (%s, %s)", (k, VALUE))
            acked.add(k)
        assert api(node, "/storage_service/info")["commitlog_state"] == "OK"
    finally:
        c.shutdown()
    assert node.alive()
    # Every acknowledged write survives a kill -9 (batch mode: synced before the ack).
    kill9(node)
    node.start()
    check_all_there(node, acked)


def test_full_disk_under_stop_closes_cql_and_keeps_the_admin_api(
        tmp_path, small_disk, node_box):
    node = start_node(tmp_path, small_disk, "stop")
    node_box.append(node)
    c, s = connect(node)
    acked = set()
    try:
        filler, _, _ = fill_disk_until_refused(s, small_disk, acked)
        # The transports stop: the CQL port closes, the process stays up.
        deadline = time.monotonic() + 10
        while port_open(node.addr, node.port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not port_open(node.addr, node.port), "the CQL port must close"
        assert node.alive()
        info = api(node, "/storage_service/info")
        assert info["native_transport_active"] is False, info
        assert info["gossip_active"] is False, info
        assert "commitlog failure" in info["transports_stopped_reason"], info
        assert "No space left on device" in info["transports_stopped_reason"], info
        assert "writes refused until restart" in info["commitlog_state"], info
        out = run(str(node.binary.parent / "tessera-nodetool"), "-h", node.addr,
                  "-p", str(node.api_port), "info")
        assert out.returncode == 0, out.stderr
        assert "Native Transport active: false" in out.stdout, out.stdout
        assert "Transports stopped     : commitlog failure" in out.stdout, out.stdout
    finally:
        c.shutdown()
    os.unlink(filler)
    kill9(node)
    node.start()
    check_all_there(node, acked)


def test_full_disk_under_die_exits(tmp_path, small_disk, node_box):
    node = start_node(tmp_path, small_disk, "die")
    node_box.append(node)
    c, s = connect(node)
    acked = set()
    try:
        filler, _, _ = fill_disk_until_refused(s, small_disk, acked)
        status = node.proc.wait(timeout=15)
        assert status != 0, "die must exit with a non-zero status"
    finally:
        c.shutdown()
    assert "commit_failure_policy: die" in node.log_tail(50)
    os.unlink(filler)
    kill9(node)
    node.start()
    check_all_there(node, acked)
