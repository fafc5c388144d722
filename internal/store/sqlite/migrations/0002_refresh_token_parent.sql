-- 0002: a refresh token remembers the token whose refresh issued it (parent), so
-- the identity service can tell a client retrying a refresh whose answer it lost
-- from a replay. '' for tokens issued before, for the first token of a family and
-- for tokens issued by a grace reuse. A token is the parent of at most one other:
-- the unique index makes that a property of the store, not only of the service.

ALTER TABLE refresh_tokens ADD COLUMN parent TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX refresh_tokens_parent ON refresh_tokens (parent) WHERE parent != '';
