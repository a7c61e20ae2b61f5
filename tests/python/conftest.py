"""Fixtures shared by the DataStax (datastax/) and the Scylla (scylla/) Python suites.

Both drivers install the Python package `cassandra` with the same public API, so the
fixtures below work in either venv. Each pytest session starts ONE node
(target/release/tessera) on $TESSERA_TEST_ADDR:$TESSERA_TEST_PORT (default
127.0.0.51:9042, so a developer's quick-start node on 127.0.0.1:9042 is left alone) with a
fresh temporary workdir, and stops it at the end. Its log goes to
$TESSERA_TEST_LOGDIR/<addr>-<port>.log (default tests/.work/logs/) and its tail is printed
when anything failed.

Set TESSERA_NODE=host:port to run the suites against a node you started yourself instead.
"""

import logging
import os
from pathlib import Path

import pytest

from helpers import make_cluster, new_table, sanitize
from tessera_node import REPO, TesseraNode

_NODE = None


class ExternalNode:
    def __init__(self, spec):
        host, _, port = spec.rpartition(":")
        self.addr, self.port = host, int(port)
        self.proc = None
        self.log_path = None

    def alive(self):
        return True

    def log_tail(self, lines=200):
        return "(external node: no log)"


@pytest.fixture(scope="session")
def node():
    """The node under test (started here unless TESSERA_NODE names one)."""
    global _NODE
    external = os.environ.get("TESSERA_NODE")
    if external:
        _NODE = ExternalNode(external)
        yield _NODE
        return
    addr = os.environ.get("TESSERA_TEST_ADDR", "127.0.0.51")
    port = int(os.environ.get("TESSERA_TEST_PORT", "9042"))
    api_port = int(os.environ.get("TESSERA_TEST_API_PORT", 10000 + int(addr.rsplit(".", 1)[-1])))
    logdir = Path(os.environ.get("TESSERA_TEST_LOGDIR", REPO / "tests" / ".work" / "logs"))
    log_path = logdir / f"pytest-{addr}-{port}.log"
    if log_path.exists():
        log_path.unlink()
    try:
        n = TesseraNode(addr, port, api_port=api_port, log_path=log_path)
    except RuntimeError as e:  # no binary
        pytest.exit(str(e), returncode=1)
    _NODE = n
    try:
        try:
            n.start()
        except RuntimeError as e:
            pytest.exit(f"could not start the node under test: {e}", returncode=1)
        yield n
    finally:
        status = n.stop()
        n.cleanup()
        # A node that had to be SIGKILLed, or crashed, is a failure of its own.
        if status not in (None, 0, -15, 143):
            print(f"\ntessera exited with status {status} at shutdown (log: {n.log_path})")


@pytest.fixture(autouse=True)
def _node_still_alive(request):
    """After every test: the node must still be running (a crash fails the test that caused it)."""
    yield
    if _NODE is not None and _NODE.proc is not None and not _NODE.alive():
        pytest.fail(f"tessera died (status {_NODE.proc.returncode}) during this test\n"
                    f"--- node log ---\n{_NODE.log_tail(100)}")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if exitstatus != 0 and _NODE is not None and _NODE.log_path is not None:
        terminalreporter.section(f"tessera node log (tail of {_NODE.log_path})")
        terminalreporter.write_line(_NODE.log_tail(150))


# ---------------------------------------------------------------------------------------
# driver fixtures (imported lazily: tessera_node.py and the hooks above need no driver)

@pytest.fixture(scope="session")
def cluster(node):
    """A Cluster with default settings: metadata enabled, protocol negotiated automatically."""
    logging.getLogger("cassandra").setLevel(logging.WARNING)
    c = make_cluster(node)
    c.connect()
    yield c
    c.shutdown()


@pytest.fixture(scope="session")
def session(cluster):
    s = cluster.connect()
    s.default_timeout = 20
    return s


@pytest.fixture(scope="module")
def ks(session, request):
    """A keyspace (SimpleStrategy, RF 1) for one test module; dropped at the end."""
    name = "ks_" + sanitize(request.module.__name__.rsplit(".", 1)[-1])
    session.execute(f"DROP KEYSPACE IF EXISTS {name}")
    session.execute(
        f"CREATE KEYSPACE {name} WITH replication = "
        "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    yield name
    session.execute(f"DROP KEYSPACE IF EXISTS {name}")


@pytest.fixture
def table(session, ks):
    """Factory: table('k int PRIMARY KEY, v text') -> 'ks.t_N'."""
    def make(body, options=""):
        return new_table(session, ks, body, options)
    return make
