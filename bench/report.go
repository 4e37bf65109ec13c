package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the report as tables for people.
func (r *Report) WriteTable(out io.Writer) error {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "metertrust bench router: %s store, %d meters, %d client connections, client in %s\n",
		r.Store, r.Meters, r.Concurrency, map[bool]string{true: "its own process", false: "this process"}[r.ClientProcess])
	fmt.Fprintf(&b, "machine: %d CPUs (GOMAXPROCS %d), %s, %s %s; load average %.2f %.2f %.2f at start, %.2f %.2f %.2f at end\n\n",
		m.CPUs, m.GOMAXPROCS, m.CPUModel, m.GoVersion, m.OS, m.LoadStart[0], m.LoadStart[1], m.LoadStart[2], m.LoadEnd[0], m.LoadEnd[1], m.LoadEnd[2])

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "figure\tvalue\t\n")
	fmt.Fprintf(tw, "1. raw ECDSA P-256 verifications/s (all cores; mean of %.0f before and %.0f after the peak)\t%.0f\t\n",
		r.VerifyBefore, r.VerifyAfter, r.VerifyRate)
	fmt.Fprintf(tw, "2. router commands/s (whole pipeline, to the recording transport)\t%.0f\t\n", r.Router.Rate)
	fmt.Fprintf(tw, "3. ratio router / verify (target %.1f)\t%.3f\t\n", r.TargetRatio, r.Ratio)
	fmt.Fprintf(tw, "   latency at %.0f/s open loop: p50 / p99 / max ms (target p99 < %d)\t%.1f / %.1f / %.1f\t\n",
		r.HalfLoad.OfferedRate, TargetP99.Milliseconds(), r.HalfLoad.P50, r.HalfLoad.P99, r.HalfLoad.Max)
	fmt.Fprintf(tw, "4. end-to-end commands/s (meters execute, sign responses; router checks them)\t%.0f\t\n", r.EndToEnd.Rate)
	tw.Flush()

	fmt.Fprintf(&b, "\nphases\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "phase\tcommands\taccepted\trecorded\tseconds\trate/s\tclient rate/s\tp50 ms\tp99 ms\tECDH\tserver CPU ms/cmd\tCPU s: server\tclient\tpostgres\tmachine\twall\t\n")
	for _, p := range []Phase{r.Router, r.HalfLoad, r.EndToEnd} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t%.0f\t%.0f\t%.1f\t%.1f\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n",
			p.Name, p.Commands, p.Accepted, p.Recorded, p.Seconds, p.Rate, p.ClientRate, p.P50, p.P99, p.ECDH,
			p.ServerCPUPerCommand, p.CPU.Server, p.CPU.Client, p.CPU.Postgres, p.CPU.Machine, p.CPU.Wall)
	}
	tw.Flush()

	if len(r.Stages) > 0 {
		fmt.Fprintf(&b, "\npipeline stages during the peak (mean per command, wall time incl. waiting)\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		for _, s := range r.Stages {
			fmt.Fprintf(tw, "%s\t%.3f ms\t\n", s.Stage, s.MeanMS)
		}
		tw.Flush()
	}
	if len(r.RouterProfile) > 0 {
		fmt.Fprintf(&b, "\nserver CPU during the peak, by package (flat)\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		for _, s := range r.RouterProfile {
			fmt.Fprintf(tw, "%s\t%.1f%%\t\n", s.Name, 100*s.Fraction)
		}
		tw.Flush()
	}
	if len(r.RouterActivities) > 0 {
		fmt.Fprintf(&b, "\nserver CPU during the peak, by activity (innermost stage or layer on the stack)\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		for _, s := range r.RouterActivities {
			fmt.Fprintf(tw, "%s\t%.1f%%\t%.2f ms/command\t\n", s.Name, 100*s.Fraction,
				s.Fraction*r.Router.ServerCPUPerCommand)
		}
		tw.Flush()
	}
	if len(r.Split) > 0 {
		fmt.Fprintf(&b, "\nCPU split of the end-to-end phase\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		for _, s := range r.Split {
			fmt.Fprintf(tw, "%s\t%.2f s\t%.1f%%\t\n", s.Name, r.SplitSeconds[s.Name], 100*s.Fraction)
		}
		tw.Flush()
	}
	for _, p := range []Phase{r.Router, r.HalfLoad, r.EndToEnd} {
		if len(p.Refused) > 0 {
			fmt.Fprintf(&b, "%s: refused %v\n", p.Name, slices.Sorted(maps.Keys(p.Refused)))
		}
	}
	_, err := io.WriteString(out, b.String())
	return err
}
