package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// TestOpenAPIPath checks the conversion of echo's route patterns.
func TestOpenAPIPath(t *testing.T) {
	for in, want := range map[string]string{
		"/v1/quarantine/:ref/release":  "/v1/quarantine/{ref}/release",
		"/v1/thresholds/:id":           "/v1/thresholds/{id}",
		"/v1/certificates/:ca/:serial": "/v1/certificates/{ca}/{serial}",
		"/v1/cas/:name/certificate":    "/v1/cas/{name}/certificate",
		"/ocsp/*":                      "/ocsp/{request}",
		"/healthz":                     "/healthz",
		"":                             "",
	} {
		t.Run(in, func(t *testing.T) {
			if got := OpenAPIPath(in); got != want {
				t.Errorf("OpenAPIPath(%q) = %q, want %q", in, got, want)
			}
		})
	}
}

// TestRoutes checks that routes are listed sorted by path then method, in
// OpenAPI form, and that NewEcho installs the error handler.
func TestRoutes(t *testing.T) {
	var handled atomic.Int32
	e := NewEcho(func(err error, c echo.Context) { handled.Add(1); c.NoContent(http.StatusTeapot) })
	nop := func(echo.Context) error { return nil }
	e.POST("/v1/b/:id", nop)
	e.GET("/v1/b/:id", nop)
	e.GET("/v1/a", nop)
	want := []Route{{"GET", "/v1/a"}, {"GET", "/v1/b/{id}"}, {"POST", "/v1/b/{id}"}}
	if got := Routes(e); !slices.Equal(got, want) {
		t.Errorf("Routes = %v, want %v", got, want)
	}
	if !e.HideBanner || !e.HidePort {
		t.Error("banner or port not hidden")
	}
	req, _ := http.NewRequest(http.MethodGet, "/nowhere", nil)
	rec := &recorder{header: http.Header{}}
	e.ServeHTTP(rec, req)
	if handled.Load() != 1 || rec.code != http.StatusTeapot {
		t.Errorf("error handler not used: handled %d, status %d", handled.Load(), rec.code)
	}
}

type recorder struct {
	header http.Header
	code   int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(code int)        { r.code = code }

// TestServe checks that Serve answers until its context ends, runs
// BeforeShutdown, lets a request in flight finish, and returns nil.
func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		w.WriteHeader(http.StatusNoContent)
	})
	var before atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, mux, Options{Service: "test", Name: "test API", ShutdownTimeout: 5 * time.Second,
			BeforeShutdown: func() { before.Store(true) }})
	}()
	resp := make(chan int, 1)
	go func() {
		r, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			resp <- 0
			return
		}
		r.Body.Close()
		resp <- r.StatusCode
	}()
	<-started
	cancel()
	time.Sleep(50 * time.Millisecond)
	close(release)
	if code := <-resp; code != http.StatusNoContent {
		t.Errorf("request in flight got %d, want 204", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if !before.Load() {
		t.Error("BeforeShutdown not called")
	}
}

// TestServeListenerError checks that a listener failing before shutdown is
// an error naming the service.
func TestServeListenerError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	err = Serve(context.Background(), ln, http.NotFoundHandler(), Options{Service: "test", ShutdownTimeout: time.Second})
	if err == nil || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve on a closed listener = %v, want net.ErrClosed", err)
	}
	if got := err.Error(); len(got) < 5 || got[:5] != "test:" {
		t.Errorf("error %q does not name the service", got)
	}
}

// TestLogRequests checks the request log line: the status the error
// handler sent, the caller's attributes, and no query string.
func TestLogRequests(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	clock := time.Unix(0, 0)
	now := func() time.Time { clock = clock.Add(time.Second); return clock }
	e := NewEcho(func(err error, c echo.Context) { c.NoContent(http.StatusTeapot) })
	e.Use(LogRequests(log, now, func(echo.Context) []slog.Attr { return []slog.Attr{slog.String("actor", "alice")} }))
	e.GET("/fail", func(echo.Context) error { return errors.New("boom") })
	req := httptest.NewRequest(http.MethodGet, "/fail?token=secret", nil)
	req.Header.Set("Authorization", "Bearer secret")
	e.ServeHTTP(httptest.NewRecorder(), req)
	var line map[string]any
	if err := json.Unmarshal([]byte(buf.String()), &line); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	for k, want := range map[string]any{"msg": "request", "method": "GET", "path": "/fail", "status": float64(http.StatusTeapot),
		"elapsed": float64(time.Second), "actor": "alice"} {
		if line[k] != want {
			t.Errorf("%s = %v, want %v", k, line[k], want)
		}
	}
	if strings.Contains(buf.String(), "secret") {
		t.Errorf("log line holds the token or query: %s", buf.String())
	}
}
