package testenv

import (
	"fmt"
	"testing"
)

// recorder is a testing.TB that records Fatal and Skip instead of ending
// the goroutine; both unwind with a panic that run recovers.
type recorder struct {
	testing.TB
	fatal, skipped string
}

type stop struct{}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	panic(stop{})
}
func (r *recorder) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	panic(stop{})
}

func run(t *testing.T, f func(tb testing.TB)) *recorder {
	r := &recorder{TB: t}
	func() {
		defer func() {
			if v := recover(); v != nil {
				if _, ok := v.(stop); !ok {
					panic(v)
				}
			}
		}()
		f(r)
	}()
	return r
}

// TestRule checks skip-or-fail for a variable and for a program, with and
// without CI, and that what is present is returned.
func TestRule(t *testing.T) {
	for _, tc := range []struct {
		name, value, ci string
		program         string
		want            string // "ok", "skip" or "fail"
	}{
		{name: "var set", value: "x", want: "ok"},
		{name: "var set under CI", value: "x", ci: "true", want: "ok"},
		{name: "var unset", want: "skip"},
		{name: "var unset under CI", ci: "true", want: "fail"},
		{name: "program found", program: "go", want: "ok"},
		{name: "program missing", program: "metertrust-no-such-program", want: "skip"},
		{name: "program missing under CI", program: "metertrust-no-such-program", ci: "true", want: "fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("METERTRUST_TEST_TESTENV", tc.value)
			t.Setenv("CI", tc.ci)
			var got string
			r := run(t, func(tb testing.TB) {
				if tc.program != "" {
					got = LookPath(tb, tc.program)
				} else {
					got = Var(tb, "METERTRUST_TEST_TESTENV")
				}
			})
			outcome := "ok"
			switch {
			case r.fatal != "":
				outcome = "fail"
			case r.skipped != "":
				outcome = "skip"
			}
			if outcome != tc.want {
				t.Fatalf("outcome %s (fatal %q, skip %q), want %s", outcome, r.fatal, r.skipped, tc.want)
			}
			if outcome == "ok" && got == "" {
				t.Error("returned nothing")
			}
			if tc.program == "" && outcome == "ok" && got != tc.value {
				t.Errorf("Var = %q, want %q", got, tc.value)
			}
		})
	}
}
