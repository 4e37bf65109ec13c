package operator

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// headerUsers identifies a DCC user from a test header, standing in for
// the router's mutual-TLS client certificate check.
type headerUsers struct{}

const userHeader = "X-Test-User"

func (headerUsers) IdentifyUser(r *http.Request) (smki.EUI, error) {
	v := r.Header.Get(userHeader)
	if v == "" {
		return smki.EUI{}, nil
	}
	if v == "revoked" {
		return smki.EUI{}, errors.New("client certificate 0A is revoked")
	}
	return smki.ParseEUI(v)
}

// TestOwningUser checks that a DCC user, identified without an operator
// token, lists, reads, releases and deletes only its own quarantined
// commands, sets only its own (stricter) thresholds, sees its own counts
// and alerts; and that every refusal is audited.
func TestOwningUser(t *testing.T) {
	f := newFixture(t, "memory", Config{Heartbeat: Duration(time.Hour)})
	f.srv.deps.Users = headerUsers{}
	mine := f.quarantine(supplier)
	mine2 := f.quarantine(supplier)
	theirs := f.quarantine(supplier2)
	as := func(user string) func(method, path, body string) (int, []byte) {
		return func(method, path, body string) (int, []byte) {
			req := httptest.NewRequest(method, path, strings.NewReader(body))
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if user != "" {
				req.Header.Set(userHeader, user)
			}
			rec := httptest.NewRecorder()
			f.srv.Handler().ServeHTTP(rec, req)
			return rec.Code, rec.Body.Bytes()
		}
	}
	user := as(supplier.String())
	tests := []struct {
		name, method, path, body string
		do                       func(method, path, body string) (int, []byte)
		want                     int
	}{
		{"list own", "GET", "/v1/quarantine", "", user, 200},
		{"list another's", "GET", "/v1/quarantine?user=" + supplier2.String(), "", user, 403},
		{"read own", "GET", "/v1/quarantine/" + mine, "", user, 200},
		{"read another's", "GET", "/v1/quarantine/" + theirs, "", user, 404},
		{"release another's", "POST", "/v1/quarantine/" + theirs + "/release", `{"reason":"mine now"}`, user, 404},
		{"delete another's", "POST", "/v1/quarantine/" + theirs + "/delete", `{"reason":"x"}`, user, 404},
		{"release own", "POST", "/v1/quarantine/" + mine + "/release", `{"reason":"our batch"}`, user, 200},
		{"delete own", "POST", "/v1/quarantine/" + mine2 + "/delete", `{"reason":"not ours after all"}`, user, 200},
		{"own stricter threshold", "PUT", "/v1/thresholds/U-1", `{"scope":"user-srv","user":"` + supplier.String() + `","serviceRef":"11.1","limit":1,"window":"3h"}`, user, 200},
		{"another's threshold", "PUT", "/v1/thresholds/U-2", `{"scope":"user-srv","user":"` + supplier2.String() + `","serviceRef":"11.1","limit":1,"window":"3h"}`, user, 403},
		{"a DCC threshold", "PUT", "/v1/thresholds/U-3", `{"scope":"user-total","limit":1,"window":"3h"}`, user, 403},
		{"delete the DCC's threshold", "DELETE", "/v1/thresholds/T-srv", `{"reason":"in my way"}`, user, 404},
		{"own counts", "GET", "/v1/usage", "", user, 200},
		{"another's counts", "GET", "/v1/usage?user=" + supplier2.String(), "", user, 403},
		{"revoked certificate", "GET", "/v1/quarantine", "", as("revoked"), 401},
		{"no credential at all", "GET", "/v1/quarantine", "", as(""), 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, b := tc.do(tc.method, tc.path, tc.body)
			if st != tc.want {
				t.Fatalf("status %d, want %d: %s", st, tc.want, b)
			}
			if st == 200 && tc.path == "/v1/quarantine" {
				var l QuarantineList
				if err := json.Unmarshal(b, &l); err != nil || len(l.Items) != 2 {
					t.Errorf("list %s", b)
				}
				for _, q := range l.Items {
					if q.User != supplier {
						t.Errorf("another user's record listed: %+v", q)
					}
				}
			}
		})
	}
	if got := f.rel.forwarded(); len(got) != 1 || got[0].Ref != mine {
		t.Errorf("forwarded %+v", got)
	}
	for _, a := range []struct{ actor, action, object, outcome string }{
		{supplier.String(), "anomaly.release", mine, "success"},
		{supplier.String(), "operator.quarantine.forward", mine, "success"},
		{supplier.String(), "anomaly.release", theirs, "refused"},
		{supplier.String(), "operator.quarantine.get", theirs, "refused"},
		{supplier.String(), "anomaly.threshold.set", "U-3", "refused"},
		{ActorUnknown, "operator.quarantine.list", "", "refused"},
	} {
		if !f.audited(a.actor, a.action, a.object, a.outcome) {
			t.Errorf("no audit entry %+v:\n%s", a, f.auditDump())
		}
	}

	// The user's event stream carries its own alerts only.
	ts := httptest.NewServer(f.srv.Handler())
	defer ts.Close()
	req, _ := http.NewRequest("GET", ts.URL+"/v1/events", nil)
	req.Header.Set(userHeader, supplier2.String())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ch := readEvents(resp.Body)
	if ev := <-ch; ev.Event != EventReady {
		t.Fatalf("first event %+v", ev)
	}
	f.quarantine(supplier)
	ref := f.quarantine(supplier2)
	if a := nextAlert(t, ch, time.Second); a.Ref != ref || a.User != supplier2 {
		t.Errorf("alert %+v, want %s", a, ref)
	}
}
