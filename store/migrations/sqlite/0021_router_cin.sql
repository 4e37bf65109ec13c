-- Customer identification number challenges (spec section 11): the router
-- has a meter display a random CIN at an other user's request and keeps
-- only its salted hash; the other user proves the consumer's consent by
-- reading the CIN back. Keep in step with ../postgres/0021_router_cin.sql.
CREATE TABLE router_cin_challenges (
	device      TEXT    NOT NULL,
	user_eui    TEXT    NOT NULL,
	cin_hash    BLOB    NOT NULL,
	command_id  TEXT    NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	PRIMARY KEY (device, user_eui)
);
