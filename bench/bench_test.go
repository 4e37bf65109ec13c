package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/router"
)

// clientEnv makes the test binary act as the load client: TestMain then
// serves one job on standard input and output, as "metertrust bench
// router-client" does.
const clientEnv = "METERTRUST_BENCH_CLIENT"

// instanceEnv makes the test binary act as a router instance process, as
// "metertrust bench router-instance" does.
const instanceEnv = "METERTRUST_BENCH_INSTANCE"

func TestMain(m *testing.M) {
	for env, serve := range map[string]func(context.Context, io.Reader, io.Writer) error{clientEnv: ServeClient, instanceEnv: ServeInstance} {
		if os.Getenv(env) == "1" {
			if err := serve(context.Background(), os.Stdin, os.Stdout); err != nil {
				os.Stderr.WriteString(err.Error() + "\n")
				os.Exit(1)
			}
			os.Exit(0)
		}
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
// in a child process (this test binary re-executed), fresh and pre-loaded,
// and with two router processes on PostgreSQL, and checks the report: rates above zero, the raw pair's CPU floor, E and
// the CPU use computed, the old ratio beside them, every command accepted
// and recorded by the transport exactly once, the meters answering every
// command of the end-to-end phase, the CPU split filled in, every target
// checked, and the audit chain verified after the run.
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
		preload   int
		routers   int
	}{
		{"sqlite", func(*testing.T) string { return "" }, "sqlite", false, 0, 1},
		{"postgres", pgStore, "postgres", false, 0, 1},
		{"sqlite, client in process", func(*testing.T) string { return "" }, "sqlite", true, 0, 1},
		{"sqlite, pre-loaded", func(*testing.T) string { return "" }, "sqlite", false, 1000, 1},
		{"postgres, pre-loaded", pgStore, "postgres", false, 1000, 1},
		{"postgres, two routers", pgStore, "postgres", false, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var prof, progress bytes.Buffer
			cfg := Config{Store: tc.store(t), DataDir: t.TempDir(), Meters: 24, Commands: 24, Duration: 300 * time.Millisecond,
				Concurrency: 4, CPUProfile: &prof, Progress: &progress,
				Client:  Exec{Path: self, Env: []string{clientEnv + "=1"}},
				Preload: tc.preload, PreloadDevices: 100, PreloadUsers: 20,
				Routers: tc.routers, Instance: Exec{Path: self, Env: []string{instanceEnv + "=1"}}}
			if tc.inProcess {
				cfg.Client = InProcess{}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			rep, err := Run(ctx, cfg)
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, progress.String())
			}
			if rep.Store != tc.dialect || rep.ClientProcess == tc.inProcess || rep.Routers != tc.routers {
				t.Errorf("store %q, client process %v, %d routers", rep.Store, rep.ClientProcess, rep.Routers)
			}
			if rep.VerifyRate <= 0 || rep.Router.Rate <= 0 || rep.EndToEnd.Rate <= 0 || rep.HalfLoad.Rate <= 0 {
				t.Errorf("rates: verify %g, router %g, half load %g, end to end %g", rep.VerifyRate, rep.Router.Rate, rep.HalfLoad.Rate, rep.EndToEnd.Rate)
			}
			if want := rep.Router.Rate / rep.VerifyRate; rep.Ratio != want || rep.Ratio <= 0 {
				t.Errorf("ratio %g, want %g", rep.Ratio, want)
			}
			if rep.ECDHBefore <= 0 || rep.ECDHAfter <= 0 || rep.ECDHRate != (rep.ECDHBefore+rep.ECDHAfter)/2 {
				t.Errorf("ECDH rates %g, %g, mean %g", rep.ECDHBefore, rep.ECDHAfter, rep.ECDHRate)
			}
			if rep.Cores < 1 || rep.VerifyMS <= 0 || rep.ECDHMS <= 0 || rep.FloorMS != rep.VerifyMS+rep.ECDHMS {
				t.Errorf("floor: %d cores, verification %g ms + ECDH %g ms = %g ms", rep.Cores, rep.VerifyMS, rep.ECDHMS, rep.FloorMS)
			}
			if rep.Efficiency <= 0 || rep.Efficiency != rep.Router.Efficiency || rep.CPUUse <= 0 || rep.CPUUse != rep.Router.CPUShare {
				t.Errorf("E %g (peak %g), CPU use %g (peak %g)", rep.Efficiency, rep.Router.Efficiency, rep.CPUUse, rep.Router.CPUShare)
			}
			wantTarget := map[string]float64{"sqlite": TargetEfficiencySQLite, "postgres": TargetEfficiencyPostgres}[tc.dialect]
			if rep.TargetEfficiency != wantTarget {
				t.Errorf("target E %g, want %g", rep.TargetEfficiency, wantTarget)
			}
			for _, p := range rep.phases() {
				want := rep.FloorMS / (p.ServerCPUPerCommand + p.PostgresCPUPerCommand)
				if p.Efficiency <= 0 || math.Abs(p.Efficiency-want) > 1e-9*want || p.CPUShare <= 0 {
					t.Errorf("%s: E %g, want %g; CPU share %g", p.Name, p.Efficiency, want, p.CPUShare)
				}
				if (p.PostgresCPUPerCommand > 0) != (tc.dialect == "postgres") {
					t.Errorf("%s: PostgreSQL CPU %g ms per command on %s", p.Name, p.PostgresCPUPerCommand, tc.dialect)
				}
			}
			if rep.NinetyLoad.OfferedRate <= rep.HalfLoad.OfferedRate || rep.NinetyLoad.Name != "90% load" {
				t.Errorf("open-loop rates: half %g, 90%% %g (%q)", rep.HalfLoad.OfferedRate, rep.NinetyLoad.OfferedRate, rep.NinetyLoad.Name)
			}
			if len(rep.Checks) != 5 {
				t.Errorf("checks %+v", rep.Checks)
			}
			for _, c := range rep.Checks {
				if c.Name == "" || c.Target <= 0 {
					t.Errorf("check %+v", c)
				}
			}
			if !rep.Audit.OK || rep.Audit.Entries < int64(3*24+tc.preload) || rep.Audit.Error != "" || rep.Audit.Seconds <= 0 {
				t.Errorf("audit after the run: %+v", rep.Audit)
			}
			switch p := rep.Preload; {
			case tc.preload == 0 && p != nil:
				t.Errorf("fresh run with a preload %+v", p)
			case tc.preload > 0 && (p == nil || p.Commands != tc.preload || p.AuditEntries != tc.preload || p.Devices != 100 ||
				p.Users != 20 || p.Certificates != 60 || p.Seconds <= 0):
				t.Errorf("preload %+v", p)
			}
			for _, p := range rep.phases() {
				if p.Commands == 0 || p.Accepted != p.Commands || p.Recorded != p.Commands || p.Duplicates != 0 || p.Errors != 0 || len(p.Refused) != 0 {
					t.Errorf("%s: %+v", p.Name, p)
				}
				if p.P50 <= 0 || p.P99 < p.P50 || p.Max < p.P99 {
					t.Errorf("%s: latencies p50 %g p99 %g max %g", p.Name, p.P50, p.P99, p.Max)
				}
				if p.CPU.Server <= 0 || (p.CPU.Client <= 0) != tc.inProcess || p.CPU.Wall <= 0 ||
					(p.CPU.Routers > 0) != (tc.routers > 1) || p.CPU.Routers >= p.CPU.Server {
					t.Errorf("%s: CPU %+v", p.Name, p.CPU)
				}
				// With several routers, each served its share of the
				// connections, and so of a closed loop's commands.
				if tc.routers > 1 {
					sum := 0
					for i, n := range p.AcceptedBy {
						sum += n
						if n <= 0 && p.OfferedRate == 0 {
							t.Errorf("%s: router %d accepted none of %v", p.Name, i, p.AcceptedBy)
						}
					}
					if len(p.AcceptedBy) != tc.routers || sum != p.Accepted {
						t.Errorf("%s: accepted by router %v, %d in all", p.Name, p.AcceptedBy, p.Accepted)
					}
				} else if p.AcceptedBy != nil {
					t.Errorf("%s: accepted by router %v with one router", p.Name, p.AcceptedBy)
				}
			}
			if rep.Router.Commands != 24 || rep.EndToEnd.Commands != 24 {
				t.Errorf("peak %d and end-to-end %d commands, want 24 each", rep.Router.Commands, rep.EndToEnd.Commands)
			}
			// Every meter is new to the router in the peak phase: one ECDH
			// each; afterwards Z comes from the cache. With two routers each
			// has its own cache, and a meter whose next command goes to the
			// other router costs that one an ECDH too.
			if rep.Router.ECDH != 24 {
				t.Errorf("ECDH at the peak %d, want 24", rep.Router.ECDH)
			}
			for _, p := range []Phase{rep.HalfLoad, rep.NinetyLoad, rep.EndToEnd} {
				if (tc.routers == 1 && p.ECDH != 0) || p.ECDH > int64(p.Commands) {
					t.Errorf("ECDH in %s: %d for %d commands", p.Name, p.ECDH, p.Commands)
				}
			}
			if rep.EndToEnd.Responses != rep.EndToEnd.Commands || rep.EndToEnd.Failures != 0 {
				t.Errorf("end to end: %d responses, %d failures for %d commands", rep.EndToEnd.Responses, rep.EndToEnd.Failures, rep.EndToEnd.Commands)
			}
			if len(rep.Stages) != len(router.Stages) {
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
			// The profiler samples at 100 Hz: a peak of a few dozen
			// milliseconds of CPU may catch no sample at all.
			if (len(rep.RouterActivities) == 0 || len(rep.RouterProfile) == 0) && rep.Router.CPU.Server >= 0.1 {
				t.Errorf("no CPU attribution of the peak (%.3f s of server CPU): %v %v", rep.Router.CPU.Server, rep.RouterActivities, rep.RouterProfile)
			}
			if prof.Len() == 0 {
				t.Error("no CPU profile written")
			}
			// Sampled too: the router's share needs enough of its CPU time.
			if (rep.SplitSeconds[ComponentClient] <= 0 && !tc.inProcess) || (rep.SplitSeconds[ComponentRouter] <= 0 && rep.EndToEnd.CPU.Server >= 0.1) {
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
			wants := []string{"raw ECDSA P-256", "raw ECDH P-256", "old ratio", "CPU efficiency E", "≥ " + fmt.Sprint(wantTarget),
				"90% of the peak", "< 50 ms", "p50", "end to end", "CPU split", "audit chain verifies"}
			if tc.routers > 1 {
				wants = append(wants, "routers: 2 instances", "accepted by each router instance", "instance processes CPU s")
			}
			for _, want := range wants {
				if !strings.Contains(table.String(), want) {
					t.Errorf("table lacks %q:\n%s", want, table.String())
				}
			}
			b, err := json.Marshal(rep)
			if err != nil {
				t.Fatal(err)
			}
			var back Report
			if err := json.Unmarshal(b, &back); err != nil || back.Ratio != rep.Ratio || back.Efficiency != rep.Efficiency ||
				len(back.Checks) != len(rep.Checks) || back.NinetyLoad.P99 != rep.NinetyLoad.P99 || back.Audit != rep.Audit {
				t.Errorf("JSON round trip: %v, ratio %g, E %g", err, back.Ratio, back.Efficiency)
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
		{"negative preload", Config{Preload: -1}},
		{"two routers on SQLite", Config{Routers: 2, Instance: Exec{Path: "/bin/true"}}},
		{"two routers without an instance command", Config{Routers: 2, Store: "postgres://127.0.0.1:1/x"}},
		{"more routers than connections", Config{Routers: 3, Concurrency: 2, Store: "postgres://127.0.0.1:1/x", Instance: Exec{Path: "/bin/true"}}},
		{"negative routers", Config{Routers: -1}},
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

// TestCompare runs the bench fresh and pre-loaded with tiny numbers and
// checks the comparison; a comparison without a preload is refused.
func TestCompare(t *testing.T) {
	if testing.Short() {
		t.Skip("the bench takes a few seconds")
	}
	if _, err := Compare(context.Background(), Config{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("Compare without a preload: %v, want ErrConfig", err)
	}
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	c, err := Compare(ctx, Config{DataDir: dir, Meters: 16, Commands: 16, Duration: 200 * time.Millisecond, Concurrency: 4,
		Progress: &progress, Client: InProcess{}, Preload: 500, PreloadDevices: 50, PreloadUsers: 10})
	if err != nil {
		t.Fatalf("Compare: %v\n%s", err, progress.String())
	}
	if c.Fresh.Preload != nil || c.Preloaded.Preload == nil || c.Preloaded.Preload.Commands != 500 {
		t.Errorf("preloads: fresh %+v, pre-loaded %+v", c.Fresh.Preload, c.Preloaded.Preload)
	}
	if want := c.Preloaded.Router.Rate / c.Fresh.Router.Rate; c.RateRatio != want || c.Check.Value != want ||
		c.Check.Target != TargetPreloadedRate || c.Check.Pass != (want >= TargetPreloadedRate) {
		t.Errorf("rate ratio %g, check %+v; want %g", c.RateRatio, c.Check, want)
	}
	for _, sub := range []string{"fresh", "preloaded"} {
		if ents, err := os.ReadDir(filepath.Join(dir, sub)); err != nil || len(ents) == 0 {
			t.Errorf("data directory %s: %v", sub, err)
		}
	}
	var table bytes.Buffer
	if err := c.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"== fresh store", "== pre-loaded store", "store pre-loaded in", "fresh against pre-loaded", "peak rate, pre-loaded over fresh"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

// TestCompareRouters runs the bench with one router, then two on
// PostgreSQL, with tiny numbers and checks the comparison; a comparison
// of fewer than two routers, or on SQLite, is refused.
func TestCompareRouters(t *testing.T) {
	if testing.Short() {
		t.Skip("the bench takes a few seconds")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	instance := Exec{Path: self, Env: []string{instanceEnv + "=1"}}
	for _, cfg := range []Config{{Routers: 1, Store: "postgres://127.0.0.1:1/x", Instance: instance}, {Routers: 2, Instance: instance},
		{Routers: 2, Store: "postgres://127.0.0.1:1/x"}} {
		if _, err := CompareRouters(context.Background(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("CompareRouters(%d routers on %q): %v, want ErrConfig", cfg.Routers, cfg.Store, err)
		}
	}
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	c, err := CompareRouters(ctx, Config{Store: pgStore(t), DataDir: dir, Meters: 16, Commands: 16, Duration: 200 * time.Millisecond,
		Concurrency: 4, Progress: &progress, Client: Exec{Path: self, Env: []string{clientEnv + "=1"}}, Routers: 2, Instance: instance})
	if err != nil {
		t.Fatalf("CompareRouters: %v\n%s", err, progress.String())
	}
	if c.One.Routers != 1 || c.Many.Routers != 2 || c.Routers != 2 || len(c.Many.Router.AcceptedBy) != 2 {
		t.Errorf("routers: one %d, many %d (%d), accepted by %v", c.One.Routers, c.Many.Routers, c.Routers, c.Many.Router.AcceptedBy)
	}
	if want := c.Many.Router.Rate / c.One.Router.Rate; c.RateRatio != want || c.Check.Value != want ||
		c.Check.Target != TargetRoutersRate || c.Check.Pass != (want >= TargetRoutersRate) {
		t.Errorf("rate ratio %g, check %+v; want %g", c.RateRatio, c.Check, want)
	}
	for _, sub := range []string{"one-router", "2-routers"} {
		if ents, err := os.ReadDir(filepath.Join(dir, sub)); err != nil || len(ents) == 0 {
			t.Errorf("data directory %s: %v", sub, err)
		}
	}
	var table bytes.Buffer
	if err := c.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"== one router process", "== 2 router processes", "one router process against 2",
		"aggregate peak rate, 2 router processes over one", "≥ 0.9"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back RouterComparison
	if err := json.Unmarshal(b, &back); err != nil || back.RateRatio != c.RateRatio || back.Many.Routers != 2 {
		t.Errorf("JSON round trip: %v, %+v", err, back.Check)
	}
}

// TestRunClientRefusesBadJobs checks the client's own validation.
func TestRunClientRefusesBadJobs(t *testing.T) {
	for _, tc := range []struct {
		name string
		job  Job
	}{
		{"no URL", Job{Connections: 1}},
		{"an empty URL among several", Job{URLs: []string{"https://127.0.0.1:1", ""}, Connections: 2}},
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
			routerPkg + ".(*Forwarder).attempt"}, labels: map[string]string{"component": "router"}}, ComponentMeters, "forwarder (claim, send)"},
		{"router signature stage", sample{funcs: []string{"crypto/ecdsa.VerifyASN1", routerPkg + ".(*Router).signature", routerPkg + ".(*Router).run",
			"net/http.(*conn).serve"}, labels: map[string]string{"component": "router"}}, ComponentRouter, "stage signature"},
		{"TLS read", sample{funcs: []string{"crypto/internal/fips140/aes/gcm.open", "crypto/tls.(*Conn).Read", "net/http.(*conn).serve"},
			labels: map[string]string{"component": "router"}}, ComponentRouter, "TLS records and handshakes"},
		{"in-process client", sample{funcs: []string{"net/http.(*Client).Do"}, labels: map[string]string{"component": "client"}}, ComponentClient, "HTTP server and API handler"},
		{"GC worker", sample{funcs: []string{"runtime.scanobject", "runtime.gcBgMarkWorker"}}, ComponentRuntime, "garbage collector (background)"},
		{"group commit", sample{funcs: []string{"modernc.org/sqlite/lib._unixSync", routerPkg + ".(*GroupAdmitter).commit"},
			labels: map[string]string{"component": "router"}}, ComponentRouter, "admission group commit (thresholds, MAC, record, marks, audit)"},
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
