package anomaly

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/metertrust/metertrust/smki"
)

// Scope says what a threshold counts or checks.
type Scope string

// The threshold scopes of GBCS section 10.
const (
	// ScopeUserService counts one user's commands of one service reference
	// variant. With User empty it is the DCC's default for every user.
	ScopeUserService Scope = "user-srv"
	// ScopeUserTotal counts all of one user's commands. With User empty it
	// is the DCC's default for every user.
	ScopeUserTotal Scope = "user-total"
	// ScopeDCCService counts every user's commands of one service reference
	// variant together. Only the DCC sets it; User is always empty.
	ScopeDCCService Scope = "dcc-srv"
	// ScopeAttribute bounds a value carried inside a command (for example a
	// tariff price) to [Min, Max].
	ScopeAttribute Scope = "attribute"
)

// ParseScope accepts one of the scope names.
func ParseScope(s string) (Scope, error) {
	switch sc := Scope(s); sc {
	case ScopeUserService, ScopeUserTotal, ScopeDCCService, ScopeAttribute:
		return sc, nil
	}
	return "", fmt.Errorf("%w: scope %q (want user-srv, user-total, dcc-srv or attribute)", ErrInvalid, s)
}

// Limits on windows. Events are kept for the longest window in use, so the
// maximum bounds the size of the event table.
const (
	MinWindow = time.Second
	MaxWindow = 31 * 24 * time.Hour
)

// MaxLimit bounds a threshold's limit; counts beyond it are not meaningful
// for one window and would make every check scan that many events.
const MaxLimit = 10_000_000

// Threshold is one Anomaly Detection Threshold. Count thresholds (every
// scope but attribute) allow at most Limit commands in any sliding Window,
// or in each fixed Window; attribute thresholds require the named
// attribute, when a command carries it, to lie in [Min, Max].
type Threshold struct {
	// ID names the threshold; the Detector assigns one when it is empty.
	ID string
	// Scope says what is counted or checked.
	Scope Scope
	// User is the DCC user the threshold belongs to; zero for a DCC
	// threshold.
	User smki.EUI
	// ServiceRef is the DUIS service reference variant ("7.2"); empty for
	// ScopeUserTotal, and for an attribute limit that applies to every
	// service request carrying the attribute.
	ServiceRef string
	// Limit is the number of commands allowed in any Window (count scopes).
	Limit int64
	// Window is the length of the window (count scopes), a whole number of
	// seconds between MinWindow and MaxWindow.
	Window time.Duration
	// Fixed makes the window fixed: consecutive windows of length Window
	// from the Unix epoch, in UTC (a 24h window is a UTC calendar day), the
	// count starting afresh in each. Otherwise the window slides: any
	// Window-long interval ending now.
	Fixed bool
	// Attribute, Min and Max define an attribute limit (ScopeAttribute).
	Attribute string
	Min, Max  int64
	// SetBy is the actor who last set the threshold; the Detector fills it.
	SetBy string
	// SetAt is when the threshold was last set; the Detector fills it.
	SetAt time.Time
}

// IsDCC reports whether t is a DCC threshold (set by DCC operators, applying
// to every user) rather than one user's own.
func (t Threshold) IsDCC() bool { return t.User.IsZero() }

// Kind returns the kind of breach t raises.
func (t Threshold) Kind() Kind {
	switch {
	case t.Scope == ScopeAttribute:
		return KindAttributeLimits
	case t.IsDCC():
		return KindDCCThreshold
	default:
		return KindUserThreshold
	}
}

// String describes t for logs, errors and alerts.
func (t Threshold) String() string {
	owner := "DCC"
	if !t.IsDCC() {
		owner = "user " + t.User.String()
	}
	switch t.Scope {
	case ScopeAttribute:
		srv := t.ServiceRef
		if srv == "" {
			srv = "any"
		}
		return fmt.Sprintf("%s attribute limit %s: %s in [%d, %d] for service %s", owner, t.ID, t.Attribute, t.Min, t.Max, srv)
	case ScopeUserTotal:
		return fmt.Sprintf("%s threshold %s: %d per user per %s", owner, t.ID, t.Limit, t.windowString())
	case ScopeDCCService:
		return fmt.Sprintf("%s threshold %s: %d of service %s DCC-wide per %s", owner, t.ID, t.Limit, t.ServiceRef, t.windowString())
	default:
		return fmt.Sprintf("%s threshold %s: %d of service %s per user per %s", owner, t.ID, t.Limit, t.ServiceRef, t.windowString())
	}
}

func (t Threshold) windowString() string {
	if t.Fixed {
		return "fixed " + t.Window.String()
	}
	return "sliding " + t.Window.String()
}

// Since returns the bound of t's window for a request at at: the window
// holds the events strictly after it.
func (t Threshold) Since(at time.Time) time.Time {
	if !t.Fixed {
		return at.Add(-t.Window)
	}
	w := t.Window.Microseconds()
	start := at.UnixMicro() / w * w
	if at.UnixMicro() < 0 && at.UnixMicro()%w != 0 {
		start -= w
	}
	return time.UnixMicro(start - 1).UTC()
}

var (
	serviceRefRE = regexp.MustCompile(`^[0-9]{1,2}(\.[0-9]{1,2}){1,2}$`)
	attributeRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}$`)
	idRE         = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
)

// ValidServiceRef reports whether s has the shape of a DUIS service
// reference variant: two or three dot-separated numbers ("7.2", "1.1.1").
func ValidServiceRef(s string) bool { return serviceRefRE.MatchString(s) }

// Validate checks t on its own: the fields its scope needs are present and
// in range, and the fields it does not use are empty. It does not compare
// with other thresholds; see CheckStricter.
func (t Threshold) Validate() error {
	if t.ID != "" && !idRE.MatchString(t.ID) {
		return fmt.Errorf("%w: threshold ID %q must be 1-64 letters, digits, '.', '_' or '-'", ErrInvalid, t.ID)
	}
	if _, err := ParseScope(string(t.Scope)); err != nil {
		return fmt.Errorf("threshold %s: %w", t.ID, err)
	}
	if t.ServiceRef != "" && !ValidServiceRef(t.ServiceRef) {
		return fmt.Errorf("%w: threshold %s: service reference %q is not like \"7.2\" or \"1.1.1\"", ErrInvalid, t.ID, t.ServiceRef)
	}
	if t.Scope == ScopeAttribute {
		switch {
		case !attributeRE.MatchString(t.Attribute):
			return fmt.Errorf("%w: threshold %s: attribute name %q must be 1-64 letters, digits, '_', '.' or '-', starting with a letter", ErrInvalid, t.ID, t.Attribute)
		case t.Min > t.Max:
			return fmt.Errorf("%w: threshold %s: attribute %s minimum %d is above maximum %d", ErrInvalid, t.ID, t.Attribute, t.Min, t.Max)
		case t.Limit != 0 || t.Window != 0 || t.Fixed:
			return fmt.Errorf("%w: threshold %s: an attribute limit takes no limit or window", ErrInvalid, t.ID)
		}
		return nil
	}
	switch {
	case t.Attribute != "" || t.Min != 0 || t.Max != 0:
		return fmt.Errorf("%w: threshold %s: scope %s takes no attribute, minimum or maximum", ErrInvalid, t.ID, t.Scope)
	case t.Scope == ScopeUserTotal && t.ServiceRef != "":
		return fmt.Errorf("%w: threshold %s: scope user-total takes no service reference", ErrInvalid, t.ID)
	case t.Scope != ScopeUserTotal && t.ServiceRef == "":
		return fmt.Errorf("%w: threshold %s: scope %s needs a service reference", ErrInvalid, t.ID, t.Scope)
	case t.Scope == ScopeDCCService && !t.IsDCC():
		return fmt.Errorf("%w: threshold %s: scope dcc-srv is the DCC's alone and takes no user", ErrInvalid, t.ID)
	case t.Limit < 1 || t.Limit > MaxLimit:
		return fmt.Errorf("%w: threshold %s: limit %d must be between 1 and %d", ErrInvalid, t.ID, t.Limit, MaxLimit)
	case t.Window < MinWindow || t.Window > MaxWindow:
		return fmt.Errorf("%w: threshold %s: window %s must be between %s and %s", ErrInvalid, t.ID, t.Window, MinWindow, MaxWindow)
	case t.Window%time.Second != 0:
		return fmt.Errorf("%w: threshold %s: window %s must be a whole number of seconds", ErrInvalid, t.ID, t.Window)
	}
	return nil
}

// sameRule reports whether the DCC threshold d governs the same thing as the
// user threshold u, so that u must be stricter than d.
func sameRule(u, d Threshold) bool {
	if u.Scope != d.Scope || !d.IsDCC() {
		return false
	}
	switch u.Scope {
	case ScopeUserService:
		return u.ServiceRef == d.ServiceRef
	case ScopeUserTotal:
		return true
	case ScopeAttribute:
		// A DCC limit for any service request also bounds a user's limit
		// for one service request.
		return u.Attribute == d.Attribute && (d.ServiceRef == "" || d.ServiceRef == u.ServiceRef)
	}
	return false
}

// CheckStricter checks that the user threshold u is stricter than every DCC
// threshold in dcc that governs the same scope (and service reference, or
// attribute). For counts, stricter means a limit no higher over a window no
// shorter, and not both equal: a lower limit over the same or a longer
// window, or the same limit over a longer window. A sliding window is
// stricter than a fixed one of the same length and limit, never the other
// way (two fixed windows let through twice the limit across their
// boundary), and a fixed window is comparable with a fixed DCC window only
// if it is a whole multiple of it. For attribute limits stricter means a
// range inside the DCC's. A DCC threshold (u.User zero) is always
// accepted: the DCC sets its own. The error wraps ErrNotStricter and names
// the DCC threshold.
func CheckStricter(u Threshold, dcc []Threshold) error {
	if u.IsDCC() {
		return nil
	}
	for _, d := range dcc {
		if !sameRule(u, d) {
			continue
		}
		if u.Scope == ScopeAttribute {
			if u.Min < d.Min || u.Max > d.Max {
				return fmt.Errorf("%w: user attribute limit %s in [%d, %d] is not inside the DCC's [%d, %d] (threshold %s)",
					ErrNotStricter, u.Attribute, u.Min, u.Max, d.Min, d.Max, d.ID)
			}
			continue
		}
		switch {
		case u.Fixed && !d.Fixed:
			return fmt.Errorf("%w: a fixed window is not stricter than the DCC's sliding %s (threshold %s): it lets twice the limit through across a window boundary",
				ErrNotStricter, d.Window, d.ID)
		case u.Fixed && d.Fixed && u.Window%d.Window != 0:
			return fmt.Errorf("%w: fixed window %s is not a whole multiple of the DCC's fixed %s (threshold %s)",
				ErrNotStricter, u.Window, d.Window, d.ID)
		case u.Window < d.Window:
			return fmt.Errorf("%w: window %s is shorter than the DCC's %s (threshold %s); a user threshold needs the same or a longer window",
				ErrNotStricter, u.Window, d.Window, d.ID)
		case u.Limit > d.Limit:
			return fmt.Errorf("%w: limit %d is higher than the DCC's %d per %s (threshold %s)",
				ErrNotStricter, u.Limit, d.Limit, d.Window, d.ID)
		case u.Limit == d.Limit && u.Window == d.Window && u.Fixed == d.Fixed:
			return fmt.Errorf("%w: %d per %s equals the DCC's threshold %s; set a lower limit or a longer window",
				ErrNotStricter, u.Limit, u.Window, d.ID)
		}
	}
	return nil
}

// thresholdJSON is the wire form of a Threshold: windows as Go duration
// strings ("24h"), the user as 16 hex digits.
type thresholdJSON struct {
	ID         string    `json:"id,omitempty"`
	Scope      Scope     `json:"scope"`
	User       string    `json:"user,omitempty"`
	ServiceRef string    `json:"serviceRef,omitempty"`
	Limit      int64     `json:"limit,omitempty"`
	Window     string    `json:"window,omitempty"`
	Fixed      bool      `json:"fixed,omitempty"`
	Attribute  string    `json:"attribute,omitempty"`
	Min        int64     `json:"min,omitempty"`
	Max        int64     `json:"max,omitempty"`
	SetBy      string    `json:"setBy,omitempty"`
	SetAt      time.Time `json:"setAt,omitzero"`
}

// MarshalJSON writes the wire form: the window as a duration string, the
// user as 16 hex digits (omitted for DCC thresholds).
func (t Threshold) MarshalJSON() ([]byte, error) {
	j := thresholdJSON{ID: t.ID, Scope: t.Scope, ServiceRef: t.ServiceRef, Limit: t.Limit, Fixed: t.Fixed,
		Attribute: t.Attribute, Min: t.Min, Max: t.Max, SetBy: t.SetBy, SetAt: t.SetAt}
	if !t.IsDCC() {
		j.User = t.User.String()
	}
	if t.Window != 0 {
		j.Window = t.Window.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the wire form strictly: unknown fields, trailing data,
// a malformed user or window are errors wrapping ErrInvalid. It does not
// call Validate.
func (t *Threshold) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var j thresholdJSON
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("%w: threshold JSON: %v", ErrInvalid, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: threshold JSON: trailing data", ErrInvalid)
	}
	v := Threshold{ID: j.ID, Scope: j.Scope, ServiceRef: j.ServiceRef, Limit: j.Limit, Fixed: j.Fixed,
		Attribute: j.Attribute, Min: j.Min, Max: j.Max, SetBy: j.SetBy, SetAt: j.SetAt}
	if j.User != "" {
		u, err := smki.ParseEUI(j.User)
		if err != nil {
			return fmt.Errorf("%w: threshold user: %w", ErrInvalid, err)
		}
		v.User = u
	}
	if j.Window != "" {
		w, err := time.ParseDuration(j.Window)
		if err != nil {
			return fmt.Errorf("%w: threshold window %q: want a duration like \"24h\" or \"90s\"", ErrInvalid, j.Window)
		}
		v.Window = w
	}
	*t = v
	return nil
}

// ParseThreshold decodes a threshold from its JSON wire form (an API body)
// and validates it.
func ParseThreshold(b []byte) (Threshold, error) {
	var t Threshold
	if err := t.UnmarshalJSON(b); err != nil {
		return Threshold{}, err
	}
	if err := t.Validate(); err != nil {
		return Threshold{}, err
	}
	return t, nil
}

// Loosens reports whether replacing the DCC threshold cur by next lets
// through some traffic cur refuses, and says why; a change that is not a
// loosening is as strict or stricter (decision 023). Changing what the
// threshold covers (scope, user, service reference, attribute) is a
// loosening, since the old scope loses its rule. For counts the order is
// CheckStricter's: a higher limit, a shorter window, a sliding window made
// fixed, or a fixed window made a fixed window that is not a whole multiple
// of the old one loosens; a lower limit, a longer window, a fixed window
// made sliding (of the same or a longer length) tightens. (A longer window
// with the same limit allows fewer commands, so it is a tightening, not a
// loosening.) For attribute limits, a range reaching outside the old one
// loosens.
func Loosens(cur, next Threshold) (bool, string) {
	switch {
	case cur.Scope != next.Scope:
		return true, fmt.Sprintf("scope changes from %s to %s", cur.Scope, next.Scope)
	case cur.User != next.User:
		return true, "the threshold changes user"
	case cur.ServiceRef != next.ServiceRef:
		return true, fmt.Sprintf("service reference changes from %q to %q", cur.ServiceRef, next.ServiceRef)
	case cur.Attribute != next.Attribute:
		return true, fmt.Sprintf("attribute changes from %q to %q", cur.Attribute, next.Attribute)
	}
	if cur.Scope == ScopeAttribute {
		if next.Min < cur.Min || next.Max > cur.Max {
			return true, fmt.Sprintf("range [%d, %d] reaches outside [%d, %d]", next.Min, next.Max, cur.Min, cur.Max)
		}
		return false, ""
	}
	switch {
	case next.Limit > cur.Limit:
		return true, fmt.Sprintf("limit rises from %d to %d", cur.Limit, next.Limit)
	case next.Window < cur.Window:
		return true, fmt.Sprintf("window shortens from %s to %s", cur.Window, next.Window)
	case next.Fixed && !cur.Fixed:
		return true, "a sliding window becomes fixed, letting twice the limit through across a boundary"
	case next.Fixed && cur.Fixed && next.Window%cur.Window != 0:
		return true, fmt.Sprintf("fixed window %s is not a whole multiple of %s", next.Window, cur.Window)
	}
	return false, ""
}
