package operator_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"strings"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/anomaly/anomalytest"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/store"
)

// The credentials file holds only the SHA-256 of each token.
func ExampleParse() {
	creds, err := operator.Parse([]byte(`{"operators":[{"name":"alice","token_sha256":"` +
		operator.HashToken("correct horse") + `","roles":["viewer","quarantine-officer"]}]}`))
	if err != nil {
		log.Fatal(err)
	}
	id, ok := creds.Authenticate("correct horse")
	fmt.Println(id.Name, ok, id.Permits(anomaly.ActionRelease), id.Permits(anomaly.ActionSetThreshold))
	_, ok = creds.Authenticate("wrong")
	fmt.Println(ok)
	// Output:
	// alice true true false
	// false
}

// discardAudit is an Auditor that keeps nothing, for the example.
type discardAudit struct{}

func (discardAudit) AppendAudit(_ context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	return e, nil
}

// An operator API over an anomaly detector, with the router's
// ForwardReleased wrapped by Forwarder.
func ExampleNew() {
	ctx := context.Background()
	det, err := anomaly.New(ctx, anomaly.Config{Store: &anomalytest.Store{}})
	if err != nil {
		log.Fatal(err)
	}
	creds, err := operator.NewCredentials([]operator.Credential{
		{Name: "adam", TokenSHA256: operator.HashToken("t0ken"), Roles: []operator.Role{operator.RoleThresholdAdmin}},
	})
	if err != nil {
		log.Fatal(err)
	}
	forward := func(ctx context.Context, q anomaly.Quarantine) (string, error) { return "accepted " + q.CommandID, nil }
	srv := operator.New(operator.Config{}, operator.Deps{
		Credentials: creds, Quarantine: det, Thresholds: det, Usage: det, Alerts: det,
		Releaser: operator.Forwarder(forward), Audit: discardAudit{},
	})

	req := httptest.NewRequest("PUT", "/v1/thresholds/T-disconnects",
		strings.NewReader(`{"scope":"dcc-srv","serviceRef":"7.2","limit":1000,"window":"1h"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer t0ken")
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	fmt.Println(rec.Code)

	req = httptest.NewRequest("POST", "/v1/quarantine/Q-1/release", strings.NewReader(`{"reason":"ok"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer t0ken")
	rec = httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	// Output:
	// 200
	// 403 application/problem+json
}
