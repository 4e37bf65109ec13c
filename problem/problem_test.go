package problem

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

var (
	errTestInternal = NewKind("svc", "internal error", Internal)
	errTestBad      = NewKind("svc", "bad request", BadRequest)
	errTestAuth     = NewKind("svc", "credential missing", Unauthenticated)
	errTestNotFound = NewKind("svc", "not found", NotFound)
	errTestTooLarge = NewKind("svc", "too large", TooLarge)
	errTestCustom   = NewKind("svc", "custom", Type{Status: http.StatusBadGateway, Name: "custom", Title: "Custom"})
	errTestCoded    = NewCodedKind("svc", "replay", "counter not greater", Conflict)
	errCause        = errors.New("cause")
)

func testHandler() *Handler {
	return &Handler{
		Kinds: []*Kind{errTestInternal, errTestBad, errTestAuth, errTestNotFound, errTestTooLarge, errTestCustom, errTestCoded},
		Realm: "test",
		Body: func(d Details, e *Error) any {
			x, _ := e.Extension.(string)
			return struct {
				Details
				X string `json:"x,omitempty"`
			}{d, x}
		},
	}
}

// TestError checks the error text, and that errors.Is matches the kind and
// the cause but no other kind.
func TestError(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  *Error
		text string
	}{
		{"detail", New(errTestBad, "", "no %s", "body"), "svc: no body"},
		{"param", New(errTestBad, "limit", "not a number"), "svc: limit: not a number"},
		{"cause", Wrap(errTestInternal, errCause, "p", "failed"), "svc: p: failed: cause"},
		{"no kind", &Error{Detail: "d"}, "problem: d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.text {
				t.Errorf("Error() = %q, want %q", got, tc.text)
			}
			if tc.err.Kind != nil && !errors.Is(tc.err, tc.err.Kind) {
				t.Errorf("errors.Is(err, its kind) = false")
			}
			if errors.Is(tc.err, errTestNotFound) {
				t.Errorf("errors.Is(err, another kind) = true")
			}
			if got := errors.Is(fmt.Errorf("wrapped: %w", tc.err), errCause); got != (tc.err.Err != nil) {
				t.Errorf("errors.Is(err, cause) = %v", got)
			}
		})
	}
	if got := errTestNotFound.Error(); got != "svc: not found" {
		t.Errorf("sentinel text %q", got)
	}
	if errTestNotFound.Status() != 404 || errTestNotFound.String() != "not-found" || errTestNotFound.Type() != NotFound ||
		errTestNotFound.Code() != "not-found" || errTestNotFound.Text() != "not found" {
		t.Errorf("kind accessors: %d %q %v %q %q", errTestNotFound.Status(), errTestNotFound, errTestNotFound.Type(),
			errTestNotFound.Code(), errTestNotFound.Text())
	}
	if errTestCoded.Code() != "replay" || errTestCoded.String() != "conflict" || errTestCoded.Error() != "svc: counter not greater" {
		t.Errorf("coded kind accessors: %q %q %q", errTestCoded.Code(), errTestCoded, errTestCoded.Error())
	}
}

// TestHandle checks the problem bodies, statuses and headers the handler
// writes for each class of error.
func TestHandle(t *testing.T) {
	for _, tc := range []struct {
		name, method string
		err          error
		status       int
		body         string
		header       map[string]string
	}{
		{name: "own", err: New(errTestBad, "limit", "not a number"), status: 400,
			body: `{"type":"https://metertrust.org/problems/bad-request","title":"Bad request","status":400,"detail":"not a number","param":"limit","instance":"/v1/x"}`},
		{name: "wrapped own", err: fmt.Errorf("ctx: %w", New(errTestNotFound, "", "no such thing")), status: 404,
			body: `{"type":"https://metertrust.org/problems/not-found","title":"Not found","status":404,"detail":"no such thing","instance":"/v1/x"}`},
		{name: "extension", err: &Error{Kind: errTestCustom, Detail: "d", Extension: "ext"}, status: 502,
			body: `{"type":"https://metertrust.org/problems/custom","title":"Custom","status":502,"detail":"d","instance":"/v1/x","x":"ext"}`},
		{name: "internal hides detail", err: Wrap(errTestInternal, errCause, "p", "secret detail"), status: 500,
			body: `{"type":"https://metertrust.org/problems/internal","title":"Internal error","status":500,"detail":"internal error; see the server log","instance":"/v1/x"}`},
		{name: "unclassified", err: errCause, status: 500,
			body: `{"type":"https://metertrust.org/problems/internal","title":"Internal error","status":500,"detail":"internal error; see the server log","instance":"/v1/x"}`},
		{name: "kindless error", err: &Error{Detail: "d"}, status: 500,
			body: `{"type":"https://metertrust.org/problems/internal","title":"Internal error","status":500,"detail":"internal error; see the server log","instance":"/v1/x"}`},
		{name: "echo route", err: echo.ErrNotFound, status: 404,
			body: `{"type":"https://metertrust.org/problems/not-found","title":"Not found","status":404,"detail":"no such route","instance":"/v1/x"}`},
		{name: "echo bad request", err: echo.NewHTTPError(http.StatusBadRequest, "bad bind"), status: 400,
			body: `{"type":"https://metertrust.org/problems/bad-request","title":"Bad request","status":400,"detail":"bad bind","instance":"/v1/x"}`},
		{name: "echo kind missing falls back to internal", err: echo.ErrMethodNotAllowed, status: 500,
			body: `{"type":"https://metertrust.org/problems/internal","title":"Internal error","status":500,"detail":"internal error; see the server log","instance":"/v1/x"}`},
		{name: "body limit", err: fmt.Errorf("reading: %w", &http.MaxBytesError{Limit: 10}), status: 413,
			body: `{"type":"https://metertrust.org/problems/too-large","title":"Request body too large","status":413,"detail":"request body exceeds 10 bytes","instance":"/v1/x"}`},
		{name: "unauthenticated", err: New(errTestAuth, "Authorization", "no token"), status: 401,
			body:   `{"type":"https://metertrust.org/problems/unauthenticated","title":"Credential missing or invalid","status":401,"detail":"no token","param":"Authorization","instance":"/v1/x"}`,
			header: map[string]string{"WWW-Authenticate": `Bearer realm="test"`}},
		{name: "coded kind", err: New(errTestCoded, "", "counter 3"), status: 409,
			body: `{"type":"https://metertrust.org/problems/conflict","title":"Conflict","status":409,"detail":"counter 3","instance":"/v1/x","code":"replay"}`},
		{name: "error's own code", err: &Error{Kind: errTestCoded, Detail: "d", Code: "bad-mac"}, status: 409,
			body: `{"type":"https://metertrust.org/problems/conflict","title":"Conflict","status":409,"detail":"d","instance":"/v1/x","code":"bad-mac"}`},
		{name: "head", method: http.MethodHead, err: New(errTestNotFound, "", "gone"), status: 404, body: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			e := echo.New()
			rec := httptest.NewRecorder()
			c := e.NewContext(httptest.NewRequest(method, "/v1/x", nil), rec)
			testHandler().Handle(tc.err, c)
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d", rec.Code, tc.status)
			}
			if got := strings.TrimSpace(rec.Body.String()); got != tc.body {
				t.Errorf("body\n got %s\nwant %s", got, tc.body)
			}
			want := map[string]string{"Content-Type": MediaType, "Cache-Control": "no-store"}
			for k, v := range tc.header {
				want[k] = v
			}
			for k, v := range want {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestHandleCommitted checks that a response already started is left
// alone.
func TestHandleCommitted(t *testing.T) {
	e := echo.New()
	rec := httptest.NewRecorder()
	c := e.NewContext(httptest.NewRequest(http.MethodGet, "/", nil), rec)
	if err := c.String(http.StatusOK, "partial"); err != nil {
		t.Fatal(err)
	}
	testHandler().Handle(New(errTestBad, "", "late"), c)
	if rec.Code != http.StatusOK || rec.Body.String() != "partial" {
		t.Errorf("committed response changed: %d %q", rec.Code, rec.Body.String())
	}
}

// TestTypes checks that the problem types have distinct names and
// statuses, in order of status, and URIs under TypeBase.
func TestTypes(t *testing.T) {
	names := map[string]bool{}
	last := 0
	for _, ty := range Types() {
		if names[ty.Name] || ty.Status <= last || ty.Title == "" || http.StatusText(ty.Status) == "" {
			t.Errorf("type %+v: duplicate name, out of order, no title or no such status", ty)
		}
		names[ty.Name], last = true, ty.Status
		if ty.URI() != "https://metertrust.org/problems/"+ty.Name {
			t.Errorf("URI %q", ty.URI())
		}
	}
}

// TestHandleNoRealm checks that a handler without a realm (a service that
// authenticates by TLS client certificate) sends no bearer challenge.
func TestHandleNoRealm(t *testing.T) {
	e := echo.New()
	rec := httptest.NewRecorder()
	c := e.NewContext(httptest.NewRequest(http.MethodGet, "/v1/x", nil), rec)
	h := &Handler{Kinds: []*Kind{errTestAuth}}
	h.Handle(New(errTestAuth, "", "no certificate"), c)
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") != "" {
		t.Errorf("%d, WWW-Authenticate %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
}
