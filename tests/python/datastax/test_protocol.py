"""Protocol v4 and v5 (segments, CRCs, LZ4), Murmur3 tokens, events and malformed input."""

import os
import random
import struct
import uuid

import pytest
from cassandra.murmur3 import murmur3
from cassandra.query import SimpleStatement

from helpers import (OP_ERROR, OP_EVENT, OP_OPTIONS, OP_QUERY, OP_READY, OP_REGISTER, OP_RESULT,
                     OP_SUPPORTED, RawConnection, frame, make_cluster, parse_error, query_body,
                     read_string, string_list)

PROTOCOLS = [(4, None), (4, "lz4"), (5, None), (5, "lz4")]


@pytest.fixture(scope="module", params=PROTOCOLS, ids=[f"v{v}-{c or 'plain'}" for v, c in PROTOCOLS])
def forced(request, node, session, ks):
    version, compression = request.param
    c = make_cluster(node, protocol_version=version, compression=compression or False)
    s = c.connect()
    name = f"{ks}.proto_v{version}_{compression or 'plain'}"
    session.execute(f"CREATE TABLE {name} (k int, c int, v text, b blob, PRIMARY KEY (k, c))")
    yield c, s, name, version, compression
    c.shutdown()


def test_negotiated_version_and_compression(forced):
    c, s, _, version, compression = forced
    assert c.protocol_version == version
    conns = [c.control_connection._connection]
    for pool in s.get_pools():
        conns.extend(pool.get_connections())
    assert len(conns) >= 2
    for conn in conns:
        assert conn.protocol_version == version
        if compression:
            assert conn._compression_type == "lz4", "the server accepted COMPRESSION=lz4"
            assert conn.compressor is not None
        else:
            assert conn.compressor is None
        # v5 connections switch to segment framing (CRC24 header, CRC32 payload) after READY
        assert conn._is_checksumming_enabled == (version >= 5)


def test_crud_prepared_and_paging(forced):
    _, s, t, _, _ = forced
    ins = s.prepare(f"INSERT INTO {t} (k, c, v) VALUES (?, ?, ?)")
    for i in range(100):
        s.execute(ins, (1, i, f"row {i}"))
    s.execute(f"UPDATE {t} SET v = 'changed' WHERE k = 1 AND c = 50")
    s.execute(f"DELETE FROM {t} WHERE k = 1 AND c = 99")
    rows = list(s.execute(SimpleStatement(f"SELECT c, v FROM {t} WHERE k = 1", fetch_size=7)))
    assert [r.c for r in rows] == list(range(99))
    assert rows[50].v == "changed" and rows[49].v == "row 49"
    sel = s.prepare(f"SELECT c FROM {t} WHERE k = ?")
    sel.fetch_size = 7
    assert [r.c for r in s.execute(sel, [1])] == list(range(99))


@pytest.mark.parametrize("size", [200_000, 1_000_000])
def test_large_values_span_many_segments(forced, size):
    """Frames bigger than one v5 segment (128 KiB) are split and reassembled both ways."""
    _, s, t, _, _ = forced
    rnd = random.Random(size)
    noise = rnd.randbytes(size)                       # incompressible
    text = ("tessera " * (size // 8 + 1))[:size]      # very compressible
    ins = s.prepare(f"INSERT INTO {t} (k, c, v, b) VALUES (?, ?, ?, ?)")
    s.execute(ins, (2, size, text, noise))
    row = s.execute(f"SELECT v, b FROM {t} WHERE k = 2 AND c = {size}").one()
    assert row.v == text and row.b == noise
    # and a multi-row result larger than a segment, through literals this time
    s.execute(f"INSERT INTO {t} (k, c, v) VALUES (3, 1, '{text[:150_000]}')")
    s.execute(f"INSERT INTO {t} (k, c, v) VALUES (3, 2, '{text[:150_000]}')")
    rows = list(s.execute(f"SELECT v FROM {t} WHERE k = 3"))
    assert [r.v for r in rows] == [text[:150_000]] * 2


def test_many_concurrent_requests(forced):
    _, s, t, _, _ = forced
    ins = s.prepare(f"INSERT INTO {t} (k, c, v) VALUES (?, ?, ?)")
    futures = [s.execute_async(ins, (4, i, str(i))) for i in range(500)]
    for f in futures:
        f.result()
    sel = s.prepare(f"SELECT v FROM {t} WHERE k = 4 AND c = ?")
    futures = [s.execute_async(sel, [i]) for i in range(500)]
    assert [f.result().one().v for f in futures] == [str(i) for i in range(500)]


# ---------------------------------------------------------------------------------------
# Murmur3 tokens: the driver's implementation is the reference.

def ser_component(b):
    return struct.pack(">H", len(b)) + b + b"\x00"


def test_murmur3_single_column_keys(session, ks):
    session.execute(f"CREATE TABLE {ks}.tok_int (k int PRIMARY KEY)")
    session.execute(f"CREATE TABLE {ks}.tok_big (k bigint PRIMARY KEY)")
    session.execute(f"CREATE TABLE {ks}.tok_txt (k text PRIMARY KEY)")
    session.execute(f"CREATE TABLE {ks}.tok_blob (k blob PRIMARY KEY)")
    session.execute(f"CREATE TABLE {ks}.tok_uuid (k uuid PRIMARY KEY)")
    rnd = random.Random(3)
    cases = (
        [("tok_int", k, struct.pack(">i", k)) for k in [0, 1, -1, 42, 2 ** 31 - 1, -2 ** 31]] +
        [("tok_big", k, struct.pack(">q", k)) for k in [0, 1, -1, 2 ** 63 - 1, 123456789012345]] +
        [("tok_txt", k, k.encode()) for k in ["a", "hello", "é", "x" * 15, "y" * 16, "z" * 17,
                                              "a much longer key of more than thirty-two bytes"]] +
        [("tok_blob", b, b) for b in [b"\x00", b"\xff" * 3, rnd.randbytes(31), rnd.randbytes(100)]] +
        [("tok_uuid", u, u.bytes) for u in [uuid.UUID(int=rnd.getrandbits(128)) for _ in range(3)]]
    )
    for table, key, raw in cases:
        session.execute(f"INSERT INTO {ks}.{table} (k) VALUES (%s)", (key,))
        got = session.execute(f"SELECT token(k) FROM {ks}.{table} WHERE k = %s", (key,)).one()[0]
        assert got == murmur3(raw), f"{table} key {key!r}"


def test_murmur3_composite_keys(session, ks):
    session.execute(f"CREATE TABLE {ks}.tok_comp (a int, b text, c bigint, PRIMARY KEY ((a, b, c)))")
    ins = session.prepare(f"INSERT INTO {ks}.tok_comp (a, b, c) VALUES (?, ?, ?)")
    for a, b, c in [(1, "x", 2), (0, "", 0), (-7, "composite key", 2 ** 40)]:
        session.execute(ins, (a, b, c))
        raw = ser_component(struct.pack(">i", a)) + ser_component(b.encode()) + \
            ser_component(struct.pack(">q", c))
        got = session.execute(f"SELECT token(a, b, c) FROM {ks}.tok_comp WHERE a = %s AND b = %s "
                              "AND c = %s", (a, b, c)).one()[0]
        assert got == murmur3(raw), (a, b, c)


def test_routing_agrees_with_driver_token_map(session, cluster, ks):
    session.execute(f"CREATE TABLE {ks}.tok_route (k int PRIMARY KEY, v int)")
    ins = session.prepare(f"INSERT INTO {ks}.tok_route (k, v) VALUES (?, ?)")
    for k in range(20):
        bound = ins.bind((k, k))
        assert bound.routing_key == struct.pack(">i", k)
        assert [h.address for h in cluster.metadata.get_replicas(ks, bound.routing_key)] \
            == [cluster.metadata.all_hosts()[0].address]
        session.execute(bound)
    assert session.execute(f"SELECT COUNT(*) FROM {ks}.tok_route").one().count == 20


# ---------------------------------------------------------------------------------------
# Raw frames: the server answers bad input with the protocol's errors, and a bad
# connection never disturbs the others.

@pytest.fixture
def bystander(node):
    """A healthy v4 connection that must keep working while others misbehave."""
    conn = RawConnection(node.addr, node.port)
    conn.handshake()
    yield conn
    f = conn.request(OP_QUERY, query_body("SELECT release_version FROM system.local"), stream=9)
    assert f is not None and f[3] == OP_RESULT, "the healthy connection was disturbed"
    conn.close()


def check_server_serves(node):
    c = make_cluster(node)
    try:
        row = c.connect().execute("SELECT key FROM system.local WHERE key = 'local'").one()
        assert row.key == "local"
    finally:
        c.shutdown()


@pytest.mark.parametrize("version", [0x42, 0x41, 0x06, 0x00])
def test_unsupported_version_answered_with_protocol_error(node, bystander, version):
    conn = RawConnection(node.addr, node.port)
    try:
        conn.send(frame(OP_OPTIONS, version=version))
        f = conn.recv_frame()
        assert f is not None, "the server closed the connection without answering"
        _, _, _, opcode, body = f
        assert opcode == OP_ERROR
        code, message = parse_error(body)
        assert code == 0x000A
        assert "Invalid or unsupported protocol version" in message
    finally:
        conn.close()
    check_server_serves(node)


def test_options_supported_lists_cql_version_and_compression(node):
    conn = RawConnection(node.addr, node.port)
    try:
        f = conn.request(OP_OPTIONS)
        assert f is not None and f[3] == OP_SUPPORTED
        body, pos, options = f[4], 2, {}
        (n,) = struct.unpack_from(">H", body, 0)
        for _ in range(n):
            key, pos = read_string(body, pos)
            (m,) = struct.unpack_from(">H", body, pos)
            pos += 2
            values = []
            for _ in range(m):
                v, pos = read_string(body, pos)
                values.append(v)
            options[key] = values
        assert "CQL_VERSION" in options and options["CQL_VERSION"]
        assert "COMPRESSION" in options
        assert "lz4" in options["COMPRESSION"]
        assert options.get("PROTOCOL_VERSIONS") is None or "4/v4" in options["PROTOCOL_VERSIONS"]
    finally:
        conn.close()


def test_garbage_bytes_close_only_that_connection(node, bystander):
    conn = RawConnection(node.addr, node.port)
    try:
        conn.send(b"GET / HTTP/1.1\r\nHost: tessera\r\n\r\n" + random.Random(1).randbytes(1000))
        assert conn.wait_closed(10), "the server kept a connection that sent garbage"
    finally:
        conn.close()
    check_server_serves(node)


@pytest.mark.parametrize("length", [2 ** 31 - 1, 2 ** 30, -1])
def test_oversized_frame_closes_connection(node, bystander, length):
    conn = RawConnection(node.addr, node.port)
    try:
        conn.handshake()
        conn.send(struct.pack(">BBhBi", 4, 0, 3, OP_QUERY, length) + b"\x00" * 64)
        first = conn.recv_frame()
        if first is not None:
            assert first[3] == OP_ERROR, f"expected an ERROR before the close, got {first!r}"
            assert parse_error(first[4])[0] == 0x000A
        assert conn.wait_closed(10), "an oversized frame must close its connection"
    finally:
        conn.close()
    check_server_serves(node)


@pytest.mark.parametrize("sent", [5, 9, 20])
def test_truncated_frame_then_close(node, bystander, sent):
    whole = frame(OP_QUERY, query_body("SELECT * FROM system.local"), stream=2)
    for _ in range(3):
        conn = RawConnection(node.addr, node.port)
        conn.handshake()
        conn.send(whole[:sent])
        conn.close()
    check_server_serves(node)


def test_unknown_opcode_is_a_protocol_error(node, bystander):
    conn = RawConnection(node.addr, node.port)
    try:
        conn.handshake()
        conn.send(frame(0x7E, b"", stream=4))
        f = conn.recv_frame()
        if f is not None:  # either an ERROR on that stream, or a close
            assert f[3] == OP_ERROR and parse_error(f[4])[0] == 0x000A
    finally:
        conn.close()
    check_server_serves(node)


def test_query_before_startup_is_refused(node):
    conn = RawConnection(node.addr, node.port)
    try:
        f = conn.request(OP_QUERY, query_body("SELECT * FROM system.local"))
        if f is not None:
            assert f[3] == OP_ERROR and parse_error(f[4])[0] == 0x000A, f
    finally:
        conn.close()


def test_pipelined_streams_answered_on_their_ids(node):
    conn = RawConnection(node.addr, node.port)
    try:
        conn.handshake()
        streams = [5, 300, 32767, 0, 77]
        conn.send(b"".join(frame(OP_QUERY, query_body("SELECT key FROM system.local"), stream=s)
                           for s in streams))
        got = []
        for _ in streams:
            f = conn.recv_frame()
            assert f is not None and f[3] == OP_RESULT
            assert f[0] == 0x84, "a response to a v4 request: version 4 with the response bit"
            got.append(f[2])
        assert sorted(got) == sorted(streams)
    finally:
        conn.close()


def test_register_receives_schema_change_event(node, session, ks):
    conn = RawConnection(node.addr, node.port)
    try:
        conn.handshake()
        f = conn.request(OP_REGISTER, string_list(["SCHEMA_CHANGE"]))
        assert f is not None and f[3] == OP_READY
        session.execute(f"CREATE TABLE {ks}.evented (k int PRIMARY KEY)")
        f = conn.recv_frame()
        assert f is not None and f[3] == OP_EVENT and f[2] == -1
        pos, fields = 0, []
        for _ in range(5):
            s, pos = read_string(f[4], pos)
            fields.append(s)
        assert fields == ["SCHEMA_CHANGE", "CREATED", "TABLE", ks, "evented"]
    finally:
        conn.close()


def test_many_connections_at_once(node):
    conns = [RawConnection(node.addr, node.port) for _ in range(50)]
    try:
        for c in conns:
            c.handshake()
        for i, c in enumerate(conns):
            f = c.request(OP_QUERY, query_body("SELECT key FROM system.local"), stream=i)
            assert f is not None and f[3] == OP_RESULT
    finally:
        for c in conns:
            c.close()


def test_random_frames_never_kill_the_node(node, bystander):
    """Fuzz-ish: valid v4 headers with random opcodes/bodies; every answer is well-formed."""
    rnd = random.Random(1234)
    for i in range(60):
        conn = RawConnection(node.addr, node.port, timeout=2)
        try:
            if i % 2:
                conn.handshake()
            body = rnd.randbytes(rnd.randint(0, 64))
            conn.send(frame(rnd.choice([0x01, 0x05, 0x07, 0x09, 0x0A, 0x0B, 0x0D, 0x0F]), body,
                            stream=rnd.randint(0, 100)))
            f = conn.recv_frame()
            if f is not None:
                assert f[0] & 0x7F in (4, 5)
        except OSError:
            pass  # a timeout or reset is an acceptable answer to garbage
        finally:
            conn.close()
    check_server_serves(node)
    assert os.environ.get("TESSERA_NODE") or node.alive()
