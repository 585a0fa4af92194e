#!/usr/bin/env bash
# The test command (README.md): every crate's unit and integration tests,
# then the Python gRPC client test against the real server, then the Helm
# chart checks (deploy/helm/check.py, tests/python/test_chart.py). Python
# packages go into target/py-venv (created on first run, from PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --workspace
VENV=target/py-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import grpc_tools, grpc_health, grpc_reflection, prometheus_client, helm_python, kubernetes_validate, yaml" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r tests/python/requirements.txt
fi
"$VENV/bin/python" tests/python/test_grpc.py target/release/fathom
# The Helm chart: lint, render every ci/ value set, validate against the
# Kubernetes schemas; then run the rendered manifests' commands on loopback.
"$VENV/bin/python" deploy/helm/check.py
"$VENV/bin/python" tests/python/test_chart.py target/release/fathom
