package router

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAPILimits checks the API's answers to requests over its limits or
// off its routes: each a problem+json with its own status and code, each
// audited, none reaching a handler.
func TestAPILimits(t *testing.T) {
	e := newAPIEnv(t)
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name         string
		method, path string
		header       http.Header
		status       int
		code         string
		allow        string // the Allow header of a 405
	}{
		{"wrong method on a known path", "DELETE", "/v1/commands", nil, http.StatusMethodNotAllowed, "method-not-allowed", "OPTIONS, GET, POST"},
		{"POST to a GET route", "POST", "/v1/responses", nil, http.StatusMethodNotAllowed, "method-not-allowed", "OPTIONS, GET"},
		{"PUT to a command", "PUT", "/v1/commands/0123", nil, http.StatusMethodNotAllowed, "method-not-allowed", "OPTIONS, GET"},
		{"POST to the OpenAPI document", "POST", "/openapi.json", nil, http.StatusMethodNotAllowed, "method-not-allowed", "OPTIONS, GET"},
		{"unknown path", "GET", "/v2/commands", nil, http.StatusNotFound, "not-found", ""},
		{"1 MB request line", "GET", "/v1/responses?after=" + long(1<<20), nil, http.StatusRequestURITooLong, "uri-too-long", ""},
		{"request target one byte over the limit", "GET", "/v1/commands/" + long(MaxRequestTarget-len("/v1/commands/")+1), nil, http.StatusRequestURITooLong, "uri-too-long", ""},
		{"header fields over the limit", "GET", "/v1/responses", http.Header{"X-Padding": {long(MaxHeaderBytes)}}, http.StatusRequestHeaderFieldsTooLarge, "header-too-large", ""},
		{"many header fields", "GET", "/v1/responses", func() http.Header {
			h := http.Header{}
			for i := range 400 {
				h.Set("X-Pad-"+strings.Repeat("p", i%20)+string(rune('a'+i%26))+string(rune('a'+i/26)), "x")
			}
			return h
		}(), http.StatusRequestHeaderFieldsTooLarge, "header-too-large", ""},
		{"too many query parameters", "GET", "/v1/responses?a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9", nil, http.StatusBadRequest, "bad-request", ""},
		{"a long query parameter", "GET", "/v1/commands?target=AAAAAAAAAAAAAAAA&counter=" + strings.Repeat("1", MaxQueryParam), nil, http.StatusBadRequest, "bad-request", ""},
		{"a repeated query parameter", "GET", "/v1/commands?target=AAAAAAAAAAAAAAAA&counter=1&counter=2", nil, http.StatusBadRequest, "bad-request", ""},
		{"a bad escape in a query parameter", "GET", "/v1/responses?after%zz=1", nil, http.StatusBadRequest, "bad-request", ""},
		{"a semicolon in the query", "GET", "/v1/responses?after=1;limit=2", nil, http.StatusBadRequest, "bad-request", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq := e.auditSeq(t)
			req, err := http.NewRequest(tt.method, e.srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, vs := range tt.header {
				req.Header[k] = vs
			}
			res, err := e.clients["supplier"].Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.status || res.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%s, %s; want %d as problem+json", res.Status, res.Header.Get("Content-Type"), tt.status)
			}
			if got := res.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
			a := e.wantRefusalAudited(t, seq, e.supplier, "api.refused", tt.code)
			if d, _ := a.Details["detail"].(string); len(d) > maxRefusalDetail {
				t.Errorf("audit detail of %d bytes", len(d))
			}
		})
	}
	// Within the limits, a few short query parameters pass.
	r, err := e.do(t, "supplier", "GET", "/v1/responses?after=0&limit=10", "", nil)
	if err != nil || r.status != http.StatusOK {
		t.Fatalf("a request within the limits: %v %d %s", err, r.status, r.body)
	}
}

// TestAPIEndStreams checks that EndStreams ends an open event stream at
// once (the service calls it before its graceful shutdown).
func TestAPIEndStreams(t *testing.T) {
	e := newAPIEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/events", nil)
	res, err := e.clients["supplier"].Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("event stream: %v", err)
	}
	defer res.Body.Close()
	ended := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
		}
		close(ended)
	}()
	e.api.EndStreams()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("event stream still open 5s after EndStreams")
	}
}
