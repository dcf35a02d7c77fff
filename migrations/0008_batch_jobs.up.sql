-- Asynchronous batch jobs (POST /recommendations/jobs). The job engine (pg-boss, its own schema `pgboss`)
-- only hands chunks to workers; these tables are what a job is and what it produced.
CREATE TABLE batch_jobs (
    id              uuid        PRIMARY KEY,
    status          text        NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    result_limit    int         NOT NULL CHECK (result_limit BETWEEN 1 AND 50),
    warm            boolean     NOT NULL,
    total_users     int         NOT NULL,
    processed_users int         NOT NULL DEFAULT 0,
    failed_users    int         NOT NULL DEFAULT 0,
    total_chunks    int         NOT NULL,
    done_chunks     int         NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz
);
-- Retention sweeps finished jobs by age.
CREATE INDEX batch_jobs_finished_at ON batch_jobs (finished_at) WHERE finished_at IS NOT NULL;

-- A chunk: consecutive user ids (sorted) of one job; done_at is set in the transaction that writes its results.
CREATE TABLE batch_job_chunks (
    job_id        uuid        NOT NULL REFERENCES batch_jobs (id) ON DELETE CASCADE,
    chunk_no      int         NOT NULL,
    user_ids      bigint[]    NOT NULL,
    first_user_id bigint      NOT NULL,
    engine_id     uuid        NOT NULL,
    done_at       timestamptz,
    PRIMARY KEY (job_id, chunk_no)
);

-- One row per user of a job: the primary key makes a retried chunk unable to add a user twice.
CREATE TABLE batch_job_results (
    job_id          uuid   NOT NULL REFERENCES batch_jobs (id) ON DELETE CASCADE,
    user_id         bigint NOT NULL,
    status          text   NOT NULL CHECK (status IN ('success', 'failed')),
    recommendations json,
    error           text,
    message         text,
    PRIMARY KEY (job_id, user_id)
);
