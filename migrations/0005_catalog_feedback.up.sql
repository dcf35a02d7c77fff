-- What an integrating application pushes and filters by (issue 11): availability rules and hiding on titles,
-- "not interested" feedback per user, and the background co-watch similarity lists.

-- Hidden titles stay in the table (their watch history and dismissals keep pointing at them) but are never
-- served. A title with a tier is for users at or above it (free < basic < premium); a non-empty `countries`
-- list restricts it to users in one of them. Constant defaults: no table rewrite on a large catalog.
ALTER TABLE content
    ADD COLUMN hidden BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN subscription_tier TEXT NOT NULL DEFAULT 'free'
        CONSTRAINT content_subscription_tier_check CHECK (subscription_tier IN ('free', 'basic', 'premium')),
    ADD COLUMN countries TEXT[] NOT NULL DEFAULT '{}';

CREATE TABLE user_dismissals (
    user_id      BIGINT NOT NULL
                 CONSTRAINT user_dismissals_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    content_id   BIGINT NOT NULL
                 CONSTRAINT user_dismissals_content_id_fkey REFERENCES content (id) ON DELETE CASCADE,
    dismissed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (user_id, content_id)
);
-- The content foreign key's cascade (and a title's dismissal count) without a scan.
CREATE INDEX idx_dismissals_content ON user_dismissals (content_id);

-- A dismissal changes what the user may be shown exactly as a watch event does: same channel, same payload.
CREATE TRIGGER user_dismissals_notify
    AFTER INSERT OR UPDATE OR DELETE ON user_dismissals
    FOR EACH ROW EXECUTE FUNCTION notify_watch_history();

-- A user's tier or country decides what may be recommended to them: their cached lists go stale.
CREATE FUNCTION notify_user_audience() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('watch_history', NEW.id::text);
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_audience_notify
    AFTER UPDATE OF subscription_type, country ON users
    FOR EACH ROW
    WHEN (OLD.subscription_type IS DISTINCT FROM NEW.subscription_type OR OLD.country IS DISTINCT FROM NEW.country)
    EXECUTE FUNCTION notify_user_audience();

-- Every writer of content tells listeners which title changed and whether it may be shown:
-- '<id>:h' hidden (or deleted), '<id>:v' visible. Services reload their catalog and, for ':h', drop the title
-- from every response before the write that hid it is acknowledged (README "Catalog and feedback").
CREATE FUNCTION notify_content() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('content_changes', OLD.id::text || ':h');
    ELSE
        PERFORM pg_notify('content_changes', NEW.id::text || CASE WHEN NEW.hidden THEN ':h' ELSE ':v' END);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER content_notify
    AFTER INSERT OR UPDATE OR DELETE ON content
    FOR EACH ROW EXECUTE FUNCTION notify_content();

-- Item-to-item co-watch similarity, recomputed in the background (SIMILAR_REFRESH_S): for each title its most
-- similar titles, best first. Derived data: no foreign keys (a reseed truncates it; ids the catalog no longer
-- knows, or hidden ones, are skipped when served).
CREATE TABLE content_similarity (
    content_id  BIGINT PRIMARY KEY,
    similar_ids BIGINT[] NOT NULL,
    scores      REAL[] NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
