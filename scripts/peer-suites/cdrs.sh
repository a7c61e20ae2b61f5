#!/usr/bin/env bash
# cdrs-tokio's end-to-end tests (the tests/ of its crates.io package, feature `e2e-tests`)
# against a fresh Tessera node, minus the tests listed as `skip` in
# scripts/peer-suites/cdrs-expect.txt (each with its reason).
#
#   scripts/peer-suites/cdrs.sh            node on 127.0.0.93:9142
#   CDRS_TESTS="keyspace paged_query" ...  only these test files (tests/<name>.rs)
#
# The package is fetched with cargo (a scratch crate depending on cdrs-tokio, then
# `cargo fetch`), copied to tests/.work/cdrs/pkg with its own [workspace] table so it is
# not mistaken for a member of ours, and the tests' hard-coded 127.0.0.1:9042 is replaced
# by the node's address. It builds in its own target dir (CDRS_TARGET_DIR, default
# ../target-cdrs next to the repository), so it never waits on the workspace's build lock;
# the first build takes a few minutes on 2 cores.
# Knobs: TESSERA_BIN, PEER_ADDR (127.0.0.93), CDRS_PORT (9142), CDRS_VERSION (9.0.2),
# CDRS_TIMEOUT (600 s). Output: tests/.work/logs/cdrs.log and cdrs-node.log.
set -euo pipefail
# shellcheck source=scripts/peer-suites/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ADDR="${PEER_ADDR:-127.0.0.93}"
PORT="${CDRS_PORT:-9142}"
VERSION="${CDRS_VERSION:-9.0.2}"
EXPECT="$PEER_ROOT/scripts/peer-suites/cdrs-expect.txt"
DIR="$PEER_ROOT/tests/.work/cdrs"
PKG="$DIR/pkg"
export CARGO_TARGET_DIR="${CDRS_TARGET_DIR:-$(dirname "$PEER_ROOT")/target-cdrs}"
FEATURES="e2e-tests,derive"

trap peer_stop_node EXIT
trap 'exit 130' INT TERM
command -v cargo >/dev/null || peer_die "cargo not found"

# --- the package, fetched by cargo and copied with the address patched -----------------
if [[ ! -f "$PKG/.tessera-$VERSION-$ADDR-$PORT" ]]; then
    peer_say "fetching cdrs-tokio $VERSION from crates.io"
    mkdir -p "$DIR/fetch/src"
    cat >"$DIR/fetch/Cargo.toml" <<EOF
[package]
name = "cdrs-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
cdrs-tokio = "=$VERSION"
EOF
    : >"$DIR/fetch/src/lib.rs"
    (cd "$DIR/fetch" && cargo fetch -q)
    src="$(cd "$DIR/fetch" && cargo metadata --format-version 1 | python3 -c '
import json, sys
m = json.load(sys.stdin)
print(next(p["manifest_path"] for p in m["packages"] if p["name"] == "cdrs-tokio").rsplit("/", 1)[0])')"
    [[ -d "$src/tests" ]] || peer_die "no tests/ in $src"
    rm -rf "$PKG"
    cp -r "$src" "$PKG"
    chmod -R u+w "$PKG"
    printf '\n[workspace]\n' >>"$PKG/Cargo.toml"
    sed -i "s/\"127\.0\.0\.1:9042\"/\"$ADDR:$PORT\"/g" "$PKG"/tests/*.rs
    if grep -n '127\.0\.0\.1' "$PKG"/tests/*.rs; then
        peer_die "tests still name 127.0.0.1 after patching (see above)"
    fi
    touch "$PKG/.tessera-$VERSION-$ADDR-$PORT"
fi

peer_say "cargo test --no-run (cdrs-tokio $VERSION, target $CARGO_TARGET_DIR)"
(cd "$PKG" && cargo test --locked --features "$FEATURES" --no-run -q)

# --- run each test file, skipping the listed tests (NAME is file::test) ----------------
if [[ -n "${CDRS_TESTS:-}" ]]; then
    read -r -a FILES <<<"$CDRS_TESTS"
else
    mapfile -t FILES < <(find "$PKG/tests" -maxdepth 1 -name '*.rs' -printf '%f\n' | sed 's/\.rs$//' | sort)
fi
mapfile -t SKIP < <(peer_expect "$EXPECT" skip)

log="$PEER_LOGS/cdrs.log"
results="$PEER_WORK/cdrs.results"
: >"$log"; : >"$results"
peer_say "cdrs-tokio e2e tests, node on $ADDR:$PORT (${#SKIP[@]} skipped by list)"
peer_start_node "$ADDR" "$PORT" "$PEER_LOGS/cdrs-node.log"
rc=0
deadline=$((SECONDS + ${CDRS_TIMEOUT:-600}))
for f in "${FILES[@]}"; do
    skip_args=()
    for s in "${SKIP[@]}"; do
        [[ "$s" == "$f::"* ]] && skip_args+=(--skip "${s#"$f::"}")
    done
    left=$((deadline - SECONDS))
    [[ $left -gt 0 ]] || { echo "time limit reached before tests/$f.rs"; rc=1; break; }
    echo "=== tests/$f.rs" >>"$log"
    set +e
    (cd "$PKG" && timeout --kill-after=10 "$left" cargo test --locked --features "$FEATURES" \
        --test "$f" -- --exact --test-threads 1 "${skip_args[@]}") >>"$log" 2>&1
    set -e
done
# libtest prints "test NAME ... ok|FAILED"; attribute each to the file run before it.
awk '
    /^=== tests\// { f = $2; sub(/^tests\//, "", f); sub(/\.rs$/, "", f); next }
    /^test [^ ]+ \.\.\. (ok|FAILED|ignored)$/ {
        s = ($4 == "ok") ? "PASS" : ($4 == "FAILED") ? "FAIL" : "SKIP"; print f "::" $2, s
    }' "$log" >"$results"
alive=1; kill -0 "$PEER_NODE_PID" 2>/dev/null || alive=0
peer_stop_node
peer_report "cdrs-tokio $VERSION" "$results" "$EXPECT" || rc=1
if [[ $alive == 0 ]]; then
    echo "  the node died during the run (log: $PEER_LOGS/cdrs-node.log)"; rc=1
fi
# a test binary that failed to run (build error, panic outside a test, timeout) has no
# FAILED line of its own
if grep -qE '^error: test failed|could not compile|^error\[' "$log" && ! grep -q '^test .* FAILED$' "$log"; then
    echo "  cargo test failed outside the tests:"; grep -E '^error' "$log" | head; rc=1
fi
echo "  (cargo test output: $log)"
exit $rc
