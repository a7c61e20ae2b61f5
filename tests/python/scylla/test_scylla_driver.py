"""The ScyllaDB Python driver (scylla-driver, its own venv) with default settings."""

import cassandra
import pytest
from cassandra.query import BatchStatement, BatchType, SimpleStatement


def test_is_the_scylla_driver():
    # both drivers install `cassandra`; make sure this venv holds the Scylla one
    import importlib.metadata as md
    assert md.version("scylla-driver") == cassandra.__version__


def test_connects_and_reads_system_local(cluster, session, node):
    assert cluster.protocol_version in (4, 5)
    row = session.execute("SELECT cluster_name, data_center, partitioner FROM system.local "
                          "WHERE key = 'local'").one()
    assert row.partitioner == "org.apache.cassandra.dht.Murmur3Partitioner"
    assert row.data_center == "datacenter1"
    hosts = cluster.metadata.all_hosts()
    assert [h.address for h in hosts] == [node.addr] and hosts[0].is_up
    assert "system_schema" in cluster.metadata.keyspaces


def test_crud(session, ks, cluster):
    session.execute(f"CREATE TABLE {ks}.crud (k int, c int, v text, s text STATIC, "
                    "PRIMARY KEY (k, c)) WITH CLUSTERING ORDER BY (c DESC)")
    assert "crud" in cluster.metadata.keyspaces[ks].tables
    for c in range(5):
        session.execute(f"INSERT INTO {ks}.crud (k, c, v) VALUES (1, {c}, 'v{c}')")
    session.execute(f"UPDATE {ks}.crud SET v = 'new', s = 'st' WHERE k = 1 AND c = 2")
    session.execute(f"DELETE FROM {ks}.crud WHERE k = 1 AND c = 0")
    session.execute(f"DELETE v FROM {ks}.crud WHERE k = 1 AND c = 1")
    rows = [tuple(r) for r in session.execute(f"SELECT c, v, s FROM {ks}.crud WHERE k = 1")]
    assert rows == [(4, "v4", "st"), (3, "v3", "st"), (2, "new", "st"), (1, None, "st")]
    assert session.execute(f"SELECT COUNT(*) FROM {ks}.crud WHERE k = 1").one().count == 4
    session.execute(f"DELETE FROM {ks}.crud WHERE k = 1")
    assert list(session.execute(f"SELECT * FROM {ks}.crud WHERE k = 1")) == []


def test_prepared(session, ks):
    session.execute(f"CREATE TABLE {ks}.prep (k int, c int, v text, PRIMARY KEY (k, c))")
    ins = session.prepare(f"INSERT INTO {ks}.prep (k, c, v) VALUES (?, ?, ?)")
    named = session.prepare(f"INSERT INTO {ks}.prep (k, c, v) VALUES (:k, :c, :v)")
    for c in range(10):
        session.execute(ins, (1, c, str(c)))
    session.execute(named, {"k": 2, "c": 0, "v": "named"})
    sel = session.prepare(f"SELECT c, v FROM {ks}.prep WHERE k = ? AND c > ? LIMIT ?")
    assert [tuple(r) for r in session.execute(sel, (1, 6, 5))] == [(7, "7"), (8, "8"), (9, "9")]
    assert session.execute(f"SELECT v FROM {ks}.prep WHERE k = 2 AND c = 0").one().v == "named"


@pytest.mark.parametrize("prepared", [False, True])
def test_paging(session, ks, prepared):
    t = f"{ks}.paged_{int(prepared)}"
    session.execute(f"CREATE TABLE {t} (k int, c int, PRIMARY KEY (k, c))")
    ins = session.prepare(f"INSERT INTO {t} (k, c) VALUES (?, ?)")
    for c in range(100):
        session.execute(ins, (1, c))
    for k in range(2, 22):
        session.execute(ins, (k, 0))
    if prepared:
        sel = session.prepare(f"SELECT c FROM {t} WHERE k = ?")
        sel.fetch_size = 7
        rs = session.execute(sel, [1])
    else:
        rs = session.execute(SimpleStatement(f"SELECT c FROM {t} WHERE k = 1", fetch_size=7))
    assert len(rs.current_rows) == 7
    assert [r.c for r in rs] == list(range(100))
    scan = list(session.execute(SimpleStatement(f"SELECT k, c FROM {t}", fetch_size=7)))
    assert len(scan) == 120
    assert sorted((r.k, r.c) for r in scan) == sorted([(1, c) for c in range(100)] +
                                                      [(k, 0) for k in range(2, 22)])


def test_batch(session, ks):
    session.execute(f"CREATE TABLE {ks}.bat (k int, c int, v text, PRIMARY KEY (k, c))")
    ins = session.prepare(f"INSERT INTO {ks}.bat (k, c, v) VALUES (?, ?, ?)")
    for kind in (BatchType.LOGGED, BatchType.UNLOGGED):
        b = BatchStatement(batch_type=kind)
        for c in range(3):
            b.add(ins, (kind.value, c, "b"))
        session.execute(b)
    assert session.execute(f"SELECT COUNT(*) FROM {ks}.bat").one().count == 6
