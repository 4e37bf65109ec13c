// Package apiservertest checks a service's OpenAPI 3.1 document against the
// routes its apiserver-built server registers and the problem types it
// answers with, so that the document and the server cannot drift apart.
package apiservertest

import (
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/metertrust/metertrust/apiserver"
	"github.com/metertrust/metertrust/problem"
)

// CheckOpenAPI reads the OpenAPI document at path and checks that it parses
// as OpenAPI 3.1 with an info title and version, documents exactly the
// routes served (no more, no fewer), gives every operation a unique
// operationId and at least one response, documents every response code in
// refusals on every operation but GET /healthz (an authenticated service's
// 401 and 403), and that every $ref resolves within the document. Each
// fault is reported with t.Errorf.
func CheckOpenAPI(t testing.TB, path string, served []apiserver.Route, refusals ...string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parsing the OpenAPI document %s: %v", path, err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		t.Fatalf("%s: openapi = %q, want 3.1.x", path, v)
	}
	info, _ := doc["info"].(map[string]any)
	if info["title"] == nil || info["version"] == nil {
		t.Errorf("%s: info lacks title or version", path)
	}
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatalf("%s: no paths", path)
	}
	documented := map[apiserver.Route]bool{}
	ids := map[string]bool{}
	for p, item := range paths {
		ops, _ := item.(map[string]any)
		for m, op := range ops {
			method := strings.ToUpper(m)
			if !slices.Contains([]string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"}, method) {
				continue
			}
			documented[apiserver.Route{Method: method, Path: p}] = true
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
			if p == "/healthz" {
				continue
			}
			for _, code := range refusals {
				if resp[code] == nil {
					t.Errorf("%s %s: response %s undocumented", method, p, code)
				}
			}
		}
	}
	isServed := map[apiserver.Route]bool{}
	for _, r := range served {
		isServed[r] = true
		if !documented[r] {
			t.Errorf("route %s %s is served but not documented", r.Method, r.Path)
		}
	}
	for r := range documented {
		if !isServed[r] {
			t.Errorf("route %s %s is documented but not served", r.Method, r.Path)
		}
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

// resolves reports whether ref, a local JSON pointer ("#/a/b"), names a
// member of doc.
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

// CheckProblemTypes checks that the OpenAPI document at path lists, as the
// enum of its Problem schema's type member, exactly the type URIs of the
// problem kinds the service answers with (problem.TypeBase + name), so that
// a kind added to the service cannot go undocumented.
func CheckProblemTypes(t testing.TB, path string, kinds []*problem.Kind) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas struct {
				Problem struct {
					Properties struct {
						Type struct {
							Enum []string `yaml:"enum"`
						} `yaml:"type"`
					} `yaml:"properties"`
				} `yaml:"Problem"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parsing the OpenAPI document %s: %v", path, err)
	}
	documented := doc.Components.Schemas.Problem.Properties.Type.Enum
	served := map[string]bool{}
	for _, k := range kinds {
		u := k.Type().URI()
		served[u] = true
		if !slices.Contains(documented, u) {
			t.Errorf("%s: problem type %s (kind %q) is not in the Problem schema's type enum", path, u, k.Code())
		}
	}
	for _, u := range documented {
		if !served[u] {
			t.Errorf("%s: problem type %s is documented but no kind has it", path, u)
		}
	}
}
