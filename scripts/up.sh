#!/usr/bin/env bash
# README command 1: brings everything up on a fresh machine and runs the demo end to end.
# Postgres settings and ClickHouse (installed from Debian's packages if missing), databases and
# migrations, then the command, sync and query services in the background (logs and pids in
# .run/), then the demo. Idempotent: a second run restarts the services and runs the demo again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/infra.sh

ensure_postgres
ensure_clickhouse
ensure_database "${MMF_DB_NAME:-mmf}"

log "building (release)"
cargo build --release --workspace --bins --quiet

export MMF_DATABASE_URL="${MMF_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/${MMF_DB_NAME:-mmf}}"
export MMF_CLICKHOUSE_URL="${MMF_CLICKHOUSE_URL:-http://127.0.0.1:8123}"
export MMF_CLICKHOUSE_DB="${MMF_CLICKHOUSE_DB:-mmf}"
export MMF_OPS_TOKEN="${MMF_OPS_TOKEN:-dev-ops-token}"
export MMF_PARTNERS="${MMF_PARTNERS:-demo:demo-secret}"
# The demo walks through several business days in seconds.
export MMF_SIMULATED_CLOCK="${MMF_SIMULATED_CLOCK:-1}"

mkdir -p .run
stop() {
    local name=$1
    if [ -f ".run/$name.pid" ] && kill -0 "$(cat ".run/$name.pid")" 2>/dev/null; then
        kill "$(cat ".run/$name.pid")" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$(cat ".run/$name.pid")" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f ".run/$name.pid"
}
start() {
    local name=$1 health=$2
    stop "$name"
    setsid nohup "target/release/$name" >".run/$name.log" 2>&1 &
    echo $! >".run/$name.pid"
    for _ in $(seq 1 100); do
        curl -sf "$health" >/dev/null 2>&1 && { log "$name is up ($health)"; return 0; }
        kill -0 "$(cat ".run/$name.pid")" 2>/dev/null || break
        sleep 0.2
    done
    log "$name did not become healthy; last log lines:"
    tail -20 ".run/$name.log" >&2
    exit 1
}

start mmf-command "http://${MMF_COMMAND_ADDR:-127.0.0.1:8080}/health"

# --- sync worker (Postgres -> ClickHouse): applies the ClickHouse migrations on start, then
# streams committed changes; lag and backlog on /metrics.
start mmf-sync "http://${MMF_SYNC_ADDR:-127.0.0.1:8082}/health"
# --- end sync worker

# --- query service: balances, statements, yields, reports (applies the report views on start).
start mmf-query "http://${MMF_QUERY_ADDR:-127.0.0.1:8081}/health"
# --- end query service

# --- demo: two business days of partner traffic, income, daily cycles, then the read side.
log "running the demo"
target/release/mmf-demo
log "services are running: command :8080, query :8081, sync :8082 (logs in .run/); stop with: kill \$(cat .run/*.pid)"
