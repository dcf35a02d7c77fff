-- Every writer of user_watch_history (API or not) tells listeners whose recommendations went stale.
-- PostgreSQL folds identical notifications within one transaction, so a bulk write per user sends one.
CREATE FUNCTION notify_watch_history() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('watch_history', OLD.user_id::text);
    ELSE
        PERFORM pg_notify('watch_history', NEW.user_id::text);
        IF TG_OP = 'UPDATE' AND OLD.user_id IS DISTINCT FROM NEW.user_id THEN
            PERFORM pg_notify('watch_history', OLD.user_id::text);
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER watch_history_notify
    AFTER INSERT OR UPDATE OR DELETE ON user_watch_history
    FOR EACH ROW EXECUTE FUNCTION notify_watch_history();
