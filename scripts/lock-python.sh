#!/usr/bin/env bash
# Regenerates the hashed Python locks from the pins people edit, after a change to
# requirements-dev.txt or to one of the two pins below:
#   requirements-dev.lock             requirements-dev.txt's whole tree, every package pinned with the
#                                     sha256 of each of its files on PyPI
#   requirements-pip.lock             pip itself: scripts/bootstrap.sh upgrades the venv's pip from it
#                                     first (the pip python3 -m venv brings, 23.2.1 with Python 3.11,
#                                     rejects hashed `pkg[extra]==v` pins: pypa/pip#9644)
#   requirements-flexprice-v1.lock    flexprice==1.0.28 alone (installed with --no-deps into
#                                     .venv/flexprice-1.0.28; its dependencies come from the venv)
# scripts/bootstrap.sh installs all three with --require-hashes. pip-tools runs from a throwaway
# venv, never .venv. Run it with the python3 the project uses (3.11, x86_64 Linux): the lock
# resolves environment markers for the interpreter that runs it. Versions already in
# requirements-dev.lock are kept unless requirements-dev.txt needs others; UPGRADE=1 moves every
# package requirements-dev.txt does not pin to its newest version.
set -euo pipefail
cd "$(dirname "$0")/.."
pip_pin=pip==26.3
flexprice_v1_pin=flexprice==1.0.28
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/pip" install --quiet --disable-pip-version-check pip-tools==7.6.2
# Only the package index: a local wheel directory (PIP_FIND_LINKS) must not leak into a lock.
compile() { env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL CUSTOM_COMPILE_COMMAND="bash scripts/lock-python.sh" \
  "$tools/venv/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --no-strip-extras --no-emit-index-url \
  --no-emit-find-links "$@"; }

compile ${UPGRADE:+--upgrade} --output-file requirements-dev.lock requirements-dev.txt

# A lock of one package without its dependencies: its own line and --hash lines, under a header.
single() {
  local pin=$1 out=$2 header=$3
  echo "$pin" > "$tools/single.in"
  compile --output-file "$tools/single.lock" "$tools/single.in"
  { printf '%s\n' "$header"
    awk -v name="${pin%%==*}==" 'index($0, name) == 1 {on=1} on && /^[[:space:]]*#/ {exit} on {print} on && !/\\$/ {exit}' "$tools/single.lock"
  } > "$out"
  grep -q "^$pin " "$out" || { echo "no $pin entry in $out" >&2; exit 1; }
}
single "$pip_pin" requirements-pip.lock \
"# pip, pinned with its hashes: scripts/bootstrap.sh installs it into .venv with --require-hashes before
# requirements-dev.lock. Regenerate: bash scripts/lock-python.sh"
single "$flexprice_v1_pin" requirements-flexprice-v1.lock \
"# flexprice 1.0.28 (the only version with the credit-grant list), pinned with its hashes.
# Installed by scripts/bootstrap.sh with --require-hashes --no-deps into .venv/flexprice-1.0.28;
# its dependencies come from requirements-dev.lock. Regenerate: bash scripts/lock-python.sh"
echo "requirements-dev.lock, requirements-pip.lock and requirements-flexprice-v1.lock written" >&2
