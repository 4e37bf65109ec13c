package commands

import (
	_ "embed"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/metertrust/metertrust/smki"
)

// The catalogue's sources: table E of the payload notes (every message code
// of the DCC's reference test data, its payload structure and the security
// its messages carry), the GBCS use-case table and the DUIS service request
// table, embedded as copied from the project's GBCS notes (see the header
// comments of each file). Table E wins where they disagree on a code.
var (
	//go:embed messages.tsv
	messagesTSV string
	//go:embed usecases.tsv
	useCasesTSV string
	//go:embed service-requests.tsv
	serviceRequestsTSV string
)

// UseCase is one row of the GBCS use-case catalogue: a message code and what
// it means.
type UseCase struct {
	// Code is the GBCS message code.
	Code MessageCode
	// Name is the GBCS use case name, such as "ECS04b".
	Name string
	// Category is the GBCS category as published, such as "SME.C.C"
	// (critical command) or "SME.C.NC" (non-critical command).
	Category string
	// ServiceRefs are the DUIS service references the use case serves, such
	// as "1.5"; empty when GBCS says "See GBCS" or "N/A".
	ServiceRefs []string
	// Title is the use case's title.
	Title string
	// Structure is the payload structure the DCC's GBCS parser selects for
	// the code, such as "GBZ" or "ASN.1 CS02b" (table E); empty for a code
	// the reference data does not use.
	Structure string
	// CommandForms, ResponseForms and AlertForms are the forms the DCC's
	// reference data carries for the code, per kind (table E). A code whose
	// commands come both signed and MAC-only (CS02a, CS02f) lists both: its
	// variant, not its code, decides.
	CommandForms, ResponseForms, AlertForms []Form
	// TwoStep reports that the reference data holds pre-commands for the
	// code: a user signs what the DCC returns.
	TwoStep bool
	// Sensitive reports that the device encrypts the content of its
	// response (or alert) to the user under the transport key: the codes
	// whose messages carry ciphered blocks in the reference data (spec
	// gbcs-payloads.md 2.1).
	Sensitive bool
}

// sensitiveCodes are the codes of gbcs-payloads.md 2.1: DLMS responses of
// ECS17b/d/e, ECS19, ECS20b/c, ECS21a/b, ECS22b and ECS66, GBZ responses of
// GCS13a/b/c, GCS14, GCS15b/c/d, GCS16a/b, GCS17, GCS18 and GCS61, and the
// ECS68 and GCS53 alerts.
var sensitiveCodes = map[MessageCode]bool{
	0x0027: true, 0x0029: true, 0x002A: true, 0x002D: true, 0x002F: true, 0x0030: true, 0x0033: true, 0x0034: true,
	0x0037: true, 0x0060: true, 0x0074: true, 0x00B8: true, 0x00B6: true, 0x0075: true, 0x00C3: true, 0x0076: true,
	0x00C4: true, 0x0077: true, 0x0096: true, 0x0078: true, 0x0079: true, 0x00A0: true, 0x0061: true, 0x008B: true,
}

// Forms returns the forms seen for messages of kind c.
func (u UseCase) Forms(c CRA) []Form {
	switch c {
	case Command:
		return u.CommandForms
	case Response:
		return u.ResponseForms
	case Alert:
		return u.AlertForms
	}
	return nil
}

// AllowsForm reports whether a message of kind c in form f is one the
// reference data shows for the code: a form seen for that kind or, for a
// code with the critical two-step, the pre-command and the signed
// pre-command a user sends back. A code the reference data does not use
// allows every form.
func (u UseCase) AllowsForm(c CRA, f Form) bool {
	if u.Structure == "" {
		return true
	}
	if c == Command && u.TwoStep && (f == FormPreCommand || f == FormSigned) {
		return true
	}
	return slices.Contains(u.Forms(c), f)
}

func signedForms(fs []Form) bool {
	for _, f := range fs {
		if f != FormSigned && f != FormMACSigned {
			return false
		}
	}
	return len(fs) > 0
}

// Critical reports whether the use case is critical: a Remote Party signs the
// command and the device signs its response. That is category SME.C.C and
// critical alerts SME.A.C; CS02b (update security credentials), catalogued
// "See GBCS", is critical too, since the authorising party signs it (GBCS
// section 9).
//
// Where the reference data shows the code (table E), its forms decide:
// critical when every command (or, for an alert code, every alert) it holds
// is signed. So CS02b 0x0104 (MAC only) is not critical and 0x0108 (signed
// without MAC) is, and CS02a, whose commands come both ways, is not critical
// by its code alone.
func (u UseCase) Critical() bool {
	switch {
	case len(u.CommandForms) > 0:
		return signedForms(u.CommandForms)
	case len(u.AlertForms) > 0:
		return signedForms(u.AlertForms)
	}
	return strings.HasPrefix(u.Category, "SME.C.C") || strings.HasPrefix(u.Category, "SME.A.C") || u.Name == "CS02b"
}

// Alert reports whether the use case is a device alert (category SME.A.*).
func (u UseCase) Alert() bool { return strings.HasPrefix(u.Category, "SME.A.") }

// ServiceRequests returns the service request variants the use case serves:
// those whose variant equals one of ServiceRefs or lies beneath one ("1.1"
// covers 1.1.1 and 1.1.2).
func (u UseCase) ServiceRequests() []ServiceRequest {
	var out []ServiceRequest
	for _, s := range cat.requests {
		for _, ref := range u.ServiceRefs {
			if refCovers(ref, s.Variant) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// Eligible reports whether a DCC user of role r may send some service request
// this use case serves. A use case without a DUIS service reference (one the
// DCC itself originates, such as CS02b) is eligible for no user.
func (u UseCase) Eligible(r smki.UserRole) bool {
	for _, s := range u.ServiceRequests() {
		if s.Eligible(r) {
			return true
		}
	}
	return false
}

// ServiceRequest is one DUIS service request variant: who may send it and
// whether it is critical.
type ServiceRequest struct {
	// Variant is the service reference variant, such as "4.8.1".
	Variant string
	// Critical reports whether the request is a critical one.
	Critical bool
	// Roles are the DCC user roles eligible to send it.
	Roles []smki.UserRole
	// Name is the variant's DUIS name.
	Name string
}

// Eligible reports whether a DCC user of role r may send the request.
func (s ServiceRequest) Eligible(r smki.UserRole) bool { return slices.Contains(s.Roles, r) }

// refCovers reports whether service reference ref covers variant v.
func refCovers(ref, v string) bool { return v == ref || strings.HasPrefix(v, ref+".") }

type catalogue struct {
	useCases []UseCase
	byCode   map[MessageCode]int
	requests []ServiceRequest
	byVar    map[string]int
}

var cat = mustLoadCatalogue()

func mustLoadCatalogue() *catalogue {
	c, err := loadCatalogue(useCasesTSV, serviceRequestsTSV)
	if err == nil {
		err = c.addTableE(messagesTSV)
	}
	if err != nil {
		panic(err) // the embedded tables are ours; TestCatalogue keeps them valid
	}
	return c
}

// addTableE merges table E into the catalogue: its codes, names, payload
// structures and forms. A code usecases.tsv lacks gets a category from its
// forms (SME.C.C when its commands are signed, SME.A.C for signed alerts).
func (c *catalogue) addTableE(tsv string) error {
	header := false
	for i, line := range strings.Split(tsv, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if !header {
			if strings.Join(f, ",") != "code,usecase,structure,commands,precommands,responses,alerts,security" {
				return fmt.Errorf("commands: messages.tsv line %d: unexpected header %q", i+1, line)
			}
			header = true
			continue
		}
		if len(f) != 8 {
			return fmt.Errorf("commands: messages.tsv line %d: %d fields, want 8", i+1, len(f))
		}
		code, err := strconv.ParseUint(strings.TrimPrefix(f[0], "0x"), 16, 16)
		if err != nil || !strings.HasPrefix(f[0], "0x") {
			return fmt.Errorf("commands: messages.tsv line %d: message code %q", i+1, f[0])
		}
		var counts [4]int
		for k := range counts {
			if counts[k], err = strconv.Atoi(f[3+k]); err != nil {
				return fmt.Errorf("commands: messages.tsv line %d: count %q", i+1, f[3+k])
			}
		}
		forms, err := parseSecuritySeen(f[7])
		if err != nil {
			return fmt.Errorf("commands: messages.tsv line %d: %w", i+1, err)
		}
		u := UseCase{Code: MessageCode(code)}
		j, known := c.byCode[u.Code]
		if known {
			u = c.useCases[j]
		}
		u.Structure, u.TwoStep, u.Sensitive = f[2], counts[1] > 0, sensitiveCodes[u.Code]
		u.CommandForms, u.ResponseForms, u.AlertForms = forms[Command], forms[Response], forms[Alert]
		name := tableEName(f[1])
		if !known || !strings.EqualFold(u.Name, name) {
			u.Name, u.Title = name, f[1]
			u.ServiceRefs = nil
			switch {
			case len(u.CommandForms) > 0 && signedForms(u.CommandForms), len(u.CommandForms) == 0 && signedForms(u.ResponseForms):
				u.Category = "SME.C.C"
			case len(u.CommandForms) > 0, len(u.ResponseForms) > 0:
				u.Category = "SME.C.NC"
			case signedForms(u.AlertForms):
				u.Category = "SME.A.C"
			default:
				u.Category = "SME.A.NC"
			}
		}
		if known {
			c.useCases[j] = u
			continue
		}
		c.byCode[u.Code] = len(c.useCases)
		c.useCases = append(c.useCases, u)
	}
	if !header {
		return fmt.Errorf("commands: messages.tsv: no header")
	}
	return nil
}

// tableEName is the use case name of a table E label: its first word when
// that is a GBCS use case name and only a parenthesis follows ("CS02b (mode
// 4)" is CS02b), the label itself otherwise ("CS02b future-dated alert",
// "future-dated alert (DLMS)").
func tableEName(label string) string {
	w, rest, _ := strings.Cut(label, " ")
	if len(w) > 2 && w[0] >= 'A' && w[0] <= 'Z' && strings.ContainsAny(w, "0123456789") && (rest == "" || rest[0] == '(') {
		return w
	}
	return label
}

// parseSecuritySeen reads table E's security column, such as "C MS; R S" or
// "C M×3/S×1; R M×3/S×1", into the forms seen per kind.
func parseSecuritySeen(s string) (map[CRA][]Form, error) {
	out := map[CRA][]Form{}
	for _, part := range strings.Split(s, ";") {
		kind, rest, ok := strings.Cut(strings.TrimSpace(part), " ")
		var c CRA
		switch kind {
		case "C":
			c = Command
		case "R":
			c = Response
		case "A":
			c = Alert
		default:
			ok = false
		}
		if !ok {
			return nil, fmt.Errorf("security %q: want C, R or A and the forms", s)
		}
		for _, alt := range strings.Split(rest, "/") {
			alt, _, _ = strings.Cut(alt, "×")
			var f Form
			switch alt {
			case "M":
				f = FormMAC
			case "MS":
				f = FormMACSigned
			case "S":
				f = FormSigned
			default:
				return nil, fmt.Errorf("security %q: unknown form %q", s, alt)
			}
			if !slices.Contains(out[c], f) {
				out[c] = append(out[c], f)
			}
		}
	}
	return out, nil
}

// gbcsServiceRefs are the DUIS service references of use cases usecases.tsv
// catalogues "See GBCS", where GBCS itself names them: the device re-key
// commands CS02c (Issue Security Credentials, 6.17), CS02d (Update Security
// Credentials (Device), 6.15.2) and CS02e (Retrieve Device Security
// Credentials (Device), 6.24.2) (decision 017).
var gbcsServiceRefs = map[MessageCode][]string{
	0x000A: {"6.17"},
	0x000B: {"6.15.2"},
	0x000C: {"6.24.2"},
}

func loadCatalogue(uc, sr string) (*catalogue, error) {
	c := &catalogue{byCode: map[MessageCode]int{}, byVar: map[string]int{}}
	header := false
	for i, line := range strings.Split(uc, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if !header {
			if strings.Join(f, ",") != "code,usecase,category,service_ref,title" {
				return nil, fmt.Errorf("commands: usecases.tsv line %d: unexpected header %q", i+1, line)
			}
			header = true
			continue
		}
		if len(f) != 5 {
			return nil, fmt.Errorf("commands: usecases.tsv line %d: %d fields, want 5", i+1, len(f))
		}
		code, err := strconv.ParseUint(strings.TrimPrefix(f[0], "0x"), 16, 16)
		if err != nil || !strings.HasPrefix(f[0], "0x") {
			return nil, fmt.Errorf("commands: usecases.tsv line %d: message code %q", i+1, f[0])
		}
		u := UseCase{Code: MessageCode(code), Name: f[1], Category: f[2], Title: f[4]}
		for _, ref := range strings.Split(f[3], ",") {
			ref = strings.TrimSpace(ref)
			if ref != "" && (ref[0] >= '0' && ref[0] <= '9') {
				u.ServiceRefs = append(u.ServiceRefs, ref)
			}
		}
		if len(u.ServiceRefs) == 0 && strings.TrimSpace(f[3]) == "See GBCS" {
			u.ServiceRefs = gbcsServiceRefs[u.Code]
		}
		if j, dup := c.byCode[u.Code]; dup {
			// The published table repeats some rows verbatim; a repeat that
			// disagrees is an error.
			if p := c.useCases[j]; p.Name != u.Name || p.Category != u.Category || p.Title != u.Title || !slices.Equal(p.ServiceRefs, u.ServiceRefs) {
				return nil, fmt.Errorf("commands: usecases.tsv line %d: message code %s repeated with different content", i+1, u.Code)
			}
			continue
		}
		c.byCode[u.Code] = len(c.useCases)
		c.useCases = append(c.useCases, u)
	}
	header = false
	for i, line := range strings.Split(sr, "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if !header {
			if strings.Join(f, ",") != "srv,critical,roles,name" {
				return nil, fmt.Errorf("commands: service-requests.tsv line %d: unexpected header %q", i+1, line)
			}
			header = true
			continue
		}
		if len(f) == 1 && len(c.requests) > 0 {
			// A name broken over lines in the published table continues the
			// previous row.
			p := &c.requests[len(c.requests)-1]
			p.Name = strings.TrimSpace(p.Name) + " " + strings.TrimSpace(line)
			continue
		}
		if len(f) != 4 {
			return nil, fmt.Errorf("commands: service-requests.tsv line %d: %d fields, want 4", i+1, len(f))
		}
		s := ServiceRequest{Variant: f[0], Name: strings.TrimSpace(f[3])}
		switch f[1] {
		case "Yes":
			s.Critical = true
		case "No":
		default:
			return nil, fmt.Errorf("commands: service-requests.tsv line %d: critical %q, want Yes or No", i+1, f[1])
		}
		if f[2] != "" {
			for _, r := range strings.Split(f[2], ",") {
				role, err := smki.ParseUserRole(r)
				if err != nil {
					return nil, fmt.Errorf("commands: service-requests.tsv line %d: %w", i+1, err)
				}
				s.Roles = append(s.Roles, role)
			}
		}
		if _, dup := c.byVar[s.Variant]; dup {
			return nil, fmt.Errorf("commands: service-requests.tsv line %d: variant %s repeated", i+1, s.Variant)
		}
		c.byVar[s.Variant] = len(c.requests)
		c.requests = append(c.requests, s)
	}
	return c, nil
}

// LookupCode returns the use case of a message code.
func LookupCode(code MessageCode) (UseCase, bool) {
	i, ok := cat.byCode[code]
	if !ok {
		return UseCase{}, false
	}
	return cat.useCases[i], true
}

// LookupUseCase returns the use cases of a GBCS use case name, matched
// without regard to case ("ECS04b"). Most names have one message code; CS02b
// has one per replacement mode.
func LookupUseCase(name string) []UseCase {
	var out []UseCase
	for _, u := range cat.useCases {
		if strings.EqualFold(u.Name, name) {
			out = append(out, u)
		}
	}
	return out
}

// LookupServiceRequest returns a DUIS service request variant ("4.8.1").
func LookupServiceRequest(variant string) (ServiceRequest, bool) {
	i, ok := cat.byVar[variant]
	if !ok {
		return ServiceRequest{}, false
	}
	return cat.requests[i], true
}

// UseCasesForService returns the use cases that serve a service request
// variant ("1.1.1" gives ECS01a, ECS01c and GCS01a, catalogued under 1.1).
func UseCasesForService(variant string) []UseCase {
	var out []UseCase
	for _, u := range cat.useCases {
		for _, ref := range u.ServiceRefs {
			if refCovers(ref, variant) {
				out = append(out, u)
				break
			}
		}
	}
	return out
}

// UseCases returns every catalogued use case in table order.
func UseCases() []UseCase { return slices.Clone(cat.useCases) }

// ServiceRequests returns every service request variant in table order.
func ServiceRequests() []ServiceRequest { return slices.Clone(cat.requests) }
