package router

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/store"
)

// TestServiceServer checks the service's HTTP server, apiserver.Serve with
// the router's mutual TLS: a client certificate is still required and
// works over HTTP/1.1 and HTTP/2; the shared header limit holds (net/http
// answers a 1 MB request line or a 32 KiB header with 431 before the router
// sees it); within it the router's own limits answer problem+json and are
// audited.
func TestServiceServer(t *testing.T) {
	e := newE2E(t, storeBackends(t)["sqlite"](t)(t))
	base := e.supplier.client.Transport.(*http.Transport)

	t.Run("mutual TLS", func(t *testing.T) {
		for _, h2 := range []bool{false, true} {
			tr := base.Clone()
			tr.ForceAttemptHTTP2 = h2
			defer tr.CloseIdleConnections()
			res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(e.url + "/v1/responses")
			if err != nil {
				t.Fatalf("HTTP/2 %v: %v", h2, err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if want := map[bool]int{false: 1, true: 2}[h2]; res.StatusCode != http.StatusOK || res.ProtoMajor != want {
				t.Fatalf("%s over %s, want 200 over HTTP/%d", res.Status, res.Proto, want)
			}
		}
		anon := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: base.TLSClientConfig.RootCAs, ServerName: "localhost"}}
		defer anon.CloseIdleConnections()
		if res, err := (&http.Client{Transport: anon, Timeout: 10 * time.Second}).Get(e.url + "/v1/responses"); err == nil {
			res.Body.Close()
			t.Fatalf("a client without a certificate got %s", res.Status)
		}
	})

	// raw sends req on its own TLS connection and reads the answer.
	raw := func(t *testing.T, req string) *http.Response {
		t.Helper()
		conn, err := tls.Dial("tcp", strings.TrimPrefix(e.url, "https://"), base.TLSClientConfig.Clone())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		go io.WriteString(conn, req) // the server may stop reading part-way
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	for name, req := range map[string]string{
		"1 MB request line": "GET /v1/responses?after=" + strings.Repeat("1", 1<<20) + " HTTP/1.1\r\nHost: localhost\r\n\r\n",
		"32 KiB header":     "GET /v1/responses HTTP/1.1\r\nHost: localhost\r\nX-Padding: " + strings.Repeat("p", 32<<10) + "\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			if res := raw(t, req); res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("%s, want 431", res.Status)
			}
		})
	}
	t.Run("request target over the router's limit", func(t *testing.T) {
		ctx := context.Background()
		before, err := e.db.AuditEvents(ctx, 0, store.MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		res := raw(t, "GET /v1/commands/"+strings.Repeat("c", MaxRequestTarget)+" HTTP/1.1\r\nHost: localhost\r\n\r\n")
		if res.StatusCode != http.StatusRequestURITooLong || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%s %s, want 414 as problem+json", res.Status, res.Header.Get("Content-Type"))
		}
		var after int64
		if len(before) > 0 {
			after = before[len(before)-1].Seq
		}
		es, err := e.db.AuditEvents(ctx, after, store.MaxLimit)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 || es[0].Action != "router.api.refused" || es[0].Details["kind"] != "uri-too-long" ||
			es[0].Actor != e.supplier.eui.String()+"/IS" {
			t.Fatalf("audit entries %+v, want the refusal", es)
		}
	})
}
