package problem_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/labstack/echo/v4"

	"github.com/metertrust/metertrust/problem"
)

// ErrNotFound is a service's sentinel for unknown things.
var ErrNotFound = problem.NewKind("example", "not found", problem.NotFound)

func Example() {
	h := &problem.Handler{Kinds: []*problem.Kind{ErrNotFound}}
	e := echo.New()
	e.HTTPErrorHandler = h.Handle
	e.GET("/things/:id", func(c echo.Context) error {
		return problem.New(ErrNotFound, "id", "no thing %s", c.Param("id"))
	})
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/things/42", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Print(rec.Body.String())
	// Output:
	// 404 application/problem+json
	// {"type":"https://metertrust.org/problems/not-found","title":"Not found","status":404,"detail":"no thing 42","param":"id","instance":"/things/42"}
}
