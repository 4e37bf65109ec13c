package operator

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/metertrust/metertrust/proposal"
)

// TestApprovalReasonCutOnARune: a proposer's long reason, cut to fit the
// detector's bound, stays valid UTF-8 (PostgreSQL refuses a cut sequence).
func TestApprovalReasonCutOnARune(t *testing.T) {
	for pad := range 4 {
		p := proposal.Proposal{ID: "P-1", Proposer: "olga", DecidedBy: "otto", Reason: strings.Repeat("x", pad) + strings.Repeat("€", 400)}
		r := approvalReason(p)
		if !utf8.ValidString(r) || len(r) > MaxReason {
			t.Errorf("pad %d: %d bytes, valid UTF-8 %v", pad, len(r), utf8.ValidString(r))
		}
	}
}
