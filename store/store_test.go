package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 is the tests' clock: a fixed instant with sub-microsecond digits, to
// check that times come back UTC at microsecond precision.
var t0 = time.Date(2026, 11, 23, 18, 0, 0, 123456789, time.FixedZone("X", 3600))

func testCA(name, kind string, quota int64) CA {
	return CA{
		Name: name, Kind: kind, Parent: "root", CertDER: []byte("cert:" + name),
		KeyURI: "softkms:path=/keys/" + name + ".key", Quota: quota, CreatedAt: t0,
	}
}

func testCert(ca string, serial uint32, eui string, usage string) Certificate {
	return Certificate{
		CA: ca, Serial: []byte{0x01, byte(serial >> 24), byte(serial >> 16), byte(serial >> 8), byte(serial)},
		Kind: KindDevice, EUI: eui, Role: -1, Usage: usage,
		NotBefore: t0, NotAfter: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		DER: []byte(fmt.Sprintf("der:%s:%d", ca, serial)),
	}
}

func mustCreateCA(t *testing.T, db *DB, cas ...CA) {
	t.Helper()
	for _, c := range cas {
		if err := db.SMKI().CreateCA(context.Background(), c); err != nil {
			t.Fatalf("CreateCA(%s): %v", c.Name, err)
		}
	}
}

func TestParseDSN(t *testing.T) {
	tests := []struct {
		dsn         string
		wantDialect string
		wantTarget  string
		wantErr     error
	}{
		{"postgres://u@h/db?sslmode=disable", DialectPostgres, "postgres://u@h/db?sslmode=disable", nil},
		{"postgresql://u@h/db", DialectPostgres, "postgresql://u@h/db", nil},
		{"sqlite:/var/lib/mt/x.db", DialectSQLite, "/var/lib/mt/x.db", nil},
		{"sqlite:///var/lib/mt/x.db", DialectSQLite, "/var/lib/mt/x.db", nil},
		{"sqlite:rel/x.db", DialectSQLite, "rel/x.db", nil},
		{"/data/metertrust.db", DialectSQLite, "/data/metertrust.db", nil},
		{"metertrust.db", DialectSQLite, "metertrust.db", nil},
		{"", "", "", ErrInvalid},
		{"  ", "", "", ErrInvalid},
		{"sqlite:", "", "", ErrInvalid},
		{"mysql://u@h/db", "", "", ErrInvalid},
		{"/data/x.db?_pragma=foo", "", "", ErrInvalid},
		{":memory:", "", "", ErrInvalid},
		{"file:x.db", "", "", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			d, target, err := parseDSN(tt.dsn)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("parseDSN(%q) error = %v, want %v", tt.dsn, err, tt.wantErr)
			}
			if d != tt.wantDialect || target != tt.wantTarget {
				t.Errorf("parseDSN(%q) = %q, %q, want %q, %q", tt.dsn, d, target, tt.wantDialect, tt.wantTarget)
			}
		})
	}
}

func TestOpenDataDir(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	db, err := OpenDataDir(ctx, dir)
	if err != nil {
		t.Fatalf("OpenDataDir: %v", err)
	}
	if got := db.Dialect(); got != DialectSQLite {
		t.Errorf("Dialect() = %q, want %q", got, DialectSQLite)
	}
	mustCreateCA(t, db, testCA("root", CAKindRoot, 0))
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for path, want := range map[string]uint32{dir: 0o700, filepath.Join(dir, DataFile): 0o600} {
		fi, err := statMode(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi != want {
			t.Errorf("mode of %s = %o, want %o", path, fi, want)
		}
	}
	// Reopening applies no migration twice and keeps the data.
	db, err = OpenDataDir(ctx, dir)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	defer db.Close()
	if _, err := db.SMKI().CA(ctx, "root"); err != nil {
		t.Errorf("CA(root) after reopening: %v", err)
	}
	if _, err := OpenDataDir(ctx, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("OpenDataDir(\"\") error = %v, want ErrInvalid", err)
	}
}

func TestDialect(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			db := b.newOpener(t)(t)
			if got := db.Dialect(); got != b.name {
				t.Errorf("Dialect() = %q, want %q", got, b.name)
			}
		})
	}
}

func TestMigrationsConcurrent(t *testing.T) {
	// Several handles opening one empty database at once: each migration is
	// applied exactly once and every Open succeeds.
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			open := b.newOpener(t)
			var wg sync.WaitGroup
			dbs := make([]*DB, 4)
			for i := range dbs {
				wg.Go(func() { dbs[i] = open(t) })
			}
			wg.Wait()
			var n int
			if err := dbs[0].read().queryRow(context.Background(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			ms, _ := loadMigrations(b.name)
			if n != len(ms) {
				t.Errorf("schema_migrations has %d rows, want %d", n, len(ms))
			}
		})
	}
}

func TestCA(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		root := testCA("root", CAKindRoot, 0)
		root.Parent = ""
		mustCreateCA(t, db, root, testCA("oca", CAKindOCA, 0), testCA("E357", CAKindDCA, 100))

		t.Run("create", func(t *testing.T) {
			tests := []struct {
				name    string
				ca      CA
				wantErr error
			}{
				{"duplicate", testCA("oca", CAKindOCA, 0), ErrExists},
				{"empty name", testCA("", CAKindOCA, 0), ErrInvalid},
				{"bad name", testCA("a b", CAKindOCA, 0), ErrInvalid},
				{"bad kind", testCA("x1", "Root CA", 0), ErrInvalid},
				{"no cert", func() CA { c := testCA("x2", CAKindDCA, 1); c.CertDER = nil; return c }(), ErrInvalid},
				{"negative quota", testCA("x3", CAKindDCA, -1), ErrInvalid},
				{"issued over quota", func() CA { c := testCA("x4", CAKindDCA, 1); c.Issued = 2; return c }(), ErrInvalid},
				{"bad state", func() CA { c := testCA("x5", CAKindDCA, 1); c.State = "open"; return c }(), ErrInvalid},
				{"no time", func() CA { c := testCA("x6", CAKindDCA, 1); c.CreatedAt = time.Time{}; return c }(), ErrInvalid},
				{"closed without time", func() CA { c := testCA("x7", CAKindDCA, 1); c.State = CAStateClosed; return c }(), ErrInvalid},
				{"rekey purpose on an OCA", func() CA { c := testCA("x9", CAKindOCA, 0); c.Purpose = CAPurposeRekey; return c }(), ErrInvalid},
				{"unknown purpose", func() CA { c := testCA("x10", CAKindDCA, 1); c.Purpose = "spare"; return c }(), ErrInvalid},
				{"rekey batch", func() CA { c := testCA("x11", CAKindDCA, 1); c.Purpose = CAPurposeRekey; return c }(), nil},
				{"closed", func() CA {
					c := testCA("x8", CAKindDCA, 1)
					c.State, c.ClosedAt, c.KeyURI = CAStateClosed, t0.Add(time.Hour), ""
					return c
				}(), nil},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					if err := db.SMKI().CreateCA(ctx, tt.ca); !errors.Is(err, tt.wantErr) {
						t.Errorf("CreateCA error = %v, want %v", err, tt.wantErr)
					}
				})
			}
		})

		t.Run("get", func(t *testing.T) {
			got, err := db.SMKI().CA(ctx, "E357")
			if err != nil {
				t.Fatalf("CA(E357): %v", err)
			}
			want := testCA("E357", CAKindDCA, 100)
			want.State, want.CreatedAt = CAStateActive, t0.UTC().Truncate(time.Microsecond)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("CA(E357) = %+v, want %+v", got, want)
			}
			if rk, err := db.SMKI().CA(ctx, "x11"); err != nil || rk.Purpose != CAPurposeRekey {
				t.Errorf("CA(x11) = %+v, %v: want purpose %q", rk, err, CAPurposeRekey)
			}
			if _, err := db.SMKI().CA(ctx, "nope"); !errors.Is(err, ErrNotFound) {
				t.Errorf("CA(nope) error = %v, want ErrNotFound", err)
			}
		})

		t.Run("list", func(t *testing.T) {
			cas, err := db.SMKI().CAs(ctx)
			if err != nil {
				t.Fatalf("CAs: %v", err)
			}
			var names []string
			for _, c := range cas {
				names = append(names, c.Name)
			}
			if want := []string{"root", "oca", "E357", "x11", "x8"}; !reflect.DeepEqual(names, want) {
				t.Errorf("CAs names = %v, want %v", names, want)
			}
			if cas[0].Parent != "" || cas[4].State != CAStateClosed || !cas[4].ClosedAt.Equal(dbTime(t0.Add(time.Hour))) || cas[3].Purpose != CAPurposeRekey {
				t.Errorf("CAs lost fields: %+v / %+v / %+v", cas[0], cas[3], cas[4])
			}
		})
	})
}

func TestReserveDevices(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		closed := testCA("closed", CAKindDCA, 10)
		mustCreateCA(t, db, testCA("E1", CAKindDCA, 10), testCA("free", CAKindDCA, 0), closed)
		if err := db.SMKI().CloseCA(ctx, "closed", t0); err != nil {
			t.Fatal(err)
		}
		// Steps run in order against the same CAs.
		tests := []struct {
			name    string
			ca      string
			n       int64
			want    int64
			wantErr error
		}{
			{"first", "E1", 3, 3, nil},
			{"second", "E1", 6, 9, nil},
			{"over quota", "E1", 2, 0, ErrQuotaExhausted},
			{"exactly to quota", "E1", 1, 10, nil},
			{"full", "E1", 1, 0, ErrQuotaExhausted},
			{"zero", "E1", 0, 0, ErrInvalid},
			{"negative", "E1", -5, 0, ErrInvalid},
			{"unlimited", "free", 1000000, 1000000, nil},
			{"unlimited again", "free", 1, 1000001, nil},
			{"closed", "closed", 1, 0, ErrClosed},
			{"unknown", "nope", 1, 0, ErrNotFound},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := db.SMKI().ReserveDevices(ctx, tt.ca, tt.n)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ReserveDevices(%s, %d) error = %v, want %v", tt.ca, tt.n, err, tt.wantErr)
				}
				if got != tt.want {
					t.Errorf("ReserveDevices(%s, %d) = %d, want %d", tt.ca, tt.n, got, tt.want)
				}
			})
		}
		c, err := db.SMKI().CA(ctx, "E1")
		if err != nil || c.Issued != 10 {
			t.Errorf("E1 after reservations: Issued = %d, err %v; want 10", c.Issued, err)
		}
	})
}

func TestReserveDevicesConcurrent(t *testing.T) {
	// 50 goroutines race for a quota of 120 in steps of 3: exactly 40
	// reservations succeed, the rest see ErrQuotaExhausted, and every
	// successful caller gets a distinct Issued value.
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		mustCreateCA(t, db, testCA("E2", CAKindDCA, 120))
		var (
			mu       sync.Mutex
			got      = map[int64]bool{}
			failures int
			wg       sync.WaitGroup
		)
		for range 50 {
			wg.Go(func() {
				for {
					issued, err := db.SMKI().ReserveDevices(ctx, "E2", 3)
					mu.Lock()
					if err == nil {
						if got[issued] {
							t.Errorf("Issued %d returned twice", issued)
						}
						got[issued] = true
					} else if errors.Is(err, ErrQuotaExhausted) {
						failures++
					} else {
						t.Errorf("ReserveDevices: %v", err)
					}
					mu.Unlock()
					if err != nil {
						return
					}
				}
			})
		}
		wg.Wait()
		if len(got) != 40 || failures != 50 {
			t.Errorf("%d reservations succeeded and %d failed, want 40 and 50", len(got), failures)
		}
		c, err := db.SMKI().CA(ctx, "E2")
		if err != nil || c.Issued != 120 {
			t.Errorf("Issued = %d (err %v), want 120", c.Issued, err)
		}
	})
}

func TestCloseCA(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		mustCreateCA(t, db, testCA("E3", CAKindDCA, 5))
		at := t0.Add(48 * time.Hour)
		tests := []struct {
			name    string
			ca      string
			at      time.Time
			wantErr error
		}{
			{"no time", "E3", time.Time{}, ErrInvalid},
			{"close", "E3", at, nil},
			{"again", "E3", at.Add(time.Hour), ErrClosed},
			{"unknown", "nope", at, ErrNotFound},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := db.SMKI().CloseCA(ctx, tt.ca, tt.at); !errors.Is(err, tt.wantErr) {
					t.Errorf("CloseCA(%s) error = %v, want %v", tt.ca, err, tt.wantErr)
				}
			})
		}
		c, err := db.SMKI().CA(ctx, "E3")
		if err != nil {
			t.Fatal(err)
		}
		if c.State != CAStateClosed || c.KeyURI != "" || !c.ClosedAt.Equal(dbTime(at)) || len(c.CertDER) == 0 {
			t.Errorf("closed CA = %+v, want state closed, no key URI, ClosedAt %v, certificate kept", c, at)
		}
		if _, err := db.SMKI().ReserveDevices(ctx, "E3", 1); !errors.Is(err, ErrClosed) {
			t.Errorf("ReserveDevices on closed CA: %v, want ErrClosed", err)
		}
	})
}

func TestPutCertificates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		mustCreateCA(t, db, testCA("E4", CAKindDCA, 0))
		const eui = "90B3D51F30010000"
		if err := db.SMKI().PutCertificates(ctx, testCert("E4", 1, eui, UsageDS), testCert("E4", 2, eui, UsageKA)); err != nil {
			t.Fatalf("PutCertificates: %v", err)
		}
		bad := func(f func(*Certificate)) Certificate {
			c := testCert("E4", 99, eui, UsageDS)
			f(&c)
			return c
		}
		tests := []struct {
			name    string
			certs   []Certificate
			wantErr error
		}{
			{"none", nil, nil},
			{"existing serial among new", []Certificate{testCert("E4", 10, eui, UsageDS), testCert("E4", 2, eui, UsageKA), testCert("E4", 11, eui, UsageDS)}, ErrExists},
			{"repeated in the call", []Certificate{testCert("E4", 12, eui, UsageDS), testCert("E4", 12, eui, UsageDS)}, ErrExists},
			{"unknown CA", []Certificate{testCert("E4", 13, eui, UsageDS), testCert("nope", 1, eui, UsageDS)}, ErrNotFound},
			{"lower-case EUI", []Certificate{bad(func(c *Certificate) { c.EUI = "90b3d51f30010000" })}, ErrInvalid},
			{"short EUI", []Certificate{bad(func(c *Certificate) { c.EUI = "90B3" })}, ErrInvalid},
			{"no serial", []Certificate{bad(func(c *Certificate) { c.Serial = nil })}, ErrInvalid},
			{"long serial", []Certificate{bad(func(c *Certificate) { c.Serial = make([]byte, 21) })}, ErrInvalid},
			{"bad role", []Certificate{bad(func(c *Certificate) { c.Role = 256 })}, ErrInvalid},
			{"bad user role", []Certificate{bad(func(c *Certificate) { c.UserRole = "XX" })}, ErrInvalid},
			{"no usage", []Certificate{bad(func(c *Certificate) { c.Usage = "" })}, ErrInvalid},
			{"no DER", []Certificate{bad(func(c *Certificate) { c.DER = nil })}, ErrInvalid},
			{"validity reversed", []Certificate{bad(func(c *Certificate) { c.NotAfter = c.NotBefore.Add(-time.Second) })}, ErrInvalid},
			{"reason without revocation", []Certificate{bad(func(c *Certificate) { c.Reason = 1 })}, ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := db.SMKI().PutCertificates(ctx, tt.certs...); !errors.Is(err, tt.wantErr) {
					t.Fatalf("PutCertificates error = %v, want %v", err, tt.wantErr)
				}
			})
		}
		// The duplicate is named.
		err := db.SMKI().PutCertificates(ctx, testCert("E4", 20, eui, UsageDS), testCert("E4", 1, eui, UsageDS))
		if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "0100000001") {
			t.Errorf("PutCertificates with a duplicate: error %v does not name serial 0100000001", err)
		}
		// Nothing from the failed calls was written.
		all, err := db.SMKI().FindCertificates(ctx, CertQuery{CA: "E4", IncludeRevoked: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 2 {
			t.Errorf("after failed calls E4 has %d certificates, want 2", len(all))
		}

		got, err := db.SMKI().Certificate(ctx, "E4", testCert("E4", 2, "", "").Serial)
		if err != nil {
			t.Fatalf("Certificate: %v", err)
		}
		want := testCert("E4", 2, eui, UsageKA)
		want.ID = got.ID
		want.NotBefore = t0.UTC().Truncate(time.Microsecond)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Certificate = %+v\nwant %+v", got, want)
		}
		if _, err := db.SMKI().Certificate(ctx, "E4", []byte{9}); !errors.Is(err, ErrNotFound) {
			t.Errorf("Certificate(unknown) error = %v, want ErrNotFound", err)
		}
	})
}

func TestFindCertificates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		mustCreateCA(t, db, testCA("oca", CAKindOCA, 0), testCA("E5", CAKindDCA, 0))
		const (
			sup   = "90B3D51F30000002"
			meter = "0012340000000001"
		)
		org := func(serial uint32, usage string, role int) Certificate {
			c := testCert("oca", serial, sup, usage)
			c.Kind, c.Role = KindOrg, role
			return c
		}
		tls := testCert("oca", 50, "", UsageTLS)
		tls.Kind, tls.UserRole = KindTLSClient, "IS"
		certs := []Certificate{
			org(1, UsageDS, 2), org(2, UsageKA, 2), org(3, UsagePPKA, 2), org(4, UsageDS, 4),
			testCert("E5", 1, meter, UsageDS), testCert("E5", 2, meter, UsageKA), tls,
		}
		if err := db.SMKI().PutCertificates(ctx, certs...); err != nil {
			t.Fatal(err)
		}
		if err := db.SMKI().Revoke(ctx, "oca", org(1, "", 0).Serial, 1, t0); err != nil {
			t.Fatal(err)
		}
		all, err := db.SMKI().FindCertificates(ctx, CertQuery{IncludeRevoked: true})
		if err != nil || len(all) != len(certs) {
			t.Fatalf("FindCertificates(all) = %d certificates, %v; want %d", len(all), err, len(certs))
		}
		role2, role4 := 2, 4
		serials := func(cs []Certificate) []string {
			var out []string
			for _, c := range cs {
				out = append(out, fmt.Sprintf("%s/%X", c.CA, c.Serial))
			}
			return out
		}
		s := func(c Certificate) string { return fmt.Sprintf("%s/%X", c.CA, c.Serial) }
		tests := []struct {
			name    string
			q       CertQuery
			want    []string
			wantErr error
		}{
			{"by EUI, good only", CertQuery{EUI: sup}, []string{s(certs[1]), s(certs[2]), s(certs[3])}, nil},
			{"by EUI with revoked", CertQuery{EUI: sup, IncludeRevoked: true}, []string{s(certs[0]), s(certs[1]), s(certs[2]), s(certs[3])}, nil},
			{"EUI with dashes", CertQuery{EUI: "00-12-34-00-00-00-00-01"}, []string{s(certs[4]), s(certs[5])}, nil},
			{"EUI lower case", CertQuery{EUI: "0012340000000001", Usage: UsageKA}, []string{s(certs[5])}, nil},
			{"EUI role usage", CertQuery{EUI: sup, Role: &role2, Usage: UsagePPKA}, []string{s(certs[2])}, nil},
			{"role", CertQuery{Role: &role4}, []string{s(certs[3])}, nil},
			{"kind", CertQuery{Kind: KindDevice}, []string{s(certs[4]), s(certs[5])}, nil},
			{"CA", CertQuery{CA: "E5", Usage: UsageDS}, []string{s(certs[4])}, nil},
			{"user role", CertQuery{UserRole: "IS"}, []string{s(certs[6])}, nil},
			{"serial across CAs", CertQuery{Serial: certs[4].Serial, IncludeRevoked: true}, []string{s(certs[0]), s(certs[4])}, nil},
			{"revoked excluded", CertQuery{Serial: certs[0].Serial, CA: "oca"}, nil, nil},
			{"no match", CertQuery{EUI: "FFFFFFFFFFFFFFFF"}, nil, nil},
			{"limit", CertQuery{Limit: 2, IncludeRevoked: true}, []string{s(certs[0]), s(certs[1])}, nil},
			{"after", CertQuery{AfterID: all[4].ID, IncludeRevoked: true}, []string{s(certs[5]), s(certs[6])}, nil},
			{"bad EUI", CertQuery{EUI: "xyz"}, nil, ErrInvalid},
			{"negative limit", CertQuery{Limit: -1}, nil, ErrInvalid},
			{"negative after", CertQuery{AfterID: -1}, nil, ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := db.SMKI().FindCertificates(ctx, tt.q)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("FindCertificates error = %v, want %v", err, tt.wantErr)
				}
				if g := serials(got); !reflect.DeepEqual(g, tt.want) {
					t.Errorf("FindCertificates = %v, want %v", g, tt.want)
				}
			})
		}
		// Paging through everything one at a time returns each once, in order.
		var paged []Certificate
		for after := int64(0); ; {
			page, err := db.SMKI().FindCertificates(ctx, CertQuery{AfterID: after, Limit: 1, IncludeRevoked: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, page...)
			after = page[len(page)-1].ID
		}
		if !reflect.DeepEqual(serials(paged), serials(all)) {
			t.Errorf("paging gave %v, want %v", serials(paged), serials(all))
		}
	})
}

func TestRevoke(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		mustCreateCA(t, db, testCA("E6", CAKindDCA, 0), testCA("E7", CAKindDCA, 0))
		c1, c2, c3 := testCert("E6", 1, "", UsageDS), testCert("E6", 2, "", UsageKA), testCert("E6", 3, "", UsageKA)
		if err := db.SMKI().PutCertificates(ctx, c1, c2, c3); err != nil {
			t.Fatal(err)
		}
		at := t0.Add(time.Hour)
		tests := []struct {
			name    string
			ca      string
			serial  []byte
			reason  int
			at      time.Time
			wantErr error
		}{
			{"revoke", "E6", c2.Serial, 1, at, nil},
			{"again", "E6", c2.Serial, 4, at, ErrConflict},
			{"other", "E6", c1.Serial, 0, at.Add(time.Minute), nil},
			{"unknown serial", "E6", []byte{0x7f}, 1, at, ErrNotFound},
			{"wrong CA", "E7", c3.Serial, 1, at, ErrNotFound},
			{"bad reason", "E6", c3.Serial, 7, at, ErrInvalid},
			{"no time", "E6", c3.Serial, 1, time.Time{}, ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := db.SMKI().Revoke(ctx, tt.ca, tt.serial, tt.reason, tt.at); !errors.Is(err, tt.wantErr) {
					t.Errorf("Revoke error = %v, want %v", err, tt.wantErr)
				}
			})
		}
		got, err := db.SMKI().Revoked(ctx, "E6")
		if err != nil {
			t.Fatalf("Revoked: %v", err)
		}
		if len(got) != 2 || !bytes.Equal(got[0].Serial, c1.Serial) || !bytes.Equal(got[1].Serial, c2.Serial) {
			t.Fatalf("Revoked(E6) = %+v, want c1 and c2", got)
		}
		if got[1].Reason != 1 || !got[1].RevokedAt.Equal(dbTime(at)) || got[0].Reason != 0 {
			t.Errorf("revocation details lost: %+v", got)
		}
		if r, err := db.SMKI().Revoked(ctx, "E7"); err != nil || len(r) != 0 {
			t.Errorf("Revoked(E7) = %v, %v; want none", r, err)
		}
		if _, err := db.SMKI().Revoked(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Revoked(nope) error = %v, want ErrNotFound", err)
		}
	})
}

func TestCRL(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		mustCreateCA(t, db, testCA("root", CAKindRoot, 0), testCA("oca", CAKindOCA, 0))
		for want := int64(1); want <= 3; want++ {
			n, err := db.SMKI().NextCRLNumber(ctx, "oca")
			if err != nil || n != want {
				t.Fatalf("NextCRLNumber(oca) = %d, %v; want %d", n, err, want)
			}
		}
		if n, err := db.SMKI().NextCRLNumber(ctx, "root"); err != nil || n != 1 {
			t.Errorf("NextCRLNumber(root) = %d, %v; want 1 (numbers are per CA)", n, err)
		}
		if _, err := db.SMKI().NextCRLNumber(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("NextCRLNumber(nope) error = %v, want ErrNotFound", err)
		}
		if _, err := db.SMKI().LatestCRL(ctx, "oca"); !errors.Is(err, ErrNotFound) {
			t.Errorf("LatestCRL with none error = %v, want ErrNotFound", err)
		}
		crl := func(n int64) CRL {
			return CRL{CA: "oca", Number: n, ThisUpdate: t0.Add(time.Duration(n) * time.Hour),
				NextUpdate: t0.Add(time.Duration(n)*time.Hour + 24*time.Hour), DER: []byte(fmt.Sprintf("crl %d", n))}
		}
		tests := []struct {
			name    string
			crl     CRL
			wantErr error
		}{
			{"first", crl(1), nil},
			{"third", crl(3), nil},
			{"second late", crl(2), nil},
			{"duplicate", crl(3), ErrExists},
			{"unknown CA", func() CRL { c := crl(1); c.CA = "nope"; return c }(), ErrNotFound},
			{"zero number", crl(0), ErrInvalid},
			{"no DER", func() CRL { c := crl(4); c.DER = nil; return c }(), ErrInvalid},
			{"no thisUpdate", func() CRL { c := crl(4); c.ThisUpdate = time.Time{}; return c }(), ErrInvalid},
			{"nextUpdate first", func() CRL { c := crl(4); c.NextUpdate = t0; return c }(), ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := db.SMKI().PutCRL(ctx, tt.crl); !errors.Is(err, tt.wantErr) {
					t.Errorf("PutCRL error = %v, want %v", err, tt.wantErr)
				}
			})
		}
		got, err := db.SMKI().LatestCRL(ctx, "oca")
		if err != nil {
			t.Fatal(err)
		}
		want := crl(3)
		want.ThisUpdate, want.NextUpdate = dbTime(want.ThisUpdate), dbTime(want.NextUpdate)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("LatestCRL = %+v, want %+v", got, want)
		}
	})
}

func TestNextCRLNumberConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		mustCreateCA(t, db, testCA("oca", CAKindOCA, 0))
		var mu sync.Mutex
		seen := map[int64]bool{}
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				for range 5 {
					n, err := db.SMKI().NextCRLNumber(ctx, "oca")
					if err != nil {
						t.Errorf("NextCRLNumber: %v", err)
						return
					}
					mu.Lock()
					if seen[n] {
						t.Errorf("CRL number %d handed out twice", n)
					}
					seen[n] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for n := int64(1); n <= 100; n++ {
			if !seen[n] {
				t.Errorf("CRL number %d never handed out", n)
			}
		}
	})
}

// TestSQLiteConcurrentWriters checks that many goroutines writing through
// one SQLite store at once never fail with SQLITE_BUSY, including a second
// handle on the same file (as a second process would have).
func TestSQLiteConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	open := sqliteOpener(t)
	db1, db2 := open(t), open(t)
	mustCreateCA(t, db1, testCA("E8", CAKindDCA, 0))
	const writers, perWriter = 16, 10
	var wg sync.WaitGroup
	for g := range writers {
		db := db1
		if g%2 == 1 {
			db = db2
		}
		wg.Go(func() {
			for i := range perWriter {
				serial := uint32(g*1000 + i)
				if err := db.SMKI().PutCertificates(ctx, testCert("E8", serial, "", UsageDS)); err != nil {
					t.Errorf("PutCertificates: %v", err)
				}
				if _, err := db.SMKI().ReserveDevices(ctx, "E8", 1); err != nil {
					t.Errorf("ReserveDevices: %v", err)
				}
				if _, err := db.AppendAudit(ctx, AuditEvent{Time: t0, Actor: "system", Action: "test.write", Outcome: OutcomeSuccess}); err != nil {
					t.Errorf("AppendAudit: %v", err)
				}
				if _, err := db.SMKI().FindCertificates(ctx, CertQuery{CA: "E8", Limit: 5}); err != nil {
					t.Errorf("FindCertificates: %v", err)
				}
			}
		})
	}
	wg.Wait()
	c, err := db1.SMKI().CA(ctx, "E8")
	if err != nil || c.Issued != writers*perWriter {
		t.Errorf("Issued = %d (%v), want %d", c.Issued, err, writers*perWriter)
	}
	if n, err := db2.VerifyAudit(ctx); err != nil || n != writers*perWriter {
		t.Errorf("VerifyAudit = %d, %v; want %d entries, no error", n, err, writers*perWriter)
	}
}

// FuzzParseDSN checks that any operator-supplied DSN either parses to a
// dialect and a usable target or is refused with ErrInvalid, never a panic.
func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{"postgres://u@h/db?sslmode=disable", "postgresql://h/db", "sqlite:/x.db", "sqlite:///x.db",
		"x.db", "", "sqlite:", "mysql://x", "a?b", "file:x.db", ":memory:", "sqlite://", "C:\\data\\x.db"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		d, target, err := parseDSN(dsn)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("parseDSN(%q) error %v does not wrap ErrInvalid", dsn, err)
			}
			return
		}
		switch d {
		case DialectPostgres:
			if target != dsn {
				t.Errorf("parseDSN(%q) changed the PostgreSQL URL to %q", dsn, target)
			}
		case DialectSQLite:
			if target == "" || strings.ContainsAny(target, "?#\x00") {
				t.Errorf("parseDSN(%q) gave SQLite path %q", dsn, target)
			}
		default:
			t.Errorf("parseDSN(%q) gave dialect %q", dsn, d)
		}
	})
}

// TestSQLitePragmas checks the connection settings the concurrency claims
// rest on, on the writer and on the readers.
func TestSQLitePragmas(t *testing.T) {
	db := sqliteOpener(t)(t)
	ctx := context.Background()
	tests := []struct {
		name string
		q    dbtx
		want map[string]string
	}{
		{"writer", sqliteTx{db.writer}, map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "10000", "query_only": "0", "synchronous": "2"}},
		{"reader", sqliteTx{db.reader}, map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "10000", "query_only": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for pragma, want := range tt.want {
				var got string
				if err := tt.q.queryRow(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
					t.Fatalf("PRAGMA %s: %v", pragma, err)
				}
				if got != want {
					t.Errorf("PRAGMA %s = %q, want %q", pragma, got, want)
				}
			}
		})
	}
	if got := db.writer.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer MaxOpenConnections = %d, want 1", got)
	}
	if _, err := db.read().exec(ctx, `INSERT INTO audit_head (id, seq, hash) VALUES (2, 0, x'')`); err == nil {
		t.Error("a reader connection accepted a write")
	}
}
