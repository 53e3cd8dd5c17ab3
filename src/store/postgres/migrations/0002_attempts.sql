-- Password attempts for the sign-in and current-password lockouts, counted
-- on every node (§12). `at_ms` is the database's clock, in milliseconds,
-- so that nodes whose clocks differ count one window. The sweeper deletes
-- rows older than any window.
CREATE TABLE attempts (
    id    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key   TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);

CREATE INDEX attempts_by_key ON attempts (key, at_ms);
CREATE INDEX attempts_by_time ON attempts (at_ms);
