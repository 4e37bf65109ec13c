package web

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/proposal"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
	"github.com/metertrust/metertrust/store/storetest"
)

const password = "correct horse battery staple"

var (
	user1 = smki.MustParseEUI("90B3D51F30010000")
	meter = smki.MustParseEUI("0011223344556677")
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fixture is a dashboard over a real store and detector, served over TLS.
type fixture struct {
	t     *testing.T
	db    *store.DB
	det   *anomaly.Detector
	web   *Server
	srv   *httptest.Server
	clock *clock
	fwd   chan anomaly.Quarantine
	seq   int
}

func newFixture(t *testing.T, backend string) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, storetest.DSN(t, backend))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := &clock{t: time.Now().UTC()}
	det, err := anomaly.New(ctx, anomaly.Config{Store: db.Anomaly(), Rand: rand.Reader, Logger: slog.New(slog.DiscardHandler), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	hash, err := operator.HashPassword(nil, password)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := operator.NewCredentials([]operator.Credential{
		{Name: "vera", PasswordArgon2id: hash, Roles: []operator.Role{operator.RoleViewer}},
		{Name: "olga", PasswordArgon2id: hash, Roles: []operator.Role{operator.RoleQuarantineOfficer}},
		{Name: "adam", PasswordArgon2id: hash, Roles: []operator.Role{operator.RoleThresholdAdmin}},
		{Name: "otis", PasswordArgon2id: hash, Roles: []operator.Role{operator.RoleQuarantineOfficer}},
		{Name: "abe", PasswordArgon2id: hash, Roles: []operator.Role{operator.RoleThresholdAdmin}},
		{Name: "tina", TokenSHA256: operator.HashToken("api-only"), Roles: []operator.Role{operator.RoleViewer}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: db, det: det, clock: clk, fwd: make(chan anomaly.Quarantine, 10)}
	api := operator.New(operator.Config{}, operator.Deps{Credentials: creds, Quarantine: det, Thresholds: det, Usage: det,
		Releaser: operator.Forwarder(func(_ context.Context, q anomaly.Quarantine) (string, error) { f.fwd <- q; return q.CommandID, nil }),
		Audit:    db, Proposals: db.Proposals(), Now: clk.now})
	f.web, err = New(Config{}, Deps{Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})), Credentials: creds, Sessions: db.Operator(), Quarantine: det, Thresholds: det, Usage: det,
		Decider: api, Audit: db, PKI: db.SMKI(), Rates: db.Operator(), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewTLSServer(f.web.Handler())
	t.Cleanup(f.srv.Close)
	admin := anomaly.Actor{ID: "setup", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
	if _, err := det.SetThreshold(ctx, admin, anomaly.Threshold{ID: "T-srv", Scope: anomaly.ScopeUserService,
		ServiceRef: "11.1", Limit: 1, Window: time.Hour}); err != nil {
		t.Fatal(err)
	}
	return f
}

// browser is one operator's browser: a cookie jar, no redirects followed.
type browser struct {
	f *fixture
	c *http.Client
}

func (f *fixture) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: f.srv.Client().Transport, Jar: jar, // Client() is shared: a jar of its own
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &browser{f: f, c: c}
}

// get fetches path and returns the status, body and headers.
func (b *browser) get(path string) (int, string, http.Header) {
	b.f.t.Helper()
	resp, err := b.c.Get(b.f.srv.URL + path)
	if err != nil {
		b.f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// post submits a form, from this site unless origin says otherwise.
func (b *browser) post(path string, form url.Values, origin string) (int, string, http.Header) {
	b.f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin == "" {
		origin = b.f.srv.URL
	}
	req.Header.Set("Origin", origin)
	resp, err := b.c.Do(req)
	if err != nil {
		b.f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the anti-forgery token of the page at path.
func (b *browser) csrf(path string) string {
	b.f.t.Helper()
	_, body, _ := b.get(path)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		b.f.t.Fatalf("no CSRF token on %s: %s", path, body)
	}
	return m[1]
}

// login logs in as name with pw and returns the status and body.
func (b *browser) login(name, pw string) (int, string, http.Header) {
	b.f.t.Helper()
	return b.post("/login", url.Values{"csrf": {b.csrf("/login")}, "name": {name}, "password": {pw}, "next": {"/quarantine"}}, "")
}

// quarantine has the detector quarantine a command of user1 and returns
// its reference.
func (f *fixture) quarantine() string {
	f.t.Helper()
	for range 3 {
		f.seq++
		d, err := f.det.Check(context.Background(), anomaly.Request{ID: fmt.Sprintf("cmd-%d", f.seq), User: user1,
			UserRole: smki.UserImportSupplier, ServiceRef: "11.1", Target: meter, Command: gbcsCommand(f.t, f.seq)})
		if err != nil {
			f.t.Fatal(err)
		}
		if d.Quarantined {
			return d.Ref
		}
	}
	f.t.Fatal("nothing quarantined")
	return ""
}

// audited reports whether the audit log has an entry of actor, action and
// outcome.
func (f *fixture) audited(actor, action, outcome string) bool {
	f.t.Helper()
	es, err := f.db.SearchAudit(context.Background(), store.AuditQuery{Actor: actor, Action: action, Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range es {
		if e.Outcome == outcome {
			return true
		}
	}
	return false
}

func TestDashboard(t *testing.T) {
	for _, backend := range storetest.Dialects() {
		t.Run(backend, func(t *testing.T) { dashboard(t, backend) })
	}
}

func dashboard(t *testing.T, backend string) {
	f := newFixture(t, backend)
	ref := f.quarantine()
	b := f.browser()

	// Every answer carries the security headers; pages have no inline
	// script or style.
	code, body, h := b.get("/login")
	if code != http.StatusOK || h.Get("Content-Security-Policy") != contentSecurityPolicy || h.Get("X-Frame-Options") != "DENY" ||
		h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-store" {
		t.Errorf("login page: %d, headers %v", code, h)
	}
	checkNoInline(t, "/login", body)

	// Not logged in: pages send to the login page, posts are refused.
	if code, _, h := b.get("/quarantine?user=" + user1.String()); code != http.StatusSeeOther ||
		h.Get("Location") != "/login?next=%2Fquarantine%3Fuser%3D"+user1.String() {
		t.Errorf("not logged in: %d to %q", code, h.Get("Location"))
	}
	if code, _, _ := b.post("/quarantine/"+ref+"/release", url.Values{"reason": {"x"}}, ""); code != http.StatusUnauthorized {
		t.Errorf("release without a session: %d", code)
	}

	// Wrong password, audited; a login form without its token refused.
	if code, body, _ := b.login("olga", "wrong password!!"); code != http.StatusUnauthorized || !strings.Contains(body, "Unknown name or wrong password") {
		t.Errorf("wrong password: %d %s", code, body)
	}
	if !f.audited("olga", "operator.login", store.OutcomeRefused) {
		t.Error("failed login not audited")
	}
	if code, _, _ := b.post("/login", url.Values{"name": {"olga"}, "password": {password}}, ""); code != http.StatusForbidden {
		t.Errorf("login without the form's token: %d", code)
	}
	if code, _, _ := b.login("tina", "api-only"); code != http.StatusUnauthorized {
		t.Errorf("an operator with a token and no password logged in: %d", code)
	}

	// The officer logs in: sent where it asked, a __Host- cookie, the
	// session stored under its digest only.
	code, _, h = b.login("olga", password)
	if code != http.StatusSeeOther || h.Get("Location") != "/quarantine" {
		t.Fatalf("login: %d to %q", code, h.Get("Location"))
	}
	ck := findCookie(h, sessionCookie)
	if ck == nil || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
		t.Fatalf("session cookie %+v", ck)
	}
	if _, err := f.db.Operator().Session(t.Context(), ck.Value, f.clock.now(), time.Hour); err == nil {
		t.Error("the session is stored under the cookie's value")
	}
	if !f.audited("olga", "operator.login", store.OutcomeSuccess) {
		t.Error("login not audited")
	}

	// The queue lists the command; its page decodes it.
	code, body, _ = b.get("/quarantine")
	if code != http.StatusOK || !strings.Contains(body, ref) || !strings.Contains(body, `<span id="operator">olga</span>`) {
		t.Fatalf("queue: %d %s", code, body)
	}
	checkNoInline(t, "/quarantine", body)
	for _, q := range []string{"?kind=dcc-threshold", "?user=" + user1.String(), "?age=0s"} {
		if _, body, _ := b.get("/quarantine" + q); !strings.Contains(body, ref) {
			t.Errorf("filter %s hides %s", q, ref)
		}
	}
	for _, q := range []string{"?kind=user-threshold", "?user=90B3D51F30020000", "?age=1h", "?state=released"} {
		if _, body, _ := b.get("/quarantine" + q); strings.Contains(body, `data-ref="`+ref) {
			t.Errorf("filter %s shows %s", q, ref)
		}
	}
	if code, body, _ := b.get("/quarantine?user=nope&age=soon"); code != http.StatusBadRequest || !strings.Contains(body, "not an EUI-64") {
		t.Errorf("bad filter: %d", code)
	}
	code, body, _ = b.get("/quarantine/" + ref)
	if code != http.StatusOK || !strings.Contains(body, "dcc-threshold") || !strings.Contains(body, `id="release"`) ||
		!strings.Contains(body, "CS02a") || !strings.Contains(body, "remotePartyRolesCredentialsRequired") {
		t.Fatalf("detail: %d %s", code, body)
	}
	csrf := csrfRE.FindStringSubmatch(body)[1]

	// Forged posts are refused and audited; nothing changes.
	if code, _, _ := b.post("/quarantine/"+ref+"/release", url.Values{"reason": {"ok"}}, ""); code != http.StatusForbidden {
		t.Errorf("release without the token: %d", code)
	}
	if code, _, _ := b.post("/quarantine/"+ref+"/release", url.Values{"reason": {"ok"}, "csrf": {csrf}}, "https://evil.example"); code != http.StatusForbidden {
		t.Errorf("release from another origin: %d", code)
	}
	if !f.audited("olga", "operator.dashboard.csrf", store.OutcomeRefused) {
		t.Error("forged post not audited")
	}
	// A release needs a reason.
	if code, body, _ := b.post("/quarantine/"+ref+"/release", url.Values{"csrf": {csrf}}, ""); code != http.StatusUnprocessableEntity ||
		!strings.Contains(body, "Give a reason") {
		t.Errorf("release without a reason: %d", code)
	}
	if q, _ := f.det.Get(t.Context(), ref, anomaly.Actor{ID: "t", Roles: []anomaly.Role{anomaly.RoleViewer}}); q.State != anomaly.StateQuarantined {
		t.Fatalf("state after refusals: %s", q.State)
	}

	// A viewer may look, not release: the detector refuses and audits it.
	vb := f.browser()
	if code, _, _ := vb.login("vera", password); code != http.StatusSeeOther {
		t.Fatal("viewer login")
	}
	code, body, _ = vb.get("/quarantine/" + ref)
	if strings.Contains(body, `id="release"`) {
		t.Error("the viewer is offered the release button")
	}
	vcsrf := csrfRE.FindStringSubmatch(body)[1]
	if code, _, _ := vb.post("/quarantine/"+ref+"/release", url.Values{"csrf": {vcsrf}, "reason": {"because"}}, ""); code != http.StatusForbidden {
		t.Errorf("viewer release: %d", code)
	}

	// The officer releases it: forwarded, audited, the page says so.
	code, body, h = b.post("/quarantine/"+ref+"/release", url.Values{"csrf": {csrf}, "reason": {"supplier confirmed the batch"}}, "")
	if code != http.StatusSeeOther || h.Get("Location") != "/quarantine/"+ref+"?done=released" {
		t.Fatalf("release: %d to %q: %s", code, h.Get("Location"), body)
	}
	select {
	case q := <-f.fwd:
		if q.Ref != ref {
			t.Errorf("forwarded %s", q.Ref)
		}
	default:
		t.Error("nothing forwarded")
	}
	if _, body, _ := b.get("/quarantine/" + ref + "?done=released"); !strings.Contains(body, "Released: the command goes on") ||
		!strings.Contains(body, "supplier confirmed the batch") {
		t.Errorf("after release: %s", body)
	}
	if !f.audited("olga", "anomaly.release", store.OutcomeSuccess) {
		t.Error("release not audited")
	}

	// Delete another.
	ref2 := f.quarantine()
	if code, _, _ := b.post("/quarantine/"+ref2+"/delete", url.Values{"csrf": {csrf}, "reason": {"not ours"}}, ""); code != http.StatusSeeOther {
		t.Errorf("delete: %d", code)
	}

	// Thresholds: the admin edits, with validation; the officer may not.
	ab := f.browser()
	if code, _, _ := ab.login("adam", password); code != http.StatusSeeOther {
		t.Fatal("admin login")
	}
	acsrf := ab.csrf("/thresholds")
	form := url.Values{"csrf": {acsrf}, "id": {"T-dis"}, "scope": {"user-srv"}, "serviceRef": {"7.2"}, "limit": {"200"}, "window": {"24h"}}
	if code, _, h := ab.post("/thresholds", form, ""); code != http.StatusSeeOther || h.Get("Location") != "/thresholds?done=threshold-set" {
		t.Errorf("set threshold: %d", code)
	}
	form.Set("window", "a day")
	if code, body, _ := ab.post("/thresholds", form, ""); code != http.StatusUnprocessableEntity || !strings.Contains(body, "window") {
		t.Errorf("bad window: %d", code)
	}
	if _, body, _ := ab.get("/thresholds"); !strings.Contains(body, `data-id="T-dis"`) {
		t.Error("new threshold not listed")
	}
	if code, _, _ := b.post("/thresholds", url.Values{"csrf": {csrf}, "id": {"T-x"}, "scope": {"user-srv"}, "serviceRef": {"7.2"},
		"limit": {"1"}, "window": {"1h"}}, ""); code != http.StatusForbidden {
		t.Errorf("officer sets a threshold: %d", code)
	}
	if code, _, _ := ab.post("/thresholds/T-dis/delete", url.Values{"csrf": {acsrf}, "reason": {"trial over"}}, ""); code != http.StatusSeeOther {
		t.Errorf("delete threshold: %d", code)
	}

	// The audit page finds the decisions and checks the chain.
	code, body, _ = b.get("/audit?actor=olga&action=anomaly")
	if code != http.StatusOK || !strings.Contains(body, "anomaly.release") || !strings.Contains(body, "anomaly.delete") ||
		!strings.Contains(body, "verifies") || strings.Contains(body, "operator.login") {
		t.Errorf("audit search: %d %s", code, body)
	}
	if code, _, _ := b.get("/audit?from=yesterday"); code != http.StatusBadRequest {
		t.Errorf("bad from: %d", code)
	}

	// The overview and its live part.
	code, body, _ = b.get("/")
	if code != http.StatusOK || !strings.Contains(body, `id="live"`) || !strings.Contains(body, "<svg") {
		t.Errorf("overview: %d %s", code, body)
	}
	checkNoInline(t, "/", body)
	f.quarantine() // a user in the queue: its counts are charted
	f.web.sample(t.Context())
	f.clock.add(10 * time.Second)
	f.web.sample(t.Context())
	if code, body, _ := b.get("/overview/live"); code != http.StatusOK || !strings.Contains(body, "<polyline") || strings.Contains(body, "<html") {
		t.Errorf("live: %d %s", code, body)
	}

	// Logging out ends the session at once.
	if code, _, _ := ab.post("/logout", url.Values{"csrf": {acsrf}}, ""); code != http.StatusSeeOther {
		t.Errorf("logout: %d", code)
	}
	if code, _, _ := ab.get("/thresholds"); code != http.StatusSeeOther {
		t.Errorf("after logout: %d", code)
	}
	if !f.audited("adam", "operator.logout", store.OutcomeSuccess) {
		t.Error("logout not audited")
	}
	// Idle for longer than allowed: the session has ended.
	f.clock.add(DefaultSessionIdle + time.Minute)
	if code, _, _ := b.get("/"); code != http.StatusSeeOther {
		t.Errorf("idle session: %d", code)
	}
}

// TestDashboardNeedsAViewingRole: an operator holding only roles of other
// services (publish, revoke) logs in but sees no page, audited.
func TestDashboardNeedsAViewingRole(t *testing.T) {
	f := newFixture(t, storetest.SQLite)
	hash, err := operator.HashPassword(nil, password)
	if err != nil {
		t.Fatal(err)
	}
	f.web.deps.Credentials, err = operator.NewCredentials([]operator.Credential{{Name: "pete", PasswordArgon2id: hash,
		Roles: []operator.Role{operator.RolePublish, operator.RoleRevoke}}})
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser()
	if code, _, _ := b.login("pete", password); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	for _, page := range []string{"/", "/audit", "/quarantine"} {
		if code, _, _ := b.get(page); code != http.StatusForbidden {
			t.Errorf("%s for a publisher: %d, want 403", page, code)
		}
	}
	if !f.audited("pete", "operator.dashboard.view", store.OutcomeRefused) {
		t.Error("refusal not audited")
	}
}

func TestLoginLockout(t *testing.T) {
	f := newFixture(t, storetest.SQLite)
	b := f.browser()
	for range LockoutFailures {
		b.login("olga", "not the password")
	}
	if code, body, _ := b.login("olga", password); code != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed logins") {
		t.Errorf("locked out: %d", code)
	}
	// A flood of made-up names does not unlock it.
	for i := range maxFailures + 10 {
		f.web.attempt(fmt.Sprintf("nobody-%d", i), f.clock.now())
	}
	if code, _, _ := b.login("olga", password); code != http.StatusTooManyRequests {
		t.Errorf("after a flood of other names: %d, want still locked", code)
	}
	f.clock.add(DefaultLockout)
	if code, _, _ := b.login("olga", password); code != http.StatusSeeOther {
		t.Errorf("after the lockout: %d", code)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{"/quarantine?x=1": "/quarantine?x=1", "//evil.example/": "/", "https://evil.example": "/",
		"/\\evil.example": "/", "": "/", "/login?next=/": "/",
		"/\t/evil.example": "/", "/\n/evil.example": "/", "/quarantine\x7f": "/"} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// checkNoInline fails if body has an inline script, a style attribute or
// an event handler attribute, which the CSP would block.
func checkNoInline(t *testing.T, page, body string) {
	t.Helper()
	for _, re := range []*regexp.Regexp{regexp.MustCompile(`(?i)<script>`), regexp.MustCompile(`(?i)<script[^>]*>\s*[^<\s]`),
		regexp.MustCompile(`(?i)\sstyle=`), regexp.MustCompile(`(?i)\son[a-z]+=`)} {
		if m := re.FindString(body); m != "" {
			t.Errorf("%s has inline code the CSP blocks: %q", page, m)
		}
	}
}

func findCookie(h http.Header, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// testWriter sends log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// gbcsCommand is a real GBCS command from user1 to meter with counter n: a
// CS02a asking for the supplier and network operator anchors (the spec's
// example payload, gbcs-payloads.md 3.4), for the detail page to decode.
func gbcsCommand(t testing.TB, n int) []byte {
	t.Helper()
	payload := []byte{0x30, 0x11, 0x30, 0x07, 0x02, 0x01, 0x04, 0x03, 0x02, 0x03, 0x08, 0x30, 0x06, 0x02, 0x01, 0x02, 0x02, 0x01, 0x03}
	b, err := (&commands.Message{CRA: commands.Command, Counter: 0x5000000000000000 + uint64(n), Originator: user1, Recipient: meter,
		Code: 0x0008, Payload: payload}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDashboardProposals checks two-person control through the pages on
// both backends: a bulk proposal from the quarantine list, refused to its
// proposer and to a viewer, approved by a second officer; a loosening of a
// DCC threshold proposed, not applied, and applied on a second admin's
// approval.
func TestDashboardProposals(t *testing.T) {
	for _, backend := range storetest.Dialects() {
		t.Run(backend, func(t *testing.T) {
			f := newFixture(t, backend)
			refs := []string{f.quarantine(), f.quarantine()}
			olga, otis, vera, adam, abe := f.browser(), f.browser(), f.browser(), f.browser(), f.browser()
			for name, b := range map[string]*browser{"olga": olga, "otis": otis, "vera": vera, "adam": adam, "abe": abe} {
				if st, _, _ := b.login(name, password); st != http.StatusSeeOther {
					t.Fatalf("login %s: %d", name, st)
				}
			}
			_, page, _ := olga.get("/quarantine")
			if !strings.Contains(page, `id="propose-release"`) || !strings.Contains(page, `value="`+refs[0]+`"`) {
				t.Fatalf("quarantine list lacks the bulk form: %s", page)
			}
			if _, page, _ := vera.get("/quarantine"); strings.Contains(page, `id="propose-release"`) {
				t.Error("a viewer sees the bulk form")
			}
			csrf := olga.csrf("/quarantine")
			if st, _, _ := olga.post("/quarantine/bulk", url.Values{"csrf": {csrf}, "action": {"release"}, "ref": {refs[0]}, "reason": {"one"}}, ""); st != http.StatusBadRequest {
				t.Errorf("bulk of one: %d, want 400", st)
			}
			st, _, h := olga.post("/quarantine/bulk", url.Values{"csrf": {csrf}, "action": {"release"}, "ref": refs, "reason": {"tariff push"}}, "")
			if st != http.StatusSeeOther || h.Get("Location") != "/proposals?done=proposed" {
				t.Fatalf("bulk proposal: %d %s", st, h.Get("Location"))
			}
			ps, err := f.db.Proposals().Proposals(t.Context(), proposal.Filter{State: proposal.StatePending})
			if err != nil || len(ps) != 1 {
				t.Fatalf("pending proposals: %v, %v", ps, err)
			}
			id := ps[0].ID
			_, page, _ = olga.get("/proposals")
			if strings.Contains(page, "/proposals/"+id+"/approve") || !strings.Contains(page, "Withdraw") {
				t.Error("the proposer is offered the approval")
			}
			st, page, _ = olga.post("/proposals/"+id+"/approve", url.Values{"csrf": {olga.csrf("/proposals")}, "reason": {"me"}}, "")
			if st != http.StatusForbidden || !strings.Contains(page, "may not approve its own") {
				t.Errorf("self-approval: %d", st)
			}
			if st, _, _ := vera.post("/proposals/"+id+"/approve", url.Values{"csrf": {vera.csrf("/proposals")}, "reason": {"ok"}}, ""); st != http.StatusForbidden {
				t.Errorf("a viewer approving: %d", st)
			}
			_, page, _ = otis.get("/proposals")
			if !strings.Contains(page, "/proposals/"+id+"/approve") {
				t.Error("the second officer is not offered the approval")
			}
			st, _, h = otis.post("/proposals/"+id+"/approve", url.Values{"csrf": {otis.csrf("/proposals")}, "reason": {"checked"}}, "")
			if st != http.StatusSeeOther || h.Get("Location") != "/proposals?done=approved" {
				t.Fatalf("approval: %d %s", st, h.Get("Location"))
			}
			for range refs {
				select {
				case <-f.fwd:
				case <-time.After(5 * time.Second):
					t.Fatal("an approved command was not forwarded")
				}
			}
			if _, page, _ := otis.get("/proposals"); !strings.Contains(page, "executed") {
				t.Error("history lacks the executed proposal")
			}

			// Loosening T-srv (1 an hour) is proposed, then approved by abe.
			form := url.Values{"csrf": {adam.csrf("/thresholds")}, "id": {"T-srv"}, "scope": {"user-srv"}, "serviceRef": {"11.1"},
				"limit": {"5"}, "window": {"1h"}}
			st, _, h = adam.post("/thresholds", form, "")
			if st != http.StatusSeeOther || h.Get("Location") != "/proposals?done=proposed" {
				t.Fatalf("loosening: %d %s", st, h.Get("Location"))
			}
			ps, _ = f.db.Proposals().Proposals(t.Context(), proposal.Filter{State: proposal.StatePending, Kind: proposal.KindThresholdLoosen})
			if len(ps) != 1 {
				t.Fatalf("pending loosenings: %v", ps)
			}
			if _, page, _ := adam.get("/thresholds"); !strings.Contains(page, "T-srv") || strings.Contains(page, "<td>5</td>") {
				t.Error("the loosening was applied before approval")
			}
			if st, _, _ := abe.post("/proposals/"+ps[0].ID+"/approve", url.Values{"csrf": {abe.csrf("/proposals")}, "reason": {"launch"}}, ""); st != http.StatusSeeOther {
				t.Fatalf("admin approval: %d", st)
			}
			ts, err := f.det.Thresholds(t.Context(), anomaly.Actor{ID: "t", Roles: []anomaly.Role{anomaly.RoleViewer}})
			if err != nil || len(ts) != 1 || ts[0].Limit != 5 {
				t.Errorf("thresholds after approval: %v, %v", ts, err)
			}
		})
	}
}
