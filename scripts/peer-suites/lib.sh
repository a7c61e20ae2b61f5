# shellcheck shell=bash
# Shared by scripts/peer-suites/*.sh (sourced, not run): one Tessera node with a temp
# workdir, and the expectation lists (<suite>-expect.txt) every suite reads.
#
# Expectation file format, one test per line (# starts a comment):
#   NAME  skip   REASON     not run: the test needs something we deliberately don't have
#                           (a Cassandra-only feature, a JVM test flag, several nodes)
#   NAME  xfail  REASON     run, and known to fail: a real gap, not fixed yet; passing is
#                           reported (XPASS) so the line can be removed
# Anything else that fails is a FAIL, and the suite exits non-zero.

PEER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEER_WORK="${PEER_WORK:-$PEER_ROOT/tests/.work/peers}"
PEER_LOGS="${TESSERA_TEST_LOGDIR:-$PEER_ROOT/tests/.work/logs}"
TESSERA_BIN="${TESSERA_BIN:-$PEER_ROOT/target/release/tessera}"
mkdir -p "$PEER_WORK" "$PEER_LOGS"

peer_say() { printf '\n\033[1m--> %s\033[0m\n' "$*"; }
peer_die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

PEER_NODE_PID=""
PEER_NODE_DIR=""

# peer_start_node ADDR PORT LOG: a single node (--smp 1) on ADDR:PORT, internode and admin
# ports derived from PORT so two suites can run side by side on one address.
peer_start_node() {
    local addr="$1" port="$2" log="$3" off=$(( $2 - 9042 ))
    [[ -x "$TESSERA_BIN" ]] || peer_die "no node binary at $TESSERA_BIN (cargo build --release -p tessera-server)"
    for _ in $(seq 1 50); do   # a node that just exited may hold its socket for a moment
        (exec 3<>"/dev/tcp/$addr/$port") 2>/dev/null || break
        sleep 0.2
    done
    if (exec 3<>"/dev/tcp/$addr/$port") 2>/dev/null; then
        peer_die "something already listens on $addr:$port (a stale tessera?)"
    fi
    PEER_NODE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tessera-peers-$addr-$port-XXXXXX")"
    "$TESSERA_BIN" --workdir "$PEER_NODE_DIR/data" --smp 1 \
        --listen-address "$addr" --rpc-address "$addr" --seeds "$addr" \
        --native-transport-port "$port" --native-shard-aware-transport-port $((19042 + off)) \
        --storage-port $((7000 + off)) --api-port $((10000 + off)) \
        </dev/null >"$log" 2>&1 &
    PEER_NODE_PID=$!
    for _ in $(seq 1 600); do
        if (exec 3<>"/dev/tcp/$addr/$port") 2>/dev/null; then return 0; fi
        if ! kill -0 "$PEER_NODE_PID" 2>/dev/null; then
            tail -n 50 "$log"; peer_die "tessera exited early (log: $log)"
        fi
        sleep 0.1
    done
    tail -n 50 "$log"
    peer_die "tessera did not listen on $addr:$port within 60 s"
}

peer_stop_node() {
    local pid="$PEER_NODE_PID"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    [[ -n "$pid" ]] && { wait "$pid" 2>/dev/null || true; }
    PEER_NODE_PID=""
    [[ -n "$PEER_NODE_DIR" ]] && rm -rf "$PEER_NODE_DIR"
    PEER_NODE_DIR=""
}

# peer_expect FILE KIND: the test names of that kind, one a line.
peer_expect() {
    sed -e 's/#.*//' "$1" | awk -v k="$2" 'NF >= 2 && $2 == k { print $1 }'
}

# peer_report SUITE RESULTS EXPECT: RESULTS has lines "NAME PASS|FAIL|SKIP"; prints the
# tally against the expectation file and returns non-zero on an unexpected failure.
peer_report() {
    local suite="$1" results="$2" expect="$3"
    local -A is_xfail=()
    local t
    while read -r t; do [[ -n "$t" ]] && is_xfail[$t]=1; done < <(peer_expect "$expect" xfail)
    local pass=0 fail=0 skip=0 xf=0 xp=0 name status
    local -a bad=() xpassed=()
    while read -r name status; do
        [[ -z "$name" ]] && continue
        case "$status" in
            PASS) if [[ -n "${is_xfail[$name]:-}" ]]; then xp=$((xp + 1)); xpassed+=("$name"); else pass=$((pass + 1)); fi ;;
            FAIL) if [[ -n "${is_xfail[$name]:-}" ]]; then xf=$((xf + 1)); else fail=$((fail + 1)); bad+=("$name"); fi ;;
            SKIP) skip=$((skip + 1)) ;;
        esac
    done <"$results"
    local listed; listed="$(peer_expect "$expect" skip | wc -l)"
    echo "$suite: $pass passed, $fail failed, $xf known failures (xfail), $xp unexpectedly passed (xpass)," \
        "$skip skipped by the suite itself, $listed not run (skip list: ${expect#"$PEER_ROOT"/})"
    [[ ${#xpassed[@]} -gt 0 ]] && echo "  XPASS (remove from ${expect#"$PEER_ROOT"/}): ${xpassed[*]}"
    if [[ ${#bad[@]} -gt 0 ]]; then
        echo "  FAIL: ${bad[*]}"
        return 1
    fi
    return 0
}
