"""Helpers for the cluster tests: the launcher (scripts/tessera-cluster) and polling."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tessera_node import REPO

SCRIPT = REPO / "scripts" / "tessera-cluster"
ROOT = Path(os.environ.get("TESSERA_CLUSTERS_DIR", REPO / "tests" / ".work" / "clusters"))
LOGDIR = Path(os.environ.get("TESSERA_TEST_LOGDIR", REPO / "tests" / ".work" / "logs"))
NAME = "pytest-cluster"
DCS, NODES_PER_DC, RACKS = 2, 2, 2
ENABLED = os.environ.get("TESSERA_TEST_CLUSTER") == "1"
# How long a kill -9'd node may take to be marked down. Phi accrual (threshold 8) convicts
# after about 18.4 mean heartbeat intervals; a node killed seconds after a restart still has
# an arrival window dominated by its 2 s initial sample, so it can take up to ~37 s, as in
# Cassandra, whose ArrivalWindow starts the same way.
DOWN_WAIT = float(os.environ.get("TESSERA_TEST_CLUSTER_DOWN_WAIT", "60"))
SKIP_REASON = ("cluster tests start 4 node processes: set TESSERA_TEST_CLUSTER=1 to run them "
               "(see tests/python/cluster/conftest.py)")


def run_script(*args, timeout=90, check=True):
    """scripts/tessera-cluster -c pytest-cluster --root ROOT ARGS...; returns CompletedProcess."""
    cmd = [sys.executable, str(SCRIPT), "--root", str(ROOT), "-c", NAME, *args]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"$ {' '.join(cmd)}\nexit {r.returncode}\n{r.stdout}{r.stderr}")
    return r


class LocalCluster:
    """The cluster's layout (from cluster.json) and launcher verbs."""

    def __init__(self):
        meta = json.loads((ROOT / NAME / "cluster.json").read_text())
        self.dir = ROOT / NAME
        self.nodes = meta["nodes"]  # [{name, address, dc, rack, seed}]
        self.by_name = {n["name"]: n for n in self.nodes}
        self.by_addr = {n["address"]: n for n in self.nodes}

    def addresses(self, dc=None):
        return [n["address"] for n in self.nodes if dc is None or n["dc"] == dc]

    def dcs(self):
        return sorted({n["dc"] for n in self.nodes})

    def start(self, node=None):
        return run_script("start", *([node] if node else []))

    def kill(self, node):
        return run_script("kill", node)

    def stop(self, node):
        return run_script("stop", node)

    def nodetool(self, node, *args, check=True):
        return run_script("nodetool", node, *args, timeout=30, check=check)

    def log_tail(self, node, lines=60):
        try:
            text = (self.dir / node / "node.log").read_text(errors="replace")
        except OSError as e:
            return f"(no log: {e})"
        return "\n".join(text.splitlines()[-lines:])


def wait_until(fn, timeout, interval=0.25, what="condition"):
    """Calls fn() until it returns a truthy value; returns it, or raises with the last error."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last = value
        except Exception as e:  # noqa: BLE001 - polled, reported below
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)
