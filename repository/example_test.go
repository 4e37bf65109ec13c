package repository_test

import (
	"fmt"
	"net/http/httptest"
	"net/url"

	"github.com/metertrust/metertrust/repository"
)

// A server with no dependencies still answers its health check, and
// reports every unconfigured feature as a problem.
func ExampleNew() {
	srv := repository.New(repository.Config{}, repository.Deps{})
	for _, path := range []string{"/healthz", "/ocsp/MAA="} {
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		fmt.Println(w.Code, w.Header().Get("Content-Type"))
	}
	// Output:
	// 200 application/json
	// 503 application/problem+json
}

// Search parameters are checked and normalised before they reach the store.
func ExampleParseCertQuery() {
	v, _ := url.ParseQuery("eui=90-b3-d5-1f-30-01-00-00&role=supplier&usage=keyAgreement&limit=20")
	q, err := repository.ParseCertQuery(v, repository.DefaultPageSize, repository.MaxPageSize)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(q.EUI, *q.Role, q.Usage, q.Limit)

	v, _ = url.ParseQuery("eui=90B3D51F3001")
	_, err = repository.ParseCertQuery(v, repository.DefaultPageSize, repository.MaxPageSize)
	fmt.Println(err != nil)
	// Output:
	// 90B3D51F30010000 2 ka 20
	// true
}

// Operators are configured with the SHA-256 of their token, never the
// token itself, in package operator's credentials file; the role publish
// is the repository's one permission. The role revoke still loads, so that
// existing files stay valid, but grants nothing here: revocation moved to
// metertrust serve ca.
func ExampleHashToken() {
	ops, err := repository.ParseOperators([]byte(`{"operators":[{"name":"alice","token_sha256":"` +
		repository.HashToken("correct horse") + `","roles":["publish","revoke"]}]}`))
	fmt.Println(len(ops), ops[0].Name, ops[0].Can(repository.PermPublish), err)
	// Output:
	// 1 alice true <nil>
}
