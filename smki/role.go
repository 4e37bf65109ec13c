package smki

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Role is a GBCS Remote Party Role, carried in the OU of SMKI subjects as two
// hex digits and in device trust-anchor cells.
type Role uint8

// The Remote Party Roles of GBCS.
const (
	RoleRoot                Role = 0
	RoleRecovery            Role = 1
	RoleSupplier            Role = 2
	RoleNetworkOperator     Role = 3
	RoleAccessControlBroker Role = 4
	RoleTransitionalCoS     Role = 5
	RoleWANProvider         Role = 6
	RoleIssuingAuthority    Role = 7
	RoleLoadController      Role = 8
	RoleOther               Role = 127
	// RoleDCCInterfaceSigning and RoleDCCInterfaceSigning2 are DCC interface
	// signing roles: valid in SMKI subjects, not GBCS remote parties.
	RoleDCCInterfaceSigning  Role = 135
	RoleDCCInterfaceSigning2 Role = 137
)

var roleNames = map[Role]string{
	RoleRoot:                 "root",
	RoleRecovery:             "recovery",
	RoleSupplier:             "supplier",
	RoleNetworkOperator:      "networkOperator",
	RoleAccessControlBroker:  "accessControlBroker",
	RoleTransitionalCoS:      "transitionalCoS",
	RoleWANProvider:          "wanProvider",
	RoleIssuingAuthority:     "issuingAuthority",
	RoleLoadController:       "loadController",
	RoleOther:                "other",
	RoleDCCInterfaceSigning:  "dccInterfaceSigning",
	RoleDCCInterfaceSigning2: "dccInterfaceSigning2",
}

// ErrRole is wrapped by every role parsing error.
var ErrRole = errors.New("smki: unknown role")

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool { _, ok := roleNames[r]; return ok }

// String returns the role's name, or its number for an undefined role.
func (r Role) String() string {
	if n, ok := roleNames[r]; ok {
		return n
	}
	return strconv.Itoa(int(r))
}

// OU returns the role as it appears in a subject OU: two upper-case hex digits.
func (r Role) OU() string { return fmt.Sprintf("%02X", uint8(r)) }

// ParseRole accepts a role name (case-insensitive, "acb" and "tcos" as
// short forms), a decimal code, or the OU form "0x02".
func ParseRole(s string) (Role, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	switch l {
	case "acb":
		return RoleAccessControlBroker, nil
	case "tcos":
		return RoleTransitionalCoS, nil
	case "no", "network-operator", "networkoperator":
		return RoleNetworkOperator, nil
	}
	for r, n := range roleNames {
		if strings.ToLower(n) == l {
			return r, nil
		}
	}
	if v, err := strconv.ParseUint(strings.TrimPrefix(l, "0x"), pick(strings.HasPrefix(l, "0x"), 16, 10), 8); err == nil {
		if r := Role(v); r.Valid() {
			return r, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrRole, s)
}

// ParseRoleOU reads the two-hex-digit OU form of a role ("02").
func ParseRoleOU(s string) (Role, error) {
	if len(s) != 2 {
		return 0, fmt.Errorf("%w: OU %q is not two hex digits", ErrRole, s)
	}
	v, err := strconv.ParseUint(s, 16, 8)
	if err != nil || !Role(v).Valid() {
		return 0, fmt.Errorf("%w: OU %q", ErrRole, s)
	}
	return Role(v), nil
}

func pick(c bool, a, b int) int {
	if c {
		return a
	}
	return b
}

// UserRole is a DCC User Role: who may send which service request to the DCC.
type UserRole string

// The DCC User Roles.
const (
	UserImportSupplier          UserRole = "IS"
	UserExportSupplier          UserRole = "ES"
	UserGasSupplier             UserRole = "GS"
	UserElectricityDistributor  UserRole = "ED"
	UserGasTransporter          UserRole = "GT"
	UserOther                   UserRole = "OU"
	UserRegisteredSupplierAgent UserRole = "RSA"
)

// UserRoles lists every DCC User Role.
var UserRoles = []UserRole{UserImportSupplier, UserExportSupplier, UserGasSupplier,
	UserElectricityDistributor, UserGasTransporter, UserOther, UserRegisteredSupplierAgent}

// ErrUserRole is wrapped by every DCC User Role parsing error.
var ErrUserRole = errors.New("smki: unknown DCC user role")

// ParseUserRole accepts the two- or three-letter code, in either case.
func ParseUserRole(s string) (UserRole, error) {
	u := UserRole(strings.ToUpper(strings.TrimSpace(s)))
	for _, r := range UserRoles {
		if r == u {
			return r, nil
		}
	}
	return "", fmt.Errorf("%w %q (want one of IS, ES, GS, ED, GT, OU, RSA)", ErrUserRole, s)
}

// RemoteParty returns the GBCS Remote Party Role under which a DCC User of
// this role appears to devices: suppliers as supplier, distributors and
// transporters as network operator, everyone else as other (an unknown remote
// party).
func (u UserRole) RemoteParty() Role {
	switch u {
	case UserImportSupplier, UserExportSupplier, UserGasSupplier:
		return RoleSupplier
	case UserElectricityDistributor, UserGasTransporter:
		return RoleNetworkOperator
	default:
		return RoleOther
	}
}
