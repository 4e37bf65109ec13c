package bench

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// ErrConfig is wrapped by Run for a configuration it refuses.
var ErrConfig = errors.New("bench: invalid configuration")

// ErrIncomplete is wrapped by Run when a phase did not finish: commands
// refused, lost or delivered twice, or not forwarded in time.
var ErrIncomplete = errors.New("bench: phase incomplete")

// Defaults for Config's zero values.
const (
	DefaultMeters      = 2000
	DefaultCommands    = 2000
	DefaultDuration    = 10 * time.Second
	DefaultConcurrency = 32
)

// The targets of the router's figures (issue 9, docs/performance.md). E is
// the CPU efficiency: the CPU a command cannot do without (one ECDSA P-256
// verification and one ECDH, measured raw in the same run) over the CPU the
// router and the database spend per command.
const (
	// TargetEfficiencySQLite and TargetEfficiencyPostgres are the least E
	// at the peak on each store.
	TargetEfficiencySQLite   = 0.5
	TargetEfficiencyPostgres = 0.3
	// TargetCPUUse is the least share of all cores that router, client and
	// database together use at the peak: the machine, not a lock, sets the
	// rate.
	TargetCPUUse = 0.9
	// TargetP99HalfLoad and TargetP99NinetyLoad bound the p99 latency open
	// loop at half and at 90% of the peak rate.
	TargetP99HalfLoad   = 20 * time.Millisecond
	TargetP99NinetyLoad = 50 * time.Millisecond
	// TargetPreloadedRate is the least peak rate on a pre-loaded store as a
	// share of the fresh store's (Compare).
	TargetPreloadedRate = 0.9
	// TargetRoutersRate is the least aggregate peak rate of several router
	// processes on one PostgreSQL as a share of one process's
	// (CompareRouters).
	TargetRoutersRate = 0.9
)

// Defaults of the pre-loaded store's size besides its commands (issue 9:
// 100,000 meters and 1,000 users).
const (
	DefaultPreloadDevices = 100_000
	DefaultPreloadUsers   = 1_000
)

// Config configures a Run. Zero values take the defaults.
type Config struct {
	// Store is the store DSN: empty for SQLite in the data directory; a
	// postgres:// URL runs in a fresh schema of that database, dropped at
	// the end.
	Store string
	// DataDir holds the SQLite store, the key files and the client's
	// certificate files; empty for a temporary directory removed at the end.
	DataDir string
	// Meters is the number of reference meters.
	Meters int
	// Commands is the number of commands of the peak phase and of the
	// end-to-end phase (there at most one per meter).
	Commands int
	// Duration is the length of each raw measurement (verification and
	// ECDH, each before and after the peak) and of the two open-loop
	// latency phases.
	Duration time.Duration
	// Concurrency is the number of client connections, each with one
	// request in flight.
	Concurrency int
	// CPUProfile, when set, receives the CPU profile of the peak phase.
	CPUProfile io.Writer
	// Client runs the load client; nil runs it in this process.
	Client Launcher
	// Progress, when set, receives one line per step.
	Progress io.Writer
	// Preload, when positive, fills the fresh store before the first
	// measurement with that many accepted-and-responded commands and as
	// many hash-chained audit entries, PreloadDevices registered devices
	// and PreloadUsers DCC users with their certificates (store.Preload),
	// so that every phase runs on a store that has served for a while.
	Preload int
	// PreloadDevices and PreloadUsers default to DefaultPreloadDevices and
	// DefaultPreloadUsers when Preload is set.
	PreloadDevices, PreloadUsers int
	// Routers is the number of router instances on the one store (zero
	// for 1). Above 1 it needs a PostgreSQL store and Instance: the first
	// instance is this process's, each other one a process of its own
	// with its own store handle, group admitter, forwarder, anomaly
	// detector and recording transport, on a loopback mutual-TLS listener
	// of its own; the client spreads its connections evenly over them.
	Routers int
	// Instance runs a router instance process: Path with Args, which must
	// end up calling ServeInstance on its standard input and output (the
	// metertrust binary's hidden "bench router-instance", or a test binary
	// re-executed).
	Instance Exec
}

// Report is the outcome of a Run.
type Report struct {
	Machine     Machine `json:"machine"`
	Store       string  `json:"store"`
	Meters      int     `json:"meters"`
	Concurrency int     `json:"concurrency"`
	// ClientProcess is true when the client ran in its own process.
	ClientProcess bool `json:"clientProcess"`
	// Routers is the number of router instances: this process's and
	// Routers-1 processes of their own. The rates are their aggregate,
	// the server CPU that of all of them.
	Routers int `json:"routers"`
	// VerifyRate is raw ECDSA P-256 verifications per second on every
	// core: the mean of VerifyBefore and VerifyAfter, measured just before
	// and just after the peak phase, so that a change of load on a shared
	// machine shows.
	VerifyRate   float64 `json:"verifyPerSecond"`
	VerifyBefore float64 `json:"verifyBefore"`
	VerifyAfter  float64 `json:"verifyAfter"`
	// ECDHRate is raw ECDH P-256 key agreements per second on every core
	// ((*ecdh.PrivateKey).ECDH with one fixed peer key), measured beside
	// the verifications in the same way.
	ECDHRate   float64 `json:"ecdhPerSecond"`
	ECDHBefore float64 `json:"ecdhBefore"`
	ECDHAfter  float64 `json:"ecdhAfter"`
	// Cores is the number of cores the raw rates ran on (GOMAXPROCS, one
	// goroutine each). VerifyMS and ECDHMS are the CPU milliseconds of one
	// core per operation, this process's CPU time over the operations of
	// both measurements: on an otherwise idle machine Cores × 1000 / rate,
	// but not inflated when other work shares the machine and slows the
	// rates. FloorMS is their sum: the CPU a critical command to a meter
	// whose Z is not cached cannot do without.
	Cores    int     `json:"cores"`
	VerifyMS float64 `json:"verifyCpuMs"`
	ECDHMS   float64 `json:"ecdhCpuMs"`
	FloorMS  float64 `json:"floorCpuMs"`
	// Router is the peak phase; Ratio is Router.Rate / VerifyRate, the
	// measure before E, kept for comparison with older figures.
	Router Phase   `json:"router"`
	Ratio  float64 `json:"ratio"`
	// Efficiency is E at the peak (Router.Efficiency), TargetEfficiency its
	// target on this store.
	Efficiency       float64 `json:"efficiency"`
	TargetEfficiency float64 `json:"targetEfficiency"`
	// CPUUse is the share of all cores that router, client and database
	// used during the peak (Router.CPUShare).
	CPUUse float64 `json:"cpuUse"`
	// HalfLoad and NinetyLoad are the open-loop phases at half and at 90%
	// of the peak rate.
	HalfLoad   Phase `json:"halfLoad"`
	NinetyLoad Phase `json:"ninetyLoad"`
	// EndToEnd is the phase with the meters executing and answering.
	EndToEnd Phase `json:"endToEnd"`
	// Stages is the mean time per command in each pipeline stage during
	// the peak phase (the router's own latency histograms).
	Stages []StageTime `json:"stages"`
	// RouterProfile is where the server process spent its CPU time during
	// the peak phase, by package of the running function (flat time).
	RouterProfile []Share `json:"routerProfile"`
	// RouterActivities is the same CPU time by what the server was doing:
	// each pipeline stage, the forwarder, TLS, HTTP, the collector.
	RouterActivities []Share `json:"routerActivities"`
	// Split is how the CPU time of the end-to-end phase divides between
	// router, meters, client, the runtime and PostgreSQL, as fractions.
	Split []Share `json:"splitFractions"`
	// SplitSeconds gives the same in CPU seconds.
	SplitSeconds map[string]float64 `json:"splitSeconds"`
	// Checks are the figures with targets, each with its verdict.
	Checks []Check `json:"checks"`
	// Preload describes the store's pre-loading; nil for a fresh store.
	Preload *PreloadReport `json:"preload,omitempty"`
	// Audit is the verification of the whole audit chain after the run.
	Audit AuditCheck `json:"audit"`
}

// Check is one figure against its target.
type Check struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"`
	// Target is a floor, or a ceiling (not reached) when AtMost is set.
	Target float64 `json:"target"`
	AtMost bool    `json:"atMost,omitempty"`
	Pass   bool    `json:"pass"`
}

func newCheck(name string, value float64, unit string, target float64, atMost bool) Check {
	pass := value >= target
	if atMost {
		pass = value < target
	}
	return Check{Name: name, Value: value, Unit: unit, Target: target, AtMost: atMost, Pass: pass}
}

// PreloadReport is what the pre-loading wrote and how long it took.
type PreloadReport struct {
	store.PreloadStats
	Seconds float64 `json:"seconds"`
}

// AuditCheck is the audit chain's verification (store.DB.VerifyAudit) on
// the store reopened after the system stopped.
type AuditCheck struct {
	Entries int64   `json:"entries"`
	Seconds float64 `json:"seconds"`
	OK      bool    `json:"ok"`
	Error   string  `json:"error,omitempty"`
}

// Phase is one measured load phase.
type Phase struct {
	Name string `json:"name"`
	// Commands were submitted; Accepted answered 202; Refused by code;
	// Errors got no answer.
	Commands int `json:"commands"`
	Accepted int `json:"accepted"`
	// AcceptedBy splits Accepted by router instance (more than one
	// router only).
	AcceptedBy []int          `json:"acceptedByRouter,omitempty"`
	Refused    map[string]int `json:"refused,omitempty"`
	Errors     int            `json:"errors"`
	FirstError string         `json:"firstError,omitempty"`
	// Recorded is how many distinct commands the transport received,
	// Duplicates how many of them more than once.
	Recorded   int `json:"recorded"`
	Duplicates int `json:"duplicates"`
	// Responses and Failures count the deliveries queued for the supplier
	// (end-to-end phase).
	Responses int `json:"responses,omitempty"`
	Failures  int `json:"failures,omitempty"`
	// Seconds runs from the first submission to the last command handed
	// to the transport (end to end: the last response queued for the
	// caller); Rate is Accepted over Seconds.
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"rate"`
	// ClientRate is accepted answers per second as the client saw them.
	ClientRate float64 `json:"clientRate"`
	// OfferedRate is the open-loop pacing, zero for closed loop.
	OfferedRate float64 `json:"offeredRate,omitempty"`
	// P50, P99 and Max are answer latencies in milliseconds over every
	// sample.
	P50 float64 `json:"p50ms"`
	P99 float64 `json:"p99ms"`
	Max float64 `json:"maxms"`
	// ECDH counts the key agreements the router computed (Z cache misses).
	ECDH int64  `json:"ecdh"`
	CPU  CPUUse `json:"cpu"`
	// ServerCPUPerCommand is the server process's CPU milliseconds per
	// accepted command; PostgresCPUPerCommand the same of the PostgreSQL
	// backends (zero on SQLite).
	ServerCPUPerCommand   float64 `json:"serverCpuMsPerCommand"`
	PostgresCPUPerCommand float64 `json:"postgresCpuMsPerCommand"`
	// Efficiency is E: the report's FloorMS over ServerCPUPerCommand plus
	// PostgresCPUPerCommand. (The server process holds the meters too in
	// the end-to-end phase, and the client when it runs in-process.)
	Efficiency float64 `json:"efficiency"`
	// CPUShare is server, client and PostgreSQL CPU over all cores times
	// the phase's wall time.
	CPUShare float64 `json:"cpuShare"`
}

// StageTime is the mean time of one pipeline stage per command.
type StageTime struct {
	Stage  string  `json:"stage"`
	MeanMS float64 `json:"meanMs"`
	Count  uint64  `json:"count"`
}

func workers() int { return runtime.GOMAXPROCS(0) }

// Run sets up the system, runs the four measurements and tears it down.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Meters == 0 {
		cfg.Meters = DefaultMeters
	}
	if cfg.Commands == 0 {
		cfg.Commands = DefaultCommands
	}
	if cfg.Duration == 0 {
		cfg.Duration = DefaultDuration
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Routers == 0 {
		cfg.Routers = 1
	}
	if cfg.Preload > 0 && cfg.PreloadDevices == 0 {
		cfg.PreloadDevices = DefaultPreloadDevices
	}
	if cfg.Preload > 0 && cfg.PreloadUsers == 0 {
		cfg.PreloadUsers = DefaultPreloadUsers
	}
	switch {
	case cfg.Preload < 0 || cfg.PreloadDevices < 0 || cfg.PreloadUsers < 0:
		return nil, fmt.Errorf("%w: preload sizes (%d commands, %d devices, %d users) must not be negative", ErrConfig, cfg.Preload, cfg.PreloadDevices, cfg.PreloadUsers)
	case cfg.Meters < 1 || cfg.Commands < 1 || cfg.Concurrency < 1:
		return nil, fmt.Errorf("%w: meters (%d), commands (%d) and concurrency (%d) must be positive", ErrConfig, cfg.Meters, cfg.Commands, cfg.Concurrency)
	case cfg.Duration < 100*time.Millisecond:
		return nil, fmt.Errorf("%w: duration %s is under 100ms", ErrConfig, cfg.Duration)
	case cfg.Meters > 1_000_000:
		return nil, fmt.Errorf("%w: %d meters is over the bench's limit of 1,000,000", ErrConfig, cfg.Meters)
	case cfg.Routers < 1:
		return nil, fmt.Errorf("%w: %d routers: want at least 1", ErrConfig, cfg.Routers)
	case cfg.Routers > 1 && !isPostgres(cfg.Store):
		return nil, fmt.Errorf("%w: %d routers need a PostgreSQL store (postgres://...): the embedded SQLite store serves one router process", ErrConfig, cfg.Routers)
	case cfg.Routers > 1 && cfg.Instance.Path == "":
		return nil, fmt.Errorf("%w: %d routers need a command to run the other router instances (Config.Instance)", ErrConfig, cfg.Routers)
	case cfg.Routers > cfg.Concurrency:
		return nil, fmt.Errorf("%w: %d routers for %d client connections: want at least one connection each", ErrConfig, cfg.Routers, cfg.Concurrency)
	}
	if cfg.Client == nil {
		cfg.Client = InProcess{}
	}
	progress := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format+"\n", args...)
		}
	}
	dir := cfg.DataDir
	if dir != "" {
		// A used directory would be reused by inproc, its meters and
		// counters with it: the figures need a fresh system.
		if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
			return nil, fmt.Errorf("%w: data directory %s is not empty", ErrConfig, dir)
		}
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "metertrust-bench-")
		if err != nil {
			return nil, fmt.Errorf("creating data directory: %w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	rep := &Report{Machine: machine(), Meters: cfg.Meters, Concurrency: cfg.Concurrency, Cores: workers(), Routers: cfg.Routers}
	_, rep.ClientProcess = cfg.Client.(Exec)
	progress("setting up: SMKI and DCCKI ceremonies, supplier, %d meters, router on mutual TLS", cfg.Meters)
	w, err := setup(ctx, cfg, dir)
	if err != nil {
		return nil, fmt.Errorf("setting up: %w", err)
	}
	rep.Store = w.dialect
	rep.TargetEfficiency = TargetEfficiencySQLite
	if w.dialect == "postgres" {
		rep.TargetEfficiency = TargetEfficiencyPostgres
	}
	defer w.close()

	if cfg.Preload > 0 {
		progress("pre-loading the store: %d commands and audit entries, %d devices, %d users", cfg.Preload, cfg.PreloadDevices, cfg.PreloadUsers)
		if rep.Preload, err = w.preload(ctx, cfg); err != nil {
			return nil, err
		}
		progress("  %.1f s", rep.Preload.Seconds)
	}
	if cfg.Routers > 1 {
		if cfg.Routers == 2 {
			progress("starting a second router instance in a process of its own on the same store")
		} else {
			progress("starting %d more router instances, each in a process of its own on the same store", cfg.Routers-1)
		}
		if err := w.startInstances(ctx, cfg); err != nil {
			return nil, err
		}
	}

	// Peak: closed loop, one command per meter in turn, commands to one
	// meter on one connection in order.
	next := 0 // the meter the next phase starts at
	target := func(off int) func(i int) smki.EUI {
		return func(i int) smki.EUI { return w.meters[(off+i)%len(w.meters)] }
	}
	lanes := func(off, n int) []int {
		l := make([]int, n)
		for i := range l {
			l[i] = (off + i) % len(w.meters)
		}
		return l
	}
	progress("signing %d commands", cfg.Commands)
	cmds, err := w.sign(ctx, cfg.Commands, target(next))
	if err != nil {
		return nil, err
	}
	progress("raw ECDSA P-256 verification and ECDH P-256 on %d goroutines for %s each", workers(), cfg.Duration)
	before, err := rawRates(ctx, cfg.Duration)
	if err != nil {
		return nil, err
	}
	rep.VerifyBefore, rep.ECDHBefore = before.verify, before.agree
	progress("  %.0f verifications/s, %.0f key agreements/s", rep.VerifyBefore, rep.ECDHBefore)
	if cfg.Routers > 1 {
		progress("router peak: %d commands closed loop on %d connections over %d routers", cfg.Commands, cfg.Concurrency, cfg.Routers)
	} else {
		progress("router peak: %d commands closed loop on %d connections", cfg.Commands, cfg.Concurrency)
	}
	stages0, err := w.stageTimesAll(ctx)
	if err != nil {
		return nil, err
	}
	prof, err := w.startProfile(ctx)
	if err != nil {
		return nil, err
	}
	rep.Router, err = w.phase(ctx, cfg, "router peak", cmds, lanes(next, len(cmds)), 0, false)
	own, samples, perr := prof.stop(ctx)
	if err != nil {
		return nil, err
	}
	next += len(cmds)
	if cfg.CPUProfile != nil {
		if _, err := cfg.CPUProfile.Write(own); err != nil {
			return nil, fmt.Errorf("writing CPU profile: %w", err)
		}
	}
	if perr == nil {
		rep.RouterProfile = topPackages(samples, 12)
		rep.RouterActivities = activities(samples)
	}
	stages1, err := w.stageTimesAll(ctx)
	if err != nil {
		return nil, err
	}
	rep.Stages = stageDelta(stages0, stages1)
	progress("raw ECDSA P-256 verification and ECDH P-256 again, for %s each", cfg.Duration)
	after, err := rawRates(ctx, cfg.Duration)
	if err != nil {
		return nil, err
	}
	rep.VerifyAfter, rep.ECDHAfter = after.verify, after.agree
	rep.VerifyRate = (rep.VerifyBefore + rep.VerifyAfter) / 2
	rep.ECDHRate = (rep.ECDHBefore + rep.ECDHAfter) / 2
	rep.VerifyMS = float64(before.verifyCPU+after.verifyCPU) / float64(time.Millisecond) / float64(before.verifyOps+after.verifyOps)
	rep.ECDHMS = float64(before.agreeCPU+after.agreeCPU) / float64(time.Millisecond) / float64(before.agreeOps+after.agreeOps)
	rep.FloorMS = rep.VerifyMS + rep.ECDHMS
	rep.Ratio = rep.Router.Rate / rep.VerifyRate
	rep.Router.efficiency(rep.FloorMS)
	progress("  %.0f commands/s; E %.3f (%.3f ms of verification and ECDH over %.3f ms of router and %.3f ms of PostgreSQL CPU per command)",
		rep.Router.Rate, rep.Router.Efficiency, rep.FloorMS, rep.Router.ServerCPUPerCommand, rep.Router.PostgresCPUPerCommand)

	// Open loop at half and at 90% of the peak for Duration each, at most
	// one command per meter: open loop, two commands to one meter could be
	// in flight at once and overtake each other (the later counter first,
	// the earlier then refused as a replay).
	openLoop := func(name string, share float64) (Phase, error) {
		rate := rep.Router.Rate * share
		n := max(1, int(math.Round(rate*cfg.Duration.Seconds())))
		if n > len(w.meters) {
			progress("%s limited to one command per meter: %d commands (%.1fs) instead of %d", name, len(w.meters), float64(len(w.meters))/rate, n)
			n = len(w.meters)
		}
		progress("signing %d commands", n)
		cmds, err := w.sign(ctx, n, target(next))
		if err != nil {
			return Phase{}, err
		}
		progress("%s: %d commands open loop at %.0f/s", name, n, rate)
		p, err := w.phase(ctx, cfg, name, cmds, nil, rate, false)
		if err != nil {
			return p, err
		}
		next += n
		p.efficiency(rep.FloorMS)
		progress("  p50 %.1f ms, p99 %.1f ms", p.P50, p.P99)
		return p, nil
	}
	if rep.HalfLoad, err = openLoop("half load", 0.5); err != nil {
		return nil, err
	}
	if rep.NinetyLoad, err = openLoop("90% load", 0.9); err != nil {
		return nil, err
	}

	// End to end: the meters execute and answer; one command per meter.
	n := min(cfg.Commands, len(w.meters))
	progress("signing %d commands", n)
	if cmds, err = w.sign(ctx, n, target(next)); err != nil {
		return nil, err
	}
	progress("end to end: %d commands closed loop, meters answering", n)
	if prof, err = w.startProfile(ctx); err != nil {
		return nil, err
	}
	rep.EndToEnd, err = w.phase(ctx, cfg, "end to end", cmds, lanes(next, n), 0, true)
	_, samples, perr = prof.stop(ctx)
	if err != nil {
		return nil, err
	}
	rep.EndToEnd.efficiency(rep.FloorMS)
	progress("  %.0f commands/s", rep.EndToEnd.Rate)
	if perr == nil {
		rep.Split, rep.SplitSeconds = cpuSplit(samples, rep.EndToEnd.CPU)
	}
	rep.Machine.LoadEnd = loadAvg()

	// The system stops; the audit chain it leaves must verify whole.
	if w.stop != nil {
		stop := w.stop
		w.stop = nil
		if err := stop(); err != nil {
			return rep, err
		}
	}
	progress("verifying the audit chain")
	auditErr := w.verifyAudit(ctx, &rep.Audit)
	progress("  %d entries in %.1f s: %s", rep.Audit.Entries, rep.Audit.Seconds, map[bool]string{true: "verified", false: "BROKEN"}[rep.Audit.OK])
	rep.Efficiency, rep.CPUUse = rep.Router.Efficiency, rep.Router.CPUShare
	rep.Checks = rep.checks()
	if err := w.close(); err != nil {
		return rep, err
	}
	w.cleanups = nil
	return rep, auditErr
}

// checks lists the figures that have targets with their verdicts.
func (r *Report) checks() []Check {
	audit := newCheck("audit chain verifies after the run (entries)", float64(r.Audit.Entries), "", 1, false)
	audit.Pass = r.Audit.OK
	return []Check{
		newCheck("CPU efficiency E at the peak", r.Router.Efficiency, "", r.TargetEfficiency, false),
		newCheck("machine CPU use at the peak (router, client, database)", r.Router.CPUShare, "", TargetCPUUse, false),
		newCheck("p99 latency at half the peak rate", r.HalfLoad.P99, "ms", float64(TargetP99HalfLoad.Milliseconds()), true),
		newCheck("p99 latency at 90% of the peak rate", r.NinetyLoad.P99, "ms", float64(TargetP99NinetyLoad.Milliseconds()), true),
		audit,
	}
}

// efficiency fills in E from the floor's CPU per command.
func (p *Phase) efficiency(floorMS float64) {
	if cost := p.ServerCPUPerCommand + p.PostgresCPUPerCommand; cost > 0 {
		p.Efficiency = floorMS / cost
	}
}

// preload fills the store (store.DB.Preload) with history ending an hour
// ago, outside every anomaly window: its users' certificates recorded as
// issued by the system's Organisation CA and DCCKI TLS CA.
func (w *world) preload(ctx context.Context, cfg Config) (*PreloadReport, error) {
	cas, err := w.db.SMKI().CAs(ctx)
	if err != nil {
		return nil, fmt.Errorf("pre-loading: %w", err)
	}
	spec := store.PreloadSpec{Commands: cfg.Preload, AuditEntries: cfg.Preload, Devices: cfg.PreloadDevices, Users: cfg.PreloadUsers,
		Until: time.Now().Add(-time.Hour)}
	for _, ca := range cas {
		switch ca.Kind {
		case store.CAKindOCA:
			spec.OrgCA = ca.Name
		case store.CAKindDCCKITLS:
			spec.TLSCA = ca.Name
		}
	}
	start := time.Now()
	st, err := w.db.Preload(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("pre-loading: %w", err)
	}
	return &PreloadReport{PreloadStats: st, Seconds: time.Since(start).Seconds()}, nil
}

// verifyAudit reopens the store the stopped system used and verifies its
// whole audit chain into a; the error is the chain's, wrapping
// store.ErrAuditBroken when it is broken.
func (w *world) verifyAudit(ctx context.Context, a *AuditCheck) error {
	var db *store.DB
	var err error
	if w.dsn == "" {
		db, err = store.OpenDataDir(ctx, w.dir)
	} else {
		db, err = store.Open(ctx, w.dsn)
	}
	if err != nil {
		a.Error = err.Error()
		return fmt.Errorf("reopening the store to verify the audit chain: %w", err)
	}
	defer db.Close()
	start := time.Now()
	a.Entries, err = db.VerifyAudit(ctx)
	a.Seconds = time.Since(start).Seconds()
	if err != nil {
		a.Error = err.Error()
		return fmt.Errorf("bench: after the run: %w", err)
	}
	a.OK = true
	return nil
}

// cpuSplit divides the server process's CPU time of a phase by the
// profile's attribution and adds the client's and PostgreSQL's.
func cpuSplit(samples []sample, cpu CPUUse) ([]Share, map[string]float64) {
	secs := map[string]float64{}
	for _, s := range split(samples) {
		secs[s.Name] += s.Fraction * cpu.Server
	}
	secs[ComponentClient] += cpu.Client
	if cpu.Postgres > 0 {
		secs["postgres"] = cpu.Postgres
	}
	var total float64
	for _, v := range secs {
		total += v
	}
	var out []Share
	for k, v := range secs {
		if total > 0 {
			out = append(out, Share{Name: k, Fraction: v / total})
		}
	}
	slices.SortFunc(out, func(a, b Share) int {
		switch {
		case a.Fraction > b.Fraction:
			return -1
		case a.Fraction < b.Fraction:
			return 1
		}
		return 0
	})
	return out, secs
}

// raw is one measurement of the two operations a critical command cannot
// do without: their rates on every core, and how many ran in how much CPU
// time of this process.
type raw struct {
	verify, agree       float64 // per second
	verifyOps, agreeOps int64
	verifyCPU, agreeCPU time.Duration
}

// rawRates measures, one after the other for d each on GOMAXPROCS
// goroutines, ECDSA P-256 verifications (ecdsa.VerifyASN1 of one signature
// over a SHA-256 digest) and ECDH P-256 key agreements
// ((*ecdh.PrivateKey).ECDH with one fixed peer key).
func rawRates(ctx context.Context, d time.Duration) (raw, error) {
	var r raw
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return r, err
	}
	digest := sha256.Sum256([]byte("metertrust bench: the router's unit of work"))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		return r, err
	}
	r.verify, r.verifyOps, r.verifyCPU, err = rawRate(ctx, d, func() bool { return ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) })
	if err != nil {
		return r, fmt.Errorf("bench: raw verification: %w", err)
	}
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return r, err
	}
	peerKey, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return r, err
	}
	peer := peerKey.PublicKey()
	want, err := priv.ECDH(peer)
	if err != nil {
		return r, err
	}
	r.agree, r.agreeOps, r.agreeCPU, err = rawRate(ctx, d, func() bool {
		z, err := priv.ECDH(peer)
		return err == nil && bytes.Equal(z, want)
	})
	if err != nil {
		return r, fmt.Errorf("bench: raw ECDH: %w", err)
	}
	return r, nil
}

// rawRate runs op on GOMAXPROCS goroutines for d and returns operations
// per second, how many ran, and this process's CPU time meanwhile; op
// reports whether its result was right.
func rawRate(ctx context.Context, d time.Duration, op func() bool) (float64, int64, time.Duration, error) {
	var total atomic.Int64
	var failed atomic.Bool
	cpu0 := selfCPU()
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range workers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var n int64
			for time.Now().Before(deadline) && ctx.Err() == nil {
				for range 8 {
					if !op() {
						failed.Store(true)
					}
					n++
				}
			}
			total.Add(n)
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), selfCPU()-cpu0
	if failed.Load() {
		return 0, 0, 0, errors.New("a valid operation failed")
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, 0, err
	}
	return float64(total.Load()) / elapsed.Seconds(), total.Load(), cpu, nil
}

// phase runs one load phase and waits until the transport (or, with
// meters, the supplier's delivery queue) has every accepted command.
func (w *world) phase(ctx context.Context, cfg Config, name string, cmds [][]byte, lanes []int, rate float64, meters bool) (Phase, error) {
	p := Phase{Name: name, Commands: len(cmds), OfferedRate: rate}
	if err := w.resetTransports(ctx, meters); err != nil {
		return p, err
	}
	cursor, err := w.deliveryCursor(ctx)
	if err != nil {
		return p, err
	}
	ecdh0, routersCPU0, err := w.instanceCounters(ctx)
	if err != nil {
		return p, err
	}
	ecdh0 += w.acbKey.n.Load()
	mark := markCPU(w.backends)
	job := Job{URL: w.url, CertFile: w.files.cert, KeyFile: w.files.key, RootFile: w.files.root,
		Connections: cfg.Concurrency, Commands: cmds, Lanes: lanes, Rate: rate}
	if len(w.urls) > 1 {
		job.URLs = w.urls
	}
	res, clientCPU, err := cfg.Client.Launch(ctx, job)
	if err != nil {
		return p, fmt.Errorf("%s: %w", name, err)
	}
	p.Accepted, p.Errors, p.FirstError = res.Accepted, res.Errors, res.FirstError
	if len(res.Refused) > 0 {
		p.Refused = res.Refused
	}
	if len(w.urls) > 1 {
		p.AcceptedBy = res.AcceptedBy
	}
	start := time.Unix(0, res.Start)
	var end time.Time
	var seen map[delivery]int
	deadline := time.Now().Add(time.Minute + time.Duration(len(cmds))*10*time.Millisecond)
	for {
		t, err := w.tallyAll(ctx)
		if err != nil {
			return p, err
		}
		if t.Bad > 0 {
			return p, fmt.Errorf("%w: %s: the transport got %d messages that are not MAC'd commands", ErrIncomplete, name, t.Bad)
		}
		done := t.Distinct >= p.Accepted
		end = t.lastTime()
		if done {
			// Every recorder's commands together: one forwarded by two
			// instances counts once here, and as a duplicate.
			if seen, err = w.seenAll(ctx); err != nil {
				return p, err
			}
			done = len(seen) >= p.Accepted
		}
		if meters && done {
			var n int
			if n, end, err = w.deliveries(ctx, cursor, &p); err != nil {
				return p, err
			}
			done = n >= p.Accepted
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("%w: %s: %d of %d accepted commands reached the transport, %d responses", ErrIncomplete, name, t.Distinct, p.Accepted, p.Responses+p.Failures)
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.CPU = mark.since(clientCPU, w.backends)
	ecdh1, routersCPU1, err := w.instanceCounters(ctx)
	if err != nil {
		return p, err
	}
	p.CPU.Routers = (routersCPU1 - routersCPU0).Seconds()
	p.CPU.Server += p.CPU.Routers
	p.ECDH = w.acbKey.n.Load() + ecdh1 - ecdh0
	p.Recorded = len(seen)
	for _, n := range seen {
		if n > 1 {
			p.Duplicates++
		}
	}
	if end.Before(start) {
		end = time.Unix(0, res.End)
	}
	p.Seconds = end.Sub(start).Seconds()
	if p.Seconds > 0 {
		p.Rate = float64(p.Accepted) / p.Seconds
	}
	if d := time.Duration(res.End - res.Start).Seconds(); d > 0 {
		p.ClientRate = float64(p.Accepted) / d
	}
	p.P50, p.P99, p.Max = percentiles(res.Latencies)
	if p.Accepted > 0 {
		p.ServerCPUPerCommand = p.CPU.Server * 1000 / float64(p.Accepted)
		p.PostgresCPUPerCommand = p.CPU.Postgres * 1000 / float64(p.Accepted)
	}
	if p.CPU.Wall > 0 {
		p.CPUShare = (p.CPU.Server + p.CPU.Client + p.CPU.Postgres) / (float64(runtime.NumCPU()) * p.CPU.Wall)
	}
	switch {
	case p.Accepted != p.Commands:
		return p, fmt.Errorf("%w: %s: %d of %d commands accepted (refused %v, %d errors; first: %s)", ErrIncomplete, name, p.Accepted, p.Commands, p.Refused, p.Errors, p.FirstError)
	case p.Duplicates > 0:
		return p, fmt.Errorf("%w: %s: %d commands reached the transport more than once", ErrIncomplete, name, p.Duplicates)
	case p.Failures > 0:
		return p, fmt.Errorf("%w: %s: %d commands failed at the meters", ErrIncomplete, name, p.Failures)
	}
	for i, raw := range cmds {
		if t, c, err := targetCounter(raw); err != nil || seen[delivery{t, c}] != 1 {
			return p, fmt.Errorf("%w: %s: command %d (to %s, counter %d) reached the transport %d times", ErrIncomplete, name, i, t, c, seen[delivery{t, c}])
		}
	}
	return p, nil
}

// deliveryCursor returns the supplier's last delivery sequence number.
func (w *world) deliveryCursor(ctx context.Context) (int64, error) {
	var after int64
	for {
		ds, err := w.svc.Storage.Deliveries(ctx, w.caller.EUI, after, 1000)
		if err != nil {
			return 0, fmt.Errorf("reading deliveries: %w", err)
		}
		if len(ds) == 0 {
			return after, nil
		}
		after = ds[len(ds)-1].Seq
	}
}

// deliveries counts the supplier's deliveries after cursor into p and
// returns their number and when the last was queued.
func (w *world) deliveries(ctx context.Context, cursor int64, p *Phase) (int, time.Time, error) {
	var last time.Time
	p.Responses, p.Failures = 0, 0
	for {
		ds, err := w.svc.Storage.Deliveries(ctx, w.caller.EUI, cursor, 1000)
		if err != nil {
			return 0, last, fmt.Errorf("reading deliveries: %w", err)
		}
		for _, d := range ds {
			switch d.Kind {
			case router.DeliveryResponse:
				p.Responses++
			default:
				p.Failures++
				if p.FirstError == "" {
					p.FirstError = d.Kind + ": " + d.Detail
				}
			}
			if d.At.After(last) {
				last = d.At
			}
			cursor = d.Seq
		}
		if len(ds) < 1000 {
			return p.Responses + p.Failures, last, nil
		}
	}
}

// percentiles returns the nearest-rank p50, p99 and maximum of the
// latencies in milliseconds.
func percentiles(lat []int64) (p50, p99, maxMS float64) {
	if len(lat) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	rank := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return float64(s[max(0, min(i, len(s)-1))]) / 1e6
	}
	return rank(0.50), rank(0.99), float64(s[len(s)-1]) / 1e6
}

// stageTimes reads the router's stage latency histograms: per stage, the
// sum of seconds and the count.
func stageTimes(g prometheus.Gatherer) (map[string][2]float64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("reading router metrics: %w", err)
	}
	out := map[string][2]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "metertrust_router_stage_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" {
					h := m.GetHistogram()
					out[l.GetValue()] = [2]float64{h.GetSampleSum(), float64(h.GetSampleCount())}
				}
			}
		}
	}
	return out, nil
}

func stageDelta(before, after map[string][2]float64) []StageTime {
	var out []StageTime
	for _, st := range router.Stages {
		a, b := after[st], before[st]
		n := a[1] - b[1]
		if n <= 0 {
			continue
		}
		out = append(out, StageTime{Stage: st, MeanMS: (a[0] - b[0]) / n * 1000, Count: uint64(n)})
	}
	return out
}

// Comparison is the peak on a fresh store against the same on a
// pre-loaded one (issue 9: the rate must not fall as the system grows).
type Comparison struct {
	Fresh     *Report `json:"fresh"`
	Preloaded *Report `json:"preloaded"`
	// RateRatio is the pre-loaded peak rate over the fresh one; Check is it
	// against TargetPreloadedRate.
	RateRatio float64 `json:"rateRatio"`
	Check     Check   `json:"check"`
}

// Compare runs the bench twice, back to back, each on a system of its own:
// on a fresh store, then with cfg.Preload (which must be positive). With
// cfg.DataDir set, the runs use its subdirectories fresh and preloaded; the
// CPU profile, when asked for, is the pre-loaded run's.
func Compare(ctx context.Context, cfg Config) (*Comparison, error) {
	if cfg.Preload <= 0 {
		return nil, fmt.Errorf("%w: a comparison needs a positive preload size, got %d", ErrConfig, cfg.Preload)
	}
	fresh, loaded := cfg, cfg
	fresh.Preload, fresh.CPUProfile = 0, nil
	if cfg.DataDir != "" {
		fresh.DataDir, loaded.DataDir = filepath.Join(cfg.DataDir, "fresh"), filepath.Join(cfg.DataDir, "preloaded")
	}
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, "== fresh store\n")
	}
	var c Comparison
	var err error
	if c.Fresh, err = Run(ctx, fresh); err != nil {
		return &c, fmt.Errorf("fresh store: %w", err)
	}
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, "== pre-loaded store\n")
	}
	if c.Preloaded, err = Run(ctx, loaded); err != nil {
		return &c, fmt.Errorf("pre-loaded store: %w", err)
	}
	if c.Fresh.Router.Rate > 0 {
		c.RateRatio = c.Preloaded.Router.Rate / c.Fresh.Router.Rate
	}
	c.Check = newCheck("peak rate, pre-loaded over fresh", c.RateRatio, "", TargetPreloadedRate, false)
	return &c, nil
}

// RouterComparison is the peak of one router process against that of
// several on one PostgreSQL store (issue 9: the aggregate rate of two
// router processes at least 0.9 of one process's).
type RouterComparison struct {
	One  *Report `json:"one"`
	Many *Report `json:"many"`
	// Routers is the number of router instances of Many.
	Routers int `json:"routers"`
	// RateRatio is Many's aggregate peak rate over One's; Check is it
	// against TargetRoutersRate.
	RateRatio float64 `json:"rateRatio"`
	Check     Check   `json:"check"`
}

// CompareRouters runs the bench twice, back to back, each on a system and
// a fresh PostgreSQL schema of its own: with one router, then with
// cfg.Routers (which must be at least 2). With cfg.DataDir set, the runs
// use its subdirectories one-router and N-routers; the CPU profile, when
// asked for, is the second run's (of the bench process alone).
func CompareRouters(ctx context.Context, cfg Config) (*RouterComparison, error) {
	switch {
	case cfg.Routers < 2:
		return nil, fmt.Errorf("%w: comparing routers needs at least 2 routers, got %d", ErrConfig, cfg.Routers)
	case !isPostgres(cfg.Store):
		return nil, fmt.Errorf("%w: %d routers need a PostgreSQL store (postgres://...): the embedded SQLite store serves one router process", ErrConfig, cfg.Routers)
	case cfg.Instance.Path == "":
		return nil, fmt.Errorf("%w: %d routers need a command to run the other router instances (Config.Instance)", ErrConfig, cfg.Routers)
	}
	one, many := cfg, cfg
	one.Routers, one.CPUProfile = 1, nil
	if cfg.DataDir != "" {
		one.DataDir, many.DataDir = filepath.Join(cfg.DataDir, "one-router"), filepath.Join(cfg.DataDir, fmt.Sprintf("%d-routers", cfg.Routers))
	}
	say := func(s string) {
		if cfg.Progress != nil {
			fmt.Fprintln(cfg.Progress, s)
		}
	}
	c := RouterComparison{Routers: cfg.Routers}
	var err error
	say("== one router process")
	if c.One, err = Run(ctx, one); err != nil {
		return &c, fmt.Errorf("one router: %w", err)
	}
	say(fmt.Sprintf("== %d router processes", cfg.Routers))
	if c.Many, err = Run(ctx, many); err != nil {
		return &c, fmt.Errorf("%d routers: %w", cfg.Routers, err)
	}
	if c.One.Router.Rate > 0 {
		c.RateRatio = c.Many.Router.Rate / c.One.Router.Rate
	}
	c.Check = newCheck(fmt.Sprintf("aggregate peak rate, %d router processes over one", cfg.Routers), c.RateRatio, "", TargetRoutersRate, false)
	return &c, nil
}
