package ra_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/ra"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

func orgCSR(t *testing.T, role smki.Role, eui smki.EUI, ku x509.KeyUsage) string {
	t.Helper()
	der, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindOrganisation, CommonName: "Org",
		Role: role, EUI: eui, KeyUsage: ku}, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// TestRegistration walks the registration authority: an operator
// registers a supplier and the DCC's access control broker; each submits a
// request with its own DCCKI client certificate; the supplier's is issued
// on one approval, the ACB's (a DCC role) only on a second, different
// operator's; a rejected request stays rejected; organisations see only
// their own requests; and the refusals say why.
func TestRegistration(t *testing.T) {
	w := newWorld(t)
	supplier, acb := smki.MustParseEUI("90B3D51F30010000"), smki.MustParseEUI("90B3D51F30000004")

	var rec ra.OrganisationRecord
	if code, p := w.call(w.client, "PUT", "/v1/organisations/"+supplier.String(), "carol",
		ra.OrganisationRecord{Name: "Supplier A", Roles: []string{"supplier", "supplier"}}, &rec); code != http.StatusCreated {
		t.Fatalf("register supplier: %d %+v", code, p)
	}
	if rec.EUI != supplier.String() || !slices.Equal(rec.Roles, []string{"supplier"}) || rec.RegisteredBy != "carol" || rec.State != store.OrgActive {
		t.Errorf("registered %+v", rec)
	}
	if code, p := w.call(w.client, "PUT", "/v1/organisations/"+acb.String(), "carol",
		ra.OrganisationRecord{Name: "DCC", Roles: []string{"acb"}}, nil); code != http.StatusCreated {
		t.Fatalf("register ACB: %d %+v", code, p)
	}
	supClient := w.httpClient(ptr(w.clientCert(supplier)))
	acbClient := w.client // the world's client certificate is the ACB's EUI-64

	// The supplier asks for a DS certificate: one approval issues it.
	var req ra.RequestView
	code, p := w.call(supClient, "POST", "/v1/requests", "", ra.SubmitRequest{Role: "supplier", Usage: "ds",
		CSR: orgCSR(t, smki.RoleSupplier, supplier, x509.KeyUsageDigitalSignature)}, &req)
	if code != http.StatusAccepted || req.State != store.RequestPending || req.ApprovalsNeeded != 1 || req.Organisation != supplier.String() {
		t.Fatalf("submit: %d %+v %+v", code, p, req)
	}
	var other ra.RequestView
	if code, _ := w.call(acbClient, "GET", "/v1/requests/"+req.ID, "", nil, &other); code != http.StatusNotFound {
		t.Errorf("another organisation reads the supplier's request: %d", code)
	}
	var queue struct{ Requests []ra.RequestView }
	if code, _ := w.call(w.client, "GET", "/v1/requests", "bob", nil, &queue); code != http.StatusOK || len(queue.Requests) != 1 {
		t.Errorf("pending queue: %d %+v", code, queue)
	}
	if code, _ := w.call(w.client, "POST", "/v1/requests/"+req.ID+"/approve", "bob", nil, nil); code != http.StatusForbidden {
		t.Errorf("a viewer approves: %d", code)
	}
	var done ra.RequestView
	if code, p := w.call(w.client, "POST", "/v1/requests/"+req.ID+"/approve", "alice", ra.Decision{Reason: "checked"}, &done); code != http.StatusOK ||
		done.State != store.RequestIssued || done.Certificate == nil || done.Certificate.CA != ca.NameOCA || done.Certificate.EUI != supplier.String() {
		t.Fatalf("approve: %d %+v %+v", code, p, done)
	}
	if code, _ := w.call(supClient, "GET", "/v1/requests/"+req.ID, "", nil, &other); code != http.StatusOK || other.Certificate == nil {
		t.Errorf("the supplier reads its issued request: %d %+v", code, other)
	}

	// The ACB (a DCC role) needs two different operators.
	code, p = w.call(acbClient, "POST", "/v1/requests", "", ra.SubmitRequest{Role: "accessControlBroker", Usage: "ka",
		CSR: orgCSR(t, smki.RoleAccessControlBroker, acb, x509.KeyUsageKeyAgreement)}, &req)
	if code != http.StatusAccepted || req.ApprovalsNeeded != 2 {
		t.Fatalf("ACB submit: %d %+v %+v", code, p, req)
	}
	if code, _ := w.call(w.client, "POST", "/v1/requests/"+req.ID+"/approve", "alice", nil, &done); code != http.StatusOK || done.State != store.RequestPending {
		t.Fatalf("first approval: %d %+v", code, done)
	}
	if code, p := w.call(w.client, "POST", "/v1/requests/"+req.ID+"/approve", "alice", nil, nil); code != http.StatusConflict {
		t.Errorf("the same operator twice: %d %+v", code, p)
	}
	if code, p := w.call(w.client, "POST", "/v1/requests/"+req.ID+"/approve", "carol", nil, &done); code != http.StatusOK ||
		done.State != store.RequestIssued || !slices.Equal(done.Approvals, []string{"alice", "carol"}) || done.Certificate == nil {
		t.Fatalf("second approval: %d %+v %+v", code, p, done)
	}

	// Rejected, and then no approval changes it.
	code, _ = w.call(supClient, "POST", "/v1/requests", "", ra.SubmitRequest{Role: "supplier", Usage: "ka",
		CSR: orgCSR(t, smki.RoleSupplier, supplier, x509.KeyUsageKeyAgreement)}, &req)
	if code != http.StatusAccepted {
		t.Fatal(code)
	}
	if code, _ := w.call(w.client, "POST", "/v1/requests/"+req.ID+"/reject", "alice", ra.Decision{}, nil); code != http.StatusBadRequest {
		t.Errorf("reject without a reason: %d", code)
	}
	if code, _ := w.call(w.client, "POST", "/v1/requests/"+req.ID+"/reject", "alice", ra.Decision{Reason: "wrong key"}, &done); code != http.StatusOK || done.State != store.RequestRejected {
		t.Errorf("reject: %d %+v", code, done)
	}
	if code, _ := w.call(w.client, "POST", "/v1/requests/"+req.ID+"/approve", "carol", nil, nil); code != http.StatusConflict {
		t.Errorf("approving a rejected request: %d", code)
	}

	// Refusals at submission.
	for _, tc := range []struct {
		name string
		body ra.SubmitRequest
		code int
	}{
		{"unregistered role", ra.SubmitRequest{Role: "networkOperator", Usage: "ds", CSR: orgCSR(t, smki.RoleNetworkOperator, supplier, x509.KeyUsageDigitalSignature)}, 403},
		{"another EUI in the CSR", ra.SubmitRequest{Role: "supplier", Usage: "ds", CSR: orgCSR(t, smki.RoleSupplier, acb, x509.KeyUsageDigitalSignature)}, 400},
		{"usage against the CSR", ra.SubmitRequest{Role: "supplier", Usage: "ka", CSR: orgCSR(t, smki.RoleSupplier, supplier, x509.KeyUsageDigitalSignature)}, 400},
		{"device CSR", ra.SubmitRequest{Role: "supplier", Usage: "ds", CSR: deviceCSR(t, smki.MustParseEUI("F000000000000009"))}, 400},
		{"not a CSR", ra.SubmitRequest{Role: "supplier", Usage: "ds", CSR: "bm90IGEgQ1NS"}, 400},
	} {
		if code, p := w.call(supClient, "POST", "/v1/requests", "", tc.body, nil); code != tc.code {
			t.Errorf("%s: %d %+v, want %d", tc.name, code, p, tc.code)
		}
	}

	// Withdrawn: nothing more from it.
	if code, _ := w.call(w.client, "PUT", "/v1/organisations/"+supplier.String(), "carol",
		ra.OrganisationRecord{Name: "Supplier A", Roles: []string{"supplier"}, State: store.OrgWithdrawn}, &rec); code != http.StatusOK || rec.RegisteredBy != "carol" {
		t.Errorf("withdraw: %d %+v", code, rec)
	}
	if code, _ := w.call(supClient, "POST", "/v1/requests", "", ra.SubmitRequest{Role: "supplier", Usage: "ds",
		CSR: orgCSR(t, smki.RoleSupplier, supplier, x509.KeyUsageDigitalSignature)}, nil); code != http.StatusForbidden {
		t.Errorf("a withdrawn organisation submits: %d", code)
	}

	// Every step is in the audit log, with who did it.
	var actions []string
	for _, e := range w.audit(0) {
		if strings.HasPrefix(e.Action, "ca-api.request.") && e.Outcome == ra.OutcomeSuccess {
			actor, _, _ := strings.Cut(e.Actor, " serial ")
			actions = append(actions, actor+" "+strings.TrimPrefix(e.Action, "ca-api.request."))
		}
	}
	want := []string{"90B3D51F30010000/OU submit", "alice approve", "alice issue", "90B3D51F30000004/OU submit", "alice approve",
		"carol approve", "carol issue", "90B3D51F30010000/OU submit", "alice reject"}
	if !slices.Equal(actions, want) {
		t.Errorf("audited %q, want %q", actions, want)
	}
}

func ptr[T any](v T) *T { return &v }

// TestClient drives the registration through Client, as the ca request
// commands do: register, submit, list, approve, revoke; and a refusal comes
// back as an *Error with its status.
func TestClient(t *testing.T) {
	w := newWorld(t)
	supplier := smki.MustParseEUI("90B3D51F30010000")
	tc := func(cert tls.Certificate) *tls.Config {
		return &tls.Config{RootCAs: w.roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	carol, err := ra.NewClient(w.url, tc(w.caller), w.tokens["carol"])
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := ra.NewClient(w.url, tc(w.caller), w.tokens["alice"])
	org, _ := ra.NewClient(w.url, tc(w.clientCert(supplier)), "")
	ctx := context.Background()
	if _, err := carol.RegisterOrganisation(ctx, supplier, ra.OrganisationRecord{Name: "Supplier A", Roles: []string{"supplier"}}); err != nil {
		t.Fatal(err)
	}
	if orgs, err := alice.Organisations(ctx); err != nil || len(orgs) != 1 {
		t.Errorf("Organisations = %+v, %v", orgs, err)
	}
	req, err := org.Submit(ctx, ra.SubmitRequest{Role: "supplier", Usage: "ds", CSR: orgCSR(t, smki.RoleSupplier, supplier, x509.KeyUsageDigitalSignature)})
	if err != nil {
		t.Fatal(err)
	}
	if list, err := alice.Requests(ctx, "", smki.EUI{}); err != nil || len(list) != 1 || list[0].ID != req.ID {
		t.Errorf("Requests = %+v, %v", list, err)
	}
	if _, err := org.Approve(ctx, req.ID, ""); !ra.IsStatus(err, http.StatusUnauthorized) {
		t.Errorf("an organisation approves: %v", err)
	}
	done, err := alice.Approve(ctx, req.ID, "ok")
	if err != nil || done.Certificate == nil {
		t.Fatalf("Approve = %+v, %v", done, err)
	}
	if got, err := org.Request(ctx, req.ID); err != nil || got.State != store.RequestIssued {
		t.Errorf("Request = %+v, %v", got, err)
	}
	rv, err := alice.Revoke(ctx, done.Certificate.CA, done.Certificate.Serial, "superseded")
	if err != nil || rv.Certificate.RevocationReason != "superseded" || rv.CRL == nil {
		t.Errorf("Revoke = %+v, %v", rv, err)
	}
	var e *ra.Error
	if _, err := alice.Revoke(ctx, done.Certificate.CA, done.Certificate.Serial, "superseded"); !errors.As(err, &e) || e.Status != http.StatusConflict || e.Problem.Param != "serial" {
		t.Errorf("second Revoke: %v", err)
	}
}

// TestManufacturerDevice checks that a registered manufacturer has a device
// certificate issued at once, and that an organisation not registered as a
// manufacturer is refused.
func TestManufacturerDevice(t *testing.T) {
	w := newWorld(t)
	maker, other := smki.MustParseEUI("90B3D51F3003000A"), smki.MustParseEUI("90B3D51F30010000")
	for eui, rec := range map[smki.EUI]ra.OrganisationRecord{
		maker: {Name: "Meters Ltd", Manufacturer: true},
		other: {Name: "Supplier A", Roles: []string{"supplier"}},
	} {
		if code, p := w.call(w.client, "PUT", "/v1/organisations/"+eui.String(), "carol", rec, nil); code != http.StatusCreated {
			t.Fatalf("register %s: %d %+v", eui, code, p)
		}
	}
	var cert ra.CertificateView
	body := ra.DeviceRequest{Batch: batch, CSR: deviceCSR(t, smki.MustParseEUI("F000000000000042"))}
	if code, p := w.call(w.httpClient(ptr(w.clientCert(maker))), "POST", "/v1/requests/device", "", body, &cert); code != http.StatusCreated ||
		cert.CA != batch || cert.EUI != "F000000000000042" {
		t.Fatalf("manufacturer: %d %+v %+v", code, p, cert)
	}
	if code, p := w.call(w.httpClient(ptr(w.clientCert(other))), "POST", "/v1/requests/device", "", body, nil); code != http.StatusForbidden {
		t.Errorf("a supplier submits a device request: %d %+v", code, p)
	}
}

// TestManufacturerNoSecondKey checks that a manufacturer cannot have a
// second key certified for a device that holds an unrevoked certificate of
// the same usage (the import's inventory check, on single requests too).
func TestManufacturerNoSecondKey(t *testing.T) {
	w := newWorld(t)
	maker := smki.MustParseEUI("90B3D51F3003000A")
	if code, p := w.call(w.client, "PUT", "/v1/organisations/"+maker.String(), "carol", ra.OrganisationRecord{Name: "Meters Ltd", Manufacturer: true}, nil); code != http.StatusCreated {
		t.Fatalf("register: %d %+v", code, p)
	}
	mc := w.httpClient(ptr(w.clientCert(maker)))
	eui := smki.MustParseEUI("F000000000000077")
	if code, p := w.call(mc, "POST", "/v1/requests/device", "", ra.DeviceRequest{Batch: batch, CSR: deviceCSR(t, eui)}, nil); code != http.StatusCreated {
		t.Fatalf("first: %d %+v", code, p)
	}
	before, _ := w.db.SMKI().CA(context.Background(), batch)
	if code, p := w.call(mc, "POST", "/v1/requests/device", "", ra.DeviceRequest{Batch: batch, CSR: deviceCSR(t, eui)}, nil); code != http.StatusConflict {
		t.Errorf("a second DS key for the same device: %d %+v", code, p)
	}
	if after, _ := w.db.SMKI().CA(context.Background(), batch); after.Issued != before.Issued {
		t.Errorf("the refusal used quota: %d -> %d", before.Issued, after.Issued)
	}
}
