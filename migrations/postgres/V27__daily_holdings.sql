-- Days whose holdings the sync worker has built in ClickHouse's daily_holdings
-- (docs/decisions/0031-daily-holdings.md), with the totals it read back. The next day to build
-- is the one after the latest; a day is recorded only after its rows are in ClickHouse, so a
-- crash in between rebuilds it.
CREATE TABLE holdings_days (
    day         date PRIMARY KEY,
    positions   bigint NOT NULL,
    units       numeric(20,2) NOT NULL,
    income      numeric(20,2) NOT NULL,
    built_at    timestamptz NOT NULL DEFAULT now(),
    seconds     double precision NOT NULL
);

-- The position snapshots this replaces.
DELETE FROM sync_cursors WHERE stream IN ('position_snapshots', 'position_snapshots_income');
