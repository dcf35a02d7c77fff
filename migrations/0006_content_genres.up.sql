-- Every genre of a title (an imported movie has several), first = the title's `genre`, which every response
-- keeps showing. Writers that know one genre (the API, older SQL) need not name the list: a trigger keeps it.
ALTER TABLE content ADD COLUMN genres TEXT[];

-- Existing titles: their one genre. No per-row NOTIFY for it: what a title may be shown as does not change.
ALTER TABLE content DISABLE TRIGGER content_notify;
UPDATE content SET genres = ARRAY[genre];
ALTER TABLE content ENABLE TRIGGER content_notify;

ALTER TABLE content
    ALTER COLUMN genres SET NOT NULL,
    ADD CONSTRAINT content_genres_check
        CHECK (cardinality(genres) >= 1 AND genres[1] = genre AND array_position(genres, NULL) IS NULL);

-- A write without a list gets [genre]; a write that changes `genre` but not the list (PUT /content with
-- another genre) replaces the list by [genre]: the writer described the title anew. Same genre: list kept.
-- Bulk loads (seed, import) pause this trigger and write both columns themselves.
CREATE FUNCTION content_genres_follow_genre() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.genres IS NULL OR cardinality(NEW.genres) = 0 THEN
        NEW.genres := ARRAY[NEW.genre];
    ELSIF TG_OP = 'UPDATE' AND NEW.genre IS DISTINCT FROM OLD.genre AND NEW.genres IS NOT DISTINCT FROM OLD.genres THEN
        NEW.genres := ARRAY[NEW.genre];
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER content_genres
    BEFORE INSERT OR UPDATE OF genre, genres ON content
    FOR EACH ROW EXECUTE FUNCTION content_genres_follow_genre();
