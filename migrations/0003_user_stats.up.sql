-- Counts that requests would otherwise pay a full scan for, kept exact by statement-level triggers (one
-- aggregate per statement, so a bulk COPY costs one upsert per touched row, not one per inserted row).
--
-- user_id_blocks: users per block of 1024 consecutive ids, and how many users come before the block
-- (`before`: a running sum, indexed). The batch endpoint finds page P of users in ascending id with one
-- index probe (the block whose [before, before + n) holds position (P-1)*L) plus an in-block offset under
-- 1024, instead of OFFSET (P-1)*L over the users index; before + n of the last block is the exact count.
-- Appending users (new ids) updates the last block only; inserting or deleting inside the id range
-- shifts `before` of the blocks after it (~1,000 rows at 1M users). Writers of users serialize on an
-- advisory lock while they update the counts, so concurrent writers never compute running sums from
-- each other's stale rows.
CREATE TABLE user_id_blocks (
    block  BIGINT PRIMARY KEY,
    n      BIGINT NOT NULL,
    before BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX idx_user_id_blocks_before ON user_id_blocks (before);

-- user_activity: watch events per user, indexed by count, for cache warming (the most active users)
-- without a GROUP BY over user_watch_history.
CREATE TABLE user_activity (
    user_id BIGINT PRIMARY KEY,
    events  BIGINT NOT NULL
);
CREATE INDEX idx_user_activity_events ON user_activity (events DESC, user_id);

CREATE FUNCTION user_id_blocks_count() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    first_block BIGINT;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- An update that changed no id (the usual kind) changes no count: skip the writes.
        IF (SELECT array_agg(id ORDER BY id) FROM old_rows) IS NOT DISTINCT FROM (SELECT array_agg(id ORDER BY id) FROM new_rows) THEN
            RETURN NULL;
        END IF;
    END IF;
    PERFORM pg_advisory_xact_lock(7283462919304417003);
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE user_id_blocks b SET n = b.n - d.n
        FROM (SELECT id >> 10 AS block, count(*) AS n FROM old_rows GROUP BY 1) d
        WHERE b.block = d.block;
        first_block := (SELECT min(id >> 10) FROM old_rows);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO user_id_blocks (block, n)
        SELECT id >> 10, count(*) FROM new_rows GROUP BY 1
        ON CONFLICT (block) DO UPDATE SET n = user_id_blocks.n + EXCLUDED.n;
        first_block := least(first_block, (SELECT min(id >> 10) FROM new_rows));
    END IF;
    -- Running sums from the first changed block on; the blocks before it are unchanged.
    UPDATE user_id_blocks b SET before = s.before
    FROM (
        SELECT block,
               coalesce((SELECT p.before + p.n FROM user_id_blocks p WHERE p.block < first_block ORDER BY p.block DESC LIMIT 1), 0)
               + coalesce(sum(n) OVER (ORDER BY block ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
        FROM user_id_blocks
        WHERE block >= first_block
    ) s
    WHERE b.block = s.block AND b.before IS DISTINCT FROM s.before;
    RETURN NULL;
END;
$$;

CREATE FUNCTION user_activity_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF (SELECT array_agg(user_id ORDER BY user_id) FROM old_rows)
           IS NOT DISTINCT FROM (SELECT array_agg(user_id ORDER BY user_id) FROM new_rows) THEN
            RETURN NULL;
        END IF;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE user_activity a SET events = a.events - d.n
        FROM (SELECT user_id, count(*) AS n FROM old_rows GROUP BY 1) d
        WHERE a.user_id = d.user_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO user_activity (user_id, events)
        SELECT user_id, count(*) FROM new_rows GROUP BY 1
        ON CONFLICT (user_id) DO UPDATE SET events = user_activity.events + EXCLUDED.events;
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION user_stats_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        DELETE FROM user_id_blocks;
    ELSE
        DELETE FROM user_activity;
    END IF;
    RETURN NULL;
END;
$$;

-- Transition tables allow one event per trigger: insert, update and delete each get their own.
CREATE TRIGGER users_count_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION user_id_blocks_count();
CREATE TRIGGER users_count_update AFTER UPDATE ON users
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION user_id_blocks_count();
CREATE TRIGGER users_count_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION user_id_blocks_count();
CREATE TRIGGER users_count_truncate AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION user_stats_truncate();

CREATE TRIGGER watch_history_count_insert AFTER INSERT ON user_watch_history
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION user_activity_count();
CREATE TRIGGER watch_history_count_update AFTER UPDATE ON user_watch_history
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION user_activity_count();
CREATE TRIGGER watch_history_count_delete AFTER DELETE ON user_watch_history
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION user_activity_count();
CREATE TRIGGER watch_history_count_truncate AFTER TRUNCATE ON user_watch_history
    FOR EACH STATEMENT EXECUTE FUNCTION user_stats_truncate();

-- Rows that exist already (a database migrated after it was seeded).
INSERT INTO user_id_blocks (block, n, before)
SELECT block, n, coalesce(sum(n) OVER (ORDER BY block ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
FROM (SELECT id >> 10 AS block, count(*) AS n FROM users GROUP BY 1) b;
INSERT INTO user_activity (user_id, events) SELECT user_id, count(*) FROM user_watch_history GROUP BY 1;
