package inproc

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDashboardLogin: a started system serves the operators' dashboard on
// its operator listener, and its operator logs in with the password the
// system wrote beside the token (what serve all prints); the credentials
// file holds only the password's hash.
func TestDashboardLogin(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx, Config{Meters: 1, OperatorAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pw, err := os.ReadFile(s.OperatorPasswordFile)
	if err != nil || len(pw) < 20 {
		t.Fatalf("password file %q: %v", s.OperatorPasswordFile, err)
	}
	if creds, _ := os.ReadFile(s.CredentialsFile); strings.Contains(string(creds), string(pw)) || !strings.Contains(string(creds), "$argon2id$") {
		t.Fatal("the credentials file holds the password, or no hash of it")
	}
	// Go's cookie jar sends Secure cookies over https only; a browser
	// sends them to 127.0.0.1 over http too: the cookies go by hand here.
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(s.OperatorURL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
	if m == nil || len(res.Cookies()) == 0 {
		t.Fatalf("login page: %s, cookies %v", res.Status, res.Cookies())
	}
	form := url.Values{"csrf": {string(m[1])}, "name": {OperatorName}, "password": {string(pw)}}
	req, _ := http.NewRequest(http.MethodPost, s.OperatorURL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(res.Cookies()[0])
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var session *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == "__Host-mt_session" && ck.Value != "" {
			session = ck
		}
	}
	if res.StatusCode != http.StatusSeeOther || session == nil {
		t.Fatalf("login: %s, cookies %v", res.Status, res.Cookies())
	}
	req, _ = http.NewRequest(http.MethodGet, s.OperatorURL+"/", nil)
	req.AddCookie(session)
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "<h1>Overview</h1>") {
		t.Fatalf("overview: %s %.300s", res.Status, body)
	}
	// The API beside it answers as before.
	req, _ = http.NewRequest(http.MethodGet, s.OperatorURL+"/v1/thresholds", nil)
	req.Header.Set("Authorization", "Bearer "+s.OperatorToken)
	if res, err := c.Do(req); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("API: %v %v", res, err)
	}
}
