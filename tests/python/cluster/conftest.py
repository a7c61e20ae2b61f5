"""Fixtures for multi-node cluster tests (DataStax driver venv, tests/.work/venv-datastax).

The cluster is made and driven by scripts/tessera-cluster (called with subprocess), so the
tests exercise the launcher too. It runs only when TESSERA_TEST_CLUSTER=1: four node
processes are too much for the default suites on 2 cores.

    TESSERA_TEST_CLUSTER=1 tests/.work/venv-datastax/bin/python -m pytest \
        -c tests/python/pytest.ini --rootdir tests/python tests/python/cluster

Environment:
  TESSERA_TEST_CLUSTER=1               run (otherwise every test here is skipped)
  TESSERA_TEST_CLUSTER_BASE_IP=127.0.3.  node K listens on BASE_IP+K (9042, 7000, 10000)
  TESSERA_TEST_CLUSTER_KEEP=1          leave the cluster running afterwards (and its files)
  TESSERA_TEST_CLUSTER_DOWN_WAIT=60    seconds a kill -9'd node may take to be marked down
  TESSERA_BIN                          the node binary (default target/release/tessera)

Node logs are copied to tests/.work/logs/cluster-nodeK.log when the session ends.
"""

import logging
import os
import shutil
from pathlib import Path

import pytest

from cluster_helpers import (DCS, ENABLED, LOGDIR, NAME, NODES_PER_DC, RACKS, ROOT, SKIP_REASON,
                             LocalCluster, run_script)
from tessera_node import find_binary


def pytest_collection_modifyitems(config, items):
    if ENABLED:
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(skip)


def _remove_stale():
    if (ROOT / NAME / "cluster.json").is_file():
        run_script("remove", NAME, check=False)
    if (ROOT / NAME).exists():  # half-written by an interrupted run
        shutil.rmtree(ROOT / NAME, ignore_errors=True)


@pytest.fixture(scope="session")
def local_cluster():
    """A running 2-DC x 2-node cluster (racks rack1/rack2 in each DC), removed at the end."""
    if not ENABLED:
        pytest.skip(SKIP_REASON)
    logging.getLogger("cassandra").setLevel(logging.ERROR)
    binary = find_binary()
    base_ip = os.environ.get("TESSERA_TEST_CLUSTER_BASE_IP", "127.0.3.")
    _remove_stale()
    run_script("create", NAME, "--dcs", str(DCS), "--nodes", str(NODES_PER_DC),
               "--racks", str(RACKS), "--base-ip", base_ip, "--bin", str(binary),
               "--memtable-mb", "32")
    lc = LocalCluster()
    try:
        lc.start()
        yield lc
    finally:
        LOGDIR.mkdir(parents=True, exist_ok=True)
        for n in lc.nodes:
            src = lc.dir / n["name"] / "node.log"
            if src.is_file():
                shutil.copyfile(src, LOGDIR / f"cluster-{n['name']}.log")
        if os.environ.get("TESSERA_TEST_CLUSTER_KEEP") != "1":
            run_script("remove", NAME, check=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, append the tail of every node's log to the report."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and ENABLED and (ROOT / NAME / "cluster.json").is_file():
        try:
            lc = LocalCluster()
        except (OSError, ValueError):
            return
        for n in lc.nodes:
            rep.sections.append((f"log tail {n['name']} ({n['address']} {n['dc']})",
                                 lc.log_tail(n["name"], 40)))
