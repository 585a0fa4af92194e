#!/usr/bin/env bash
# The test command (README.md): every crate's unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --workspace
