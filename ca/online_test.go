package ca

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRefreshCRLs checks that the refresher signs a CRL for each online CA
// that has none or whose CRL is within the margin of its nextUpdate, and
// leaves roots and closed batches alone.
func TestRefreshCRLs(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	if _, err := e.a.OpenBatch(ctx, "C1", 5); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.RefreshCRLs(ctx, 7*24*time.Hour); !errors.Is(err, ErrRequest) {
		t.Errorf("margin of the whole validity: %v, want ErrRequest", err)
	}
	// The ceremony and the batch opening signed their first CRLs.
	if n, err := e.a.RefreshCRLs(ctx, 84*time.Hour); err != nil || n != 0 {
		t.Fatalf("RefreshCRLs at once = %d, %v; want 0", n, err)
	}
	first, err := e.a.LatestCRL(ctx, NameOCA)
	if err != nil {
		t.Fatal(err)
	}
	rootCRL, err := e.a.LatestCRL(ctx, NameRoot)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.t = e.clock.t.Add(4 * 24 * time.Hour)
	if n, err := e.a.RefreshCRLs(ctx, 84*time.Hour); err != nil || n != 3 {
		t.Errorf("RefreshCRLs four days on = %d, %v; want 3 (OCA, batch, DCCKI TLS CA)", n, err)
	}
	if n, err := e.a.RefreshCRLs(ctx, 84*time.Hour); err != nil || n != 0 {
		t.Errorf("again = %d, %v; want 0", n, err)
	}
	if c, err := e.a.LatestCRL(ctx, NameRoot); err != nil || c.Number != rootCRL.Number {
		t.Errorf("the root's CRL changed: %d, %v", c.Number, err)
	}
	if err := e.a.CloseBatch(ctx, "C1", "test"); err != nil {
		t.Fatal(err)
	}
	e.clock.t = e.clock.t.Add(4 * 24 * time.Hour)
	if n, err := e.a.RefreshCRLs(ctx, 84*time.Hour); err != nil || n != 2 {
		t.Errorf("RefreshCRLs after closing = %d, %v; want 2 (the batch is closed)", n, err)
	}
	c, err := e.a.LatestCRL(ctx, NameOCA)
	if err != nil || c.Number != first.Number+2 || !c.ThisUpdate.Equal(e.clock.t) {
		t.Errorf("OCA's CRL %d from %s, %v; want %d from now", c.Number, c.ThisUpdate, err, first.Number+2)
	}
	// Refresh does both: nothing due now.
	if o, n, err := e.a.Refresh(ctx); err != nil || o != 0 || n != 0 {
		t.Errorf("Refresh = %d, %d, %v; want nothing to do", o, n, err)
	}
}

// TestLoadOnlineKeys checks that the online CAs' keys are loaded and the
// roots' are not.
func TestLoadOnlineKeys(t *testing.T) {
	e := newTestEnv(t)
	e.init(t)
	ctx := context.Background()
	loaded, err := e.a.LoadOnlineKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, k := range loaded {
		got[k.CA] = true
	}
	if len(got) != 2 || !got[NameOCA] || !got[NameDCCKITLS] {
		t.Errorf("loaded %v, want the OCA and the DCCKI TLS CA only", loaded)
	}
}

func TestParseReasonCodes(t *testing.T) {
	for in, want := range map[string]int{"1": 1, "keycompromise": 1, "0": 0, "9": 9, "privilegeWithdrawn": 9} {
		if got, err := ParseReason(in); err != nil || got != want {
			t.Errorf("ParseReason(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"6", "8", "10", "aACompromise", "7", "99", "-1", "", "hold\n"} {
		if _, err := ParseReason(in); !errors.Is(err, ErrRequest) {
			t.Errorf("ParseReason(%q) = %v, want ErrRequest", in, err)
		}
	}
}
