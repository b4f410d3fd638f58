-- A fund account number is 12 digits (the API's AccountId; the service numbers accounts
-- '8' followed by 11 digits). ClickHouse's daily holdings group accounts by that number as an
-- integer and write it back with its leading zeros, which holds only for exactly this form.
ALTER TABLE accounts ADD CONSTRAINT account_id_12_digits CHECK (account_id ~ '^[0-9]{12}$');
