-- 002: tags on todos.
CREATE TABLE tag (
    todo_id TEXT NOT NULL REFERENCES todo(id) ON DELETE CASCADE,
    name    TEXT NOT NULL,
    PRIMARY KEY (todo_id, name)
);
