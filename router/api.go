package router

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/apiserver"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/smki"
)

// OpenAPI is the router API's OpenAPI 3.1 document, served at
// GET /openapi.json; docs/api/router.json is the same file.
//
//go:embed openapi.json
var OpenAPI []byte

// commandReader is what the API needs to show callers their commands and
// deliveries (Storage implements it).
type commandReader interface {
	Command(ctx context.Context, id string) (Command, error)
	CommandByCounter(ctx context.Context, target, originator smki.EUI, counter uint64) (Command, error)
	Deliveries(ctx context.Context, caller smki.EUI, after int64, limit int) ([]Delivery, error)
}

// alertSource streams anomaly alerts (package anomaly's Broker).
type alertSource interface {
	Subscribe(ctx context.Context, f anomaly.AlertFilter) <-chan anomaly.Alert
}

// RevocationChecker reports whether a DCCKI client certificate is revoked.
type RevocationChecker interface {
	Revoked(ctx context.Context, cert *x509.Certificate) (bool, error)
}

// ServerConfig configures the HTTP API.
type ServerConfig struct {
	Router   *Router
	Commands commandReader
	// Hub wakes event streams when a delivery is queued.
	Hub *Hub
	// Alerts, when set, streams anomaly alerts to their user's events.
	Alerts alertSource
	// Quarantine, when set, lets callers list, release and delete their
	// own quarantined commands (package anomaly's Detector).
	Quarantine quarantineManager
	// Release, when set, forwards what a caller released (Releases.Forward,
	// which records the outcome so the release sweeper does not forward it
	// again); nil for Router.ForwardReleased.
	Release func(ctx context.Context, q anomaly.Quarantine) (Receipt, error)
	// Consents, when set, serves the CIN consent flow to other users and
	// their consent records.
	Consents *ConsentDesk
	// Changes, when set, serves suppliers' changes of supplier (service
	// request 6.23, decision 014).
	Changes *ChangeDesk
	// Thresholds, when set, lets callers read the anomaly thresholds that
	// apply to them and set and delete their own (package anomaly's
	// Detector).
	Thresholds thresholdManager
	// Identify reads the caller from a verified DCCKI client certificate
	// (package ca's TLSUser).
	Identify func(*x509.Certificate) (smki.EUI, smki.UserRole, error)
	// Revocations checks client certificates on every request, so that a
	// revocation takes effect on open connections too.
	Revocations RevocationChecker
	// Gatherer serves GET /metrics; nil leaves it out.
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
	// Poll is how often an event stream re-reads the store when nothing
	// wakes it (responses forwarded by another instance); default 1s.
	Poll time.Duration
	// Heartbeat is how often an idle event stream sends a comment; default
	// 15s.
	Heartbeat time.Duration
}

// Server is the router's HTTP API.
type Server struct {
	cfg ServerConfig
	log *slog.Logger
	e   *echo.Echo
	// problems writes every error as problem+json.
	problems *problem.Handler
	// streamsDone is closed by EndStreams, ending the event streams.
	streamsDone chan struct{}
	endStreams  sync.Once
}

// The echo context keys: the authenticated caller, and the device a
// request concerns, for the audit entry of its refusal.
const (
	callerKey = "metertrust.caller"
	targetKey = "metertrust.target"
)

// NewServer builds the API.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Router == nil || cfg.Commands == nil || cfg.Hub == nil || cfg.Identify == nil || cfg.Revocations == nil {
		return nil, fmt.Errorf("%w: server needs Router, Commands, Hub, Identify and Revocations", ErrConfig)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger, streamsDone: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "router.api")
	s.problems = &problem.Handler{Kinds: Kinds(), Logger: s.log}
	e := apiserver.NewEcho(s.errorHandler)
	// Before routing, so that every request is logged and no request over
	// the limits reaches a handler, an unknown route included.
	e.Pre(apiserver.LogRequests(s.log, s.cfg.Router.now, loggedCaller))
	e.Pre(s.limitRequest)
	e.GET("/openapi.json", func(c echo.Context) error { return c.Blob(http.StatusOK, "application/json", OpenAPI) })
	// Liveness for orchestrators and systemd watchdogs: no store access, so
	// that a slow database does not get the process restarted.
	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	if cfg.Gatherer != nil {
		e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{})))
	}
	// Each /v1 route authenticates on its own (not through an echo group,
	// whose catch-all would answer a known path's wrong method with 404
	// instead of 405 and its Allow header).
	auth := s.authenticate
	e.POST("/v1/commands", s.postCommand, auth)
	e.GET("/v1/commands", s.findCommand, auth)
	e.GET("/v1/commands/:id", s.getCommand, auth)
	e.GET("/v1/responses", s.getResponses, auth)
	e.GET("/v1/events", s.getEvents, auth)
	e.POST("/v1/service-requests", s.postServiceRequest, auth)
	if cfg.Consents != nil {
		e.POST("/v1/cin", s.postCIN, auth)
		e.POST("/v1/consents", s.postConsent, auth)
		e.GET("/v1/consents", s.getConsents, auth)
		e.GET("/v1/consents/:id", s.getConsent, auth)
		e.POST("/v1/consents/:id/revoke", s.revokeConsent, auth)
	}
	if cfg.Changes != nil {
		e.POST("/v1/changes-of-supplier", s.postChange, auth)
		e.GET("/v1/changes-of-supplier/:id", s.getChange, auth)
		e.POST("/v1/key-rotations", s.postRotation, auth)
		e.GET("/v1/key-rotations/:id", s.getRotation, auth)
	}
	if cfg.Thresholds != nil {
		e.GET("/v1/thresholds", s.getThresholds, auth)
		e.PUT("/v1/thresholds/:id", s.putThreshold, auth)
		e.DELETE("/v1/thresholds/:id", s.deleteThreshold, auth)
	}
	if cfg.Quarantine != nil {
		e.GET("/v1/quarantine", s.getQuarantine, auth)
		e.POST("/v1/quarantine/:ref/release", s.decideQuarantine(true), auth)
		e.POST("/v1/quarantine/:ref/delete", s.decideQuarantine(false), auth)
	}
	s.e = e
	return s, nil
}

// Handler returns the API's http.Handler.
func (s *Server) Handler() http.Handler { return s.e }

// EndStreams ends every event stream, open or opened later: Service.Run
// calls it when the service stops, so that streams do not hold the
// graceful shutdown for its whole timeout.
func (s *Server) EndStreams() { s.endStreams.Do(func() { close(s.streamsDone) }) }

// The API's own request limits, within those of apiserver.Serve (16 KiB of
// request line and header, which net/http enforces itself, and the
// timeouts). The router's query parameters are EUIs, counters, cursors and
// states: a few short values.
const (
	// MaxRequestTarget bounds the request target (path and query), in
	// bytes; a longer one is refused with 414.
	MaxRequestTarget = 2 << 10
	// MaxHeaderBytes bounds the header fields (name, value and separators
	// of each), in bytes; larger ones are refused with 431.
	MaxHeaderBytes = 8 << 10
	// MaxQueryParams bounds the number of query parameters, and
	// MaxQueryParam the bytes of one (name=value as sent); more, longer or
	// repeated ones are refused with 400.
	MaxQueryParams = 8
	MaxQueryParam  = 128
)

// limitRequest refuses a request over the API's limits before routing.
func (s *Server) limitRequest(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := checkRequest(c.Request()); err != nil {
			return err
		}
		return next(c)
	}
}

// checkRequest checks a request's target, header and query against the
// API's limits.
func checkRequest(req *http.Request) error {
	target := req.RequestURI
	if target == "" {
		target = req.URL.RequestURI()
	}
	if n := len(target); n > MaxRequestTarget {
		return fmt.Errorf("%w: request target of %d bytes; the limit is %d", ErrURITooLong, n, MaxRequestTarget)
	}
	n := 0
	for name, vs := range req.Header {
		for _, v := range vs {
			n += len(name) + len(v) + 4 // "name: value\r\n"
		}
	}
	if n > MaxHeaderBytes {
		return fmt.Errorf("%w: header fields of %d bytes; the limit is %d", ErrHeaderTooLarge, n, MaxHeaderBytes)
	}
	if req.URL.RawQuery == "" {
		return nil
	}
	seen := map[string]bool{}
	for p := range strings.SplitSeq(req.URL.RawQuery, "&") {
		if p == "" {
			continue
		}
		if len(seen) == MaxQueryParams {
			return fmt.Errorf("%w: more than %d query parameters", ErrBadRequest, MaxQueryParams)
		}
		raw, _, _ := strings.Cut(p, "=")
		name, err := url.QueryUnescape(raw)
		if err != nil {
			return fmt.Errorf("%w: query parameter %q: %v", ErrBadRequest, clip(raw, 32), err)
		}
		if len(p) > MaxQueryParam {
			return fmt.Errorf("%w: query parameter %q of %d bytes; the limit is %d", ErrBadRequest, clip(name, 32), len(p), MaxQueryParam)
		}
		if seen[name] {
			return fmt.Errorf("%w: query parameter %q given more than once", ErrBadRequest, clip(name, 32))
		}
		seen[name] = true
	}
	if _, err := url.ParseQuery(req.URL.RawQuery); err != nil {
		return fmt.Errorf("%w: query: %v", ErrBadRequest, err)
	}
	return nil
}

// TLSConfig returns the server TLS configuration of the API: TLS 1.2 or
// later, a client certificate required and verified against the DCCKI
// roots, and revoked client certificates refused at the handshake.
func TLSConfig(clientCAs *x509.CertPool, cert tls.Certificate, rev RevocationChecker) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("router: no client certificate")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			revoked, err := rev.Revoked(ctx, cs.PeerCertificates[0])
			if err != nil {
				return fmt.Errorf("router: checking client certificate revocation: %w", err)
			}
			if revoked {
				return errors.New("router: client certificate revoked")
			}
			return nil
		},
	}
}

// authenticate establishes the caller from the verified client certificate.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		caller, err := s.callerOf(req)
		if err != nil {
			s.cfg.Router.audit(req.Context(), AuditEvent{Action: "api.refused", Caller: caller, Kind: KindOf(err).Code(),
				Detail: err.Error(), At: s.cfg.Router.now()})
			return audited(err)
		}
		c.Set(callerKey, caller)
		return next(c)
	}
}

func (s *Server) callerOf(req *http.Request) (Caller, error) {
	if req.TLS == nil || len(req.TLS.VerifiedChains) == 0 || len(req.TLS.PeerCertificates) == 0 {
		return Caller{}, fmt.Errorf("%w: no verified DCCKI client certificate", ErrUnauthenticated)
	}
	cert := req.TLS.PeerCertificates[0]
	eui, role, err := s.cfg.Identify(cert)
	if err != nil {
		return Caller{}, fmt.Errorf("%w: client certificate: %w", ErrUnauthenticated, err)
	}
	caller := Caller{EUI: eui, Role: role}
	revoked, err := s.cfg.Revocations.Revoked(req.Context(), cert)
	if err != nil {
		return caller, fmt.Errorf("%w: checking revocation: %w", ErrUnavailable, err)
	}
	if revoked {
		return caller, fmt.Errorf("%w: client certificate %X is revoked", ErrUnauthenticated, cert.SerialNumber)
	}
	return caller, nil
}

// loggedCaller names the authenticated caller in the request log.
func loggedCaller(c echo.Context) []slog.Attr {
	caller := callerFrom(c)
	if caller.EUI.IsZero() {
		return nil
	}
	return []slog.Attr{slog.String("caller", caller.String())}
}

func callerFrom(c echo.Context) Caller {
	v, _ := c.Get(callerKey).(Caller)
	return v
}

// maxBody bounds request bodies other than a command's bytes: a command
// in hex (white space allowed), a JSON request, with room to spare.
func (s *Server) maxBody() int64 { return int64(2*s.cfg.Router.cfg.MaxMessageBytes + 1024) }

// readBody reads the request body, refusing one over limit bytes with
// ErrTooLarge (at once when its Content-Length says so).
func (s *Server) readBody(c echo.Context, limit int64) ([]byte, error) {
	req := c.Request()
	if req.ContentLength > limit {
		return nil, fmt.Errorf("%w: request body of %d bytes; the limit is %d", ErrTooLarge, req.ContentLength, limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, fmt.Errorf("%w: request body over %d bytes", ErrTooLarge, mbe.Limit)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading request body: %v", ErrBadRequest, err)
	}
	return b, nil
}

// mediaType returns the request's media type if it is one of want, and
// otherwise an error wrapping ErrUnsupportedMediaType.
func mediaType(c echo.Context, want ...string) (string, error) {
	ct := c.Request().Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil {
		return "", fmt.Errorf("%w: Content-Type missing or malformed: want %s", ErrUnsupportedMediaType, strings.Join(want, " or "))
	}
	for _, w := range want {
		if mt == w {
			return mt, nil
		}
	}
	return "", fmt.Errorf("%w: Content-Type %q: want %s", ErrUnsupportedMediaType, clip(mt, 64), strings.Join(want, " or "))
}

// postCommand: POST /v1/commands with GBCS bytes (application/octet-stream,
// at most MaxMessageBytes) or their hex (text/plain, white space ignored).
func (s *Server) postCommand(c echo.Context) error {
	mt, err := mediaType(c, "application/octet-stream", "text/plain")
	if err != nil {
		return err
	}
	limit := int64(s.cfg.Router.cfg.MaxMessageBytes)
	if mt == "text/plain" {
		limit = s.maxBody()
	}
	body, err := s.readBody(c, limit)
	if err != nil {
		return err
	}
	msg := body
	if mt == "text/plain" {
		h := strings.Join(strings.Fields(string(body)), "")
		if msg, err = hex.DecodeString(h); err != nil {
			return fmt.Errorf("%w: body is not hex: %v", ErrMalformed, err)
		}
	}
	rc, err := s.cfg.Router.Submit(c.Request().Context(), callerFrom(c), msg)
	if err != nil {
		return audited(err) // the pipeline audited its refusal
	}
	c.Response().Header().Set("Location", "/v1/commands/"+rc.ID)
	return c.JSON(http.StatusAccepted, rc)
}

// commandView is a command as GET /v1/commands/{id} shows it.
type commandView struct {
	Command
	Response HexBytes `json:"response,omitempty"`
}

// HexBytes marshals as a hex string in JSON.
type HexBytes []byte

// MarshalText implements encoding.TextMarshaler.
func (h HexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *HexBytes) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

func (s *Server) getCommand(c echo.Context) error {
	id := c.Param("id")
	cmd, err := s.cfg.Commands.Command(c.Request().Context(), id)
	if err != nil {
		return err
	}
	// Another caller's command is reported as absent: its existence is not
	// the caller's business.
	if cmd.Caller.EUI != callerFrom(c).EUI {
		return fmt.Errorf("%w: command %q", ErrNotFound, id)
	}
	return c.JSON(http.StatusOK, commandView{Command: cmd, Response: cmd.Response})
}

// findCommand: GET /v1/commands?target=EUI&counter=N finds the caller's
// command by the counter it carried, so that a caller whose submission was
// cut off learns whether it was accepted (resubmitting is refused as a
// replay either way).
func (s *Server) findCommand(c echo.Context) error {
	caller := callerFrom(c)
	target, err := smki.ParseEUI(c.QueryParam("target"))
	if err != nil {
		return fmt.Errorf("%w: target: %w", ErrBadRequest, err)
	}
	counter, err := strconv.ParseUint(c.QueryParam("counter"), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: counter %q is not an unsigned integer", ErrBadRequest, c.QueryParam("counter"))
	}
	originator := caller.EUI
	if caller.Role == smki.UserOther {
		originator = s.cfg.Router.cfg.ACB
	}
	cmd, err := s.cfg.Commands.CommandByCounter(c.Request().Context(), target, originator, counter)
	if err != nil {
		return err
	}
	if cmd.Caller.EUI != caller.EUI {
		return fmt.Errorf("%w: no command of yours to %s with counter %d", ErrNotFound, target, counter)
	}
	return c.JSON(http.StatusOK, commandView{Command: cmd, Response: cmd.Response})
}

// deliveryView is a delivery as the API shows it.
type deliveryView struct {
	Seq       int64     `json:"seq"`
	CommandID string    `json:"commandId,omitempty"`
	Kind      string    `json:"kind"`
	Body      HexBytes  `json:"body,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	At        time.Time `json:"at"`
	// Alert is set on a device alert.
	Alert *alertView `json:"alert,omitempty"`
}

// alertView is the header facts of a device alert delivered to d.Caller,
// read from its bytes (the intake checked them).
type alertView struct {
	Device    smki.EUI `json:"device"`
	Code      string   `json:"messageCode"`
	Counter   uint64   `json:"counter"`
	Recipient smki.EUI `json:"recipient"`
	// Rerouted is set when the recipient is not the caller: the device
	// changed supplier (decision 018).
	Rerouted bool `json:"rerouted"`
}

func viewOf(d Delivery) deliveryView {
	v := deliveryView{Seq: d.Seq, CommandID: d.CommandID, Kind: d.Kind, Body: d.Body, Detail: d.Detail, At: d.At}
	if d.Kind == DeliveryAlert {
		if m, err := commands.Parse(d.Body); err == nil && m.CRA == commands.Alert {
			v.Alert = &alertView{Device: m.Originator, Code: m.Code.String(), Counter: m.Counter, Recipient: m.Recipient,
				Rerouted: m.Recipient != d.Caller}
		}
	}
	return v
}

func parseCursor(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: cursor %q is not a non-negative integer", ErrBadRequest, s)
	}
	return n, nil
}

// getResponses: GET /v1/responses?after=N&limit=M polls the caller's
// deliveries.
func (s *Server) getResponses(c echo.Context) error {
	after, err := parseCursor(c.QueryParam("after"))
	if err != nil {
		return err
	}
	limit := 100
	if l := c.QueryParam("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > 1000 {
			return fmt.Errorf("%w: limit %q must be 1 to 1000", ErrBadRequest, l)
		}
	}
	ds, err := s.cfg.Commands.Deliveries(c.Request().Context(), callerFrom(c).EUI, after, limit)
	if err != nil {
		return fmt.Errorf("%w: reading deliveries: %w", ErrUnavailable, err)
	}
	out := struct {
		Deliveries []deliveryView `json:"deliveries"`
		Next       int64          `json:"next"`
	}{Deliveries: []deliveryView{}, Next: after}
	for _, d := range ds {
		out.Deliveries = append(out.Deliveries, viewOf(d))
		out.Next = d.Seq
	}
	return c.JSON(http.StatusOK, out)
}

// streamSlack is added to the heartbeat for the deadlines an event stream
// sets before each write.
const streamSlack = 10 * time.Second

// getEvents: GET /v1/events streams the caller's deliveries (event types
// response, failure, and alert for a device alert, with its seq as id) and
// anomaly alerts (event type alert without id) as server-sent
// events. Deliveries carry their seq as the event id, so a client resumes
// with Last-Event-ID.
func (s *Server) getEvents(c echo.Context) error {
	caller := callerFrom(c)
	cursor, err := parseCursor(c.Request().Header.Get("Last-Event-ID"))
	if err != nil {
		return err
	}
	if q := c.QueryParam("after"); q != "" {
		if cursor, err = parseCursor(q); err != nil {
			return err
		}
	}
	ctx := c.Request().Context()
	// Subscribe before answering, so that nothing published after the
	// client sees the stream open is missed.
	wake := s.cfg.Hub.Subscribe(ctx, caller.EUI)
	var alerts <-chan anomaly.Alert
	if s.cfg.Alerts != nil {
		alerts = s.cfg.Alerts.Subscribe(ctx, anomaly.AlertFilter{User: caller.EUI})
	}
	w := c.Response()
	// The stream outlives the server's read and write timeouts: each write
	// first extends both deadlines past the next heartbeat.
	keep := s.cfg.Heartbeat + streamSlack
	if err := apiserver.ExtendDeadlines(w, keep); err != nil {
		return nil
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	w.Flush()
	poll := time.NewTicker(s.cfg.Poll)
	defer poll.Stop()
	beat := time.NewTicker(s.cfg.Heartbeat)
	defer beat.Stop()
	var mu sync.Mutex // one writer at a time
	write := func(format string, args ...any) error {
		mu.Lock()
		defer mu.Unlock()
		if err := apiserver.ExtendDeadlines(w, keep); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return err
		}
		w.Flush()
		return nil
	}
	for {
		ds, err := s.cfg.Commands.Deliveries(ctx, caller.EUI, cursor, 100)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.WarnContext(ctx, "event stream: reading deliveries", "caller", caller.String(), "err", err)
		}
		for _, d := range ds {
			b, err := json.Marshal(viewOf(d))
			if err != nil {
				return err
			}
			if err := write("id: %d\nevent: %s\ndata: %s\n\n", d.Seq, d.Kind, b); err != nil {
				return nil
			}
			cursor = d.Seq
		}
		if len(ds) == 100 {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.streamsDone:
			return nil
		case <-wake:
		case <-poll.C:
		case <-beat.C:
			if err := write(": keep-alive\n\n"); err != nil {
				return nil
			}
		case a, ok := <-alerts:
			if !ok {
				alerts = s.cfg.Alerts.Subscribe(ctx, anomaly.AlertFilter{User: caller.EUI})
				continue
			}
			b, err := json.Marshal(a)
			if err != nil {
				return err
			}
			if err := write("event: alert\ndata: %s\n\n", b); err != nil {
				return nil
			}
		}
	}
}

// postServiceRequest: POST /v1/service-requests turns a JSON service
// request into the command to sign or submit.
func (s *Server) postServiceRequest(c echo.Context) error {
	var in ServiceRequestInput
	if err := s.decodeJSON(c, &in); err != nil {
		return err
	}
	c.Set(targetKey, in.Target)
	pc, err := s.cfg.Router.BuildServiceRequest(c.Request().Context(), callerFrom(c), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, pc)
}

// decodeJSON reads a JSON request body strictly: of type application/json,
// bounded, unknown fields and trailing data refused.
func (s *Server) decodeJSON(c echo.Context, v any) error {
	if _, err := mediaType(c, "application/json"); err != nil {
		return err
	}
	body, err := s.readBody(c, s.maxBody())
	if err != nil {
		return err
	}
	d := json.NewDecoder(strings.NewReader(string(body)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: request JSON: %v", ErrBadRequest, err)
	}
	if d.More() {
		return fmt.Errorf("%w: request JSON: trailing data", ErrBadRequest)
	}
	return nil
}

// Problem is an RFC 9457 problem details body, the body of every refusal
// (media type application/problem+json): a type URI of the problem types
// every service shares (problem.TypeBase + name, such as
// https://metertrust.org/problems/conflict) and, in its "code" extension
// member, the router's stable error code (Kind.Code, such as "replay").
type Problem = problem.Details

// unavailableDetail is the detail of every 503: what failed is for the
// server log, not the caller.
const unavailableDetail = "a dependency failed; nothing was accepted; try again later"

// problemOf returns err as the router's API error, the one place where the
// router's errors meet their problem: a refusal keeps its kind, with its
// text as detail; an error from echo's router (no route, wrong method) or
// net/http (a body over its limit) gets the router's kind for its status;
// anything else, an internal failure, is ErrUnavailable.
func problemOf(err error, c echo.Context) *problem.Error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = fmt.Errorf("%w: request body over %d bytes", ErrTooLarge, mbe.Limit)
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		err = echoError(he, err, c)
	}
	k := KindOf(err)
	detail := err.Error()
	if k == ErrUnavailable {
		detail = unavailableDetail
	}
	return &problem.Error{Kind: k, Detail: detail, Err: err}
}

// echoError gives an error of echo's router or its body limit the router's
// kind for its status; others are returned as they are (and so are
// ErrUnavailable).
func echoError(he *echo.HTTPError, err error, c echo.Context) error {
	req := c.Request()
	switch he.Code {
	case http.StatusNotFound:
		return fmt.Errorf("%w: no route %s %s", ErrNotFound, req.Method, clip(req.URL.Path, 128))
	case http.StatusMethodNotAllowed:
		return fmt.Errorf("%w: %s %s; allowed: %s", ErrMethodNotAllowed, req.Method, clip(req.URL.Path, 128), c.Response().Header().Get("Allow"))
	case http.StatusRequestEntityTooLarge:
		return fmt.Errorf("%w: %v", ErrTooLarge, he.Message)
	case http.StatusUnsupportedMediaType:
		return fmt.Errorf("%w: %v", ErrUnsupportedMediaType, he.Message)
	case http.StatusBadRequest:
		return fmt.Errorf("%w: %v", ErrBadRequest, he.Message)
	}
	return err
}

// refusalActions names the audit action of a refused request by method and
// route; any other is "api.refused".
var refusalActions = map[string]string{
	"POST /v1/commands":                "command.refused",
	"POST /v1/service-requests":        "service-request.refused",
	"POST /v1/cin":                     "consent.refused",
	"POST /v1/changes-of-supplier":     "change-of-supplier.refused",
	"GET /v1/changes-of-supplier/:id":  "change-of-supplier.refused",
	"POST /v1/key-rotations":           "key-rotation.refused",
	"GET /v1/key-rotations/:id":        "key-rotation.refused",
	"POST /v1/consents":                "consent.refused",
	"GET /v1/consents":                 "consent.refused",
	"GET /v1/consents/:id":             "consent.refused",
	"POST /v1/consents/:id/revoke":     "consent.refused",
	"GET /v1/thresholds":               "threshold.refused",
	"PUT /v1/thresholds/:id":           "threshold.refused",
	"DELETE /v1/thresholds/:id":        "threshold.refused",
	"POST /v1/quarantine/:ref/release": "quarantine.refused",
	"POST /v1/quarantine/:ref/delete":  "quarantine.refused",
}

// auditRefusal appends the audit entry of a refused request that nothing
// has audited yet: who (the authenticated caller or, before or without
// authentication, the identity its client certificate names), what was
// refused and why.
func (s *Server) auditRefusal(c echo.Context, err error) {
	req := c.Request()
	caller := callerFrom(c)
	if caller.EUI.IsZero() && req.TLS != nil && len(req.TLS.PeerCertificates) > 0 {
		if eui, role, ierr := s.cfg.Identify(req.TLS.PeerCertificates[0]); ierr == nil {
			caller = Caller{EUI: eui, Role: role}
		}
	}
	target, _ := c.Get(targetKey).(smki.EUI)
	action, ok := refusalActions[req.Method+" "+c.Path()]
	if !ok {
		action = "api.refused"
	}
	s.cfg.Router.AuditRefusal(req.Context(), caller, action, target,
		fmt.Errorf("%s %s: %w", req.Method, clip(req.URL.Path, 128), err))
}

// ownershipRetryAfter is the Retry-After, in seconds, of an
// ownership-unsettled refusal.
const ownershipRetryAfter = 30

// errorHandler answers every error as problem+json through the problem
// handler every service shares, and audits every refusal the pipeline (or
// the consent desk, or the anomaly detector) did not audit already: the
// API's own, such as a body that is not hex, too large or of the wrong
// type, a wrong method, or any refused service request.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	pe := problemOf(err, c)
	if !isAudited(err) {
		s.auditRefusal(c, pe.Err)
	}
	if pe.Kind.Status() >= 500 {
		s.log.ErrorContext(c.Request().Context(), "request failed", "path", c.Path(), "err", err)
	}
	if pe.Kind == ErrOwnershipUnsettled {
		// A change of supplier settles within a round trip to the meter,
		// or a read of its anchors (decision 014).
		c.Response().Header().Set("Retry-After", strconv.Itoa(ownershipRetryAfter))
	}
	s.problems.Handle(pe, c)
}
