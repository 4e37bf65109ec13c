package ra_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/provision"
	"github.com/metertrust/metertrust/provision/provisiontest"
	"github.com/metertrust/metertrust/ra"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// TestImport sends a manufacturer's signed provisioning file to the API:
// every certificate is issued under the batch; the same file again is
// refused (the devices are in the inventory), and so is a tampered one, for
// its signature.
func TestImport(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	maker := smki.MustParseEUI("90B3D51F3003000A")
	if code, p := w.call(w.client, "PUT", "/v1/organisations/"+maker.String(), "carol",
		ra.OrganisationRecord{Name: "Meters Ltd", Roles: []string{"other"}, Manufacturer: true}, nil); code != http.StatusCreated {
		t.Fatalf("register: %d %+v", code, p)
	}
	key, err := custody.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindOrganisation, CommonName: "Meters Ltd",
		Role: smki.RoleOther, EUI: maker, KeyUsage: x509.KeyUsageDigitalSignature}, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.auth.IssueOrg(ctx, ca.OrgRequest{CSR: csr, Role: smki.RoleOther, EUI: maker, Usage: ca.UsageDS}); err != nil {
		t.Fatal(err)
	}
	devs, err := provisiontest.Devices(4, smki.MustParseEUI("F000000000000100"))
	if err != nil {
		t.Fatal(err)
	}
	file, err := provisiontest.File(maker, time.Now(), devs)
	if err != nil {
		t.Fatal(err)
	}
	sigText, err := provision.Sign(rand.Reader, file, key) // the .sig file: base64
	if err != nil {
		t.Fatal(err)
	}
	sig, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(sigText)))
	if err != nil {
		t.Fatal(err)
	}
	makerClient := w.httpClient(ptr(w.clientCert(maker)))
	post := func(body, sig []byte) (int, []byte) {
		req, _ := http.NewRequest("POST", w.url+"/v1/imports?batch="+batch, bytes.NewReader(body))
		req.Header.Set("Content-Type", ra.MediaProvisioning)
		req.Header.Set(ra.SignatureHeader, base64.StdEncoding.EncodeToString(sig))
		resp, err := makerClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes()
	}
	code, body := post(file, sig)
	var v ra.ImportView
	if code != http.StatusCreated || json.Unmarshal(body, &v) != nil || v.Devices != 4 || v.Certificates != 8 || v.Manufacturer != maker.String() {
		t.Fatalf("import: %d %s", code, body)
	}
	dca, err := w.db.SMKI().CA(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	parent, _ := smki.ParseCertificate(dca.CertDER)
	certs, err := w.db.SMKI().FindCertificates(ctx, storeQuery(batch))
	if err != nil || len(certs) != 8 {
		t.Fatalf("the batch holds %d certificates, %v", len(certs), err)
	}
	for _, c := range certs {
		sc, err := smki.ParseCertificate(c.DER)
		if err != nil || sc.CheckSignatureFrom(parent) != nil {
			t.Errorf("certificate %X does not verify: %v", c.Serial, err)
		}
	}
	var p problem.Details
	if code, body := post(file, sig); code != http.StatusConflict || json.Unmarshal(body, &p) != nil {
		t.Errorf("the same file again: %d %s", code, body)
	}
	tampered := bytes.Replace(file, []byte(`"ESME"`), []byte(`"GSME"`), 1)
	if code, body := post(tampered, sig); code != http.StatusBadRequest || json.Unmarshal(body, &p) != nil || p.Param != ra.SignatureHeader {
		t.Errorf("a tampered file: %d %s", code, body)
	}
	// Through the client, as "ca request import" sends it.
	cl, err := ra.NewClient(w.url, &tls.Config{RootCAs: w.roots, Certificates: []tls.Certificate{w.clientCert(maker)}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Import(ctx, batch, file, sig, false); !ra.IsStatus(err, http.StatusConflict) {
		t.Errorf("the same file again through the client: %v", err)
	}
	if code, _ := w.call(w.client, "POST", "/v1/imports?batch="+batch, "", "{}", nil); code != http.StatusForbidden {
		t.Errorf("a non-manufacturer imports: %d", code)
	}
}

func storeQuery(ca string) store.CertQuery {
	return store.CertQuery{CA: ca, Kind: store.KindDevice, IncludeRevoked: true, Limit: 100}
}
