package device

import (
	"context"

	"github.com/metertrust/metertrust/smki"
)

// replacementMode is a CS02b replacement mode as the meter enforces it: who
// must sign (the authorising party) and which roles' anchors it may
// replace (GBCS section 9).
type replacementMode struct {
	name    string
	signer  smki.Role
	targets []smki.Role
}

var allButRoot = []smki.Role{smki.RoleRecovery, smki.RoleSupplier, smki.RoleNetworkOperator,
	smki.RoleAccessControlBroker, smki.RoleTransitionalCoS, smki.RoleWANProvider}

// replacementModes maps each CS02b message code to its mode. The
// contingency key sits in the root anchor.
var replacementModes = map[uint16]replacementMode{
	0x0100: {"rootBySupplier", smki.RoleSupplier, []smki.Role{smki.RoleRoot}},
	0x0101: {"rootByWanProvider", smki.RoleWANProvider, []smki.Role{smki.RoleRoot}},
	0x0102: {"supplierBySupplier", smki.RoleSupplier, []smki.Role{smki.RoleSupplier}},
	0x0103: {"networkOperatorByNetworkOperator", smki.RoleNetworkOperator, []smki.Role{smki.RoleNetworkOperator}},
	0x0104: {"accessControlBrokerByACB", smki.RoleAccessControlBroker, []smki.Role{smki.RoleAccessControlBroker}},
	0x0105: {"wanProviderByWanProvider", smki.RoleWANProvider, []smki.Role{smki.RoleWANProvider}},
	0x0106: {"transCoSByTransCoS", smki.RoleTransitionalCoS, []smki.Role{smki.RoleTransitionalCoS}},
	0x0107: {"supplierByTransCoS", smki.RoleTransitionalCoS, []smki.Role{smki.RoleSupplier}},
	0x0108: {"anyExceptAbnormalRootByRecovery", smki.RoleRecovery, allButRoot},
	0x0109: {"anyByContingency", smki.RoleRoot, AnchorRoles()},
}

// credentialUpdate is a decoded, checked CS02b: the new anchors to install.
type credentialUpdate struct {
	next *Anchors
}

// rekey is a CS02c in progress: the new key waiting for its certificate.
type rekey struct{}

func (m *Meter) checkCredentialUpdate(ctx context.Context, an *Anchors, cmd *command) error {
	return discard(ReasonUnsupported, "CS02b is not executed yet")
}

func (m *Meter) executeCredentials(ctx context.Context, cmd *command) ([]byte, error) {
	return nil, discard(ReasonUnsupported, "%s is not executed yet", cmd.uc.name)
}
