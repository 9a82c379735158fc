-- autodurable schema 11 (PostgreSQL): values too large for their rows (step results,
-- inputs, outputs, messages, events, stream values above the threshold), stored by
-- the SHA-256 digest of their encoded text, in chunks; the rows hold a reference.

CREATE TABLE large_values (
    digest     TEXT    NOT NULL,
    part       INTEGER NOT NULL,
    parts      INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    created_at DOUBLE PRECISION NOT NULL DEFAULT extract(epoch FROM clock_timestamp()),
    PRIMARY KEY (digest, part)
);
