-- metertrust store, PostgreSQL dialect. Keep in step with
-- ../sqlite/0001_init.sql. Times are TIMESTAMPTZ (microsecond precision);
-- NULL for "never". The audit details are TEXT, not JSONB, because the hash
-- chain covers their exact bytes.

CREATE TABLE cas (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name        TEXT        NOT NULL UNIQUE,
	kind        TEXT        NOT NULL,
	parent      TEXT        NOT NULL DEFAULT '',
	cert_der    BYTEA       NOT NULL,
	key_uri     TEXT        NOT NULL DEFAULT '',
	quota       BIGINT      NOT NULL DEFAULT 0 CHECK (quota >= 0),
	issued      BIGINT      NOT NULL DEFAULT 0 CHECK (issued >= 0),
	state       TEXT        NOT NULL CHECK (state IN ('active', 'closed')),
	crl_number  BIGINT      NOT NULL DEFAULT 0,
	created_at  TIMESTAMPTZ NOT NULL,
	closed_at   TIMESTAMPTZ,
	CHECK (quota = 0 OR issued <= quota)
);

CREATE TABLE certificates (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	ca          TEXT        NOT NULL REFERENCES cas (name),
	serial      BYTEA       NOT NULL,
	kind        TEXT        NOT NULL,
	eui         TEXT        NOT NULL DEFAULT '',
	role        INTEGER     NOT NULL DEFAULT -1,
	user_role   TEXT        NOT NULL DEFAULT '',
	key_usage   TEXT        NOT NULL,
	not_before  TIMESTAMPTZ NOT NULL,
	not_after   TIMESTAMPTZ NOT NULL,
	der         BYTEA       NOT NULL,
	revoked_at  TIMESTAMPTZ,
	reason      INTEGER     NOT NULL DEFAULT 0,
	UNIQUE (ca, serial)
);
CREATE INDEX certificates_eui ON certificates (eui, role, key_usage) WHERE eui <> '';
CREATE INDEX certificates_serial ON certificates (serial);
CREATE INDEX certificates_revoked ON certificates (ca, id) WHERE revoked_at IS NOT NULL;

CREATE TABLE crls (
	ca          TEXT        NOT NULL REFERENCES cas (name),
	number      BIGINT      NOT NULL,
	this_update TIMESTAMPTZ NOT NULL,
	next_update TIMESTAMPTZ,
	der         BYTEA       NOT NULL,
	PRIMARY KEY (ca, number)
);

CREATE TABLE audit_log (
	seq         BIGINT      PRIMARY KEY,
	at          TIMESTAMPTZ NOT NULL,
	actor       TEXT        NOT NULL,
	action      TEXT        NOT NULL,
	object      TEXT        NOT NULL,
	outcome     TEXT        NOT NULL,
	details     TEXT        NOT NULL,
	prev_hash   BYTEA       NOT NULL,
	hash        BYTEA       NOT NULL
);

CREATE TABLE audit_head (
	id          INTEGER     PRIMARY KEY CHECK (id = 1),
	seq         BIGINT      NOT NULL,
	hash        BYTEA       NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
