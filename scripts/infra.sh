#!/usr/bin/env bash
# Brings up what mmf-ta needs besides its own binaries: Postgres settings and the ClickHouse
# server. Idempotent; sourced by scripts/up.sh and scripts/test.sh.
set -euo pipefail

PGHOST_URL="${MMF_PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
CH_HTTP="${MMF_CLICKHOUSE_URL:-http://127.0.0.1:8123}"

log() { printf '[infra] %s\n' "$*" >&2; }

ensure_postgres() {
    for _ in $(seq 1 30); do
        psql "$PGHOST_URL" -qAtc 'SELECT 1' >/dev/null 2>&1 && break
        sleep 1
    done
    psql "$PGHOST_URL" -qAtc 'SELECT 1' >/dev/null || { log "Postgres is not reachable at $PGHOST_URL"; exit 1; }
    # Settings for thousands of small transactions a second and bulk daily jobs on one box.
    psql "$PGHOST_URL" -qAt >/dev/null <<'SQL'
ALTER SYSTEM SET max_connections = 400;
ALTER SYSTEM SET shared_buffers = '4GB';
ALTER SYSTEM SET effective_cache_size = '12GB';
ALTER SYSTEM SET maintenance_work_mem = '1GB';
ALTER SYSTEM SET work_mem = '64MB';
ALTER SYSTEM SET max_wal_size = '16GB';
ALTER SYSTEM SET checkpoint_timeout = '30min';
ALTER SYSTEM SET wal_compression = 'lz4';
ALTER SYSTEM SET max_parallel_workers_per_gather = 2;
SELECT pg_reload_conf();
SQL
    if [ "$(psql "$PGHOST_URL" -qAtc 'SELECT count(*) FROM pg_settings WHERE pending_restart')" != "0" ]; then
        log "restarting Postgres to apply settings"
        ver=$(ls /etc/postgresql | sort -n | tail -1)
        pg_ctlcluster --skip-systemctl-redirect "$ver" main restart
        for _ in $(seq 1 30); do
            psql "$PGHOST_URL" -qAtc 'SELECT 1' >/dev/null 2>&1 && break
            sleep 1
        done
    fi
}

ensure_database() {
    local db=$1
    if [ "$(psql "$PGHOST_URL" -qAtc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != "1" ]; then
        psql "$PGHOST_URL" -qAtc "CREATE DATABASE \"$db\"" >/dev/null
        log "created database $db"
    fi
}

ensure_clickhouse() {
    if ! command -v clickhouse-server >/dev/null 2>&1; then
        log "installing ClickHouse from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null
    fi
    if ! curl -sf "$CH_HTTP/ping" >/dev/null 2>&1; then
        log "starting ClickHouse"
        mkdir -p /var/log/clickhouse-server
        (cd /var/lib/clickhouse && setsid nohup clickhouse-server --config-file=/etc/clickhouse-server/config.xml \
            >/var/log/clickhouse-server/stdout.log 2>&1 &)
        for _ in $(seq 1 60); do
            curl -sf "$CH_HTTP/ping" >/dev/null 2>&1 && break
            sleep 1
        done
        curl -sf "$CH_HTTP/ping" >/dev/null || { log "ClickHouse did not start"; exit 1; }
    fi
}

# The diesel CLI checks the checked-in typed schema against the migrations (test
# `schema_drift`); it links libpq.
ensure_diesel_cli() {
    if [ -x "$HOME/.cargo/bin/diesel" ]; then
        return
    fi
    if ! dpkg -s libpq-dev >/dev/null 2>&1; then
        log "installing libpq-dev from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpq-dev >/dev/null
    fi
    log "installing diesel_cli"
    cargo install --locked --quiet diesel_cli@2.3.14 --no-default-features --features postgres
}
