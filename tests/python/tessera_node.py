"""Start and stop a real Tessera node (target/release/tessera) for the Python suites.

No driver imports here: the DataStax and the Scylla suites share this module, each from
its own venv. Used by conftest.py; also runnable by hand:

    python tests/python/tessera_node.py 127.0.0.51 9042   # runs until Ctrl-C
"""

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PR_SET_PDEATHSIG = 1


def find_binary():
    """The node binary: $TESSERA_BIN, else $CARGO_TARGET_DIR (or target/)/release/tessera."""
    explicit = os.environ.get("TESSERA_BIN")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise RuntimeError(f"TESSERA_BIN={explicit} does not exist")
        return path
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    if not target.is_absolute():
        target = REPO / target
    path = target / "release" / "tessera"
    if not path.is_file():
        raise RuntimeError(
            f"{path} not found: build it first with `cargo build --release -p tessera-server` "
            "(scripts/test does this), or point TESSERA_BIN at a tessera binary")
    return path


def port_open(addr, port, timeout=0.5):
    try:
        with socket.create_connection((addr, port), timeout=timeout):
            return True
    except OSError:
        return False


def _die_with_parent():
    # The node must not outlive the test process, even when pytest is killed -9.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass


class TesseraNode:
    """One node process: `--workdir` in a fresh temp dir, logs (stderr) to a file."""

    def __init__(self, addr, port=9042, api_port=10000, workdir=None, log_path=None,
                 binary=None, extra_args=()):
        self.addr = addr
        self.port = port
        self.api_port = api_port
        self.binary = Path(binary) if binary else find_binary()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(
            tempfile.mkdtemp(prefix=f"tessera-{addr}-{port}-"))
        self.log_path = Path(log_path) if log_path else self.workdir / "node.log"
        self.extra_args = list(extra_args)
        self.proc = None
        self._log = None

    def args(self):
        return [
            str(self.binary),
            "--workdir", str(self.workdir / "data"),
            "--rpc-address", self.addr,
            "--listen-address", self.addr,
            "--native-transport-port", str(self.port),
            "--api-port", str(self.api_port),
            "--smp", "1",
            *self.extra_args,
        ]

    def start(self, timeout=60):
        # A node that just exited can keep its listening socket for a moment (io_uring
        # releases files asynchronously), so give a previous node time to let go.
        deadline = time.monotonic() + 10
        while port_open(self.addr, self.port) and time.monotonic() < deadline:
            time.sleep(0.2)
        if port_open(self.addr, self.port):
            raise RuntimeError(
                f"something already listens on {self.addr}:{self.port} "
                "(a stale tessera from an earlier run?); stop it first")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self._log.write(f"### {' '.join(self.args())}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            self.args(), stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent, env={**os.environ, "RUST_BACKTRACE": "1"})
        self.wait_for_cql(timeout)
        return self

    def wait_for_cql(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"tessera exited with status {self.proc.returncode} before listening on "
                    f"{self.addr}:{self.port}\n--- node log ---\n{self.log_tail()}")
            if port_open(self.addr, self.port):
                return
            time.sleep(0.1)
        raise RuntimeError(
            f"tessera did not listen on {self.addr}:{self.port} within {timeout}s\n"
            f"--- node log ---\n{self.log_tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15):
        """SIGTERM, then SIGKILL after `timeout` s. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def cleanup(self):
        """Remove the temp workdir (unless the log lives there)."""
        if self._own_workdir and self.workdir not in self.log_path.parents:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines=200):
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as e:
            return f"(no log: {e})"
        return "\n".join(text.splitlines()[-lines:])


if __name__ == "__main__":
    a = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.51"
    p = int(sys.argv[2]) if len(sys.argv) > 2 else 9042
    node = TesseraNode(a, p)
    node.start()
    print(f"tessera on {a}:{p}, workdir {node.workdir}, log {node.log_path}", flush=True)
    try:
        node.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()
