package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// verdict is a check's mark in the tables.
func verdict(pass bool) string {
	if pass {
		return "pass"
	}
	return "FAIL"
}

// target writes a check's target as "≥ 0.5" or "< 20 ms".
func (c Check) target() string {
	op := "≥"
	if c.AtMost {
		op = "<"
	}
	if c.Unit != "" {
		return fmt.Sprintf("%s %g %s", op, c.Target, c.Unit)
	}
	return fmt.Sprintf("%s %g", op, c.Target)
}

// WriteTable prints the report as tables for people.
func (r *Report) WriteTable(out io.Writer) error {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "metertrust bench router: %s store, %d meters, %d client connections, client in %s\n",
		r.Store, r.Meters, r.Concurrency, map[bool]string{true: "its own process", false: "this process"}[r.ClientProcess])
	fmt.Fprintf(&b, "machine: %d CPUs (GOMAXPROCS %d), %s, %s %s; load average %.2f %.2f %.2f at start, %.2f %.2f %.2f at end\n",
		m.CPUs, m.GOMAXPROCS, m.CPUModel, m.GoVersion, m.OS, m.LoadStart[0], m.LoadStart[1], m.LoadStart[2], m.LoadEnd[0], m.LoadEnd[1], m.LoadEnd[2])
	if p := r.Preload; p != nil {
		fmt.Fprintf(&b, "store pre-loaded in %.1f s: %d commands (with %d deliveries, %d counters), %d audit entries, %d devices, %d users (%d certificates)\n",
			p.Seconds, p.Commands, p.Deliveries, p.Counters, p.AuditEntries, p.Devices, p.Users, p.Certificates)
		fmt.Fprintf(&b, "  devices %.1f s, users %.1f s, commands and audit entries %.1f s, checkpoint or vacuum %.1f s\n",
			p.DevicesTook.Seconds(), p.UsersTook.Seconds(), p.CommandsTook.Seconds(), p.FinishTook.Seconds())
	} else {
		fmt.Fprintf(&b, "store: fresh\n")
	}
	if r.Routers > 1 {
		fmt.Fprintf(&b, "routers: %d instances on the one store, the bench process's and %d more each in a process of its own (bench router-instance),\n", r.Routers, r.Routers-1)
		fmt.Fprintf(&b, "  each with its own store handle; the client spreads its connections evenly over them; rates are their aggregate,\n")
		fmt.Fprintf(&b, "  server CPU is that of all %d processes\n", r.Routers)
	}
	if !r.ClientProcess {
		fmt.Fprintf(&b, "(the client ran in this process: its CPU counts as the router's, so E is understated)\n")
	}
	b.WriteString("\n")

	checks := map[string]Check{}
	for _, c := range r.Checks {
		checks[c.Name] = c
	}
	row := func(tw io.Writer, name, value string) {
		c, ok := checks[name]
		if !ok {
			fmt.Fprintf(tw, "%s\t%s\t\t\t\n", name, value)
			return
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", name, value, c.target(), verdict(c.Pass))
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "figure\tvalue\ttarget\t\t\n")
	row(tw, fmt.Sprintf("1. raw ECDSA P-256 verifications/s (%d cores; %.0f before, %.0f after the peak)", r.Cores, r.VerifyBefore, r.VerifyAfter),
		fmt.Sprintf("%.0f", r.VerifyRate))
	row(tw, fmt.Sprintf("   raw ECDH P-256 key agreements/s (%d cores; %.0f before, %.0f after the peak)", r.Cores, r.ECDHBefore, r.ECDHAfter),
		fmt.Sprintf("%.0f", r.ECDHRate))
	row(tw, fmt.Sprintf("   CPU floor per command, ms of one core (CPU time / operations): verification %.3f + ECDH %.3f", r.VerifyMS, r.ECDHMS), fmt.Sprintf("%.3f", r.FloorMS))
	row(tw, "2. router commands/s (peak: whole pipeline, to the recording transport)", fmt.Sprintf("%.0f", r.Router.Rate))
	if len(r.Router.AcceptedBy) > 1 {
		row(tw, "   accepted by each router instance at the peak", joinInts(r.Router.AcceptedBy, " + "))
	}
	row(tw, "   old ratio: router commands / verifications", fmt.Sprintf("%.3f", r.Ratio))
	row(tw, "3. router CPU per command at the peak, ms", fmt.Sprintf("%.3f", r.Router.ServerCPUPerCommand))
	row(tw, "   PostgreSQL CPU per command at the peak, ms", fmt.Sprintf("%.3f", r.Router.PostgresCPUPerCommand))
	row(tw, "CPU efficiency E at the peak", fmt.Sprintf("%.3f", r.Router.Efficiency))
	row(tw, "machine CPU use at the peak (router, client, database)", fmt.Sprintf("%.2f (whole machine busy %.2f)", r.Router.CPUShare,
		r.Router.CPU.Machine/(float64(r.Machine.CPUs)*r.Router.CPU.Wall)))
	row(tw, "p99 latency at half the peak rate", fmt.Sprintf("%.1f (p50 %.1f, max %.1f) at %.0f/s", r.HalfLoad.P99, r.HalfLoad.P50, r.HalfLoad.Max, r.HalfLoad.OfferedRate))
	row(tw, "p99 latency at 90% of the peak rate", fmt.Sprintf("%.1f (p50 %.1f, max %.1f) at %.0f/s", r.NinetyLoad.P99, r.NinetyLoad.P50, r.NinetyLoad.Max, r.NinetyLoad.OfferedRate))
	row(tw, "4. end-to-end commands/s (meters execute, sign responses; router checks them)", fmt.Sprintf("%.0f", r.EndToEnd.Rate))
	auditValue := fmt.Sprintf("%d entries in %.1f s", r.Audit.Entries, r.Audit.Seconds)
	if r.Audit.Error != "" {
		auditValue += ": " + r.Audit.Error
	}
	row(tw, "audit chain verifies after the run (entries)", auditValue)
	tw.Flush()

	fmt.Fprintf(&b, "\nphases (E = %.3f ms floor / (server + PostgreSQL CPU per command); CPU use = server + client + PostgreSQL CPU over %d cores × wall)\n", r.FloorMS, r.Machine.CPUs)
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "phase\tcommands\taccepted\trecorded\tseconds\trate/s\tclient rate/s\tp50 ms\tp99 ms\tECDH\tserver CPU ms/cmd\tpg CPU ms/cmd\tE\tCPU use\tCPU s: server\tclient\tpostgres\tmachine\twall\t\n")
	for _, p := range r.phases() {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t%.0f\t%.0f\t%.1f\t%.1f\t%d\t%.3f\t%.3f\t%.3f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n",
			p.Name, p.Commands, p.Accepted, p.Recorded, p.Seconds, p.Rate, p.ClientRate, p.P50, p.P99, p.ECDH,
			p.ServerCPUPerCommand, p.PostgresCPUPerCommand, p.Efficiency, p.CPUShare,
			p.CPU.Server, p.CPU.Client, p.CPU.Postgres, p.CPU.Machine, p.CPU.Wall)
	}
	tw.Flush()
	if r.Routers > 1 {
		fmt.Fprintf(&b, "\nrouter instances (the instance processes' CPU is counted in server above)\n")
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "phase\taccepted by instance\tinstance processes CPU s\t\n")
		for _, p := range r.phases() {
			fmt.Fprintf(tw, "%s\t%s\t%.2f\t\n", p.Name, joinInts(p.AcceptedBy, " + "), p.CPU.Routers)
		}
		tw.Flush()
	}

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
	for _, p := range r.phases() {
		if len(p.Refused) > 0 {
			fmt.Fprintf(&b, "%s: refused %v\n", p.Name, slices.Sorted(maps.Keys(p.Refused)))
		}
	}
	_, err := io.WriteString(out, b.String())
	return err
}

func (r *Report) phases() []Phase {
	return []Phase{r.Router, r.HalfLoad, r.NinetyLoad, r.EndToEnd}
}

// WriteTable prints both reports, then the two side by side with the
// pre-loaded peak rate's check.
func (c *Comparison) WriteTable(out io.Writer) error {
	p := c.Preloaded
	return writeComparison(out, "fresh store", "pre-loaded store",
		fmt.Sprintf("fresh against pre-loaded (%d commands, %d audit entries, %d devices, %d users, loaded in %.1f s)",
			p.Preload.Commands, p.Preload.AuditEntries, p.Preload.Devices, p.Preload.Users, p.Preload.Seconds),
		"fresh", "pre-loaded", c.Fresh, c.Preloaded, "", c.Check)
}

// writeComparison prints reports a and b under their titles, then their
// main figures side by side (columns ca and cb) under title, then note
// (if any) and check.
func writeComparison(out io.Writer, titleA, titleB, title, ca, cb string, a, b *Report, note string, check Check) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "== %s\n", titleA)
	if err := a.WriteTable(&sb); err != nil {
		return err
	}
	fmt.Fprintf(&sb, "\n== %s\n", titleB)
	if err := b.WriteTable(&sb); err != nil {
		return err
	}
	fmt.Fprintf(&sb, "\n== %s\n", title)
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "figure\t%s\t%s\t\n", ca, cb)
	for _, row := range []struct {
		name   string
		format string
		a, b   float64
	}{
		{"router commands/s at the peak (aggregate)", "%.0f", a.Router.Rate, b.Router.Rate},
		{"router CPU ms per command at the peak (all router processes)", "%.3f", a.Router.ServerCPUPerCommand, b.Router.ServerCPUPerCommand},
		{"PostgreSQL CPU ms per command at the peak", "%.3f", a.Router.PostgresCPUPerCommand, b.Router.PostgresCPUPerCommand},
		{"E at the peak", "%.3f", a.Router.Efficiency, b.Router.Efficiency},
		{"machine CPU use at the peak", "%.2f", a.Router.CPUShare, b.Router.CPUShare},
		{"p99 ms at half the peak rate", "%.1f", a.HalfLoad.P99, b.HalfLoad.P99},
		{"p99 ms at 90% of the peak rate", "%.1f", a.NinetyLoad.P99, b.NinetyLoad.P99},
		{"end-to-end commands/s", "%.0f", a.EndToEnd.Rate, b.EndToEnd.Rate},
		{"audit entries verified after the run", "%.0f", float64(a.Audit.Entries), float64(b.Audit.Entries)},
		{"seconds to verify them", "%.1f", a.Audit.Seconds, b.Audit.Seconds},
	} {
		fmt.Fprintf(tw, "%s\t"+row.format+"\t"+row.format+"\t\n", row.name, row.a, row.b)
	}
	tw.Flush()
	sb.WriteString(note)
	tw = tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\t%.3f\t%s\t%s\t\n", check.Name, check.Value, check.target(), verdict(check.Pass))
	tw.Flush()
	_, err := io.WriteString(out, sb.String())
	return err
}

// joinInts writes ns with sep between them.
func joinInts(ns []int, sep string) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, sep)
}

// WriteTable prints both reports, then the two side by side with the
// aggregate peak rate's check.
func (c *RouterComparison) WriteTable(out io.Writer) error {
	var note string
	if m := c.Many; len(m.Router.AcceptedBy) > 1 {
		note = fmt.Sprintf("accepted by each router instance at the peak: %s\n", joinInts(m.Router.AcceptedBy, " + "))
	}
	return writeComparison(out, "one router process", fmt.Sprintf("%d router processes", c.Routers),
		fmt.Sprintf("one router process against %d on one PostgreSQL (fresh schema each)", c.Routers),
		"one", fmt.Sprint(c.Routers), c.One, c.Many, note, c.Check)
}
