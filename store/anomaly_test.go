package store

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/anomaly/anomalytest"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store/storetest"
)

func TestAnomalyStoreConformance(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			anomalytest.TestStore(t, func(t *testing.T) anomaly.Store { return b.newOpener(t)(t).Anomaly() })
		})
	}
}

// TestAnomalyExact is the exactness test across instances: two DB handles
// on one database, each with its own Detector, 8 goroutines each, a burst of
// 500 checks each against a limit of 200: exactly 200 pass.
func TestAnomalyExact(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			open := b.newOpener(t)
			db1, db2 := open(t), open(t)
			anomalytest.TestExact(t, db1.Anomaly(), db2.Anomaly())
			if n, err := db1.VerifyAudit(t.Context()); err != nil || n < 801 {
				t.Errorf("audit chain: %d entries, %v; want 800 quarantines and a threshold change, verified", n, err)
			}
		})
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestAnomalyAudit checks that threshold changes, quarantines and decisions
// land in the hash-chained audit log with who and why, and that the chain
// still verifies.
func TestAnomalyAudit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
		d, err := anomaly.New(ctx, anomaly.Config{Store: db.Anomaly(), Now: func() time.Time { return now },
			Rand: mrand.NewChaCha8([32]byte{7}), Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		admin := anomaly.Actor{ID: "ada", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
		officer := anomaly.Actor{ID: "otto", Roles: []anomaly.Role{anomaly.RoleQuarantineOfficer}}
		if _, err := d.SetThreshold(ctx, admin, anomaly.Threshold{ID: "dcc-72", Scope: anomaly.ScopeUserService,
			ServiceRef: "7.2", Limit: 1, Window: time.Hour}); err != nil {
			t.Fatal(err)
		}
		user := smki.MustParseEUI("90B3D51F3001000A")
		req := func(id string) anomaly.Request {
			return anomaly.Request{ID: id, User: user, ServiceRef: "7.2", Target: smki.MustParseEUI("00DB1234567890A0"), Command: []byte{0xDD, 1}}
		}
		if dec, err := d.Check(ctx, req("c1")); err != nil || !dec.Pass() {
			t.Fatalf("c1: %+v %v", dec, err)
		}
		dec, err := d.Check(ctx, req("c2"))
		if err != nil || dec.Pass() {
			t.Fatalf("c2: %+v %v", dec, err)
		}
		if _, err := d.Release(ctx, dec.Ref, officer, "customer confirmed by phone"); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Delete(ctx, dec.Ref, officer, "changed my mind"); err == nil {
			t.Fatal("deleting a released command succeeded")
		}
		evs, err := db.AuditEvents(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := []struct{ action, actor, object, outcome, reason string }{
			{"anomaly.threshold.set", admin.String(), "dcc-72", OutcomeSuccess, ""},
			{"anomaly.quarantine", "anomaly-detector", dec.Ref, OutcomeSuccess, ""},
			{"anomaly.release", officer.String(), dec.Ref, OutcomeSuccess, "customer confirmed by phone"},
			{"anomaly.delete", officer.String(), dec.Ref, OutcomeRefused, "changed my mind"},
		}
		if len(evs) != len(want) {
			t.Fatalf("%d audit entries, want %d: %+v", len(evs), len(want), evs)
		}
		for i, w := range want {
			e := evs[i]
			if e.Action != w.action || e.Actor != w.actor || e.Object != w.object || e.Outcome != w.outcome ||
				(w.reason != "" && e.Details["reason"] != w.reason) {
				t.Errorf("audit entry %d = %+v, want %+v", i, e, w)
			}
		}
		if n, err := db.VerifyAudit(ctx); err != nil || n != int64(len(want)) {
			t.Errorf("VerifyAudit = %d, %v", n, err)
		}
		if db.Anomaly().Notifier() != nil && db.Dialect() == DialectSQLite {
			t.Error("SQLite offers a notifier")
		}
	})
}

// TestAnomalyAlertLatency checks that an alert raised by one router instance
// reaches a subscriber on another instance within one second, through
// PostgreSQL LISTEN/NOTIFY, and that the raising instance's own subscriber
// gets it exactly once.
func TestAnomalyAlertLatency(t *testing.T) {
	open := postgresOpener(t)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var ds []*anomaly.Detector
	var stores []*AnomalyStore
	for i := range 2 {
		s := open(t).Anomaly()
		d, err := anomaly.New(ctx, anomaly.Config{Store: s, Notifier: s.Notifier(),
			Rand: mrand.NewChaCha8([32]byte{byte(i), 9}), Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		ds, stores = append(ds, d), append(stores, s)
		wg.Go(func() { _ = d.Run(ctx) })
	}
	for stores[0].Listening() == 0 || stores[1].Listening() == 0 {
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	admin := anomaly.Actor{ID: "ada", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
	if _, err := ds[0].SetThreshold(ctx, admin, anomaly.Threshold{ID: "t", Scope: anomaly.ScopeUserTotal, Limit: 1, Window: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if err := ds[1].Reload(ctx); err != nil {
		t.Fatal(err)
	}
	viewer := anomaly.Actor{ID: "vic", Roles: []anomaly.Role{anomaly.RoleViewer}}
	onA, _ := ds[0].Subscribe(ctx, viewer, anomaly.AlertFilter{})
	onB, _ := ds[1].Subscribe(ctx, viewer, anomaly.AlertFilter{})
	user := smki.MustParseEUI("90B3D51F3001000A")
	req := func(id string) anomaly.Request {
		return anomaly.Request{ID: id, User: user, ServiceRef: "7.2", Target: smki.MustParseEUI("00DB1234567890A0"), Command: []byte{1}}
	}
	if dec, err := ds[1].Check(ctx, req("1")); err != nil || !dec.Pass() {
		t.Fatalf("first: %+v %v", dec, err)
	}
	for round := range 5 {
		start := time.Now()
		dec, err := ds[0].Check(ctx, req(fmt.Sprint("q", round)))
		if err != nil || dec.Pass() {
			t.Fatalf("round %d: %+v %v", round, dec, err)
		}
		for name, ch := range map[string]<-chan anomaly.Alert{"A (raiser)": onA, "B (other instance)": onB} {
			select {
			case a := <-ch:
				if a.Ref != dec.Ref || a.State != anomaly.StateQuarantined || a.User != user {
					t.Errorf("round %d: instance %s got %+v", round, name, a)
				}
			case <-time.After(time.Second):
				t.Fatalf("round %d: no alert on instance %s within one second", round, name)
			}
		}
		t.Logf("round %d: alert on the other instance %s after the check began", round, time.Since(start))
	}
	select {
	case a := <-onA:
		t.Errorf("instance A got an extra alert (its own echo?): %+v", a)
	case <-time.After(100 * time.Millisecond):
	}

	// Kill instance B's listening connection: Run reconnects, and alerts
	// flow again.
	ch, err := stores[1].notifyChannel(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listenQuery := "LISTEN " + pgx.Identifier{ch}.Sanitize()
	listeners := func() []int32 {
		rows, err := stores[1].db.pool.Query(ctx, `SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND query = $1 ORDER BY pid`, listenQuery)
		if err != nil {
			t.Fatal(err)
		}
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			t.Fatal(err)
		}
		return pids
	}
	old := listeners()
	if len(old) != 2 {
		t.Fatalf("%d listening connections, want 2", len(old))
	}
	for _, pid := range old {
		if _, err := stores[1].db.pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for two new listening connections, each Listen counting itself
	// (a Listen decrements before Run starts the next, so 1 means the new).
	deadline := time.Now().Add(5 * time.Second)
	for {
		cur := listeners()
		if len(cur) == 2 && !slices.Contains(old, cur[0]) && !slices.Contains(old, cur[1]) &&
			stores[0].Listening() == 1 && stores[1].Listening() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listeners did not reconnect within 5 s: %v (were %v)", cur, old)
		}
		time.Sleep(5 * time.Millisecond)
	}
	dec, err := ds[0].Check(ctx, req("after-reconnect"))
	if err != nil || dec.Pass() {
		t.Fatalf("after reconnect: %+v %v", dec, err)
	}
	for _, ch := range []<-chan anomaly.Alert{onA, onB} {
		select {
		case a := <-ch:
			if a.Ref != dec.Ref {
				t.Errorf("after reconnect: got %+v", a)
			}
		case <-time.After(time.Second):
			t.Fatal("no alert within one second after the listeners reconnected")
		}
	}
}

// benchmarkCheck measures Detector.Check with one DCC per-user-per-service
// and one DCC per-user-total threshold in force, requests spread over 1000
// users, on db.
// benchmarkCheck times one Detector.Check with two thresholds in force,
// requests spread over users users. With prefill, the first user's windows
// already hold that many events, so its checks show whether the cost of a
// count grows with the traffic in the window.
func benchmarkCheck(b *testing.B, db *DB, users, prefill int) {
	ctx := context.Background()
	d, err := anomaly.New(ctx, anomaly.Config{Store: db.Anomaly(), Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	admin := anomaly.Actor{ID: "ada", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
	for _, th := range []anomaly.Threshold{
		{ID: "dcc-72", Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: 1_000_000, Window: 24 * time.Hour},
		{ID: "dcc-total", Scope: anomaly.ScopeUserTotal, Limit: 1_000_000, Window: time.Hour},
	} {
		if _, err := d.SetThreshold(ctx, admin, th); err != nil {
			b.Fatal(err)
		}
	}
	user := func(i int) smki.EUI { return smki.EUI{0x90, 0xB3, 0, 0, 0, 0, byte(i % users >> 8), byte(i % users)} }
	target := smki.MustParseEUI("00DB1234567890A0")
	for i := 0; i < prefill; {
		err := db.inTx(ctx, func(tx dbtx) error {
			for end := min(prefill, i+1000); i < end; i++ {
				u := user(0).String()
				if err := insertEvents(ctx, tx, anomaly.Event{RequestID: fmt.Sprint("pre", i), At: time.Now(),
					Keys: []string{"us/" + u + "/7.2", "ut/" + u}}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	for b.Loop() {
		i++
		dec, err := d.Check(ctx, anomaly.Request{ID: fmt.Sprint(i), User: user(i), ServiceRef: "7.2", Target: target, Command: []byte{0xDD}})
		if err != nil || !dec.Pass() {
			b.Fatalf("check %d: %+v %v", i, dec, err)
		}
	}
	if prefill > 0 {
		counts, err := db.Anomaly().CountEvents(ctx, []anomaly.Counter{{Key: "us/" + user(0).String() + "/7.2", Since: time.Now().Add(-time.Hour)}})
		if err != nil || counts[0] < int64(prefill) {
			b.Fatalf("the prefilled events are not under the checked key: %v, %v", counts, err)
		}
	}
}

func BenchmarkAnomalyCheck(b *testing.B) {
	for _, c := range []struct {
		name           string
		users, prefill int
	}{{"1000users", 1000, 0}, {"1user-100k-in-window", 1, 100_000}} {
		b.Run("sqlite/"+c.name, func(b *testing.B) {
			db, err := Open(context.Background(), "sqlite:"+b.TempDir()+"/bench.db")
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			benchmarkCheck(b, db, c.users, c.prefill)
		})
		b.Run("postgres/"+c.name, func(b *testing.B) {
			benchmarkCheck(b, postgresBenchDB(b), c.users, c.prefill)
		})
	}
}

// postgresBenchDB opens a store in a fresh schema of METERTRUST_TEST_PG,
// dropped when the benchmark ends (see storetest.PostgresDSN).
func postgresBenchDB(b *testing.B) *DB {
	db := benchOpen(b, storetest.PostgresDSN(b))
	b.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkECDSAP256Verify is the router's per-command budget to compare
// Check with: one ECDSA P-256 signature verification.
func BenchmarkECDSAP256Verify(b *testing.B) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("a GBCS command"))
	sig, err := ecdsa.SignASN1(rand.Reader, k, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if !ecdsa.VerifyASN1(&k.PublicKey, digest[:], sig) {
			b.Fatal("verify failed")
		}
	}
}

// TestAnomalyCountsModel checks the counts of many random check-and-record
// calls, with times that sometimes go backwards (routers' clocks differ),
// against a model that counts every recorded event by brute force: an event
// is recorded at the later of its own time and its key's latest.
func TestAnomalyCountsModel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		s := db.Anomaly()
		rng := mrand.New(mrand.NewPCG(1, 2))
		t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
		keys := []string{"u/1/7.2", "u/1", "d/7.2"}
		recorded := map[string][]time.Time{} // the model
		latest := map[string]time.Time{}
		count := func(key string, since time.Time) int64 {
			var n int64
			for _, at := range recorded[key] {
				if at.After(since) {
					n++
				}
			}
			return n
		}
		now := t0
		var passed, breached int
		for i := range 300 {
			now = now.Add(time.Duration(rng.IntN(2000)-400) * time.Millisecond) // sometimes backwards
			evKeys := []string{keys[rng.IntN(2)], keys[2]}
			window := time.Duration(1+rng.IntN(30)) * time.Second
			limit := int64(1 + rng.IntN(25))
			counters := []anomaly.Counter{{Key: evKeys[0], Since: now.Add(-window), Limit: limit}, {Key: evKeys[1], Since: now.Add(-2 * window), Limit: 2 * limit}}
			want := anomaly.Outcome{Breached: -1}
			for j, c := range counters {
				if n := count(c.Key, c.Since); n >= c.Limit {
					want = anomaly.Outcome{Breached: j, Count: n}
					break
				}
			}
			got, err := s.CheckAndRecord(ctx, anomaly.Event{RequestID: fmt.Sprint(i), Keys: evKeys, At: now}, counters)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("check %d at %s: %+v, want %+v", i, now.Sub(t0), got, want)
			}
			if !got.Passed() {
				breached++
			} else {
				passed++
				for _, k := range evKeys {
					at := now
					if l := latest[k]; l.After(at) {
						at = l
					}
					latest[k] = at
					recorded[k] = append(recorded[k], at)
				}
			}
		}
		if passed < 30 || breached < 30 {
			t.Errorf("%d checks passed and %d breached: the model test needs many of both", passed, breached)
		}
		for _, k := range keys {
			for _, back := range []time.Duration{0, time.Second, 10 * time.Second, time.Minute, time.Hour} {
				since := now.Add(-back)
				counts, err := s.CountEvents(ctx, []anomaly.Counter{{Key: k, Since: since}})
				if err != nil {
					t.Fatal(err)
				}
				if counts[0] != count(k, since) {
					t.Errorf("CountEvents(%s, now-%s) = %d, want %d", k, back, counts[0], count(k, since))
				}
			}
		}
	})
}

// TestAnomalyMigration0030 checks that migration 0030 numbers the events an
// older schema recorded, in time order per key, so that counts over them
// stay exact.
func TestAnomalyMigration0030(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			open := b.newOpener(t)
			db := open(t)
			// Put the schema back as it was before 0030, with events in it.
			if _, err := db.write().exec(ctx, `DROP INDEX anomaly_events_key_at;
				ALTER TABLE anomaly_events DROP COLUMN seq;
				DROP TABLE anomaly_counters;
				CREATE INDEX anomaly_events_key_at ON anomaly_events (counter_key, at_us);
				DELETE FROM schema_migrations WHERE version = 30;
				INSERT INTO anomaly_events (counter_key, at_us, request_id) VALUES
					('a', 30, 'r3'), ('a', 10, 'r1'), ('b', 5, 'x'), ('a', 20, 'r2')`); err != nil {
				t.Fatal(err)
			}
			db.Close()
			db = open(t) // migrates
			s := db.Anomaly()
			at := func(us int64) time.Time { return time.UnixMicro(us).UTC() }
			counts, err := s.CountEvents(ctx, []anomaly.Counter{{Key: "a", Since: at(0)}, {Key: "a", Since: at(10)}, {Key: "a", Since: at(29)},
				{Key: "b", Since: at(0)}, {Key: "c", Since: at(0)}})
			if err != nil || fmt.Sprint(counts) != "[3 2 1 1 0]" {
				t.Fatalf("counts after migration = %v, %v; want [3 2 1 1 0]", counts, err)
			}
			// A later event at an earlier time is recorded at the key's latest.
			out, err := s.CheckAndRecord(ctx, anomaly.Event{RequestID: "r4", Keys: []string{"a"}, At: at(15)},
				[]anomaly.Counter{{Key: "a", Since: at(0), Limit: 4}})
			if err != nil || !out.Passed() {
				t.Fatalf("check after migration: %+v, %v", out, err)
			}
			counts, err = s.CountEvents(ctx, []anomaly.Counter{{Key: "a", Since: at(25)}, {Key: "a", Since: at(0)}})
			if err != nil || fmt.Sprint(counts) != "[2 4]" {
				t.Fatalf("counts after a new event = %v, %v; want [2 4]", counts, err)
			}
		})
	}
}
