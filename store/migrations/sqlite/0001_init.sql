-- metertrust store, SQLite dialect. Times are INTEGER Unix microseconds, UTC;
-- NULL for "never". Keep in step with ../postgres/0001_init.sql.

CREATE TABLE cas (
	id          INTEGER PRIMARY KEY,
	name        TEXT    NOT NULL UNIQUE,
	kind        TEXT    NOT NULL,
	parent      TEXT    NOT NULL DEFAULT '',
	cert_der    BLOB    NOT NULL,
	key_uri     TEXT    NOT NULL DEFAULT '',
	quota       INTEGER NOT NULL DEFAULT 0 CHECK (quota >= 0),
	issued      INTEGER NOT NULL DEFAULT 0 CHECK (issued >= 0),
	state       TEXT    NOT NULL CHECK (state IN ('active', 'closed')),
	crl_number  INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	closed_at   INTEGER,
	CHECK (quota = 0 OR issued <= quota)
);

CREATE TABLE certificates (
	id          INTEGER PRIMARY KEY,
	ca          TEXT    NOT NULL REFERENCES cas (name),
	serial      BLOB    NOT NULL,
	kind        TEXT    NOT NULL,
	eui         TEXT    NOT NULL DEFAULT '',
	role        INTEGER NOT NULL DEFAULT -1,
	user_role   TEXT    NOT NULL DEFAULT '',
	key_usage   TEXT    NOT NULL,
	not_before  INTEGER NOT NULL,
	not_after   INTEGER NOT NULL,
	der         BLOB    NOT NULL,
	revoked_at  INTEGER,
	reason      INTEGER NOT NULL DEFAULT 0,
	UNIQUE (ca, serial)
);
CREATE INDEX certificates_eui ON certificates (eui, role, key_usage) WHERE eui <> '';
CREATE INDEX certificates_serial ON certificates (serial);
CREATE INDEX certificates_revoked ON certificates (ca, id) WHERE revoked_at IS NOT NULL;

CREATE TABLE crls (
	ca          TEXT    NOT NULL REFERENCES cas (name),
	number      INTEGER NOT NULL,
	this_update INTEGER NOT NULL,
	next_update INTEGER,
	der         BLOB    NOT NULL,
	PRIMARY KEY (ca, number)
);

-- The audit log is append-only. seq is assigned by AppendAudit from the
-- one-row head, which also lets VerifyAudit notice entries cut off the end.
CREATE TABLE audit_log (
	seq         INTEGER PRIMARY KEY,
	at          INTEGER NOT NULL,
	actor       TEXT    NOT NULL,
	action      TEXT    NOT NULL,
	object      TEXT    NOT NULL,
	outcome     TEXT    NOT NULL,
	details     TEXT    NOT NULL,
	prev_hash   BLOB    NOT NULL,
	hash        BLOB    NOT NULL
);

CREATE TABLE audit_head (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	seq         INTEGER NOT NULL,
	hash        BLOB    NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));
