DROP TRIGGER content_genres ON content;
DROP FUNCTION content_genres_follow_genre();
ALTER TABLE content DROP COLUMN genres;
