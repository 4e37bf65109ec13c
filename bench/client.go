package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Job is one load phase for the client: which commands to submit, how, and
// where. It travels as JSON to a client process on its standard input.
type Job struct {
	// URL is the router's base URL (https://127.0.0.1:port).
	URL string `json:"url"`
	// URLs, when set, are the base URLs of several router instances, in
	// place of URL: the connections are spread evenly over them,
	// connection i to URLs[i % len(URLs)] (closed loop), command i to
	// URLs[i % len(URLs)] (open loop).
	URLs []string `json:"urls,omitempty"`
	// CertFile and KeyFile hold the caller's DCCKI client certificate chain
	// and its private key (PEM); RootFile the DCCKI root (PEM).
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
	RootFile string `json:"rootFile"`
	// Connections is the number of persistent connections (and, closed
	// loop, of requests in flight).
	Connections int `json:"connections"`
	// Commands are the signed GBCS commands, submitted in this order.
	Commands [][]byte `json:"commands"`
	// Lanes, when set (closed loop), gives each command its connection:
	// commands of one lane go one after the other in order, so that two
	// commands to one device never overtake each other.
	Lanes []int `json:"lanes,omitempty"`
	// Rate, when positive, paces the submissions open loop at Rate per
	// second; zero submits closed loop as fast as answers come.
	Rate float64 `json:"rate,omitempty"`
}

// Result is what the client saw of a Job.
type Result struct {
	// Start is when the first command was sent (Unix nanoseconds, taken
	// after the connections were established); End when the last answer
	// arrived.
	Start int64 `json:"start"`
	End   int64 `json:"end"`
	// Accepted counts 202 answers; Refused counts other answers by problem
	// code (or HTTP status); Errors counts requests that got no answer.
	Accepted int            `json:"accepted"`
	Refused  map[string]int `json:"refused,omitempty"`
	Errors   int            `json:"errors"`
	// FirstError is the first failure's text, for the report.
	FirstError string `json:"firstError,omitempty"`
	// AcceptedBy counts the 202 answers by router: one entry per base URL
	// of the job, in its order.
	AcceptedBy []int `json:"acceptedBy"`
	// Latencies are the answer times in nanoseconds, one per command, in
	// submission order (open loop: from the scheduled send time).
	Latencies []int64 `json:"latencies"`
}

// ErrClient is wrapped by failures of the load client itself.
var ErrClient = errors.New("bench: load client")

// Launcher runs a Job and returns its Result and the CPU time the client
// used (zero when it cannot be told apart from the server's).
type Launcher interface {
	Launch(ctx context.Context, job Job) (Result, time.Duration, error)
}

// InProcess runs the client in the calling process. Its CPU time cannot be
// measured apart from the router's, except by the profile label
// "component=client" that it sets.
type InProcess struct{}

// Launch runs job in this process, its goroutines labelled
// component=client for the CPU profile.
func (InProcess) Launch(ctx context.Context, job Job) (Result, time.Duration, error) {
	var res Result
	var err error
	pprof.Do(ctx, pprof.Labels("component", ComponentClient), func(ctx context.Context) {
		res, err = RunClient(ctx, job)
	})
	return res, 0, err
}

// Exec runs the client as a child process: Path with Args, which must end
// up calling ServeClient on its standard input and output (the metertrust
// binary's hidden "bench router-client", or a test binary re-executed).
type Exec struct {
	Path string
	Args []string
	Env  []string
}

// Launch starts the child, hands it job and reads its result; the CPU time
// is the child's user plus system time.
func (e Exec) Launch(ctx context.Context, job Job) (Result, time.Duration, error) {
	in, err := json.Marshal(job)
	if err != nil {
		return Result{}, 0, fmt.Errorf("%w: encoding job: %w", ErrClient, err)
	}
	cmd := exec.CommandContext(ctx, e.Path, e.Args...)
	cmd.Env = append(os.Environ(), e.Env...)
	cmd.Stdin = bytes.NewReader(in)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return Result{}, 0, fmt.Errorf("%w: %s: %w: %s", ErrClient, e.Path, err, snippet(errOut.String()))
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return Result{}, 0, fmt.Errorf("%w: reading the client's result: %w: %s", ErrClient, err, snippet(out.String()))
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return res, cpu, nil
}

func snippet(s string) string {
	if len(s) > 400 {
		return s[:400] + "..."
	}
	return s
}

// ServeClient is the client process's main: it reads a Job as JSON from r,
// runs it, and writes the Result as JSON to w.
func ServeClient(ctx context.Context, r io.Reader, w io.Writer) error {
	var job Job
	d := json.NewDecoder(r)
	d.DisallowUnknownFields()
	if err := d.Decode(&job); err != nil {
		return fmt.Errorf("%w: reading job: %w", ErrClient, err)
	}
	res, err := RunClient(ctx, job)
	if err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(res)
}

// RunClient opens job.Connections mutual-TLS connections to the router (or
// spread evenly over the routers of job.URLs), then submits the commands
// (closed loop, or paced open loop when job.Rate is set) and reports what
// came back.
func RunClient(ctx context.Context, job Job) (Result, error) {
	switch {
	case job.URL == "" && len(job.URLs) == 0:
		return Result{}, fmt.Errorf("%w: job has no URL", ErrClient)
	case slices.Contains(job.URLs, ""):
		return Result{}, fmt.Errorf("%w: job has an empty URL among %d", ErrClient, len(job.URLs))
	case job.Connections < 1:
		return Result{}, fmt.Errorf("%w: job needs at least one connection, has %d", ErrClient, job.Connections)
	case job.Lanes != nil && len(job.Lanes) != len(job.Commands):
		return Result{}, fmt.Errorf("%w: %d lanes for %d commands", ErrClient, len(job.Lanes), len(job.Commands))
	case job.Rate < 0:
		return Result{}, fmt.Errorf("%w: negative rate %g", ErrClient, job.Rate)
	}
	client, err := newHTTPClient(job)
	if err != nil {
		return Result{}, err
	}
	defer client.CloseIdleConnections()
	c := &loadClient{bases: job.bases(), http: client}
	if err := c.warm(ctx, job.Connections); err != nil {
		return Result{}, err
	}
	res := Result{Refused: map[string]int{}, Latencies: make([]int64, len(job.Commands)), AcceptedBy: make([]int, len(c.bases))}
	var mu sync.Mutex
	record := func(i, base int, lat time.Duration, outcome string, err error) {
		mu.Lock()
		defer mu.Unlock()
		res.Latencies[i] = int64(lat)
		switch {
		case err != nil:
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = err.Error()
			}
		case outcome == "":
			res.Accepted++
			res.AcceptedBy[base]++
		default:
			res.Refused[outcome]++
			if res.FirstError == "" {
				res.FirstError = "refused: " + outcome
			}
		}
	}
	start := time.Now()
	res.Start = start.UnixNano()
	if job.Rate > 0 {
		c.openLoop(ctx, job, start, record)
	} else {
		c.closedLoop(ctx, job, record)
	}
	res.End = time.Now().UnixNano()
	return res, ctx.Err()
}

func newHTTPClient(job Job) (*http.Client, error) {
	kp, err := tls.LoadX509KeyPair(job.CertFile, job.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: client certificate: %w", ErrClient, err)
	}
	rootPEM, err := os.ReadFile(job.RootFile)
	if err != nil {
		return nil, fmt.Errorf("%w: DCCKI root: %w", ErrClient, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		return nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrClient, job.RootFile)
	}
	// HTTP/1.1 keep-alive: one request in flight per connection, at most
	// Connections connections, all opened before the clock starts.
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{kp}, ServerName: "localhost", MinVersion: tls.VersionTLS12},
		MaxConnsPerHost:     job.Connections,
		MaxIdleConnsPerHost: job.Connections,
		MaxIdleConns:        job.Connections,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}, nil
}

// bases returns the routers' base URLs: URLs, or URL alone.
func (job Job) bases() []string {
	if len(job.URLs) > 0 {
		return job.URLs
	}
	return []string{job.URL}
}

type loadClient struct {
	bases []string // the routers' base URLs
	http  *http.Client
}

// warm establishes n connections (TLS handshakes with client
// certificates), connection i to router i % len(bases), with n concurrent
// authenticated reads, before the clock.
func (c *loadClient) warm(ctx context.Context, n int) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.bases[i%len(c.bases)]+"/v1/responses?limit=1&after=1000000000", nil)
			if err != nil {
				errs[i] = err
				return
			}
			res, err := c.http.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				errs[i] = fmt.Errorf("GET /v1/responses answered %s", res.Status)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: opening connections: %w", ErrClient, err)
	}
	return nil
}

// submit posts one command to router base and returns "" when it was
// accepted, else the problem code.
func (c *loadClient) submit(ctx context.Context, base int, msg []byte) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.bases[base]+"/v1/commands", bytes.NewReader(msg))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<16))
	if err != nil {
		return "", err
	}
	if res.StatusCode == http.StatusAccepted {
		return "", nil
	}
	var p struct {
		Code string `json:"code"`
	}
	if json.Unmarshal(body, &p) == nil && p.Code != "" {
		return p.Code, nil
	}
	return fmt.Sprintf("http-%d", res.StatusCode), nil
}

func (c *loadClient) closedLoop(ctx context.Context, job Job, record func(int, int, time.Duration, string, error)) {
	lanes := make([][]int, job.Connections)
	var next atomic.Int64
	if job.Lanes != nil {
		for i, l := range job.Lanes {
			lanes[l%job.Connections] = append(lanes[l%job.Connections], i)
		}
	}
	var wg sync.WaitGroup
	for w := range job.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := w % len(c.bases)
			one := func(i int) {
				t0 := time.Now()
				outcome, err := c.submit(ctx, base, job.Commands[i])
				record(i, base, time.Since(t0), outcome, err)
			}
			if job.Lanes != nil {
				for _, i := range lanes[w] {
					if ctx.Err() != nil {
						return
					}
					one(i)
				}
				return
			}
			for {
				i := int(next.Add(1) - 1)
				if i >= len(job.Commands) || ctx.Err() != nil {
					return
				}
				one(i)
			}
		}()
	}
	wg.Wait()
}

// openLoop sends command i at start + i/rate, to router i % len(bases),
// whatever the answers, and measures each latency from that scheduled
// time, so that a slow answer delays the measurement of the ones queued
// behind it (no coordinated omission).
func (c *loadClient) openLoop(ctx context.Context, job Job, start time.Time, record func(int, int, time.Duration, string, error)) {
	var wg sync.WaitGroup
	interval := float64(time.Second) / job.Rate
	for i := range job.Commands {
		at := start.Add(time.Duration(float64(i) * interval))
		if d := time.Until(at); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				wg.Wait()
				return
			case <-t.C:
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := i % len(c.bases)
			outcome, err := c.submit(ctx, base, job.Commands[i])
			record(i, base, time.Since(at), outcome, err)
		}()
	}
	wg.Wait()
}
