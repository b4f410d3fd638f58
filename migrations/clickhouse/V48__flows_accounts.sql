-- The partners and accounts each person traded through that day, so that the AML and
-- suspicious-pattern reports answer from investor_flows alone: reading them from the day's
-- orders (FINAL, one stream) took 16 s for a peak day of 30M orders. Days built before this
-- migration have empty lists; Postgres V33 forgets them (flows_days), so the sync worker
-- builds every day again, in order, and the reports read the orders until it has.
ALTER TABLE investor_flows
    ADD COLUMN partner_ids Array(String),
    ADD COLUMN account_ids Array(String);
