-- Dropping a table drops its indexes and constraints; children first.
DROP TABLE user_watch_history;
DROP TABLE content;
DROP TABLE users;
