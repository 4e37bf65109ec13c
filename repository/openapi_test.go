package repository

import (
	"path/filepath"
	"testing"

	"github.com/metertrust/metertrust/apiserver/apiservertest"
)

// TestOpenAPI checks docs/api/repository.yaml structurally: it parses, is
// OpenAPI 3.1, documents exactly the routes the server registers (walking
// echo's routes), gives every operation an operationId and responses, and
// every $ref points at something that exists, and lists the problem types
// of exactly its kinds.
func TestOpenAPI(t *testing.T) {
	routes := New(Config{}, Deps{}).Routes()
	apiservertest.CheckOpenAPI(t, filepath.Join("..", "docs", "api", "repository.yaml"), routes)
	apiservertest.CheckProblemTypes(t, filepath.Join("..", "docs", "api", "repository.yaml"), kinds)
	if len(routes) < 10 {
		t.Errorf("only %d routes registered", len(routes))
	}
}
