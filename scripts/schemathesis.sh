#!/usr/bin/env bash
# schemathesis over every operation of openapi.yaml against a running local API (`make test` runs it
# against `cargo lambda watch` on its stack). Needs GRANTS_BASE_URL and an admin GRANTS_API_KEY.
# Creates the objects the path parameters point at, then checks every response: no 5xx, a status
# the document lists, its content type and its schema. ST_MAX_EXAMPLES (default 20) per operation.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${GRANTS_BASE_URL:?}" "${GRANTS_API_KEY:?}"
out=${ST_OUT:-.local/test/schemathesis}
mkdir -p "$out"

api() {
  curl -sS --fail-with-body -X "$1" "$GRANTS_BASE_URL$2" -H "Authorization: Bearer $GRANTS_API_KEY" \
    -H 'content-type: application/json' -d "${3:-}"
}
pick() {
  .venv/bin/python -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]:
    v = v[int(k)] if k.isdigit() else v[k]
print(v)' "$@"
}
ent() { api POST /v1/entitlements "{\"customerId\": \"cus_st_$1\", \"featureKey\": \"api_calls\", \"subscriptionId\": \"sub_st_$$\"}" | pick id; }
grant() { api POST "/v1/entitlements/$ST_ENTITLEMENT/grants" "{\"amount\": 100, \"idempotencyKey\": \"st-$1-$$\"}" | pick id; }
capacity() {
  api POST /v2/grants '{"kind": "gpu", "cluster": "st-1", "quantity": 8, "ends_at": "2099-01-01T00:00:00Z",
    "unit_price": "2.50", "early_termination_buyback_price": "1.25", "flexible_usage_buyback_price": "0.75"}' | pick fid
}
plan() {
  api POST /v1/creditgrants "{\"name\": \"st $1\", \"scope\": \"SUBSCRIPTION\", \"subscription_id\": \"sub_st_$$\",
    \"credits\": \"10\", \"cadence\": \"ONETIME\", \"expiration_type\": \"NEVER\"}" | pick id
}
ST_ENTITLEMENT=$(ent main); export ST_ENTITLEMENT
ST_CANCEL_ENTITLEMENT=$(ent cancel); export ST_CANCEL_ENTITLEMENT
ST_GRANT=$(grant keep); export ST_GRANT
ST_VOID_GRANT=$(grant void); export ST_VOID_GRANT
purchase=$(api POST "/v1/entitlements/$ST_ENTITLEMENT/grants/purchase" "{\"amount\": 10, \"price\": \"5.00\", \"idempotencyKey\": \"st-$$\"}")
ST_INVOICE=$(pick invoiceId <<<"$purchase"); export ST_INVOICE
ST_SESSION=$(pick paymentSessions 0 url <<<"$purchase"); ST_SESSION=${ST_SESSION##*/}; export ST_SESSION
ST_CAPACITY=$(capacity); export ST_CAPACITY
ST_DELETE_CAPACITY=$(capacity); export ST_DELETE_CAPACITY
ST_PLAN=$(plan keep); export ST_PLAN
# The tenant's webhook application (enabled here unless an earlier run on this tenant did).
ST_APPLICATION=$(api GET /v0/webhooks 2>/dev/null | pick applicationId 2>/dev/null || api POST /v0/webhooks | pick applicationId)
export ST_APPLICATION
endpoint() { api POST "/api/v1/app/$ST_APPLICATION/endpoint" '{"url": "https://example.com/st"}' | pick id; }
ST_ENDPOINT=$(endpoint); export ST_ENDPOINT
ST_DELETE_ENDPOINT=$(endpoint); export ST_DELETE_ENDPOINT
# The portal page's link, and the message its grant's creation recorded (`msg_grant_created_<ULID>`).
ST_PORTAL_TOKEN=$(api GET /v0/webhooks/portal | pick url); ST_PORTAL_TOKEN=${ST_PORTAL_TOKEN##*/}; export ST_PORTAL_TOKEN
ST_MESSAGE="msg_grant_created_${ST_GRANT#grt_}"; export ST_MESSAGE
ST_DELETE_PLAN=$(plan delete); export ST_DELETE_PLAN

PYTHONPATH=tests/schemathesis SCHEMATHESIS_HOOKS=hooks .venv/bin/st --config-file tests/schemathesis/schemathesis.toml run openapi.yaml \
  --url "$GRANTS_BASE_URL" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples "${ST_MAX_EXAMPLES:-20}" \
  --seed 20261123 \
  --workers 1 \
  --request-timeout 30 \
  --suppress-health-check all \
  --report junit --report-dir "$out"
