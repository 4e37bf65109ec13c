package conformance

import (
	"bytes"
	"context"
	"crypto/tls"
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
	"github.com/metertrust/metertrust/inproc"
)

// TestRouter runs the router cases against our router (in process), then
// against a broken router in front of it that forwards unsigned critical
// commands, which fails RTR-SIG-01.
func TestRouter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sys, err := inproc.Start(ctx, inproc.Config{Meters: 1, RouterAddr: "127.0.0.1:0", RepositoryAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	sup := sys.Party(inproc.PartySupplier)
	newClient := func(u string, roots *tls.Config) *client.Client {
		c, err := client.New(client.Config{Router: u, TLS: &tls.Config{RootCAs: roots.RootCAs, Certificates: []tls.Certificate{*sup.TLS},
			ServerName: roots.ServerName}, Signer: sup.DS})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	routerTLS := &tls.Config{RootCAs: sys.DCCKIRoots, ServerName: "localhost"}

	t.Run("our router", func(t *testing.T) {
		rep, err := RunRouter(ctx, RouterConfig{Client: newClient(sys.RouterURL, routerTLS), Signer: sup.DS, Target: sys.Meters[0], Name: sys.RouterURL})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_ = rep.WriteText(&buf)
		if rep.Failed() || rep.Count(StatusPass) != len(routerSteps)-1 || rep.Count(StatusSkip) != 1 {
			t.Errorf("run against our router:\n%s", buf.String())
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
			Target: sys.Meters[0], Name: broken.URL})
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
		rep, err := RunRouter(ctx, RouterConfig{Client: newClient(sys.RouterURL, routerTLS), Signer: sup.DS, Target: sys.Meters[0],
			SignerRevoked: true})
		if err != nil {
			t.Fatal(err)
		}
		if res, ok := rep.Result(revokedCase); len(rep.Results) != 1 || !ok || res.Status != StatusPass {
			t.Errorf("revoked run: %+v", rep.Results)
		}
	})
}
