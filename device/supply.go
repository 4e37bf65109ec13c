package device

import "fmt"

// SupplyState is the state of the supply switch: the load switch of an ESME,
// the valve of a GSME. Its values are those of the DLMS disconnect control's
// control_state (gbcs-payloads.md 4.5, ECS45); a GSME reports the same state
// as the ZCL supply status of GCS33 (5.3), whose numbers differ (see
// gbzSupply).
type SupplyState uint8

// Supply states.
const (
	// SupplyDisabled: the switch is open (DLMS disconnected, ZCL off).
	SupplyDisabled SupplyState = 0
	// SupplyEnabled: the switch is closed (DLMS connected, ZCL on).
	SupplyEnabled SupplyState = 1
	// SupplyArmed: the switch is open and closes when the consumer presses
	// the button (DLMS ready_for_reconnection, ZCL armed).
	SupplyArmed SupplyState = 2
)

// String names the state.
func (s SupplyState) String() string {
	switch s {
	case SupplyDisabled:
		return "disabled"
	case SupplyEnabled:
		return "enabled"
	case SupplyArmed:
		return "armed"
	}
	return fmt.Sprintf("supplyState(%d)", uint8(s))
}

// supplyAction is what a supply-switch use case asks of the switch.
type supplyAction uint8

const (
	supplyEnable supplyAction = iota + 1
	supplyDisable
	supplyArm
)

// switchSupply runs the supply-switch state machine and reports whether the
// switch accepted the action. Disable opens the switch from any state;
// enable closes it from any state; arm moves an open switch to armed (the
// consumer's button then closes it) and leaves an armed one armed, but is
// refused on a closed switch, which a real meter cannot arm without first
// opening it. The caller holds m.mu.
func (m *Meter) switchSupply(a supplyAction) bool {
	switch a {
	case supplyEnable:
		m.supply = SupplyEnabled
	case supplyDisable:
		m.supply = SupplyDisabled
	case supplyArm:
		if m.supply == SupplyEnabled {
			return false
		}
		m.supply = SupplyArmed
	default:
		return false
	}
	return true
}
