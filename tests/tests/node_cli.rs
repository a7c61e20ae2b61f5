//! The node's command line as an operator meets it: `--help`, refused values, `--config`.

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tessera_tests::binary;

fn bin_or_skip(test: &str) -> Option<std::path::PathBuf> {
    match binary() {
        Ok(b) => Some(b),
        Err(why) if std::env::var_os("TESSERA_REQUIRE_BIN").is_some() => panic!("{why}"),
        Err(why) => {
            eprintln!("!!! SKIPPED {test}: {why}");
            None
        }
    }
}

#[test]
fn help_lists_cassandra_yaml_keys() {
    let Some(bin) = bin_or_skip("help_lists_cassandra_yaml_keys") else {
        return;
    };
    let out = Command::new(bin).arg("--help").output().unwrap();
    assert!(out.status.success(), "--help exits 0");
    let text = String::from_utf8_lossy(&out.stdout);
    for key in [
        "native_transport_port",
        "rpc_address",
        "listen_address",
        "cluster_name",
    ] {
        let flag = format!("--{}", key.replace('_', "-"));
        assert!(
            text.contains(key) || text.contains(&flag),
            "--help mentions {key} or {flag}:\n{text}"
        );
    }
}

#[test]
fn invalid_values_are_refused_with_a_message() {
    let Some(bin) = bin_or_skip("invalid_values_are_refused_with_a_message") else {
        return;
    };
    for (args, key) in [
        (
            vec!["--native-transport-port", "not-a-port"],
            "native_transport_port",
        ),
        (
            vec!["--native-transport-port", "70000"],
            "native_transport_port",
        ),
        (vec!["--rpc-address", "not an address!"], "rpc_address"),
        (vec!["--commitlog-sync", "sometimes"], "commitlog_sync"),
    ] {
        let dir = std::env::temp_dir().join(format!("tessera-cli-{}", std::process::id()));
        let out = Command::new(&bin)
            .args(["--workdir", dir.to_str().unwrap()])
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(!out.status.success(), "{args:?} must be refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(key),
            "{args:?}: the message names {key}: {err}"
        );
    }
    let out = Command::new(&bin)
        .arg("--no-such-option")
        .arg("1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unknown option is refused");
}

#[test]
fn config_file_and_flag_overrides() {
    let Some(bin) = bin_or_skip("config_file_and_flag_overrides") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tessera-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let yaml = dir.join("tessera.yaml");
    // the file says port 9043 on .66; the flag moves the port to 9044
    std::fs::write(
        &yaml,
        format!(
            "cluster_name: 'From YAML'\nlisten_address: 127.0.0.66\nrpc_address: 127.0.0.66\n\
             native_transport_port: 9043\napi_port: 10066\ndata_file_directories:\n  - {}\n",
            dir.join("sst").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(&bin)
        .arg("--config")
        .arg(&yaml)
        .args(["--workdir", dir.join("work").to_str().unwrap()])
        .args(["--native-transport-port", "9044", "--smp", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let want: SocketAddr = "127.0.0.66:9044".parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut up = false;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&want, Duration::from_millis(200)).is_ok() {
            up = true;
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("node exited with {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let not_yaml_port = "127.0.0.66:9043".parse().unwrap();
    let yaml_port_used =
        TcpStream::connect_timeout(&not_yaml_port, Duration::from_millis(200)).is_ok();
    let sst_dir_made = dir.join("sst").is_dir();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        up,
        "the flag's port 9044 on the YAML's address 127.0.0.66 listens"
    );
    assert!(!yaml_port_used, "the flag overrides the YAML's port");
    assert!(sst_dir_made, "data_file_directories from the YAML is used");
}

/// The node command for `workdir` on `addr` (admin API on `api_port`).
fn node_command(
    bin: &std::path::Path,
    workdir: &std::path::Path,
    addr: &str,
    api_port: &str,
) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["--workdir", workdir.to_str().unwrap()])
        .args(["--listen-address", addr, "--rpc-address", addr])
        .args(["--api-port", api_port, "--smp", "1"])
        .stdin(Stdio::null());
    cmd
}

/// Starts a node on 127.0.0.67 and waits for its CQL port.
fn start_on_67(bin: &std::path::Path, workdir: &std::path::Path) -> std::process::Child {
    let mut child = node_command(bin, workdir, "127.0.0.67", "10067")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let want: SocketAddr = "127.0.0.67:9042".parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&want, Duration::from_millis(200)).is_ok() {
            return child;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("node exited with {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the node did not listen on {want}");
}

#[test]
fn a_second_node_on_the_same_address_or_directory_is_refused() {
    let Some(bin) = bin_or_skip("a_second_node_on_the_same_address_or_directory_is_refused") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("tessera-dup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut first = start_on_67(&bin, &dir.join("a"));
    // Same address, other directory: the CQL port is taken (SO_REUSEPORT
    // must not let a second process share it).
    let same_addr = node_command(&bin, &dir.join("b"), "127.0.0.67", "10067")
        .output()
        .unwrap();
    // Same directory, other address.
    let same_dir = node_command(&bin, &dir.join("a"), "127.0.0.68", "10068")
        .output()
        .unwrap();
    // kill -9 and an immediate restart on the same address and directory work.
    let _ = first.kill();
    let _ = first.wait();
    let mut again = start_on_67(&bin, &dir.join("a"));
    let _ = again.kill();
    let _ = again.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(!same_addr.status.success(), "{}", text(&same_addr));
    assert!(
        text(&same_addr).contains("Failed to bind port 9042 on 127.0.0.67"),
        "{}",
        text(&same_addr)
    );
    assert!(!same_dir.status.success(), "{}", text(&same_dir));
    assert!(
        text(&same_dir).contains("is in use by another Tessera process"),
        "{}",
        text(&same_dir)
    );
}
