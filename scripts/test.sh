#!/usr/bin/env bash
# Runs every test: the Rust workspace (unit, property and integration tests, which start the
# real server and simulator on port 0) and the Python tests that drive the real binary with the
# official SDKs. Install the Python requirements first: pip install -r tests/python/requirements.txt
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --bin reelay
cargo test --workspace --all-targets
REELAY_BIN="$PWD/target/debug/reelay" python3 -m pytest tests/python -q
