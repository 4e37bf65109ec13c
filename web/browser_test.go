package web

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/internal/testenv"
	"github.com/metertrust/metertrust/operator"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
	"github.com/metertrust/metertrust/store/storetest"
)

// TestBrowser drives the dashboard in a real headless Chromium (Debian's,
// METERTRUST_TEST_CHROMIUM) as an operator would: log in, watch a
// quarantine appear on the overview during a burst (the page's own script
// refreshing it), release one command and delete another, propose a bulk
// release that a second officer approves (two-person control), edit a
// threshold, and find those decisions in the audit trail. With
// METERTRUST_SCREENSHOTS=DIR it saves a screenshot of each page there
// (docs/screenshots holds the ones the docs show).
func TestBrowser(t *testing.T) {
	exe := testenv.Var(t, "METERTRUST_TEST_CHROMIUM")
	f := newFixture(t, storetest.SQLite)
	// The overview refreshes every second for the test.
	f.web.cfg.Refresh = time.Second
	admin := anomaly.Actor{ID: "setup", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
	if _, err := f.det.SetThreshold(t.Context(), admin, anomaly.Threshold{ID: "T-disconnect", Scope: anomaly.ScopeDCCService,
		ServiceRef: "7.2", Limit: 200, Window: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	// The officer also edits thresholds here.
	f.web.deps.Credentials = officerAdmin(t)
	// An SMKI with two batches, one closed, and a revoked certificate for
	// the PKI page; an hour of the router's decisions for the overview's
	// rate charts.
	pki := f.issuePKI(t)
	f.routerHour(t)

	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.IgnoreCertErrors, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.WindowSize(1280, 900))
	defer cancel()
	var copts []chromedp.ContextOption
	if os.Getenv("METERTRUST_CHROMEDP_DEBUG") != "" {
		copts = append(copts, chromedp.WithDebugf(t.Logf))
	}
	ctx, cancel := chromedp.NewContext(alloc, copts...)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	shots := os.Getenv("METERTRUST_SCREENSHOTS")
	shot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	// Log in.
	do("log in", chromedp.Navigate(f.srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#login")))
	shot("login")
	do("log in", chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "olga"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), password), chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#live")))
	if got := text("#operator"); got != "olga" {
		t.Fatalf("logged in as %q", got)
	}
	if got := text("#waiting"); got != "0" {
		t.Fatalf("waiting before the burst: %q", got)
	}

	// A burst of one user's commands: the DCC threshold allows one an
	// hour, so all but the first are quarantined; the overview shows them
	// without a reload.
	var refs []string
	for i := range 4 {
		d, err := f.det.Check(t.Context(), anomaly.Request{ID: "burst-" + strconv.Itoa(i), User: user1, UserRole: smki.UserImportSupplier,
			ServiceRef: "11.1", Target: meter, Command: gbcsCommand(t, i)})
		if err != nil {
			t.Fatal(err)
		}
		if d.Quarantined {
			refs = append(refs, d.Ref)
		}
		f.web.sample(t.Context()) // the charts' readings, ten seconds apart
		f.clock.add(10 * time.Second)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#waiting").textContent === "3"`,
		chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("the overview never showed the 3 quarantined commands: %v (shows %q)", err, text("#waiting"))
	}
	shot("overview")

	// Release one.
	do("open the queue", chromedp.Navigate(f.srv.URL+"/quarantine"), chromedp.WaitVisible(chromedp.CSS("#quarantine")))
	shot("quarantine")
	do("open "+refs[0], chromedp.Click(chromedp.CSS(`a[href="/quarantine/`+refs[0]+`"]`)), chromedp.WaitVisible(chromedp.CSS("#release")))
	shot("quarantine-detail")
	do("release", chromedp.SendKeys(chromedp.CSS(`textarea[name="reason"]`), "the supplier confirmed the batch"),
		chromedp.Click(chromedp.CSS("#release")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if got := text("#state"); !strings.HasPrefix(got, "released by olga") {
		t.Errorf("state after release: %q", got)
	}
	select {
	case q := <-f.fwd:
		if q.Ref != refs[0] {
			t.Errorf("forwarded %s", q.Ref)
		}
	case <-time.After(5 * time.Second):
		t.Error("the released command was not forwarded")
	}
	// Delete another.
	do("delete", chromedp.Navigate(f.srv.URL+"/quarantine/"+refs[1]), chromedp.WaitVisible(chromedp.CSS("#delete")),
		chromedp.SendKeys(chromedp.CSS(`textarea[name="reason"]`), "not the supplier's doing"),
		chromedp.Click(chromedp.CSS("#delete")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if got := text("#state"); !strings.HasPrefix(got, "deleted by olga") {
		t.Errorf("state after delete: %q", got)
	}

	// Two-person control: olga ticks two commands and proposes releasing
	// them; nothing is released until otto, a second officer, approves.
	d, err := f.det.Check(t.Context(), anomaly.Request{ID: "burst-4", User: user1, UserRole: smki.UserImportSupplier,
		ServiceRef: "11.1", Target: meter, Command: gbcsCommand(t, 4)})
	if err != nil || !d.Quarantined {
		t.Fatalf("a fourth quarantine: %+v, %v", d, err)
	}
	refs = append(refs, d.Ref)
	do("propose a bulk release", chromedp.Navigate(f.srv.URL+"/quarantine"), chromedp.WaitVisible(chromedp.CSS("#propose-release")),
		chromedp.Click(chromedp.CSS(`input[name="ref"][value="`+refs[2]+`"]`)),
		chromedp.Click(chromedp.CSS(`input[name="ref"][value="`+refs[3]+`"]`)),
		chromedp.SendKeys(chromedp.CSS(`#bulk textarea[name="reason"]`), "the supplier's tariff push, confirmed"),
		chromedp.Click(chromedp.CSS("#propose-release")), chromedp.WaitVisible(chromedp.CSS("#pending-proposals")))
	if got := text("#pending-proposals"); !strings.Contains(got, "release 2 quarantined commands") || !strings.Contains(got, "another quarantine-officer approves") {
		t.Errorf("pending proposals as the proposer: %q", got)
	}
	shot("proposals")
	select {
	case q := <-f.fwd:
		t.Fatalf("%s forwarded before approval", q.Ref)
	default:
	}
	do("log out", chromedp.Click(chromedp.CSS("form.who button")), chromedp.WaitVisible(chromedp.CSS("#login")))
	do("log in as otto", chromedp.Navigate(f.srv.URL+"/proposals"), chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "otto"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), password), chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#pending-proposals")))
	do("approve", chromedp.SendKeys(chromedp.CSS(`#pending-proposals input[name="reason"]`), "checked the push with the supplier"),
		chromedp.Click(chromedp.CSS("#pending-proposals button.approve")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if got := text("#proposal-history"); !strings.Contains(got, "executed") || !strings.Contains(got, "otto") {
		t.Errorf("history after approval: %q", got)
	}
	for range 2 {
		select {
		case q := <-f.fwd:
			if q.Ref != refs[2] && q.Ref != refs[3] {
				t.Errorf("forwarded %s", q.Ref)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("an approved command was not forwarded")
		}
	}
	do("log out", chromedp.Click(chromedp.CSS("form.who button")), chromedp.WaitVisible(chromedp.CSS("#login")))
	do("log in as olga", chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "olga"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), password), chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#live")))

	// Edit a threshold: tighten the DCC's disconnections to 150 a day.
	do("thresholds", chromedp.Navigate(f.srv.URL+"/thresholds"), chromedp.WaitVisible(chromedp.CSS("#save-threshold")),
		chromedp.SetValue(chromedp.CSS(`input[name="id"]`), "T-disconnect"),
		chromedp.SetValue(chromedp.CSS(`select[name="scope"]`), "dcc-srv"),
		chromedp.SetValue(chromedp.CSS(`input[name="serviceRef"]`), "7.2"),
		chromedp.SetValue(chromedp.CSS(`input[name="limit"]`), "150"),
		chromedp.SetValue(chromedp.CSS(`input[name="window"]`), "24h"),
		chromedp.Click(chromedp.CSS("#save-threshold")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if got := text(`tr[data-id="T-disconnect"]`); !strings.Contains(got, "150") {
		t.Errorf("threshold row after the edit: %q", got)
	}
	shot("thresholds")

	// The audit trail has the three decisions, and the chain verifies.
	do("audit", chromedp.Navigate(f.srv.URL+"/audit?actor=olga"), chromedp.WaitVisible(chromedp.CSS("#audit")))
	trail := text("#audit")
	for _, want := range []string{"anomaly.release", "anomaly.delete", "anomaly.threshold.set", "operator.login"} {
		if !strings.Contains(trail, want) {
			t.Errorf("audit trail lacks %s", want)
		}
	}
	if got := text("#chain"); !strings.Contains(got, "verifies") {
		t.Errorf("chain: %q", got)
	}
	shot("audit")

	// The PKI page: the closed batch with its key destroyed, the
	// revocation.
	do("pki", chromedp.Navigate(f.srv.URL+"/pki"), chromedp.WaitVisible(chromedp.CSS("#batches")))
	if got := text(`tr[data-batch="E357"]`); !strings.Contains(got, "destroyed") || !strings.Contains(got, "2 of 3") {
		t.Errorf("batch E357 row: %q", got)
	}
	if got := text("#revoked"); !strings.Contains(got, pki.revoked) || !strings.Contains(got, "keyCompromise") {
		t.Errorf("revocations: %q", got)
	}
	shot("pki")

	// The store agrees with what the pages said.
	for ref, want := range map[string]anomaly.State{refs[0]: anomaly.StateReleased, refs[1]: anomaly.StateDeleted,
		refs[2]: anomaly.StateReleased, refs[3]: anomaly.StateReleased} {
		if q, err := f.det.Get(t.Context(), ref, admin); err != nil || q.State != want {
			t.Errorf("%s: %s, %v; want %s", ref, q.State, err, want)
		}
	}
	if !f.audited("olga", "operator.login", store.OutcomeSuccess) {
		t.Error("login not audited")
	}
}

// officerAdmin is the credentials of olga holding both the quarantine
// officer's and the threshold admin's roles, and of otto, a second
// quarantine officer who approves her proposals.
func officerAdmin(t *testing.T) *operator.Credentials {
	t.Helper()
	hash, err := operator.HashPassword(nil, password)
	if err != nil {
		t.Fatal(err)
	}
	c, err := operator.NewCredentials([]operator.Credential{{Name: "olga", PasswordArgon2id: hash,
		Roles: []operator.Role{operator.RoleQuarantineOfficer, operator.RoleThresholdAdmin}},
		{Name: "otto", PasswordArgon2id: hash, Roles: []operator.Role{operator.RoleQuarantineOfficer}}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
