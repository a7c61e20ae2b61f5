#!/usr/bin/env bash
# gocql's integration suite (Debian's golang-github-gocql-gocql-dev, gocql 1.3.2) against a
# fresh Tessera node: the `cassandra` and `integration` build tags, as gocql's own
# integration.sh runs them against a ccm cluster, minus the tests listed as `skip` in
# scripts/peer-suites/gocql-expect.txt (each with its reason).
#
#   scripts/peer-suites/gocql.sh                 node on 127.0.0.93:9042, protocol v4
#   GOCQL_PROTOS="3 4" scripts/peer-suites/gocql.sh  each version in turn, a fresh node each
#   GOCQL_RUN='TestCAS|TestTracing' ...          only these tests (a Go regexp)
#
# Needs go and the gocql sources: installed with apt-get when missing and running as root
# (Debian/Ubuntu), else say how. Builds offline (GO111MODULE=off, GOPATH=/usr/share/gocode).
# Knobs: TESSERA_BIN, PEER_ADDR (127.0.0.93), GOCQL_PORT (9042), GOCQL_TIMEOUT (600 s per
# protocol version). Output: tests/.work/logs/gocql-v<N>.log and gocql-node-v<N>.log.
set -euo pipefail
# shellcheck source=scripts/peer-suites/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ADDR="${PEER_ADDR:-127.0.0.93}"
PORT="${GOCQL_PORT:-9042}"
# Not v5: gocql 1.3.2 sends v5 as the pre-4.0 "v5-beta" (USE_BETA flag, no segment
# framing) and cannot read the v5 segments a Cassandra 4.0 node (or ours) answers with.
PROTOS="${GOCQL_PROTOS:-4}"
EXPECT="$PEER_ROOT/scripts/peer-suites/gocql-expect.txt"
GOCQL_PKG=github.com/gocql/gocql
GOCODE=/usr/share/gocode
SRC="$GOCODE/src/$GOCQL_PKG"
# The version the node reports in system.local.release_version: gocql's tests pick
# their expectations (text vs varchar, materialized views, ...) from -gocql.cversion.
CVERSION="${GOCQL_CVERSION:-4.0.11}"

trap peer_stop_node EXIT
trap 'exit 130' INT TERM

# --- go and the gocql sources ----------------------------------------------------------
if ! command -v go >/dev/null || [[ ! -f "$SRC/session.go" ]]; then
    if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
        peer_say "apt-get install golang-go golang-github-gocql-gocql-dev"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go golang-github-gocql-gocql-dev >/dev/null
    else
        peer_die "needs go and gocql's sources: apt-get install golang-go golang-github-gocql-gocql-dev"
    fi
fi

# --- the test binary (rebuilt when the sources change) ----------------------------------
export GO111MODULE=off GOPATH="$GOCODE" GOFLAGS="" GOCACHE="$PEER_WORK/gocache"
BIN="$PEER_WORK/gocql.test"
if [[ ! -x "$BIN" ]] || [[ -n "$(find "$SRC" -maxdepth 1 -name '*.go' -newer "$BIN" -print -quit)" ]]; then
    peer_say "go test -c -tags 'cassandra integration' $GOCQL_PKG ($(go version | awk '{print $3}'))"
    go test -tags "cassandra integration" -c -o "$BIN" "$GOCQL_PKG"
fi

# --- which tests: every Test* the binary has, minus the skip list ------------------------
mapfile -t SKIP < <(peer_expect "$EXPECT" skip)
mapfile -t ALL < <("$BIN" -test.list '^Test' | grep '^Test')
declare -A IS_SKIP=() IS_TEST=()
for t in "${SKIP[@]}"; do IS_SKIP[$t]=1; done
RUN=()
for t in "${ALL[@]}"; do
    IS_TEST[$t]=1
    [[ -n "${IS_SKIP[$t]:-}" ]] || RUN+=("$t")
done
for t in "${SKIP[@]}"; do
    [[ -n "${IS_TEST[$t]:-}" ]] \
        || echo "warning: $t is in ${EXPECT#"$PEER_ROOT"/} but not in this gocql's tests"
done
REGEX="^($(IFS='|'; echo "${RUN[*]}"))\$"
[[ -n "${GOCQL_RUN:-}" ]] && REGEX="$GOCQL_RUN"

# gocql's tests assume port 9042 unless the host names another.
CLUSTER="$ADDR"
[[ "$PORT" == 9042 ]] || CLUSTER="$ADDR:$PORT"

rc=0
for proto in $PROTOS; do
    log="$PEER_LOGS/gocql-v$proto.log"
    nodelog="$PEER_LOGS/gocql-node-v$proto.log"
    peer_say "gocql integration suite, protocol v$proto, node on $ADDR:$PORT (${#RUN[@]} tests, ${#SKIP[@]} skipped by list)"
    peer_start_node "$ADDR" "$PORT" "$nodelog"
    set +e
    # gocql reads testdata/ relative to its package directory.
    (cd "$SRC" && timeout --kill-after=30 "${GOCQL_TIMEOUT:-600}" "$BIN" -test.v -test.count 1 \
        -test.timeout "${GOCQL_TIMEOUT:-600}s" -test.run "$REGEX" \
        -cluster "$CLUSTER" -proto "$proto" -rf 1 -clusterSize 1 -autowait 1000ms \
        -gocql.timeout 5s -gocql.cversion "$CVERSION") >"$log" 2>&1
    go_rc=$?
    set -e
    alive=1; kill -0 "$PEER_NODE_PID" 2>/dev/null || alive=0
    peer_stop_node
    results="$PEER_WORK/gocql-v$proto.results"
    sed -nE 's/^--- (PASS|FAIL|SKIP): (Test[A-Za-z0-9_]+).*/\2 \1/p' "$log" >"$results"
    if ! peer_report "gocql v$proto" "$results" "$EXPECT"; then
        rc=1
    fi
    if [[ $alive == 0 ]]; then
        echo "  the node died during the run (log: $nodelog)"; rc=1
    fi
    # a panic or a timeout leaves no --- line for the test that was running
    if [[ $go_rc != 0 ]] && ! grep -q '^--- FAIL' "$log"; then
        echo "  go test exited $go_rc without a failing test:"; tail -n 30 "$log"; rc=1
    fi
    echo "  (go test output: $log)"
done
exit $rc
