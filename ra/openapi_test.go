package ra

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/metertrust/metertrust/apiserver/apiservertest"
	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// stubDeps stands in for the Authority, Store and Auditor: New refuses nil
// dependencies, and listing the routes calls none of them.
type stubDeps struct{}

func (stubDeps) Revoke(context.Context, string, []byte, int) (store.Certificate, error) {
	return store.Certificate{}, store.ErrNotFound
}
func (stubDeps) CRL(context.Context, string) (store.CRL, error) {
	return store.CRL{}, store.ErrNotFound
}
func (stubDeps) ImportDevices(context.Context, ca.ImportRequest) (ca.ImportSummary, error) {
	return ca.ImportSummary{}, nil
}
func (stubDeps) SignerCertificate(context.Context, []byte, smki.EUI) (*smki.Certificate, error) {
	return nil, nil
}
func (stubDeps) CheckNewDevice(context.Context, []byte) error { return nil }
func (stubDeps) IssueRekey(context.Context, string, smki.EUI, []byte) (store.Certificate, error) {
	return store.Certificate{}, nil
}
func (stubDeps) FindCertificates(context.Context, store.CertQuery) ([]store.Certificate, error) {
	return nil, nil
}
func (stubDeps) IssueDevice(context.Context, string, []byte) (store.Certificate, error) {
	return store.Certificate{}, store.ErrNotFound
}
func (stubDeps) IssueOrg(context.Context, ca.OrgRequest) (store.Certificate, error) {
	return store.Certificate{}, store.ErrNotFound
}
func (stubDeps) CA(context.Context, string) (store.CA, error) { return store.CA{}, store.ErrNotFound }
func (stubDeps) Certificate(context.Context, string, []byte) (store.Certificate, error) {
	return store.Certificate{}, store.ErrNotFound
}
func (stubDeps) AppendAudit(_ context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	return e, nil
}

// TestOpenAPI checks docs/api/ca.yaml against the server: it parses as
// OpenAPI 3.1, documents exactly the routes the server registers, gives
// every operation a unique operationId and responses (including the
// refusals of an authenticated route), every $ref resolves, and lists the
// problem types of exactly its kinds.
func TestOpenAPI(t *testing.T) {
	srv, err := New(Deps{Authority: stubDeps{}, Store: stubDeps{}, Registry: (*store.SMKIStore)(nil), Audit: stubDeps{},
		Credentials: &operator.Credentials{}, ClientIssuer: ca.NameDCCKITLS})
	if err != nil {
		t.Fatal(err)
	}
	doc := filepath.Join("..", "docs", "api", "ca.yaml")
	routes := srv.Routes()
	apiservertest.CheckOpenAPI(t, doc, routes, "401", "403")
	apiservertest.CheckProblemTypes(t, doc, kinds)
	if len(routes) != 21 {
		t.Errorf("%d routes served, want 21", len(routes))
	}
}
