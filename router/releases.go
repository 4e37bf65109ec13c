package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/metertrust/metertrust/anomaly"
	"github.com/metertrust/metertrust/store"
)

// ReleaseQueue is the durable record of released commands' forwarding that
// the Releases sweeper claims from and records outcomes in.
// *store.AnomalyStore implements it.
type ReleaseQueue interface {
	// ClaimReleases claims up to limit released records whose forwarding
	// is pending and due at now, for one attempt each, until until.
	ClaimReleases(ctx context.Context, now, until time.Time, limit int) ([]anomaly.Quarantine, error)
	// ClaimRelease claims the record ref the same way, or fails with
	// anomaly.ErrConflict when it is not pending and due.
	ClaimRelease(ctx context.Context, ref string, now, until time.Time) (anomaly.Quarantine, error)
	// FinishRelease records the outcome of attempt number attempt and
	// appends a to the audit log, in one transaction; anomaly.ErrConflict
	// when the attempt no longer holds the record.
	FinishRelease(ctx context.Context, ref string, attempt int, f anomaly.Forwarding, a anomaly.AuditEntry) error
}

// Defaults of ReleasesConfig.
const (
	DefaultReleaseInterval    = time.Second
	DefaultReleaseRetry       = 2 * time.Second
	DefaultReleaseMaxRetry    = 5 * time.Minute
	DefaultReleaseMaxAttempts = 10
	releaseBatch              = 32
)

// ReleasesConfig configures a Releases sweeper. Zero values take the
// defaults.
type ReleasesConfig struct {
	// Queue is the durable record of releases; required.
	Queue ReleaseQueue
	// Forward carries a released command through the rest of the
	// pipeline; required, usually (*Router).ForwardReleased.
	Forward func(ctx context.Context, q anomaly.Quarantine) (Receipt, error)
	// Interval is how often the sweeper looks for releases to forward;
	// zero for DefaultReleaseInterval.
	Interval time.Duration
	// Lease is how long one claimed attempt holds a record before another
	// sweeper may take it; an attempt is given half of it. Zero for
	// DefaultForwardLease.
	Lease time.Duration
	// Retry is the delay before the first retry after a transient failure,
	// doubling with each attempt up to MaxRetry; zero for the defaults.
	Retry, MaxRetry time.Duration
	// MaxAttempts is how many transient failures are retried before the
	// release is given up on; zero for DefaultReleaseMaxAttempts.
	MaxAttempts int
	// Logger is the logger; nil discards.
	Logger *slog.Logger
	// Clock is the clock; nil for time.Now.
	Clock func() time.Time
}

// Releases forwards released quarantined commands exactly once each, from
// whichever process released them. A release only records the decision
// (its forwarding pending); the sweeper, run by every router instance,
// claims pending releases that are due, carries each through the rest of
// the pipeline (every remaining check, the MAC, the durable record,
// forwarding) and records the outcome with an audit entry in the same
// transaction:
//
//   - accepted by the router: forwarded, with the router's command ID;
//   - refused by a later check (a replayed counter, a revoked certificate,
//     any refusal but unavailable): failed, with the refusal, for good;
//   - unavailable (a store or key failure, a timeout): pending again, retried
//     after a backoff that doubles from Retry to MaxRetry, and failed after
//     MaxAttempts attempts.
//
// A claim is a conditional update of the record (on PostgreSQL under a row
// lock, skipping rows another router holds), so two routers never forward
// the same attempt; a claim lapses after Lease, so a release whose router
// died mid-attempt is taken up again, and should that attempt have reached
// the router, the meter's counter check (principle 4) refuses the second
// as a replay.
type Releases struct {
	cfg ReleasesConfig
	log *slog.Logger
}

// NewReleases returns a sweeper for cfg.
func NewReleases(cfg ReleasesConfig) (*Releases, error) {
	if cfg.Queue == nil || cfg.Forward == nil {
		return nil, fmt.Errorf("%w: the release sweeper needs a queue and a forward function", ErrConfig)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Interval, DefaultReleaseInterval)
	def(&cfg.Lease, DefaultForwardLease)
	def(&cfg.Retry, DefaultReleaseRetry)
	def(&cfg.MaxRetry, DefaultReleaseMaxRetry)
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultReleaseMaxAttempts
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Releases{cfg: cfg, log: cfg.Logger.With("component", "router.releases")}, nil
}

// Run sweeps every Interval until ctx ends; a failed sweep is logged and
// tried again at the next tick. It returns nil when ctx ends.
func (r *Releases) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := r.Sweep(ctx); err != nil && ctx.Err() == nil {
			r.log.WarnContext(ctx, "sweeping released commands", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sweep claims the releases due now and forwards each, until none is due,
// and returns how many it attempted.
func (r *Releases) Sweep(ctx context.Context) (int, error) {
	n := 0
	for ctx.Err() == nil {
		now := r.cfg.Clock()
		qs, err := r.cfg.Queue.ClaimReleases(ctx, now, now.Add(r.cfg.Lease), releaseBatch)
		if err != nil {
			return n, err
		}
		for _, q := range qs {
			r.attempt(ctx, q) // the outcome is recorded, audited and logged
		}
		n += len(qs)
		if len(qs) < releaseBatch {
			break
		}
	}
	return n, nil
}

// Forward forwards the released record q at once, for a process that holds
// the router and released it itself (serve all, the demo, serve router
// with the operator API, the router's own API): it claims q as a sweep
// would, so the sweeper will not forward it again, and records the outcome.
// When another sweeper holds the claim it returns an error wrapping
// anomaly.ErrForwardPending; the outcome is then that sweeper's to record.
func (r *Releases) Forward(ctx context.Context, q anomaly.Quarantine) (Receipt, error) {
	if q.State != anomaly.StateReleased {
		return Receipt{}, fmt.Errorf("%w: quarantined command %s is %s, not released", ErrBadRequest, q.Ref, q.State)
	}
	now := r.cfg.Clock()
	c, err := r.cfg.Queue.ClaimRelease(ctx, q.Ref, now, now.Add(r.cfg.Lease))
	if errors.Is(err, anomaly.ErrConflict) {
		return Receipt{}, fmt.Errorf("released command %s: %w", q.Ref, anomaly.ErrForwardPending)
	}
	if err != nil {
		return Receipt{}, fmt.Errorf("%w: claiming released command %s: %w", ErrUnavailable, q.Ref, err)
	}
	return r.attempt(ctx, c)
}

// attempt forwards the claimed record q once and records the outcome.
func (r *Releases) attempt(ctx context.Context, q anomaly.Quarantine) (Receipt, error) {
	attempt := q.Forwarding.Attempts
	r.log.InfoContext(ctx, "forwarding released command", "ref", q.Ref, "command", q.CommandID, "attempt", attempt)
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Lease/2)
	rc, ferr := r.cfg.Forward(actx, q)
	cancel()
	now := r.cfg.Clock().UTC()
	f := anomaly.Forwarding{State: anomaly.ForwardForwarded, At: now, CommandID: rc.ID}
	entry := anomaly.AuditEntry{Time: now, Actor: "router", Action: "router.release.forward", Object: q.Ref,
		Outcome: store.OutcomeSuccess, Details: map[string]string{"command": q.CommandID, "user": q.User.String(),
			"serviceRef": q.ServiceRef, "attempt": fmt.Sprint(attempt)}}
	if ferr != nil {
		msg := ferr.Error()
		if len(msg) > 1024 {
			msg = msg[:1024] + "..."
		}
		f = anomaly.Forwarding{State: anomaly.ForwardFailed, At: now, Error: msg}
		entry.Outcome, entry.Details["error"] = store.OutcomeRefused, msg
		entry.Details["kind"] = KindOf(ferr).Code()
		if KindOf(ferr) == ErrUnavailable {
			entry.Outcome = store.OutcomeFailure
			if attempt < r.cfg.MaxAttempts {
				f = anomaly.Forwarding{State: anomaly.ForwardPending, Next: now.Add(r.backoff(attempt)), Error: msg}
				entry.Details["retryAt"] = f.Next.Format(time.RFC3339Nano)
			}
		}
		entry.Details["forwarding"] = string(f.State)
	} else {
		entry.Details["forwardedCommand"] = rc.ID
	}
	if err := r.cfg.Queue.FinishRelease(context.WithoutCancel(ctx), q.Ref, attempt, f, entry); err != nil {
		r.log.ErrorContext(ctx, "recording the forwarding of a released command", "ref", q.Ref, "attempt", attempt,
			"forwarding", f.State, "err", err)
		if ferr == nil {
			ferr = fmt.Errorf("%w: forwarded as %s but not recorded: %w", ErrUnavailable, rc.ID, err)
		}
		return rc, ferr
	}
	if ferr != nil {
		r.log.WarnContext(ctx, "released command not forwarded", "ref", q.Ref, "attempt", attempt, "forwarding", f.State, "err", ferr)
		return Receipt{}, ferr
	}
	r.log.InfoContext(ctx, "released command forwarded", "ref", q.Ref, "command", q.CommandID, "router_id", rc.ID)
	return rc, nil
}

// backoff is the delay after failed attempt number attempt (from 1).
func (r *Releases) backoff(attempt int) time.Duration {
	d := r.cfg.Retry
	for i := 1; i < attempt && d < r.cfg.MaxRetry; i++ {
		d *= 2
	}
	return min(d, r.cfg.MaxRetry)
}
