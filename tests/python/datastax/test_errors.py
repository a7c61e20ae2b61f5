"""Errors reach the driver with the protocol's codes, so it raises the right exception classes."""

import pytest
from cassandra import AlreadyExists, InvalidRequest
from cassandra.protocol import ConfigurationException, SyntaxException


@pytest.fixture(scope="module")
def err_t(session, ks):
    session.execute(f"CREATE TABLE {ks}.err (k int, c int, v text, n int, PRIMARY KEY (k, c))")
    return f"{ks}.err"


@pytest.mark.parametrize("cql", [
    "SELEC * FROM system.local",
    "SELECT * FROM",
    "INSERT INTO x (k) VALUES (",
    "CREATE TABLE t (k int PRIMARY KEY",
    "SELECT * FROM system.local WHERE key = 'local' ORDER",
    "garbage",
])
def test_syntax_error(session, cql):
    with pytest.raises(SyntaxException) as e:
        session.execute(cql)
    assert type(e.value).error_code == 0x2000


def test_invalid_unknown_keyspace(session):
    with pytest.raises(InvalidRequest):
        session.execute("SELECT * FROM no_such_keyspace.t")
    with pytest.raises(InvalidRequest):
        session.execute("USE no_such_keyspace")


def test_invalid_unknown_table(session, ks):
    with pytest.raises(InvalidRequest):
        session.execute(f"SELECT * FROM {ks}.no_such_table")
    with pytest.raises(InvalidRequest):
        session.execute(f"INSERT INTO {ks}.no_such_table (k) VALUES (1)")
    with pytest.raises(InvalidRequest):
        session.prepare(f"SELECT * FROM {ks}.no_such_table WHERE k = ?")


def test_invalid_unknown_column(session, err_t):
    with pytest.raises(InvalidRequest):
        session.execute(f"SELECT nope FROM {err_t} WHERE k = 1")
    with pytest.raises(InvalidRequest):
        session.execute(f"INSERT INTO {err_t} (k, c, nope) VALUES (1, 1, 1)")


@pytest.mark.parametrize("cql", [
    "INSERT INTO {t} (k, c, v) VALUES ('not an int', 1, 'x')",
    "INSERT INTO {t} (k, c, v) VALUES (1, 1, 42)",
    "INSERT INTO {t} (k, c, n) VALUES (1, 1, 'text')",
    "SELECT * FROM {t} WHERE k = 'x'",
    "UPDATE {t} SET n = 1.5 WHERE k = 1 AND c = 1",
])
def test_invalid_wrong_type(session, err_t, cql):
    with pytest.raises(InvalidRequest):
        session.execute(cql.format(t=err_t))


def test_invalid_bound_value_of_wrong_size(session, err_t):
    """The server checks bound bytes against the column type (a 2-byte value for an int)."""
    ins = session.prepare(f"INSERT INTO {err_t} (k, c, v) VALUES (?, ?, ?)")
    bound = ins.bind((1, 1, "x"))
    bound.values[0] = b"\x00\x01"  # already-serialized bytes go to the wire as they are
    with pytest.raises(InvalidRequest):
        session.execute(bound)
    assert session.execute(f"SELECT * FROM {err_t} WHERE k = 1 AND c = 1").one() is None


@pytest.mark.parametrize("cql", [
    "INSERT INTO {t} (k, v) VALUES (1, 'no clustering')",
    "INSERT INTO {t} (c, v) VALUES (1, 'no partition key')",
    "UPDATE {t} SET v = 'x' WHERE k = 1",
    "UPDATE {t} SET v = 'x' WHERE c = 1",
    "DELETE v FROM {t} WHERE c = 1",
    "SELECT * FROM {t} WHERE c = 1",
])
def test_invalid_missing_key_parts(session, err_t, cql):
    with pytest.raises(InvalidRequest):
        session.execute(cql.format(t=err_t))


def test_invalid_primary_key_update_and_order(session, err_t):
    with pytest.raises(InvalidRequest):
        session.execute(f"UPDATE {err_t} SET c = 2 WHERE k = 1 AND c = 1")
    with pytest.raises(InvalidRequest):
        session.execute(f"SELECT * FROM {err_t} ORDER BY c DESC")  # ORDER BY needs a partition
    with pytest.raises(InvalidRequest):
        session.execute(f"SELECT * FROM {err_t} WHERE k = 1 ORDER BY v DESC")


def test_invalid_table_definitions(session, ks):
    with pytest.raises(InvalidRequest):
        session.execute(f"CREATE TABLE {ks}.nokey (k int, v int)")
    with pytest.raises(InvalidRequest):
        session.execute(f"CREATE TABLE {ks}.badtype (k int PRIMARY KEY, v notatype)")
    with pytest.raises(InvalidRequest):
        session.execute(f"CREATE TABLE {ks}.staticpk (k int PRIMARY KEY, s int STATIC)")
    with pytest.raises(InvalidRequest):
        session.execute(f"CREATE TABLE {ks}.dup (k int PRIMARY KEY, k text)")


def test_already_exists_keyspace(session, ks):
    with pytest.raises(AlreadyExists) as e:
        session.execute(f"CREATE KEYSPACE {ks} WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}")
    assert e.value.keyspace == ks
    assert not e.value.table


def test_already_exists_table(session, err_t):
    ks, t = err_t.split(".")
    with pytest.raises(AlreadyExists) as e:
        session.execute(f"CREATE TABLE {err_t} (k int PRIMARY KEY)")
    assert (e.value.keyspace, e.value.table) == (ks, t)
    session.execute(f"CREATE TABLE IF NOT EXISTS {err_t} (k int PRIMARY KEY)")


@pytest.mark.parametrize("replication", [
    "{'class': 'NoSuchStrategy', 'replication_factor': 1}",
    "{'class': 'SimpleStrategy'}",
    "{'class': 'SimpleStrategy', 'replication_factor': 'many'}",
    "{'class': 'NetworkTopologyStrategy', 'datacenter1': -1}",
])
def test_configuration_error_for_bad_replication(session, replication):
    with pytest.raises(ConfigurationException) as e:
        session.execute(f"CREATE KEYSPACE bad_repl WITH replication = {replication}")
    assert type(e.value) is ConfigurationException and type(e.value).error_code == 0x2300
    assert session.execute(
        "SELECT * FROM system_schema.keyspaces WHERE keyspace_name = 'bad_repl'").one() is None


def test_session_survives_errors(session, err_t):
    for _ in range(3):
        with pytest.raises(SyntaxException):
            session.execute("SELEC 1")
    session.execute(f"INSERT INTO {err_t} (k, c, v) VALUES (1, 1, 'ok')")
    assert session.execute(f"SELECT v FROM {err_t} WHERE k = 1 AND c = 1").one().v == "ok"
