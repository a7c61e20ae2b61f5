"""Apache cqlsh (pip package `cqlsh`) against the node: -e queries, -f files and DESCRIBE."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CQLSH = Path(sys.executable).parent / "cqlsh"


@pytest.fixture(scope="module")
def cqlsh(node, tmp_path_factory):
    exe = CQLSH if CQLSH.exists() else shutil.which("cqlsh")
    assert exe, "cqlsh is not installed in this venv (tests/python/requirements-datastax.txt)"
    home = tmp_path_factory.mktemp("cqlsh-home")  # no ~/.cassandra/cqlshrc of the developer

    def run(*args, check=True, timeout=60, strip_warnings=True):
        p = subprocess.run(
            [str(exe), node.addr, str(node.port), "--connect-timeout", "20",
             "--request-timeout", "30", *args],
            capture_output=True, text=True, timeout=timeout,
            env={"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        if check:
            assert p.returncode == 0 and "Error" not in p.stderr, \
                f"cqlsh {args} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
        if strip_warnings:
            # e.g. "WARNING: cqlsh was built against 5.0.0, but this server is 4.0.11..."
            p.stdout = "".join(line for line in p.stdout.splitlines(keepends=True)
                               if not line.startswith("WARNING: cqlsh was built against"))
        return p
    return run


def test_select_system_local(cqlsh):
    out = cqlsh("-e", "SELECT key, cluster_name, data_center FROM system.local").stdout
    assert re.search(r"^\s*key\s*\|\s*cluster_name\s*\|\s*data_center\s*$", out, re.M), out
    assert re.search(r"^\s*local\s*\|.*\|\s*datacenter1\s*$", out, re.M), out
    assert "(1 rows)" in out


def test_select_star_system_local(cqlsh):
    out = cqlsh("-e", "SELECT * FROM system.local").stdout
    assert "(1 rows)" in out
    assert "Murmur3Partitioner" in out


def test_create_insert_select(cqlsh):
    cqlsh("-e", "DROP KEYSPACE IF EXISTS cqlsh_ks; "
                "CREATE KEYSPACE cqlsh_ks WITH replication = "
                "{'class': 'SimpleStrategy', 'replication_factor': 1}; "
                "CREATE TABLE cqlsh_ks.t (k int, c int, v text, d double, PRIMARY KEY (k, c)); "
                "INSERT INTO cqlsh_ks.t (k, c, v, d) VALUES (1, 2, 'hello', 1.5); "
                "INSERT INTO cqlsh_ks.t (k, c, v, d) VALUES (1, 3, 'world', -2.25);")
    out = cqlsh("-e", "SELECT * FROM cqlsh_ks.t WHERE k = 1").stdout
    assert re.search(r"^\s*k\s*\|\s*c\s*\|\s*d\s*\|\s*v\s*$", out, re.M), out
    assert re.search(r"^\s*1\s*\|\s*2\s*\|\s*1\.5\s*\|\s*hello\s*$", out, re.M), out
    assert re.search(r"^\s*1\s*\|\s*3\s*\|\s*-2\.25\s*\|\s*world\s*$", out, re.M), out
    assert "(2 rows)" in out


def test_use_and_file(cqlsh, tmp_path):
    f = tmp_path / "script.cql"
    f.write_text("USE cqlsh_ks;\n"
                 "CREATE TABLE IF NOT EXISTS f (k int PRIMARY KEY, v text);\n"
                 "INSERT INTO f (k, v) VALUES (7, 'from a file');\n"
                 "SELECT v FROM f WHERE k = 7;\n")
    out = cqlsh("-f", str(f)).stdout
    assert "from a file" in out and "(1 rows)" in out


def test_describe_keyspaces(cqlsh):
    out = cqlsh("-e", "DESCRIBE KEYSPACES").stdout
    names = set(out.split())
    for ks in ("system", "system_schema", "cqlsh_ks"):
        assert ks in names, out


def test_describe_keyspace(cqlsh):
    out = cqlsh("-e", "DESCRIBE KEYSPACE cqlsh_ks").stdout
    assert "CREATE KEYSPACE cqlsh_ks" in out
    assert "SimpleStrategy" in out
    assert "CREATE TABLE cqlsh_ks.t" in out


def test_describe_table_recreates_table(cqlsh, tmp_path):
    cqlsh("-e", "CREATE TABLE cqlsh_ks.desc_me (a int, b text, c timestamp, s int STATIC, "
                "v bigint, w blob, PRIMARY KEY ((a, b), c)) "
                "WITH CLUSTERING ORDER BY (c DESC) AND comment = 'described'")
    before = cqlsh("-e", "DESCRIBE TABLE cqlsh_ks.desc_me").stdout
    assert "CREATE TABLE cqlsh_ks.desc_me" in before
    assert re.search(r"PRIMARY KEY \(\(a, b\), c\)", before), before
    assert "CLUSTERING ORDER BY (c DESC)" in before
    assert "s int static" in before
    assert "'described'" in before

    script = tmp_path / "desc.cql"
    script.write_text(before)
    cqlsh("-e", "DROP TABLE cqlsh_ks.desc_me")
    cqlsh("-f", str(script))
    after = cqlsh("-e", "DESCRIBE TABLE cqlsh_ks.desc_me").stdout
    assert after == before
    cqlsh("-e", "INSERT INTO cqlsh_ks.desc_me (a, b, c, s, v) VALUES (1, 'x', 0, 5, 6)")
    out = cqlsh("-e", "SELECT a, b, s, v FROM cqlsh_ks.desc_me").stdout
    assert re.search(r"^\s*1\s*\|\s*x\s*\|\s*5\s*\|\s*6\s*$", out, re.M), out


def test_errors_are_reported(cqlsh):
    p = cqlsh("-e", "SELEC * FROM nowhere", check=False)
    assert p.returncode != 0
    assert "SyntaxException" in p.stderr, p.stderr
    p = cqlsh("-e", "SELECT * FROM cqlsh_ks.no_such_table", check=False)
    assert p.returncode != 0
    assert "InvalidRequest" in p.stderr, p.stderr


def test_cleanup(cqlsh):
    cqlsh("-e", "DROP KEYSPACE cqlsh_ks")
    out = cqlsh("-e", "DESCRIBE KEYSPACES").stdout
    assert "cqlsh_ks" not in out.split()
