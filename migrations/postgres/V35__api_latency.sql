-- How long partners' requests are taking, as each API instance measured them over its last
-- second (docs/decisions/0037-cycle-pacing.md). The daily cycle reads it between batches and
-- pauses while partners wait: the instances and the cycle share nothing but Postgres.
-- Unlogged: a crash empties it, and a reading older than a few seconds means nothing anyway.
CREATE UNLOGGED TABLE api_latency (
    -- Service name, host and process of the instance; a restarted instance is a new row.
    instance     text PRIMARY KEY,
    -- 99th percentile and count of the partner requests answered in the window.
    p99_us       bigint NOT NULL,
    requests     bigint NOT NULL,
    measured_at  timestamptz NOT NULL
);
