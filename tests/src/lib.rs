//! Cross-process test support: start real `tessera` nodes for driver tests.
//!
//! The node binary is never built from here. It is found at `$TESSERA_BIN`, else
//! `$CARGO_TARGET_DIR/release/tessera` (then `debug/`), else `<workspace>/target/...`.
//! `scripts/test` builds it first and sets `TESSERA_REQUIRE_BIN=1`, which turns a
//! missing binary into a failure instead of a loudly announced skip.

use std::fs::{self, File};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where the `tessera` binary is, or why it could not be found.
pub fn binary() -> Result<PathBuf, String> {
    if let Some(explicit) = std::env::var_os("TESSERA_BIN") {
        let p = PathBuf::from(explicit);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("TESSERA_BIN={} does not exist", p.display()))
        };
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().unwrap_or(manifest);
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace.join(dir)
            }
        }
        None => workspace.join("target"),
    };
    let candidates = [target.join("release/tessera"), target.join("debug/tessera")];
    for c in &candidates {
        if c.is_file() {
            return Ok(c.clone());
        }
    }
    Err(format!(
        "no tessera binary at {} or {}: build it with `cargo build --release -p tessera-server` \
         (scripts/test does), or set TESSERA_BIN",
        candidates[0].display(),
        candidates[1].display()
    ))
}

/// A running node: killed, waited for and cleaned up on drop. When the test panicked, the
/// tail of the node's log is printed so the failure explains itself.
pub struct Node {
    pub addr: String,
    pub port: u16,
    pub api_port: u16,
    pub workdir: PathBuf,
    pub log_path: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// Starts a node on `addr:port` with a fresh temporary workdir and waits until it accepts
    /// CQL connections. Panics with the node's log when it cannot.
    pub fn start(addr: &str, port: u16) -> Node {
        match Node::try_start(addr, port) {
            Ok(n) => n,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like `start`, but a missing binary prints a loud SKIP and returns `None` (unless
    /// `TESSERA_REQUIRE_BIN` is set, as `scripts/test` does: then it panics).
    pub fn start_or_skip(addr: &str, port: u16, test: &str) -> Option<Node> {
        if let Err(why) = binary() {
            if std::env::var_os("TESSERA_REQUIRE_BIN").is_some() {
                panic!("{why}");
            }
            eprintln!();
            eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
            eprintln!("!!! SKIPPED {test}: {why}");
            eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
            return None;
        }
        Some(Node::start(addr, port))
    }

    pub fn try_start(addr: &str, port: u16) -> Result<Node, String> {
        let bin = binary()?;
        let sock: SocketAddr = format!("{addr}:{port}")
            .parse()
            .map_err(|e| format!("bad address {addr}:{port}: {e}"))?;
        // A node that just exited can keep its listening socket for a moment (io_uring
        // releases files asynchronously), so give a previous node time to let go.
        let free_by = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&sock, Duration::from_millis(300)).is_ok()
            && Instant::now() < free_by
        {
            std::thread::sleep(Duration::from_millis(200));
        }
        if TcpStream::connect_timeout(&sock, Duration::from_millis(300)).is_ok() {
            return Err(format!(
                "something already listens on {addr}:{port} (a stale tessera from an earlier run?)"
            ));
        }
        let last_octet: u16 = addr
            .rsplit('.')
            .next()
            .and_then(|o| o.parse().ok())
            .unwrap_or(0);
        let api_port = 10000 + last_octet;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let workdir = std::env::temp_dir().join(format!(
            "tessera-test-{addr}-{port}-{}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&workdir).map_err(|e| format!("mkdir {}: {e}", workdir.display()))?;
        let log_path = workdir.join("node.log");
        let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&bin);
        cmd.arg("--workdir")
            .arg(workdir.join("data"))
            .args(["--rpc-address", addr, "--listen-address", addr])
            .args(["--native-transport-port", &port.to_string()])
            .args(["--api-port", &api_port.to_string()])
            .args(["--smp", "1"])
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        // SAFETY: prctl is async-signal-safe; the node dies with the test process.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        let mut node = Node {
            addr: addr.to_string(),
            port,
            api_port,
            workdir,
            log_path,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = node.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    node.child = None; // reaped; the error below carries the log
                    return Err(format!(
                        "tessera ({}) exited with {status} before listening on {addr}:{port}\n\
                         --- node log ---\n{}",
                        bin.display(),
                        node.log_tail(100)
                    ));
                }
            }
            if TcpStream::connect_timeout(&sock, Duration::from_millis(300)).is_ok() {
                return Ok(node);
            }
            if Instant::now() > deadline {
                node.stop();
                return Err(format!(
                    "tessera did not listen on {addr}:{port} within 60 s\n--- node log ---\n{}",
                    node.log_tail(100)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `addr:port`, as drivers want it.
    pub fn contact_point(&self) -> String {
        format!("{}:{}", self.addr, self.port)
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let mut bytes = Vec::new();
            let _ = f.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGTERM, then SIGKILL after 15 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let crashed = !self.is_running() && self.child.is_some();
        self.stop();
        if std::thread::panicking() || crashed {
            eprintln!(
                "--- tessera log {}:{} ({}){} ---\n{}\n--- end of log ---",
                self.addr,
                self.port,
                self.log_path.display(),
                if crashed { ", the node had died" } else { "" },
                self.log_tail(150)
            );
            // keep the workdir with its log for a look afterwards
        } else {
            let _ = fs::remove_dir_all(&self.workdir);
        }
    }
}
