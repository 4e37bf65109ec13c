package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// This file drives the users' journeys of issue 12 through the binary, on
// every backend: every user action is a CLI command ("metertrust user",
// "thirdparty", "router"), against "serve router", "serve repository" and
// "serve fleet" processes, and every refusal is asserted by the router's
// stable code as the CLI prints it.

// The journeys' parties beyond the world's.
var (
	euiTCoS       = smki.MustParseEUI("90B3D51F30000005")
	euiSupplier2  = smki.MustParseEUI("90B3D51F30000006")
	euiThirdParty = smki.MustParseEUI("90B3D51F300300F1")
	// euiOffline is a meter the router knows and the fleet does not serve:
	// a change of supplier for it stays open.
	euiOffline = smki.MustParseEUI("0012A3FFFE0000F0")
	// euiUnregistered is in no registry.
	euiUnregistered = smki.MustParseEUI("0012A3FFFE0000FF")
)

// journeyWorld is a world with the processes and parties the journeys
// need: a TCoS party whose certificate the meters trust, an incoming
// supplier, a third party, a router with the TCoS key, a repository.
type journeyWorld struct {
	*world
	r          *routerProc
	repoURL    string
	rootPEM    string // DCCKI root, for the CLI's --cacert
	tcos       *party
	supplier2  *party
	thirdParty *party
}

// dccLimit4_1_1 is the DCC's threshold on register reads per user, the
// one the thresholds journey's own threshold must be stricter than.
const dccLimit4_1_1 = 5

func newJourneyWorld(t *testing.T, backend string) *journeyWorld {
	t.Helper()
	w := newWorld(t, backend, 2)
	jw := &journeyWorld{world: w}
	jw.tcos = w.newParty(t, "tcos", euiTCoS.String(), "tcos", "", "ds")
	jw.supplier2 = w.newParty(t, "supplier2", euiSupplier2.String(), "supplier", "IS", "ds", "ka", "pp-ka")
	jw.thirdParty = w.newParty(t, "thirdparty", euiThirdParty.String(), "other", "OU", "ka")

	// The meters must trust the TCoS: the fleet again, with its
	// certificate (meter state lives as long as the process, and nothing
	// was sent yet).
	w.fleet.kill()
	addr := strings.TrimPrefix(w.fleetURL, "http://")
	w.fleetArgs = append(w.fleetArgs, "--tcos-cert", jw.tcos.dsCert)
	w.fleet = start(t, "fleet-tcos", append(w.fleetArgs, "--listen", addr, "--log-level", "warn")...)
	eventually(t, 20*time.Second, "fleet up again", func() error {
		if w.fleet.exited() {
			t.Fatalf("fleet exited: %v", w.fleet.err)
		}
		_, err := w.fleetStats()
		return err
	})

	// The DCC's threshold, set on the store before the router starts, as
	// the other end-to-end tests do.
	ctx := context.Background()
	det, err := anomaly.New(ctx, anomaly.Config{Store: w.db.Anomaly()})
	if err != nil {
		t.Fatal(err)
	}
	admin := anomaly.Actor{ID: "e2e-operator", Roles: []anomaly.Role{anomaly.RoleThresholdAdmin}}
	if _, err := det.SetThreshold(ctx, admin, anomaly.Threshold{ID: "dcc-4.1.1", Scope: anomaly.ScopeUserService, ServiceRef: "4.1.1",
		Limit: dccLimit4_1_1, Window: time.Hour}); err != nil {
		t.Fatal(err)
	}

	jw.r = w.startRouter(t, "router", "", "--tcos-key", jw.tcos.keyFiles["ds"], "--tcos-eui", euiTCoS.String())
	repoAddr := freeAddr(t)
	repoArgs := []string{"serve", "repository", "--data", w.data, "--listen", repoAddr, "--log-level", "warn"}
	if w.dsn != "" {
		repoArgs = append(repoArgs, "--store", w.dsn)
	}
	repo := start(t, "repository", repoArgs...)
	jw.repoURL = "http://" + repoAddr
	eventually(t, 20*time.Second, "repository up", func() error {
		if repo.exited() {
			t.Fatalf("repository exited: %v", repo.err)
		}
		res, err := http.Get(jw.repoURL + "/openapi.json")
		if err != nil {
			return err
		}
		res.Body.Close()
		return nil
	})
	rc, err := w.db.SMKI().CA(ctx, ca.NameDCCKIRoot)
	if err != nil {
		t.Fatal(err)
	}
	jw.rootPEM = filepath.Join(t.TempDir(), "dccki-root.pem")
	if err := os.WriteFile(jw.rootPEM, pemCert(rc.CertDER), 0o644); err != nil {
		t.Fatal(err)
	}
	return jw
}

// as returns the CLI's connection flags for p: the router, the
// repository, p's DCCKI certificate and the DCCKI root.
func (jw *journeyWorld) as(p *party) []string {
	return []string{"--router", jw.r.url, "--repository", jw.repoURL, "--cert", p.tlsCert, "--key", p.tlsKey, "--cacert", jw.rootPEM}
}

// operator returns the flags of the operator's registry commands.
func (jw *journeyWorld) operator() []string {
	out := []string{"--data", jw.data, "--actor", "e2e-operator"}
	if jw.dsn != "" {
		out = append(out, "--store", jw.dsn)
	}
	return out
}

// run is cli with the argument lists joined.
func run(t *testing.T, parts ...[]string) string {
	t.Helper()
	var args []string
	for _, p := range parts {
		args = append(args, p...)
	}
	return cli(t, args...)
}

// wantRefused runs the CLI and wants it to fail with the router's refusal
// code: the CLI prints a problem as "router: STATUS TITLE (CODE): DETAIL".
func wantRefused(t *testing.T, code string, parts ...[]string) {
	t.Helper()
	var args []string
	for _, p := range parts {
		args = append(args, p...)
	}
	out, err := cliErr(t, args...)
	if err == nil {
		t.Errorf("metertrust %s: succeeded (%q), want refused %s", strings.Join(args[:min(len(args), 4)], " "), strings.TrimSpace(out), code)
		return
	}
	if !strings.Contains(err.Error(), "("+code+")") {
		t.Errorf("metertrust %s: %v, want refused %s", strings.Join(args[:min(len(args), 4)], " "), err, code)
	}
}

// orgSerials returns p's organisation certificates' serials (hex) by
// usage, as the repository lists them.
func (jw *journeyWorld) orgSerials(t *testing.T, eui smki.EUI) map[string]string {
	t.Helper()
	certs, err := jw.db.SMKI().FindCertificates(context.Background(), store.CertQuery{EUI: eui.String(), Kind: store.KindOrg})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range certs {
		out[c.Usage] = fmt.Sprintf("%X", c.Serial)
	}
	return out
}

// display reads what meter eui displays, as its consumer would.
func (jw *journeyWorld) display(t *testing.T, eui smki.EUI) device.Display {
	t.Helper()
	var d device.Display
	res, err := http.Get(jw.fleetURL + "/v1/devices/" + eui.String() + "/display")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET display of %s: %s", eui, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

// delivery is a delivery as "user send --wait --json" and "thirdparty
// read --json" print it.
type delivery struct {
	Kind      string `json:"kind"`
	CommandID string `json:"commandId"`
	From      string `json:"from"`
	Detail    string `json:"detail"`
	Decrypted []any  `json:"decrypted"`
	OpenError string `json:"openError"`
}

func parseDelivery(t *testing.T, out string) delivery {
	t.Helper()
	var d delivery
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("delivery %q: %v", out, err)
	}
	return d
}

// consent is a consent record as the thirdparty commands print it.
type consent struct {
	ID           string   `json:"id"`
	Device       string   `json:"device"`
	Scope        []string `json:"scope"`
	State        string   `json:"state"`
	RevokedBy    string   `json:"revokedBy"`
	RevokeReason string   `json:"revokeReason"`
}

// TestJourneys drives issue 12's journeys, one world per backend (the two
// in parallel), in order on the same meters: consent (the CIN flow, reads
// under it, its refusals), the change of supplier (with every refusal of
// the request, then the old supplier refused and the new one executed),
// the consent surviving it, revocation by the third party and by an
// operator, and a user's own anomaly thresholds.
func TestJourneys(t *testing.T) {
	needBinary(t)
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			jw := newJourneyWorld(t, backend)
			t.Logf("%s: world up in %s", backend, time.Since(began).Round(time.Millisecond))
			var consentID string
			t.Run("consent", func(t *testing.T) { consentID = jw.consentJourney(t) })
			t.Run("change-of-supplier", jw.changeOfSupplierJourney)
			t.Run("consent-after-change", func(t *testing.T) { jw.consentAfterChange(t, consentID) })
			t.Run("thresholds", jw.thresholdsJourney)
			t.Logf("%s: journeys done in %s", backend, time.Since(began).Round(time.Millisecond))
		})
	}
}

// readPeriod is the --from and --to of a read of the period back to now.
func readPeriod(back time.Duration) []string {
	now := time.Now().UTC().Truncate(time.Minute)
	return []string{"--from", now.Add(-back).Format(time.RFC3339), "--to", now.Format(time.RFC3339)}
}

// getCIN has meter m display a CIN for the third party and reads it off
// the display.
func (jw *journeyWorld) getCIN(t *testing.T, m smki.EUI) string {
	t.Helper()
	id := strings.TrimSpace(run(t, []string{"thirdparty", "cin", m.String(), "--wait", "30s"}, jw.as(jw.thirdParty)))
	if id == "" {
		t.Fatal("thirdparty cin printed no command ID")
	}
	cin := jw.display(t, m).CIN
	if len(cin) != 4 {
		t.Fatalf("meter %s displays CIN %q", m, cin)
	}
	return cin
}

// consentJourney: a third party gets a CIN displayed, is refused a wrong
// one, claims consent with the right one, lists and shows it, reads the
// consented profile (decrypted with its key), and is refused a read
// reaching back beyond 13 months and one outside its scope. It returns the
// consent's ID.
func (jw *journeyWorld) consentJourney(t *testing.T) string {
	m := jw.meters[0]
	ou := jw.as(jw.thirdParty)

	// Before any consent: a read is refused.
	wantRefused(t, "not-owner", []string{"thirdparty", "read", "4.8.1", m.String()}, readPeriod(48*time.Hour), ou)
	// Only an other user asks for a CIN.
	wantRefused(t, "role-not-eligible", []string{"thirdparty", "cin", m.String()}, jw.as(jw.supplier))

	cin := jw.getCIN(t, m)
	n, _ := strconv.Atoi(cin)
	wrong := fmt.Sprintf("%04d", (n+1)%10000)
	wantRefused(t, "not-owner", []string{"thirdparty", "consent-claim", m.String(), wrong, "--scope", "4.8.1", "--days", "30"}, ou)
	out := run(t, []string{"thirdparty", "consent-claim", m.String(), cin, "--scope", "4.8.1", "--days", "30", "--json"}, ou)
	var claimed []consent
	if err := json.Unmarshal([]byte(out), &claimed); err != nil || len(claimed) != 1 || claimed[0].State != "live" ||
		claimed[0].Device != m.String() || len(claimed[0].Scope) != 1 || claimed[0].Scope[0] != "4.8.1" {
		t.Fatalf("consent-claim --json: %q (%v)", out, err)
	}
	id := claimed[0].ID
	// A CIN is good once: its challenge is gone.
	wantRefused(t, "not-found", []string{"thirdparty", "consent-claim", m.String(), cin, "--scope", "4.8.1"}, ou)

	var listed []consent
	out = run(t, []string{"thirdparty", "consents", "--live", "--device", m.String(), "--json"}, ou)
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 1 || listed[0].ID != id {
		t.Errorf("thirdparty consents --live: %q (%v), want %s", out, err, id)
	}
	var shown consent
	out = run(t, []string{"thirdparty", "consent", id}, ou)
	if err := json.Unmarshal([]byte(out), &shown); err != nil || shown.ID != id || shown.State != "live" {
		t.Errorf("thirdparty consent %s: %q (%v)", id, out, err)
	}
	// Another user does not see it.
	wantRefused(t, "role-not-eligible", []string{"thirdparty", "consent", id}, jw.as(jw.supplier))
	wantRefused(t, "not-found", []string{"thirdparty", "consent", "no-such-consent"}, ou)

	out = run(t, []string{"thirdparty", "read", "4.8.1", m.String(), "--json", "--wait", "30s", "--decrypt", jw.thirdParty.keyFiles["ka"]},
		readPeriod(48*time.Hour), ou)
	if d := parseDelivery(t, out); d.Kind != "response" || d.From != m.String() || d.OpenError != "" || len(d.Decrypted) == 0 {
		t.Errorf("thirdparty read 4.8.1: %q, want the response, checked and decrypted", out)
	}
	// Fourteen months back: beyond the 13-month data period.
	wantRefused(t, "consent-period", []string{"thirdparty", "read", "4.8.1", m.String()}, readPeriod(14*31*24*time.Hour), ou)
	// Outside the consent's scope.
	wantRefused(t, "not-owner", []string{"user", "send", "4.17", m.String(), "days=7"}, ou)
	return id
}

// changeOfSupplierJourney: the registration data name the incoming
// supplier; every refusal of its request; the change applied; the old
// supplier refused and the new one's disconnection executed.
func (jw *journeyWorld) changeOfSupplierJourney(t *testing.T) {
	m := jw.meters[0]
	s2 := jw.as(jw.supplier2)
	own := jw.orgSerials(t, euiSupplier2)
	old := jw.orgSerials(t, jw.supplier.eui)
	if own["ds"] == "" || own["ka"] == "" || own["pp-ka"] == "" || old["ds"] == "" {
		t.Fatalf("serials: new supplier %v, old %v", own, old)
	}
	change := func(target smki.EUI, ds, ka, ppka string) []string {
		return []string{"user", "change-supplier", target.String(), "--ds", ds, "--ka", ka, "--pp-ka", ppka}
	}
	ownCerts := func(target smki.EUI) []string { return change(target, own["ds"], own["ka"], own["pp-ka"]) }

	// No registration data yet.
	wantRefused(t, "not-owner", ownCerts(m), s2)
	run(t, []string{"router", "supply-register", "--device", m.String(), "--supplier", euiSupplier2.String()}, jw.operator())
	// The registration data name another supplier than the caller.
	wantRefused(t, "not-owner", change(m, old["ds"], old["ka"], old["ds"]), jw.as(jw.supplier))
	// Certificates of another organisation, or not in the repository.
	wantRefused(t, "certificate-path", change(m, old["ds"], own["ka"], own["pp-ka"]), s2)
	wantRefused(t, "certificate-path", change(m, own["ds"], "DEADBEEF01", own["pp-ka"]), s2)
	// A key-agreement certificate where the digital-signing one goes.
	wantRefused(t, "certificate-path", change(m, own["ka"], own["ka"], own["pp-ka"]), s2)
	wantRefused(t, "bad-request", change(m, "not-hex", own["ka"], own["pp-ka"]), s2)
	// A device in the registration data but not in the registry.
	run(t, []string{"router", "supply-register", "--device", euiUnregistered.String(), "--supplier", euiSupplier2.String()}, jw.operator())
	wantRefused(t, "unknown-device", ownCerts(euiUnregistered), s2)

	// A second change while one is open: on a meter the router knows and
	// the fleet does not serve, whose change cannot settle.
	jw.registerOffline(t)
	run(t, []string{"router", "supply-register", "--device", euiOffline.String(), "--supplier", euiSupplier2.String()}, jw.operator())
	out := run(t, ownCerts(euiOffline), s2)
	var open struct{ ID, State string }
	if err := json.Unmarshal([]byte(out), &open); err != nil || open.ID == "" || (open.State != "pending" && open.State != "unsettled") {
		t.Fatalf("change-supplier %s: %q (%v), want it open", euiOffline, out, err)
	}
	wantRefused(t, "change-pending", ownCerts(euiOffline), s2)
	// While it is open, the old supplier's critical commands wait.
	wantRefused(t, "ownership-unsettled", []string{"user", "send", "7.2", euiOffline.String(), "--signer", jw.supplier.keyFiles["ds"]},
		jw.as(jw.supplier))

	// The change itself, applied on the meter's answer.
	out = run(t, ownCerts(m), []string{"--wait", "60s"}, s2)
	var ch struct {
		State, NewOwner, OldOwner, Detail string
	}
	if err := json.Unmarshal([]byte(out), &ch); err != nil || ch.State != "applied" || ch.NewOwner != euiSupplier2.String() ||
		ch.OldOwner != jw.supplier.eui.String() {
		t.Fatalf("change-supplier --wait: %q (%v), want applied from %s to %s", out, err, jw.supplier.eui, euiSupplier2)
	}
	// The caller now supplies the meter.
	wantRefused(t, "conflict", ownCerts(m), s2)
	// The old supplier's disconnection: refused by the router.
	wantRefused(t, "not-owner", []string{"user", "send", "7.2", m.String(), "--signer", jw.supplier.keyFiles["ds"]}, jw.as(jw.supplier))
	// The new supplier's: signed with its key, executed, the response
	// checked.
	out = run(t, []string{"user", "send", "7.2", m.String(), "--signer", jw.supplier2.keyFiles["ds"], "--wait", "30s", "--json",
		"--decrypt", jw.supplier2.keyFiles["ka"]}, s2)
	if d := parseDelivery(t, out); d.Kind != "response" || d.From != m.String() || d.OpenError != "" {
		t.Errorf("the new supplier's 7.2: %q, want the meter's response, checked", out)
	}

	// Every refusal audited with its code; only the two changes asked
	// for were opened (refusals left nothing behind), and one applied.
	a := jw.audit(t)
	for code, want := range map[string]int{"not-owner": 2, "certificate-path": 3, "bad-request": 1, "unknown-device": 1,
		"change-pending": 1, "conflict": 1} {
		if got := a["router.change-of-supplier.refused "+code]; got != want {
			t.Errorf("%d change-of-supplier refusals %s audited, want %d", got, code, want)
		}
	}
	if a["router.device.credentials.change attempt"] != 2 || a["router.device.credentials.change success"] != 1 {
		t.Errorf("changes audited: %d opened, %d applied; want 2 and 1", a["router.device.credentials.change attempt"],
			a["router.device.credentials.change success"])
	}
	if a["router.command.refused ownership-unsettled"] != 1 {
		t.Errorf("%d ownership-unsettled refusals audited, want 1", a["router.command.refused ownership-unsettled"])
	}
}

// registerOffline issues euiOffline's device certificates in a batch of
// its own and registers it with the router ("router device-register"),
// supplied by the world's supplier; the fleet does not serve it.
func (jw *journeyWorld) registerOffline(t *testing.T) {
	t.Helper()
	data := []string{"--data", jw.data, "--actor", "e2e"}
	run(t, []string{"ca", "batch", "open", "--name", "batch-offline", "--quota", "2"}, data)
	run(t, []string{"ca", "issue", "devices", "--batch", "batch-offline", "--count", "1", "--out", filepath.Join(t.TempDir(), "offline"),
		"--first-eui", euiOffline.String()}, data)
	run(t, []string{"router", "device-register", "--eui", euiOffline.String(), "--supplier", jw.supplier.eui.String(),
		"--network-operator", jw.netop.eui.String()}, jw.operator())
}

// consentAfterChange: the consent outlives the change of supplier; the
// third party revokes it and is refused; a second consent is revoked by an
// operator on the consumer's behalf, with the reason on record.
func (jw *journeyWorld) consentAfterChange(t *testing.T, id string) {
	if id == "" {
		t.Skip("no consent from the consent journey")
	}
	m := jw.meters[0]
	ou := jw.as(jw.thirdParty)
	read := []string{"thirdparty", "read", "4.8.1", m.String(), "--json", "--wait", "30s", "--decrypt", jw.thirdParty.keyFiles["ka"]}
	out := run(t, read, readPeriod(24*time.Hour), ou)
	if d := parseDelivery(t, out); d.Kind != "response" || d.OpenError != "" || len(d.Decrypted) == 0 {
		t.Errorf("a read under consent after the change of supplier: %q", out)
	}

	out = run(t, []string{"thirdparty", "consent-revoke", id, "--reason", "the consumer withdrew", "--json"}, ou)
	var revoked []consent
	if err := json.Unmarshal([]byte(out), &revoked); err != nil || len(revoked) != 1 || revoked[0].State != "revoked" ||
		revoked[0].RevokeReason != "the consumer withdrew" {
		t.Errorf("consent-revoke: %q (%v)", out, err)
	}
	wantRefused(t, "not-owner", read, readPeriod(24*time.Hour), ou)

	// The operator's revocation, on the consumer's request.
	cin := jw.getCIN(t, m)
	out = run(t, []string{"thirdparty", "consent-claim", m.String(), cin, "--scope", "4.8.1,4.17", "--json"}, ou)
	var second []consent
	if err := json.Unmarshal([]byte(out), &second); err != nil || len(second) != 1 || second[0].State != "live" {
		t.Fatalf("second consent-claim: %q (%v)", out, err)
	}
	run(t, []string{"router", "consent", "revoke", "--id", second[0].ID, "--reason", "consumer's call, ref 4711"}, jw.operator())
	var shown consent
	out = run(t, []string{"thirdparty", "consent", second[0].ID}, ou)
	if err := json.Unmarshal([]byte(out), &shown); err != nil || shown.State != "revoked" || shown.RevokedBy != "e2e-operator" ||
		shown.RevokeReason != "consumer's call, ref 4711" {
		t.Errorf("the operator-revoked consent: %q (%v)", out, err)
	}
	wantRefused(t, "not-owner", read, readPeriod(24*time.Hour), ou)
	var all []map[string]any
	out = run(t, []string{"router", "consent", "list", "--device", m.String(), "--json"}, jw.operator())
	if err := json.Unmarshal([]byte(out), &all); err != nil || len(all) != 2 {
		t.Errorf("router consent list: %q (%v), want both consents", out, err)
	}
	wantRefused(t, "conflict", []string{"thirdparty", "consent-revoke", id, "--reason", "again"}, ou)

	// Every consent, revocation and refusal audited.
	wantAudited(t, jw.audit(t), map[string]int{
		"router.consent.grant success": 2, "router.consent.revoke success": 2, "router.consent.revoke refused": 1,
		"router.consent.refused not-owner": 1, // the wrong CIN
		"router.consent.refused not-found": 2, "router.consent.refused role-not-eligible": 2,
		"router.service-request.refused consent-period": 1,
	})
}

// wantAudited checks counts of jw.audit's.
func wantAudited(t *testing.T, got, want map[string]int) {
	t.Helper()
	for k, n := range want {
		if got[k] != n {
			t.Errorf("audit log: %d %q, want %d", got[k], k, n)
		}
	}
}

// thresholdsJourney: the supplier sets a threshold stricter than the
// DCC's, is refused a looser one, lists them, is quarantined over its own
// threshold, and deletes it.
func (jw *journeyWorld) thresholdsJourney(t *testing.T) {
	sup := jw.as(jw.supplier)
	type listing struct {
		Own []anomaly.Threshold `json:"own"`
		DCC []anomaly.Threshold `json:"dcc"`
	}
	list := func() listing {
		var l listing
		out := run(t, []string{"user", "thresholds", "list", "--json"}, sup)
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("thresholds list --json: %q: %v", out, err)
		}
		return l
	}
	if l := list(); len(l.Own) != 0 || len(l.DCC) == 0 {
		t.Fatalf("thresholds before: %+v, want the DCC's only", l)
	}
	const limit = 2
	out := run(t, []string{"user", "thresholds", "set", "mine", "--scope", "user-srv", "--service-ref", "4.1.1", "--limit", strconv.Itoa(limit),
		"--window", "1h", "--json"}, sup)
	var set anomaly.Threshold
	if err := json.Unmarshal([]byte(out), &set); err != nil || set.ID != "mine" || set.Limit != limit || set.User != jw.supplier.eui {
		t.Fatalf("thresholds set: %q (%v)", out, err)
	}
	wantRefused(t, "not-stricter", []string{"user", "thresholds", "set", "looser", "--service-ref", "4.1.1", "--limit",
		strconv.Itoa(dccLimit4_1_1 + 1), "--window", "1h"}, sup)
	wantRefused(t, "not-stricter", []string{"user", "thresholds", "set", "shorter", "--service-ref", "4.1.1", "--limit", "1",
		"--window", "1m"}, sup)
	if l := list(); len(l.Own) != 1 || l.Own[0].ID != "mine" {
		t.Errorf("thresholds after set: %+v", l)
	}

	// A burst of register reads of the meter the supplier still supplies
	// (the first went to the new supplier): the first limit pass, the
	// next is quarantined by the supplier's own threshold (the DCC's
	// allows 5).
	for range limit {
		run(t, []string{"user", "send", "4.1.1", jw.meters[1].String()}, sup)
	}
	wantRefused(t, "quarantined", []string{"user", "send", "4.1.1", jw.meters[1].String()}, sup)

	run(t, []string{"user", "thresholds", "delete", "mine", "--reason", "burst test over"}, sup)
	if l := list(); len(l.Own) != 0 {
		t.Errorf("thresholds after delete: %+v", l)
	}
	wantRefused(t, "not-found", []string{"user", "thresholds", "delete", "mine"}, sup)
	// Every change and every refusal audited.
	wantAudited(t, jw.audit(t), map[string]int{
		"anomaly.threshold.set success": 2, // the DCC's and the supplier's
		"anomaly.threshold.set refused": 2, "anomaly.threshold.delete success": 1, "anomaly.threshold.delete refused": 1,
		"anomaly.quarantine success": 1, "router.command.quarantined quarantined": 1,
	})
}

// auditEntry is an audit log entry as "metertrust audit list --json"
// prints it.
type auditEntry struct {
	Action  string         `json:"action"`
	Outcome string         `json:"outcome"`
	Details map[string]any `json:"details"`
}

// audit reads the whole audit log through the CLI and counts its entries
// by action and outcome, and refusals also by action and code
// ("router.change-of-supplier.refused not-owner").
func (jw *journeyWorld) audit(t *testing.T) map[string]int {
	t.Helper()
	args := []string{"audit", "list", "--json", "--data", jw.data}
	if jw.dsn != "" {
		args = append(args, "--store", jw.dsn)
	}
	out := cli(t, args...)
	n := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e auditEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit list --json: %q: %v", line, err)
		}
		n[e.Action+" "+e.Outcome]++
		if k, ok := e.Details["kind"].(string); ok && e.Outcome == "refused" {
			n[e.Action+" "+k]++
		}
	}
	return n
}
