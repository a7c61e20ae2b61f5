"""Keyspaces, tables, ALTER/DROP, USE, TRUNCATE and schema-change propagation."""

import pytest
from cassandra import InvalidRequest

from helpers import make_cluster, wait_until


def replication_of(session, ks):
    return dict(session.execute(
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (ks,)
    ).one().replication)


def test_create_keyspace_simple_strategy(session, cluster):
    session.execute("DROP KEYSPACE IF EXISTS ddl_simple")
    session.execute("CREATE KEYSPACE ddl_simple WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 2}")
    try:
        assert replication_of(session, "ddl_simple") == {
            "class": "org.apache.cassandra.locator.SimpleStrategy", "replication_factor": "2"}
        meta = cluster.metadata.keyspaces["ddl_simple"]
        assert meta.durable_writes is True
        assert meta.replication_strategy.export_for_schema() == \
            "{'class': 'SimpleStrategy', 'replication_factor': '2'}"
    finally:
        session.execute("DROP KEYSPACE ddl_simple")
    assert "ddl_simple" not in cluster.metadata.keyspaces


def test_create_keyspace_network_topology_strategy(session, cluster):
    session.execute("DROP KEYSPACE IF EXISTS ddl_nts")
    session.execute("CREATE KEYSPACE ddl_nts WITH replication = "
                    "{'class': 'NetworkTopologyStrategy', 'datacenter1': 1} "
                    "AND durable_writes = true")
    try:
        assert replication_of(session, "ddl_nts") == {
            "class": "org.apache.cassandra.locator.NetworkTopologyStrategy", "datacenter1": "1"}
        meta = cluster.metadata.keyspaces["ddl_nts"]
        assert meta.replication_strategy.dc_replication_factors == {"datacenter1": 1}
        # and it takes writes and reads at the driver's default LOCAL_ONE
        session.execute("CREATE TABLE ddl_nts.t (k int PRIMARY KEY, v int)")
        session.execute("INSERT INTO ddl_nts.t (k, v) VALUES (1, 10)")
        assert session.execute("SELECT v FROM ddl_nts.t WHERE k = 1").one().v == 10
        assert len(cluster.metadata.get_replicas("ddl_nts", b"\x00\x00\x00\x01")) == 1
    finally:
        session.execute("DROP KEYSPACE ddl_nts")


def test_create_keyspace_if_not_exists_and_durable_writes(session, cluster):
    session.execute("DROP KEYSPACE IF EXISTS ddl_ine")
    q = ("CREATE KEYSPACE IF NOT EXISTS ddl_ine WITH replication = "
         "{'class': 'SimpleStrategy', 'replication_factor': 1} AND durable_writes = false")
    session.execute(q)
    session.execute(q)  # no error the second time
    assert cluster.metadata.keyspaces["ddl_ine"].durable_writes is False
    session.execute("DROP KEYSPACE ddl_ine")
    session.execute("DROP KEYSPACE IF EXISTS ddl_ine")  # no error either


def test_table_with_composite_key_desc_clustering_and_static(session, cluster, ks):
    session.execute(
        f"CREATE TABLE {ks}.fulltab (a int, b text, c int, d timestamp, s text STATIC, v text, "
        "PRIMARY KEY ((a, b), c, d)) WITH CLUSTERING ORDER BY (c DESC, d ASC)")
    t = cluster.metadata.keyspaces[ks].tables["fulltab"]
    assert [c.name for c in t.partition_key] == ["a", "b"]
    assert [c.name for c in t.clustering_key] == ["c", "d"]
    assert t.columns["c"].is_reversed and not t.columns["d"].is_reversed
    assert t.columns["s"].is_static and not t.columns["v"].is_static
    assert "CLUSTERING ORDER BY (c DESC, d ASC)" in t.export_as_string()

    rows = {(r.column_name): r for r in session.execute(
        "SELECT column_name, kind, position, clustering_order, type FROM system_schema.columns "
        "WHERE keyspace_name = %s AND table_name = 'fulltab'", (ks,))}
    assert {n: (r.kind, r.position, r.clustering_order, r.type) for n, r in rows.items()} == {
        "a": ("partition_key", 0, "none", "int"),
        "b": ("partition_key", 1, "none", "text"),
        "c": ("clustering", 0, "desc", "int"),
        "d": ("clustering", 1, "asc", "timestamp"),
        "s": ("static", -1, "none", "text"),
        "v": ("regular", -1, "none", "text"),
    }

    for c in (1, 3, 2):
        session.execute(f"INSERT INTO {ks}.fulltab (a, b, c, d, v) VALUES (1, 'x', {c}, 0, 'v{c}')")
    assert [r.c for r in session.execute(f"SELECT c FROM {ks}.fulltab WHERE a = 1 AND b = 'x'")] \
        == [3, 2, 1]


def test_table_options_stored_and_reported(session, cluster, ks):
    session.execute(
        f"CREATE TABLE {ks}.opts (k int PRIMARY KEY, v int) WITH comment = 'hello tessera' "
        "AND gc_grace_seconds = 3600 AND default_time_to_live = 0")
    row = session.execute(
        "SELECT comment, gc_grace_seconds, default_time_to_live, id, flags "
        "FROM system_schema.tables WHERE keyspace_name = %s AND table_name = 'opts'", (ks,)).one()
    assert row.comment == "hello tessera"
    assert row.gc_grace_seconds == 3600
    assert row.id is not None
    opts = cluster.metadata.keyspaces[ks].tables["opts"].options
    assert opts["comment"] == "hello tessera"
    assert opts["gc_grace_seconds"] == 3600
    # not COMPACT STORAGE: the driver decides that from `flags`
    assert not cluster.metadata.keyspaces[ks].tables["opts"].is_compact_storage


def test_alter_table_add_and_drop(session, cluster, ks):
    session.execute(f"CREATE TABLE {ks}.alt (k int PRIMARY KEY, v text)")
    session.execute(f"INSERT INTO {ks}.alt (k, v) VALUES (1, 'one')")
    session.execute(f"ALTER TABLE {ks}.alt ADD extra int")
    assert "extra" in cluster.metadata.keyspaces[ks].tables["alt"].columns
    row = session.execute(f"SELECT k, v, extra FROM {ks}.alt WHERE k = 1").one()
    assert (row.k, row.v, row.extra) == (1, "one", None)
    session.execute(f"UPDATE {ks}.alt SET extra = 7 WHERE k = 1")
    assert session.execute(f"SELECT extra FROM {ks}.alt WHERE k = 1").one().extra == 7

    session.execute(f"ALTER TABLE {ks}.alt DROP v")
    assert "v" not in cluster.metadata.keyspaces[ks].tables["alt"].columns
    rs = session.execute(f"SELECT * FROM {ks}.alt WHERE k = 1")
    assert rs.column_names == ["k", "extra"]
    with pytest.raises(InvalidRequest):
        session.execute(f"SELECT v FROM {ks}.alt WHERE k = 1")


def test_drop_table(session, cluster, ks):
    session.execute(f"CREATE TABLE {ks}.gone (k int PRIMARY KEY)")
    session.execute(f"INSERT INTO {ks}.gone (k) VALUES (1)")
    session.execute(f"DROP TABLE {ks}.gone")
    assert "gone" not in cluster.metadata.keyspaces[ks].tables
    with pytest.raises(InvalidRequest):
        session.execute(f"SELECT * FROM {ks}.gone")
    session.execute(f"DROP TABLE IF EXISTS {ks}.gone")
    # recreated table starts empty
    session.execute(f"CREATE TABLE {ks}.gone (k int PRIMARY KEY)")
    assert list(session.execute(f"SELECT * FROM {ks}.gone")) == []


def test_drop_keyspace_drops_its_tables(session, cluster):
    session.execute("DROP KEYSPACE IF EXISTS ddl_drop")
    session.execute("CREATE KEYSPACE ddl_drop WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    session.execute("CREATE TABLE ddl_drop.t (k int PRIMARY KEY)")
    session.execute("DROP KEYSPACE ddl_drop")
    assert "ddl_drop" not in cluster.metadata.keyspaces
    assert list(session.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = 'ddl_drop'")) == []
    with pytest.raises(InvalidRequest):
        session.execute("SELECT * FROM ddl_drop.t")


def test_use_keyspace(node, ks):
    c = make_cluster(node)
    try:
        s = c.connect()
        s.execute(f"USE {ks}")
        assert s.keyspace == ks
        s.execute("CREATE TABLE used (k int PRIMARY KEY, v int)")
        s.execute("INSERT INTO used (k, v) VALUES (5, 50)")
        assert s.execute("SELECT v FROM used WHERE k = 5").one().v == 50
        assert s.execute(f"SELECT v FROM {ks}.used WHERE k = 5").one().v == 50
        # every pooled connection got the USE: run enough queries to touch them all
        for _ in range(10):
            assert s.execute("SELECT v FROM used WHERE k = 5").one().v == 50
    finally:
        c.shutdown()


def test_truncate(session, ks):
    session.execute(f"CREATE TABLE {ks}.tr (k int, c int, v int, PRIMARY KEY (k, c))")
    for k in range(5):
        for c in range(3):
            session.execute(f"INSERT INTO {ks}.tr (k, c, v) VALUES ({k}, {c}, 1)")
    assert session.execute(f"SELECT COUNT(*) FROM {ks}.tr").one().count == 15
    session.execute(f"TRUNCATE {ks}.tr")
    assert list(session.execute(f"SELECT * FROM {ks}.tr")) == []
    session.execute(f"INSERT INTO {ks}.tr (k, c, v) VALUES (1, 1, 1)")
    session.execute(f"TRUNCATE TABLE {ks}.tr")
    assert list(session.execute(f"SELECT * FROM {ks}.tr")) == []


def test_second_cluster_sees_ddl_through_schema_events(node, session, ks):
    """A second client learns of DDL made elsewhere from SCHEMA_CHANGE events alone."""
    other = make_cluster(node)
    try:
        other.connect()
        assert "evt" not in other.metadata.keyspaces[ks].tables
        session.execute(f"CREATE TABLE {ks}.evt (k int PRIMARY KEY, v int)")
        wait_until(lambda: "evt" in other.metadata.keyspaces[ks].tables,
                   what="the second cluster's metadata to show the new table")
        session.execute(f"ALTER TABLE {ks}.evt ADD w text")
        wait_until(lambda: "w" in other.metadata.keyspaces[ks].tables["evt"].columns,
                   what="the second cluster's metadata to show the new column")
        session.execute(f"DROP TABLE {ks}.evt")
        wait_until(lambda: "evt" not in other.metadata.keyspaces[ks].tables,
                   what="the second cluster's metadata to drop the table")
    finally:
        other.shutdown()


def test_refresh_schema_metadata(node, session, ks):
    other = make_cluster(node, schema_event_refresh_window=-1)  # events ignored
    try:
        other.connect()
        session.execute(f"CREATE TABLE {ks}.refr (k int PRIMARY KEY, v int)")
        other.refresh_schema_metadata()
        assert "refr" in other.metadata.keyspaces[ks].tables
        other.refresh_table_metadata(ks, "refr")
        assert "v" in other.metadata.keyspaces[ks].tables["refr"].columns
    finally:
        other.shutdown()


def test_schema_agreement_after_ddl(session, ks):
    rs = session.execute(f"CREATE TABLE {ks}.agree (k int PRIMARY KEY)")
    assert rs.response_future.is_schema_agreed
    v1 = session.execute("SELECT schema_version FROM system.local WHERE key = 'local'").one()
    session.execute(f"ALTER TABLE {ks}.agree ADD v int")
    v2 = session.execute("SELECT schema_version FROM system.local WHERE key = 'local'").one()
    assert v1.schema_version != v2.schema_version, "schema_version changes with the schema"
