-- Trained recommendation models (src/recommenders/training.ts), written by the background training job and read
-- by every HTTP worker at start-up and whenever a newer one is announced on `recsvc_model` (its id). Arrays are
-- little-endian typed-array bytes. `dataset_version`, `max_event_id` and `titles` say what data it saw: the
-- trainer retrains when the data set is replaced or has grown by MODEL_RETRAIN_SHARE since.
CREATE TABLE trained_models (
    id              BIGSERIAL PRIMARY KEY,
    trained_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    dataset_version BIGINT NOT NULL,
    max_event_id    BIGINT NOT NULL,
    events          BIGINT NOT NULL,
    titles          BIGINT NOT NULL,
    meta            JSONB NOT NULL,
    item_ids        BYTEA NOT NULL,
    cf_start        BYTEA NOT NULL,
    cf_item         BYTEA NOT NULL,
    cf_sim          BYTEA NOT NULL,
    als_factors     BYTEA NOT NULL,
    als_gram        BYTEA NOT NULL
);
-- Training runs that failed (kept for /metrics and the logs; the previous model keeps serving).
CREATE TABLE model_training_failures (
    id        BIGSERIAL PRIMARY KEY,
    failed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    message   TEXT NOT NULL
);
