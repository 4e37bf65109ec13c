-- The router's tables, PostgreSQL dialect. Keep in step with
-- ../sqlite/0020_router.sql. Originator counters are stored as the signed
-- 64-bit reinterpretation of the unsigned 8-byte GBCS counter and compared
-- in Go, never in SQL.

CREATE TABLE router_devices (
	eui              TEXT        PRIMARY KEY,
	ka_public        BYTEA       NOT NULL,
	ds_public        BYTEA,
	supplier         TEXT        NOT NULL DEFAULT '',
	network_operator TEXT        NOT NULL DEFAULT '',
	updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX router_devices_supplier ON router_devices (supplier);

CREATE TABLE router_consents (
	id          TEXT        PRIMARY KEY,
	device      TEXT        NOT NULL,
	user_eui    TEXT        NOT NULL,
	scope       TEXT        NOT NULL,
	data_from   TIMESTAMPTZ,
	not_before  TIMESTAMPTZ NOT NULL,
	expires_at  TIMESTAMPTZ NOT NULL,
	evidence    TEXT        NOT NULL,
	created_by  TEXT        NOT NULL,
	created_at  TIMESTAMPTZ NOT NULL,
	revoked_at  TIMESTAMPTZ
);
CREATE INDEX router_consents_lookup ON router_consents (device, user_eui);

CREATE TABLE router_counters (
	originator  TEXT   NOT NULL,
	target      TEXT   NOT NULL,
	last        BIGINT NOT NULL,
	PRIMARY KEY (originator, target)
);

CREATE TABLE router_commands (
	id           TEXT        PRIMARY KEY,
	caller       TEXT        NOT NULL,
	caller_role  TEXT        NOT NULL,
	originator   TEXT        NOT NULL,
	target       TEXT        NOT NULL,
	counter      BIGINT      NOT NULL,
	code         INTEGER     NOT NULL,
	service_ref  TEXT        NOT NULL,
	critical     BOOLEAN     NOT NULL,
	message      BYTEA       NOT NULL,
	state        TEXT        NOT NULL CHECK (state IN ('accepted', 'forwarded', 'responded', 'failed')),
	accepted_at  TIMESTAMPTZ NOT NULL,
	updated_at   TIMESTAMPTZ NOT NULL,
	response     BYTEA,
	error        TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX router_commands_caller ON router_commands (caller, accepted_at);
CREATE INDEX router_commands_correlation ON router_commands (target, originator, counter);

CREATE TABLE router_outbox (
	command_id   TEXT        PRIMARY KEY REFERENCES router_commands (id),
	target       TEXT        NOT NULL,
	attempts     INTEGER     NOT NULL DEFAULT 0,
	next_attempt TIMESTAMPTZ NOT NULL,
	lease_until  TIMESTAMPTZ,
	last_error   TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX router_outbox_due ON router_outbox (next_attempt);

-- Results for delivery to callers (responses, failures, alerts), numbered
-- per caller by router_delivery_heads so that a poller's cursor never skips
-- a row committed late.
CREATE TABLE router_delivery_heads (
	caller       TEXT    PRIMARY KEY,
	seq          BIGINT  NOT NULL
);

CREATE TABLE router_deliveries (
	caller       TEXT    NOT NULL,
	seq          BIGINT  NOT NULL,
	command_id   TEXT    NOT NULL DEFAULT '',
	kind         TEXT    NOT NULL,
	body         BYTEA,
	detail       TEXT    NOT NULL DEFAULT '',
	at           TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (caller, seq)
);
