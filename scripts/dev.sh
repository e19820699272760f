#!/usr/bin/env bash
# `make dev`: the whole service on this machine. Installs what is missing (pinned, inside the repo),
# starts DynamoDB Local, SQS and the local Stripe server, creates the table from template.yaml, seeds
# two demo tenants (one paying through the sandbox, one through Stripe), each with an admin key and
# an entitlement, and serves every route with `cargo lambda watch` on http://127.0.0.1:${PORT:-9000}.
# Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-9000}
bash scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "[dev] building the functions" >&2
cargo build --quiet --workspace
# What `cargo lambda watch` runs (`cargo run --bin <function>`) resolves features for the functions
# package alone, not the whole workspace: build exactly that now, so no request waits on a compile.
cargo build --quiet -p functions --bins

pids=()
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  bash scripts/stack.sh stop .local
}
trap cleanup EXIT INT TERM

bash scripts/stack.sh start .local
# The base of the checkout URLs the service hands out (never taken from a request's Host header).
echo "PUBLIC_BASE_URL=http://127.0.0.1:$PORT" >> .local/stack.env
set -a; . .local/stack.env; set +a
./target/debug/grants-admin setup >/dev/null
./target/debug/grants-admin demo | tee .local/demo.env
# The Stripe demo tenant: test keys for the local Stripe server, whose webhooks for this tenant go
# to the service's Stripe route (as a merchant sets up in Stripe's dashboard).
./target/debug/grants-admin demo --tenant demo-stripe --stripe true > .local/demo-stripe.env
grep -E '^STRIPE_(API_KEY|ENTITLEMENT_ID)=' .local/demo-stripe.env | tee -a .local/demo.env
. .local/demo-stripe.env
.venv/bin/python - "$LOCALSTRIPE_URL/_config/webhooks/demo-stripe" \
  "http://127.0.0.1:$PORT/v1/webhooks/stripe/demo-stripe" "$STRIPE_WEBHOOK_SECRET" <<'PY'
import sys, urllib.parse, urllib.request
config, url, secret = sys.argv[1:]
urllib.request.urlopen(config, urllib.parse.urlencode({"url": url, "secret": secret}).encode(), timeout=10)
PY
echo "BASE_URL=http://127.0.0.1:$PORT" | tee -a .local/demo.env

cargo lambda watch --ignore-changes -A 127.0.0.1 -P "$PORT" --env-file .local/stack.env &
pids+=($!)
# Plays the SQS event source mapping (payment events -> fulfil-payments) and the expiry schedule.
./target/debug/grants-bridge --invoke-url "http://127.0.0.1:$PORT" --schedule-every 60 2>.local/bridge.log &
pids+=($!)
. .local/demo.env
cat >&2 <<MSG
[dev] serving on http://127.0.0.1:$PORT (these lines are also in .local/demo.env). Try:
  curl -s -X POST http://127.0.0.1:$PORT/v1/entitlements/$ENTITLEMENT_ID/grants \\
    -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \\
    -d '{"amount": 500, "idempotencyKey": "promo-500"}'
  curl -s -X POST http://127.0.0.1:$PORT/v1/entitlements/$ENTITLEMENT_ID/grants/purchase \\
    -H "Authorization: Bearer $API_KEY" -H 'Content-Type: application/json' \\
    -d '{"amount": 1000, "price": "5.00", "idempotencyKey": "topup-1"}'
  then open paymentSessions[0].url in a browser and click Pay.
Buy credits with a (test) card, through the local Stripe server:
  curl -s -X POST http://127.0.0.1:$PORT/v1/entitlements/$STRIPE_ENTITLEMENT_ID/grants/purchase \\
    -H "Authorization: Bearer $STRIPE_API_KEY" -H 'Content-Type: application/json' \\
    -d '{"amount": 1000, "price": "10.00", "idempotencyKey": "card-topup-1"}'
  then open paymentSessions[0].url, type 4242424242424242, any future month/year, any CVC and
  postal code, and click Pay (4000000000000341 is declined). GET /v2/invoices/<invoiceId> is PAID.
MSG
wait "${pids[@]}"
