-- Thresholds and windows of the regulatory reports (docs/reports.md). Compliance changes one by
-- inserting a row with a later updated_at; the latest row per name wins:
--   INSERT INTO report_parameters (name, value, updated_at) VALUES ('aml_cash_threshold', 30000, now());
-- Amounts are whole yuan, shares and margins whole percent, windows days.
CREATE TABLE IF NOT EXISTS report_parameters (
    name        String,
    value       Int64,
    updated_at  DateTime
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY name;

-- Defaults, stamped at the epoch so that any later change wins. Re-running adds identical
-- rows, which collapse.
INSERT INTO report_parameters (name, value, updated_at) VALUES
    ('aml_transfer_threshold', 500000, toDateTime(0)),
    ('aml_cash_threshold', 50000, toDateTime(0)),
    ('structuring_margin_pct', 10, toDateTime(0)),
    ('structuring_window_days', 7, toDateTime(0)),
    ('structuring_min_days', 2, toDateTime(0)),
    ('in_out_days', 3, toDateTime(0)),
    ('in_out_min_amount', 50000, toDateTime(0)),
    ('in_out_ratio_pct', 80, toDateTime(0)),
    ('concentration_top_n', 10, toDateTime(0)),
    ('t0_fund_daily_limit', 100000000, toDateTime(0));

-- One row with the current value of every parameter, for the report views.
CREATE VIEW IF NOT EXISTS report_settings AS
SELECT
    argMaxIf(value, updated_at, name = 'aml_transfer_threshold') AS aml_transfer_threshold,
    argMaxIf(value, updated_at, name = 'aml_cash_threshold') AS aml_cash_threshold,
    argMaxIf(value, updated_at, name = 'structuring_margin_pct') AS structuring_margin_pct,
    argMaxIf(value, updated_at, name = 'structuring_window_days') AS structuring_window_days,
    argMaxIf(value, updated_at, name = 'structuring_min_days') AS structuring_min_days,
    argMaxIf(value, updated_at, name = 'in_out_days') AS in_out_days,
    argMaxIf(value, updated_at, name = 'in_out_min_amount') AS in_out_min_amount,
    argMaxIf(value, updated_at, name = 'in_out_ratio_pct') AS in_out_ratio_pct,
    argMaxIf(value, updated_at, name = 'concentration_top_n') AS concentration_top_n,
    argMaxIf(value, updated_at, name = 't0_fund_daily_limit') AS t0_fund_daily_limit
FROM report_parameters;
