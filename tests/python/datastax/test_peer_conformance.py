"""Behaviours the peer suites (gocql's integration tests, cdrs-tokio's e2e tests) found
missing, pinned here with the DataStax driver so they stay fixed without Go or cdrs.

Each test names the peer test that revealed the gap (scripts/peer-suites/, docs/peer-suites.md).
"""

import struct

from helpers import OP_ERROR, OP_RESULT, RawConnection, cql_long_string, parse_error

OP_PREPARE, OP_EXECUTE = 0x09, 0x0A
UNPREPARED = 0x2500
SKIP_METADATA = 0x02


def _prepare(conn, cql):
    """PREPARE over a raw v4 connection; returns (id, result column count)."""
    f = conn.request(OP_PREPARE, cql_long_string(cql))
    assert f is not None and f[3] == OP_RESULT, f"PREPARE answered {f!r}"
    body = f[4]
    kind, id_len = struct.unpack_from(">iH", body, 0)
    assert kind == 4  # Prepared
    stmt_id = body[6:6 + id_len]
    pos = 6 + id_len
    flags, ncols, npk = struct.unpack_from(">iii", body, pos)  # bind metadata (no markers)
    assert (ncols, npk) == (0, 0)
    pos += 12
    rflags, rcols = struct.unpack_from(">ii", body, pos)
    return stmt_id, rcols


def _execute(conn, stmt_id, flags):
    """EXECUTE with no values at ONE; returns the response frame."""
    body = struct.pack(">H", len(stmt_id)) + stmt_id + struct.pack(">HB", 0x0001, flags)
    f = conn.request(OP_EXECUTE, body)
    assert f is not None
    return f


def _rows_column_count(frame):
    assert frame[3] == OP_RESULT, f"expected RESULT, got {frame!r}"
    kind, mflags, ncols = struct.unpack_from(">iii", frame[4], 0)
    assert kind == 2  # Rows
    return mflags, ncols


def test_prepared_select_star_evicted_by_alter_table(node, session, table):
    """gocql TestSchemaReset (CASSANDRA-7910): a `SELECT *` prepared before ALTER TABLE
    ADD must not keep answering under its old result metadata. Cassandra evicts the
    statement when the table changes shape, so a client that asked to skip the metadata
    (gocql does, for every prepared SELECT) gets UNPREPARED, re-prepares and learns the
    new columns; rows of the new shape under the old metadata break its decoder."""
    t = table("id text PRIMARY KEY")
    session.execute(f"INSERT INTO {t} (id) VALUES ('k')")
    conn = RawConnection(node.addr, node.port)
    try:
        conn.handshake()
        cql = f"SELECT * FROM {t} WHERE id = 'k'"
        stmt_id, rcols = _prepare(conn, cql)
        assert rcols == 1
        mflags, ncols = _rows_column_count(_execute(conn, stmt_id, SKIP_METADATA))
        assert mflags & 0x0004 and ncols == 1  # NO_METADATA, one column
        # a statement whose result shape the ALTER does not change stays prepared
        same_id, _ = _prepare(conn, f"SELECT id FROM {t} WHERE id = 'k'")

        session.execute(f"ALTER TABLE {t} ADD val text")

        f = _execute(conn, stmt_id, SKIP_METADATA)
        assert f[3] == OP_ERROR, f"expected UNPREPARED after ALTER, got {f!r}"
        code, _ = parse_error(f[4])
        assert code == UNPREPARED
        new_id, rcols = _prepare(conn, cql)
        assert new_id == stmt_id and rcols == 2
        assert _rows_column_count(_execute(conn, stmt_id, 0)) == (0x0001, 2)  # GLOBAL_TABLES_SPEC
        assert _rows_column_count(_execute(conn, same_id, SKIP_METADATA))[1] == 1
    finally:
        conn.close()


def test_query_tracing(session, table):
    """gocql TestTracing: a request sent with the TRACING flag gets a tracing session id in
    its response, and system_traces.sessions / system_traces.events describe it."""
    t = table("id int PRIMARY KEY")
    rs = session.execute(f"INSERT INTO {t} (id) VALUES (42)", trace=True)
    trace = rs.get_query_trace(max_wait_sec=10)
    assert trace.request_type == "Execute CQL3 query"
    assert trace.parameters["query"] == f"INSERT INTO {t} (id) VALUES (42)"
    assert trace.parameters["consistency_level"] == "LOCAL_ONE"
    assert trace.duration.total_seconds() >= 0 and trace.started_at is not None
    assert str(trace.coordinator) == session.cluster.contact_points[0]
    assert len(trace.events) >= 2

    # a prepared statement is traced too, with its query text
    sel = session.prepare(f"SELECT id FROM {t} WHERE id = ?")
    rs = session.execute(sel, [42], trace=True)
    assert rs.one().id == 42
    trace = rs.get_query_trace(max_wait_sec=10)
    assert trace.request_type == "Execute CQL3 prepared query"
    assert trace.parameters["query"] == f"SELECT id FROM {t} WHERE id = ?"

    # untraced requests name no session
    assert session.execute(f"SELECT id FROM {t} WHERE id = 42").get_all_query_traces() == []
