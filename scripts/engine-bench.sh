#!/usr/bin/env bash
# The engine benchmark (issue 3): one shard's Tessera engine against fjall and RocksDB on
# the same workload in one invocation of `tessera-engine-bench`, plus Tessera's batch-mode
# group commit against an fdatasync per write and commitlog appends alone. Installs
# Debian's librocksdb-dev (and clang for the binding generator) if missing, builds the
# benchmark with `--features compare` in its own target directory (so the workspace build
# never compiles fjall or RocksDB, and this build does not hold the shared target's lock),
# runs it, and replaces the section "Engine (one shard) vs fjall and RocksDB" of
# docs/benchmarks.md with the report (the rest of the page is kept).
#
# Environment: ENGINE_BENCH_ARGS (extra `key=value` options, e.g. "n=2000000 rounds=5"),
# ENGINE_BENCH_DIR (scratch directory for the engines' files, default /tmp: the same disk
# for all of them), ENGINE_BENCH_TARGET (target-bench/ beside the repository), ENGINE_BENCH_NO_DOC (set:
# print only), ENGINE_BENCH_DOC (the page to write, default docs/benchmarks.md),
# ENGINE_BENCH_REV (the commit to name when the tree is not a git checkout, e.g. an export
# made with `git archive`), ENGINE_BENCH_NO_BUILD (set: skip the cargo build).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${ENGINE_BENCH_TARGET:-$(cd "$ROOT/.." && pwd)/target-bench}
SCRATCH=${ENGINE_BENCH_DIR:-/tmp}
ARGS=${ENGINE_BENCH_ARGS:-}
LIBDIR=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)

if [ ! -e "$LIBDIR/librocksdb.so" ] || ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1; then
    echo "== installing librocksdb-dev, libclang-dev, clang"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq librocksdb-dev libclang-dev clang >/dev/null
fi

BIN="$TARGET/release/tessera-engine-bench"
if [ -z "${ENGINE_BENCH_NO_BUILD:-}" ]; then
    echo "== building tessera-engine-bench --features compare (target $TARGET)"
    (cd "$ROOT" && ROCKSDB_LIB_DIR="$LIBDIR" CARGO_TARGET_DIR="$TARGET" nice -n 10 \
        cargo build --release -p tessera-bench --features compare --bin tessera-engine-bench)
fi

OUT=$(mktemp /tmp/engine-bench.XXXXXX)
# shellcheck disable=SC2086
CMD="scripts/engine-bench.sh  # runs: tessera-engine-bench dir=$SCRATCH${ARGS:+ $ARGS}"
echo "== $CMD"
# shellcheck disable=SC2086
"$BIN" dir="$SCRATCH" $ARGS | tee "$OUT"

if [ -n "${ENGINE_BENCH_NO_DOC:-}" ]; then
    exit 0
fi
echo "== writing the engine section of docs/benchmarks.md"
REV=\`$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "${ENGINE_BENCH_REV:-unknown}")\`
if [ -n "$(git -C "$ROOT" status --porcelain -- engine bench 2>/dev/null)" ]; then
    REV="$REV + uncommitted changes in engine/ or bench/"
fi
python3 - "${ENGINE_BENCH_DOC:-$ROOT/docs/benchmarks.md}" "$OUT" "$CMD" "$REV" <<'PY'
import datetime, os, re, sys
doc, out, cmd, rev = sys.argv[1:5]
report = open(out).read().strip()
title = "## Engine (one shard) vs fjall and RocksDB"
page = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
# Keep the hand-written notes of the section (between the markers), replace the figures.
m = re.search(r"<!-- engine-bench notes -->\n(.*?)<!-- /engine-bench notes -->\n", page, re.S)
notes = m.group(1) if m else ""
when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
section = (
    f"{title}\n\n"
    f"Written by `scripts/engine-bench.sh` ({when}, commit {rev}); command:\n\n"
    f"```\n{cmd}\n```\n\n"
    f"{report}\n\n"
    f"<!-- engine-bench notes -->\n{notes}<!-- /engine-bench notes -->\n"
)
# The section runs from its title to the next "## " title (or the end).
pat = re.compile(re.escape(title) + r"\n.*?(?=^## |\Z)", re.S | re.M)
if pat.search(page):
    page = pat.sub(lambda _: section + "\n", page, count=1)
else:
    page = page.rstrip("\n") + "\n\n" + section
open(doc, "w").write(page.rstrip("\n") + "\n")
PY
rm -f "$OUT"
echo "== done"
