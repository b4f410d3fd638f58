#!/usr/bin/env bash
# Runs every test against real Postgres and ClickHouse. README command 2; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/infra.sh

ensure_postgres
ensure_clickhouse
ensure_diesel_cli

# Test databases are named mmf_t_*; leftovers from an earlier run are dropped first.
drop_test_databases() {
    # One session for all the drops (a psql per database costs a connection each).
    psql "$PGHOST_URL" -qAtc "SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE);', datname) FROM pg_database
                              WHERE datname LIKE 'mmf\_t\_%' OR datname LIKE 'mmf\_tpl\_%'" |
        psql "$PGHOST_URL" -qAt >/dev/null
    curl -sf "$CH_HTTP/?query=SELECT+name+FROM+system.databases+WHERE+name+LIKE+'mmf_t_%25'" |
        while read -r db; do curl -sf "$CH_HTTP/" --data-binary "DROP DATABASE IF EXISTS \`$db\`" >/dev/null; done
}
drop_test_databases

# Tests that run a service as its own process (kill -9) use the binaries of this build.
cargo build --workspace --bins
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
else
    cargo test --workspace --no-fail-fast "$@"
fi
drop_test_databases
