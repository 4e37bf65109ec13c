package router

import (
	"fmt"

	"github.com/metertrust/metertrust/commands"
)

// GBCSCatalogue is the Catalogue of package commands: the GBCS use-case
// table (message code to DUIS service reference) joined with the DUIS
// eligibility matrix (service-requests.tsv).
type GBCSCatalogue struct{}

// Lookup returns the service request variants the message code serves. A
// variant is critical when the use case is (GBCS category SME.C.C) or the
// DUIS table says so.
func (GBCSCatalogue) Lookup(code commands.MessageCode) ([]ServiceRequest, error) {
	u, ok := commands.LookupCode(code)
	if !ok {
		return nil, fmt.Errorf("message code %s: %w", code, commands.ErrUnknownCode)
	}
	if u.Alert() {
		return nil, fmt.Errorf("message code %s is a device alert (%s), not a command", code, u.Name)
	}
	var out []ServiceRequest
	for _, s := range u.ServiceRequests() {
		out = append(out, ServiceRequest{Ref: s.Variant, Critical: u.Critical() || s.Critical, Roles: s.Roles})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("message code %s (%s) serves no DUIS service request a user may send", code, u.Name)
	}
	return out, nil
}
