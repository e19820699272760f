#!/usr/bin/env bash
# `make test`: every test. Installs what is missing, starts its own local stack (separate from
# `make dev`), then runs: Rust unit + integration tests on DynamoDB Local and the SQS server,
# clippy, cfn-lint and sam validate, and, against `cargo lambda watch` plus the SQS bridge, the
# vendor-SDK compatibility tests, the checkout page's browser test in headless Chromium, and
# schemathesis over openapi.yaml (its generated cases are reported on their own line, not counted
# as tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0
state=.local/test
# Before the first log is written into it (the unit tests run before the stack makes it).
mkdir -p "$state"
failed=()
step() { echo; echo "==> $*" >&2; }
# Runs a command, showing and keeping its output; returns the command's own status.
run_logged() { local log=$1; shift; "$@" > >(tee "$log") 2>&1; }

step "cargo fmt --check (layout is rustfmt.toml's)"
cargo fmt --all --check || failed+=("cargo fmt")

step "build"
cargo build --quiet --workspace --all-targets

step "unit tests (every domain operation on MemoryStore, the port contract on it, the surfaces' parsers)"
run_logged "$state/unit-test.log" cargo test --workspace --exclude grants-service || failed+=("unit tests")

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  bash scripts/stack.sh stop "$state"
}
trap cleanup EXIT INT TERM
step "local stack"
# Webhook retries: the 2nd and 3rd attempts after 1 s instead of Svix's 5 s and 5 min, so that a
# receiver's third attempt (tests/compat/test_webhook_delivery.py) comes within seconds; the later
# ones after 10 min, so that endpoints schemathesis invents do not keep the functions busy.
WEBHOOK_RETRY_SCHEDULE=0,1,1,600,600,600,600,600 TABLE_NAME=grants-test bash scripts/stack.sh start "$state"
set -a; . "$state/stack.env"; set +a
./target/debug/grants-admin setup >/dev/null

step "cargo test: integration on DynamoDB Local (the port contract on DynamoStore included)"
run_logged "$state/cargo-test.log" cargo test -p grants-service || failed+=("integration tests")

step "cargo clippy (workspace lints, warnings are errors)"
cargo clippy --quiet --workspace --all-targets -- -D warnings || failed+=("clippy")

step "cfn-lint template.yaml"
cfn-lint template.yaml && echo "cfn-lint: clean" || failed+=("cfn-lint")
step "sam validate --lint"
if sam validate --lint --region us-east-1 >"$state/sam.log" 2>&1; then
  grep -i "valid" "$state/sam.log"
else
  cat "$state/sam.log" >&2; failed+=("sam validate")
fi

step "vendor SDK compatibility (cargo lambda watch + SQS bridge)"
# What `cargo lambda watch` runs (`cargo run --bin <function>`) resolves features for the functions
# package alone, not the whole workspace: build exactly that now, after every other cargo command,
# so no request waits on a compile (a first request that compiled timed out once under load).
cargo build --quiet -p functions --bins
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "PUBLIC_BASE_URL=http://127.0.0.1:$port" >> "$state/stack.env"
cargo lambda watch --ignore-changes -A 127.0.0.1 -P "$port" --env-file "$state/stack.env" >"$state/watch.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done
./target/debug/grants-bridge --invoke-url "http://127.0.0.1:$port" --schedule-every 30 2>"$state/bridge.log" &
pids+=($!)
export GRANTS_BASE_URL="http://127.0.0.1:$port"
GRANTS_TENANT="compat-$$"
GRANTS_API_KEY=$(./target/debug/grants-admin create-key --tenant "$GRANTS_TENANT" --role admin)
export GRANTS_API_KEY GRANTS_TENANT
# The browser test's tenant sends customers back to a merchant site on this machine: an http
# loopback origin, so it must be one of the tenant's allowed redirect origins.
MERCHANT_PORT=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
GRANTS_BROWSER_API_KEY=$(./target/debug/grants-admin create-key --tenant "browser-$$" --role admin)
./target/debug/grants-admin tenant-settings --tenant "browser-$$" --allowed-redirect-origins "http://127.0.0.1:$MERCHANT_PORT" >/dev/null
export MERCHANT_PORT GRANTS_BROWSER_API_KEY
# The Stripe tenant (tests/compat/test_stripe.py): Stripe test keys for the local Stripe server, an
# admin key, and its own merchant site as the allowed redirect origin.
eval "$(./target/debug/grants-admin demo --tenant "stripe-$$" --stripe true | sed -n 's/^STRIPE_\(TENANT_ID\|API_KEY\|WEBHOOK_SECRET\)=/GRANTS_STRIPE_\1=/p')"
GRANTS_STRIPE_TENANT=$GRANTS_STRIPE_TENANT_ID
STRIPE_MERCHANT_PORT=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
./target/debug/grants-admin tenant-settings --tenant "$GRANTS_STRIPE_TENANT" --allowed-redirect-origins "http://127.0.0.1:$STRIPE_MERCHANT_PORT" >/dev/null
export GRANTS_STRIPE_TENANT GRANTS_STRIPE_API_KEY GRANTS_STRIPE_WEBHOOK_SECRET STRIPE_MERCHANT_PORT LOCALSTRIPE_URL
run_logged "$state/pytest.log" timeout 900 env SCREENSHOT_DIR="$state" .venv/bin/python -m pytest -q -p no:cacheprovider tests/compat \
  || { failed+=("sdk compatibility"); tail -40 "$state/watch.log" >&2; tail -20 "$state/bridge.log" >&2; }
# flexprice 1.0.28 (the list) shares its import name with 2.x: its own run, with it first on the path.
run_logged "$state/pytest-flexprice-v1.log" timeout 300 env PYTHONPATH="$PWD/.venv/flexprice-1.0.28" \
  .venv/bin/python -m pytest -q -p no:cacheprovider tests/compat_flexprice_v1 \
  || failed+=("flexprice 1.0.28 compatibility")

step "checkout page in headless Chromium (playwright-core); Flexprice's TypeScript SDK"
run_logged "$state/browser.log" timeout 600 env SCREENSHOT_DIR="$state" node --test tests/browser/ tests/compat_ts/ \
  || { failed+=("browser"); tail -20 "$state/bridge.log" >&2; }
step "schemathesis: every operation of openapi.yaml against cargo lambda watch"
run_logged "$state/schemathesis.log" timeout 900 env ST_OUT="$state/schemathesis" bash scripts/schemathesis.sh \
  || { failed+=("schemathesis"); tail -20 "$state/watch.log" >&2; }

# node's TAP summary ("# pass N", "# fail N") in the same words as the other runners.
sed -n 's/^# pass \([0-9]*\)$/\1 passed/p; s/^# fail \([0-9]*\)$/\1 failed/p' "$state/browser.log" > "$state/browser-count.log"

# One closing line over every runner: "N passed, N failed".
count() { grep -oE "[0-9]+ $1" "$state/unit-test.log" "$state/cargo-test.log" "$state/pytest.log" "$state/pytest-flexprice-v1.log" "$state/browser-count.log" 2>/dev/null | awk -F: '{split($NF,a," "); s+=a[1]} END {print s+0}'; }
echo
echo "tests: $(count passed) passed, $(count failed) failed"
echo "schemathesis: $(grep -oE '[0-9]+ generated, [0-9]+ passed' "$state/schemathesis.log" 2>/dev/null || echo 'no result')"
if [ ${#failed[@]} -eq 0 ]; then
  echo "make test: all suites passed"
else
  echo "make test: FAILED: ${failed[*]}"
  exit 1
fi
