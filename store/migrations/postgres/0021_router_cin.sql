-- Customer identification number challenges (spec section 11). Keep in
-- step with ../sqlite/0021_router_cin.sql.
CREATE TABLE router_cin_challenges (
	device      TEXT        NOT NULL,
	user_eui    TEXT        NOT NULL,
	cin_hash    BYTEA       NOT NULL,
	command_id  TEXT        NOT NULL,
	attempts    INTEGER     NOT NULL DEFAULT 0,
	created_at  TIMESTAMPTZ NOT NULL,
	expires_at  TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (device, user_eui)
);
