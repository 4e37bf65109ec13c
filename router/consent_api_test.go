package router

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/store"
)

// TestConsentAPI lists, shows and revokes an other user's consents through
// the API: its own only, refusals audited, the revocation recorded with
// who and why; and refuses a read reaching back before the 13-month data
// period.
func TestConsentAPI(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	// Another other user's consent, which "other" must not see.
	if err := e.db.Router().PutConsent(ctx, store.Consent{ID: "consent-x", Device: e.device.String(), User: "5555555555555555",
		Scope: []string{"4.8.1"}, NotBefore: e.now().Add(-time.Hour), ExpiresAt: e.now().Add(time.Hour),
		Evidence: "CIN read back", CreatedBy: "test", CreatedAt: e.now()}); err != nil {
		t.Fatal(err)
	}
	get := func(t *testing.T, who, path string, out any) apiResult {
		t.Helper()
		r, err := e.do(t, who, "GET", path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if out != nil && r.status == http.StatusOK {
			if err := json.Unmarshal(r.body, out); err != nil {
				t.Fatal(err)
			}
		}
		return r
	}
	t.Run("list", func(t *testing.T) {
		var out struct{ Consents []consentView }
		if r := get(t, "other", "/v1/consents", &out); r.status != http.StatusOK || len(out.Consents) != 1 ||
			out.Consents[0].ID != "consent-1" || out.Consents[0].State != ConsentLive || out.Consents[0].User != e.other.eui.String() {
			t.Fatalf("GET /v1/consents: %d %s", r.status, r.body)
		}
		if r := get(t, "other", "/v1/consents?device="+e.device2.String(), &out); r.status != http.StatusOK || len(out.Consents) != 0 {
			t.Fatalf("another device: %d %s", r.status, r.body)
		}
		if r := get(t, "other", "/v1/consents?state=dead", nil); r.status != http.StatusBadRequest {
			t.Fatalf("bad state: %d %s", r.status, r.body)
		}
		seq := e.auditSeq(t)
		if r := get(t, "supplier", "/v1/consents", nil); r.status != http.StatusForbidden || r.problem.Code != "role-not-eligible" {
			t.Fatalf("a supplier listing consents: %d %s", r.status, r.body)
		}
		e.wantRefusalAudited(t, seq, e.supplier, "consent.refused", "role-not-eligible")
	})
	t.Run("show", func(t *testing.T) {
		var v consentView
		if r := get(t, "other", "/v1/consents/consent-1", &v); r.status != http.StatusOK || v.ID != "consent-1" || v.Evidence == "" {
			t.Fatalf("GET /v1/consents/consent-1: %d %s", r.status, r.body)
		}
		seq := e.auditSeq(t)
		if r := get(t, "other", "/v1/consents/consent-x", nil); r.status != http.StatusNotFound || r.problem.Code != "not-found" {
			t.Fatalf("another user's consent: %d %s", r.status, r.body)
		}
		e.wantRefusalAudited(t, seq, e.other, "consent.refused", "not-found")
	})
	t.Run("13-month data period", func(t *testing.T) {
		body := `{"serviceReference":"4.8.1","target":"` + e.device.String() + `","parameters":{"from":"` +
			e.now().AddDate(-1, -1, -1).Format(time.RFC3339) + `","to":"` + e.now().Format(time.RFC3339) + `"}}`
		seq := e.auditSeq(t)
		r, err := e.do(t, "other", "POST", "/v1/service-requests", "application/json", []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if r.status != http.StatusForbidden || r.problem.Code != "consent-period" {
			t.Fatalf("read before the data period: %d %s", r.status, r.body)
		}
		e.wantRefusalAudited(t, seq, e.other, "service-request.refused", "consent-period")
		seq = e.auditSeq(t)
		if _, err := e.router.Submit(ctx, e.other.caller(), urpRead(t, e.world, e.now().AddDate(-1, -1, -1), e.now(), 50)); !errors.Is(err, ErrConsentPeriod) {
			t.Fatalf("submitted read before the data period: %v", err)
		}
		e.wantRefusalAudited(t, seq, e.other, "command.refused", "consent-period")
	})
	t.Run("revoke", func(t *testing.T) {
		revoke := func(id, body string) apiResult {
			t.Helper()
			r, err := e.do(t, "other", "POST", "/v1/consents/"+id+"/revoke", "application/json", []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		seq := e.auditSeq(t)
		if r := revoke("consent-1", `{"reason":" "}`); r.status != http.StatusBadRequest || r.problem.Code != "bad-request" {
			t.Fatalf("no reason: %d %s", r.status, r.body)
		}
		e.wantRefusalAudited(t, seq, e.other, "consent.refused", "bad-request")
		if r := revoke("consent-x", `{"reason":"mine now"}`); r.status != http.StatusNotFound {
			t.Fatalf("another user's consent: %d %s", r.status, r.body)
		}
		seq = e.auditSeq(t)
		r := revoke("consent-1", `{"reason":"the consumer withdrew by e-mail"}`)
		var v consentView
		if r.status != http.StatusOK || json.Unmarshal(r.body, &v) != nil || v.State != ConsentRevoked ||
			v.RevokedBy != e.other.caller().String() || v.RevokeReason != "the consumer withdrew by e-mail" {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		es, err := e.db.AuditEvents(ctx, seq, store.MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		var audited bool
		for _, a := range es {
			if a.Action == "router.consent.revoke" && a.Outcome == store.OutcomeSuccess && a.Actor == e.other.caller().String() && a.Object == "consent-1" {
				audited = true
			}
		}
		if !audited {
			t.Errorf("no router.consent.revoke success entry by %s: %+v", e.other.caller(), es)
		}
		if r := revoke("consent-1", `{"reason":"again"}`); r.status != http.StatusConflict || r.problem.Code != "conflict" {
			t.Fatalf("revoked twice: %d %s", r.status, r.body)
		}
		if _, err := e.router.Submit(ctx, e.other.caller(), e.urpCommand(t, e.other, e.device, codeProfile, 60)); !errors.Is(err, ErrNotOwner) {
			t.Fatalf("read after revocation: %v", err)
		}
		var out struct{ Consents []consentView }
		if r := get(t, "other", "/v1/consents?state=live", &out); r.status != http.StatusOK || len(out.Consents) != 0 {
			t.Fatalf("live consents after revocation: %d %s", r.status, r.body)
		}
	})
}

// TestThresholdAPI sets, lists and deletes a user's own anomaly thresholds
// through the API: only stricter than the DCC's, only its own, refusals
// audited.
func TestThresholdAPI(t *testing.T) {
	e := newAPIEnv(t)
	ctx := context.Background()
	op := anomaly.Actor{ID: "op", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
	if _, err := e.anomaly.SetThreshold(ctx, op, anomaly.Threshold{ID: "dcc-read", Scope: anomaly.ScopeUserService, ServiceRef: "4.1.1",
		Limit: 10, Window: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.anomaly.SetThreshold(ctx, op, anomaly.Threshold{ID: "strangers", Scope: anomaly.ScopeUserTotal, User: e.stranger.eui,
		Limit: 5, Window: time.Hour}); err != nil {
		t.Fatal(err)
	}
	put := func(id, body string) apiResult {
		t.Helper()
		r, err := e.do(t, "supplier", "PUT", "/v1/thresholds/"+id, "application/json", []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	seq := e.auditSeq(t)
	if r := put("mine", `{"scope":"user-srv","serviceRef":"4.1.1","limit":20,"window":"1h"}`); r.status != http.StatusConflict || r.problem.Code != "not-stricter" {
		t.Fatalf("looser than the DCC's: %d %s", r.status, r.body)
	}
	es, _ := e.db.AuditEvents(ctx, seq, store.MaxLimit)
	if len(es) == 0 || es[len(es)-1].Action != "anomaly.threshold.set" || es[len(es)-1].Outcome != store.OutcomeRefused {
		t.Fatalf("the refusal audited as %+v", es)
	}
	for _, bad := range []string{
		`{"scope":"user-srv","serviceRef":"4.1.1","limit":5,"window":"1h","user":"5555555555555555"}`,
		`{"id":"other","scope":"user-srv","serviceRef":"4.1.1","limit":5,"window":"1h"}`,
		`{"scope":"dcc-srv","serviceRef":"4.1.1","limit":5,"window":"1h"}`,
		`{"scope":"user-srv","serviceRef":"4.1.1","limit":5,"window":"1h","setBy":"me"}`,
		`{"scope":"user-srv","limit":5}`,
	} {
		if r := put("mine", bad); r.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, r.status, r.body)
		}
	}
	if r := put("strangers", `{"scope":"user-total","limit":1,"window":"1h"}`); r.status != http.StatusNotFound {
		t.Fatalf("another user's threshold: %d %s", r.status, r.body)
	}
	r := put("mine", `{"scope":"user-srv","serviceRef":"4.1.1","limit":5,"window":"1h"}`)
	var got anomaly.Threshold
	if r.status != http.StatusOK || json.Unmarshal(r.body, &got) != nil || got.ID != "mine" || got.User != e.supplier.eui || got.SetBy == "" {
		t.Fatalf("stricter: %d %s", r.status, r.body)
	}
	lr, err := e.do(t, "supplier", "GET", "/v1/thresholds", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Own, DCC []anomaly.Threshold }
	if lr.status != http.StatusOK || json.Unmarshal(lr.body, &list) != nil || len(list.Own) != 1 || list.Own[0].ID != "mine" ||
		len(list.DCC) != 1 || list.DCC[0].ID != "dcc-read" {
		t.Fatalf("GET /v1/thresholds: %d %s", lr.status, lr.body)
	}
	del := func(id string) apiResult {
		t.Helper()
		r, err := e.do(t, "supplier", "DELETE", "/v1/thresholds/"+id+"?reason=no+longer+needed", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := del("strangers"); r.status != http.StatusNotFound {
		t.Fatalf("deleting another user's threshold: %d %s", r.status, r.body)
	}
	if r := del("mine"); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := del("mine"); r.status != http.StatusNotFound {
		t.Fatalf("deleted twice: %d %s", r.status, r.body)
	}
}
