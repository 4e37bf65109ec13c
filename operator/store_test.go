package operator

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/store/storetest"
)

// TestOnStore runs the operator's day on the real store, SQLite and
// PostgreSQL: list the quarantine, release one command (forwarded), delete
// another, refuse a second release and an unauthorised delete, change a
// threshold; then checks that the audit log holds every change and
// refusal, with who and why, and that its hash chain verifies.
func TestOnStore(t *testing.T) {
	for _, backend := range storetest.Dialects() {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			db := openTestStore(t, backend)
			rel := &fakeReleaser{}
			det, err := anomaly.New(ctx, anomaly.Config{Store: db.Anomaly(), Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			srv := New(Config{}, Deps{Credentials: testCredentials(t), Quarantine: det, Thresholds: det, Usage: det,
				Alerts: det, Releaser: Forwarder(rel.forward), Audit: db})
			f := &fixture{t: t, det: det, srv: srv, rel: rel}
			f.audits = func() []auditRecord {
				es, err := db.AuditEvents(ctx, 0, 10000)
				if err != nil {
					t.Fatal(err)
				}
				var out []auditRecord
				for _, e := range es {
					out = append(out, auditRecord{e.Actor, e.Action, e.Object, e.Outcome, e.Details})
				}
				return out
			}
			steps := []struct {
				name, method, path, token, body string
				want                            int
			}{
				{"set a DCC threshold", "PUT", "/v1/thresholds/T-srv", adminToken, `{"scope":"user-srv","serviceRef":"11.1","limit":1,"window":"1h"}`, 200},
			}
			for _, s := range steps {
				if st, b, _ := f.do(s.method, s.path, s.token, s.body); st != s.want {
					t.Fatalf("%s = %d: %s", s.name, st, b)
				}
			}
			keep := f.quarantine(supplier)
			drop := f.quarantine(supplier2)

			st, b, _ := f.do("GET", "/v1/quarantine?state=quarantined", viewerToken, "")
			var l QuarantineList
			if err := json.Unmarshal(b, &l); st != 200 || err != nil || len(l.Items) != 2 || l.Items[0].Ref != drop {
				t.Fatalf("list = %d %s", st, b)
			}
			checks := []struct {
				name, method, path, token, body string
				want                            int
			}{
				{"release", "POST", "/v1/quarantine/" + keep + "/release", officerToken, `{"reason":"supplier confirmed"}`, 200},
				{"release again", "POST", "/v1/quarantine/" + keep + "/release", officerToken, `{"reason":"again"}`, 409},
				{"viewer may not delete", "POST", "/v1/quarantine/" + drop + "/delete", viewerToken, `{"reason":"x"}`, 403},
				{"delete", "POST", "/v1/quarantine/" + drop + "/delete", officerToken, `{"reason":"compromised key"}`, 200},
				{"unknown", "GET", "/v1/quarantine/Q-20260101-NONE", viewerToken, "", 404},
				{"no token", "GET", "/v1/quarantine", "", "", 401},
				{"hostile ref", "GET", "/v1/quarantine/%00%ff%0a", viewerToken, "", 400},
				{"usage", "GET", "/v1/usage?user=" + supplier.String(), viewerToken, "", 200},
			}
			for _, c := range checks {
				if st, b, _ := f.do(c.method, c.path, c.token, c.body); st != c.want {
					t.Errorf("%s = %d, want %d: %s", c.name, st, c.want, b)
				}
			}
			if got := rel.forwarded(); len(got) != 1 || got[0].Ref != keep {
				t.Errorf("forwarded %+v", got)
			}
			for _, a := range []struct{ actor, action, object, outcome string }{
				{"adam", "anomaly.threshold.set", "T-srv", "success"},
				{"anomaly-detector", "anomaly.quarantine", keep, "success"},
				{"olga", "anomaly.release", keep, "success"},
				{"olga", "operator.quarantine.forward", keep, "success"},
				{"olga", "anomaly.release", keep, "refused"},
				{"vera", "anomaly.delete", drop, "refused"},
				{"olga", "anomaly.delete", drop, "success"},
				{"vera", "operator.quarantine.get", "Q-20260101-NONE", "refused"},
				{ActorAnonymous, "operator.quarantine.list", "", "refused"},
				{"vera", "operator.quarantine.get", "%00%ff%0a", "refused"}, // echo keeps path parameters escaped
			} {
				if !f.audited(a.actor, a.action, a.object, a.outcome) {
					t.Errorf("no audit entry %+v:\n%s", a, f.auditDump())
				}
			}
			for _, e := range f.audits() {
				if e.Action == "anomaly.release" && e.Outcome == "success" && e.Details["reason"] != "supplier confirmed" {
					t.Errorf("release audited without its reason: %+v", e)
				}
			}
			if _, err := db.VerifyAudit(ctx); err != nil {
				t.Errorf("audit chain: %v", err)
			}
		})
	}
}

// TestAlertsAcrossInstances checks, on PostgreSQL, that an operator API
// whose detector is not the one that quarantined the command (the router
// runs in another process) still streams the alert within one second.
func TestAlertsAcrossInstances(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db := openTestStore(t, "postgres")
	st := db.Anomaly()
	newDet := func() *anomaly.Detector {
		d, err := anomaly.New(ctx, anomaly.Config{Store: st, Notifier: st.Notifier(), Rand: rand.Reader, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		go d.Run(ctx)
		return d
	}
	routerDet, operatorDet := newDet(), newDet()
	srv := New(Config{Heartbeat: Duration(time.Hour)}, Deps{Credentials: testCredentials(t), Alerts: operatorDet, Audit: db})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	ch, closeStream := openStream(t, ts.URL, "", viewerToken)
	defer closeStream()
	waitFor(t, func() bool { return st.Listening() >= 2 }) // both detectors listen

	f := &fixture{t: t, det: routerDet}
	admin := anomaly.Actor{ID: "setup", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
	if _, err := routerDet.SetThreshold(ctx, admin, anomaly.Threshold{ID: "T-srv", Scope: anomaly.ScopeUserService,
		ServiceRef: "11.1", Limit: 1, Window: time.Hour}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ref := f.quarantine(supplier)
	if a := nextAlert(t, ch, time.Second); a.Ref != ref {
		t.Errorf("alert %+v, want %s", a, ref)
	}
	t.Logf("alert from the other instance after %s", time.Since(start))
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5s")
}
