package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store/storetest"
)

// routerEvents writes the router's audit entries through the router's own
// Auditor over the store, as a router process sharing the store would:
// n of each at the fixture's clock.
func (f *fixture) routerEvents(t *testing.T, n int, e router.AuditEvent) {
	t.Helper()
	st := router.NewStorage(f.db.Router())
	e.Caller = router.Caller{EUI: user1, Role: smki.UserImportSupplier}
	e.Target = meter
	for range n {
		e.At = f.clock.now()
		if err := st.Audit(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCommandRates(t *testing.T) {
	for _, backend := range storetest.Dialects() {
		t.Run(backend, func(t *testing.T) { commandRates(t, backend) })
	}
}

func commandRates(t *testing.T, backend string) {
	f := newFixture(t, backend)
	b := f.browser()
	if code, _, _ := b.login("vera", password); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	// No command yet: the charts are drawn empty.
	_, body, _ := b.get("/overview/live")
	if !strings.Contains(body, `id="rates"`) || !strings.Contains(body, "No refusal in the hour") {
		t.Fatalf("empty rates:\n%s", body)
	}

	// Ten minutes of traffic: accepted commands, refusals at the
	// signature and counter stages, one quarantined, one refused before
	// the pipeline (no stage).
	f.clock.add(-10 * time.Minute)
	f.routerEvents(t, 6, router.AuditEvent{Action: "command.accepted", CommandID: "c1"})
	f.routerEvents(t, 2, router.AuditEvent{Action: "command.refused", Kind: router.ErrSignature.Code(), Stage: router.StageSignature, Detail: "bad signature"})
	f.clock.add(5 * time.Minute)
	f.routerEvents(t, 3, router.AuditEvent{Action: "command.refused", Kind: router.ErrReplay.Code(), Stage: router.StageCounter, Detail: "replay"})
	f.routerEvents(t, 1, router.AuditEvent{Action: "command.quarantined", Kind: router.ErrQuarantined.Code(), Stage: router.StageAdmit, Detail: "held"})
	f.routerEvents(t, 1, router.AuditEvent{Action: "command.refused", Kind: router.ErrMalformed.Code(), Detail: "not hex"})
	f.clock.add(5 * time.Minute)
	f.web.sample(t.Context())

	code, body, _ := b.get("/overview/live")
	if code != http.StatusOK {
		t.Fatalf("/overview/live: %d", code)
	}
	checkNoInline(t, "/overview/live", body)
	for _, want := range []string{`id="accepted">6<`, `id="refused">7<`,
		"accepted <b>6</b>", "refused at signature <b>2</b>", "refused at counter <b>3</b>", "quarantined <b>1</b>",
		"refused before the pipeline <b>1</b>",
		"replay <b>3</b>", "signature <b>2</b>", "quarantined <b>1</b>", "malformed <b>1</b>",
		// a segment of the stacked bars, with its title
		"refused at counter: 3</title>"} {
		if !strings.Contains(body, want) {
			t.Errorf("live part lacks %q", want)
		}
	}
	// The overview page itself carries the charts, refreshed with its
	// live part.
	if _, body, _ := b.get("/"); !strings.Contains(body, `id="stage-legend"`) || !strings.Contains(body, `data-refresh="/overview/live"`) {
		t.Error("the overview has no rate charts")
	}

	// Sampling again counts nothing twice; an hour and a half later the
	// hour is empty again.
	f.web.sample(t.Context())
	if _, body, _ := b.get("/overview/live"); !strings.Contains(body, `id="accepted">6<`) {
		t.Error("a second sample changed the counts")
	}
	f.clock.add(90 * time.Minute)
	if code, _, _ := b.login("vera", password); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	f.web.sample(t.Context())
	if _, body, _ := b.get("/overview/live"); !strings.Contains(body, `id="accepted">0<`) || !strings.Contains(body, "No refusal in the hour") {
		t.Errorf("an hour and a half later the counts remain:\n%s", body)
	}
}

// routerHour writes an hour of the router's decisions, minute by minute,
// ending at the fixture's clock: a steady flow of accepted commands with
// a burst of replays, a few bad signatures and malformed requests, and
// quarantines, for the overview's charts (and its screenshot).
func (f *fixture) routerHour(t *testing.T) {
	t.Helper()
	end := f.clock.now()
	f.clock.add(-time.Hour)
	for m := range 60 {
		f.routerEvents(t, 8+(m*7)%9, router.AuditEvent{Action: "command.accepted", CommandID: "c"})
		if m%7 == 3 {
			f.routerEvents(t, 2, router.AuditEvent{Action: "command.refused", Kind: router.ErrSignature.Code(), Stage: router.StageSignature, Detail: "bad signature"})
		}
		if m >= 40 && m < 46 {
			f.routerEvents(t, 3+m-40, router.AuditEvent{Action: "command.refused", Kind: router.ErrReplay.Code(), Stage: router.StageCounter, Detail: "replay"})
		}
		if m%11 == 5 {
			f.routerEvents(t, 1, router.AuditEvent{Action: "command.refused", Kind: router.ErrMalformed.Code(), Detail: "not hex"})
			f.routerEvents(t, 1, router.AuditEvent{Action: "command.refused", Kind: router.ErrNotOwner.Code(), Stage: router.StageOwnership, Detail: "not the supplier"})
		}
		if m >= 50 && m%3 == 0 {
			f.routerEvents(t, 2, router.AuditEvent{Action: "command.quarantined", Kind: router.ErrQuarantined.Code(), Stage: router.StageAdmit, Detail: "held"})
		}
		f.clock.add(time.Minute)
	}
	f.clock.add(end.Sub(f.clock.now()))
	f.web.sample(t.Context())
}
