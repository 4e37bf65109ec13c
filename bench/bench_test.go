package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// clientEnv makes the test binary act as the load client: TestMain then
// serves one job on standard input and output, as "metertrust bench
// router-client" does.
const clientEnv = "METERTRUST_BENCH_CLIENT"

func TestMain(m *testing.M) {
	if os.Getenv(clientEnv) == "1" {
		if err := ServeClient(context.Background(), os.Stdin, os.Stdout); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// pgStore returns METERTRUST_TEST_PG, skipping when it is unset outside CI
// and failing when it is unset in CI.
func pgStore(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("METERTRUST_TEST_PG")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("METERTRUST_TEST_PG is unset in CI")
		}
		t.Skip("METERTRUST_TEST_PG is unset")
	}
	return dsn
}

// TestRun runs the whole bench with tiny numbers on each store, the client
// in a child process (this test binary re-executed), and checks the
// report: rates above zero, the ratio computed, every command accepted and
// recorded by the transport exactly once, the meters answering every
// command of the end-to-end phase, the CPU split filled in.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("the bench takes a few seconds")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		store     func(t *testing.T) string
		dialect   string
		inProcess bool
	}{
		{"sqlite", func(*testing.T) string { return "" }, "sqlite", false},
		{"postgres", pgStore, "postgres", false},
		{"sqlite, client in process", func(*testing.T) string { return "" }, "sqlite", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var prof, progress bytes.Buffer
			cfg := Config{Store: tc.store(t), DataDir: t.TempDir(), Meters: 24, Commands: 24, Duration: 300 * time.Millisecond,
				Concurrency: 4, CPUProfile: &prof, Progress: &progress,
				Client: Exec{Path: self, Env: []string{clientEnv + "=1"}}}
			if tc.inProcess {
				cfg.Client = InProcess{}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			rep, err := Run(ctx, cfg)
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, progress.String())
			}
			if rep.Store != tc.dialect || rep.ClientProcess == tc.inProcess {
				t.Errorf("store %q, client process %v", rep.Store, rep.ClientProcess)
			}
			if rep.VerifyRate <= 0 || rep.Router.Rate <= 0 || rep.EndToEnd.Rate <= 0 || rep.HalfLoad.Rate <= 0 {
				t.Errorf("rates: verify %g, router %g, half load %g, end to end %g", rep.VerifyRate, rep.Router.Rate, rep.HalfLoad.Rate, rep.EndToEnd.Rate)
			}
			if want := rep.Router.Rate / rep.VerifyRate; rep.Ratio != want || rep.Ratio <= 0 {
				t.Errorf("ratio %g, want %g", rep.Ratio, want)
			}
			for _, p := range []Phase{rep.Router, rep.HalfLoad, rep.EndToEnd} {
				if p.Commands == 0 || p.Accepted != p.Commands || p.Recorded != p.Commands || p.Duplicates != 0 || p.Errors != 0 || len(p.Refused) != 0 {
					t.Errorf("%s: %+v", p.Name, p)
				}
				if p.P50 <= 0 || p.P99 < p.P50 || p.Max < p.P99 {
					t.Errorf("%s: latencies p50 %g p99 %g max %g", p.Name, p.P50, p.P99, p.Max)
				}
				if p.CPU.Server <= 0 || (p.CPU.Client <= 0) != tc.inProcess || p.CPU.Wall <= 0 {
					t.Errorf("%s: CPU %+v", p.Name, p.CPU)
				}
			}
			if rep.Router.Commands != 24 || rep.EndToEnd.Commands != 24 {
				t.Errorf("peak %d and end-to-end %d commands, want 24 each", rep.Router.Commands, rep.EndToEnd.Commands)
			}
			// Every meter is new to the router in the peak phase: one ECDH
			// each; afterwards Z comes from the cache.
			if rep.Router.ECDH != 24 || rep.EndToEnd.ECDH != 0 {
				t.Errorf("ECDH: peak %d (want 24), end to end %d (want 0)", rep.Router.ECDH, rep.EndToEnd.ECDH)
			}
			if rep.EndToEnd.Responses != rep.EndToEnd.Commands || rep.EndToEnd.Failures != 0 {
				t.Errorf("end to end: %d responses, %d failures for %d commands", rep.EndToEnd.Responses, rep.EndToEnd.Failures, rep.EndToEnd.Commands)
			}
			if len(rep.Stages) != 11 {
				t.Errorf("stages %+v", rep.Stages)
			}
			for _, s := range rep.Stages {
				if s.Count != 24 || s.MeanMS < 0 {
					t.Errorf("stage %+v", s)
				}
			}
			if rep.VerifyBefore <= 0 || rep.VerifyAfter <= 0 || rep.VerifyRate != (rep.VerifyBefore+rep.VerifyAfter)/2 {
				t.Errorf("verify rates %g, %g, mean %g", rep.VerifyBefore, rep.VerifyAfter, rep.VerifyRate)
			}
			if len(rep.RouterActivities) == 0 || len(rep.RouterProfile) == 0 {
				t.Errorf("no CPU attribution of the peak: %v %v", rep.RouterActivities, rep.RouterProfile)
			}
			if prof.Len() == 0 {
				t.Error("no CPU profile written")
			}
			if (rep.SplitSeconds[ComponentClient] <= 0 && !tc.inProcess) || rep.SplitSeconds[ComponentRouter] <= 0 {
				t.Errorf("CPU split %v", rep.SplitSeconds)
			}
			if tc.dialect == "postgres" && rep.EndToEnd.CPU.Postgres <= 0 {
				t.Errorf("no PostgreSQL CPU time measured: %+v", rep.EndToEnd.CPU)
			}
			var table bytes.Buffer
			if err := rep.WriteTable(&table); err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + table.String())
			for _, want := range []string{"raw ECDSA P-256", "ratio", "p50", "end to end", "CPU split"} {
				if !strings.Contains(table.String(), want) {
					t.Errorf("table lacks %q:\n%s", want, table.String())
				}
			}
			b, err := json.Marshal(rep)
			if err != nil {
				t.Fatal(err)
			}
			var back Report
			if err := json.Unmarshal(b, &back); err != nil || back.Ratio != rep.Ratio {
				t.Errorf("JSON round trip: %v, ratio %g", err, back.Ratio)
			}
		})
	}
}

// TestConfigRefused checks that bad configurations are refused before
// anything is set up.
func TestConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"negative meters", Config{Meters: -1}},
		{"negative commands", Config{Commands: -5}},
		{"negative concurrency", Config{Concurrency: -1}},
		{"tiny duration", Config{Duration: time.Millisecond}},
		{"too many meters", Config{Meters: 2_000_000}},
		{"used data directory", Config{DataDir: func() string {
			d := t.TempDir()
			if err := os.WriteFile(d+"/inproc.json", []byte("{}"), 0o600); err != nil {
				t.Fatal(err)
			}
			return d
		}()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Run(context.Background(), tc.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("Run: %v, want ErrConfig", err)
			}
		})
	}
}

// TestRunClientRefusesBadJobs checks the client's own validation.
func TestRunClientRefusesBadJobs(t *testing.T) {
	for _, tc := range []struct {
		name string
		job  Job
	}{
		{"no URL", Job{Connections: 1}},
		{"no connections", Job{URL: "https://127.0.0.1:1"}},
		{"lanes mismatch", Job{URL: "https://127.0.0.1:1", Connections: 1, Commands: [][]byte{{1}}, Lanes: []int{0, 1}}},
		{"negative rate", Job{URL: "https://127.0.0.1:1", Connections: 1, Rate: -1}},
		{"missing certificate", Job{URL: "https://127.0.0.1:1", Connections: 1, CertFile: "/nonexistent", KeyFile: "/nonexistent"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := RunClient(context.Background(), tc.job); !errors.Is(err, ErrClient) {
				t.Fatalf("RunClient: %v, want ErrClient", err)
			}
		})
	}
	if err := ServeClient(context.Background(), strings.NewReader(`{"url":"x","bogus":1}`), &bytes.Buffer{}); !errors.Is(err, ErrClient) {
		t.Fatalf("ServeClient with an unknown field: %v, want ErrClient", err)
	}
}

// TestPercentiles checks the nearest-rank percentiles over all samples.
func TestPercentiles(t *testing.T) {
	ms := func(v ...int64) []int64 {
		for i := range v {
			v[i] *= 1e6
		}
		return v
	}
	for _, tc := range []struct {
		name          string
		lat           []int64
		p50, p99, max float64
	}{
		{"empty", nil, 0, 0, 0},
		{"one", ms(7), 7, 7, 7},
		{"unsorted", ms(5, 1, 4, 2, 3), 3, 5, 5},
		{"hundred", func() []int64 {
			var v []int64
			for i := 100; i >= 1; i-- {
				v = append(v, int64(i))
			}
			return ms(v...)
		}(), 50, 99, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p50, p99, mx := percentiles(tc.lat)
			if p50 != tc.p50 || p99 != tc.p99 || mx != tc.max {
				t.Fatalf("got %g %g %g, want %g %g %g", p50, p99, mx, tc.p50, tc.p99, tc.max)
			}
		})
	}
}

// TestPackageOf checks the import path taken from symbol names.
func TestPackageOf(t *testing.T) {
	for _, tc := range []struct{ fn, want string }{
		{"crypto/internal/fips140/nistec.(*P256Point).ScalarMult", "crypto/internal/fips140/nistec"},
		{"runtime.mallocgc", "runtime"},
		{"github.com/metertrust/metertrust/device.(*Meter).Handle", devicePkg},
		{"modernc.org/sqlite/lib.Xsqlite3VdbeExec", "modernc.org/sqlite/lib"},
		{"main", "main"},
	} {
		t.Run(tc.fn, func(t *testing.T) {
			if got := packageOf(tc.fn); got != tc.want {
				t.Fatalf("packageOf(%q) = %q, want %q", tc.fn, got, tc.want)
			}
		})
	}
}

// TestAttribution checks how profile samples are attributed to components
// and activities.
func TestAttribution(t *testing.T) {
	for _, tc := range []struct {
		name                string
		s                   sample
		component, activity string
	}{
		{"meter verifying under the forwarder", sample{funcs: []string{"crypto/ecdsa.VerifyASN1", devicePkg + ".(*Meter).Handle",
			routerPkg + ".(*Forwarder).attempt"}, labels: map[string]string{"component": "router"}}, ComponentMeters, "forwarder (claim, audit, mark forwarded)"},
		{"router signature stage", sample{funcs: []string{"crypto/ecdsa.VerifyASN1", routerPkg + ".(*Router).signature", routerPkg + ".(*Router).run",
			"net/http.(*conn).serve"}, labels: map[string]string{"component": "router"}}, ComponentRouter, "stage signature"},
		{"TLS read", sample{funcs: []string{"crypto/internal/fips140/aes/gcm.open", "crypto/tls.(*Conn).Read", "net/http.(*conn).serve"},
			labels: map[string]string{"component": "router"}}, ComponentRouter, "TLS records and handshakes"},
		{"in-process client", sample{funcs: []string{"net/http.(*Client).Do"}, labels: map[string]string{"component": "client"}}, ComponentClient, "HTTP server and API handler"},
		{"GC worker", sample{funcs: []string{"runtime.scanobject", "runtime.gcBgMarkWorker"}}, ComponentRuntime, "garbage collector (background)"},
		{"group commit", sample{funcs: []string{"modernc.org/sqlite/lib._unixSync", routerPkg + ".(*GroupLedger).commit"},
			labels: map[string]string{"component": "router"}}, ComponentRouter, "stage record (group commit)"},
		{"empty stack", sample{}, ComponentRuntime, "other (scheduler, background loops)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := componentOf(tc.s); got != tc.component {
				t.Errorf("component %q, want %q", got, tc.component)
			}
			if got := activityOf(tc.s); got != tc.activity {
				t.Errorf("activity %q, want %q", got, tc.activity)
			}
		})
	}
}
