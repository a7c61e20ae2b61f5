"""The DataStax driver connects with default settings and sees the node's metadata."""

import uuid

from helpers import make_cluster


def test_protocol_negotiated_automatically(cluster):
    # Default settings: the driver tried DSE_V2, DSE_V1, v5, v4 and settled on v5 or v4.
    assert cluster.protocol_version in (4, 5)


def test_system_local_row(session, cluster):
    row = session.execute(
        "SELECT key, cluster_name, release_version, cql_version, partitioner, data_center, "
        "rack, tokens, host_id, schema_version, rpc_address, listen_address, broadcast_address "
        "FROM system.local WHERE key = 'local'").one()
    assert row is not None
    assert row.key == "local"
    assert row.partitioner == "org.apache.cassandra.dht.Murmur3Partitioner"
    assert row.cluster_name and row.cluster_name == cluster.metadata.cluster_name
    assert row.data_center == "datacenter1"
    assert row.rack
    assert isinstance(row.host_id, uuid.UUID)
    assert isinstance(row.schema_version, uuid.UUID)
    major = [int(x) for x in row.cql_version.split(".")]
    assert major[0] == 3 and len(major) == 3
    assert row.release_version[0].isdigit()
    assert row.tokens, "a node owns tokens"
    for t in row.tokens:
        assert -(2 ** 63) <= int(t) < 2 ** 63


def test_one_host_up_with_local_dc(cluster, node):
    hosts = cluster.metadata.all_hosts()
    assert len(hosts) == 1
    (host,) = hosts
    assert host.is_up
    assert host.address == node.addr
    assert host.datacenter == "datacenter1"
    assert host.rack


def test_metadata_sees_system_keyspaces_and_tables(cluster):
    keyspaces = cluster.metadata.keyspaces
    for name in ("system", "system_schema"):
        assert name in keyspaces, f"{name} missing from {sorted(keyspaces)}"
    local = keyspaces["system"].tables["local"]
    assert [c.name for c in local.partition_key] == ["key"]
    for col in ("cluster_name", "tokens", "host_id", "data_center", "rack", "release_version"):
        assert col in local.columns, col
    assert local.columns["tokens"].cql_type == "set<text>"
    assert local.columns["host_id"].cql_type == "uuid"
    for t in ("keyspaces", "tables", "columns", "types", "functions", "aggregates",
              "triggers", "indexes", "views"):
        assert t in keyspaces["system_schema"].tables, t
    peers = keyspaces["system"].tables["peers"]
    assert peers.columns["peer"].cql_type == "inet"


def test_token_map_built(cluster, session):
    tokens = session.execute("SELECT tokens FROM system.local WHERE key = 'local'").one().tokens
    tm = cluster.metadata.token_map
    assert tm is not None
    assert sorted(t.value for t in tm.ring) == sorted(int(t) for t in tokens)


def test_metadata_sees_user_table_right_after_ddl(cluster, session, ks):
    # The driver refreshes its metadata on the SCHEMA_CHANGE result before returning.
    session.execute(f"CREATE TABLE {ks}.meta_t (k int PRIMARY KEY, v text)")
    t = cluster.metadata.keyspaces[ks].tables["meta_t"]
    assert [c.name for c in t.partition_key] == ["k"]
    assert t.columns["v"].cql_type == "text"


def test_peers_empty_on_single_node(session):
    assert list(session.execute("SELECT peer FROM system.peers")) == []


def test_second_cluster_connects_to_keyspace(node, ks):
    c = make_cluster(node)
    try:
        s = c.connect(ks)
        assert s.keyspace == ks
        s.execute("CREATE TABLE IF NOT EXISTS kv (k int PRIMARY KEY, v int)")
        s.execute("INSERT INTO kv (k, v) VALUES (1, 2)")
        assert s.execute("SELECT v FROM kv WHERE k = 1").one().v == 2
    finally:
        c.shutdown()
