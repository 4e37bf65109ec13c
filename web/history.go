package web

import (
	"cmp"
	"context"
	"html/template"
	"slices"
	"sync"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/smki"
)

// DefaultSample is how often Run reads the live counts for the overview's
// charts; historyLen readings are kept per threshold (an hour at the
// default).
const (
	DefaultSample = 10 * time.Second
	historyLen    = 360
)

// sampler is the dashboard's own viewer: the detector checks its role like
// any operator's.
var sampler = anomaly.Actor{ID: "dashboard", Roles: []anomaly.Role{anomaly.RoleViewer}}

// history keeps the recent counts of every count threshold, by
// threshold and user.
type history struct {
	mu     sync.Mutex
	series map[string][]sample
	about  map[string]reading
}

// reading is one count: of Threshold, for User (zero for a DCC-wide
// count).
type reading struct {
	Threshold anomaly.Threshold
	User      smki.EUI
	Count     int64
}

func (r reading) key() string { return r.Threshold.ID + "/" + r.User.String() }

func (h *history) add(at time.Time, rs []reading) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.series == nil {
		h.series, h.about = map[string][]sample{}, map[string]reading{}
	}
	seen := map[string]bool{}
	for _, r := range rs {
		k := r.key()
		seen[k] = true
		s := append(h.series[k], sample{At: at, Value: r.Count})
		if len(s) > historyLen {
			s = slices.Clone(s[len(s)-historyLen:])
		}
		h.series[k], h.about[k] = s, r
	}
	for k := range h.series { // a deleted threshold's history goes with it
		if !seen[k] {
			delete(h.series, k)
			delete(h.about, k)
		}
	}
}

// chart is one threshold's counts over time, for one user.
type chart struct {
	Threshold anomaly.Threshold
	User      smki.EUI
	Last      int64
	SVG       template.HTML
}

// charts returns the charts of the counts nearest their limits first, at
// most n.
func (h *history) charts(n int) []chart {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []chart
	for k, s := range h.series {
		r := h.about[k]
		title := "Commands counted by " + r.Threshold.ID
		if !r.User.IsZero() {
			title += " for " + r.User.String()
		}
		out = append(out, chart{Threshold: r.Threshold, User: r.User, Last: s[len(s)-1].Value,
			SVG: lineChart(title+" against its limit", s, r.Threshold.Limit)})
	}
	ratio := func(c chart) float64 { return float64(c.Last) / float64(max(c.Threshold.Limit, 1)) }
	slices.SortFunc(out, func(a, b chart) int {
		if c := cmp.Compare(ratio(b), ratio(a)); c != 0 {
			return c
		}
		return cmp.Compare(a.Threshold.ID+a.User.String(), b.Threshold.ID+b.User.String())
	})
	return out[:min(len(out), n)]
}

// Run reads the live counts against every count threshold (the DCC's and
// each user's) every Config.Sample until ctx ends, for the overview's
// charts over time, and rolls up the router's commands per minute from the
// audit log (Deps.Rates).
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Sample)
	defer t.Stop()
	for {
		s.sample(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// sample reads the counts once, and rolls up the router's commands per
// minute.
func (s *Server) sample(ctx context.Context) {
	s.rollUp(ctx)
	if s.deps.Usage == nil || s.deps.Thresholds == nil {
		return
	}
	ts, err := s.deps.Thresholds.Thresholds(ctx, sampler)
	if err != nil {
		s.log.WarnContext(ctx, "reading thresholds for the charts", "err", err)
		return
	}
	// The DCC-wide counts, and each user's against the thresholds that
	// apply to it: the users with thresholds of their own and those with
	// commands in the quarantine queue (the detector keeps no list of the
	// users it counts).
	users := []smki.EUI{{}}
	addUser := func(u smki.EUI) {
		if !u.IsZero() && !slices.Contains(users, u) {
			users = append(users, u)
		}
	}
	for _, t := range ts {
		addUser(t.User)
	}
	if s.deps.Quarantine != nil {
		qs, err := s.deps.Quarantine.List(ctx, sampler, anomaly.Filter{State: anomaly.StateQuarantined, Limit: anomaly.MaxList})
		if err != nil {
			s.log.WarnContext(ctx, "reading the quarantine for the charts", "err", err)
		}
		for _, q := range qs {
			addUser(q.User)
		}
	}
	var all []reading
	for _, u := range users {
		us, err := s.deps.Usage.Usage(ctx, sampler, u)
		if err != nil {
			s.log.WarnContext(ctx, "reading live counts for the charts", "user", u.String(), "err", err)
			continue
		}
		for _, x := range us {
			all = append(all, reading{Threshold: x.Threshold, User: u, Count: x.Count})
		}
	}
	s.hist.add(s.now(), all)
}
