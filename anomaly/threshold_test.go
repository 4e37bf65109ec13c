package anomaly_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/smki"
)

var (
	userA = smki.MustParseEUI("90-B3-D5-1F-30-01-00-0A")
	userB = smki.MustParseEUI("90-B3-D5-1F-30-01-00-0B")
	meter = smki.MustParseEUI("00-DB-12-34-56-78-90-A0")
)

func TestThresholdValidate(t *testing.T) {
	ok := func(mod func(*anomaly.Threshold)) anomaly.Threshold {
		th := anomaly.Threshold{ID: "t1", Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: 200, Window: 24 * time.Hour}
		if mod != nil {
			mod(&th)
		}
		return th
	}
	tests := []struct {
		name string
		t    anomaly.Threshold
		want string // substring of the error; "" for valid
	}{
		{"dcc user-srv", ok(nil), ""},
		{"user user-srv", ok(func(t *anomaly.Threshold) { t.User = userA }), ""},
		{"three-part service ref", ok(func(t *anomaly.Threshold) { t.ServiceRef = "1.1.1" }), ""},
		{"user-total", anomaly.Threshold{Scope: anomaly.ScopeUserTotal, Limit: 5000, Window: time.Hour}, ""},
		{"dcc-srv", anomaly.Threshold{Scope: anomaly.ScopeDCCService, ServiceRef: "7.2", Limit: 1e6, Window: time.Hour}, ""},
		{"attribute any service", anomaly.Threshold{Scope: anomaly.ScopeAttribute, Attribute: "price", Min: 0, Max: 100000}, ""},
		{"attribute one service", anomaly.Threshold{Scope: anomaly.ScopeAttribute, ServiceRef: "1.2.1", Attribute: "price", Min: 1, Max: 1}, ""},
		{"unknown scope", ok(func(t *anomaly.Threshold) { t.Scope = "weekly" }), `scope "weekly"`},
		{"empty scope", ok(func(t *anomaly.Threshold) { t.Scope = "" }), `scope ""`},
		{"bad ID", ok(func(t *anomaly.Threshold) { t.ID = "a b" }), "threshold ID"},
		{"bad service ref", ok(func(t *anomaly.Threshold) { t.ServiceRef = "7" }), "service reference"},
		{"service ref with junk", ok(func(t *anomaly.Threshold) { t.ServiceRef = "7.2; DROP" }), "service reference"},
		{"user-srv without service", ok(func(t *anomaly.Threshold) { t.ServiceRef = "" }), "needs a service reference"},
		{"user-total with service", anomaly.Threshold{Scope: anomaly.ScopeUserTotal, ServiceRef: "7.2", Limit: 1, Window: time.Hour}, "takes no service reference"},
		{"dcc-srv with user", anomaly.Threshold{Scope: anomaly.ScopeDCCService, User: userA, ServiceRef: "7.2", Limit: 1, Window: time.Hour}, "DCC's alone"},
		{"zero limit", ok(func(t *anomaly.Threshold) { t.Limit = 0 }), "limit 0"},
		{"negative limit", ok(func(t *anomaly.Threshold) { t.Limit = -1 }), "limit -1"},
		{"huge limit", ok(func(t *anomaly.Threshold) { t.Limit = anomaly.MaxLimit + 1 }), "limit"},
		{"zero window", ok(func(t *anomaly.Threshold) { t.Window = 0 }), "window 0s"},
		{"window too long", ok(func(t *anomaly.Threshold) { t.Window = anomaly.MaxWindow + time.Second }), "window"},
		{"fractional window", ok(func(t *anomaly.Threshold) { t.Window = 1500 * time.Millisecond }), "whole number of seconds"},
		{"count with attribute", ok(func(t *anomaly.Threshold) { t.Attribute = "price" }), "takes no attribute"},
		{"attribute min above max", anomaly.Threshold{Scope: anomaly.ScopeAttribute, Attribute: "price", Min: 5, Max: 4}, "above maximum"},
		{"attribute without name", anomaly.Threshold{Scope: anomaly.ScopeAttribute, Max: 4}, "attribute name"},
		{"attribute with limit", anomaly.Threshold{Scope: anomaly.ScopeAttribute, Attribute: "price", Max: 4, Limit: 3}, "no limit or window"},
		{"attribute fixed", anomaly.Threshold{Scope: anomaly.ScopeAttribute, Attribute: "price", Max: 4, Fixed: true}, "no limit or window"},
		{"fixed window", ok(func(t *anomaly.Threshold) { t.Fixed = true }), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.t.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, anomaly.ErrInvalid) {
				t.Fatalf("Validate() = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestCheckStricter(t *testing.T) {
	dcc := []anomaly.Threshold{
		{ID: "dcc-72", Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: 200, Window: 24 * time.Hour},
		{ID: "dcc-71-daily", Scope: anomaly.ScopeUserService, ServiceRef: "7.1", Limit: 50, Window: 24 * time.Hour, Fixed: true},
		{ID: "dcc-total", Scope: anomaly.ScopeUserTotal, Limit: 10000, Window: time.Hour},
		{ID: "dcc-wide-72", Scope: anomaly.ScopeDCCService, ServiceRef: "7.2", Limit: 1e6, Window: time.Hour},
		{ID: "dcc-price", Scope: anomaly.ScopeAttribute, Attribute: "price", Min: 0, Max: 5000},
		{ID: "dcc-debt-23", Scope: anomaly.ScopeAttribute, ServiceRef: "2.3", Attribute: "debt", Min: -100, Max: 100},
	}
	us := func(srv string, limit int64, w time.Duration) anomaly.Threshold {
		return anomaly.Threshold{ID: "u", Scope: anomaly.ScopeUserService, User: userA, ServiceRef: srv, Limit: limit, Window: w}
	}
	ut := func(limit int64, w time.Duration) anomaly.Threshold {
		return anomaly.Threshold{ID: "u", Scope: anomaly.ScopeUserTotal, User: userA, Limit: limit, Window: w}
	}
	fixed := func(t anomaly.Threshold) anomaly.Threshold { t.Fixed = true; return t }
	attr := func(srv, name string, lo, hi int64) anomaly.Threshold {
		return anomaly.Threshold{ID: "u", Scope: anomaly.ScopeAttribute, User: userA, ServiceRef: srv, Attribute: name, Min: lo, Max: hi}
	}
	tests := []struct {
		name    string
		u       anomaly.Threshold
		wantErr string // "" for accepted
	}{
		{"lower limit same window", us("7.2", 199, 24*time.Hour), ""},
		{"lower limit longer window", us("7.2", 50, 48*time.Hour), ""},
		{"same limit longer window", us("7.2", 200, 48*time.Hour), ""},
		{"same limit same window", us("7.2", 200, 24*time.Hour), "equals the DCC's"},
		{"higher limit", us("7.2", 201, 24*time.Hour), "limit 201 is higher than the DCC's 200"},
		{"higher limit longer window", us("7.2", 300, 72*time.Hour), "higher"},
		{"shorter window", us("7.2", 10, time.Hour), "window 1h0m0s is shorter than the DCC's 24h0m0s"},
		{"other service, no DCC rule", us("7.3", 1e6, time.Second), ""},
		{"user total lower", ut(9999, time.Hour), ""},
		{"user total higher", ut(10001, time.Hour), "higher"},
		{"attribute inside", attr("", "price", 10, 4000), ""},
		{"attribute equal range", attr("1.2.1", "price", 0, 5000), ""},
		{"attribute wider above", attr("", "price", 0, 5001), "not inside the DCC's [0, 5000]"},
		{"attribute wider below", attr("1.2.1", "price", -1, 10), "not inside"},
		{"attribute for other service than DCC's", attr("2.1", "debt", -1000, 1000), ""},
		{"attribute for DCC's service", attr("2.3", "debt", -1000, 1000), "dcc-debt-23"},
		{"attribute any service vs DCC one service", attr("", "debt", -1000, 1000), ""},
		{"DCC threshold never compared", anomaly.Threshold{ID: "d", Scope: anomaly.ScopeUserService, ServiceRef: "7.2", Limit: 1e6, Window: time.Second}, ""},
		{"fixed against the DCC's sliding", fixed(us("7.2", 100, 24*time.Hour)), "fixed window is not stricter"},
		{"sliding against the DCC's fixed, same numbers", us("7.1", 50, 24*time.Hour), ""},
		{"fixed against the DCC's fixed, longer multiple", fixed(us("7.1", 50, 48*time.Hour)), ""},
		{"fixed against the DCC's fixed, not a multiple", fixed(us("7.1", 10, 36*time.Hour)), "not a whole multiple"},
		{"fixed equal to the DCC's fixed", fixed(us("7.1", 50, 24*time.Hour)), "equals the DCC's"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := anomaly.CheckStricter(tc.u, dcc)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckStricter() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, anomaly.ErrNotStricter) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("CheckStricter() = %v, want ErrNotStricter mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestThresholdJSON(t *testing.T) {
	in := anomaly.Threshold{ID: "t-1", Scope: anomaly.ScopeUserService, User: userA, ServiceRef: "7.2",
		Limit: 200, Window: 24 * time.Hour, Fixed: true, SetBy: "alice", SetAt: time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC)}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"id":"t-1","scope":"user-srv","user":"90B3D51F3001000A","serviceRef":"7.2","limit":200,"window":"24h0m0s","fixed":true,"setBy":"alice","setAt":"2026-11-23T18:00:00Z"}`
	if string(b) != want {
		t.Errorf("Marshal = %s\nwant      %s", b, want)
	}
	out, err := anomaly.ParseThreshold(b)
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("round trip = %+v, want %+v", out, in)
	}

	bad := []struct {
		name, body, want string
	}{
		{"unknown field", `{"scope":"user-total","limit":1,"window":"1h","extra":1}`, "unknown field"},
		{"bad window", `{"scope":"user-total","limit":1,"window":"a day"}`, `window "a day"`},
		{"bad user", `{"scope":"user-total","user":"xyz","limit":1,"window":"1h"}`, "user"},
		{"trailing data", `{"scope":"user-total","limit":1,"window":"1h"} {}`, "trailing"},
		{"not JSON", `scope=user-total`, "threshold JSON"},
		{"invalid threshold", `{"scope":"user-total","limit":0,"window":"1h"}`, "limit 0"},
		{"empty", ``, "threshold JSON"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := anomaly.ParseThreshold([]byte(tc.body))
			if !errors.Is(err, anomaly.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseThreshold(%s) = %v, want ErrInvalid mentioning %q", tc.body, err, tc.want)
			}
		})
	}
}

func FuzzParseThreshold(f *testing.F) {
	for _, s := range []string{
		`{"id":"t-1","scope":"user-srv","user":"90B3D51F3001000A","serviceRef":"7.2","limit":200,"window":"24h"}`,
		`{"scope":"user-total","limit":1,"window":"1h"}`,
		`{"scope":"user-total","limit":3,"window":"24h","fixed":true}`,
		`{"scope":"attribute","attribute":"price","max":3,"fixed":true}`,
		`{"scope":"dcc-srv","serviceRef":"1.1.1","limit":10000000,"window":"744h"}`,
		`{"scope":"attribute","attribute":"price","min":-5,"max":5}`,
		`{"scope":"attribute","user":"90-B3-D5-1F-30-01-00-0A","attribute":"price","min":5,"max":-5}`,
		`{"scope":"user-srv","window":"-1h","limit":-1}`,
		`{"scope":"user-srv","window":"1.5s"}`,
		`{}`, `[]`, `null`, `{"scope":1}`, `{"window":"9999999999h"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		th, err := anomaly.ParseThreshold(b)
		if err != nil {
			if !errors.Is(err, anomaly.ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := th.Validate(); err != nil {
			t.Fatalf("ParseThreshold accepted a threshold Validate refuses: %v", err)
		}
		again, err := json.Marshal(th)
		if err != nil {
			t.Fatal(err)
		}
		back, err := anomaly.ParseThreshold(again)
		if err == nil && back.SetAt.Equal(th.SetAt) {
			back.SetAt = th.SetAt
		}
		if err != nil || back != th {
			t.Fatalf("round trip of %s: %+v, %v; want %+v", again, back, err, th)
		}
		_ = anomaly.CheckStricter(th, []anomaly.Threshold{th})
		_ = th.String()
	})
}

func TestParseScopeRoleState(t *testing.T) {
	for _, s := range []string{"user-srv", "user-total", "dcc-srv", "attribute"} {
		if _, err := anomaly.ParseScope(s); err != nil {
			t.Errorf("ParseScope(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"viewer", "quarantine-officer", "threshold-admin", "user"} {
		if _, err := anomaly.ParseRole(s); err != nil {
			t.Errorf("ParseRole(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"quarantined", "released", "deleted"} {
		if _, err := anomaly.ParseState(s); err != nil {
			t.Errorf("ParseState(%q) = %v", s, err)
		}
	}
	for _, bad := range []string{"", "Viewer", "admin", "user-srv "} {
		if _, err := anomaly.ParseScope(bad); !errors.Is(err, anomaly.ErrInvalid) {
			t.Errorf("ParseScope(%q) = %v, want ErrInvalid", bad, err)
		}
		if _, err := anomaly.ParseRole(bad); !errors.Is(err, anomaly.ErrInvalid) {
			t.Errorf("ParseRole(%q) = %v, want ErrInvalid", bad, err)
		}
		if _, err := anomaly.ParseState(bad); !errors.Is(err, anomaly.ErrInvalid) {
			t.Errorf("ParseState(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestPermit(t *testing.T) {
	actions := []anomaly.Action{anomaly.ActionView, anomaly.ActionRelease, anomaly.ActionDelete, anomaly.ActionSetThreshold}
	want := map[anomaly.Role][]bool{
		anomaly.RoleViewer:            {true, false, false, false},
		anomaly.RoleQuarantineOfficer: {true, true, true, false},
		anomaly.RoleThresholdAdmin:    {true, false, false, true},
		anomaly.RoleUser:              {true, true, true, true},
		"root":                        {false, false, false, false},
	}
	for role, allowed := range want {
		for i, a := range actions {
			t.Run(string(role)+"/"+string(a), func(t *testing.T) {
				err := anomaly.Permit(role, a)
				if allowed[i] && err != nil {
					t.Fatalf("Permit = %v, want nil", err)
				}
				if !allowed[i] && !errors.Is(err, anomaly.ErrForbidden) {
					t.Fatalf("Permit = %v, want ErrForbidden", err)
				}
			})
		}
	}
}

func TestThresholdSince(t *testing.T) {
	at := time.Date(2026, 11, 23, 15, 4, 5, 6000, time.UTC)
	tests := []struct {
		name   string
		window time.Duration
		fixed  bool
		want   time.Time
	}{
		{"sliding hour", time.Hour, false, at.Add(-time.Hour)},
		{"sliding day", 24 * time.Hour, false, at.Add(-24 * time.Hour)},
		{"fixed day is the UTC calendar day", 24 * time.Hour, true, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC).Add(-time.Microsecond)},
		{"fixed hour", time.Hour, true, time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC).Add(-time.Microsecond)},
		{"fixed 10s", 10 * time.Second, true, time.Date(2026, 11, 23, 15, 4, 0, 0, time.UTC).Add(-time.Microsecond)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			th := anomaly.Threshold{Scope: anomaly.ScopeUserTotal, Limit: 1, Window: tc.window, Fixed: tc.fixed}
			if got := th.Since(at); !got.Equal(tc.want) {
				t.Errorf("Since = %s, want %s", got, tc.want)
			}
		})
	}
	// At a window's first microsecond the new window holds nothing older.
	th := anomaly.Threshold{Scope: anomaly.ScopeUserTotal, Limit: 1, Window: time.Hour, Fixed: true}
	start := time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)
	if got := th.Since(start); !got.Equal(start.Add(-time.Microsecond)) {
		t.Errorf("Since(window start) = %s", got)
	}
	before := time.Date(1969, 12, 31, 23, 30, 0, 0, time.UTC)
	if got := th.Since(before); !got.Equal(time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC).Add(-time.Microsecond)) {
		t.Errorf("Since before the epoch = %s", got)
	}
}
