package operator

import (
	"path/filepath"
	"testing"

	"github.com/metertrust/metertrust/apiserver/apiservertest"
)

// TestOpenAPI checks docs/api/operator.yaml against the server: it parses
// as OpenAPI 3.1, documents exactly the routes the server registers, gives
// every operation a unique operationId and responses (including the
// refusals of an authenticated route), every $ref resolves, and lists the
// problem types of exactly its kinds.
func TestOpenAPI(t *testing.T) {
	routes := New(Config{}, Deps{}).Routes()
	apiservertest.CheckOpenAPI(t, filepath.Join("..", "docs", "api", "operator.yaml"), routes, "401", "403")
	apiservertest.CheckProblemTypes(t, filepath.Join("..", "docs", "api", "operator.yaml"), kinds)
	if len(routes) != 17 {
		t.Errorf("%d routes served, want 17", len(routes))
	}
}
