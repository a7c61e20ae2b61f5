"""Helpers for the Python suites (driver-agnostic: both drivers provide `cassandra`)."""

import itertools
import re
import socket
import struct
import time

_table_ids = itertools.count(1)


def make_cluster(node, **kwargs):
    from cassandra.cluster import Cluster
    return Cluster(contact_points=[node.addr], port=node.port, **kwargs)


def sanitize(name):
    return re.sub(r"[^a-z0-9_]", "_", name.lower())[:40]


def new_table(session, ks, body, options=""):
    """CREATE TABLE ks.t_N (body) [WITH options]; returns 'ks.t_N'."""
    name = f"{ks}.t_{next(_table_ids)}"
    ddl = f"CREATE TABLE {name} ({body})"
    if options:
        ddl += f" WITH {options}"
    session.execute(ddl)
    return name


def wait_until(predicate, timeout=15.0, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------
# Raw CQL native protocol v4 framing, for tests that must control the bytes on the wire.

OP_ERROR, OP_STARTUP, OP_READY, OP_OPTIONS, OP_SUPPORTED = 0x00, 0x01, 0x02, 0x05, 0x06
OP_QUERY, OP_RESULT, OP_REGISTER, OP_EVENT = 0x07, 0x08, 0x0B, 0x0C


def frame(opcode, body=b"", stream=0, version=4, flags=0):
    return struct.pack(">BBhBi", version, flags, stream, opcode, len(body)) + body


def cql_string(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def cql_long_string(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def string_map(d):
    return struct.pack(">H", len(d)) + b"".join(cql_string(k) + cql_string(v) for k, v in d.items())


def string_list(items):
    return struct.pack(">H", len(items)) + b"".join(cql_string(s) for s in items)


def query_body(cql, consistency=0x0001):
    return cql_long_string(cql) + struct.pack(">HB", consistency, 0)


def read_string(body, pos):
    (n,) = struct.unpack_from(">H", body, pos)
    return body[pos + 2:pos + 2 + n].decode(errors="replace"), pos + 2 + n


def parse_error(body):
    (code,) = struct.unpack_from(">i", body, 0)
    message, _ = read_string(body, 4)
    return code, message


class RawConnection:
    """A bare TCP connection speaking v4 frames (no driver in the way)."""

    def __init__(self, addr, port, timeout=10.0):
        self.sock = socket.create_connection((addr, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, n):
        """Read until buf has n bytes; False on EOF/reset."""
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return False
            if not chunk:
                return False
            self.buf += chunk
        return True

    def recv_frame(self):
        """(version byte, flags, stream, opcode, body), or None if the server closed the connection."""
        if not self._fill(9):
            return None
        version, flags, stream, opcode, length = struct.unpack(">BBhBi", self.buf[:9])
        if not self._fill(9 + length):
            return None
        body = self.buf[9:9 + length]
        self.buf = self.buf[9 + length:]
        return version, flags, stream, opcode, body

    def request(self, opcode, body=b"", stream=1):
        self.send(frame(opcode, body, stream))
        while True:
            f = self.recv_frame()
            if f is None or f[2] == stream:
                return f

    def handshake(self):
        f = self.request(OP_STARTUP, string_map({"CQL_VERSION": "3.0.0"}))
        assert f is not None and f[3] == OP_READY, f"STARTUP answered {f!r}"

    def wait_closed(self, timeout=10.0):
        """True when the server closes the connection within `timeout` s (frames before the
        close are read and dropped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
