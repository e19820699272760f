#!/usr/bin/env bash
# Regenerates the hashed Python locks from the pins people edit, after a change to
# requirements-dev.txt (or to the flexprice 1.0.28 pin below):
#   requirements-dev.lock             every package of requirements-dev.txt's tree, pinned, with the
#                                     sha256 of each of its files on PyPI
#   requirements-flexprice-v1.lock    flexprice==1.0.28 alone (scripts/bootstrap.sh installs it with
#                                     --no-deps into .venv/flexprice-1.0.28), with its hashes
# scripts/bootstrap.sh installs both with --require-hashes. pip-tools runs from a throwaway venv,
# never .venv. Run it with the python3 the project uses (3.11, x86_64 Linux): the lock resolves
# environment markers for the interpreter that runs it. Versions already in the lock are kept
# unless requirements-dev.txt needs others; UPGRADE=1 moves every unpinned dependency to its newest.
set -euo pipefail
cd "$(dirname "$0")/.."
flexprice_v1=flexprice==1.0.28
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/pip" install --quiet --disable-pip-version-check pip-tools==7.6.2
# Only the package index: a local wheel directory (PIP_FIND_LINKS) must not leak into the lock.
compile() { env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL CUSTOM_COMPILE_COMMAND="bash scripts/lock-python.sh" \
  "$tools/venv/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --no-strip-extras --no-emit-index-url \
  --no-emit-find-links "$@"; }

compile ${UPGRADE:+--upgrade} --output-file requirements-dev.lock requirements-dev.txt

# flexprice 1.0.28 is installed without its dependencies: its lock holds its own entry only.
echo "$flexprice_v1" > "$tools/flexprice-v1.in"
compile --output-file "$tools/flexprice-v1.lock" "$tools/flexprice-v1.in"
{
  echo "# flexprice 1.0.28 (the only version with the credit-grant list), pinned with its hashes."
  echo "# Installed by scripts/bootstrap.sh with --require-hashes --no-deps into .venv/flexprice-1.0.28;"
  echo "# its dependencies come from requirements-dev.lock. Regenerate: bash scripts/lock-python.sh"
  # The flexprice entry: its line, its --hash continuation lines (no "# via" comment).
  awk '/^flexprice==/ {on=1} on && /^[[:space:]]*#/ {exit} on {print} on && !/\\$/ {exit}' "$tools/flexprice-v1.lock"
} > requirements-flexprice-v1.lock
grep -q "^$flexprice_v1 " requirements-flexprice-v1.lock || { echo "no $flexprice_v1 entry in its lock" >&2; exit 1; }
echo "requirements-dev.lock and requirements-flexprice-v1.lock written" >&2
