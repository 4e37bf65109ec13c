-- The SMKI registration authority (the CA service's API): the organisations
-- the SMKI serves, each with the Remote Party Roles it may hold certificates
-- for, and their certificate requests, which operators approve (two
-- different operators for the DCC's own roles) or reject. A request moves
-- pending -> issuing (claimed by the approval that completes it, one
-- conditional update) -> issued or failed; or pending -> rejected. roles and
-- approvals are comma-separated names (role names and operator names hold no
-- comma). The partial index is the operators' queue of pending requests.
-- Keep in step with ../sqlite/0080_smki_registration.sql.

CREATE TABLE smki_organisations (
	eui           TEXT    PRIMARY KEY,
	name          TEXT    NOT NULL,
	roles         TEXT    NOT NULL,
	manufacturer  INTEGER     NOT NULL DEFAULT 0 CHECK (manufacturer IN (0, 1)),
	state         TEXT    NOT NULL CHECK (state IN ('active', 'withdrawn')),
	registered_by TEXT    NOT NULL,
	registered_at TIMESTAMPTZ NOT NULL,
	updated_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE smki_requests (
	id               TEXT    PRIMARY KEY,
	org_eui          TEXT    NOT NULL REFERENCES smki_organisations (eui),
	role             INTEGER NOT NULL,
	key_usage        TEXT    NOT NULL,
	name             TEXT    NOT NULL DEFAULT '',
	csr              BYTEA    NOT NULL,
	submitted_by     TEXT    NOT NULL,
	submitted_at     TIMESTAMPTZ NOT NULL,
	approvals_needed INTEGER NOT NULL CHECK (approvals_needed IN (1, 2)),
	approved         INTEGER NOT NULL DEFAULT 0,
	approvals        TEXT    NOT NULL DEFAULT '',
	state            TEXT    NOT NULL CHECK (state IN ('pending', 'issuing', 'issued', 'failed', 'rejected')),
	decided_by       TEXT    NOT NULL DEFAULT '',
	decided_at       TIMESTAMPTZ,
	reason           TEXT    NOT NULL DEFAULT '',
	cert_ca          TEXT    NOT NULL DEFAULT '',
	cert_serial      BYTEA,
	error            TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX smki_requests_pending ON smki_requests (submitted_at) WHERE state = 'pending';
CREATE INDEX smki_requests_org ON smki_requests (org_eui, submitted_at);
