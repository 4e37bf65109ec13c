// Package apiserver is the HTTP server set-up shared by metertrust's JSON
// APIs (the SMKI repository, the operator API and the router's API): an
// echo instance that sends every error to the service's one error handler,
// the route list in the form of the services' OpenAPI 3.1 documents, and a
// server with fixed timeouts and header limit, over TCP or TLS (the router's
// mutual TLS), that shuts down gracefully when its context ends.
package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/labstack/echo/v4"
)

// NewEcho returns an echo instance that prints no banner and sends every
// error to onError, the service's one error handler.
func NewEcho(onError echo.HTTPErrorHandler) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = onError
	return e
}

// Route is a method and path pattern a server answers, with path
// parameters written {name} as in OpenAPI.
type Route struct {
	// Method is the HTTP method, upper case.
	Method string
	// Path is the path pattern, e.g. "/v1/certificates/{ca}/{serial}".
	Path string
}

// Routes lists the method and path of every route of e, sorted by path
// then method, in the form OpenAPI documents use (see OpenAPIPath).
func Routes(e *echo.Echo) []Route {
	var out []Route
	for _, r := range e.Routes() {
		out = append(out, Route{Method: r.Method, Path: OpenAPIPath(r.Path)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// OpenAPIPath writes echo's ":name" path parameters as "{name}" and its
// "*" wildcard as "{request}" (the repository's OCSP GET route).
func OpenAPIPath(p string) string {
	b := []byte{}
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case ':':
			j := i + 1
			for j < len(p) && p[j] != '/' {
				j++
			}
			b = append(b, '{')
			b = append(b, p[i+1:j]...)
			b = append(b, '}')
			i = j - 1
		case '*':
			b = append(b, "{request}"...)
		default:
			b = append(b, p[i])
		}
	}
	return string(b)
}

// Options configure Serve.
type Options struct {
	// Service prefixes Serve's errors, e.g. "repository".
	Service string
	// Name is the service as its log messages say it, e.g. "operator API".
	Name string
	// Logger receives the listening and shutdown messages and net/http's
	// own errors; nil discards.
	Logger *slog.Logger
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
	// BeforeShutdown, if set, runs when ctx is done, before the graceful
	// shutdown starts (the operator API ends its event streams there, which
	// would otherwise hold the shutdown for its whole timeout).
	BeforeShutdown func()
	// TLS, if set, makes Serve answer HTTPS on ln with this configuration
	// (its certificates, and client certificates when its ClientAuth asks
	// for them), negotiating HTTP/2 as net/http's ServeTLS does; nil serves
	// plain HTTP.
	TLS *tls.Config
}

// limits are Serve's fixed timeouts and header limit, the same for every
// service; a variable only so that this package's tests can shorten them.
var limits = struct {
	readHeader, read, write, idle time.Duration
	maxHeaderBytes                int
}{readHeader: 10 * time.Second, read: 30 * time.Second, write: 30 * time.Second, idle: 2 * time.Minute, maxHeaderBytes: 16 << 10}

// Serve answers requests with h on ln until ctx is done, then shuts down
// gracefully, letting requests in flight finish within ShutdownTimeout. It
// returns nil after a clean shutdown. The server's timeouts are fixed:
// 10s to read headers (16 KiB at most: net/http answers a larger request
// line and header with 431 itself), 30s to read a request and to write a
// response (a stream extends its own deadlines with ExtendDeadlines), 2
// minutes idle.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hs := &http.Server{
		Handler:           h,
		TLSConfig:         o.TLS,
		ReadHeaderTimeout: limits.readHeader,
		ReadTimeout:       limits.read,
		WriteTimeout:      limits.write,
		IdleTimeout:       limits.idle,
		MaxHeaderBytes:    limits.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() {
		if o.TLS != nil {
			errc <- hs.ServeTLS(ln, "", "")
			return
		}
		errc <- hs.Serve(ln)
	}()
	log.Info(o.Name+" listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("%s: serving on %s: %w", o.Service, ln.Addr(), err)
	case <-ctx.Done():
	}
	log.Info(o.Name + " shutting down")
	if o.BeforeShutdown != nil {
		o.BeforeShutdown()
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("%s: graceful shutdown: %w", o.Service, err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: serving on %s: %w", o.Service, ln.Addr(), err)
	}
	log.Info(o.Name + " stopped")
	return nil
}

// ExtendDeadlines moves the read and write deadlines of the connection
// serving w to d from now, for a response that streams for longer than
// Serve's timeouts (server-sent events): a stream calls it before each
// write, with d above its heartbeat. Both deadlines matter: when the read
// deadline passes, net/http cancels the request's context, ending the
// stream. A writer that cannot set deadlines (a test recorder) is left as
// it is.
func ExtendDeadlines(w http.ResponseWriter, d time.Duration) error {
	rc := http.NewResponseController(w)
	at := time.Now().Add(d)
	if err := rc.SetReadDeadline(at); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if err := rc.SetWriteDeadline(at); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// LogRequests returns echo middleware that sends a handler's error to the
// error handler at once (so that the status logged is the one sent) and
// logs one line per request: method, path, status, bytes and time taken,
// then whatever who returns for the request (the authenticated caller; nil
// adds nothing). Neither headers (the Authorization header carries
// operator tokens) nor query strings are logged.
func LogRequests(log *slog.Logger, now func() time.Time, who func(c echo.Context) []slog.Attr) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := now()
			if err := next(c); err != nil {
				c.Error(err)
			}
			req := c.Request()
			attrs := []slog.Attr{
				slog.String("method", req.Method),
				slog.String("path", req.URL.Path),
				slog.Int("status", c.Response().Status),
				slog.Int64("bytes", c.Response().Size),
				slog.Duration("elapsed", now().Sub(start)),
			}
			if who != nil {
				attrs = append(attrs, who(c)...)
			}
			log.LogAttrs(req.Context(), slog.LevelInfo, "request", attrs...)
			return nil
		}
	}
}
