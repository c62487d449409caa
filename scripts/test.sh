#!/usr/bin/env bash
# Runs every test: the Rust workspace (unit, property and integration tests, which start the
# real server and simulator on port 0) and the Python tests that drive the real binary with the
# official SDKs. Install the Python requirements first: pip install -r tests/python/requirements.txt
#
# With REELAY_TEST_DATABASE_URL (an admin URL of a PostgreSQL server, e.g.
# postgres://postgres@127.0.0.1:5432/postgres) the store contract tests also run on PostgreSQL,
# and the server-level suite runs a second time with every test on a PostgreSQL database of its
# own (REELAY_TEST_BACKEND=postgres), the chaos test among them.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --bin reelay
cargo test --workspace --all-targets
if [ -n "${REELAY_TEST_DATABASE_URL:-}" ]; then
    echo "== the server-level suite again, on PostgreSQL =="
    REELAY_TEST_BACKEND=postgres cargo test -p reelay --test it
else
    echo "== REELAY_TEST_DATABASE_URL is not set: the PostgreSQL runs are skipped =="
fi
REELAY_BIN="$PWD/target/debug/reelay" python3 -m pytest tests/python -q
