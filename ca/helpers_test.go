package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"log/slog"
	"testing"
	"time"

	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// fakeClock is a settable clock for tests.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

// testEnv is an Authority on softkms files and SQLite in a TempDir.
type testEnv struct {
	a     *Authority
	db    *store.DB
	keys  *custody.Custody
	clock *fakeClock
	dir   string
}

func newTestEnv(t testing.TB, opts ...func(*Config)) *testEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.OpenDataDir(ctx, dir)
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	keys, err := custody.Open(ctx, "", dir, rand.Reader)
	if err != nil {
		t.Fatalf("opening custody: %v", err)
	}
	t.Cleanup(func() { keys.Close() })
	return newEnvWith(t, db, keys, dir, opts...)
}

func newEnvWith(t testing.TB, db *store.DB, keys *custody.Custody, dir string, opts ...func(*Config)) *testEnv {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	cfg := Config{Store: db.SMKI(), Keys: keys, Now: clock.Now, Actor: "test", Logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &testEnv{a: a, db: db, keys: keys, clock: clock, dir: dir}
}

func (e *testEnv) init(t testing.TB) {
	t.Helper()
	if _, err := e.a.Init(context.Background(), InitRequest{}); err != nil {
		t.Fatalf("Init: %v", err)
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func orgCSR(t testing.TB, k *ecdsa.PrivateKey, role smki.Role, eui smki.EUI, name string, ku x509.KeyUsage) []byte {
	t.Helper()
	der, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindOrganisation, CommonName: name, Role: role, EUI: eui, KeyUsage: ku}, k)
	if err != nil {
		t.Fatalf("CreateCSR: %v", err)
	}
	return der
}

func deviceCSR(t testing.TB, k *ecdsa.PrivateKey, eui smki.EUI, ku x509.KeyUsage) []byte {
	t.Helper()
	der, err := smki.CreateCSR(rand.Reader, &smki.CSRTemplate{Kind: smki.KindDevice, EUI: eui, KeyUsage: ku, HWType: smki.OIDHWTypeReferenceMeter}, k)
	if err != nil {
		t.Fatalf("CreateCSR: %v", err)
	}
	return der
}
