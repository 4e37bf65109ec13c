-- Anomaly counts that do not grow with traffic, SQLite dialect. Keep in step
-- with ../postgres/0030_anomaly_counters.sql.
--
-- Each counter key has a head row holding the sequence number of its latest
-- event; each event row carries its sequence number within its key. Recorded
-- times never go backwards within a key (an event is recorded at the later
-- of its own time and its key's latest), so the events of a key in time
-- order are in sequence order, and the number of events after a time is
-- head.seq - (seq of the first event after that time) + 1: two index seeks,
-- whatever the traffic, instead of reading every event in the window.

CREATE TABLE anomaly_counters (
	counter_key TEXT    PRIMARY KEY,
	seq         INTEGER NOT NULL,
	last_at_us  INTEGER NOT NULL
) WITHOUT ROWID;

ALTER TABLE anomaly_events ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;

UPDATE anomaly_events SET seq = r.n
FROM (SELECT rowid AS id, row_number() OVER (PARTITION BY counter_key ORDER BY at_us, rowid) AS n
      FROM anomaly_events) AS r
WHERE anomaly_events.rowid = r.id;

INSERT INTO anomaly_counters (counter_key, seq, last_at_us)
SELECT counter_key, max(seq), max(at_us) FROM anomaly_events GROUP BY counter_key;

DROP INDEX anomaly_events_key_at;
CREATE INDEX anomaly_events_key_at ON anomaly_events (counter_key, at_us, seq);
