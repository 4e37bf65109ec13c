-- Anomaly detection (package anomaly; GBCS section 10), PostgreSQL dialect.
-- Keep in step with ../sqlite/0010_anomaly.sql. Event times are BIGINT Unix
-- microseconds, compared as integers in the hot path; other times are
-- TIMESTAMPTZ as elsewhere.

-- Counted requests: one row per counter key (per user and service, per user,
-- per service) for every command that passed, and every released one. Rows
-- older than the longest window are pruned.
CREATE TABLE anomaly_events (
	counter_key TEXT   NOT NULL,
	at_us       BIGINT NOT NULL,
	request_id  TEXT   NOT NULL
);
CREATE INDEX anomaly_events_key_at ON anomaly_events (counter_key, at_us);
CREATE INDEX anomaly_events_at ON anomaly_events (at_us);

-- Anomaly Detection Thresholds: the DCC's (user_eui '') and users' own.
CREATE TABLE anomaly_thresholds (
	id          TEXT        PRIMARY KEY,
	scope       TEXT        NOT NULL CHECK (scope IN ('user-srv', 'user-total', 'dcc-srv', 'attribute')),
	user_eui    TEXT        NOT NULL DEFAULT '',
	service_ref TEXT        NOT NULL DEFAULT '',
	limit_count BIGINT      NOT NULL DEFAULT 0,
	window_us   BIGINT      NOT NULL DEFAULT 0,
	fixed       BIGINT      NOT NULL DEFAULT 0 CHECK (fixed IN (0, 1)),
	attribute   TEXT        NOT NULL DEFAULT '',
	min_value   BIGINT      NOT NULL DEFAULT 0,
	max_value   BIGINT      NOT NULL DEFAULT 0,
	set_by      TEXT        NOT NULL,
	set_at      TIMESTAMPTZ NOT NULL
);

-- Quarantined commands, kept with their bytes so that a release can carry on.
CREATE TABLE anomaly_quarantine (
	ref          TEXT        PRIMARY KEY,
	command_id   TEXT        NOT NULL,
	user_eui     TEXT        NOT NULL,
	user_role    TEXT        NOT NULL DEFAULT '',
	service_ref  TEXT        NOT NULL,
	target       TEXT        NOT NULL,
	kind         TEXT        NOT NULL,
	threshold_id TEXT        NOT NULL DEFAULT '',
	detail       TEXT        NOT NULL DEFAULT '',
	command      BYTEA       NOT NULL,
	attributes   TEXT        NOT NULL DEFAULT '{}',
	at           TIMESTAMPTZ NOT NULL,
	state        TEXT        NOT NULL CHECK (state IN ('quarantined', 'released', 'deleted')),
	created_at   TIMESTAMPTZ NOT NULL,
	decided_by   TEXT        NOT NULL DEFAULT '',
	decided_at   TIMESTAMPTZ,
	reason       TEXT        NOT NULL DEFAULT ''
);
CREATE INDEX anomaly_quarantine_created ON anomaly_quarantine (created_at, ref);
CREATE INDEX anomaly_quarantine_user ON anomaly_quarantine (user_eui, created_at, ref);
CREATE INDEX anomaly_quarantine_state ON anomaly_quarantine (state, created_at, ref);
