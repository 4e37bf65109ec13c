package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/inproc"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// TestThirdPartyCommands reads a meter under consent with metertrust
// thirdparty read (decrypted with the third party's key), is refused a
// read reaching back more than 13 months, lists and revokes the consent;
// and sets, lists and deletes a supplier's own threshold with metertrust
// user thresholds.
func TestThirdPartyCommands(t *testing.T) {
	ctx := context.Background()
	sys, err := inproc.Start(ctx, inproc.Config{Meters: 1, RouterAddr: "127.0.0.1:0", RepositoryAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	tp := sys.Party(inproc.PartyThirdParty)
	meter := sys.Meters[0]
	now := time.Now().UTC()
	if err := sys.DB.Router().PutConsent(ctx, store.Consent{ID: "C-cli", Device: meter.String(), User: tp.EUI.String(),
		Scope: []string{"4.8.1"}, NotBefore: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour), Evidence: "CIN read back (test)",
		CreatedBy: "test", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	as := func(p *inproc.Party, args ...string) []string {
		return append(args, "--router", sys.RouterURL, "--cert", p.TLSCertFile, "--key", p.TLSKeyFile, "--cacert", sys.DCCKIRootFile)
	}
	ka := filepath.Join(sys.Dir, "parties", tp.EUI.String()+"-ka.key")
	out := mustRun(t, as(tp, "thirdparty", "read", "4.8.1", meter.String(), "--from", now.Add(-2*time.Hour).Format(time.RFC3339),
		"--to", now.Format(time.RFC3339), "--decrypt", ka, "--repository", sys.RepositoryURL, "--json")...)
	var d map[string]any
	if err := json.Unmarshal([]byte(out), &d); err != nil || d["kind"] != "response" || d["decrypted"] == nil {
		t.Fatalf("thirdparty read printed %s (%v)", out, err)
	}
	if out, err := run(t, as(tp, "thirdparty", "read", "4.8.1", meter.String(), "--from", now.AddDate(-1, -2, 0).Format(time.DateOnly),
		"--to", now.AddDate(-1, -1, 0).Format(time.DateOnly))...); err == nil || !strings.Contains(err.Error(), "consent-period") {
		t.Fatalf("a read before the 13-month data period: %v\n%s", err, out)
	}
	if out := mustRun(t, as(tp, "thirdparty", "consents", "--live")...); !strings.Contains(out, "C-cli") || !strings.Contains(out, "live") {
		t.Fatalf("thirdparty consents printed %s", out)
	}
	if out := mustRun(t, as(tp, "thirdparty", "consent-revoke", "C-cli", "--reason", "the consumer withdrew")...); !strings.Contains(out, "revoked") {
		t.Fatalf("thirdparty consent-revoke printed %s", out)
	}
	if c, err := sys.DB.Router().Consent(ctx, "C-cli"); err != nil || c.RevokeReason != "the consumer withdrew" || !strings.HasPrefix(c.RevokedBy, tp.EUI.String()) {
		t.Fatalf("revoked consent %+v, %v", c, err)
	}

	sup := sys.Party(inproc.PartySupplier)
	mustRun(t, as(sup, "user", "thresholds", "set", "mine", "--service-ref", "4.1.1", "--limit", "5", "--window", "1h")...)
	out = mustRun(t, as(sup, "user", "thresholds", "list", "--json")...)
	var list struct{ Own []map[string]any }
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Own) != 1 || list.Own[0]["id"] != "mine" {
		t.Fatalf("user thresholds list printed %s (%v)", out, err)
	}
	mustRun(t, as(sup, "user", "thresholds", "delete", "mine", "--reason", "test done")...)
}

// TestRouterConsentCommands grants, lists, shows and revokes a consent as
// an operator does on the store: the revocation records the operator and
// the consumer's reason.
func TestRouterConsentCommands(t *testing.T) {
	dir := t.TempDir()
	op := []string{"--data", dir, "--actor", "alice"}
	mustRun(t, append([]string{"router", "consent", "grant", "--id", "C-op", "--device", "AAAAAAAAAAAAAAAA", "--user", "4444444444444444",
		"--scope", "4.8.1", "--evidence", "signed paper form 123"}, op...)...)
	if out := mustRun(t, append([]string{"router", "consent", "list", "--user", "4444444444444444", "--live"}, op...)...); !strings.Contains(out, "C-op") {
		t.Fatalf("router consent list printed %s", out)
	}
	mustRun(t, append([]string{"router", "consent", "revoke", "--id", "C-op", "--reason", "consumer's request by phone, ticket 42"}, op...)...)
	out := mustRun(t, append([]string{"router", "consent", "show", "--id", "C-op"}, op...)...)
	var c map[string]any
	if err := json.Unmarshal([]byte(out), &c); err != nil || c["revokedBy"] != "alice" || c["revokeReason"] != "consumer's request by phone, ticket 42" || c["live"] != false {
		t.Fatalf("router consent show printed %s (%v)", out, err)
	}
	if out := mustRun(t, append([]string{"router", "consent", "list", "--live", "--json"}, op...)...); strings.TrimSpace(out) != "[]" {
		t.Fatalf("live consents after revocation: %s", out)
	}
}

// TestRouterSupplyRegister records the registration data of a change of
// supplier as an operator does on the store, audited.
func TestRouterSupplyRegister(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, "router", "supply-register", "--data", dir, "--actor", "alice", "--device", "AAAAAAAAAAAAAAAA",
		"--supplier", "90B3D51F30040000", "--from", "2026-12-01T00:00:00Z")
	ctx := context.Background()
	db, err := openStore(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := db.Router().RegisteredSupplier(ctx, smki.MustParseEUI("AAAAAAAAAAAAAAAA"), time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC))
	if err != nil || r.IncomingSupplier != "90B3D51F30040000" || r.CreatedBy != "alice" {
		t.Fatalf("registration %+v, %v", r, err)
	}
	if _, err := run(t, "router", "supply-register", "--data", dir, "--actor", "alice", "--device", "AAAAAAAAAAAAAAAA",
		"--supplier", "90B3D51F30040000", "--from", "2026-12-01T00:00:00Z"); err == nil {
		t.Error("the same registration twice was accepted")
	}
}

// TestThirdPartyGasRead reads a gas meter under consent with metertrust
// thirdparty read --fuel gas: six days of half hours, more than one GCS17
// response carries, in two reads whose decrypted intervals follow each
// other; then the daily log (GCS61) by dates.
func TestThirdPartyGasRead(t *testing.T) {
	ctx := context.Background()
	sys, err := inproc.Start(ctx, inproc.Config{Meters: 1, MeterKind: device.Gas, RouterAddr: "127.0.0.1:0", RepositoryAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Close() })
	tp := sys.Party(inproc.PartyThirdParty)
	meter := sys.Meters[0]
	now := time.Now().UTC()
	if err := sys.DB.Router().PutConsent(ctx, store.Consent{ID: "C-gas", Device: meter.String(), User: tp.EUI.String(),
		Scope: []string{"4.8.1", "4.17"}, NotBefore: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour), Evidence: "CIN read back (test)",
		CreatedBy: "test", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	ka := filepath.Join(sys.Dir, "parties", tp.EUI.String()+"-ka.key")
	read := func(args ...string) []map[string]any {
		t.Helper()
		args = append(append([]string{"thirdparty", "read"}, args...), "--fuel", "gas", "--decrypt", ka, "--repository", sys.RepositoryURL, "--json",
			"--router", sys.RouterURL, "--cert", tp.TLSCertFile, "--key", tp.TLSKeyFile, "--cacert", sys.DCCKIRootFile)
		out := mustRun(t, args...)
		var ds []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var d map[string]any
			if err := json.Unmarshal([]byte(line), &d); err != nil || d["kind"] != "response" || d["decrypted"] == nil {
				t.Fatalf("thirdparty read printed %s (%v)", out, err)
			}
			ds = append(ds, d)
		}
		return ds
	}
	to := now.Truncate(30 * time.Minute)
	from := to.AddDate(0, 0, -6)
	ds := read("4.8.1", meter.String(), "--from", from.Format(time.RFC3339), "--to", to.Format(time.RFC3339))
	if len(ds) != 2 {
		t.Fatalf("%d reads for 288 half hours, want 2 (255 and 33)", len(ds))
	}
	next := from
	for _, d := range ds {
		rd := d["readings"].(map[string]any)
		if rd["useCase"] != "GCS17" || rd["period"] != "30m0s" {
			t.Fatalf("readings %v", rd)
		}
		for _, iv := range rd["intervals"].([]any) {
			at, _ := time.Parse(time.RFC3339, iv.(map[string]any)["start"].(string))
			if !at.Equal(next) {
				t.Fatalf("interval at %s, want %s", at, next)
			}
			next = next.Add(30 * time.Minute)
		}
	}
	if !next.Equal(to) {
		t.Fatalf("the half hours end at %s, want %s", next, to)
	}
	today := now.Truncate(24 * time.Hour)
	ds = read("4.17", meter.String(), "--from", today.AddDate(0, 0, -2).Format(time.DateOnly), "--to", today.Format(time.DateOnly))
	if rd := ds[0]["readings"].(map[string]any); rd["useCase"] != "GCS61" || len(rd["intervals"].([]any)) != 2 {
		t.Fatalf("daily log readings %v", rd)
	}
}
