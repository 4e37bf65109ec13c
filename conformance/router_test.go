package conformance

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/client"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/inproc"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// slowCS02b delivers to the meters, the CS02b of a change of supplier a
// little late, as a meter over the WAN answers: the change stays open long
// enough for RTR-COS-03 to see it open.
type slowCS02b struct{ router.Transport }

func (t slowCS02b) Send(ctx context.Context, target smki.EUI, msg []byte) ([]byte, error) {
	if m, err := commands.Parse(msg); err == nil && m.Code == 0x0107 {
		select {
		case <-time.After(300 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return t.Transport.Send(ctx, target, msg)
}

// TestRouter runs the router cases against our router (in process), with a
// third party and an incoming supplier, then against broken routers in
// front of it: one that forwards unsigned critical commands fails
// RTR-SIG-01, one that drops the ownership check fails RTR-COS-04.
func TestRouter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	incoming := inproc.PartySpec{Name: "new-supplier", Organisation: "New Energy", EUI: smki.MustParseEUI("90B3D51F30040000"),
		Role: smki.RoleSupplier, UserRole: smki.UserImportSupplier, Usages: []ca.Usage{ca.UsageDS, ca.UsageKA, ca.UsagePPKA}}
	sys, err := inproc.Start(ctx, inproc.Config{Meters: 3, Parties: append(inproc.DefaultParties(), incoming),
		RouterAddr: "127.0.0.1:0", RepositoryAddr: "127.0.0.1:0",
		Transport: func(f *device.Fleet) (router.Transport, error) { return slowCS02b{inproc.NewFleetTransport(f)}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	sup, nsp, tpp := sys.Party(inproc.PartySupplier), sys.Party(incoming.Name), sys.Party(inproc.PartyThirdParty)
	// clientOf is p's client of the router at u (roots: the router's TLS
	// roots and server name).
	clientOf := func(p *inproc.Party, u string, roots *tls.Config) *client.Client {
		c, err := client.New(client.Config{Router: u, Repository: sys.RepositoryURL,
			TLS:    &tls.Config{RootCAs: roots.RootCAs, Certificates: []tls.Certificate{*p.TLS}, ServerName: roots.ServerName},
			Signer: p.DS, KeyAgreement: p.KA})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	newClient := func(u string, roots *tls.Config) *client.Client { return clientOf(sup, u, roots) }
	routerTLS := &tls.Config{RootCAs: sys.DCCKIRoots, ServerName: "localhost"}

	// The incoming supplier: the registration data name it for meters 0
	// and 1 (the operator's step before a change of supplier); its
	// certificates by serial, as the repository lists them.
	reg := router.NewRegistrar(sys.DB.Router(), nil)
	for _, m := range sys.Meters[:2] {
		if err := reg.RegisterSupply(ctx, "operator", m, nsp.EUI, time.Now().Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	certs, err := sys.DB.SMKI().FindCertificates(ctx, store.CertQuery{EUI: nsp.EUI.String(), Kind: store.KindOrg})
	if err != nil {
		t.Fatal(err)
	}
	serial := func(u ca.Usage) string {
		for _, c := range certs {
			if bytes.Equal(c.DER, nsp.Certificates[u]) {
				return fmt.Sprintf("%X", c.Serial)
			}
		}
		t.Fatalf("no %s certificate of the incoming supplier in the repository", u)
		return ""
	}
	ns := &IncomingSupplier{Client: clientOf(nsp, sys.RouterURL, routerTLS), DS: serial(ca.UsageDS), KA: serial(ca.UsageKA),
		PrepaymentKA: serial(ca.UsagePPKA)}
	readCIN := func(meter smki.EUI) func(context.Context) (string, error) {
		return func(context.Context) (string, error) {
			m, ok := sys.Fleet.Meter(meter)
			if !ok {
				return "", fmt.Errorf("no meter %s", meter)
			}
			cin, ok := m.CIN()
			if !ok {
				return "", fmt.Errorf("meter %s displays no CIN", meter)
			}
			return cin, nil
		}
	}

	t.Run("our router", func(t *testing.T) {
		rep, err := RunRouter(ctx, RouterConfig{Client: newClient(sys.RouterURL, routerTLS), Signer: sup.DS, Target: sys.Meters[0], Name: sys.RouterURL,
			ThirdParty: clientOf(tpp, sys.RouterURL, routerTLS), ReadCIN: readCIN(sys.Meters[0]), NewSupplier: ns})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_ = rep.WriteText(&buf)
		if rep.Failed() || rep.Count(StatusPass) != len(routerSteps)-1 || rep.Count(StatusSkip) != 1 {
			t.Errorf("run against our router:\n%s", buf.String())
		}
		// The case's consent did not outlive the run.
		live, err := clientOf(tpp, sys.RouterURL, routerTLS).Consents(ctx, client.ConsentQuery{Device: sys.Meters[0], Live: true})
		if err != nil || len(live) != 0 {
			t.Errorf("live consents after the run: %+v, %v", live, err)
		}
	})

	t.Run("router dropping the ownership check", func(t *testing.T) {
		target, _ := url.Parse(sys.RouterURL)
		proxy := httputil.NewSingleHostReverseProxy(target)
		proxy.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sys.DCCKIRoots, ServerName: "localhost",
			Certificates: []tls.Certificate{*sup.TLS}}}
		proxy.ModifyResponse = func(r *http.Response) error {
			if r.Request.Method != http.MethodPost || r.Request.URL.Path != "/v1/commands" || r.StatusCode != http.StatusForbidden {
				return nil
			}
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return err
			}
			r.Body.Close()
			r.Body = io.NopCloser(bytes.NewReader(body))
			if !bytes.Contains(body, []byte(`"not-owner"`)) {
				return nil
			}
			// Forwarded whoever owns the meter: the flaw under test.
			ok := []byte(`{"id":"forwarded-not-owner","status":"accepted"}`)
			r.StatusCode, r.Status = http.StatusAccepted, "202 Accepted"
			r.Header.Set("Content-Type", "application/json")
			r.Header.Del("Content-Length")
			r.ContentLength = int64(len(ok))
			r.Body = io.NopCloser(bytes.NewReader(ok))
			return nil
		}
		broken := httptest.NewTLSServer(proxy)
		defer broken.Close()
		roots := broken.Client().Transport.(*http.Transport).TLSClientConfig
		rep, err := RunRouter(ctx, RouterConfig{Client: newClient(broken.URL, &tls.Config{RootCAs: roots.RootCAs}), Signer: sup.DS,
			Target: sys.Meters[1], Name: broken.URL, NewSupplier: ns, Only: Select([]string{"RTR-COS"})})
		if err != nil {
			t.Fatal(err)
		}
		if ids := rep.FailedIDs(); len(ids) != 1 || ids[0] != "RTR-COS-04" || len(rep.Results) != 5 {
			var buf bytes.Buffer
			_ = rep.WriteText(&buf)
			t.Errorf("failed %v, want [RTR-COS-04]:\n%s", ids, buf.String())
		}
	})

	t.Run("router forwarding unsigned critical commands", func(t *testing.T) {
		target, _ := url.Parse(sys.RouterURL)
		proxy := httputil.NewSingleHostReverseProxy(target)
		proxy.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: sys.DCCKIRoots, ServerName: "localhost",
			Certificates: []tls.Certificate{*sup.TLS}}}
		broken := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && r.URL.Path == "/v1/commands" {
				body, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(body))
				if m, err := commands.Parse(body); err == nil && m.IsPreCommand() {
					// Forwarded as it is: the flaw under test.
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusAccepted)
					_, _ = io.WriteString(w, `{"id":"forwarded-unsigned","status":"accepted"}`)
					return
				}
			}
			proxy.ServeHTTP(w, r)
		}))
		defer broken.Close()
		roots := broken.Client().Transport.(*http.Transport).TLSClientConfig
		rep, err := RunRouter(ctx, RouterConfig{Client: newClient(broken.URL, &tls.Config{RootCAs: roots.RootCAs}), Signer: sup.DS,
			Target: sys.Meters[2], Name: broken.URL})
		if err != nil {
			t.Fatal(err)
		}
		if ids := rep.FailedIDs(); len(ids) != 1 || ids[0] != "RTR-SIG-01" {
			var buf bytes.Buffer
			_ = rep.WriteText(&buf)
			t.Errorf("failed %v, want [RTR-SIG-01]:\n%s", ids, buf.String())
		}
	})
	// Last: the supplier's DS certificate revoked, the second run.
	t.Run("our router, signer revoked", func(t *testing.T) {
		dsCert, err := sup.Certificate(ca.UsageDS)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sys.CA.Revoke(ctx, ca.NameOCA, dsCert.SerialNumber.Bytes(), 1); err != nil {
			t.Fatal(err)
		}
		rep, err := RunRouter(ctx, RouterConfig{Client: newClient(sys.RouterURL, routerTLS), Signer: sup.DS, Target: sys.Meters[2],
			SignerRevoked: true})
		if err != nil {
			t.Fatal(err)
		}
		if res, ok := rep.Result(revokedCase); len(rep.Results) != 1 || !ok || res.Status != StatusPass {
			t.Errorf("revoked run: %+v", rep.Results)
		}
	})
}
