DROP TABLE batch_job_results;
DROP TABLE batch_job_chunks;
DROP TABLE batch_jobs;
-- The job engine's own schema (pg-boss creates it again at the next start).
DROP SCHEMA IF EXISTS pgboss CASCADE;
