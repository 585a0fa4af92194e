#!/usr/bin/env bash
# The test command (README.md): every crate's unit and integration tests,
# then the Python gRPC client test against the real server, then the Helm
# chart checks (deploy/helm/check.py, tests/python/test_chart.py), a 1-minute
# soak (benches/scripts/soak.sh), then a
# fuzz smoke run (fuzz/, installing cargo-fuzz on first run). Python
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
# Soak, 1 minute: a small index under steady load through the Rust client;
# fails on any failed round or an RSS drift of 5% or more (issue 12).
soak=$(mktemp -d)
F=target/release/fathom
$F synth --n 50000 --dim 32 --clusters 100 --out "$soak/s.fbin" --queries 2000 >/dev/null
$F gt --base "$soak/s.fbin" --queries "$soak/s.queries.fbin" --k 10 --metric l2 --out "$soak/gt.ibin" >/dev/null 2>&1
$F build --input "$soak/s.fbin" --metric l2 --out "$soak/idx" --quiet
SOAK_CHECK=1 benches/scripts/soak.sh "$soak/idx" "$soak/s.queries.fbin" "$soak/gt.ibin" "$soak/out" 1 4 7894
rm -rf "$soak"
# Fuzz smoke: every decoder of outside bytes, a few thousand runs each from
# the checked-in corpus (new inputs go to a scratch directory). cargo-fuzz
# on stable: no sanitizer (-s none).
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for t in manifest index_files vector_files codec_params requests; do
  scratch=$(mktemp -d)
  if ! (cd fuzz && cargo fuzz run -s none "$t" "$scratch" "corpus/$t" -- -runs=3000 >"$scratch.log" 2>&1); then
    tail -40 "$scratch.log"; echo "fuzz target $t failed"; exit 1
  fi
  echo "fuzz $t: $(grep '^Done' "$scratch.log")"
  rm -rf "$scratch" "$scratch.log"
done
