package device

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/apiserver/apiservertest"
	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/dlms"
	"github.com/metertrust/metertrust/problem"
	"github.com/metertrust/metertrust/smki"
)

// httpFleet is a fleet of two meters behind an HTTPHandler on a test
// server.
type httpFleet struct {
	w     *world
	fleet *Fleet
	h     *HTTPHandler
	srv   *httptest.Server
	euis  []smki.EUI
}

func newHTTPFleet(t *testing.T, cfg HTTPConfig) *httpFleet {
	t.Helper()
	w := newWorld(t, Electricity)
	f := NewFleet(Config{Now: func() time.Time { return testNow }})
	euis, err := f.Generate(w.ctx, 2, smki.MustParseEUI("0012A3FFFE200000"), Electricity, w.anchors)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Now = func() time.Time { return testNow }
	h, err := NewHTTPHandler(f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &httpFleet{w: w, fleet: f, h: h, srv: srv, euis: euis}
}

// do sends a request and returns the status, the body and, for a problem,
// the decoded problem.
func (hf *httpFleet) do(t *testing.T, method, path, ctype string, body []byte) (int, []byte, Problem) {
	t.Helper()
	req, err := http.NewRequest(method, hf.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := hf.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var p Problem
	if res.StatusCode >= 300 {
		if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("%s %s: %d with Content-Type %q, want a problem", method, path, res.StatusCode, ct)
		}
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("%s %s: problem body %q: %v", method, path, b, err)
		}
		if p.Status != res.StatusCode || !strings.HasPrefix(p.Type, problem.TypeBase) || p.Code == "" {
			t.Fatalf("%s %s: problem %+v with status %d", method, path, p, res.StatusCode)
		}
	}
	return res.StatusCode, b, p
}

func TestHTTPHandlerCommands(t *testing.T) {
	hf := newHTTPFleet(t, HTTPConfig{MaxCommandBytes: 4096})
	m0, _ := hf.fleet.Meter(hf.euis[0])
	disable := func(counter uint64) []byte {
		return buildFor(t, hf.w, m0, CodeECS45, apdu(t, dlms.LoadSwitchStatusRequest(testInvoke)), counter)
	}
	first := disable(100)
	forged := bytes.Clone(disable(101))
	forged[len(forged)-1] ^= 0x01
	path := "/v1/devices/" + hf.euis[0].String() + "/commands"
	tests := []struct {
		name   string
		method string
		path   string
		ctype  string
		body   []byte
		status int
		code   string
	}{
		{"executes", "POST", path, "application/octet-stream", first, http.StatusOK, ""},
		{"replay refused", "POST", path, "application/octet-stream", first, http.StatusUnprocessableEntity, "replay"},
		{"forged MAC refused", "POST", path, "application/octet-stream", forged, http.StatusUnprocessableEntity, "bad-mac"},
		{"truncated", "POST", path, "application/octet-stream", disable(102)[:20], http.StatusUnprocessableEntity, "malformed"},
		{"for another meter", "POST", "/v1/devices/" + hf.euis[1].String() + "/commands", "application/octet-stream", disable(103), http.StatusUnprocessableEntity, "wrong-recipient"},
		{"grouped EUI accepted", "POST", "/v1/devices/00-12-A3-FF-FE-20-00-00/commands", "application/octet-stream", disable(104), http.StatusOK, ""},
		{"unknown meter", "POST", "/v1/devices/0012A3FFFE2FFFFF/commands", "application/octet-stream", disable(105), http.StatusNotFound, "no-meter"},
		{"bad EUI", "POST", "/v1/devices/not-an-eui/commands", "application/octet-stream", disable(106), http.StatusBadRequest, "bad-eui"},
		{"hex body refused", "POST", path, "text/plain", []byte("DF09"), http.StatusUnsupportedMediaType, "unsupported-media-type"},
		{"no content type", "POST", path, "", disable(107), http.StatusUnsupportedMediaType, "unsupported-media-type"},
		{"empty body", "POST", path, "application/octet-stream", nil, http.StatusBadRequest, "empty-body"},
		{"oversized", "POST", path, "application/octet-stream", make([]byte, 4097), http.StatusRequestEntityTooLarge, "too-large"},
		{"GET on commands", "GET", path, "", nil, http.StatusMethodNotAllowed, "method-not-allowed"},
		{"unknown path", "GET", "/v2/stats", "", nil, http.StatusNotFound, "not-found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, body, p := hf.do(t, tc.method, tc.path, tc.ctype, tc.body)
			if st != tc.status || p.Code != tc.code {
				t.Fatalf("%d %+v, want %d %q", st, p, tc.status, tc.code)
			}
			if st != http.StatusOK {
				return
			}
			resp, err := commands.Parse(body)
			if err != nil {
				t.Fatalf("response: %v", err)
			}
			cmd, _ := commands.Parse(tc.body)
			if resp.CRA != commands.Response || resp.Counter != cmd.Counter || resp.Originator != m0.EUI() {
				t.Fatalf("response %+v to command counter %d", resp, cmd.Counter)
			}
		})
	}

	st, body, _ := hf.do(t, "GET", "/v1/stats?executions=true", "", nil)
	if st != http.StatusOK {
		t.Fatalf("stats: %d %s", st, body)
	}
	var fs FleetStats
	if err := json.Unmarshal(body, &fs); err != nil {
		t.Fatal(err)
	}
	d0 := fs.Devices[hf.euis[0].String()]
	wantDiscards := map[string]uint64{"replay": 1, "bad-mac": 1, "malformed": 1}
	if fs.Meters != 2 || fs.Executed != 2 || d0.Executed != 2 || len(d0.Executions) != 2 {
		t.Fatalf("stats %+v", fs)
	}
	for r, n := range wantDiscards {
		if d0.Discarded[r] != n {
			t.Errorf("meter 0 discarded %d for %s, want %d (%v)", d0.Discarded[r], r, n, d0.Discarded)
		}
	}
	if d1 := fs.Devices[hf.euis[1].String()]; d1.Executed != 0 || d1.Discarded["wrong-recipient"] != 1 {
		t.Errorf("meter 1 stats %+v", d1)
	}
	want := []Execution{
		{Originator: hf.w.supplier.eui, Counter: 100, Code: "0x0020", At: testNow},
		{Originator: hf.w.supplier.eui, Counter: 104, Code: "0x0020", At: testNow},
	}
	for i, e := range d0.Executions {
		if e.Originator != want[i].Originator || e.Counter != want[i].Counter || !e.At.Equal(want[i].At) {
			t.Errorf("execution %d = %+v, want %+v", i, e, want[i])
		}
	}

	// Without ?executions=true the journal is left out; a bad value is
	// refused.
	st, body, _ = hf.do(t, "GET", "/v1/stats", "", nil)
	var brief FleetStats
	if err := json.Unmarshal(body, &brief); st != http.StatusOK || err != nil || brief.Executed != 2 ||
		brief.Devices[hf.euis[0].String()].Executions != nil {
		t.Fatalf("brief stats: %d %s %v", st, body, err)
	}
	if st, _, p := hf.do(t, "GET", "/v1/stats?executions=maybe", "", nil); st != http.StatusBadRequest || p.Code != "bad-query" {
		t.Fatalf("stats?executions=maybe: %d %+v", st, p)
	}

	// One meter's line matches the fleet's.
	st, body, _ = hf.do(t, "GET", "/v1/devices/"+hf.euis[0].String()+"/stats", "", nil)
	var ms MeterStats
	if err := json.Unmarshal(body, &ms); st != http.StatusOK || err != nil || ms.Executed != 2 || len(ms.Executions) != 2 {
		t.Fatalf("device stats: %d %s %v", st, body, err)
	}
	if st, _, p := hf.do(t, "GET", "/v1/devices/0012A3FFFE2FFFFF/stats", "", nil); st != http.StatusNotFound || p.Code != "no-meter" {
		t.Fatalf("stats of an unknown meter: %d %+v", st, p)
	}
}

func TestHTTPHandlerJournalBound(t *testing.T) {
	tests := []struct {
		name    string
		journal int
		want    []uint64
	}{
		{"keeps the newest", 2, []uint64{13, 14}},
		{"disabled", -1, nil},
		{"default keeps all of few", 0, []uint64{10, 11, 12, 13, 14}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hf := newHTTPFleet(t, HTTPConfig{JournalLen: tc.journal})
			m0, _ := hf.fleet.Meter(hf.euis[0])
			for c := uint64(10); c < 15; c++ {
				b := buildFor(t, hf.w, m0, CodeECS45, apdu(t, dlms.LoadSwitchStatusRequest(testInvoke)), c)
				if st, body, p := hf.do(t, "POST", "/v1/devices/"+hf.euis[0].String()+"/commands", "application/octet-stream", b); st != http.StatusOK {
					t.Fatalf("counter %d: %d %+v %x", c, st, p, body)
				}
			}
			ms := hf.h.Stats().Devices[hf.euis[0].String()]
			if ms.Executed != 5 || len(ms.Executions) != len(tc.want) {
				t.Fatalf("stats %+v, want executions %v", ms, tc.want)
			}
			for i, c := range tc.want {
				if ms.Executions[i].Counter != c {
					t.Errorf("execution %d counter %d, want %d", i, ms.Executions[i].Counter, c)
				}
			}
		})
	}
}

func TestNewHTTPHandlerRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name  string
		fleet *Fleet
		cfg   HTTPConfig
	}{
		{"no fleet", nil, HTTPConfig{}},
		{"negative body bound", NewFleet(Config{}), HTTPConfig{MaxCommandBytes: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewHTTPHandler(tc.fleet, tc.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}

// FuzzHTTPHandlerCommand posts arbitrary bytes to a meter's endpoint: the
// handler never panics, answers 200 only when the meter executed the
// command, and answers every refusal as a problem.
func FuzzHTTPHandlerCommand(f *testing.F) {
	w := newWorld(f, Electricity)
	fleet := NewFleet(Config{Now: func() time.Time { return testNow }})
	euis, err := fleet.Generate(w.ctx, 1, smki.MustParseEUI("0012A3FFFE300000"), Electricity, w.anchors)
	if err != nil {
		f.Fatal(err)
	}
	m, _ := fleet.Meter(euis[0])
	h, err := NewHTTPHandler(fleet, HTTPConfig{MaxCommandBytes: 8192, JournalLen: 4})
	if err != nil {
		f.Fatal(err)
	}
	valid := buildFor(f, w, m, CodeECS45, apdu(f, dlms.LoadSwitchStatusRequest(testInvoke)), 1<<40)
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(append(bytes.Clone(valid), 0))
	f.Add(buildFor(f, w, m, CodeECS45, apdu(f, dlms.LoadSwitchStatusRequest(testInvoke)), 1<<41)[1:])
	f.Add([]byte{0xDF})
	f.Add([]byte{0xDD, 0, 0, 0, 0, 0, 0, 0x82, 0xFF, 0xFF})
	f.Add(make([]byte, 9000))
	path := "/v1/devices/" + euis[0].String() + "/commands"
	f.Fuzz(func(t *testing.T, body []byte) {
		before := m.Stats().Accepted
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/octet-stream")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		after := m.Stats().Accepted
		switch rec.Code {
		case http.StatusOK:
			if after != before+1 {
				t.Fatalf("200 but the meter executed %d commands", after-before)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			if after != before {
				t.Fatalf("%d but the meter executed the command", rec.Code)
			}
			var p Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != rec.Code || p.Code == "" {
				t.Fatalf("%d with body %q", rec.Code, rec.Body.Bytes())
			}
		default:
			t.Fatalf("status %d for %x", rec.Code, body)
		}
	})
}

// TestHTTPHandlerProblemBodies checks that the endpoint's refusals are the
// problem+json bodies every metertrust service answers: a shared problem
// type URI, its title and status, the request path, and the error code (a
// discard's reason) as the "code" extension member.
func TestHTTPHandlerProblemBodies(t *testing.T) {
	hf := newHTTPFleet(t, HTTPConfig{})
	path := "/v1/devices/" + hf.euis[0].String() + "/commands"
	for _, tc := range []struct {
		name, method, path, ctype string
		body                      []byte
		want                      map[string]any
		allow                     string
	}{
		{"discard", "POST", path, "application/octet-stream", []byte{0xDF, 0x09}, map[string]any{
			"type": "https://metertrust.org/problems/discarded", "title": "Command discarded by the device", "status": 422.0,
			"code": "malformed", "instance": path}, ""},
		{"unknown meter", "GET", "/v1/devices/0012A3FFFE2FFFFF/stats", "", nil, map[string]any{
			"type": "https://metertrust.org/problems/not-found", "title": "Not found", "status": 404.0, "code": "no-meter",
			"param": "eui", "instance": "/v1/devices/0012A3FFFE2FFFFF/stats"}, ""},
		{"bad query", "GET", "/v1/alerts?limit=0", "", nil, map[string]any{
			"type": "https://metertrust.org/problems/bad-request", "title": "Bad request", "status": 400.0, "code": "bad-query",
			"param": "limit", "instance": "/v1/alerts"}, ""},
		{"wrong media type", "POST", path, "text/plain", []byte("DF09"), map[string]any{
			"type": "https://metertrust.org/problems/unsupported-media-type", "status": 415.0, "code": "unsupported-media-type"}, ""},
		{"wrong method", "DELETE", "/v1/stats", "", nil, map[string]any{
			"type": "https://metertrust.org/problems/method-not-allowed", "status": 405.0, "code": "method-not-allowed"}, "OPTIONS, GET"},
		{"unknown route", "GET", "/v1/nothing", "", nil, map[string]any{
			"type": "https://metertrust.org/problems/not-found", "status": 404.0, "code": "not-found"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, hf.srv.URL+tc.path, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			res, err := hf.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if ct := res.Header.Get("Content-Type"); ct != problem.MediaType || float64(res.StatusCode) != tc.want["status"] {
				t.Fatalf("%s as %q, want %v as %s", res.Status, ct, tc.want["status"], problem.MediaType)
			}
			if got := res.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			var got map[string]any
			if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v (%v)", k, got[k], v, got)
				}
			}
			if d, _ := got["detail"].(string); d == "" {
				t.Errorf("no detail: %v", got)
			}
		})
	}
}

// TestHTTPHandlerServe checks that Serve answers on its listener with the
// shared server set-up and stops when its context ends.
func TestHTTPHandlerServe(t *testing.T) {
	hf := newHTTPFleet(t, HTTPConfig{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hf.h.Serve(ctx, ln, nil) }()
	res, err := http.Get("http://" + ln.Addr().String() + "/v1/stats")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/stats: %s", res.Status)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// TestOpenAPI checks docs/api/device.yaml against the endpoint: exactly
// the routes it serves, operationIds, responses and $refs, and exactly the
// problem types of its kinds.
func TestOpenAPI(t *testing.T) {
	h, err := NewHTTPHandler(NewFleet(Config{}), HTTPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	doc := filepath.Join("..", "docs", "api", "device.yaml")
	apiservertest.CheckOpenAPI(t, doc, h.Routes(), "405")
	apiservertest.CheckProblemTypes(t, doc, httpKinds)
}

// TestHTTPHandlerHealthz: GET /healthz answers 200 without touching a
// meter, for orchestrators' probes.
func TestHTTPHandlerHealthz(t *testing.T) {
	h, err := NewHTTPHandler(NewFleet(Config{}), HTTPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"status":"ok"}` {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

// TestHTTPHandlerDisplay: GET /v1/devices/{EUI}/display shows the CIN a
// meter displays, nothing before it has one, and refuses an unknown meter
// or a bad EUI with the endpoint's codes.
func TestHTTPHandlerDisplay(t *testing.T) {
	hf := newHTTPFleet(t, HTTPConfig{})
	path := "/v1/devices/" + hf.euis[0].String() + "/display"
	if st, b, _ := hf.do(t, http.MethodGet, path, "", nil); st != http.StatusOK || strings.TrimSpace(string(b)) != "{}" {
		t.Errorf("display before any CIN: %d %s, want 200 {}", st, b)
	}
	m, _ := hf.fleet.Meter(hf.euis[0])
	m.mu.Lock()
	m.cin = []byte("4721") // as ECS50 sets it (TestConformance's vector 07 sends it)
	m.mu.Unlock()
	var d Display
	st, b, _ := hf.do(t, http.MethodGet, path, "", nil)
	if err := json.Unmarshal(b, &d); st != http.StatusOK || err != nil || d.CIN != "4721" {
		t.Errorf("display: %d %s (%v), want the CIN 4721", st, b, err)
	}
	if st, _, p := hf.do(t, http.MethodGet, "/v1/devices/0012A3FFFE2000FF/display", "", nil); st != http.StatusNotFound || p.Code != "no-meter" {
		t.Errorf("unknown meter: %d %q, want 404 no-meter", st, p.Code)
	}
	if st, _, p := hf.do(t, http.MethodGet, "/v1/devices/nope/display", "", nil); st != http.StatusBadRequest || p.Code != "bad-eui" {
		t.Errorf("bad EUI: %d %q, want 400 bad-eui", st, p.Code)
	}
}
