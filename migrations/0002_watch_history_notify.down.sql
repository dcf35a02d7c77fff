DROP TRIGGER watch_history_notify ON user_watch_history;
DROP FUNCTION notify_watch_history();
