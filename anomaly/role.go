package anomaly

import (
	"fmt"
	"slices"
	"strings"

	"github.com/metertrust/metertrust/smki"
)

// Role is what an actor may do with anomaly detection: the three operator
// roles of the DCC's operator API and the role of a DCC user acting on its
// own records.
type Role string

// The roles.
const (
	// RoleViewer may list and read quarantined commands, thresholds and
	// counts, and subscribe to alerts.
	RoleViewer Role = "viewer"
	// RoleQuarantineOfficer may also release and delete quarantined
	// commands.
	RoleQuarantineOfficer Role = "quarantine-officer"
	// RoleThresholdAdmin may also set and delete thresholds.
	RoleThresholdAdmin Role = "threshold-admin"
	// RoleUser is a DCC user acting on its own quarantined commands and
	// thresholds only: everything the other roles may do, restricted to
	// records whose user is the actor's.
	RoleUser Role = "user"
)

// ParseRole accepts a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleViewer, RoleQuarantineOfficer, RoleThresholdAdmin, RoleUser:
		return r, nil
	}
	return "", fmt.Errorf("%w: role %q (want viewer, quarantine-officer, threshold-admin or user)", ErrInvalid, s)
}

// Action is something an actor asks to do.
type Action string

// The actions.
const (
	// ActionView covers listing and reading quarantined commands,
	// thresholds and counts, and subscribing to alerts.
	ActionView Action = "view"
	// ActionRelease releases a quarantined command into the rest of the
	// pipeline.
	ActionRelease Action = "release"
	// ActionDelete deletes a quarantined command: it is never forwarded.
	ActionDelete Action = "delete"
	// ActionSetThreshold sets or deletes a threshold.
	ActionSetThreshold Action = "set-threshold"
)

// permissions is the role matrix.
var permissions = map[Role][]Action{
	RoleViewer:            {ActionView},
	RoleQuarantineOfficer: {ActionView, ActionRelease, ActionDelete},
	RoleThresholdAdmin:    {ActionView, ActionSetThreshold},
	RoleUser:              {ActionView, ActionRelease, ActionDelete, ActionSetThreshold},
}

// Permit returns nil if role may perform action, and otherwise an error
// wrapping ErrForbidden that names both. RoleUser is permitted every action,
// on its own records only; the Detector enforces the ownership.
func Permit(role Role, action Action) error {
	acts, ok := permissions[role]
	if !ok {
		return fmt.Errorf("%w: unknown role %q", ErrForbidden, role)
	}
	if !slices.Contains(acts, action) {
		return fmt.Errorf("%w: role %s may not %s", ErrForbidden, role, action)
	}
	return nil
}

// Actor is who calls a Detector method: an operator authenticated with
// operator credentials and holding one or more operator roles, or a DCC
// user (RoleUser, with User set).
type Actor struct {
	// ID names the actor in the audit log: an operator's login, or the
	// user's EUI.
	ID string
	// Roles are the actor's roles.
	Roles []Role
	// User is the DCC user the actor acts as, for RoleUser.
	User smki.EUI
}

// String names the actor for the audit log.
func (a Actor) String() string {
	rs := make([]string, len(a.Roles))
	for i, r := range a.Roles {
		rs[i] = string(r)
	}
	return a.ID + " (" + strings.Join(rs, ",") + ")"
}

// maxActorID bounds an actor's ID, which every audit entry carries.
const maxActorID = 256

// scope tells what an actor may do for an action: everything (an operator
// role permits it), only its own user's records (RoleUser permits it), or
// nothing (the error).
type scope struct {
	all  bool
	user smki.EUI
}

// may reports whether s covers a record of user u; a zero u is a DCC
// record, which only operators reach.
func (s scope) may(u smki.EUI) bool { return s.all || (!u.IsZero() && u == s.user) }

func (a Actor) authorize(action Action) (scope, error) {
	if strings.TrimSpace(a.ID) == "" || len(a.ID) > maxActorID {
		return scope{}, fmt.Errorf("%w: actor ID must be 1-%d bytes", ErrForbidden, maxActorID)
	}
	var own bool
	for _, r := range a.Roles {
		if Permit(r, action) != nil {
			continue
		}
		if r != RoleUser {
			return scope{all: true}, nil
		}
		if a.User.IsZero() {
			return scope{}, fmt.Errorf("%w: actor %s has role user but no user EUI", ErrForbidden, a.ID)
		}
		own = true
	}
	if own {
		return scope{user: a.User}, nil
	}
	if len(a.Roles) == 0 {
		return scope{}, fmt.Errorf("%w: actor %s has no role", ErrForbidden, a.ID)
	}
	return scope{}, fmt.Errorf("%w: actor %s may not %s", ErrForbidden, a.ID, action)
}
