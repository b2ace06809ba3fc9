-- 001: the todo list. TEXT primary keys (UUIDs) so rows from several
-- devices never collide when they sync.
CREATE TABLE todo (
    id    TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    done  INTEGER NOT NULL DEFAULT 0
);
