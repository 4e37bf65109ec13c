// Package conformance is the open conformance suite of metertrust: cases that
// check a device (a smart meter or a stand-in for one) or a router (a DCC-like
// access control broker) against the GB smart-metering security layer, as
// /work/shared/spec/gbcs-security.md states it (GBCS sections 3 to 12 and our
// rules), and report a verdict per case.
//
// Every case has an id (MAC-02), the spec section it checks, a title, the
// kind of target it runs against and a severity: a failed case of severity
// error fails the run, one of severity warning is reported as a warning. A
// Report is written as a terminal summary (WriteText), JUnit XML (WriteJUnit)
// and a self-contained HTML page (WriteHTML).
//
// The suite talks to a device over HTTP (POST of GBCS bytes, the endpoint of
// package device) or over TCP with the GFI text framing (section 12), acting
// as the access control broker, the supplier, the network operator, the
// transitional change-of-supplier party and an unknown remote party with the
// keys of a Keystore; the device is an electricity meter (ESME) or a gas
// meter (GSME), and the cases send its own use cases (DLMS or GBZ payloads).
// It talks to a router through its API (package client) as a DCC user (a
// supplier) and, for the consent, unknown-remote-party and change of
// supplier cases, as a third party and an incoming supplier.
//
// Vectors writes deterministic test vectors for implementers in other
// languages.
package conformance

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Target is the kind of implementation a case checks.
type Target string

// Targets.
const (
	TargetDevice Target = "device"
	TargetRouter Target = "router"
)

// Severity says what a failed case means for the run.
type Severity string

// Severities.
const (
	// SeverityError: a failure fails the run.
	SeverityError Severity = "error"
	// SeverityWarning: a failure is reported as a warning; the run passes.
	SeverityWarning Severity = "warning"
)

// Status is a case's verdict.
type Status string

// Statuses.
const (
	StatusPass Status = "pass"
	// StatusFail: the implementation did what the case forbids (or did not
	// do what it requires), and the case is of severity error.
	StatusFail Status = "fail"
	// StatusWarn: the same for a case of severity warning.
	StatusWarn Status = "warn"
	// StatusSkip: the case could not run (a key missing from the keystore,
	// a case it depends on failed); it neither passes nor fails.
	StatusSkip Status = "skip"
)

// Case describes one conformance case.
type Case struct {
	// ID is the case's stable identifier, such as "MAC-02".
	ID string
	// Section is the spec section it checks, such as "gbcs-security 5".
	Section string
	// Title says what the case sends and what it expects.
	Title string
	// Target is the kind of implementation it checks.
	Target Target
	// Severity is what a failure means.
	Severity Severity
}

// Result is the outcome of one case.
type Result struct {
	Case
	Status Status
	// Detail says what was sent and seen: why it failed, or what passed.
	Detail string
	// Duration is how long the case took.
	Duration time.Duration
}

// Report is the outcome of a run.
type Report struct {
	// Target is what ran; Name describes the implementation (its URL).
	Target Target
	Name   string
	// Started is when the run began.
	Started time.Time
	// Duration is how long it took.
	Duration time.Duration
	// Results are in the order the cases ran.
	Results []Result
}

// Count returns how many results have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, res := range r.Results {
		if res.Status == s {
			n++
		}
	}
	return n
}

// Failed reports whether any case failed (warnings and skips do not fail a
// run).
func (r *Report) Failed() bool { return r.Count(StatusFail) > 0 }

// Result returns the result of case id.
func (r *Report) Result(id string) (Result, bool) {
	for _, res := range r.Results {
		if res.ID == id {
			return res, true
		}
	}
	return Result{}, false
}

// FailedIDs returns the ids of the failed cases, in run order.
func (r *Report) FailedIDs() []string {
	var ids []string
	for _, res := range r.Results {
		if res.Status == StatusFail {
			ids = append(ids, res.ID)
		}
	}
	return ids
}

// errSkip is a case's way to say it could not run.
type errSkip struct{ why string }

func (e errSkip) Error() string { return e.why }

func skipf(format string, a ...any) error { return errSkip{fmt.Sprintf(format, a...)} }

// failure is a case's verdict that the implementation misbehaved.
type failure struct{ why string }

func (f failure) Error() string { return f.why }

func failf(format string, a ...any) error { return failure{fmt.Sprintf(format, a...)} }

// step is a registered case with its body, run against an environment E.
type step[E any] struct {
	Case
	run func(ctx context.Context, env E) (string, error)
}

// runSteps runs the steps in order and collects their results. A body
// returns a detail and nil (pass), a failure (fail or warn), errSkip (skip),
// or another error: the suite could not talk to the implementation, which
// fails the case, because the implementation did not answer as it must.
func runSteps[E any](ctx context.Context, rep *Report, steps []step[E], env E, only func(string) bool, now func() time.Time) {
	for _, s := range steps {
		if only != nil && !only(s.ID) {
			continue
		}
		start := now()
		detail, err := s.run(ctx, env)
		res := Result{Case: s.Case, Status: StatusPass, Detail: detail, Duration: now().Sub(start)}
		switch e := err.(type) {
		case nil:
		case errSkip:
			res.Status, res.Detail = StatusSkip, e.why
		default:
			res.Status, res.Detail = StatusFail, err.Error()
			if s.Severity == SeverityWarning {
				res.Status = StatusWarn
			}
		}
		rep.Results = append(rep.Results, res)
	}
}

func casesOf[E any](steps []step[E]) []Case {
	out := make([]Case, len(steps))
	for i, s := range steps {
		out[i] = s.Case
	}
	return out
}

// Cases lists every case of the suite, device cases then router cases, in
// the order they run.
func Cases() []Case {
	return slices.Concat(casesOf(deviceSteps), casesOf(routerSteps))
}

// Select returns a filter for RunOptions.Only: the cases whose id is one of
// ids or starts with one of them followed by "-" ("MAC" selects MAC-01,
// MAC-02, ...). Nil ids select every case.
func Select(ids []string) func(string) bool {
	if len(ids) == 0 {
		return nil
	}
	return func(id string) bool {
		for _, want := range ids {
			if id == want || (len(id) > len(want) && id[:len(want)] == want && id[len(want)] == '-') {
				return true
			}
		}
		return false
	}
}
