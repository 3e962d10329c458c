#!/usr/bin/env bash
# The one test command: installs what the tests need (idempotently), starts a throw-away
# PostgreSQL server, runs every check, and stops the server on every path.
# Used by the README and by .ci/run. Runs as root on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
# shellcheck source=scripts/test-postgres.sh
source scripts/test-postgres.sh
trap stop_test_postgres EXIT

echo "== typecheck"; npx --no-install tsc --noEmit -p .
echo "== lint"; npx --no-install eslint .
echo "== tests"; npm test
