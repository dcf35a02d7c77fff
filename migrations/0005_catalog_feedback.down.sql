DROP TABLE content_similarity;
DROP TRIGGER content_notify ON content;
DROP FUNCTION notify_content();
DROP TRIGGER users_audience_notify ON users;
DROP FUNCTION notify_user_audience();
DROP TABLE user_dismissals;
ALTER TABLE content
    DROP COLUMN countries,
    DROP COLUMN subscription_tier,
    DROP COLUMN hidden;
