package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/provision"
	"github.com/metertrust/metertrust/provision/provisiontest"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

var (
	manufacturerEUI = smki.MustParseEUI("90B3D51F300A0001")
	firstImportEUI  = smki.MustParseEUI("00DB123400000001")
)

// manufacturer is a manufacturer with its DS key and the organisation
// certificate the test CA issued for it.
type manufacturer struct {
	key  *ecdsa.PrivateKey
	cert *smki.Certificate
	rec  store.Certificate
}

func newManufacturer(t testing.TB, e *testEnv) *manufacturer {
	t.Helper()
	k := newKey(t)
	rec, err := e.a.IssueOrg(context.Background(), OrgRequest{CSR: orgCSR(t, k, smki.RoleOther, manufacturerEUI, "Meters Ltd", x509.KeyUsageDigitalSignature),
		Role: smki.RoleOther, EUI: manufacturerEUI, Name: "Meters Ltd", Usage: UsageDS})
	if err != nil {
		t.Fatalf("IssueOrg: %v", err)
	}
	c, err := smki.ParseCertificate(rec.DER)
	if err != nil {
		t.Fatal(err)
	}
	return &manufacturer{key: k, cert: c, rec: rec}
}

// signedFile is a provisioning file of n fresh devices from first, and
// its signature by m.
func (m *manufacturer) signedFile(t testing.TB, n int, first smki.EUI) ([]byte, []byte) {
	t.Helper()
	devs, err := provisiontest.Devices(n, first)
	if err != nil {
		t.Fatal(err)
	}
	data, err := provisiontest.File(manufacturerEUI, time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), devs)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := provision.Sign(rand.Reader, data, m.key)
	if err != nil {
		t.Fatal(err)
	}
	return data, sig
}

// importRequest opens a signed file as the import command does and turns
// it into a request for batch.
func importRequest(t testing.TB, e *testEnv, data, sig []byte, batch string, skipBad bool) (ImportRequest, error) {
	t.Helper()
	cert, err := e.a.SignerCertificate(context.Background(), nil, manufacturerEUI)
	if err != nil {
		return ImportRequest{}, err
	}
	f, err := provision.Open(data, sig, cert, provision.Options{SkipBad: skipBad})
	if err != nil {
		return ImportRequest{}, err
	}
	req := ImportRequest{Batch: batch, Manufacturer: f.Header.Manufacturer, FileSHA256: hex.EncodeToString(f.SHA256[:]), SkipBad: skipBad}
	for _, en := range f.Entries {
		req.Devices = append(req.Devices, ImportDevice{EUI: en.EUI, Line: en.Line, CSRs: en.CSRs})
	}
	return req, nil
}

// checkImported checks that every device of req holds one certificate per
// request, issued by batch, verifying under the batch CA's key, each with
// an OCSP response; it returns the number of certificates.
func checkImported(t testing.TB, e *testEnv, req ImportRequest, batch string) int {
	t.Helper()
	ctx := context.Background()
	info, err := e.a.Batch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	dca, err := smki.ParseCertificate(info.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range req.Devices {
		recs, err := e.db.SMKI().FindCertificates(ctx, store.CertQuery{EUI: d.EUI.String(), Kind: store.KindDevice})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(d.CSRs) {
			t.Fatalf("device %s: %d certificates, want %d", d.EUI, len(recs), len(d.CSRs))
		}
		for _, r := range recs {
			c, err := smki.ParseCertificateStrict(r.DER)
			if err != nil {
				t.Fatalf("device %s: %v", d.EUI, err)
			}
			if r.CA != batch || c.EUI != d.EUI || c.CheckSignatureFrom(dca) != nil {
				t.Fatalf("device %s: certificate %X of %s does not verify under %s", d.EUI, r.Serial, r.CA, batch)
			}
			want := d.CSRs[0]
			if len(d.CSRs) > 1 && usageOf(d.CSRs[1].KeyUsage) == Usage(r.Usage) {
				want = d.CSRs[1]
			}
			if !c.PublicKey.Equal(want.PublicKey) || c.KeyUsage != want.KeyUsage {
				t.Fatalf("device %s: certificate %X is not for the requested %s key", d.EUI, r.Serial, r.Usage)
			}
			if _, err := e.db.SMKI().OCSPResponse(ctx, r.CA, r.Serial); err != nil {
				t.Fatalf("device %s: OCSP response of %X: %v", d.EUI, r.Serial, err)
			}
			n++
		}
	}
	return n
}

// importDevices is the count of devices TestImportDevices imports: 1,000
// by default (about 3 s with linting), METERTRUST_IMPORT_DEVICES to
// change it (10,000: about 30 s on two cores).
func importDevices(t testing.TB) int {
	if s := os.Getenv("METERTRUST_IMPORT_DEVICES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return 1000
}

func TestImportDevices(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	m := newManufacturer(t, e)
	n := importDevices(t)
	if _, err := e.a.OpenBatch(ctx, "M1", int64(2*n)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	data, sig := m.signedFile(t, n, firstImportEUI)
	t.Logf("made a file of %d devices (%d bytes) in %s", n, len(data), time.Since(start).Round(time.Millisecond))
	start = time.Now()
	req, err := importRequest(t, e, data, sig, "M1", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checked the signature and read the file in %s", time.Since(start).Round(time.Millisecond))
	var progress, stored int
	req.Progress = func(done, total int) { progress = done }
	req.Stored = func(recs []store.Certificate) error { stored += len(recs); return nil }
	sum, err := e.a.ImportDevices(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("imported %d devices (%d certificates) in %s", sum.Devices, sum.Certificates, sum.Elapsed.Round(time.Millisecond))
	last := provisiontest.Add(firstImportEUI, uint64(n-1))
	if sum.Devices != n || sum.Certificates != 2*n || progress != n || stored != 2*n || len(sum.Skipped) != 0 ||
		sum.FirstEUI != firstImportEUI.String() || sum.LastEUI != last.String() || !sum.BatchClosed {
		t.Errorf("summary %+v, progress %d, stored %d", sum, progress, stored)
	}
	if got := checkImported(t, e, req, "M1"); got != 2*n {
		t.Errorf("%d certificates", got)
	}
	info, err := e.a.Batch(ctx, "M1")
	if err != nil || info.Issued != int64(2*n) || info.State != store.CAStateClosed || info.Key != "destroyed" {
		t.Errorf("batch after import: %+v, %v", info, err)
	}
	// One audited step naming the file.
	sha := sha256.Sum256(data)
	evs, err := e.db.AuditEvents(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, ev := range evs {
		if ev.Action == "ca.import.devices" {
			outcomes = append(outcomes, ev.Outcome)
			if ev.Details["file_sha256"] != hex.EncodeToString(sha[:]) || ev.Details["manufacturer"] != manufacturerEUI.String() || ev.Object != "M1" {
				t.Errorf("audit event %+v", ev)
			}
		}
	}
	if strings.Join(outcomes, ",") != store.OutcomeAttempt+","+store.OutcomeSuccess {
		t.Errorf("import audit outcomes %v", outcomes)
	}
}

// BenchmarkImportDevices10000 imports a file of 10,000 devices (20,000
// certificates, with linting) per iteration and checks every certificate:
// go test -run XXX -bench ImportDevices10000 -benchtime 1x ./ca
func BenchmarkImportDevices10000(b *testing.B) {
	const n = 10000
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		e := newTestEnv(b)
		e.init(b)
		ctx := context.Background()
		m := newManufacturer(b, e)
		if _, err := e.a.OpenBatch(ctx, "M1", 2*n); err != nil {
			b.Fatal(err)
		}
		data, sig := m.signedFile(b, n, firstImportEUI)
		b.StartTimer()
		start := time.Now()
		req, err := importRequest(b, e, data, sig, "M1", false)
		if err != nil {
			b.Fatal(err)
		}
		read := time.Since(start)
		sum, err := e.a.ImportDevices(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.Logf("verified and read %d devices in %s, issued %d certificates in %s (%.0f/s)", n, read.Round(time.Millisecond),
			sum.Certificates, sum.Elapsed.Round(time.Millisecond), float64(sum.Certificates)/sum.Elapsed.Seconds())
		if got := checkImported(b, e, req, "M1"); got != 2*n {
			b.Fatalf("%d certificates", got)
		}
		b.StartTimer()
	}
}

func TestImportRefusals(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	m := newManufacturer(t, e)
	if _, err := e.a.OpenBatch(ctx, "M2", 40); err != nil {
		t.Fatal(err)
	}
	data, sig := m.signedFile(t, 5, firstImportEUI)

	t.Run("tampered", func(t *testing.T) {
		bad := []byte(strings.Replace(string(data), "ESME", "GSME", 1))
		if _, err := importRequest(t, e, bad, sig, "M2", true); !errors.Is(err, provision.ErrSignature) {
			t.Fatalf("got %v, want ErrSignature", err)
		}
	})
	t.Run("duplicate in file", func(t *testing.T) {
		lines := strings.SplitAfter(string(data), "\n")
		lines[4] = lines[2]
		dup := []byte(strings.Join(lines, ""))
		dsig, err := provision.Sign(rand.Reader, dup, m.key)
		if err != nil {
			t.Fatal(err)
		}
		_, err = importRequest(t, e, dup, dsig, "M2", false)
		var ee *provision.EntryError
		if !errors.Is(err, provision.ErrDuplicate) || !errors.As(err, &ee) || ee.Line != 5 || ee.EUI != "00DB123400000002" ||
			!strings.Contains(err.Error(), "line 5, device 00DB123400000002") {
			t.Fatalf("got %v, want line 5 device 00DB123400000002 listed twice", err)
		}
	})
	t.Run("over quota", func(t *testing.T) {
		big, bsig := m.signedFile(t, 21, provisiontest.Add(firstImportEUI, 100))
		req, err := importRequest(t, e, big, bsig, "M2", false)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.a.ImportDevices(ctx, req)
		if !errors.Is(err, ErrRequest) || !strings.Contains(err.Error(), "needs 42 certificates (21 devices), batch M2 has 40 left") {
			t.Fatalf("got %v, want the quota refusal", err)
		}
		info, _ := e.a.Batch(ctx, "M2")
		all, _ := e.db.SMKI().FindCertificates(ctx, store.CertQuery{CA: "M2"})
		if info.Issued != 0 || len(all) != 0 {
			t.Fatalf("after a refused import: issued %d, %d certificates stored", info.Issued, len(all))
		}
	})
	t.Run("in inventory", func(t *testing.T) {
		// Device 3 already holds a KA certificate (issued one by one).
		d3 := provisiontest.Add(firstImportEUI, 2)
		if _, err := e.a.IssueDevice(ctx, "M2", deviceCSR(t, newKey(t), d3, x509.KeyUsageKeyAgreement)); err != nil {
			t.Fatal(err)
		}
		req, err := importRequest(t, e, data, sig, "M2", false)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.a.ImportDevices(ctx, req)
		if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "line 4: device 00DB123400000003 already holds a ka device certificate") {
			t.Fatalf("got %v, want device 3 refused", err)
		}
		if info, _ := e.a.Batch(ctx, "M2"); info.Issued != 1 {
			t.Fatalf("issued %d after a refused import", info.Issued)
		}
		// Skip-bad: device 3 skipped, the others issued.
		req.SkipBad = true
		sum, err := e.a.ImportDevices(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Devices != 4 || sum.Certificates != 8 || len(sum.Skipped) != 1 || sum.Skipped[0].Line != 4 || sum.Skipped[0].EUI != d3.String() {
			t.Fatalf("summary %+v", sum)
		}
		// Importing the same file again: every device is a duplicate.
		sum, err = e.a.ImportDevices(ctx, req)
		if err != nil || sum.Devices != 0 || len(sum.Skipped) != 5 {
			t.Fatalf("second import: %+v, %v", sum, err)
		}
		req.SkipBad = false
		if _, err := e.a.ImportDevices(ctx, req); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "line 2: device 00DB123400000001") {
			t.Fatalf("second import without skip-bad: %v", err)
		}
	})
	t.Run("bad request", func(t *testing.T) {
		c, err := smki.ParseCSR(deviceCSR(t, newKey(t), deviceEUI, x509.KeyUsageDigitalSignature))
		if err != nil {
			t.Fatal(err)
		}
		for name, devs := range map[string][]ImportDevice{
			"none":         nil,
			"other device": {{EUI: supplierEUI, Line: 2, CSRs: []*smki.CSR{c}}},
			"two DS":       {{EUI: deviceEUI, Line: 2, CSRs: []*smki.CSR{c, c}}},
			"no request":   {{EUI: deviceEUI, Line: 2}},
			"twice":        {{EUI: deviceEUI, Line: 2, CSRs: []*smki.CSR{c}}, {EUI: deviceEUI, Line: 3, CSRs: []*smki.CSR{c}}},
		} {
			if _, err := e.a.ImportDevices(ctx, ImportRequest{Batch: "M2", Devices: devs}); !errors.Is(err, ErrRequest) && !errors.Is(err, ErrCSR) {
				t.Errorf("%s: %v", name, err)
			}
		}
		if _, err := e.a.ImportDevices(ctx, ImportRequest{Batch: "oca", Devices: []ImportDevice{{EUI: deviceEUI, CSRs: []*smki.CSR{c}}}}); !errors.Is(err, ErrRequest) {
			t.Errorf("from the OCA: %v", err)
		}
	})
}

func TestSignerCertificate(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	m := newManufacturer(t, e)
	c, err := e.a.SignerCertificate(ctx, m.rec.DER, smki.EUI{})
	if err != nil || c.SerialNumber.Cmp(m.cert.SerialNumber) != 0 {
		t.Fatalf("by certificate: %v", err)
	}
	// A newer certificate is the one found by EUI.
	m2 := newManufacturer(t, e)
	e.clock.t = e.clock.t.Add(time.Second)
	m3 := newManufacturer(t, e)
	if c, err := e.a.SignerCertificate(ctx, nil, manufacturerEUI); err != nil || c.SerialNumber.Cmp(m3.cert.SerialNumber) != 0 {
		t.Fatalf("by EUI: got %v, want the newest, %X", err, m3.rec.Serial)
	}
	if _, err := e.a.Revoke(ctx, "oca", m3.rec.Serial, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.SignerCertificate(ctx, m3.rec.DER, smki.EUI{}); !errors.Is(err, ErrRequest) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked: %v", err)
	}
	if c, err := e.a.SignerCertificate(ctx, nil, manufacturerEUI); err != nil || c.SerialNumber.Cmp(m2.cert.SerialNumber) != 0 {
		t.Fatalf("by EUI after revocation: got %v, want %X", err, m2.rec.Serial)
	}
	if _, err := e.a.SignerCertificate(ctx, nil, supplierEUI); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown EUI: %v", err)
	}
	// A certificate of another SMKI does not validate here.
	other := newTestEnv(t)
	other.init(t)
	om := newManufacturer(t, other)
	if _, err := e.a.SignerCertificate(ctx, om.rec.DER, smki.EUI{}); !errors.Is(err, ErrRequest) {
		t.Fatalf("foreign certificate: %v", err)
	}
}
