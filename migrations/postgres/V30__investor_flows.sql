-- Days whose per-person order flows the sync worker has built in ClickHouse's investor_flows
-- (docs/decisions/0035-investor-read-models.md). Days are built in order from the first day
-- with orders; a day is recorded only after its rows are in ClickHouse.
CREATE TABLE flows_days (
    day         date PRIMARY KEY,
    persons     bigint NOT NULL,
    orders      bigint NOT NULL,
    built_at    timestamptz NOT NULL DEFAULT now(),
    seconds     double precision NOT NULL
);
