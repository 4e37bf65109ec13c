-- Anomaly counts that do not grow with traffic, PostgreSQL dialect. Keep in
-- step with ../sqlite/0030_anomaly_counters.sql, which explains the scheme:
-- a head row per counter key with the sequence number of its latest event,
-- each event numbered within its key, recorded times never going backwards
-- within a key; a count is then two index seeks.

CREATE TABLE anomaly_counters (
	counter_key TEXT   PRIMARY KEY,
	seq         BIGINT NOT NULL,
	last_at_us  BIGINT NOT NULL
);

ALTER TABLE anomaly_events ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;

UPDATE anomaly_events e SET seq = r.n
FROM (SELECT ctid AS id, row_number() OVER (PARTITION BY counter_key ORDER BY at_us) AS n
      FROM anomaly_events) AS r
WHERE e.ctid = r.id;

INSERT INTO anomaly_counters (counter_key, seq, last_at_us)
SELECT counter_key, max(seq), max(at_us) FROM anomaly_events GROUP BY counter_key;

DROP INDEX anomaly_events_key_at;
CREATE INDEX anomaly_events_key_at ON anomaly_events (counter_key, at_us, seq);
