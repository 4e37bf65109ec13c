package operator

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
)

// route is one operation of the API, with a body that succeeds for an
// operator allowed to call it.
type route struct {
	name, method, path, body string
	action                   anomaly.Action
	auditAction              string
	ok                       int
}

// routesFor lists every authenticated operation, on the quarantine record
// ref and the threshold T-srv.
func routesFor(ref string) []route {
	return []route{
		{"list quarantine", "GET", "/v1/quarantine", "", anomaly.ActionView, "operator.quarantine.list", 200},
		{"get quarantine", "GET", "/v1/quarantine/" + ref, "", anomaly.ActionView, "operator.quarantine.get", 200},
		{"release", "POST", "/v1/quarantine/" + ref + "/release", `{"reason":"checked with the supplier"}`, anomaly.ActionRelease, "anomaly.release", 200},
		{"delete", "POST", "/v1/quarantine/" + ref + "/delete", `{"reason":"compromised key"}`, anomaly.ActionDelete, "anomaly.delete", 200},
		{"list thresholds", "GET", "/v1/thresholds", "", anomaly.ActionView, "operator.threshold.list", 200},
		{"get threshold", "GET", "/v1/thresholds/T-srv", "", anomaly.ActionView, "operator.threshold.get", 200},
		{"put threshold", "PUT", "/v1/thresholds/T-total", `{"scope":"user-total","limit":100,"window":"24h"}`, anomaly.ActionSetThreshold, "anomaly.threshold.set", 200},
		{"delete threshold", "DELETE", "/v1/thresholds/T-srv", `{"reason":"superseded"}`, anomaly.ActionSetThreshold, "anomaly.threshold.delete", 202},
		{"usage", "GET", "/v1/usage?user=" + supplier.String(), "", anomaly.ActionView, "operator.usage", 200},
		{"events", "GET", "/v1/events", "", anomaly.ActionView, "operator.events", 200},
	}
}

// TestRoles checks that each role is allowed exactly its actions, that a
// refused operator gets 403 and an audit entry, and that missing,
// malformed and unknown tokens get 401 and an audit entry.
func TestRoles(t *testing.T) {
	callers := []struct {
		name, token, actor string
		allowed            []anomaly.Action
	}{
		{"viewer", viewerToken, "vera", []anomaly.Action{anomaly.ActionView}},
		{"quarantine officer", officerToken, "olga", []anomaly.Action{anomaly.ActionView, anomaly.ActionRelease, anomaly.ActionDelete}},
		{"threshold admin", adminToken, "adam", []anomaly.Action{anomaly.ActionView, anomaly.ActionSetThreshold}},
		{"repository publisher only", publisherToken, "pete", nil},
		{"no token", "", ActorAnonymous, nil},
		{"unknown token", "not-a-token", ActorUnknown, nil},
	}
	for _, caller := range callers {
		for _, r := range routesFor("REF") {
			t.Run(caller.name+"/"+r.name, func(t *testing.T) {
				f := newFixture(t, "memory", Config{Heartbeat: Duration(time.Hour)})
				ref := f.quarantine(supplier)
				path := strings.ReplaceAll(r.path, "REF", ref)
				allowed := false
				for _, a := range caller.allowed {
					allowed = allowed || a == r.action
				}
				var status int
				var body []byte
				if r.name == "events" {
					status, body = streamStatus(t, f, caller.token)
				} else {
					status, body, _ = f.do(r.method, path, caller.token, r.body)
				}
				want := r.ok
				switch {
				case caller.token == "" || caller.actor == ActorUnknown:
					want = http.StatusUnauthorized
				case !allowed:
					want = http.StatusForbidden
				}
				if status != want {
					t.Fatalf("%s %s as %s = %d, want %d: %s", r.method, path, caller.name, status, want, body)
				}
				if want >= 400 {
					p := decodeProblem(t, body)
					if p.Status != want || !strings.HasPrefix(p.Type, ProblemTypeBase) {
						t.Errorf("problem %+v", p)
					}
					if !f.audited(caller.actor, r.auditAction, "", "refused") {
						t.Errorf("no refused %s audit entry by %s:\n%s", r.auditAction, caller.actor, f.auditDump())
					}
				}
				switch {
				case want == http.StatusUnauthorized:
				case r.action == anomaly.ActionRelease || r.action == anomaly.ActionDelete || r.action == anomaly.ActionSetThreshold:
					// Changes are audited, by the detector, on success.
					success := r.auditAction
					if want == http.StatusAccepted {
						success = "proposal.create" // a DCC threshold's deletion is proposed
					}
					if want < 400 && !f.audited(caller.actor, success, "", "success") {
						t.Errorf("no %s success audit entry:\n%s", r.auditAction, f.auditDump())
					}
				}
				if r.action == anomaly.ActionRelease {
					if n := len(f.rel.forwarded()); (want == 200) != (n == 1) {
						t.Errorf("%d commands forwarded", n)
					}
				}
			})
		}
	}
}

// streamStatus opens the event stream on a live server and returns its
// status (and the body of a refusal).
func streamStatus(t *testing.T, f *fixture, token string) (int, []byte) {
	t.Helper()
	ts := httptest.NewServer(f.srv.Handler())
	defer ts.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/v1/events", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b strings.Builder
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, []byte(b.String())
	}
	ev := <-readEvents(resp.Body)
	if ev.Event != EventReady {
		t.Errorf("first event %+v", ev)
	}
	return resp.StatusCode, nil
}

// TestAuthorizationHeader checks the forms of the Authorization header.
func TestAuthorizationHeader(t *testing.T) {
	f := newFixture(t, "memory", Config{})
	tests := []struct {
		name, header string
		want         int
	}{
		{"bearer", "Bearer " + viewerToken, 200},
		{"scheme in lower case", "bearer " + viewerToken, 200},
		{"basic", "Basic dmVyYTp4", 401},
		{"no token", "Bearer ", 401},
		{"two tokens", "Bearer " + viewerToken + " " + viewerToken, 401},
		{"token hash instead of token", "Bearer " + HashToken(viewerToken), 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/v1/quarantine", nil)
			req.Header.Set("Authorization", tc.header)
			rec := httptest.NewRecorder()
			f.srv.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			if tc.want == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q", rec.Header().Get("WWW-Authenticate"))
			}
			if strings.Contains(rec.Body.String(), viewerToken) {
				t.Error("the token is echoed in the response")
			}
		})
	}
	for _, e := range f.audits() {
		for _, v := range e.Details {
			if s, ok := v.(string); ok && strings.Contains(s, viewerToken) {
				t.Errorf("the token is in the audit log: %+v", e)
			}
		}
	}
}

// TestBadInput checks that malformed input gets 400 (or 413/415) naming
// the field, and an audit entry.
func TestBadInput(t *testing.T) {
	tests := []struct {
		name, method, path, token, body, contentType string
		want                                         int
		param, auditAction                           string
	}{
		{"release without reason", "POST", "/v1/quarantine/REF/release", officerToken, `{}`, "", 400, "reason", "anomaly.release"},
		{"release with blank reason", "POST", "/v1/quarantine/REF/release", officerToken, `{"reason":"  "}`, "", 400, "reason", "anomaly.release"},
		{"release with numeric reason", "POST", "/v1/quarantine/REF/release", officerToken, `{"reason":5}`, "", 400, "reason", "anomaly.release"},
		{"release with long reason", "POST", "/v1/quarantine/REF/release", officerToken, `{"reason":"` + strings.Repeat("x", MaxReason+1) + `"}`, "", 400, "reason", "anomaly.release"},
		{"release with unknown field", "POST", "/v1/quarantine/REF/release", officerToken, `{"reason":"x","by":"me"}`, "", 400, "by", "anomaly.release"},
		{"release with trailing data", "POST", "/v1/quarantine/REF/release", officerToken, `{"reason":"x"}{}`, "", 400, "body", "anomaly.release"},
		{"release with no body", "POST", "/v1/quarantine/REF/release", officerToken, ``, "application/json", 400, "body", "anomaly.release"},
		{"release with truncated JSON", "POST", "/v1/quarantine/REF/release", officerToken, `{"reason":"x"`, "", 400, "body", "anomaly.release"},
		{"release as a form", "POST", "/v1/quarantine/REF/release", officerToken, `reason=x`, "application/x-www-form-urlencoded", 415, "Content-Type", "anomaly.release"},
		{"release too large", "POST", "/v1/quarantine/REF/release", officerToken, `{"reason":"` + strings.Repeat("x", 300) + `"}`, "", 413, "", "anomaly.release"},
		{"delete without reason", "POST", "/v1/quarantine/REF/delete", officerToken, `{"reason":""}`, "", 400, "reason", "anomaly.delete"},
		{"list with bad user", "GET", "/v1/quarantine?user=zz", viewerToken, "", "", 400, "user", "operator.quarantine.list"},
		{"list with bad state", "GET", "/v1/quarantine?state=lost", viewerToken, "", "", 400, "state", "operator.quarantine.list"},
		{"list with zero limit", "GET", "/v1/quarantine?limit=0", viewerToken, "", "", 400, "limit", "operator.quarantine.list"},
		{"list with huge limit", "GET", "/v1/quarantine?limit=100000", viewerToken, "", "", 400, "limit", "operator.quarantine.list"},
		{"list after unknown", "GET", "/v1/quarantine?after=Q-nope", viewerToken, "", "", 400, "after", "operator.quarantine.list"},
		{"list with unknown parameter", "GET", "/v1/quarantine?owner=x", viewerToken, "", "", 400, "owner", "operator.quarantine.list"},
		{"list with repeated parameter", "GET", "/v1/quarantine?limit=1&limit=2", viewerToken, "", "", 400, "limit", "operator.quarantine.list"},
		{"list with malformed query", "GET", "/v1/quarantine?limit=%zz", viewerToken, "", "", 400, "query", "operator.quarantine.list"},
		{"usage with bad user", "GET", "/v1/usage?user=90B3", viewerToken, "", "", 400, "user", "operator.usage"},
		{"events with bad user", "GET", "/v1/events?user=x", viewerToken, "", "", 400, "user", "operator.events"},
		{"threshold with bad window", "PUT", "/v1/thresholds/T1", adminToken, `{"scope":"user-total","limit":5,"window":"a day"}`, "", 400, "window", "anomaly.threshold.set"},
		{"threshold with short window", "PUT", "/v1/thresholds/T1", adminToken, `{"scope":"user-total","limit":5,"window":"10ms"}`, "", 400, "window", "anomaly.threshold.set"},
		{"threshold with bad scope", "PUT", "/v1/thresholds/T1", adminToken, `{"scope":"everyone","limit":5,"window":"1h"}`, "", 400, "scope", "anomaly.threshold.set"},
		{"threshold with zero limit", "PUT", "/v1/thresholds/T1", adminToken, `{"scope":"user-total","limit":0,"window":"1h"}`, "", 400, "limit", "anomaly.threshold.set"},
		{"threshold with string limit", "PUT", "/v1/thresholds/T1", adminToken, `{"scope":"user-total","limit":"5","window":"1h"}`, "", 400, "limit", "anomaly.threshold.set"},
		{"threshold with bad user", "PUT", "/v1/thresholds/T1", adminToken, `{"scope":"user-total","user":"me","limit":5,"window":"1h"}`, "", 400, "user", "anomaly.threshold.set"},
		{"threshold without service", "PUT", "/v1/thresholds/T1", adminToken, `{"scope":"user-srv","limit":5,"window":"1h"}`, "", 400, "serviceRef", "anomaly.threshold.set"},
		{"threshold with other id", "PUT", "/v1/thresholds/T1", adminToken, `{"id":"T2","scope":"user-total","limit":5,"window":"1h"}`, "", 400, "id", "anomaly.threshold.set"},
		{"threshold with bad path id", "PUT", "/v1/thresholds/-x", adminToken, `{"scope":"user-total","limit":5,"window":"1h"}`, "", 400, "id", "anomaly.threshold.set"},
		{"threshold with setBy", "PUT", "/v1/thresholds/T1", adminToken, `{"scope":"user-total","limit":5,"window":"1h","setBy":"root"}`, "", 400, "setBy", "anomaly.threshold.set"},
		{"threshold with unknown field", "PUT", "/v1/thresholds/T1", adminToken, `{"scope":"user-total","limit":5,"window":"1h","per":"day"}`, "", 400, "per", "anomaly.threshold.set"},
		{"threshold as an array", "PUT", "/v1/thresholds/T1", adminToken, `[1]`, "", 400, "body", "anomaly.threshold.set"},
		{"control character in ref", "GET", "/v1/quarantine/Q-1%00", viewerToken, "", "", 400, "ref", "operator.quarantine.get"},
		{"invalid UTF-8 in ref", "POST", "/v1/quarantine/%ff%fe/release", officerToken, `{"reason":"x"}`, "", 400, "ref", "anomaly.release"},
		{"space in threshold id", "DELETE", "/v1/thresholds/T%20srv", adminToken, `{"reason":"x"}`, "", 400, "id", "anomaly.threshold.delete"},
		{"empty query key", "GET", "/v1/thresholds?=x", viewerToken, "", "", 400, "query", "operator.threshold.list"},
		{"threshold deletion without reason", "DELETE", "/v1/thresholds/T-srv", adminToken, `{}`, "", 400, "reason", "anomaly.threshold.delete"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "memory", Config{MaxBodyBytes: 2048})
			if strings.Contains(tc.name, "too large") {
				f = newFixture(t, "memory", Config{MaxBodyBytes: 128})
			}
			ref := f.quarantine(supplier)
			path := strings.ReplaceAll(tc.path, "REF", ref)
			req := httptest.NewRequest(tc.method, path, strings.NewReader(tc.body))
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			if tc.body != "" || tc.contentType != "" {
				req.Header.Set("Content-Type", ct)
			}
			req.Header.Set("Authorization", "Bearer "+tc.token)
			rec := httptest.NewRecorder()
			f.srv.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			p := decodeProblem(t, rec.Body.Bytes())
			if p.Param != tc.param {
				t.Errorf("param %q, want %q (detail %q)", p.Param, tc.param, p.Detail)
			}
			if p.Detail == "" {
				t.Error("no detail")
			}
			if !f.audited("", tc.auditAction, "", "refused") {
				t.Errorf("no refused %s audit entry:\n%s", tc.auditAction, f.auditDump())
			}
			if n := len(f.rel.forwarded()); n != 0 {
				t.Errorf("%d commands forwarded", n)
			}
			q, err := f.det.Get(context.Background(), ref, anomaly.Actor{ID: "t", Roles: []anomaly.Role{anomaly.RoleViewer}})
			if err != nil || q.State != anomaly.StateQuarantined {
				t.Errorf("quarantine record now %v, %v", q.State, err)
			}
		})
	}
}

// TestNotFoundAndConflict checks unknown references (404) and decisions on
// records already decided (409), each audited.
func TestNotFoundAndConflict(t *testing.T) {
	f := newFixture(t, "memory", Config{})
	ref := f.quarantine(supplier)
	other := f.quarantine(supplier2)
	if st, b, _ := f.do("POST", "/v1/quarantine/"+ref+"/release", officerToken, `{"reason":"first"}`); st != 200 {
		t.Fatalf("release = %d: %s", st, b)
	}
	if st, b, _ := f.do("POST", "/v1/quarantine/"+other+"/delete", officerToken, `{"reason":"first"}`); st != 200 {
		t.Fatalf("delete = %d: %s", st, b)
	}
	tests := []struct {
		name, method, path, token, body string
		want                            int
		auditAction, object             string
	}{
		{"get unknown", "GET", "/v1/quarantine/Q-20260101-NOPE", viewerToken, "", 404, "operator.quarantine.get", "Q-20260101-NOPE"},
		{"release unknown", "POST", "/v1/quarantine/Q-20260101-NOPE/release", officerToken, `{"reason":"x"}`, 404, "anomaly.release", "Q-20260101-NOPE"},
		{"delete unknown", "POST", "/v1/quarantine/Q-20260101-NOPE/delete", officerToken, `{"reason":"x"}`, 404, "anomaly.delete", "Q-20260101-NOPE"},
		{"release twice", "POST", "/v1/quarantine/" + ref + "/release", officerToken, `{"reason":"again"}`, 409, "anomaly.release", ref},
		{"delete released", "POST", "/v1/quarantine/" + ref + "/delete", officerToken, `{"reason":"too late"}`, 409, "anomaly.delete", ref},
		{"release deleted", "POST", "/v1/quarantine/" + other + "/release", officerToken, `{"reason":"undo"}`, 409, "anomaly.release", other},
		{"get unknown threshold", "GET", "/v1/thresholds/T-nope", viewerToken, "", 404, "operator.threshold.get", "T-nope"},
		{"delete unknown threshold", "DELETE", "/v1/thresholds/T-nope", adminToken, `{"reason":"x"}`, 404, "anomaly.threshold.delete", "T-nope"},
		{"no such route", "GET", "/v1/nothing", viewerToken, "", 404, "", ""},
		{"wrong method", "PATCH", "/v1/thresholds/T-srv", adminToken, "", 405, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, b, _ := f.do(tc.method, tc.path, tc.token, tc.body)
			if st != tc.want {
				t.Fatalf("status %d, want %d: %s", st, tc.want, b)
			}
			if p := decodeProblem(t, b); p.Status != tc.want {
				t.Errorf("problem status %d", p.Status)
			}
			if tc.auditAction != "" && !f.audited("", tc.auditAction, tc.object, "refused") {
				t.Errorf("no refused %s audit entry for %s:\n%s", tc.auditAction, tc.object, f.auditDump())
			}
		})
	}
	if n := len(f.rel.forwarded()); n != 1 {
		t.Errorf("%d commands forwarded, want the one release", n)
	}
}

// TestRelease checks that a release goes to the releaser with the released
// record and is audited with who and why, and that a forwarding failure
// leaves the command released, answers 502 with the record, and is
// audited.
func TestRelease(t *testing.T) {
	tests := []struct {
		name       string
		forwardErr error
		want       int
	}{
		{"forwarded", nil, http.StatusOK},
		{"router fails", errRouterDown, http.StatusBadGateway},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, backend := range []string{"memory", "sqlite"} {
				t.Run(backend, func(t *testing.T) {
					f := newFixture(t, backend, Config{})
					f.rel.err = tc.forwardErr
					ref := f.quarantine(supplier)
					st, b, _ := f.do("POST", "/v1/quarantine/"+ref+"/release", officerToken, `{"reason":"supplier confirmed the batch"}`)
					if st != tc.want {
						t.Fatalf("release = %d, want %d: %s", st, tc.want, b)
					}
					var view QuarantineView
					if tc.forwardErr == nil {
						var res ReleaseResult
						if err := json.Unmarshal(b, &res); err != nil {
							t.Fatal(err)
						}
						view = res.Quarantine
						fw, _ := res.Forwarded.(map[string]any)
						if fw["status"] != "accepted" || fw["id"] != view.CommandID {
							t.Errorf("forwarded = %v", res.Forwarded)
						}
						got := f.rel.forwarded()
						if len(got) != 1 || got[0].Ref != ref || got[0].State != anomaly.StateReleased || len(got[0].Command) == 0 {
							t.Fatalf("releaser got %+v", got)
						}
						if !f.audited("olga", "operator.quarantine.forward", ref, "success") {
							t.Errorf("forwarding not audited:\n%s", f.auditDump())
						}
					} else {
						p := decodeProblem(t, b)
						if p.Quarantine == nil || !strings.Contains(p.Detail, "stays released") || !strings.Contains(p.Detail, errRouterDown.Error()) {
							t.Fatalf("problem %+v", p)
						}
						view = *p.Quarantine
						if !f.audited("olga", "operator.quarantine.forward", ref, "failure") {
							t.Errorf("forwarding failure not audited:\n%s", f.auditDump())
						}
					}
					if view.State != anomaly.StateReleased || view.DecidedBy == "" || view.Reason != "supplier confirmed the batch" {
						t.Errorf("record %+v", view)
					}
					if !f.audited("olga", "anomaly.release", ref, "success") {
						t.Errorf("release not audited:\n%s", f.auditDump())
					}
					st, b, _ = f.do("GET", "/v1/quarantine/"+ref, viewerToken, "")
					if err := json.Unmarshal(b, &view); st != 200 || err != nil || view.State != anomaly.StateReleased || len(view.Command) == 0 {
						t.Errorf("GET after release = %d %+v", st, view)
					}
					if st, _, _ := f.do("POST", "/v1/quarantine/"+ref+"/release", officerToken, `{"reason":"again"}`); st != http.StatusConflict {
						t.Errorf("second release = %d, want 409", st)
					}
				})
			}
		})
	}
}

// TestListPaging checks filtering and following next through every page.
func TestListPaging(t *testing.T) {
	f := newFixture(t, "memory", Config{})
	var refs []string
	for range 5 {
		refs = append(refs, f.quarantine(supplier))
	}
	refs = append(refs, f.quarantine(supplier2))
	next := "/v1/quarantine?limit=2&user=" + supplier.String()
	seen := map[string]bool{}
	pages := 0
	for next != "" {
		st, b, _ := f.do("GET", next, viewerToken, "")
		if st != 200 {
			t.Fatalf("GET %s = %d: %s", next, st, b)
		}
		var l QuarantineList
		if err := json.Unmarshal(b, &l); err != nil {
			t.Fatal(err)
		}
		for _, q := range l.Items {
			if q.User != supplier || seen[q.Ref] || len(q.Command) != 0 || q.CommandLength == 0 {
				t.Errorf("item %+v (seen before: %v)", q, seen[q.Ref])
			}
			seen[q.Ref] = true
		}
		next = l.Next
		if pages++; pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	if len(seen) != 5 {
		t.Errorf("%d records over %d pages, want 5", len(seen), pages)
	}
	st, b, _ := f.do("GET", "/v1/quarantine?state=released", viewerToken, "")
	var l QuarantineList
	if err := json.Unmarshal(b, &l); st != 200 || err != nil || len(l.Items) != 0 {
		t.Errorf("released = %d %s", st, b)
	}
}

// TestThresholds checks setting, reading and deleting thresholds, and that
// a user threshold must be stricter than the DCC's (409).
func TestThresholds(t *testing.T) {
	f := newFixture(t, "memory", Config{})
	steps := []struct {
		name, method, path, body string
		want                     int
	}{
		{"set a DCC total", "PUT", "/v1/thresholds/T-total", `{"scope":"user-total","limit":500,"window":"24h","fixed":true}`, 200},
		{"replace it", "PUT", "/v1/thresholds/T-total", `{"id":"T-total","scope":"user-total","limit":400,"window":"24h","fixed":true}`, 200},
		{"a user's own stricter threshold", "PUT", "/v1/thresholds/T-user", `{"scope":"user-srv","user":"` + supplier.String() + `","serviceRef":"11.1","limit":1,"window":"2h"}`, 200},
		{"a user's threshold not stricter", "PUT", "/v1/thresholds/T-lax", `{"scope":"user-srv","user":"` + supplier.String() + `","serviceRef":"11.1","limit":50,"window":"1h"}`, 409},
		{"an attribute limit", "PUT", "/v1/thresholds/T-price", `{"scope":"attribute","attribute":"price","min":0,"max":100000}`, 200},
		{"read one", "GET", "/v1/thresholds/T-total", "", 200},
		{"deleting a DCC one is proposed", "DELETE", "/v1/thresholds/T-price", `{"reason":"tariff checks moved"}`, 202},
		{"still there until approved", "GET", "/v1/thresholds/T-price", "", 200},
		{"delete a user's own", "DELETE", "/v1/thresholds/T-user", `{"reason":"supplier asked"}`, 204},
		{"deleted is gone", "GET", "/v1/thresholds/T-user", "", 404},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			st, b, _ := f.do(s.method, s.path, adminToken, s.body)
			if st != s.want {
				t.Fatalf("status %d, want %d: %s", st, s.want, b)
			}
			if s.method == "PUT" && st == 200 {
				th, err := anomaly.ParseThreshold(b)
				if err != nil || th.SetBy == "" || th.SetAt.IsZero() {
					t.Errorf("answer %s: %v", b, err)
				}
			}
		})
	}
	st, b, _ := f.do("GET", "/v1/thresholds", viewerToken, "")
	var l struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(b, &l); st != 200 || err != nil || len(l.Items) != 3 {
		t.Fatalf("list = %d %s", st, b)
	}
	if !f.audited("adam", "anomaly.threshold.set", "T-lax", "refused") || !f.audited("adam", "anomaly.threshold.delete", "T-user", "success") ||
		!f.audited("adam", "proposal.create", "", "success") {
		t.Errorf("threshold changes not audited:\n%s", f.auditDump())
	}
}

// TestUsage checks live counts.
func TestUsage(t *testing.T) {
	f := newFixture(t, "memory", Config{})
	f.quarantine(supplier) // one counted, one quarantined
	st, b, _ := f.do("GET", "/v1/usage?user="+supplier.String(), viewerToken, "")
	var u UsageList
	if err := json.Unmarshal(b, &u); st != 200 || err != nil {
		t.Fatalf("usage = %d %s", st, b)
	}
	if len(u.Items) != 1 || u.Items[0].Count != 1 || u.Items[0].Threshold.ID != "T-srv" || u.User == nil || *u.User != supplier {
		t.Errorf("usage %s", b)
	}
	st, b, _ = f.do("GET", "/v1/usage", viewerToken, "")
	u = UsageList{}
	if err := json.Unmarshal(b, &u); st != 200 || err != nil || len(u.Items) != 0 || u.User != nil {
		t.Errorf("DCC-wide usage = %d %s", st, b)
	}
}

// TestHealthz checks the unauthenticated liveness route.
func TestHealthz(t *testing.T) {
	f := newFixture(t, "memory", Config{})
	if st, b, _ := f.do("GET", "/healthz", "", ""); st != 200 || !strings.Contains(string(b), `"ok"`) {
		t.Errorf("healthz = %d %s", st, b)
	}
}

// TestUnavailable checks that a server without its dependencies answers 503
// rather than failing.
func TestUnavailable(t *testing.T) {
	srv := New(Config{}, Deps{Credentials: testCredentials(t), Audit: &memAuditor{}})
	for _, r := range routesFor("Q-1") {
		t.Run(r.name, func(t *testing.T) {
			req := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+adminToken)
			if r.action == anomaly.ActionRelease || r.action == anomaly.ActionDelete {
				req.Header.Set("Authorization", "Bearer "+officerToken)
			}
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, req)
			if rec.Code != http.StatusServiceUnavailable {
				t.Errorf("status %d, want 503: %s", rec.Code, rec.Body)
			}
		})
	}
}

// TestConcurrentRelease checks that two operators releasing the same
// command at once get one 200 and one 409, and the command is forwarded
// once.
func TestConcurrentRelease(t *testing.T) {
	for _, backend := range []string{"memory", "sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			f := newFixture(t, backend, Config{})
			ref := f.quarantine(supplier)
			const n = 8
			codes := make(chan int, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					path := "/v1/quarantine/" + ref + "/release"
					if i%2 == 1 {
						path = "/v1/quarantine/" + ref + "/delete"
					}
					req := httptest.NewRequest("POST", path, strings.NewReader(`{"reason":"race"}`))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Authorization", "Bearer "+officerToken)
					rec := httptest.NewRecorder()
					f.srv.Handler().ServeHTTP(rec, req)
					codes <- rec.Code
				})
			}
			wg.Wait()
			close(codes)
			count := map[int]int{}
			for c := range codes {
				count[c]++
			}
			if count[200] != 1 || count[409] != n-1 {
				t.Fatalf("statuses %v, want one 200 and %d 409", count, n-1)
			}
			q, err := f.det.Get(context.Background(), ref, anomaly.Actor{ID: "t", Roles: []anomaly.Role{anomaly.RoleViewer}})
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			if q.State == anomaly.StateReleased {
				want = 1
			}
			if got := len(f.rel.forwarded()); got != want {
				t.Errorf("state %s, %d forwarded", q.State, got)
			}
		})
	}
}

// TestReleaseDeferred checks the keyless process's release: the decision is
// recorded and audited, nothing is forwarded here, the answer is 202 with
// the record's forwarding pending, and a GET shows the pending forwarding.
func TestReleaseDeferred(t *testing.T) {
	for _, backend := range []string{"memory", "sqlite"} {
		t.Run(backend, func(t *testing.T) {
			f := newFixture(t, backend, Config{})
			f.srv = New(Config{}, Deps{Credentials: testCredentials(t), Quarantine: f.det, Thresholds: f.det, Usage: f.det,
				Alerts: f.det, Releaser: Deferred, Audit: f.aud})
			ref := f.quarantine(supplier)
			st, b, _ := f.do("POST", "/v1/quarantine/"+ref+"/release", officerToken, `{"reason":"supplier confirmed the batch"}`)
			if st != http.StatusAccepted {
				t.Fatalf("release = %d, want 202: %s", st, b)
			}
			var res ReleaseResult
			if err := json.Unmarshal(b, &res); err != nil {
				t.Fatal(err)
			}
			v := res.Quarantine
			if res.Forwarded != nil || v.State != anomaly.StateReleased || v.Forwarding == nil || v.Forwarding.State != anomaly.ForwardPending {
				t.Errorf("202 body %s", b)
			}
			if strings.Contains(string(b), `"forwarded"`) {
				t.Errorf("202 body has a receipt: %s", b)
			}
			if n := len(f.rel.forwarded()); n != 0 {
				t.Errorf("%d commands forwarded by the keyless process", n)
			}
			if !f.audited("olga", "anomaly.release", ref, "success") {
				t.Errorf("release not audited:\n%s", f.auditDump())
			}
			if f.audited("olga", "operator.quarantine.forward", ref, "success") || f.audited("olga", "operator.quarantine.forward", ref, "failure") {
				t.Errorf("forwarding audited by the keyless process:\n%s", f.auditDump())
			}
			var view QuarantineView
			st, b, _ = f.do("GET", "/v1/quarantine/"+ref, viewerToken, "")
			if err := json.Unmarshal(b, &view); st != 200 || err != nil || view.Forwarding == nil || view.Forwarding.State != anomaly.ForwardPending ||
				view.Forwarding.NextAttempt.IsZero() {
				t.Errorf("GET after release = %d %s", st, b)
			}
		})
	}
}
