#!/usr/bin/env bash
# Starts a throw-away PostgreSQL server for the tests: Debian's binaries, a temporary data
# directory owned by a non-root user (PostgreSQL refuses to run as root), loopback only.
# Source it: it exports IPP_TEST_PG_URL and defines stop_test_postgres.
set -euo pipefail

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  bash "$(dirname "${BASH_SOURCE[0]}")/install-test-deps.sh"
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi

PG_TEST_DIR=$(mktemp -d /tmp/ipp-test-pg.XXXXXX)
chmod 755 "$PG_TEST_DIR"
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$PG_TEST_DIR"
  as_pg=(runuser -u postgres --)
fi
# A free port on loopback, chosen by the kernel.
PG_TEST_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')

"${as_pg[@]}" "$pg_bin/initdb" -D "$PG_TEST_DIR/data" -U ipp -A trust -E UTF8 --no-sync >"$PG_TEST_DIR/initdb.log" 2>&1 \
  || { cat "$PG_TEST_DIR/initdb.log"; exit 1; }
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$PG_TEST_DIR/data" -l "$PG_TEST_DIR/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PG_TEST_PORT -k $PG_TEST_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
  start >/dev/null || { cat "$PG_TEST_DIR/server.log"; exit 1; }

export IPP_TEST_PG_URL="postgres://ipp@127.0.0.1:$PG_TEST_PORT/postgres"
echo "== test PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_TEST_PORT (data in $PG_TEST_DIR)"

stop_test_postgres() {
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$PG_TEST_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_TEST_DIR"
}
