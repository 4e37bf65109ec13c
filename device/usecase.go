package device

import (
	"context"
	"fmt"

	"github.com/metertrust/metertrust/commands"
	"github.com/metertrust/metertrust/commands/asn"
	"github.com/metertrust/metertrust/smki"
)

// GBCS message codes of the use cases a meter executes (table E of
// gbcs-payloads.md; the GBCS use-case catalogue).
const (
	CodeCS02a  uint16 = 0x0008 // Provide Security Credentials Details
	CodeCS02c  uint16 = 0x000A // Issue Security Credentials (device re-key)
	CodeCS02d  uint16 = 0x000B // Update Device Certificates on Device
	CodeCS02e  uint16 = 0x000C // Provide Device Certificates from Device
	CodeECS01a uint16 = 0x0019 // Set Tariff and Price on ESME
	CodeECS17b uint16 = 0x0027 // Read ESME Energy Registers (Import Energy)
	CodeECS22b uint16 = 0x0037 // Read Electricity Half Hour Profile Data (active import)
	CodeECS42  uint16 = 0x004F // Remotely Close the Load Switch on the ESME
	CodeECS43  uint16 = 0x0050 // Remotely Open the Load Switch on the ESME
	CodeECS44  uint16 = 0x0051 // Arm Load Switch in ESME
	CodeECS45  uint16 = 0x0052 // Read Status of Load Switch in the ESME
	CodeECS50  uint16 = 0x0058 // Send CIN to ESME
	CodeECS52  uint16 = 0x0059 // Read ESME/Comms Hub Firmware Version
	CodeECS66  uint16 = 0x0060 // Read ESME Daily Consumption Log
	CodeECS68  uint16 = 0x0061 // ESME Critical Sensitive Alert (Billing Data Log)
	CodeECS82  uint16 = 0x0069 // Read Meter Balance for ESME
	CodeECS04b uint16 = 0x00B3 // Reset Meter Balance on the ESME
	CodeGCS01a uint16 = 0x006B // Set Tariff and Price on GSME
	CodeGCS13a uint16 = 0x0074 // Read GSME Consumption Register
	CodeGCS17  uint16 = 0x0078 // Read GSME Profile Data Log
	CodeGCS28  uint16 = 0x007F // Set Clock on GSME
	CodeGCS32  uint16 = 0x0081 // Remotely close the valve in the GSME
	CodeGCS33  uint16 = 0x0082 // Read GSME Valve Status
	CodeGCS36  uint16 = 0x0083 // Send CIN to GSME
	CodeGCS39  uint16 = 0x0085 // Arm Valve in GSME
	CodeGCS60  uint16 = 0x008D // Read Meter Balance for GSME
	CodeGCS61  uint16 = 0x00A0 // Read Gas Daily Consumption Log
	// CodeCS02bFirst and CodeCS02bLast bound the CS02b Update Security
	// Credentials codes, one per replacement mode (gbcs-payloads.md 3.3).
	CodeCS02bFirst uint16 = 0x0100
	CodeCS02bLast  uint16 = 0x0109
)

// Message codes of the alerts a meter raises besides ECS68 (gbcs-payloads.md
// 3.3, 6.2, 6.3).
const (
	CodeCS02bAlert      uint16 = 0x00CB // CS02b future-dated execution outcome (ASN.1)
	CodeFutureDatedDLMS uint16 = 0x00CC // future-dated execution outcome of an ESME (DLMS)
	CodeFutureDatedGBZ  uint16 = 0x00CD // future-dated execution outcome of a GSME (GBZ)
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

// anyKind marks use cases both fuels execute.
const anyKind Kind = 0xFF

// executor runs one authenticated, authorised command against the meter's
// state and returns the response payload. It reports a payload that does
// not fit its use case's layout as a ReasonMalformed discard. The caller
// holds m.mu.
type executor func(m *Meter, ctx context.Context, x *exchange) ([]byte, error)

// useCase is the meter's view of a use case: its fuel, what it does, and
// which remote party roles may send it. Whether it is critical (signed) or
// sensitive (encrypted) and which forms its messages take come from the
// catalogue of package commands (table E of gbcs-payloads.md), not from
// here. The roles come from the DUIS eligibility matrix
// (service-requests.tsv): import, export and gas suppliers appear to a device
// as supplier, distributors and transporters as network operator, other
// users and registered supplier agents as an unknown remote party
// (RoleOther, behind the access control broker).
type useCase struct {
	name  string
	kind  Kind
	roles []smki.Role
	exec  executor
	// dlms marks the ESME use cases whose payloads are DLMS: their signed
	// responses carry the header date-time (see respond).
	dlms bool
}

var (
	supplierOnly = []smki.Role{smki.RoleSupplier}
	supplierNO   = []smki.Role{smki.RoleSupplier, smki.RoleNetworkOperator}
	readersAll   = []smki.Role{smki.RoleSupplier, smki.RoleNetworkOperator, smki.RoleOther}
	otherOnly    = []smki.Role{smki.RoleOther}
)

// useCases is the catalogue of what the reference meter executes. CS02a and
// CS02b are listed with the roles their payload decides (see cs02.go).
var useCases map[uint16]*useCase

func init() {
	useCases = map[uint16]*useCase{
		CodeECS01a: {name: "ECS01a", kind: Electricity, roles: supplierOnly, exec: (*Meter).execTariff, dlms: true},        // SR 1.1.1: IS, GS
		CodeECS04b: {name: "ECS04b", kind: Electricity, roles: supplierOnly, exec: (*Meter).execResetBalance, dlms: true},  // SR 1.5: IS, GS
		CodeECS17b: {name: "ECS17b", kind: Electricity, roles: supplierNO, exec: (*Meter).execImportEnergy, dlms: true},    // SR 4.1.1: IS, GS, ED, GT
		CodeECS22b: {name: "ECS22b", kind: Electricity, roles: readersAll, exec: (*Meter).execHalfHourProfile, dlms: true}, // SR 4.8.1: IS, GS, ED, GT, OU
		CodeECS42:  {name: "ECS42", kind: Electricity, roles: supplierOnly, exec: (*Meter).execLoadSwitch, dlms: true},     // SR 7.1: IS
		CodeECS43:  {name: "ECS43", kind: Electricity, roles: supplierOnly, exec: (*Meter).execLoadSwitch, dlms: true},     // SR 7.2: IS, GS
		CodeECS44:  {name: "ECS44", kind: Electricity, roles: supplierOnly, exec: (*Meter).execLoadSwitch, dlms: true},     // SR 7.3: IS, GS
		CodeECS45:  {name: "ECS45", kind: Electricity, roles: readersAll, exec: (*Meter).execLoadSwitchStatus, dlms: true}, // SR 7.4: IS, ES, GS, RSA, ED, GT
		CodeECS50:  {name: "ECS50", kind: Electricity, roles: otherOnly, exec: (*Meter).execCIN, dlms: true},               // SR 9.1: OU
		CodeECS52:  {name: "ECS52", kind: Electricity, roles: readersAll, exec: (*Meter).execFirmwareVersion, dlms: true},  // SR 11.2: IS, ES, GS, RSA, ED, GT, OU
		CodeGCS28:  {name: "GCS28", kind: Gas, roles: supplierOnly, exec: (*Meter).execSetClock},                           // SR 6.11: IS, GS
		CodeGCS32:  {name: "GCS32", kind: Gas, roles: supplierOnly, exec: (*Meter).execValve},                              // SR 7.2: IS, GS
		CodeGCS33:  {name: "GCS33", kind: Gas, roles: readersAll, exec: (*Meter).execValveStatus},                          // SR 7.4
		CodeGCS39:  {name: "GCS39", kind: Gas, roles: supplierOnly, exec: (*Meter).execValve},                              // SR 7.3: IS, GS
		CodeCS02a:  {name: "CS02a", kind: anyKind, roles: nil, exec: (*Meter).execProvideCredentials},                      // SR 6.24.1 through the ACB, or a DS anchor
		CodeCS02c:  {name: "CS02c", kind: anyKind, roles: supplierOnly, exec: (*Meter).execIssueCredentials},               // SR 6.17: IS, GS
		CodeCS02d:  {name: "CS02d", kind: anyKind, roles: supplierOnly, exec: (*Meter).execInstallCertificate},             // SR 6.15.2: IS, GS
		CodeCS02e:  {name: "CS02e", kind: anyKind, roles: supplierOnly, exec: (*Meter).execProvideCertificate},             // SR 6.24.2: IS, GS
	}
	for code := CodeCS02bFirst; code <= CodeCS02bLast; code++ {
		if mode, ok := replacementModes[code]; ok {
			useCases[code] = &useCase{name: "CS02b", kind: anyKind, roles: []smki.Role{mode.signer}, exec: (*Meter).execUpdateCredentials}
		}
	}
	addOurUseCases(useCases)
}

// lookupUseCase returns the use case of code that a meter of kind k
// executes.
func lookupUseCase(code uint16, k Kind) (*useCase, bool) {
	uc, ok := useCases[code]
	if !ok || (uc.kind != anyKind && uc.kind != k) {
		return nil, false
	}
	return uc, true
}

// UseCaseName returns the GBCS name of a message code the meter executes
// ("ECS17b"), and false for any other code.
func UseCaseName(code uint16) (string, bool) {
	if uc, ok := useCases[code]; ok {
		return uc.name, true
	}
	return "", false
}

// Sensitive reports whether the meter encrypts the content of its response
// to the use case with message code code: the codes whose messages carry
// ciphered blocks (gbcs-payloads.md 2.1, commands.UseCase.Sensitive).
func Sensitive(code uint16) bool {
	uc, ok := commands.LookupCode(commands.MessageCode(code))
	return ok && uc.Sensitive
}

// Critical reports whether a command with message code code must carry the
// remote party's signature: the codes whose commands are signed in every
// form the catalogue gives (commands.UseCase.Critical). CS02a is not
// critical by its code (its signed variant is checked by its payload), nor is
// CS02b 0x0104, which the access control broker authorises with its MAC
// alone.
func Critical(code uint16) bool {
	uc, ok := commands.LookupCode(commands.MessageCode(code))
	if !ok {
		return false
	}
	return uc.Critical()
}

// commandForms returns the forms in which the meter accepts a command of
// code: those the catalogue gives (gbcs-payloads.md 1.2 and table E), or,
// for a code the reference data does not show (CS02b modes 0, 1 and 9),
// the MAC'd signed form of a critical command.
func commandForms(code uint16) []commands.Form {
	uc, ok := commands.LookupCode(commands.MessageCode(code))
	if ok {
		if fs := uc.Forms(commands.Command); len(fs) > 0 {
			return fs
		}
		if uc.Critical() {
			return []commands.Form{commands.FormMACSigned}
		}
	}
	return []commands.Form{commands.FormMAC}
}

// responseForm returns the form of the response to a command of code that
// came in form in: signed without MAC header when the catalogue's responses
// to the code are signed (a response to a critical command, and CS02b
// 0x0104), MAC'd with signature length 00 otherwise; for a code whose
// responses come both ways (CS02a), the form of the command's own
// authorisation: signed when the command was signed.
func responseForm(code uint16, in commands.Form) commands.Form {
	signed := in == commands.FormSigned || in == commands.FormMACSigned
	uc, ok := commands.LookupCode(commands.MessageCode(code))
	if ok {
		switch fs := uc.Forms(commands.Response); {
		case len(fs) == 1:
			return fs[0]
		case len(fs) > 1 && signed:
			return commands.FormSigned
		case len(fs) > 1:
			return commands.FormMAC
		}
	}
	if signed {
		return commands.FormSigned
	}
	return commands.FormMAC
}

// asnRole converts a device role to the ASN.1 RemotePartyRole of the same
// number.
func asnRole(r smki.Role) asn.RemotePartyRole { return asn.RemotePartyRole(r) }
