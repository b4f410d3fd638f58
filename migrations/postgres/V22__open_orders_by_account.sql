-- Orders are looked up by account only while they are open (a balance's pending redemptions);
-- indexing just the open ones keeps fast redemptions, confirmed on insert, out of the index.
DROP INDEX orders_account;
CREATE INDEX orders_open_by_account ON orders (account_id, fund_code) WHERE status = 'accepted';
