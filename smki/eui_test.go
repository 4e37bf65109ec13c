package smki

import (
	"encoding/json"
	"errors"
	"strconv"
	"testing"
)

func TestParseEUI(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"90B3D51F30010000", "90B3D51F30010000", false},
		{"90-B3-D5-1F-30-01-00-00", "90B3D51F30010000", false},
		{"90b3d51f30010000", "90B3D51F30010000", false},
		{"90-b3-d5-1f-30-01-00-00", "90B3D51F30010000", false},
		{"FFFFFFFFFFFFFFFE", "FFFFFFFFFFFFFFFE", false},
		{"", "", true},
		{"90B3D51F300100", "", true},
		{"90B3D51F3001000000", "", true},
		{"90:B3:D5:1F:30:01:00:00", "", true},
		{"90-B3-D5-1F-30-01-00-0G", "", true},
		{"90B3D51F3001000G", "", true},
		{"90-B3D5-1F-30-01-00-000", "", true},
		{" 90B3D51F30010000", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := ParseEUI(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrEUI) {
					t.Fatalf("error %v, want ErrEUI", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.String() != tt.want {
				t.Errorf("String() = %s, want %s", e, tt.want)
			}
		})
	}
}

func TestEUIForms(t *testing.T) {
	e := MustParseEUI("90B3D51F30010000")
	if g := e.Grouped(); g != "90-B3-D5-1F-30-01-00-00" {
		t.Errorf("Grouped() = %s", g)
	}
	if e.IsZero() || !(EUI{}).IsZero() {
		t.Error("IsZero wrong")
	}
	b, err := json.Marshal(struct{ EUI EUI }{e})
	if err != nil || string(b) != `{"EUI":"90B3D51F30010000"}` {
		t.Errorf("JSON %s %v", b, err)
	}
	var back struct{ EUI EUI }
	if err := json.Unmarshal([]byte(`{"EUI":"90-B3-D5-1F-30-01-00-00"}`), &back); err != nil || back.EUI != e {
		t.Errorf("unmarshal %v %v", back.EUI, err)
	}
	if err := json.Unmarshal([]byte(`{"EUI":"nope"}`), &back); !errors.Is(err, ErrEUI) {
		t.Errorf("unmarshal bad: %v", err)
	}
}

func TestRoles(t *testing.T) {
	tests := []struct {
		role Role
		code uint8
		name string
		ou   string
	}{
		{RoleRoot, 0, "root", "00"},
		{RoleRecovery, 1, "recovery", "01"},
		{RoleSupplier, 2, "supplier", "02"},
		{RoleNetworkOperator, 3, "networkOperator", "03"},
		{RoleAccessControlBroker, 4, "accessControlBroker", "04"},
		{RoleTransitionalCoS, 5, "transitionalCoS", "05"},
		{RoleWANProvider, 6, "wanProvider", "06"},
		{RoleIssuingAuthority, 7, "issuingAuthority", "07"},
		{RoleLoadController, 8, "loadController", "08"},
		{RoleOther, 127, "other", "7F"},
		{RoleDCCInterfaceSigning, 135, "dccInterfaceSigning", "87"},
		{RoleDCCInterfaceSigning2, 137, "dccInterfaceSigning2", "89"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if uint8(tt.role) != tt.code || tt.role.String() != tt.name || tt.role.OU() != tt.ou || !tt.role.Valid() {
				t.Errorf("role %d: code %d name %s OU %s", tt.role, uint8(tt.role), tt.role, tt.role.OU())
			}
			for _, s := range []string{tt.name, strconv.Itoa(int(tt.code)), "0x" + tt.ou} {
				if r, err := ParseRole(s); err != nil || r != tt.role {
					t.Errorf("ParseRole(%q) = %v, %v", s, r, err)
				}
			}
			if r, err := ParseRoleOU(tt.ou); err != nil || r != tt.role {
				t.Errorf("ParseRoleOU(%q) = %v, %v", tt.ou, r, err)
			}
		})
	}
	for _, s := range []string{"acb", "TCoS", "no", "network-operator"} {
		if _, err := ParseRole(s); err != nil {
			t.Errorf("ParseRole(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "9", "128", "bogus", "0x100"} {
		if _, err := ParseRole(s); !errors.Is(err, ErrRole) {
			t.Errorf("ParseRole(%q): %v, want ErrRole", s, err)
		}
	}
	for _, s := range []string{"2", "002", "09", "zz"} {
		if _, err := ParseRoleOU(s); !errors.Is(err, ErrRole) {
			t.Errorf("ParseRoleOU(%q): %v, want ErrRole", s, err)
		}
	}
	if Role(9).Valid() || Role(9).String() != "9" {
		t.Error("role 9 should be undefined")
	}
}

func TestUserRoles(t *testing.T) {
	tests := []struct {
		in     string
		want   UserRole
		remote Role
	}{
		{"IS", UserImportSupplier, RoleSupplier},
		{"es", UserExportSupplier, RoleSupplier},
		{"GS", UserGasSupplier, RoleSupplier},
		{"ED", UserElectricityDistributor, RoleNetworkOperator},
		{"gt", UserGasTransporter, RoleNetworkOperator},
		{"OU", UserOther, RoleOther},
		{"RSA", UserRegisteredSupplierAgent, RoleOther},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := ParseUserRole(tt.in)
			if err != nil || u != tt.want || u.RemoteParty() != tt.remote {
				t.Errorf("ParseUserRole(%q) = %v (%v), remote %v; want %v %v", tt.in, u, err, u.RemoteParty(), tt.want, tt.remote)
			}
		})
	}
	if len(UserRoles) != 7 {
		t.Errorf("%d user roles, want 7", len(UserRoles))
	}
	if _, err := ParseUserRole("XX"); !errors.Is(err, ErrUserRole) {
		t.Errorf("ParseUserRole(XX): %v", err)
	}
}
