-- 0003_rescoring: reason codes, shadow models, dblink for pg_cron.
-- Released: never edit (db/incremental/frozen.txt); change state in a new numbered file.

CREATE TABLE blink.reason_codes (
    feature_name        text PRIMARY KEY CHECK (feature_name <> ''),
    code                text NOT NULL UNIQUE CHECK (code <> ''),
    reason_text         text NOT NULL CHECK (reason_text <> ''),
    missing_reason_text text CHECK (missing_reason_text <> '')
);
COMMENT ON TABLE blink.reason_codes IS
    'Adverse-action reason per model feature, editable by the risk team. Row ''*'' is the text for features without a row. Texts are copied into each audit when it is written.';
COMMENT ON COLUMN blink.reason_codes.missing_reason_text IS
    'Used instead of reason_text when the feature was missing from the snapshot (NULL: reason_text).';

INSERT INTO blink.reason_codes (feature_name, code, reason_text, missing_reason_text) VALUES
    ('metric_median_paycheck', 'RC01', 'Income from regular paychecks is low',
     'No regular paycheck income found'),
    ('metric_overdraft_count90', 'RC02', 'Overdrafts in the last 90 days',
     'Overdraft history not available'),
    ('metric_total_balance', 'RC03', 'Total balance across accounts is low',
     'Account balances not available'),
    ('metric_transaction_count90', 'RC04', 'Pattern of account activity in the last 90 days',
     'Account activity in the last 90 days not available'),
    ('metric_debt_load30', 'RC05', 'Debt payments are high compared with income',
     'Debt payment information not available'),
    ('metric_clean_buffer7', 'RC06', 'Balance covers only a few days of usual spending',
     'Spending buffer not available'),
    ('metric_volatility90', 'RC07', 'Spending varies widely from month to month',
     'Spending history not available'),
    ('*', 'RC99', 'Other information in the account data', NULL);

CREATE TABLE blink.blink_shadow_models (
    model_id  bigint PRIMARY KEY REFERENCES blink.blink_models (id),
    reason    text NOT NULL CHECK (reason <> ''),
    added_at  timestamptz NOT NULL DEFAULT now(),
    added_by  text NOT NULL DEFAULT session_user
);
COMMENT ON TABLE blink.blink_shadow_models IS
    'Challenger models that rescoring also scores (source shadow), without changing decisions. Use blink_shadow_add/blink_shadow_remove.';

GRANT SELECT ON blink.reason_codes TO blink_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON blink.reason_codes TO blink_trainer;
GRANT SELECT ON blink.blink_shadow_models TO blink_trainer;

-- blink_schedule() reaches pg_cron's database through dblink when that is another database.
-- Created only when the server has it and this database does not yet (then it is ours).
DO $$
DECLARE
    f regprocedure;
BEGIN
    IF EXISTS (SELECT FROM pg_available_extensions WHERE name = 'dblink')
       AND NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'dblink') THEN
        CREATE EXTENSION dblink WITH SCHEMA blink;
        -- Only superusers (blink_schedule) need it; the app and trainer roles may not use it.
        FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
                 JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                      AND d.deptype = 'e'
                 JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'dblink'
        LOOP
            EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        END LOOP;
    END IF;
END $$;
