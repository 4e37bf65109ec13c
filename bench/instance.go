package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/ca"
	"github.com/metertrust/metertrust/custody"
	"github.com/metertrust/metertrust/device"
	"github.com/metertrust/metertrust/router"
	"github.com/metertrust/metertrust/smki"
	"github.com/metertrust/metertrust/store"
)

// ErrInstance is wrapped by failures of a router instance process (Config
// Routers above 1) or of the bench's talk with it.
var ErrInstance = errors.New("bench: router instance")

// InstanceSpec is what a router instance process is given on its standard
// input: the same store, keys and certificates as the router in the bench
// process, as a second "metertrust serve router" on the same deployment
// would have.
type InstanceSpec struct {
	// Index numbers the instance (1 and up; 0 is the bench process's).
	Index int `json:"index"`
	// Store is the store DSN: the PostgreSQL schema of the run.
	Store string `json:"store"`
	// DataDir is the system's data directory, whose key store (softkms)
	// holds the ACB key-agreement key named by ACBKey.
	DataDir string   `json:"dataDir"`
	ACB     smki.EUI `json:"acb"`
	ACBKey  string   `json:"acbKey"`
	// CertFile and KeyFile are the router's DCCKI server certificate chain
	// and key (PEM), the ones the bench process's router presents.
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
	// FleetURL is the bench's endpoint for the in-process meters (the
	// server side of router.HTTPTransport), used in the end-to-end phase.
	FleetURL string `json:"fleetUrl"`
}

// instanceRequest is one request of the bench to an instance process, a
// JSON value on its standard input after the InstanceSpec.
type instanceRequest struct {
	// Op is one of reset (with Meters), tally, seen, stats, profile-start,
	// profile-stop and stop.
	Op     string `json:"op"`
	Meters bool   `json:"meters,omitempty"`
}

// instanceReply is the instance's answer, a JSON value on its standard
// output; the first one, sent once it listens, carries URL.
type instanceReply struct {
	Error   string         `json:"error,omitempty"`
	URL     string         `json:"url,omitempty"`
	Tally   *tally         `json:"tally,omitempty"`
	Seen    []seenEntry    `json:"seen,omitempty"`
	Stats   *instanceStats `json:"stats,omitempty"`
	Profile []byte         `json:"profile,omitempty"`
}

// seenEntry is one command a recorder received, with how many times.
type seenEntry struct {
	Target  smki.EUI `json:"target"`
	Counter uint64   `json:"counter"`
	Times   int      `json:"times"`
}

// instanceStats are an instance process's counters: its ACB key
// agreements, its own CPU time (user plus system, nanoseconds) and its
// pipeline stage histograms (per stage, seconds and count).
type instanceStats struct {
	ECDH   int64                 `json:"ecdh"`
	CPU    int64                 `json:"cpuNanos"`
	Stages map[string][2]float64 `json:"stages"`
}

// ServeInstance is a router instance process's main (the metertrust
// binary's hidden "bench router-instance", or a test binary re-executed):
// it reads an InstanceSpec from r, opens a store handle of its own and
// builds a router service on it as "metertrust serve router" does (its own
// group admitter, forwarder and anomaly detector), with a recording
// transport of its own, on a loopback mutual-TLS listener. It writes the
// listener's URL to w, then answers the bench's requests until told to stop
// or until r ends, and stops the service, every accepted command
// committed.
func ServeInstance(ctx context.Context, r io.Reader, w io.Writer) (err error) {
	dec := json.NewDecoder(bufio.NewReader(r))
	dec.DisallowUnknownFields()
	enc := json.NewEncoder(w)
	var spec InstanceSpec
	if err := dec.Decode(&spec); err != nil {
		return fmt.Errorf("%w: reading the instance spec: %w", ErrInstance, err)
	}
	inst, err := startService(ctx, spec)
	if err != nil {
		enc.Encode(instanceReply{Error: err.Error()})
		return err
	}
	defer func() {
		if inst != nil {
			err = errors.Join(err, inst.stop())
		}
	}()
	if err := enc.Encode(instanceReply{URL: inst.url}); err != nil {
		return err
	}
	for {
		var req instanceRequest
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // the bench went away: stop
			}
			return fmt.Errorf("%w: reading a request: %w", ErrInstance, err)
		}
		var rep instanceReply
		if req.Op == "stop" {
			err := inst.stop()
			inst = nil
			if err != nil {
				rep.Error = err.Error()
			}
			return errors.Join(err, enc.Encode(rep))
		}
		if err := inst.handle(req, &rep); err != nil {
			rep.Error = err.Error()
		}
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
}

// service is the router service of an instance process.
type service struct {
	url      string
	db       *store.DB
	keys     *custody.Custody
	acbKey   *countingKA
	rec      *recorder
	registry *prometheus.Registry
	cancel   context.CancelFunc
	done     chan error
	prof     *bytes.Buffer
}

func startService(ctx context.Context, spec InstanceSpec) (_ *service, err error) {
	s := &service{acbKey: &countingKA{}, registry: prometheus.NewRegistry(), done: make(chan error, 1)}
	var closers []func() error
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()
	if s.db, err = store.Open(ctx, spec.Store); err != nil {
		return nil, fmt.Errorf("%w %d: opening the store: %w", ErrInstance, spec.Index, err)
	}
	closers = append(closers, s.db.Close)
	if s.keys, err = custody.Open(ctx, "", spec.DataDir, rand.Reader); err != nil {
		return nil, fmt.Errorf("%w %d: opening the key store: %w", ErrInstance, spec.Index, err)
	}
	closers = append(closers, s.keys.Close)
	if s.acbKey.key, err = s.keys.Agreement(ctx, spec.ACBKey); err != nil {
		return nil, fmt.Errorf("%w %d: loading the ACB key-agreement key: %w", ErrInstance, spec.Index, err)
	}
	cert, err := tls.LoadX509KeyPair(spec.CertFile, spec.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w %d: the router's server certificate: %w", ErrInstance, spec.Index, err)
	}
	// Client certificates chain to the DCCKI root, possibly without their
	// issuing CA: both are trusted, as inproc and "serve router" do.
	clientCAs := x509.NewCertPool()
	for _, name := range []string{ca.NameDCCKIRoot, ca.NameDCCKITLS} {
		c, err := s.db.SMKI().CA(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("%w %d: reading CA %s: %w", ErrInstance, spec.Index, name, err)
		}
		x, err := x509.ParseCertificate(c.CertDER)
		if err != nil {
			return nil, fmt.Errorf("%w %d: CA %s: %w", ErrInstance, spec.Index, name, err)
		}
		clientCAs.AddCert(x)
	}
	fleet, err := router.NewHTTPTransport(spec.FleetURL, &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}})
	if err != nil {
		return nil, fmt.Errorf("%w %d: %w", ErrInstance, spec.Index, err)
	}
	s.rec = newRecorder(fleet)
	// Logs as "serve router" writes them, formatted and thrown away, as
	// the bench process's router does.
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	as := s.db.Anomaly()
	det, err := anomaly.New(ctx, anomaly.Config{Store: as, Notifier: as.Notifier(), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("%w %d: starting anomaly detection: %w", ErrInstance, spec.Index, err)
	}
	svc, err := router.NewService(router.ServiceConfig{DB: s.db, Detector: det, ACB: spec.ACB, ACBKey: s.acbKey, Transport: s.rec,
		ServerCertificate: cert, ClientCAs: clientCAs, Identify: ca.TLSUser, DCCKIIssuer: ca.NameDCCKITLS,
		Logger: log, Registry: s.registry})
	if err != nil {
		return nil, fmt.Errorf("%w %d: building the router: %w", ErrInstance, spec.Index, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("%w %d: listening: %w", ErrInstance, spec.Index, err)
	}
	s.url = "https://" + ln.Addr().String()
	var runCtx context.Context
	runCtx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	// The profile tells the service's CPU time by this label, as in the
	// bench process.
	go pprof.Do(runCtx, pprof.Labels("component", ComponentRouter), func(ctx context.Context) {
		s.done <- svc.Run(ctx, ln)
	})
	return s, nil
}

// handle answers one request other than stop.
func (s *service) handle(req instanceRequest, rep *instanceReply) error {
	switch req.Op {
	case "reset":
		s.rec.reset(req.Meters)
	case "tally":
		t := s.rec.tally()
		rep.Tally = &t
	case "seen":
		rep.Seen = s.rec.entries()
	case "stats":
		stages, err := stageTimes(s.registry)
		if err != nil {
			return err
		}
		rep.Stats = &instanceStats{ECDH: s.acbKey.n.Load(), CPU: int64(selfCPU()), Stages: stages}
	case "profile-start":
		if s.prof != nil {
			return errors.New("a CPU profile is already running")
		}
		s.prof = &bytes.Buffer{}
		if err := pprof.StartCPUProfile(s.prof); err != nil {
			s.prof = nil
			return err
		}
	case "profile-stop":
		if s.prof == nil {
			return errors.New("no CPU profile is running")
		}
		pprof.StopCPUProfile()
		rep.Profile, s.prof = s.prof.Bytes(), nil
	default:
		return fmt.Errorf("unknown request %q", req.Op)
	}
	return nil
}

// stop ends the service (every command told "accepted" is committed when
// Run returns) and closes the store and the key store.
func (s *service) stop() error {
	if s.prof != nil {
		pprof.StopCPUProfile()
		s.prof = nil
	}
	s.cancel()
	err := <-s.done
	return errors.Join(err, s.keys.Close(), s.db.Close())
}

// instance is the bench's side of a router instance process.
type instance struct {
	index  int
	url    string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	enc    *json.Encoder
	dec    *json.Decoder
	stderr *syncBuffer
	mu     sync.Mutex
	broken bool
}

// instanceTimeout bounds one request to an instance process; stopping it
// may take the service's shutdown (10 s) and a group commit.
const instanceTimeout = time.Minute

// startInstance starts e as a router instance process, hands it spec and
// waits until it listens.
func startInstance(ctx context.Context, e Exec, spec InstanceSpec) (*instance, error) {
	in := &instance{index: spec.Index, stderr: &syncBuffer{}}
	in.cmd = exec.Command(e.Path, e.Args...)
	in.cmd.Env = append(os.Environ(), e.Env...)
	in.cmd.Stderr = in.stderr
	var err error
	if in.stdin, err = in.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := in.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := in.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w %d: starting %s: %w", ErrInstance, spec.Index, e.Path, err)
	}
	in.enc, in.dec = json.NewEncoder(in.stdin), json.NewDecoder(bufio.NewReader(stdout))
	rep, err := in.exchange(ctx, spec)
	if err != nil {
		in.kill()
		return nil, err
	}
	in.url = rep.URL
	return in, nil
}

// call sends one request and returns the reply.
func (in *instance) call(ctx context.Context, req instanceRequest) (instanceReply, error) {
	return in.exchange(ctx, req)
}

func (in *instance) exchange(ctx context.Context, v any) (instanceReply, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.broken {
		return instanceReply{}, fmt.Errorf("%w %d: no longer answering", ErrInstance, in.index)
	}
	type result struct {
		rep instanceReply
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		if r.err = in.enc.Encode(v); r.err == nil {
			r.err = in.dec.Decode(&r.rep)
		}
		ch <- r
	}()
	t := time.NewTimer(instanceTimeout)
	defer t.Stop()
	var r result
	select {
	case r = <-ch:
	case <-t.C:
		r.err = fmt.Errorf("no answer in %s", instanceTimeout)
	case <-ctx.Done():
		r.err = ctx.Err()
	}
	if r.err != nil {
		// The stream is out of step now: the process is of no more use.
		in.broken = true
		in.cmd.Process.Kill()
		return r.rep, fmt.Errorf("%w %d: %w: %s", ErrInstance, in.index, r.err, snippet(in.stderr.String()))
	}
	if r.rep.Error != "" {
		return r.rep, fmt.Errorf("%w %d: %s", ErrInstance, in.index, r.rep.Error)
	}
	return r.rep, nil
}

// stop has the process stop its service and waits for it to exit.
func (in *instance) stop() error {
	_, err := in.call(context.Background(), instanceRequest{Op: "stop"})
	in.stdin.Close()
	waited := make(chan error, 1)
	go func() { waited <- in.cmd.Wait() }()
	select {
	case werr := <-waited:
		if err == nil && werr != nil {
			err = fmt.Errorf("%w %d: %w: %s", ErrInstance, in.index, werr, snippet(in.stderr.String()))
		}
	case <-time.After(10 * time.Second):
		in.cmd.Process.Kill()
		<-waited
		err = errors.Join(err, fmt.Errorf("%w %d: did not exit after stopping", ErrInstance, in.index))
	}
	return err
}

// kill ends the process at once (a failed start).
func (in *instance) kill() {
	in.cmd.Process.Kill()
	in.stdin.Close()
	in.cmd.Wait()
}

// syncBuffer is a bytes.Buffer safe for the process's writes and our
// reads at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 1<<16 {
		return len(p), nil // enough to say what went wrong
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startInstances starts the router instances 1 to cfg.Routers-1, each in a
// process of its own (cfg.Instance) on the run's store, behind the bench's
// fleet endpoint for the end-to-end phase; stopping the system stops them
// first.
func (w *world) startInstances(ctx context.Context, cfg Config) error {
	if cfg.Routers <= 1 {
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listening for the fleet endpoint: %w", err)
	}
	h, err := device.NewHTTPHandler(w.fleet, device.HTTPConfig{JournalLen: -1})
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	w.cleanups = append(w.cleanups, func() { srv.Close() })
	stopSystem := w.stop
	w.stop = func() error {
		errs := make([]error, len(w.instances))
		var wg sync.WaitGroup
		for i, in := range w.instances {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = in.stop()
			}()
		}
		wg.Wait()
		w.instances = nil
		if stopSystem != nil {
			errs = append(errs, stopSystem())
		}
		return errors.Join(errs...)
	}
	for i := 1; i < cfg.Routers; i++ {
		in, err := startInstance(ctx, cfg.Instance, InstanceSpec{Index: i, Store: w.dsn, DataDir: w.dir, ACB: w.sys.ACB.EUI,
			ACBKey: w.sys.ACBKeyURI, CertFile: w.sys.RouterCertFile, KeyFile: w.sys.RouterKeyFile, FleetURL: "http://" + ln.Addr().String()})
		if err != nil {
			return err
		}
		w.instances = append(w.instances, in)
		w.urls = append(w.urls, in.url)
	}
	return nil
}

// eachInstance calls every instance process with req, at once.
func (w *world) eachInstance(ctx context.Context, req instanceRequest) ([]instanceReply, error) {
	reps := make([]instanceReply, len(w.instances))
	errs := make([]error, len(w.instances))
	var wg sync.WaitGroup
	for i, in := range w.instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[i], errs[i] = in.call(ctx, req)
		}()
	}
	wg.Wait()
	return reps, errors.Join(errs...)
}

// resetTransports starts a phase on every recorder.
func (w *world) resetTransports(ctx context.Context, meters bool) error {
	w.transport.reset(meters)
	_, err := w.eachInstance(ctx, instanceRequest{Op: "reset", Meters: meters})
	return err
}

// tallyAll adds up every recorder's tally; Distinct and Duplicates are
// each recorder's own (a command recorded by two instances counts in
// both), so that seenAll must confirm a count that looks complete.
func (w *world) tallyAll(ctx context.Context) (tally, error) {
	t := w.transport.tally()
	reps, err := w.eachInstance(ctx, instanceRequest{Op: "tally"})
	if err != nil {
		return t, err
	}
	for _, r := range reps {
		if r.Tally == nil {
			return t, fmt.Errorf("%w: a tally reply without a tally", ErrInstance)
		}
		t.Sends += r.Tally.Sends
		t.Distinct += r.Tally.Distinct
		t.Duplicates += r.Tally.Duplicates
		t.Bad += r.Tally.Bad
		t.Last = max(t.Last, r.Tally.Last)
	}
	return t, nil
}

// seenAll merges what every recorder received: per command, how many times
// it reached a transport, whichever instance forwarded it.
func (w *world) seenAll(ctx context.Context) (map[delivery]int, error) {
	seen := map[delivery]int{}
	for _, e := range w.transport.entries() {
		seen[delivery{e.Target, e.Counter}] += e.Times
	}
	reps, err := w.eachInstance(ctx, instanceRequest{Op: "seen"})
	if err != nil {
		return nil, err
	}
	for _, r := range reps {
		for _, e := range r.Seen {
			seen[delivery{e.Target, e.Counter}] += e.Times
		}
	}
	return seen, nil
}

// instanceCounters returns the instance processes' ACB key agreements and
// CPU time so far.
func (w *world) instanceCounters(ctx context.Context) (ecdh int64, cpu time.Duration, err error) {
	reps, err := w.eachInstance(ctx, instanceRequest{Op: "stats"})
	if err != nil {
		return 0, 0, err
	}
	for _, r := range reps {
		if r.Stats == nil {
			return 0, 0, fmt.Errorf("%w: a stats reply without stats", ErrInstance)
		}
		ecdh += r.Stats.ECDH
		cpu += time.Duration(r.Stats.CPU)
	}
	return ecdh, cpu, nil
}

// stageTimesAll adds up the stage histograms of every router instance.
func (w *world) stageTimesAll(ctx context.Context) (map[string][2]float64, error) {
	out, err := stageTimes(w.registry)
	if err != nil {
		return nil, err
	}
	reps, err := w.eachInstance(ctx, instanceRequest{Op: "stats"})
	if err != nil {
		return nil, err
	}
	for _, r := range reps {
		if r.Stats == nil {
			return nil, fmt.Errorf("%w: a stats reply without stats", ErrInstance)
		}
		for st, v := range r.Stats.Stages {
			o := out[st]
			out[st] = [2]float64{o[0] + v[0], o[1] + v[1]}
		}
	}
	return out, nil
}

// profiler is a CPU profile of the bench process and of every instance
// process over one phase.
type profiler struct {
	w    *world
	self bytes.Buffer
}

// startProfile starts the CPU profiles.
func (w *world) startProfile(ctx context.Context) (*profiler, error) {
	p := &profiler{w: w}
	if err := pprof.StartCPUProfile(&p.self); err != nil {
		return nil, fmt.Errorf("starting CPU profile: %w", err)
	}
	if _, err := w.eachInstance(ctx, instanceRequest{Op: "profile-start"}); err != nil {
		pprof.StopCPUProfile()
		return nil, fmt.Errorf("starting CPU profile: %w", err)
	}
	return p, nil
}

// stop stops the profiles and returns the bench process's (as written by
// runtime/pprof) and the samples of all of them.
func (p *profiler) stop(ctx context.Context) ([]byte, []sample, error) {
	pprof.StopCPUProfile()
	reps, err := p.w.eachInstance(ctx, instanceRequest{Op: "profile-stop"})
	if err != nil {
		return nil, nil, fmt.Errorf("stopping CPU profile: %w", err)
	}
	samples, err := readProfile(p.self.Bytes())
	if err != nil {
		return p.self.Bytes(), nil, err
	}
	for _, r := range reps {
		s, err := readProfile(r.Profile)
		if err != nil {
			return p.self.Bytes(), nil, err
		}
		samples = append(samples, s...)
	}
	return p.self.Bytes(), samples, nil
}
