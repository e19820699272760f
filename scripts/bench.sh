#!/usr/bin/env bash
# `make bench`: every figure of bench/REPORT.md, measured on this machine, then the report itself.
# Installs what is missing (the arm64 Rust target, oha 1.12.0 into .tools/), builds the functions in
# release, starts its own local stack (separate from `make dev` and `make test`), and runs:
#   1. round trips per operation (tests/api/round_trips.rs with ROUND_TRIPS_OUT)
#   2. handler overhead: bare GetItem vs the handler vs `cargo lambda watch --release` (oha)
#   3. cold start of every function binary vs a hello-world lambda_http binary
#   4. arm64 zip sizes from `cargo lambda build --release --arm64 --output-format zip`
#   5. criterion benches (bench/benches/)
#   6. the hot entitlement: 1, 8 and 64 concurrent usage writers, in one execution environment each
#      (classic Lambda), 8 in one, and 64 in four of 16 (Lambda Managed Instances)
#   8. the ledger at volume: reads at 10 to 100,000 usage events
# Raw results stay in .local/bench/; bench/report.py writes bench/REPORT.md from them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0
out=.local/bench
mkdir -p "$out"
step() { echo; echo "==> $*" >&2; }

step "tools: the aarch64 target, oha"
rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
[ -x .tools/bin/oha ] || cargo install --quiet oha --version 1.12.0 --locked --root .tools

step "release build (x86_64, this machine)"
cargo build --quiet --release -p functions -p grants-bench --bins

# First, on a machine where nothing else runs yet: after the stack, the emulator and the load steps
# below, every start here was measured about 1.4x slower and far more spread out.
step "3. cold start"
sync
fns=$(ls functions/src/bin/*.rs | xargs -n1 basename | sed 's/\.rs$//' | sed 's|^|target/release/|')
# shellcheck disable=SC2086
./target/release/cold-start --runs 201 --out "$out/cold_start.json" target/release/hello-lambda $fns
cargo build --quiet --workspace --all-targets

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  bash scripts/stack.sh stop "$out/stack"
}
trap cleanup EXIT INT TERM
step "local stack"
TABLE_NAME=grants-bench bash scripts/stack.sh start "$out/stack"
set -a; . "$out/stack/stack.env"; set +a
./target/debug/grants-admin setup >/dev/null

step "1. round trips per operation"
ROUND_TRIPS_OUT="$PWD/$out/round_trips.md" cargo test --quiet --test api round_trips

step "2. handler overhead (cargo lambda watch --release, oha)"
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cargo lambda watch --release --ignore-changes -A 127.0.0.1 -P "$port" --env-file "$out/stack/stack.env" >"$out/watch.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
# Warm both functions (watch starts each on its first request).
./target/release/load overhead --base-url "http://127.0.0.1:$port" --oha .tools/bin/oha --requests 20 --rounds 1 --out "$out/overhead-warmup.json"
./target/release/load overhead --base-url "http://127.0.0.1:$port" --oha .tools/bin/oha --requests 300 --rounds 5 --out "$out/overhead.json"

step "6. hot entitlement"
./target/release/load hot --writers 1/1,8/1,64/1,8/8,64/16 --events 1920 --rounds 3 --out "$out/hot.json"

step "8. the ledger at volume (10 to 100,000 usage events on one entitlement)"
./target/release/load volume --events 10,1000,10000,100000 --out "$out/volume.json"

# Nothing else runs while criterion measures: the emulator and the stack (a JVM) stop first.
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
pids=()
bash scripts/stack.sh stop "$out/stack"

step "5. criterion"
cargo bench --quiet -p grants-bench --bench ledger --bench surfaces -- --output-format bencher 2>/dev/null | tee "$out/criterion.txt"

step "4. arm64 zips (cargo lambda build --release --arm64 --output-format zip)"
rm -rf "$out/lambda"
cargo lambda build --release --arm64 --output-format zip -p functions --lambda-dir "$out/lambda" >"$out/lambda-build.log" 2>&1
.venv/bin/python - "$out" <<'PY'
import json, os, sys
d = sys.argv[1]
zips = {}
for name in sorted(os.listdir(os.path.join(d, "lambda"))):
    z = os.path.join(d, "lambda", name, "bootstrap.zip")
    if os.path.exists(z):
        zips[name] = os.path.getsize(z)
json.dump({"zips": zips, "note": open(os.path.join("bench", "sizes-note.md")).read().strip()}, open(os.path.join(d, "sizes.json"), "w"), indent=1)
PY

step "report"
.venv/bin/python bench/report.py "$out" > bench/REPORT.md
echo "bench/REPORT.md written"
