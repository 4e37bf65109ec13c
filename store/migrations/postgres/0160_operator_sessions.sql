-- Operator dashboard sessions (issue 13, decision 020). Keep in step with
-- ../sqlite/0160_operator_sessions.sql.

-- One row per logged-in dashboard session. id_sha256 is the hex SHA-256 of
-- the session cookie's value: the cookie itself is never stored, so a copy
-- of the database logs nobody in. csrf is the session's anti-forgery token,
-- echoed by every form. A session ends at expires_at (absolute) or after
-- the idle time since last_seen, whichever comes first; logging out deletes
-- the row.
CREATE TABLE operator_sessions (
	id_sha256  TEXT    PRIMARY KEY,
	operator   TEXT    NOT NULL,
	csrf       TEXT    NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	last_seen  TIMESTAMPTZ NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX operator_sessions_expires ON operator_sessions (expires_at);
