package models

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metertrust/metertrust/internal/testenv"
)

// check is one model-checking run: a model, its spin switches, and whether
// pan must find an error.
type check struct {
	name  string
	model string   // a .pml file of this folder
	defs  []string // spin -D switches
	// liveness compiles pan with cycle checks and runs it with -a (the
	// model's LTL property); otherwise pan checks safety only (-DSAFETY).
	liveness bool
	// refuted is the part of pan's error line ("assertion violated ...",
	// "acceptance cycle") that must appear; "" means pan must find no
	// error at all.
	refuted string
	// shortest searches breadth first, for the shortest counterexample.
	shortest bool
	// reachAll requires every statement to be reached in some run, but
	// the meter's end (it waits for messages for ever).
	reachAll bool
}

// TestAntiReplay model-checks the router's anti-replay rule with group
// commit, the at-least-once outbox, a lossy and duplicating link and
// crashes (see the package documentation): the model must hold, its
// wrong variants must be refuted, and its witness situations must be
// reachable.
func TestAntiReplay(t *testing.T) {
	spin := testenv.LookPath(t, "spin")
	gcc := testenv.LookPath(t, "gcc")
	for _, c := range []check{
		{name: "holds", model: "antireplay.pml", reachAll: true},
		{name: "always ends", model: "antireplay.pml", defs: []string{"LIVENESS"}, liveness: true, reachAll: true},
		// One command per group, as when a group holds at most one
		// command per pair, each pre-checked as it arrives, while a
		// group commits.
		{name: "holds one per group, concurrent pre-check", model: "antireplay.pml", defs: []string{"MAXG=1", "CONCURRENT"}},
		// Advancing the in-memory counter before the commit: a refusal
		// as a replay with no command of that counter committed; with
		// crashes and failed transactions, and with failed transactions
		// only.
		{name: "broken", model: "antireplay_broken.pml", refuted: "db_last>=", shortest: true},
		{name: "broken without crashes", model: "antireplay_broken.pml", defs: []string{"CRASHES=0"}, refuted: "db_last>=", shortest: true},
		// Forwarding out of counter order: an accepted command lost.
		{name: "unordered", model: "antireplay.pml", defs: []string{"UNORDERED"}, refuted: "!(committed[i])||(exec[i]==1)"},
		{name: "witness resubmitted after a failed group", model: "antireplay.pml", defs: []string{"WITNESS=1"}, refuted: "exec[4]==1"},
		{name: "witness crash after commit", model: "antireplay.pml", defs: []string{"WITNESS=2"}, refuted: "told[5]==2"},
		{name: "witness meter refuses a copy", model: "antireplay.pml", defs: []string{"WITNESS=3"}, refuted: "devreplay_seen"},
		{name: "witness replay refused", model: "antireplay.pml", defs: []string{"WITNESS=4"}, refuted: "told[2]==2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			expect(t, spin, gcc, c)
		})
	}
}

// TestChangeOfSupplier model-checks the router's change-of-supplier state
// machine (CS02b supplierByTransCoS), racing the old supplier's own key
// rotation, with the CS02a read that settles a change of unknown outcome, a
// lossy, duplicating and late link, and crashes (see the package
// documentation): the model must hold and every change settle, its wrong
// variants must be refuted, and its witness situations must be reachable.
func TestChangeOfSupplier(t *testing.T) {
	spin := testenv.LookPath(t, "spin")
	gcc := testenv.LookPath(t, "gcc")
	const (
		m = "changeofsupplier.pml"
		// The properties, as pan prints them once cpp has expanded the
		// model's macros: (a) settled means the meter holds the
		// router's key; (b) the router admits only the supplier the
		// meter trusts (here: OLD while the meter trusts NEW); (d) the
		// meter applies only the change the router awaits.
		a = "||(db_key==m_key))"
		b = "||(( ((m_key==3)) ? (2) : (1) )==1))"
		d = "((db_state!=0)&&(e==db_ep))"
	)
	for _, c := range []check{
		{name: "holds", model: m, reachAll: true},
		{name: "every change settles", model: m, defs: []string{"LIVENESS"}, liveness: true, reachAll: true},
		// Ownership moved when the CS02b is sent: refuted at once, and,
		// checked only when nothing is on its way, after a lost CS02b.
		{name: "broken", model: "changeofsupplier_broken.pml", refuted: a, shortest: true},
		{name: "broken, at rest", model: "changeofsupplier_broken.pml", defs: []string{"ATREST"}, refuted: a, shortest: true},
		// The old owner's critical commands still admitted while the
		// change is pending or unsettled.
		{name: "not blocking", model: m, defs: []string{"NOBLOCK"}, refuted: b, shortest: true},
		// A second change started while one is under way.
		{name: "two changes at once", model: m, defs: []string{"NOEXCL"}, refuted: d, shortest: true},
		// Settling from a CS02a answer of an earlier change.
		{name: "uncorrelated read", model: m, defs: []string{"UNCORRELATED"}, refuted: a},
		// A CS02b copy the meter discards as a replay taken for "not
		// applied".
		{name: "replay taken as refusal", model: m, defs: []string{"REPLAYMEANSNO"}, refuted: a, shortest: true},
		// The design's assumption: the CS02a does not overtake the CS02b.
		{name: "read overtakes the change", model: m, defs: []string{"OVERTAKE"}, refuted: d, shortest: true},
		// No second read when the first is lost: a change that never
		// settles.
		{name: "no read again", model: m, defs: []string{"LIVENESS", "NORETRY"}, liveness: true, refuted: "acceptance cycle"},
		{name: "witness read after a lost answer", model: m, defs: []string{"WITNESS=1"}, refuted: "answer_lost&&read_settled"},
		{name: "witness rotation races the change", model: m, defs: []string{"WITNESS=2"}, refuted: "cos_waited&&(rot_told==6)"},
		{name: "witness refused change", model: m, defs: []string{"WITNESS=3"}, refuted: "cos_told==7"},
		{name: "witness late answer", model: m, defs: []string{"WITNESS=4"}, refuted: "late_answer"},
		{name: "witness old supplier refused twice", model: m, defs: []string{"WITNESS=5"}, refuted: "old_notowner&&(mrefused[1]>0)", shortest: true},
		{name: "witness refused while unsettled", model: m, defs: []string{"WITNESS=6"}, refuted: "unsettled_refused"},
		{name: "witness restart with the change pending", model: m, defs: []string{"WITNESS=7"}, refuted: "crash_unsettled&&read_settled"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			expect(t, spin, gcc, c)
		})
	}
}

// expect runs c and fails t when pan's verdict is not the one c expects.
func expect(t *testing.T, spin, gcc string, c check) {
	t.Helper()
	start := time.Now()
	r := verify(t, spin, gcc, c)
	t.Logf("%s %v: %d errors, %.0f states stored, %.0f transitions, depth %d, pan %.2fs, %s in all",
		c.model, c.defs, r.errors, r.stored, r.transitions, r.depth, r.elapsed, time.Since(start).Round(10*time.Millisecond))
	if c.refuted == "" {
		if r.errors != 0 {
			t.Fatalf("pan found %d errors; trail:\n%s\npan:\n%s", r.errors, r.trail, r.out)
		}
		if c.reachAll && (len(r.unreached) != 1 || !strings.HasPrefix(r.unreached[0], "Meter ") || !strings.HasSuffix(r.unreached[0], `"-end-"`)) {
			t.Fatalf("statements never reached, want only the meter's end: %q", r.unreached)
		}
		return
	}
	if r.errors == 0 {
		t.Fatalf("pan found no error, want %q refuted:\n%s", c.refuted, r.out)
	}
	if !strings.Contains(r.violated, c.refuted) {
		t.Fatalf("pan refuted %q, want %q:\n%s", r.violated, c.refuted, r.out)
	}
	t.Logf("counterexample (%d steps):\n%s", r.depth, r.trail)
}

// result is what pan reported.
type result struct {
	errors, depth       int
	stored, transitions float64
	elapsed             float64 // seconds, pan's own count
	violated            string  // pan's first error: "assertion violated ...", "acceptance cycle"
	// unreached lists the statements no run reached, as "Proc "stmt"".
	unreached []string
	out       string // pan's output
	trail     string // the model's narration of the error trail, if any
}

var (
	reErrors      = regexp.MustCompile(`errors: (\d+)`)
	reDepth       = regexp.MustCompile(`depth reached (\d+)`)
	reStored      = regexp.MustCompile(`([0-9.e+]+) states, stored`)
	reTransitions = regexp.MustCompile(`([0-9.e+]+) transitions`)
	reElapsed     = regexp.MustCompile(`elapsed time ([0-9.e+-]+) seconds`)
	reViolated    = regexp.MustCompile(`pan:1: (.*?)(?: \(at depth \d+\))?\n`)
	reUnreached   = regexp.MustCompile(`^\s+\S+\.pml:\d+, state \d+, (".*")$`)
)

// verify translates c's model with spin, compiles pan and runs it in a
// fresh directory, and returns what pan found; when it found an error, the
// trail is replayed with spin.
func verify(t *testing.T, spin, gcc string, c check) result {
	t.Helper()
	dir := t.TempDir()
	models, err := filepath.Glob("*.pml")
	if err != nil || len(models) == 0 {
		t.Fatalf("no models here: %v", err)
	}
	for _, m := range models {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, m), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	var defs []string
	for _, d := range c.defs {
		defs = append(defs, "-D"+d)
	}
	// spin reports some model errors ("Error: dubious use of 'else'")
	// and still writes pan.c.
	if out := run(spin, append(append(defs, "-a"), c.model)...); strings.Contains(out, "Error") {
		t.Fatalf("spin -a %s:\n%s", c.model, out)
	}
	// pan: at most 2 GiB of memory, depth bounded well above the
	// model's; a search expected to stop at its first error is compiled
	// without optimisation, which is faster overall.
	cflags := []string{"-w", "-DMEMLIM=2048", "-o", "pan", "pan.c"}
	if c.refuted == "" {
		cflags = append(cflags, "-O2")
	}
	if !c.liveness {
		cflags = append(cflags, "-DSAFETY")
	}
	if c.shortest {
		cflags = append(cflags, "-DBFS")
	}
	panArgs := []string{"-m100000"}
	if c.liveness {
		panArgs = append(panArgs, "-a")
	}
	run(gcc, cflags...)
	out := run(filepath.Join(dir, "pan"), panArgs...)
	for _, bad := range []string{"max search depth too small", "out of memory", "pan: reached -DMEMLIM bound"} {
		if strings.Contains(out, bad) {
			t.Fatalf("pan: %s: the search was not complete:\n%s", bad, out)
		}
	}
	r := result{out: out}
	num := func(re *regexp.Regexp) float64 {
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("pan's output has no %q:\n%s", re, out)
		}
		f, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatalf("pan's output: %q: %v", m[0], err)
		}
		return f
	}
	r.errors, r.depth = int(num(reErrors)), int(num(reDepth))
	r.stored, r.transitions, r.elapsed = num(reStored), num(reTransitions), num(reElapsed)
	if m := reViolated.FindStringSubmatch(out); m != nil {
		r.violated = m[1]
	}
	// "unreached in proctype Router", then one line per statement.
	proc := ""
	for line := range strings.SplitSeq(out, "\n") {
		if p, ok := strings.CutPrefix(line, "unreached in "); ok {
			proc = strings.TrimPrefix(strings.TrimPrefix(p, "proctype "), "claim ")
			continue
		}
		if m := reUnreached.FindStringSubmatch(line); m != nil && proc != "" {
			r.unreached = append(r.unreached, proc+" "+m[1])
		}
	}
	if r.errors > 0 {
		// The model narrates the trail with printf; -T leaves it
		// unindented. The state dump after the end is left out.
		trail := run(spin, append(append(defs, "-T", "-t"), c.model)...)
		trail, _, _ = strings.Cut(trail, "spin: trail ends")
		r.trail = trail
	}
	return r
}
