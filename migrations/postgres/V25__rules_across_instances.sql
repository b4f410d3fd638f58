-- Money rules and reference data that hold with any number of command instances
-- (docs/decisions/0006-scale-out.md).

-- Funds and the calendar are cached by every instance. Any change to them bumps this counter
-- in the same transaction; instances poll it and reload when it moves.
CREATE TABLE reference_version (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    version  bigint NOT NULL
);
INSERT INTO reference_version VALUES (true, 1);

CREATE FUNCTION mmf_reference_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE reference_version SET version = version + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER funds_reference AFTER INSERT OR UPDATE OR DELETE ON funds
    FOR EACH STATEMENT EXECUTE FUNCTION mmf_reference_changed();
CREATE TRIGGER holidays_reference AFTER INSERT OR UPDATE OR DELETE ON holidays
    FOR EACH STATEMENT EXECUTE FUNCTION mmf_reference_changed();
CREATE TRIGGER calendar_years_reference AFTER INSERT OR UPDATE OR DELETE ON calendar_years
    FOR EACH STATEMENT EXECUTE FUNCTION mmf_reference_changed();

-- Aborts the statement (and its transaction) as a serialization failure: an order statement
-- whose checks read a snapshot that a concurrent commit made stale, found out while writing.
-- The order writer runs such orders again, each on a fresh snapshot.
CREATE FUNCTION mmf_conflict(what text) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'concurrent change: %', what USING ERRCODE = 'serialization_failure';
END $$;
