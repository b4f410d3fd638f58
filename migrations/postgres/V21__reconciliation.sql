-- Partner request files (OFD type 02) imported for reconciliation, their records, and the
-- discrepancies found against the orders the system received. An import is one transaction:
-- a rejected file leaves nothing behind.
CREATE TABLE recon_imports (
    import_id      bigserial PRIMARY KEY,
    partner_id     text NOT NULL REFERENCES partners (partner_id),
    file_date      date NOT NULL,
    -- NULL for a daily file (compared by trade date); 0..23 for an hourly file (compared by
    -- acceptance time within that Shanghai hour).
    hour           smallint CHECK (hour BETWEEN 0 AND 23),
    file_name      text NOT NULL,
    records        integer NOT NULL,
    matched        integer NOT NULL,
    discrepancies  integer NOT NULL,
    imported_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recon_imports_date ON recon_imports (partner_id, file_date, hour);

CREATE TABLE recon_requests (
    import_id         bigint NOT NULL REFERENCES recon_imports (import_id) ON DELETE CASCADE,
    line_no           integer NOT NULL,
    request_id        text NOT NULL,
    business_code     text NOT NULL,
    account_id        text NOT NULL,
    fund_code         text NOT NULL,
    amount            numeric(18,2) NOT NULL,
    fast              boolean NOT NULL,
    cancelled         boolean NOT NULL,
    transaction_date  date NOT NULL,
    PRIMARY KEY (import_id, line_no)
);

CREATE TABLE recon_discrepancies (
    import_id   bigint NOT NULL REFERENCES recon_imports (import_id) ON DELETE CASCADE,
    seq         integer NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('missing_in_system', 'missing_in_file',
                                              'amount_mismatch', 'status_mismatch', 'kind_mismatch')),
    request_id  text NOT NULL,
    order_id    bigint,
    line_no     integer,
    detail      jsonb NOT NULL,
    PRIMARY KEY (import_id, seq)
);
