package device

import (
	"fmt"

	"github.com/metertrust/metertrust/smki"
)

// GBCS message codes of the use cases a meter executes (GBCS use-case
// catalogue; the project's spec/usecases.tsv).
const (
	CodeCS02a  uint16 = 0x0008 // Provide Security Credentials Details
	CodeCS02c  uint16 = 0x000A // Issue Security Credentials (device re-key)
	CodeCS02d  uint16 = 0x000B // Update Device Certificates on Device
	CodeECS01a uint16 = 0x0019 // Set Tariff and Price on ESME
	CodeECS17b uint16 = 0x0027 // Read ESME Energy Registers (Import Energy)
	CodeECS22b uint16 = 0x0037 // Read Electricity Half Hour Profile Data (active import)
	CodeECS42  uint16 = 0x004F // Remotely Close the Load Switch on the ESME
	CodeECS43  uint16 = 0x0050 // Remotely Open the Load Switch on the ESME
	CodeECS44  uint16 = 0x0051 // Arm Load Switch in ESME
	CodeECS45  uint16 = 0x0052 // Read Status of Load Switch in the ESME
	CodeECS50  uint16 = 0x0058 // Send CIN to ESME
	CodeECS66  uint16 = 0x0060 // Read ESME Daily Consumption Log
	CodeECS82  uint16 = 0x0069 // Read Meter Balance for ESME
	CodeECS04b uint16 = 0x00B3 // Reset Meter Balance on the ESME
	CodeGCS01a uint16 = 0x006B // Set Tariff and Price on GSME
	CodeGCS13a uint16 = 0x0074 // Read GSME Consumption Register
	CodeGCS17  uint16 = 0x0078 // Read GSME Profile Data Log
	CodeGCS32  uint16 = 0x0081 // Remotely close the valve in the GSME
	CodeGCS33  uint16 = 0x0082 // Read GSME Valve Status
	CodeGCS36  uint16 = 0x0083 // Send CIN to GSME
	CodeGCS39  uint16 = 0x0085 // Arm Valve in GSME
	CodeGCS60  uint16 = 0x008D // Read Meter Balance for GSME
	CodeGCS61  uint16 = 0x00A0 // Read Gas Daily Consumption Log
	// CodeCS02bFirst and CodeCS02bLast bound the CS02b Update Security
	// Credentials codes, one per replacement mode (section 9).
	CodeCS02bFirst uint16 = 0x0100
	CodeCS02bLast  uint16 = 0x0109
)

// Kind says whether a meter is an electricity meter (ESME) or a gas meter
// (GSME); each executes its own fuel's use cases.
type Kind uint8

// Meter kinds.
const (
	Electricity Kind = 0
	Gas         Kind = 1
)

// String returns "ESME" or "GSME".
func (k Kind) String() string {
	switch k {
	case Electricity:
		return "ESME"
	case Gas:
		return "GSME"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// op is what a use case does on the meter.
type op uint8

const (
	opTariff op = iota + 1
	opRegisters
	opProfile
	opDailyLog
	opSupplyEnable
	opSupplyDisable
	opSupplyArm
	opSupplyStatus
	opCIN
	opBalanceRead
	opBalanceReset
	opCredentialsList
	opCredentialsUpdate
	opRekey
	opInstallCert
)

// useCase is the meter's view of a use case: what it does, whether it is
// critical (signed by the remote party, response signed by the device),
// whether its response payload is sensitive (encrypted to the recipient),
// and which remote party roles may send it. The roles come from the DUIS
// eligibility matrix (spec/service-requests.tsv): import, export and gas
// suppliers appear to a device as supplier, distributors and transporters
// as network operator, other users and registered supplier agents as an
// unknown remote party (RoleOther, behind the access control broker).
type useCase struct {
	name      string
	kind      Kind
	op        op
	critical  bool
	sensitive bool
	roles     []smki.Role
}

var (
	supplierOnly = []smki.Role{smki.RoleSupplier}
	supplierNO   = []smki.Role{smki.RoleSupplier, smki.RoleNetworkOperator}
	readersAll   = []smki.Role{smki.RoleSupplier, smki.RoleNetworkOperator, smki.RoleOther}
	otherOnly    = []smki.Role{smki.RoleOther}
)

// useCases is the catalogue of what the reference meter executes. CS02b is
// handled separately: its signer depends on the replacement mode.
var useCases = map[uint16]useCase{
	CodeECS01a: {"ECS01a", Electricity, opTariff, true, false, supplierOnly},       // SR 1.1.1: IS, GS
	CodeECS04b: {"ECS04b", Electricity, opBalanceReset, true, false, supplierOnly}, // SR 1.5
	CodeECS17b: {"ECS17b", Electricity, opRegisters, false, true, supplierNO},      // SR 4.1.1: IS, GS, ED, GT
	CodeECS22b: {"ECS22b", Electricity, opProfile, false, true, readersAll},        // SR 4.8.1: IS, GS, ED, GT, OU
	CodeECS42:  {"ECS42", Electricity, opSupplyEnable, true, false, supplierOnly},  // SR 7.1: IS
	CodeECS43:  {"ECS43", Electricity, opSupplyDisable, true, false, supplierOnly}, // SR 7.2: IS, GS
	CodeECS44:  {"ECS44", Electricity, opSupplyArm, true, false, supplierOnly},     // SR 7.3: IS, GS
	CodeECS45:  {"ECS45", Electricity, opSupplyStatus, false, false, readersAll},   // SR 7.4: IS, ES, GS, RSA, ED, GT
	CodeECS50:  {"ECS50", Electricity, opCIN, false, false, otherOnly},             // SR 9.1: OU
	CodeECS66:  {"ECS66", Electricity, opDailyLog, false, true, readersAll},        // SR 4.17: IS, GS, ED, GT, OU
	CodeECS82:  {"ECS82", Electricity, opBalanceRead, false, true, supplierOnly},   // SR 4.18: IS, GS
	CodeGCS01a: {"GCS01a", Gas, opTariff, true, false, supplierOnly},               // SR 1.1.1
	CodeGCS13a: {"GCS13a", Gas, opRegisters, false, true, supplierNO},              // SR 4.1.1
	CodeGCS17:  {"GCS17", Gas, opProfile, false, true, readersAll},                 // SR 4.8.1
	CodeGCS32:  {"GCS32", Gas, opSupplyDisable, true, false, supplierOnly},         // SR 7.2
	CodeGCS33:  {"GCS33", Gas, opSupplyStatus, false, false, readersAll},           // SR 7.4
	CodeGCS36:  {"GCS36", Gas, opCIN, false, false, otherOnly},                     // SR 9.1
	CodeGCS39:  {"GCS39", Gas, opSupplyArm, true, false, supplierOnly},             // SR 7.3
	CodeGCS60:  {"GCS60", Gas, opBalanceRead, false, true, supplierOnly},           // SR 4.18
	CodeGCS61:  {"GCS61", Gas, opDailyLog, false, true, readersAll},                // SR 4.17
	CodeCS02a:  {"CS02a", anyKind, opCredentialsList, false, false, credListRoles}, // SR 6.24.1, and the ACB
	CodeCS02c:  {"CS02c", anyKind, opRekey, true, false, supplierOnly},             // SR 6.17: IS, GS
	CodeCS02d:  {"CS02d", anyKind, opInstallCert, true, false, supplierOnly},       // SR 6.15.2: IS, GS
}

// anyKind marks use cases both fuels execute.
const anyKind Kind = 0xFF

// credListRoles may ask for CS02a: the suppliers and network operators of
// SR 6.24.1, and the access control broker itself (GBCS section 9).
var credListRoles = []smki.Role{smki.RoleSupplier, smki.RoleNetworkOperator, smki.RoleAccessControlBroker}

// UseCaseName returns the GBCS name of a message code the meter executes
// ("ECS17b"), and false for any other code.
func UseCaseName(code uint16) (string, bool) {
	if uc, ok := useCases[code]; ok {
		return uc.name, true
	}
	if code >= CodeCS02bFirst && code <= CodeCS02bLast {
		return "CS02b", true
	}
	return "", false
}

// Sensitive reports whether the meter encrypts its response to the use case
// with message code code (consumption, profile and billing data).
func Sensitive(code uint16) bool { return useCases[code].sensitive }

// Critical reports whether the use case with message code code is critical:
// the command must carry the remote party's signature and the meter signs
// its response. Every CS02b mode is critical.
func Critical(code uint16) bool {
	if code >= CodeCS02bFirst && code <= CodeCS02bLast {
		return true
	}
	return useCases[code].critical
}
