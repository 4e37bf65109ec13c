package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
	"github.com/metertrust/metertrust/store/storetest"
)

// pkiWorld is what issuePKI made.
type pkiWorld struct {
	keyDir  string // the softkms key directory: its path must not show
	revoked string // the serial revoked, upper-case hex
	good    string // a serial not revoked
	devices []smki.EUI
}

// issuePKI runs the init ceremony with package ca on the fixture's store
// and clock (softkms keys in a temporary directory), opens batch E357
// with a quota of 3, issues two device certificates from it and revokes
// one (key compromise), closes E357 (its key destroyed, a delegated OCSP
// responder certified) and opens re-key batch R001.
func (f *fixture) issuePKI(t *testing.T) pkiWorld {
	t.Helper()
	ctx := context.Background()
	w := pkiWorld{keyDir: t.TempDir()}
	keys, err := custody.Open(ctx, "softkms", w.keyDir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	a, err := ca.New(ca.Config{Store: f.db.SMKI(), Keys: keys, Logger: slog.New(slog.DiscardHandler), Actor: "carol", Now: f.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Init(ctx, ca.InitRequest{RootName: "ZA", OCAName: "Z1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.OpenBatch(ctx, "E357", 3); err != nil {
		t.Fatal(err)
	}
	var serials []string
	for i := range 2 {
		eui := smki.MustParseEUI(fmt.Sprintf("000D6F000000%04X", i+1))
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csr, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindDevice, EUI: eui, KeyUsage: x509.KeyUsageKeyAgreement,
			HWType: smki.OIDHWTypeReferenceMeter}, key)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := a.IssueDevice(ctx, "E357", csr)
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, fmt.Sprintf("%X", rec.Serial))
		w.devices = append(w.devices, eui)
	}
	code, err := ca.ParseReason("keyCompromise")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Revoke(ctx, "E357", mustHex(t, serials[0]), code); err != nil {
		t.Fatal(err)
	}
	w.revoked, w.good = serials[0], serials[1]
	if err := a.CloseBatch(ctx, "E357", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.OpenBatchFor(ctx, "R001", 5, store.CAPurposeRekey); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RefreshOCSP(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	return w
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPKIPage(t *testing.T) {
	for _, backend := range storetest.Dialects() {
		t.Run(backend, func(t *testing.T) { pkiPage(t, backend) })
	}
}

func pkiPage(t *testing.T, backend string) {
	f := newFixture(t, backend)
	b := f.browser()
	if code, _, h := b.get("/pki"); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/login") {
		t.Fatalf("/pki without a session: %d %q", code, h.Get("Location"))
	}
	if code, _, _ := b.login("vera", password); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}

	// Before the init ceremony: an empty page, no error.
	code, body, _ := b.get("/pki")
	if code != http.StatusOK || !strings.Contains(body, "No CA yet") || !strings.Contains(body, "No certificate issued yet") {
		t.Fatalf("empty PKI page: %d\n%s", code, body)
	}

	w := f.issuePKI(t)
	code, body, _ = b.get("/pki")
	if code != http.StatusOK {
		t.Fatalf("/pki: %d\n%s", code, body)
	}
	checkNoInline(t, "/pki", body)
	section := func(id string) string {
		t.Helper()
		i := strings.Index(body, `id="`+id+`"`)
		if i < 0 {
			t.Fatalf("no #%s in\n%s", id, body)
		}
		j := strings.Index(body[i:], "</table>")
		return body[i : i+j]
	}
	row := func(sec, attr string) string {
		t.Helper()
		s := section(sec)
		i := strings.Index(s, attr)
		if i < 0 {
			t.Fatalf("no %s in #%s:\n%s", attr, sec, s)
		}
		j := strings.Index(s[i:], "</tr>")
		return s[i : i+j]
	}
	// The CAs with kind, subject, validity and key.
	for _, name := range []string{"root", "oca", "dccki-root", "dccki-tls"} {
		r := row("cas", `data-ca="`+name+`"`)
		for _, want := range []string{"present", "CN=", "CRL #"} {
			if !strings.Contains(r, want) {
				t.Errorf("CA %s row lacks %q: %s", name, want, r)
			}
		}
	}
	// The closed batch: 2 of 3 issued, key destroyed with the audit
	// entry's time and link, its delegated responder; the re-key batch
	// open with its key.
	e357 := row("batches", `data-batch="E357"`)
	for _, want := range []string{"new devices", "closed", `value="2"`, "2 of 3", "destroyed", "audit #", "object=E357", "delegated responder"} {
		if !strings.Contains(e357, want) {
			t.Errorf("E357 row lacks %q: %s", want, e357)
		}
	}
	es, err := f.db.SearchAudit(t.Context(), store.AuditQuery{Action: actionKeyDestroy, Object: "E357", Limit: 5})
	if err != nil || len(es) == 0 || es[0].Outcome != store.OutcomeSuccess {
		t.Fatalf("key destruction audit: %v %v", es, err)
	}
	if want := fmt.Sprintf("audit #%d", es[0].Seq); !strings.Contains(e357, want) {
		t.Errorf("E357 row lacks %q: %s", want, e357)
	}
	r001 := row("batches", `data-batch="R001"`)
	for _, want := range []string{"re-key", "open", "present", "0 of 5"} {
		if !strings.Contains(r001, want) {
			t.Errorf("R001 row lacks %q: %s", want, r001)
		}
	}
	// Issuance and revocation, with serial, EUI and reason.
	issued := section("issued")
	for _, want := range []string{w.revoked, w.good, w.devices[0].String(), w.devices[1].String(), "revoked (keyCompromise)"} {
		if !strings.Contains(issued, want) {
			t.Errorf("latest issuance lacks %q", want)
		}
	}
	revoked := section("revoked")
	if !strings.Contains(revoked, w.revoked) || !strings.Contains(revoked, "keyCompromise") || !strings.Contains(revoked, w.devices[0].String()) ||
		strings.Contains(revoked, w.good) {
		t.Errorf("latest revocations:\n%s", revoked)
	}
	// OCSP: every certificate has a pre-signed response, none stale.
	ocsp := section("ocsp")
	if !strings.Contains(ocsp, `id="ocsp-stale">0<`) || strings.Contains(ocsp, `id="ocsp-total">0<`) {
		t.Errorf("OCSP state:\n%s", ocsp)
	}
	// Never a key URI nor where the keys are.
	for _, secret := range []string{w.keyDir, "softkms", "key_uri", "file:"} {
		if strings.Contains(body, secret) {
			t.Errorf("the PKI page shows %q", secret)
		}
	}

	// Eight days on, the CRLs (valid seven days) and the OCSP responses
	// (one day) are stale, and the page says so.
	f.clock.add(8 * 24 * time.Hour)
	if code, _, _ := b.login("vera", password); code != http.StatusSeeOther { // the session has ended meanwhile
		t.Fatalf("login: %d", code)
	}
	_, body, _ = b.get("/pki")
	if !strings.Contains(row("cas", `data-ca="oca"`), "stale") {
		t.Errorf("a CRL past its nextUpdate is not shown stale:\n%s", section("cas"))
	}
	if strings.Contains(row("batches", `data-batch="E357"`), "stale") {
		t.Error("the final CRL of a closed batch (nextUpdate 9999) is shown stale")
	}
	if strings.Contains(section("ocsp"), `id="ocsp-stale">0<`) {
		t.Errorf("stale OCSP responses not counted:\n%s", section("ocsp"))
	}
	states, err := f.db.SMKI().OCSPStates(t.Context(), f.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	var total, stale int64
	for _, s := range states {
		total, stale = total+s.Responses, stale+s.Stale
	}
	if total == 0 || stale == 0 || !strings.Contains(body, fmt.Sprintf(`id="ocsp-total">%d<`, total)) ||
		!strings.Contains(body, fmt.Sprintf(`id="ocsp-stale">%d<`, stale)) {
		t.Errorf("OCSP totals %d/%d not on the page:\n%s", total, stale, section("ocsp"))
	}
}
