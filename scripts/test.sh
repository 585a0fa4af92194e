#!/usr/bin/env bash
# The test command (README.md): every crate's unit and integration tests,
# then the Python gRPC client test against the real server. Python packages
# for the latter go into target/py-venv (created on first run, from PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --workspace
VENV=target/py-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import grpc_tools, grpc_health, grpc_reflection, prometheus_client" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r tests/python/requirements.txt
fi
"$VENV/bin/python" tests/python/test_grpc.py target/release/fathom
