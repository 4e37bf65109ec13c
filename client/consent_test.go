package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/client"
	"github.com/metertrust/metertrust/inproc"
)

// thirdParty returns the system's other user's client.
func thirdParty(t *testing.T, sys *inproc.System) *client.Client {
	t.Helper()
	p := sys.Party(inproc.PartyThirdParty)
	c, err := client.New(client.Config{Router: sys.RouterURL, Repository: sys.RepositoryURL,
		TLS:          &tls.Config{RootCAs: sys.DCCKIRoots, Certificates: []tls.Certificate{*p.TLS}, ServerName: "localhost"},
		KeyAgreement: p.KA})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConsent runs a third party's consent from end to end: the CIN shown
// on the meter and claimed, a profile read under the consent opened with
// the third party's key, a read reaching back more than 13 months refused,
// the consent listed, shown and revoked, and a read after it refused.
func TestConsent(t *testing.T) {
	sys, _ := system(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := thirdParty(t, sys)
	meter := sys.Meters[0]
	now := time.Now().UTC()
	recent := map[string]any{"from": now.Add(-3 * time.Hour).Format(time.RFC3339), "to": now.Format(time.RFC3339)}
	if _, err := c.Send(ctx, "4.8.1", meter, recent); !errors.Is(err, client.ErrNotOwner) {
		t.Fatalf("read without consent: %v", err)
	}
	rc, err := c.RequestCIN(ctx, meter, "")
	if err != nil {
		t.Fatal(err)
	}
	if d, err := c.Wait(ctx, rc.ID, 0); err != nil || d.Kind != client.KindResponse {
		t.Fatalf("the CIN command: %+v, %v", d, err)
	}
	m, _ := sys.Fleet.Meter(meter)
	cin, ok := m.CIN()
	if !ok {
		t.Fatal("the meter displays no CIN")
	}
	cs, err := c.ClaimConsent(ctx, meter, cin, []string{"4.8.1"}, 30)
	if err != nil {
		t.Fatal(err)
	}
	if cs.State != "live" || cs.Device != meter || cs.User != c.EUI() {
		t.Fatalf("consent %+v", cs)
	}

	rc, err = c.Send(ctx, "4.8.1", meter, recent)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Wait(ctx, rc.ID, 0)
	if err != nil || d.Kind != client.KindResponse {
		t.Fatalf("Wait = %+v, %v", d, err)
	}
	if r, err := c.Open(ctx, d.Body); err != nil || len(r.Plaintexts) != 1 {
		t.Fatalf("Open = %+v, %v", r, err)
	}
	old := map[string]any{"from": now.AddDate(-1, -1, -1).Format(time.RFC3339), "to": now.AddDate(-1, -1, 0).Format(time.RFC3339)}
	if _, err := c.Send(ctx, "4.8.1", meter, old); !errors.Is(err, client.ErrConsentPeriod) {
		t.Fatalf("read before the 13-month data period: %v", err)
	}

	list, err := c.Consents(ctx, client.ConsentQuery{Live: true})
	if err != nil || len(list) != 1 || list[0].ID != cs.ID {
		t.Fatalf("Consents = %+v, %v", list, err)
	}
	if got, err := c.Consent(ctx, cs.ID); err != nil || got.ID != cs.ID || got.Evidence == "" {
		t.Fatalf("Consent = %+v, %v", got, err)
	}
	if _, err := c.Consent(ctx, "C-nope"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("unknown consent: %v", err)
	}
	rv, err := c.RevokeConsent(ctx, cs.ID, "the consumer withdrew")
	if err != nil || rv.State != "revoked" || rv.RevokeReason != "the consumer withdrew" || rv.RevokedBy == "" {
		t.Fatalf("RevokeConsent = %+v, %v", rv, err)
	}
	if _, err := c.RevokeConsent(ctx, cs.ID, "again"); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("revoked twice: %v", err)
	}
	if _, err := c.Send(ctx, "4.8.1", meter, recent); !errors.Is(err, client.ErrNotOwner) {
		t.Fatalf("read after revocation: %v", err)
	}
	// A supplier holds no consents.
	_, sup := system(t)
	if _, err := sup.Consents(ctx, client.ConsentQuery{}); !errors.Is(err, client.ErrNotEligible) {
		t.Fatalf("a supplier's consents: %v", err)
	}
}

// TestThresholds sets the user's own threshold, stricter than the DCC's,
// and sees a command over it quarantined; a looser one is refused.
func TestThresholds(t *testing.T) {
	sys, c := system(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	op := anomaly.Actor{ID: "op", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
	if _, err := sys.Detector.SetThreshold(ctx, op, anomaly.Threshold{ID: "dcc-4.1.1", Scope: anomaly.ScopeUserService,
		ServiceRef: "4.1.1", Limit: 100, Window: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetThreshold(ctx, anomaly.Threshold{ID: "mine", Scope: anomaly.ScopeUserService, ServiceRef: "4.1.1",
		Limit: 200, Window: time.Hour}); !errors.Is(err, client.ErrNotStricter) {
		t.Fatalf("looser than the DCC's: %v", err)
	}
	set, err := c.SetThreshold(ctx, anomaly.Threshold{ID: "mine", Scope: anomaly.ScopeUserService, ServiceRef: "4.1.1",
		Limit: 1, Window: time.Hour})
	if err != nil || set.User != c.EUI() || set.SetBy == "" {
		t.Fatalf("SetThreshold = %+v, %v", set, err)
	}
	own, dcc, err := c.Thresholds(ctx)
	if err != nil || len(own) != 1 || own[0].ID != "mine" || len(dcc) == 0 {
		t.Fatalf("Thresholds = %v, %v, %v", own, dcc, err)
	}
	if _, err := c.Send(ctx, "4.1.1", sys.Meters[0], nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, "4.1.1", sys.Meters[0], nil); !errors.Is(err, client.ErrQuarantined) {
		t.Fatalf("over the user's own threshold: %v", err)
	}
	if err := c.DeleteThreshold(ctx, "mine", "test done"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteThreshold(ctx, "mine", ""); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("deleted twice: %v", err)
	}
}
