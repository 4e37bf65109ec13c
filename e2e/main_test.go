package e2e

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the metertrust binary under test; wiringErr says why the
// binary cannot run the services these tests need.
var (
	binary    string
	wiringErr error
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	flag.Parse()
	if list := flag.Lookup("test.list"); testing.Short() || (list != nil && list.Value.String() != "") {
		return m.Run() // nothing here needs the binary
	}
	binary = os.Getenv("METERTRUST_E2E_BINARY")
	if binary == "" {
		dir, err := os.MkdirTemp("", "metertrust-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "metertrust")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		build := exec.CommandContext(ctx, "go", "build", "-o", binary, "github.com/metertrust/metertrust/cmd/metertrust")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: building metertrust: %v\n%s", err, out)
			return 1
		}
	}
	// The services these tests drive must be wired into the binary.
	for _, sub := range [][]string{{"serve", "router", "--help"}, {"serve", "fleet", "--help"}} {
		out, err := exec.Command(binary, sub...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Usage:") || strings.Contains(string(out), "Available Commands:") {
			wiringErr = errors.Join(wiringErr, fmt.Errorf("metertrust %s is not wired into cmd/metertrust/main.go's serve command",
				strings.Join(sub[:2], " ")))
		}
	}
	return m.Run()
}

// needBinary skips in -short mode and fails when the binary lacks the
// services.
func needBinary(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test through the binary: not in -short mode")
	}
	if wiringErr != nil {
		t.Fatal(wiringErr)
	}
}

// cli runs the binary to completion and returns its standard output; it
// fails the test on a non-zero exit.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := cliErr(t, args...)
	if err != nil {
		t.Fatalf("metertrust %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func cliErr(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args, stdin := withOfficers(t, args)
	c := exec.CommandContext(ctx, binary, args...)
	var stdout, stderr bytes.Buffer
	c.Stdin, c.Stdout, c.Stderr = strings.NewReader(stdin), &stdout, &stderr
	if err := c.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// proc is a service process: killed in t.Cleanup whatever happens.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// start runs the binary as a long-lived service, its output in a log file
// that is printed when the test fails.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Command(binary, withMetricsListen(args)...)
	c.Stdout, c.Stderr = lf, lf
	if err := c.Start(); err != nil {
		lf.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{name: name, cmd: c, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = c.Wait()
		lf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("%s log (tail):\n%s", name, b)
		}
	})
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop asks the process to shut down (SIGTERM) and kills it after 10s.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		var ee *exec.ExitError
		if p.err != nil && !errors.As(p.err, &ee) {
			t.Errorf("%s: %v", p.name, p.err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not stop within 10s of SIGTERM", p.name)
		p.kill()
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// freeAddr returns a loopback address with a port free at the time of
// asking.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// eventually polls cond every 50ms until it returns nil or the deadline
// passes, and fails with its last error.
func eventually(t *testing.T, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// withMetricsListen gives a "serve" command that names no metrics listener
// one on a port of the kernel's choosing, so that the services of a test
// (and of tests running at once) do not all reach for their default ports.
func withMetricsListen(args []string) []string {
	if len(args) == 0 || args[0] != "serve" {
		return args
	}
	for _, a := range args {
		if strings.HasPrefix(a, "--metrics-listen") {
			return args
		}
	}
	return append(args[:len(args):len(args)], "--metrics-listen", "127.0.0.1:0")
}
