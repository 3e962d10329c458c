#!/usr/bin/env bash
# The one test command: installs what the tests need (idempotently), starts throw-away
# PostgreSQL, sshd and Slurm servers, runs every check, and stops them on every path.
# Used by the README and by .ci/run. Runs as root on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
# Throw-away servers on loopback for the tests, each stopped on every path.
# shellcheck source=scripts/test-postgres.sh
source scripts/test-postgres.sh
trap stop_test_postgres EXIT
# shellcheck source=scripts/test-sshd.sh
source scripts/test-sshd.sh
trap 'stop_test_postgres; stop_test_sshd' EXIT
# shellcheck source=scripts/test-slurm.sh
source scripts/test-slurm.sh
trap 'stop_test_postgres; stop_test_sshd; stop_test_slurm' EXIT

echo "== typecheck"; npx --no-install tsc --noEmit -p .
echo "== lint"; npx --no-install eslint .
echo "== tests"; npm test
