#!/usr/bin/env bash
# The one test command: installs what the tests need (idempotently), then runs every check.
# Used by the README and by .ci/run. Runs as root on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh

echo "== typecheck"; npx --no-install tsc --noEmit -p .
echo "== lint"; npx --no-install eslint .
echo "== tests"; npm test
