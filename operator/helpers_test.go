package operator

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/anomaly/anomalytest"
	"github.com/metertrust/metertrust/proposal"
	"github.com/metertrust/metertrust/proposal/proposaltest"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
	"github.com/metertrust/metertrust/store/storetest"
)

// Test operators, one per role, and their tokens.
const (
	viewerToken    = "token-viewer"
	officerToken   = "token-officer"
	adminToken     = "token-admin"
	publisherToken = "token-publisher"
	officer2Token  = "token-officer-2"
	admin2Token    = "token-admin-2"
)

var (
	supplier  = smki.MustParseEUI("90B3D51F30010000")
	supplier2 = smki.MustParseEUI("90B3D51F30020000")
	meter     = smki.MustParseEUI("0011223344556677")
)

func testCredentials(t testing.TB) *Credentials {
	t.Helper()
	c, err := NewCredentials([]Credential{
		{Name: "vera", TokenSHA256: HashToken(viewerToken), Roles: []Role{RoleViewer}},
		{Name: "olga", TokenSHA256: HashToken(officerToken), Roles: []Role{RoleQuarantineOfficer}},
		{Name: "adam", TokenSHA256: HashToken(adminToken), Roles: []Role{RoleThresholdAdmin}},
		{Name: "pete", TokenSHA256: HashToken(publisherToken), Roles: []Role{RolePublish, RoleRevoke}},
		{Name: "otis", TokenSHA256: HashToken(officer2Token), Roles: []Role{RoleQuarantineOfficer}},
		{Name: "abe", TokenSHA256: HashToken(admin2Token), Roles: []Role{RoleThresholdAdmin}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// auditRecord is one audit entry, from either the detector's store or the
// server's auditor.
type auditRecord struct {
	Actor, Action, Object, Outcome string
	Details                        map[string]any
}

// memAuditor is an in-memory Auditor.
type memAuditor struct {
	mu      sync.Mutex
	entries []store.AuditEvent
}

func (a *memAuditor) AppendAudit(_ context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e.Seq = int64(len(a.entries) + 1)
	a.entries = append(a.entries, e)
	return e, nil
}

// fakeReleaser records what it is asked to forward and fails with err if
// set.
type fakeReleaser struct {
	mu   sync.Mutex
	got  []anomaly.Quarantine
	err  error
	seen int
}

type fakeReceipt struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func (r *fakeReleaser) forward(_ context.Context, q anomaly.Quarantine) (fakeReceipt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen++
	if r.err != nil {
		return fakeReceipt{}, r.err
	}
	r.got = append(r.got, q)
	return fakeReceipt{ID: q.CommandID, Status: "accepted"}, nil
}

func (r *fakeReleaser) forwarded() []anomaly.Quarantine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]anomaly.Quarantine(nil), r.got...)
}

// fixture is an operator API over a real anomaly.Detector.
type fixture struct {
	t      testing.TB
	det    *anomaly.Detector
	srv    *Server
	rel    *fakeReleaser
	aud    Auditor
	audits func() []auditRecord
	seq    int
	clock  *testClock
}

// testClock is the server's clock: the real time, plus a skew tests
// advance to expire proposals.
type testClock struct {
	mu   sync.Mutex
	skew time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.skew)
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.skew += d
	c.mu.Unlock()
}

// backend opens a detector store and an auditor: "memory" (anomalytest),
// "sqlite" or "postgres" (the real store).
func newFixture(t testing.TB, backend string, cfg Config) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{t: t, rel: &fakeReleaser{}, clock: &testClock{}}
	var st anomaly.Store
	var aud Auditor
	var ps proposal.Store
	switch backend {
	case "memory":
		mem := &anomalytest.Store{}
		ma := &memAuditor{}
		mp := &proposaltest.Store{}
		st, aud, ps = mem, ma, mp
		f.audits = func() []auditRecord {
			var out []auditRecord
			for _, e := range mem.Audit() {
				d := map[string]any{}
				for k, v := range e.Details {
					d[k] = v
				}
				out = append(out, auditRecord{e.Actor, e.Action, e.Object, e.Outcome, d})
			}
			for _, e := range mp.Audit() {
				out = append(out, auditRecord{e.Actor, e.Action, e.Object, e.Outcome, e.Details})
			}
			ma.mu.Lock()
			defer ma.mu.Unlock()
			for _, e := range ma.entries {
				out = append(out, auditRecord{e.Actor, e.Action, e.Object, e.Outcome, e.Details})
			}
			return out
		}
	default:
		db := openTestStore(t, backend)
		st, aud, ps = db.Anomaly(), db, db.Proposals()
		f.audits = func() []auditRecord {
			es, err := db.AuditEvents(ctx, 0, 10000)
			if err != nil {
				t.Fatalf("reading the audit log: %v", err)
			}
			var out []auditRecord
			for _, e := range es {
				out = append(out, auditRecord{e.Actor, e.Action, e.Object, e.Outcome, e.Details})
			}
			return out
		}
	}
	det, err := anomaly.New(ctx, anomaly.Config{Store: st, Rand: rand.Reader, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	f.det, f.aud = det, aud
	f.srv = New(cfg, Deps{
		Credentials: testCredentials(t), Quarantine: det, Thresholds: det, Usage: det, Alerts: det,
		Releaser: Forwarder(f.rel.forward), Audit: aud, Proposals: ps, Now: f.clock.now,
	})
	// One DCC threshold: one command of service 11.1 per user per hour.
	admin := anomaly.Actor{ID: "setup", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
	if _, err := det.SetThreshold(ctx, admin, anomaly.Threshold{ID: "T-srv", Scope: anomaly.ScopeUserService,
		ServiceRef: "11.1", Limit: 1, Window: time.Hour}); err != nil {
		t.Fatal(err)
	}
	return f
}

// openTestStore opens a fresh store of the named dialect (see
// storetest.DSN), closed when the test ends.
func openTestStore(t testing.TB, backend string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), storetest.DSN(t, backend))
	if err != nil {
		t.Fatalf("opening the %s store: %v", backend, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// quarantine sends user's commands of service 11.1 until one is
// quarantined (the DCC threshold allows one per hour) and returns its
// reference.
func (f *fixture) quarantine(user smki.EUI) string {
	f.t.Helper()
	return f.quarantineFor(f.t, user)
}

// quarantineFor is quarantine reporting failures to t.
func (f *fixture) quarantineFor(t testing.TB, user smki.EUI) string {
	t.Helper()
	for range 3 {
		f.seq++
		d, err := f.det.Check(context.Background(), anomaly.Request{
			ID: fmt.Sprintf("cmd-%d", f.seq), User: user, UserRole: smki.UserImportSupplier, ServiceRef: "11.1",
			Target: meter, Command: []byte{0xDE, 0xAD, byte(f.seq)},
		})
		if err != nil {
			t.Fatal(err)
		}
		if d.Quarantined {
			return d.Ref
		}
	}
	t.Fatal("no command was quarantined")
	return ""
}

// do sends a request with token (none if empty) and returns the response
// status and body.
func (f *fixture) do(method, target, token, body string) (int, []byte, http.Header) {
	f.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes(), rec.Header()
}

// problem decodes a problem+json body.
func decodeProblem(t testing.TB, body []byte) Problem {
	t.Helper()
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("not a problem: %v: %s", err, body)
	}
	return p
}

// audited reports whether an entry with the given action, outcome, object
// (if not empty) and an actor starting with actor (if not empty) is in
// the audit log.
func (f *fixture) audited(actor, action, object, outcome string) bool {
	for _, e := range f.audits() {
		if e.Action == action && e.Outcome == outcome && (object == "" || e.Object == object) &&
			(actor == "" || strings.HasPrefix(e.Actor, actor)) {
			return true
		}
	}
	return false
}

func (f *fixture) auditDump() string {
	var b strings.Builder
	for _, e := range f.audits() {
		fmt.Fprintf(&b, "  %s %s %s %s %v\n", e.Actor, e.Action, e.Object, e.Outcome, e.Details)
	}
	return b.String()
}

// sseEvent is one server-sent event.
type sseEvent struct {
	ID, Event, Data string
}

// readEvents parses server-sent events from r onto a channel, closed at
// the end of the stream.
func readEvents(r io.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Event != "" || ev.Data != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = line[6:]
			}
		}
	}()
	return ch
}

// openStream opens GET /v1/events on a live test server with token and
// waits for the ready event.
func openStream(t testing.TB, base, query, token string) (<-chan sseEvent, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET /v1/events = %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	ch := readEvents(resp.Body)
	select {
	case ev := <-ch:
		if ev.Event != EventReady {
			t.Fatalf("first event %+v, want ready", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no ready event")
	}
	return ch, func() { cancel(); resp.Body.Close() }
}

var errRouterDown = errors.New("router: transport unavailable")

func netListen(t testing.TB) (net.Listener, error) {
	t.Helper()
	return net.Listen("tcp", "127.0.0.1:0")
}
