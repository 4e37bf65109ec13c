package repository

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestOpenAPI checks docs/api/repository.yaml structurally: it parses, is
// OpenAPI 3.1, documents exactly the routes the server registers (walking
// echo's routes), gives every operation an operationId and responses, and
// every $ref points at something that exists.
func TestOpenAPI(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "docs", "api", "repository.yaml"))
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
	info, _ := doc["info"].(map[string]any)
	if info["title"] == nil || info["version"] == nil {
		t.Error("info lacks title or version")
	}
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatal("no paths")
	}

	documented := map[Route]bool{}
	opIDs := map[string]bool{}
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
			if id == "" || opIDs[id] {
				t.Errorf("%s %s: missing or duplicate operationId %q", method, p, id)
			}
			opIDs[id] = true
			if r, _ := o["responses"].(map[string]any); len(r) == 0 {
				t.Errorf("%s %s: no responses", method, p)
			}
		}
	}

	srv := New(Config{}, Deps{})
	served := map[Route]bool{}
	for _, r := range srv.Routes() {
		served[r] = true
		if !documented[r] {
			t.Errorf("route %s %s is served but not in the OpenAPI document", r.Method, r.Path)
		}
	}
	for r := range documented {
		if !served[r] {
			t.Errorf("route %s %s is documented but not served", r.Method, r.Path)
		}
	}
	if len(served) < 11 {
		t.Errorf("only %d routes registered", len(served))
	}

	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "$ref" {
					ref, _ := e.(string)
					if !resolves(doc, ref) {
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

// TestOpenAPIPath checks the conversion of echo route patterns.
func TestOpenAPIPath(t *testing.T) {
	tests := map[string]string{
		"/v1/certificates/:ca/:serial": "/v1/certificates/{ca}/{serial}",
		"/ocsp/*":                      "/ocsp/{request}",
		"/healthz":                     "/healthz",
		"/v1/cas/:name/certificate":    "/v1/cas/{name}/certificate",
	}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			if got := openAPIPath(in); got != want {
				t.Errorf("openAPIPath(%q) = %q, want %q", in, got, want)
			}
		})
	}
}
