package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
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

// The targets for the figures.
const (
	TargetRatioSQLite   = 0.5
	TargetRatioPostgres = 0.4
	TargetP99           = 20 * time.Millisecond
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
	// Duration is the length of the raw verification phase and of the
	// half-load latency phase.
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
}

// Report is the outcome of a Run.
type Report struct {
	Machine     Machine `json:"machine"`
	Store       string  `json:"store"`
	Meters      int     `json:"meters"`
	Concurrency int     `json:"concurrency"`
	// ClientProcess is true when the client ran in its own process.
	ClientProcess bool `json:"clientProcess"`
	// VerifyRate is raw ECDSA P-256 verifications per second on every
	// core: the mean of VerifyBefore and VerifyAfter, measured just before
	// and just after the peak phase, so that a change of load on a shared
	// machine shows.
	VerifyRate   float64 `json:"verifyPerSecond"`
	VerifyBefore float64 `json:"verifyBefore"`
	VerifyAfter  float64 `json:"verifyAfter"`
	// Router is the peak phase; Ratio is Router.Rate / VerifyRate.
	Router Phase   `json:"router"`
	Ratio  float64 `json:"ratio"`
	// HalfLoad is the open-loop phase at half the peak rate.
	HalfLoad Phase `json:"halfLoad"`
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
	// TargetRatio is the target for Ratio on this store.
	TargetRatio float64 `json:"targetRatio"`
}

// Phase is one measured load phase.
type Phase struct {
	Name string `json:"name"`
	// Commands were submitted; Accepted answered 202; Refused by code;
	// Errors got no answer.
	Commands   int            `json:"commands"`
	Accepted   int            `json:"accepted"`
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
	// accepted command.
	ServerCPUPerCommand float64 `json:"serverCpuMsPerCommand"`
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
	switch {
	case cfg.Meters < 1 || cfg.Commands < 1 || cfg.Concurrency < 1:
		return nil, fmt.Errorf("%w: meters (%d), commands (%d) and concurrency (%d) must be positive", ErrConfig, cfg.Meters, cfg.Commands, cfg.Concurrency)
	case cfg.Duration < 100*time.Millisecond:
		return nil, fmt.Errorf("%w: duration %s is under 100ms", ErrConfig, cfg.Duration)
	case cfg.Meters > 1_000_000:
		return nil, fmt.Errorf("%w: %d meters is over the bench's limit of 1,000,000", ErrConfig, cfg.Meters)
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
	rep := &Report{Machine: machine(), Meters: cfg.Meters, Concurrency: cfg.Concurrency}
	_, rep.ClientProcess = cfg.Client.(Exec)
	progress("setting up: SMKI and DCCKI ceremonies, supplier, %d meters, router on mutual TLS", cfg.Meters)
	w, err := setup(ctx, cfg, dir)
	if err != nil {
		return nil, fmt.Errorf("setting up: %w", err)
	}
	rep.Store = w.dialect
	rep.TargetRatio = TargetRatioSQLite
	if w.dialect == "postgres" {
		rep.TargetRatio = TargetRatioPostgres
	}
	defer w.close()

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
	progress("raw ECDSA P-256 verification on %d goroutines for %s", workers(), cfg.Duration)
	if rep.VerifyBefore, err = verifyRate(ctx, cfg.Duration); err != nil {
		return nil, err
	}
	progress("  %.0f verifications/s", rep.VerifyBefore)
	progress("router peak: %d commands closed loop on %d connections", cfg.Commands, cfg.Concurrency)
	stages0, err := stageTimes(w.registry)
	if err != nil {
		return nil, err
	}
	var prof bytes.Buffer
	if err := pprof.StartCPUProfile(&prof); err != nil {
		return nil, fmt.Errorf("starting CPU profile: %w", err)
	}
	rep.Router, err = w.phase(ctx, cfg, "router peak", cmds, lanes(next, len(cmds)), 0, false)
	pprof.StopCPUProfile()
	if err != nil {
		return nil, err
	}
	next += len(cmds)
	if cfg.CPUProfile != nil {
		if _, err := cfg.CPUProfile.Write(prof.Bytes()); err != nil {
			return nil, fmt.Errorf("writing CPU profile: %w", err)
		}
	}
	if samples, err := readProfile(prof.Bytes()); err == nil {
		rep.RouterProfile = topPackages(samples, 12)
		rep.RouterActivities = activities(samples)
	}
	stages1, err := stageTimes(w.registry)
	if err != nil {
		return nil, err
	}
	rep.Stages = stageDelta(stages0, stages1)
	progress("raw ECDSA P-256 verification again, for %s", cfg.Duration)
	if rep.VerifyAfter, err = verifyRate(ctx, cfg.Duration); err != nil {
		return nil, err
	}
	rep.VerifyRate = (rep.VerifyBefore + rep.VerifyAfter) / 2
	rep.Ratio = rep.Router.Rate / rep.VerifyRate
	progress("  %.0f commands/s (ratio %.2f)", rep.Router.Rate, rep.Ratio)

	// Half load: open loop at half the peak for Duration, at most one
	// command per meter: open loop, two commands to one meter could be in
	// flight at once and overtake each other (the later counter first,
	// the earlier then refused as a replay).
	rate := rep.Router.Rate / 2
	n := max(1, int(math.Round(rate*cfg.Duration.Seconds())))
	if n > len(w.meters) {
		progress("half load limited to one command per meter: %d commands (%.1fs) instead of %d", len(w.meters), float64(len(w.meters))/rate, n)
		n = len(w.meters)
	}
	progress("signing %d commands", n)
	if cmds, err = w.sign(ctx, n, target(next)); err != nil {
		return nil, err
	}
	progress("half load: %d commands open loop at %.0f/s", n, rate)
	if rep.HalfLoad, err = w.phase(ctx, cfg, "half load", cmds, nil, rate, false); err != nil {
		return nil, err
	}
	next += n
	progress("  p50 %.1f ms, p99 %.1f ms", rep.HalfLoad.P50, rep.HalfLoad.P99)

	// End to end: the meters execute and answer; one command per meter.
	n = min(cfg.Commands, len(w.meters))
	progress("signing %d commands", n)
	if cmds, err = w.sign(ctx, n, target(next)); err != nil {
		return nil, err
	}
	progress("end to end: %d commands closed loop, meters answering", n)
	prof.Reset()
	if err := pprof.StartCPUProfile(&prof); err != nil {
		return nil, fmt.Errorf("starting CPU profile: %w", err)
	}
	rep.EndToEnd, err = w.phase(ctx, cfg, "end to end", cmds, lanes(next, n), 0, true)
	pprof.StopCPUProfile()
	if err != nil {
		return nil, err
	}
	progress("  %.0f commands/s", rep.EndToEnd.Rate)
	if samples, err := readProfile(prof.Bytes()); err == nil {
		rep.Split, rep.SplitSeconds = cpuSplit(samples, rep.EndToEnd.CPU)
	}
	rep.Machine.LoadEnd = loadAvg()
	if err := w.close(); err != nil {
		return rep, err
	}
	w.stop, w.cleanups = nil, nil
	return rep, nil
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

// verifyRate runs ecdsa.VerifyASN1 of one P-256 signature over a SHA-256
// digest on GOMAXPROCS goroutines for d and returns verifications per
// second.
func verifyRate(ctx context.Context, d time.Duration) (float64, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return 0, err
	}
	digest := sha256.Sum256([]byte("metertrust bench: the router's unit of work"))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		return 0, err
	}
	var total atomic.Int64
	var failed atomic.Bool
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
					if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
						failed.Store(true)
					}
					n++
				}
			}
			total.Add(n)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failed.Load() {
		return 0, errors.New("bench: a valid signature failed to verify")
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return float64(total.Load()) / elapsed.Seconds(), nil
}

// phase runs one load phase and waits until the transport (or, with
// meters, the supplier's delivery queue) has every accepted command.
func (w *world) phase(ctx context.Context, cfg Config, name string, cmds [][]byte, lanes []int, rate float64, meters bool) (Phase, error) {
	p := Phase{Name: name, Commands: len(cmds), OfferedRate: rate}
	w.transport.reset(meters)
	cursor, err := w.deliveryCursor(ctx)
	if err != nil {
		return p, err
	}
	ecdh0 := w.acbKey.n.Load()
	mark := markCPU(w.backends)
	res, clientCPU, err := cfg.Client.Launch(ctx, Job{URL: w.url, CertFile: w.files.cert, KeyFile: w.files.key, RootFile: w.files.root,
		Connections: cfg.Concurrency, Commands: cmds, Lanes: lanes, Rate: rate})
	if err != nil {
		return p, fmt.Errorf("%s: %w", name, err)
	}
	p.Accepted, p.Errors, p.FirstError = res.Accepted, res.Errors, res.FirstError
	if len(res.Refused) > 0 {
		p.Refused = res.Refused
	}
	start := time.Unix(0, res.Start)
	var end time.Time
	deadline := time.Now().Add(time.Minute + time.Duration(len(cmds))*10*time.Millisecond)
	for {
		_, distinct, dups, bad, last := w.transport.tally()
		p.Recorded, p.Duplicates = distinct, dups
		if bad > 0 {
			return p, fmt.Errorf("%w: %s: the transport got %d messages that are not MAC'd commands", ErrIncomplete, name, bad)
		}
		done := distinct >= p.Accepted
		end = last
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
			return p, fmt.Errorf("%w: %s: %d of %d accepted commands reached the transport, %d responses", ErrIncomplete, name, distinct, p.Accepted, p.Responses+p.Failures)
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.CPU = mark.since(clientCPU, w.backends)
	p.ECDH = w.acbKey.n.Load() - ecdh0
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
		if t, c, err := targetCounter(raw); err != nil || w.transport.times(t, c) != 1 {
			return p, fmt.Errorf("%w: %s: command %d (to %s, counter %d) reached the transport %d times", ErrIncomplete, name, i, t, c, w.transport.times(t, c))
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
