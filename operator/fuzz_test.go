package operator

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzDecisionBody sends arbitrary bodies to release and delete: the
// answer is never a server error, a refusal is a problem naming what is
// wrong, and a command is forwarded only on a 200.
func FuzzDecisionBody(f *testing.F) {
	for _, s := range []string{
		`{"reason":"checked"}`, `{}`, `{"reason":""}`, `{"reason":5}`, `{"reason":null}`, `{"reason":"x","y":1}`,
		`{"reason":"x"}{}`, `[]`, `null`, `"reason"`, `{"reason":"\u0000"}`, `{"reason":"` + strings.Repeat("é", 600) + `"}`,
		`{"REASON":"x"}`, `{"reason":"x"`, "\xff\xfe", ``, ` `, `{"reason":["x"]}`, `{"reason":"x","reason":"y"}`,
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	fx := newFixture(f, "memory", Config{MaxBodyBytes: 4096})
	f.Fuzz(func(t *testing.T, body string, release bool) {
		ref := fx.quarantineFor(t, supplier)
		path := "/v1/quarantine/" + ref + "/delete"
		if release {
			path = "/v1/quarantine/" + ref + "/release"
		}
		before := len(fx.rel.forwarded())
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+officerToken)
		rec := httptest.NewRecorder()
		fx.srv.Handler().ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			p := decodeProblem(t, rec.Body.Bytes())
			if p.Detail == "" || (rec.Code == 400 && p.Param == "") {
				t.Errorf("problem %+v", p)
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		forwarded := len(fx.rel.forwarded()) - before
		if want := 0; release && rec.Code == 200 {
			if forwarded != 1 {
				t.Errorf("release answered 200 but %d forwarded", forwarded)
			}
		} else if forwarded != want {
			t.Errorf("%d forwarded after %d", forwarded, rec.Code)
		}
		if !utf8.Valid(rec.Body.Bytes()) {
			t.Error("answer is not UTF-8")
		}
	})
}

// FuzzThresholdBody sends arbitrary bodies to PUT /v1/thresholds/{id}:
// never a server error; a 400 names the field.
func FuzzThresholdBody(f *testing.F) {
	for _, s := range []string{
		`{"scope":"user-total","limit":5,"window":"1h"}`,
		`{"scope":"user-srv","serviceRef":"11.1","limit":5,"window":"24h","fixed":true}`,
		`{"scope":"dcc-srv","serviceRef":"3.1","limit":1000,"window":"1h"}`,
		`{"scope":"attribute","attribute":"price","min":0,"max":100000}`,
		`{"scope":"user-srv","user":"90B3D51F30010000","serviceRef":"11.1","limit":1,"window":"2h"}`,
		`{"scope":"user-srv","user":"90B3D51F30010000","serviceRef":"11.1","limit":9,"window":"1s"}`,
		`{"scope":"user-total","limit":5,"window":"1.5s"}`, `{"scope":"user-total","limit":-1,"window":"1h"}`,
		`{"scope":"user-total","limit":1e99,"window":"1h"}`, `{"scope":"attribute","attribute":"p","min":9,"max":1}`,
		`{"id":"X","scope":"user-total","limit":5,"window":"1h"}`, `{"scope":7}`, `{}`, `[]`, `null`, `{"window":"9999999h"}`,
		`{"scope":"user-total","limit":5,"window":"1h","setAt":"2026-01-01T00:00:00Z"}`,
	} {
		f.Add(s)
	}
	fx := newFixture(f, "memory", Config{})
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest("PUT", "/v1/thresholds/T-fuzz", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+adminToken)
		rec := httptest.NewRecorder()
		fx.srv.Handler().ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusAccepted: // 202: a loosening, proposed
		case http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge:
			p := decodeProblem(t, rec.Body.Bytes())
			if p.Detail == "" || (rec.Code == 400 && p.Param == "") {
				t.Errorf("problem %+v for %q", p, body)
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
	})
}

// FuzzParse feeds arbitrary credentials files to Parse: an error wraps
// ErrCredentials, and parsed credentials authenticate nobody with an
// empty token.
func FuzzParse(f *testing.F) {
	h := HashToken("t")
	for _, s := range []string{
		`{"operators":[{"name":"alice","token_sha256":"` + h + `","roles":["viewer"]}]}`,
		`{"operators":[]}`, `{}`, `[]`, `{"operators":[{"name":"a","token_sha256":"zz","roles":["x"]}]}`,
		`{"operators":[{"name":"a","token_sha256":"` + h + `","roles":["viewer","viewer"]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != nil {
				t.Error("credentials with an error")
			}
			return
		}
		if _, ok := c.Authenticate(""); ok {
			t.Error("the empty token authenticated")
		}
	})
}

// FuzzBulkBody sends arbitrary bodies to POST /v1/quarantine/bulk-release
// and to a proposal's approval: never a server error; a 400 names the
// field; nothing is released without a second operator.
func FuzzBulkBody(f *testing.F) {
	for _, s := range []string{
		`{"refs":["Q-1","Q-2"],"reason":"storm"}`, `{"refs":["Q-1"],"reason":"one"}`, `{"refs":[],"reason":"x"}`,
		`{"refs":["Q-1","Q-1"],"reason":"x"}`, `{"refs":["../x","Q-2"],"reason":"x"}`, `{"refs":"Q-1","reason":"x"}`,
		`{"refs":[1,2],"reason":"x"}`, `{"reason":"x"}`, `{"refs":["Q-1","Q-2"]}`, `{"refs":["Q-1","Q-2"],"reason":"x","extra":1}`,
		`{}`, `[]`, `null`, `{"refs":null,"reason":""}`,
	} {
		f.Add(s)
	}
	fx := newFixture(f, "memory", Config{})
	f.Fuzz(func(t *testing.T, body string) {
		for _, path := range []string{"/v1/quarantine/bulk-release", "/v1/proposals/P-FUZZ/approve"} {
			req := httptest.NewRequest("POST", path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+officerToken)
			rec := httptest.NewRecorder()
			fx.srv.Handler().ServeHTTP(rec, req)
			switch rec.Code {
			case http.StatusAccepted:
			case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusForbidden, http.StatusRequestEntityTooLarge:
				p := decodeProblem(t, rec.Body.Bytes())
				if p.Detail == "" || (rec.Code == 400 && p.Param == "") {
					t.Errorf("problem %+v for %q", p, body)
				}
			default:
				t.Fatalf("POST %s: status %d for %q: %s", path, rec.Code, body, rec.Body)
			}
		}
		if n := len(fx.rel.forwarded()); n != 0 {
			t.Fatalf("%d commands forwarded by a proposal alone", n)
		}
	})
}
