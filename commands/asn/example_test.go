package asn_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/metertrust/metertrust/commands/asn"
)

// Decode a CS02a command (the constructed example of gbcs-payloads.md 3.4),
// print it as JSON, and encode it again.
func ExampleDecode() {
	payload, _ := hex.DecodeString("30113007020104030203083006020102020103")
	p, err := asn.Decode(0x0008, asn.Command, payload)
	if err != nil {
		fmt.Println(err)
		return
	}
	cmd := p.(*asn.ProvideSecurityCredentialDetailsCommand)
	fmt.Println(cmd.AuthorisingRemotePartyTACellIdentifier, cmd.RemotePartyRolesCredentialsRequired)
	j, _ := json.Marshal(cmd.RemotePartyRolesCredentialsRequired)
	fmt.Println(string(j))
	out, _ := asn.Encode(p)
	fmt.Printf("%x\n", out)
	// Output:
	// {accessControlBroker, keyAgreement} [supplier networkOperator]
	// [{"value":2,"name":"supplier"},{"value":3,"name":"networkOperator"}]
	// 30113007020104030203083006020102020103
}

// A device answers a CS02b command: the execution outcome repeats the
// command's sequence number and mode, and the response is written with the
// GB length rule.
func ExampleUpdateSecurityCredentialsCommand_NewExecutionOutcome() {
	cmd := asn.UpdateSecurityCredentialsCommand{
		AuthorisingRemotePartyControl: asn.AuthorisingRemotePartyControl{
			CredentialsReplacementMode:      asn.AccessControlBrokerByACB,
			AuthorisingRemotePartySeqNumber: 3,
		},
	}
	code, _ := cmd.MessageCode()
	o := cmd.NewExecutionOutcome()
	o.ReplacementOutcomes = append(o.ReplacementOutcomes, asn.ReplacementOutcome{
		AffectedTrustAnchorCell: asn.Cell(asn.RoleAccessControlBroker, asn.KeyAgreement, asn.CellManagement),
		StatusCode:              asn.StatusSuccess,
	})
	resp := asn.UpdateSecurityCredentialsResponse{ExecutionOutcome: &o}
	b, _ := resp.Marshal()
	fmt.Printf("0x%04X %x\n", code, b[:12])
	fmt.Println(cmd.CheckOutcome(resp.ExecutionOutcome))
	// Output:
	// 0x0104 304405003040020103020104
	// <nil>
}
