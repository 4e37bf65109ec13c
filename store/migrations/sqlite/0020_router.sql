-- The router's tables, SQLite dialect. Keep in step with
-- ../postgres/0020_router.sql. Times are INTEGER Unix microseconds, UTC.
-- Originator counters are stored as the signed 64-bit reinterpretation of
-- the unsigned 8-byte GBCS counter and compared in Go, never in SQL.

-- The device registry: each device's key-agreement key (for the ACB MAC),
-- digital-signing key (to check signed responses), and the organisations
-- holding its supplier and network operator trust anchors.
CREATE TABLE router_devices (
	eui              TEXT    PRIMARY KEY,
	ka_public        BLOB    NOT NULL,
	ds_public        BLOB,
	supplier         TEXT    NOT NULL DEFAULT '',
	network_operator TEXT    NOT NULL DEFAULT '',
	updated_at       INTEGER NOT NULL
);
CREATE INDEX router_devices_supplier ON router_devices (supplier);

-- Consent records for other users' reads (spec section 11).
CREATE TABLE router_consents (
	id          TEXT    PRIMARY KEY,
	device      TEXT    NOT NULL,
	user_eui    TEXT    NOT NULL,
	scope       TEXT    NOT NULL,
	data_from   INTEGER,
	not_before  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	evidence    TEXT    NOT NULL,
	created_by  TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	revoked_at  INTEGER
);
CREATE INDEX router_consents_lookup ON router_consents (device, user_eui);

-- The last counter forwarded per (business originator, target).
CREATE TABLE router_counters (
	originator  TEXT    NOT NULL,
	target      TEXT    NOT NULL,
	last        INTEGER NOT NULL,
	PRIMARY KEY (originator, target)
);

-- Every accepted command, as forwarded (MAC'd), with its state and the
-- device's response.
CREATE TABLE router_commands (
	id           TEXT    PRIMARY KEY,
	caller       TEXT    NOT NULL,
	caller_role  TEXT    NOT NULL,
	originator   TEXT    NOT NULL,
	target       TEXT    NOT NULL,
	counter      INTEGER NOT NULL,
	code         INTEGER NOT NULL,
	service_ref  TEXT    NOT NULL,
	critical     INTEGER NOT NULL,
	message      BLOB    NOT NULL,
	state        TEXT    NOT NULL CHECK (state IN ('accepted', 'forwarded', 'responded', 'failed')),
	accepted_at  INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	response     BLOB,
	error        TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX router_commands_caller ON router_commands (caller, accepted_at);
CREATE INDEX router_commands_correlation ON router_commands (target, originator, counter);

-- Commands not yet handed to a transport (at-least-once delivery).
CREATE TABLE router_outbox (
	command_id   TEXT    PRIMARY KEY REFERENCES router_commands (id),
	target       TEXT    NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL,
	lease_until  INTEGER,
	last_error   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX router_outbox_due ON router_outbox (next_attempt);

-- Results for delivery to callers (responses, failures, alerts), numbered
-- per caller by router_delivery_heads so that a poller's cursor never skips
-- a row committed late.
CREATE TABLE router_delivery_heads (
	caller       TEXT    PRIMARY KEY,
	seq          INTEGER  NOT NULL
);

CREATE TABLE router_deliveries (
	caller       TEXT    NOT NULL,
	seq          INTEGER  NOT NULL,
	command_id   TEXT    NOT NULL DEFAULT '',
	kind         TEXT    NOT NULL,
	body         BLOB,
	detail       TEXT    NOT NULL DEFAULT '',
	at           INTEGER NOT NULL,
	PRIMARY KEY (caller, seq)
);
