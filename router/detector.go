package router

import (
	"context"
	"fmt"

	"github.com/metertrust/metertrust/anomaly"
)

// anomalyChecker is what the router needs of package anomaly's Detector.
type anomalyChecker interface {
	Check(ctx context.Context, req anomaly.Request) (anomaly.Decision, error)
}

// AnomalyDetector adapts package anomaly's Detector to the router's
// Detector interface.
type AnomalyDetector struct {
	checker anomalyChecker
}

// NewAnomalyDetector wraps d, normally an *anomaly.Detector.
func NewAnomalyDetector(d anomalyChecker) *AnomalyDetector { return &AnomalyDetector{checker: d} }

// Check asks the detector about one command.
func (a *AnomalyDetector) Check(ctx context.Context, s Screening) (Verdict, error) {
	d, err := a.checker.Check(ctx, anomaly.Request{ID: s.ID, User: s.Caller.EUI, UserRole: s.Caller.Role,
		ServiceRef: s.Ref, Target: s.Target, Attributes: s.Attributes, Command: s.Message, At: s.At})
	if err != nil {
		return Verdict{}, fmt.Errorf("anomaly check of command %s: %w", s.ID, err)
	}
	if !d.Quarantined {
		return Verdict{}, nil
	}
	return Verdict{Quarantined: true, Reference: d.Ref, Breach: fmt.Sprintf("%s: %s", d.Kind, d.Detail)}, nil
}
