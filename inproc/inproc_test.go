package inproc

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// readRegister runs a register read of meter as the supplier over the
// router's mutual-TLS API and returns the reading, decrypted with the
// supplier's KA key.
func readRegister(t *testing.T, s *System, meter smki.EUI) dlms.ImportEnergy {
	t.Helper()
	sup := s.Party(PartySupplier)
	c, err := s.Client(sup)
	if err != nil {
		t.Fatal(err)
	}
	post := func(path, ctype string, body []byte, out any) {
		t.Helper()
		res, err := c.Post(s.RouterURL+path, ctype, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 300 {
			t.Fatalf("POST %s: %s: %s", path, res.Status, b)
		}
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
	var pc router.PreCommand
	post("/v1/service-requests", "application/json", []byte(`{"serviceReference":"4.1.1","target":"`+meter.String()+`"}`), &pc)
	var rc router.Receipt
	post("/v1/commands", "text/plain", []byte(pc.Message), &rc)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		res, err := c.Get(s.RouterURL + "/v1/commands/" + rc.ID)
		if err != nil {
			t.Fatal(err)
		}
		var cmd struct {
			State    string          `json:"state"`
			Response router.HexBytes `json:"response"`
		}
		err = json.NewDecoder(res.Body).Decode(&cmd)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if cmd.State == "responded" {
			m, err := commands.Parse(cmd.Response)
			if err != nil {
				t.Fatal(err)
			}
			meterKey, _ := s.Fleet.Meter(meter)
			plain, err := commands.OpenPayload(context.Background(), sup.KA, meterKey.AgreementPublicKey(), m)
			if err != nil || len(plain) != 1 {
				t.Fatalf("decrypting the reading: %d blocks, %v", len(plain), err)
			}
			d, err := dlms.ParseData(plain[0])
			if err != nil {
				t.Fatal(err)
			}
			r, err := dlms.ReadImportEnergy(d)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("command %s not answered in 20s", rc.ID)
	return dlms.ImportEnergy{}
}

// TestStartReuse creates a system in a data directory, uses it, closes it,
// and starts it again from the same directory: nothing is created twice and
// the same parties, meters and operator credential serve.
func TestStartReuse(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	cfg := Config{DataDir: dir, Meters: 4, RouterAddr: "127.0.0.1:0", OperatorAddr: "127.0.0.1:0", RepositoryAddr: "127.0.0.1:0",
		Thresholds: []anomaly.Threshold{{Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: 5, Window: time.Hour}}}
	s, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Reused || s.Temporary || len(s.Ceremony) != 4 || len(s.Meters) != 4 || s.Fleet.Len() != 4 || s.Bulk.Certificates != 8 {
		t.Errorf("first start: reused %v, temporary %v, %d CAs, %d meters, %d in fleet, %d device certificates",
			s.Reused, s.Temporary, len(s.Ceremony), len(s.Meters), s.Fleet.Len(), s.Bulk.Certificates)
	}
	if s.ACB == nil || s.ACB.EUI != EUIAccessControlBroker || s.Party(PartySupplier) == nil || s.Party("nobody") != nil {
		t.Fatalf("parties %+v", s.PartyList)
	}
	first := readRegister(t, s, s.Meters[0])
	token, meters := s.OperatorToken, s.Meters
	routerPEM, err := os.ReadFile(s.RouterCertFile)
	if err != nil {
		t.Fatal(err)
	}
	supplierDS := s.Party(PartySupplier).Certificates[ca.UsageDS]

	// The files a person needs, with private ones unreadable by others.
	for path, private := range map[string]bool{
		s.DCCKIRootFile: false, s.OperatorTokenFile: true, s.CredentialsFile: true, s.RouterCertFile: false, s.RouterKeyFile: true,
		s.Party(PartySupplier).TLSKeyFile: true, s.Party(PartySupplier).TLSCertFile: false,
		filepath.Join(dir, "parties", EUISupplier.String()+"-ds.key"):    true,
		filepath.Join(dir, "parties", EUISupplier.String()+"-pp-ka.pem"): false,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if private && fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want no access for others", path, fi.Mode().Perm())
		}
	}
	if creds, _ := os.ReadFile(s.CredentialsFile); bytes.Contains(creds, []byte(token)) {
		t.Error("the credentials file holds the token itself")
	}

	// The operator API and the repository answer.
	req, _ := http.NewRequest("GET", s.OperatorURL+"/v1/thresholds", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Errorf("operator thresholds: %v %v", res, err)
	} else {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !strings.Contains(string(b), `"7.2"`) {
			t.Errorf("thresholds %s lack the configured one", b)
		}
	}
	if res, err := http.Get(s.RepositoryURL + "/v1/certificates?" + url.Values{"eui": {s.Meters[1].String()}}.Encode()); err != nil || res.StatusCode != 200 {
		t.Errorf("repository: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	var guide bytes.Buffer
	if err := s.WriteGuide(&guide); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{s.RouterURL, s.OperatorURL, s.RepositoryURL, s.DCCKIRootFile, s.OperatorTokenFile, "curl --cacert"} {
		if !strings.Contains(guide.String(), want) {
			t.Errorf("guide lacks %q:\n%s", want, guide.String())
		}
	}
	if strings.Contains(guide.String(), token) || strings.Contains(guide.String(), "PRIVATE KEY") {
		t.Error("the guide shows a secret")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("Close removed a data directory it was given: %v", err)
	}

	// Again, from the same directory.
	cfg.Meters = 99 // ignored on reuse
	s2, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if !s2.Reused || len(s2.Ceremony) != 0 || len(s2.Meters) != len(meters) || s2.OperatorToken != token ||
		!bytes.Equal(s2.Party(PartySupplier).Certificates[ca.UsageDS], supplierDS) {
		t.Fatalf("reuse: reused %v, %d CAs created, %d meters, same token %v", s2.Reused, len(s2.Ceremony), len(s2.Meters), s2.OperatorToken == token)
	}
	if again, _ := os.ReadFile(s2.RouterCertFile); !bytes.Equal(again, routerPEM) {
		t.Error("a restart issued a new router server certificate instead of keeping the valid one")
	}
	second := readRegister(t, s2, meters[0])
	if second.ActiveImport.Scaled().Cmp(first.ActiveImport.Scaled()) < 0 {
		t.Errorf("register went back from %s to %s Wh", first.ActiveImport.Scaled(), second.ActiveImport.Scaled())
	}
	if _, err := s2.DB.VerifyAudit(ctx); err != nil {
		t.Errorf("audit chain: %v", err)
	}
}

// TestStartTemporary checks the zero-listener system: the forwarder still
// runs for in-process submissions, and Close removes the temporary
// directory.
func TestStartTemporary(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx, Config{Meters: 2})
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Dir
	if !s.Temporary || s.RouterURL != "" || s.OperatorURL != "" {
		t.Errorf("temporary %v, router %q, operator %q", s.Temporary, s.RouterURL, s.OperatorURL)
	}
	sup := s.Party(PartySupplier)
	caller := router.Caller{EUI: sup.EUI, Role: sup.UserRole}
	pc, err := s.Router.Router.BuildServiceRequest(ctx, caller, router.ServiceRequestInput{Ref: "4.1.1", Target: s.Meters[1]})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString(pc.Message)
	if _, err := s.Router.Router.Submit(ctx, caller, raw); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		m, _ := s.Fleet.Meter(s.Meters[1])
		if m.Stats().Accepted == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the in-process submission never reached the meter")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary directory left behind: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestStartRefuses(t *testing.T) {
	acbOnly := []PartySpec{DefaultParties()[0]}
	dup := append(DefaultParties(), DefaultParties()[2])
	noACB := DefaultParties()[1:]
	badName := []PartySpec{DefaultParties()[0], {Name: "Bad Name", EUI: EUISupplier, Role: smki.RoleSupplier, Usages: []ca.Usage{ca.UsageDS}}}
	noUsage := []PartySpec{DefaultParties()[0], {Name: "x", EUI: EUISupplier, Role: smki.RoleSupplier}}
	badUsage := []PartySpec{DefaultParties()[0], {Name: "x", EUI: EUISupplier, Role: smki.RoleSupplier, Usages: []ca.Usage{"sign"}}}
	acbNoKA := []PartySpec{{Name: "acb", EUI: EUIAccessControlBroker, Role: smki.RoleAccessControlBroker, Usages: []ca.Usage{ca.UsageDS}}}
	sameEUI := []PartySpec{DefaultParties()[0], {Name: "x", EUI: EUIAccessControlBroker, Role: smki.RoleSupplier, Usages: []ca.Usage{ca.UsageDS}}}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"negative meters", Config{Meters: -1, Parties: acbOnly}, "Meters"},
		{"too many meters", Config{Meters: MaxMeters + 1, Parties: acbOnly}, "Meters"},
		{"party twice", Config{Parties: dup}, "named twice"},
		{"no broker", Config{Parties: noACB}, "access control broker"},
		{"bad name", Config{Parties: badName}, "Bad Name"},
		{"no usages", Config{Parties: noUsage}, "no key usages"},
		{"bad usage", Config{Parties: badUsage}, "sign"},
		{"broker without KA", Config{Parties: acbNoKA}, "KA key"},
		{"EUI twice", Config{Parties: sameEUI}, "used twice"},
		{"zero EUI", Config{Parties: []PartySpec{DefaultParties()[0], {Name: "x", Usages: []ca.Usage{ca.UsageDS}}}}, "no EUI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.DataDir = t.TempDir()
			_, err := Start(context.Background(), tc.cfg)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start: %v, want ErrConfig naming %q", err, tc.want)
			}
		})
	}
}

func TestStartBadManifest(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"not JSON", "{"},
		{"unknown field", `{"version":1,"extra":1}`},
		{"wrong version", `{"version":2}`},
		{"no broker key", `{"version":1,"batch":"B","parties":[{"name":"acb","eui":"90B3D51F30000004","role":4,"usages":["ka"]}]}`},
		{"no broker", `{"version":1,"acbKey":"softkms:path=keys/x.key","batch":"B","parties":[]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, manifestFile), []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Start(context.Background(), Config{DataDir: dir}); !errors.Is(err, ErrManifest) {
				t.Errorf("Start: %v, want ErrManifest", err)
			}
		})
	}
}

// TestStartPostgres assembles the system on PostgreSQL (a fresh schema of
// METERTRUST_TEST_PG), failing instead of skipping when CI is set.
func TestStartPostgres(t *testing.T) {
	dsn := os.Getenv("METERTRUST_TEST_PG")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("METERTRUST_TEST_PG is unset in CI")
		}
		t.Skip("METERTRUST_TEST_PG is unset")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to METERTRUST_TEST_PG: %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "inproc_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	dir := t.TempDir()
	s, err := Start(ctx, Config{DataDir: dir, StoreDSN: u.String(), Meters: 2, RouterAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	readRegister(t, s, s.Meters[0])
	if _, err := s.DB.VerifyAudit(ctx); err != nil {
		t.Errorf("audit chain: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reusing the directory needs the DSN again: without it, the embedded
	// store would be empty.
	if _, err := Start(ctx, Config{DataDir: dir}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "external store") {
		t.Errorf("reuse without the DSN: %v, want ErrConfig naming the external store", err)
	}
	s, err = Start(ctx, Config{DataDir: dir, StoreDSN: u.String(), RouterAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Reused {
		t.Error("not reused")
	}
	readRegister(t, s, s.Meters[1])
}

// recorder is a router.Transport that records what it is sent and
// acknowledges it without answering, as a benchmark's transport does.
type recorder struct {
	mu   sync.Mutex
	sent map[smki.EUI]int
}

func (r *recorder) Send(_ context.Context, target smki.EUI, _ []byte) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent[target]++
	return nil, nil
}

func (r *recorder) count(eui smki.EUI) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sent[eui]
}

// TestStartGeneratedMetersTransport is what a benchmark needs: generated
// meters (no certificates) and its own transport in place of the fleet.
func TestStartGeneratedMetersTransport(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{sent: map[smki.EUI]int{}}
	first := smki.MustParseEUI("0012A3FFFE000001")
	reg := prometheus.NewRegistry()
	counting := &countingKA{}
	s, err := Start(ctx, Config{Meters: 50, GenerateMeters: true, FirstMeter: first, Registry: reg,
		WrapACBKey: func(k router.KeyAgreement) router.KeyAgreement { counting.KeyAgreement = k; return counting },
		Transport: func(f *device.Fleet) (router.Transport, error) {
			if f.Len() != 50 {
				t.Errorf("transport made with a fleet of %d meters", f.Len())
			}
			return rec, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Meters) != 50 || s.Meters[0] != first || s.Bulk.Certificates != 0 {
		t.Fatalf("%d meters from %v, %d certificates", len(s.Meters), s.Meters, s.Bulk.Certificates)
	}
	if n, _ := s.DB.SMKI().FindCertificates(ctx, store.CertQuery{Kind: store.KindDevice}); len(n) != 0 {
		t.Errorf("%d device certificates for generated meters", len(n))
	}
	sup := s.Party(PartySupplier)
	caller := router.Caller{EUI: sup.EUI, Role: sup.UserRole}
	target := s.Meters[49]
	pc, err := s.Router.Router.BuildServiceRequest(ctx, caller, router.ServiceRequestInput{Ref: "7.2", Target: target})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString(pc.Message)
	m, err := commands.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := commands.SignPreCommand(rand.Reader, sup.DS, m); err != nil {
		t.Fatal(err)
	}
	signed, _ := m.Marshal()
	if _, err := s.Router.Router.Submit(ctx, caller, signed); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for rec.count(target) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the command never reached the transport")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if meter, _ := s.Fleet.Meter(target); meter.Stats().Accepted != 0 {
		t.Error("the fleet executed a command sent to another transport")
	}
	if counting.n.Load() == 0 {
		t.Error("the wrapped ACB key was never used for the MAC")
	}
	if mfs, err := reg.Gather(); err != nil || len(mfs) == 0 {
		t.Errorf("the given registry holds no router metric: %v", err)
	}
}

// countingKA counts the key agreements of the key it wraps.
type countingKA struct {
	router.KeyAgreement
	n atomic.Int64
}

func (c *countingKA) ECDH(ctx context.Context, peer *ecdh.PublicKey) ([]byte, error) {
	c.n.Add(1)
	return c.KeyAgreement.ECDH(ctx, peer)
}
