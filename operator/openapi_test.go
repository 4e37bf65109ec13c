package operator

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestOpenAPI checks docs/api/operator.yaml against the server: it parses
// as OpenAPI 3.1, documents exactly the routes the server registers, gives
// every operation a unique operationId and responses (including the
// refusals of an authenticated route), and every $ref resolves.
func TestOpenAPI(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "docs", "api", "operator.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parsing the OpenAPI document: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		t.Fatalf("openapi = %q, want 3.1.x", v)
	}
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatal("no paths")
	}
	documented := map[Route]bool{}
	ids := map[string]bool{}
	for p, item := range paths {
		ops, _ := item.(map[string]any)
		for m, op := range ops {
			method := strings.ToUpper(m)
			if !slices.Contains([]string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"}, method) {
				continue
			}
			documented[Route{Method: method, Path: p}] = true
			o, _ := op.(map[string]any)
			id, _ := o["operationId"].(string)
			if id == "" || ids[id] {
				t.Errorf("%s %s: missing or duplicate operationId %q", method, p, id)
			}
			ids[id] = true
			resp, _ := o["responses"].(map[string]any)
			if len(resp) == 0 {
				t.Errorf("%s %s: no responses", method, p)
			}
			if p != "/healthz" {
				for _, code := range []string{"401", "403"} {
					if resp[code] == nil {
						t.Errorf("%s %s: response %s undocumented", method, p, code)
					}
				}
			}
		}
	}
	served := map[Route]bool{}
	for _, r := range New(Config{}, Deps{}).Routes() {
		served[r] = true
		if !documented[r] {
			t.Errorf("route %s %s is served but not documented", r.Method, r.Path)
		}
	}
	for r := range documented {
		if !served[r] {
			t.Errorf("route %s %s is documented but not served", r.Method, r.Path)
		}
	}
	if len(served) != 11 {
		t.Errorf("%d routes served, want 11", len(served))
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "$ref" {
					if ref, _ := e.(string); !resolves(doc, ref) {
						t.Errorf("$ref %q does not resolve", ref)
					}
					continue
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
}

func resolves(doc map[string]any, ref string) bool {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return false
	}
	var cur any = doc
	for _, part := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}

// TestOpenAPIPath checks the conversion of echo's route patterns.
func TestOpenAPIPath(t *testing.T) {
	for in, want := range map[string]string{
		"/v1/quarantine/:ref/release": "/v1/quarantine/{ref}/release",
		"/v1/thresholds/:id":          "/v1/thresholds/{id}",
		"/healthz":                    "/healthz",
	} {
		t.Run(in, func(t *testing.T) {
			if got := openAPIPath(in); got != want {
				t.Errorf("openAPIPath(%q) = %q, want %q", in, got, want)
			}
		})
	}
}
