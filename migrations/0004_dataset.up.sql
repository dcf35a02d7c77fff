-- Which data set the tables hold. A bulk load (npm run seed) replaces users, content and history in one
-- transaction without a NOTIFY per row: it bumps this version and sends one `recsvc_dataset` notification,
-- so running services reload their catalog and drop every list computed from the old data.
CREATE TABLE dataset (
    singleton   boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    version     bigint      NOT NULL DEFAULT 1,
    replaced_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO dataset DEFAULT VALUES;
