-- The seed's three tables, plus the catalog columns (release_year, duration) and watch outcome columns.
CREATE TABLE users (
    id                BIGSERIAL PRIMARY KEY,
    age               INT,
    country           TEXT,
    subscription_type TEXT,
    created_at        TIMESTAMPTZ DEFAULT now()
);

CREATE TABLE content (
    id               BIGSERIAL PRIMARY KEY,
    title            TEXT NOT NULL,
    genre            TEXT NOT NULL,
    release_year     INT,
    duration_minutes INT,
    popularity_score DOUBLE PRECISION NOT NULL DEFAULT 0
                     CONSTRAINT content_popularity_score_check CHECK (popularity_score >= 0 AND popularity_score <= 1),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE user_watch_history (
    id                     BIGSERIAL PRIMARY KEY,
    user_id                BIGINT NOT NULL
                           CONSTRAINT user_watch_history_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    content_id             BIGINT NOT NULL
                           CONSTRAINT user_watch_history_content_id_fkey REFERENCES content (id) ON DELETE CASCADE,
    -- clock_timestamp, not now(): several events written in one transaction still get distinct times.
    watched_at             TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    watch_duration_minutes INT,
    completed              BOOLEAN
);

-- Candidates by popularity; id breaks ties so pagination and rankings are stable.
CREATE INDEX idx_content_popularity ON content (popularity_score DESC, id);
CREATE INDEX idx_content_genre ON content (genre);

CREATE INDEX idx_users_country ON users (country);
CREATE INDEX idx_users_subscription ON users (subscription_type);

CREATE INDEX idx_watch_history_user ON user_watch_history (user_id);
CREATE INDEX idx_watch_history_content ON user_watch_history (content_id);
CREATE INDEX idx_watch_history_composite ON user_watch_history (user_id, watched_at DESC);
CREATE INDEX idx_watch_history_user_content ON user_watch_history (user_id, content_id);
